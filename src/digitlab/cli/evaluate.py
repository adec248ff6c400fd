"""`digitlab eval`: a saved model on a split of its dataset, rebuilt from the saved config."""

from __future__ import annotations

import click
import numpy as np

from digitlab.cli.complete import run_folders
from digitlab.cli.options import config_flag, with_options
from digitlab.cli.output import console, print_confusion
from digitlab.core.evaluation import evaluate
from digitlab.errors import ConfigError
from digitlab.lab.config import load_config
from digitlab.lab.experiment import (
    config_of_model,
    parts,
    prepare_data,
    summarise,
    whole_test_set,
)
from digitlab.lab.modelfile import load_model


@click.command("eval")
@click.argument("model_path", metavar="MODEL", shell_complete=run_folders)
@with_options(  # as train has them, but defaulting to what the model was trained on
    [
        *config_flag("data", default_text="as trained"),
        *config_flag("data_dir", default_text="as trained"),
    ]
)
@click.option(
    "--split",
    "split_name",
    type=click.Choice(["train", "val", "test", "all"]),
    default="test",
    show_default=True,
    help="Which part to evaluate on; all: every test image (with --split book, both halves).",
)
def eval_command(model_path: str, data: str | None, data_dir: str | None, split_name: str) -> None:
    """Evaluate a saved model (a run folder or model file) on a dataset split.

    The data pipeline is rebuilt from the config saved with the model (same split and seed),
    so the transforms are fitted on the same training data as in training.
    """
    model, extra = load_model(model_path)
    config = config_of_model(extra)
    if data is not None or data_dir is not None:
        config = load_config(
            None,
            {
                **config.model_dump(),
                "data": data or config.data,
                "data_dir": data_dir or config.data_dir,
            },
        )
    # its own pixel subset; the test part converted a chunk at a time
    prepared = prepare_data(config, saved=extra.get("pipeline"), lazy=True)
    if prepared.splits.train.x.shape[1] != model.input_size:
        raise ConfigError(
            f"the model takes {model.input_size} inputs but the data has "
            f"{prepared.splits.train.x.shape[1]}"
        )
    name = split_name
    if name == "all":
        part = whole_test_set(config, prepared.splits)
    else:
        part = parts(prepared.splits)[name]
    m = summarise(evaluate(model, part.x, part.y, config.loss), part.y, prepared.n_classes)
    low, high = m["accuracy_ci95"]
    console.print(
        f"{name}: n={m['n']} loss {m['loss']:.4f} accuracy {100 * m['accuracy']:.2f}% "
        f"(95% interval {100 * low:.2f}-{100 * high:.2f}%)"
    )
    print_confusion(np.array(m["confusion"]), f"{name} confusion matrix (rows: true)")
