"""`digitlab summary`: the model a config (or a run folder or model file) describes, node by
node, with its parameter count and the memory it and one training batch need."""

from __future__ import annotations

import json
from typing import Any

import click
from rich.table import Table

from digitlab.cli.complete import run_folders
from digitlab.cli.options import config_from_flags, config_options, given_flags
from digitlab.cli.output import console
from digitlab.diagnostics.summary import Summary, summarize
from digitlab.errors import ConfigError
from digitlab.lab.config import Config, make_optimizer
from digitlab.lab.experiment import build_from_config, config_of_model, prepare_data
from digitlab.lab.modelfile import load_model


@click.command("summary")
@click.argument("source", metavar="[RUN|MODEL]", required=False, shell_complete=run_folders)
@config_options
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def summary_command(
    source: str | None,
    config_file: str | None,
    plugin: tuple[str, ...],
    as_json: bool,
    **flags: Any,
) -> None:
    """Show the model's layers (graph nodes too): type, output shape, parameters, activation,
    initialiser, the total, and the memory of the model and one training batch.

    Takes the same flags and config as `train` (the data sets the input size and the classes),
    or a run folder or model file instead.
    """
    if source is not None:
        given = given_flags(flags)
        if given or config_file or plugin:
            named = ", ".join(given) or "--config/--plugin"
            raise ConfigError(f"give a run folder or model file, or flags, not both ({named})")
        model, extra = load_model(source)
        config: Config | None = config_of_model(extra) if extra.get("config") else None
    else:
        config = config_from_flags(config_file, plugin, flags)
        prepared = prepare_data(config)
        model = build_from_config(config, prepared.splits.train.x.shape[1], prepared.n_classes)
    result = summarize(
        model,
        batch_size=config.batch_size if config else 128,
        optimizer=make_optimizer(config) if config else None,
        loss=config.loss if config else "softmax_cross_entropy",
    )
    if as_json:
        console.print_json(json.dumps(result.to_dict()))
    else:
        print_summary(result)


def print_summary(result: Summary) -> None:
    table = Table(title="model summary (output shapes per example)")
    for column in result.header():
        table.add_column(column, justify="right" if column == "parameters" else "left")
    for line in result.table():
        table.add_row(*line)
    console.print(table)
    for total in result.totals():
        console.print(total, markup=False)
