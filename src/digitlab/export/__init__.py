"""Tracking export: run folders and sweeps as TensorBoard event files and MLflow runs.

    digitlab export tensorboard RUN... --to DIR
    digitlab export mlflow RUN... [--tracking-uri URI] [--experiment NAME]

sources.py reads what to export (runs, a sweep's trials, names, figures); to_tensorboard.py and
to_mlflow.py write it. Both trackers are the optional extra `track`
(pip install 'digitlab[track]'); without it, a command says so in one line.
"""

from digitlab.export.sources import Source, find_runs, scalar_name
from digitlab.export.to_mlflow import DEFAULT_TRACKING_URI, Exported, export_mlflow
from digitlab.export.to_tensorboard import export_tensorboard

__all__ = [
    "DEFAULT_TRACKING_URI",
    "Exported",
    "Source",
    "export_mlflow",
    "export_tensorboard",
    "find_runs",
    "scalar_name",
]
