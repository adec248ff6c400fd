"""`digitlab list`: every registry's entries with the first line of their docstrings, and the
keys each layer type reads from its table (found in its factory's source, see layer_keys)."""

from __future__ import annotations

import ast
import inspect
import textwrap
from collections.abc import Callable
from typing import Any

import click
from rich.markup import escape
from rich.table import Table

from digitlab.cli.output import console
from digitlab.core.activations import ACTIVATIONS
from digitlab.core.init import INITIALISERS
from digitlab.core.layers import LAYERS
from digitlab.core.losses import LOSSES
from digitlab.core.optim import OPTIMIZERS
from digitlab.core.schedules import SCHEDULES
from digitlab.lab.plugins import load_plugins


def summary(obj: Any) -> str:
    """The first line of `obj`'s docstring ('' without one)."""
    return (obj.__doc__ or "").strip().splitlines()[0] if obj.__doc__ else ""


def layer_keys(factory: Callable[..., Any]) -> dict[str, str]:
    """Key -> "required", "optional" or "default X", as the factory (and the helpers of its
    module it passes the table to) reads them: spec["key"], spec.get("key", X), "key" in spec."""
    module = inspect.getmodule(factory)
    keys: dict[str, str] = {}
    seen: set[str] = set()

    def scan(function: Any) -> None:
        tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
        for node in ast.walk(tree):
            if _is_spec(getattr(node, "value", None)) and isinstance(node, ast.Subscript):
                if isinstance(node.slice, ast.Constant):
                    keys.setdefault(str(node.slice.value), "required")
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                if _is_spec(node.func.value) and node.func.attr == "get" and node.args:
                    default = ast.unparse(node.args[1]) if len(node.args) > 1 else "none"
                    keys[str(ast.literal_eval(node.args[0]))] = f"default {default}"
                elif _is_spec(node.func.value) and node.func.attr == "items":
                    keys["(any other key)"] = "passed on as a keyword parameter"
            elif isinstance(node, ast.Compare) and any(_is_spec(c) for c in node.comparators):
                if isinstance(node.left, ast.Constant) and isinstance(node.ops[0], ast.In):
                    keys.setdefault(str(node.left.value), "optional")
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                helper = getattr(module, node.func.id, None)
                if (
                    inspect.isfunction(helper)
                    and helper.__module__ == getattr(module, "__name__", None)
                    and any(_is_spec(arg) for arg in node.args)
                    and node.func.id not in seen
                ):
                    seen.add(node.func.id)
                    scan(helper)

    scan(factory)
    keys.pop("type", None)
    return dict(sorted(keys.items(), key=lambda item: item[1] != "required"))  # required first


def layer_table_keys(type_name: str) -> dict[str, str]:
    """The keys of a `layers` table of this type, as a user writes them (the model engine hands
    an activation node's `activation` key to the layer as `name`)."""
    keys = layer_keys(LAYERS[type_name])
    if type_name == "activation" and "name" in keys:
        del keys["name"]
        keys = {"activation": "required", **keys}
    return keys


def _is_spec(node: Any) -> bool:
    return isinstance(node, ast.Name) and node.id == "spec"


def _layer_text(type_name: str) -> str:
    keys = layer_table_keys(type_name)
    text = ", ".join(k if v == "required" else f"{k} ({v})" for k, v in keys.items())
    return " ".join(
        p for p in (summary(LAYERS[type_name]), f"keys: {text}" if keys else "no keys") if p
    )


def registry_sections() -> dict[str, dict[str, str]]:
    """Title -> {name: one-line description} for every registry, as registered now."""
    return {
        "activations": {
            name: f"{entry.doc} (init: {entry.init}"
            + "".join(f", {k}={v}" for k, v in entry.params().items())
            + ")"
            for name, entry in ACTIVATIONS.items()
        },
        "layer types": {name: _layer_text(name) for name in LAYERS},
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
    load_plugins(plugin)
    for title, entries in registry_sections().items():
        table = Table(title=title, title_justify="left", show_header=False)
        table.add_column(style="bold")
        table.add_column()
        for name, text in sorted(entries.items()):
            table.add_row(escape(name), escape(text))  # docstrings hold brackets: [[rate, epochs]]
        console.print(table)
