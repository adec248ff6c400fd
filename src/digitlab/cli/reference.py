"""The README's reference section, generated from the code: `python scripts/reference.py`.

Each table reads its one source: the `train` command's flags (generated from the Config, see
options.py), the Config model's fields, the layer registry (the keys each layer factory reads
from its layer table), the sweep-file keys the sweep parser accepts, and lab/runs.py's
RUN_FILES. tests/cli/test_reference.py fails when the README's copy is out of date.
"""

from __future__ import annotations

import re
import types
from typing import Any, Literal, Union, get_args, get_origin

import click

from digitlab.cli.registries import layer_table_keys
from digitlab.cli.train import train
from digitlab.core.layers import LAYERS
from digitlab.lab.config import REGISTRIES, Config, Entry, aliases
from digitlab.lab.runs import RUN_FILES
from digitlab.lab.sweep import SWEEP_KEYS

START = "<!-- reference:start -->"
END = "<!-- reference:end -->"
COMMAND = "python scripts/reference.py"

# Keys every layer table may carry, read by the model engine (core/model.py), not the layer.
NODE_KEYS = {
    "type": "the layer type (one of the rows below)",
    "name": "names the node; the node named output is the model's output",
    "inputs": 'names of the nodes it reads ("input" is the data) [the previous node]',
}


def _cell(text: Any) -> str:
    """Table-safe markdown: no pipes, newlines or tags (`runs/<time>` would vanish as one)."""
    text = str(text).replace("|", "\\|").replace("\n", " ")
    return text.replace("<", "&lt;").replace(">", "&gt;")


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def train_flags() -> list[list[str]]:
    """Flag, default, help of every `digitlab train` option, as `digitlab train --help` has them."""
    ctx = click.Context(train, info_name="train")
    rows = []
    for param in train.get_params(ctx):
        record = param.get_help_record(ctx)
        if not isinstance(param, click.Option) or record is None or "--help" in param.opts:
            continue
        flags = " / ".join(f"`{f}`" for f in [*param.opts, *param.secondary_opts])
        metavar = param.make_metavar(ctx) if not param.is_flag else ""
        shown = re.search(r"\s*\[default: (.*)\]$", record[1])
        help_text = (record[1][: shown.start()] if shown else record[1]).strip()
        rows.append(
            [flags + (f" {metavar}" if metavar else ""), shown[1] if shown else "", help_text]
        )
    return rows


def _type_text(annotation: Any) -> str:
    if get_origin(annotation) in (Union, types.UnionType):
        inner = [a for a in get_args(annotation) if a is not type(None)]
        return " or ".join(_type_text(a) for a in inner) + " (optional)"
    if get_origin(annotation) is Literal:
        return " or ".join(f'"{a}"' for a in get_args(annotation))
    if annotation is Entry:
        return 'name or { name = "...", param = value }'
    if annotation == list[tuple[int, Entry]]:
        return "list of [epochs, activation name or { name = ..., param = value }]"
    if isinstance(annotation, type) and get_origin(annotation) is None:
        return annotation.__name__
    return str(annotation).replace("typing.", "")


def config_keys() -> list[list[str]]:
    """Key (older names in brackets), type, default and description of every Config field."""
    rows = []
    for name, field in Config.model_fields.items():
        default = field.get_default(call_default_factory=True)
        if isinstance(default, Entry):
            default = default.name
        elif isinstance(default, bool):
            default = str(default).lower()  # as TOML writes it
        older = aliases(field, name)[1:]
        key = f"`{name}`" + (f" (also {', '.join(f'`{a}`' for a in older)})" if older else "")
        kind = _type_text(field.annotation)
        if name in REGISTRIES:
            kind += f" ({REGISTRIES[name][0]} registry)"
        rows.append([key, kind, "" if default is None else str(default), field.description or ""])
    return rows


def layer_rows() -> list[list[str]]:
    rows = [["(every layer)", f"`{key}`", text] for key, text in NODE_KEYS.items()]
    for name in sorted(LAYERS):
        for key, text in layer_table_keys(name).items() or [("(no keys)", "")]:
            rows.append([f"`{name}`", f"`{key}`" if key[0] != "(" else key, text])
    return rows


def reference_markdown() -> str:
    """The whole reference section's body (what sits between the README's markers)."""
    parts = [
        f"Generated from the code by `{COMMAND}`; a test fails when it is out of date.",
        "### `digitlab train` flags\n\nEvery config key below is also a flag (`--batch-size`);"
        " flags override a `--config` file.\n\n"
        + _table(["flag", "default", "meaning"], train_flags()),
        "### Config keys (TOML files, saved `config.json`)\n\n"
        + _table(["key", "type", "default", "meaning"], config_keys()),
        "### `layers` keys per layer type\n\n"
        + _table(["layer type", "key", "required or default"], layer_rows()),
        "### Sweep-file keys\n\n"
        + _table(["key", "meaning"], [[f"`{k}`", SWEEP_KEYS[k]] for k in SWEEP_KEYS]),
        "### Run-folder files\n\n"
        + _table(["file", "what it holds"], [[f"`{k}`", v] for k, v in RUN_FILES.items()]),
    ]
    return "\n\n".join(parts)


def with_reference(readme: str) -> str:
    """`readme` with the text between the reference markers replaced by the generated one."""
    if START not in readme or END not in readme:
        raise ValueError(f"README has no {START} ... {END} markers")
    head, rest = readme.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{reference_markdown()}\n{END}{tail}"
