"""digitlab: a from-scratch NumPy neural-network workbench for handwritten digits.

The names here are the notebook API: build or configure a model, train it, read its history,
evaluate it, save and load it. The engine itself lives in `digitlab.core` (NumPy only).
"""

from digitlab.core.activations import ACTIVATIONS, activation
from digitlab.core.evaluation import Evaluation, History, evaluate
from digitlab.core.hooks import TrainHooks
from digitlab.core.layers import LAYERS
from digitlab.core.losses import LOSSES
from digitlab.core.model import Sequential, build_model
from digitlab.core.optim import OPTIMIZERS, get_optimizer
from digitlab.core.schedules import SCHEDULES, batch_size_schedule, get_schedule
from digitlab.core.specs import mlp_spec
from digitlab.core.train import TrainOptions, fit
from digitlab.data import build_pipeline, load_dataset, make_splits
from digitlab.diagnostics.monitors import default_monitors
from digitlab.errors import ConfigError, DataError, DigitlabError, ModelError, NumericError
from digitlab.lab.config import Config, make_config
from digitlab.lab.experiment import Prepared, prepare_data, train_config
from digitlab.lab.modelfile import load_model, save_model
from digitlab.lab.plugins import load_plugins
from digitlab.notebook import LiveCurves
from digitlab.report.runfolder import RunFolder, read_run

__all__ = [
    "ACTIVATIONS",
    "LAYERS",
    "LOSSES",
    "OPTIMIZERS",
    "SCHEDULES",
    "Config",
    "ConfigError",
    "DataError",
    "DigitlabError",
    "Evaluation",
    "History",
    "LiveCurves",
    "ModelError",
    "NumericError",
    "Prepared",
    "RunFolder",
    "Sequential",
    "TrainHooks",
    "TrainOptions",
    "activation",
    "batch_size_schedule",
    "build_model",
    "build_pipeline",
    "default_monitors",
    "evaluate",
    "fit",
    "get_optimizer",
    "get_schedule",
    "load_dataset",
    "load_model",
    "load_plugins",
    "make_config",
    "make_splits",
    "mlp_spec",
    "prepare_data",
    "read_run",
    "save_model",
    "train_config",
]
