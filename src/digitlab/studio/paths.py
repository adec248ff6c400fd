"""Run ids and the safe path resolver: the only way the studio turns a request into a path.

A run id is `"{k}/{relative/path}"`: k the index of a served folder, then the run folder's path
relative to it with POSIX separators (`"0/20261129-114500"`, `"1/lr/trials/lr=0.1_s0_ab12"`).
`resolve_run` turns an id back into a folder and raises NotFound for anything that would leave
the served folders: `..`, absolute paths, backslashes, NUL bytes, or a symlink pointing out (the
path is resolved and must still lie inside the served folder). Query strings are decoded once
by the server, so an encoded `%2e%2e` arrives here as `..`; a doubly encoded one is a literal
name that does not exist.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from digitlab.errors import DigitlabError

MAX_ID = 1000  # characters: longer ids are refused before touching the disk
FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,120}$")


class NotFound(DigitlabError):
    """The id or file names nothing inside the served folders (HTTP 404)."""


def run_id(folders: Sequence[Path], k: int, folder: Path) -> str:
    """The id of run folder `folder` found under served folder number k."""
    relative = folder.relative_to(folders[k]).as_posix()
    return f"{k}/{'' if relative == '.' else relative}"


def _inside(path: Path, root: Path) -> bool:
    return path == root or path.is_relative_to(root)


def resolve_run(folders: Sequence[Path], run: str | None) -> Path:
    """The run (or sweep) folder that `run` names, resolved, or NotFound."""
    if not run or len(run) > MAX_ID:
        raise NotFound("no run given" if not run else "run id too long")
    head, sep, relative = run.partition("/")
    if not sep or not head.isdigit() or int(head) >= len(folders):
        raise NotFound(f"no such run: {run}")
    if "\\" in relative or "\x00" in relative or relative.startswith("/"):
        raise NotFound(f"no such run: {run}")
    parts = [p for p in relative.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise NotFound(f"no such run: {run}")
    root = Path(folders[int(head)]).resolve()
    try:
        folder = root.joinpath(*parts).resolve(strict=True)
    except (OSError, RuntimeError):  # missing, or a symlink loop
        raise NotFound(f"no such run: {run}") from None
    if not _inside(folder, root) or not folder.is_dir():
        raise NotFound(f"no such run: {run}")
    return folder


def resolve_file(folders: Sequence[Path], run: str | None, subfolder: str, name: str) -> Path:
    """A plain file `subfolder/name` of a run (e.g. plots/loss.png), resolved, or NotFound."""
    folder = resolve_run(folders, run)
    if not FILE_NAME.match(name) or ".." in name:
        raise NotFound(f"no such file: {name}")
    try:
        path = (folder / subfolder / name).resolve(strict=True)
    except (OSError, RuntimeError):
        raise NotFound(f"no such file: {name}") from None
    if not _inside(path, folder) or not path.is_file():
        raise NotFound(f"no such file: {name}")
    return path
