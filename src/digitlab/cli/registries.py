"""`digitlab list`: every registry's entries with the first line of their docstrings."""

from __future__ import annotations

from typing import Any

import click
from rich.markup import escape
from rich.table import Table

from digitlab.cli.output import console
from digitlab.core.activations import ACTIVATIONS
from digitlab.core.init import INITIALISERS
from digitlab.core.layers import LAYERS
from digitlab.core.losses import LOSSES
from digitlab.core.optim import OPTIMIZERS, SCHEDULES
from digitlab.lab.plugins import load_plugin


def summary(obj: Any) -> str:
    """The first line of `obj`'s docstring ('' without one)."""
    return (obj.__doc__ or "").strip().splitlines()[0] if obj.__doc__ else ""


def registry_sections() -> dict[str, dict[str, str]]:
    """Title -> {name: one-line description} for every registry, as registered now."""
    return {
        "activations": {
            name: f"{entry.doc} (init: {entry.init}"
            + "".join(f", {k}={v}" for k, v in entry.params().items())
            + ")"
            for name, entry in ACTIVATIONS.items()
        },
        "layer types": {name: summary(factory) for name, factory in LAYERS.items()},
        "initialisers": {name: summary(f) for name, f in INITIALISERS.items()},
        "losses": {name: summary(f) for name, f in LOSSES.items()},
        "optimizers": {name: summary(cls) for name, cls in OPTIMIZERS.items()},
        "learning-rate schedules": {name: summary(f) for name, f in SCHEDULES.items()},
    }


@click.command("list")
@click.option("--plugin", multiple=True, help="Python file registering more entries.")
def list_command(plugin: tuple[str, ...]) -> None:
    """List the registered activations, layer types, initialisers, losses, optimizers and
    learning-rate schedules."""
    for path in plugin:
        load_plugin(path)
    for title, entries in registry_sections().items():
        table = Table(title=title, title_justify="left", show_header=False)
        table.add_column(style="bold")
        table.add_column()
        for name, text in sorted(entries.items()):
            table.add_row(escape(name), escape(text))  # docstrings hold brackets: [[rate, epochs]]
        console.print(table)
