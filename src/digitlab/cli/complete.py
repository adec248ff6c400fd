"""Shell completion of run folders, for the arguments that take one (RUN, MODEL, --resume).

Commands, options and registry names complete through click itself (see options.py); enable
it with `eval "$(_DIGITLAB_COMPLETE=bash_source digitlab)"` (zsh_source, fish_source too).
"""

from __future__ import annotations

from pathlib import Path

import click
from click.shell_completion import CompletionItem

from digitlab.lab.runs import is_run_folder


def run_folders(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    """Run folders whose path starts with `incomplete`, or that sit one level inside such a
    folder (runs/<time>); folders are offered for the shell to descend when none is found."""
    prefix = incomplete[: incomplete.rfind("/") + 1]  # up to and including the last slash
    parent = Path(prefix or ".")
    if not parent.is_dir():
        return []
    tail = incomplete[len(prefix) :]
    found: list[str] = []
    for child in sorted(parent.iterdir()):
        if not child.is_dir() or not child.name.startswith(tail):
            continue
        if child.name.startswith(".") and not tail.startswith("."):
            continue
        if is_run_folder(child):
            found.append(prefix + child.name)
        else:
            found += [
                f"{prefix}{child.name}/{inner.name}"
                for inner in sorted(child.iterdir())
                if inner.is_dir() and is_run_folder(inner)
            ]
    if not found:
        return [CompletionItem(incomplete, type="dir")]
    return [CompletionItem(path) for path in found]
