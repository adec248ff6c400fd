"""Run folders and atomic writes.

Every file the project writes goes to a temporary file in the same folder and is then renamed
over the target, so a crash or a kill leaves the previous good file (or none), never half of one.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import numpy as np

from digitlab.errors import ConfigError, DataError

# What a run folder holds, in one place: the README's reference and the CLI's completion read it.
RUN_FILES: dict[str, str] = {
    "config.json": "the resolved config (every key, full names); `--config` reads it back",
    "history.jsonl": "one JSON line per epoch: losses, accuracies, learning rate, batch size, "
    "monitor numbers, seconds",
    "metrics.json": "per split: loss, accuracy with its 95% Wilson interval, n, confusion matrix",
    "model.npz": "weights and layer description (no pickle); `digitlab eval` reads it",
    "predictions.npz": "validation and test labels, predictions, probabilities and the hardest "
    "examples, for reports that never rerun the model",
    "diagnostics.json": "the alarms' findings: kind, severity, message, likely causes, remedies",
    "report.html": "one self-contained page of the results (`digitlab report RUN` redraws it)",
    "plots/": "the report's figures as PNG files",
    "checkpoint.npz": "with --checkpoint-every or after Ctrl-C: what `train --resume` needs",
}


def is_run_folder(path: str | os.PathLike[str]) -> bool:
    """True for a folder a run wrote into (it holds config.json or history.jsonl)."""
    folder = Path(path)
    return (folder / "config.json").is_file() or (folder / "history.jsonl").is_file()


def atomic_write(path: str | os.PathLike[str], write: Callable[[IO[bytes]], None]) -> Path:
    """Call write(file) on a temporary file beside `path`, fsync it, then rename it to `path`."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; give the file a normal mode
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    def write(handle: IO[bytes]) -> None:
        handle.write(data)

    return atomic_write(path, write)


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    return write_bytes(path, text.encode())


def write_json(path: str | os.PathLike[str], data: Any) -> Path:
    return write_text(path, json.dumps(data, indent=2, default=_jsonable) + "\n")


def write_jsonl(path: str | os.PathLike[str], rows: list[dict[str, Any]]) -> Path:
    return write_text(path, "".join(json.dumps(r, default=_jsonable) + "\n" for r in rows))


def write_npz(path: str | os.PathLike[str], arrays: dict[str, Any]) -> Path:
    """Arrays to an .npz file (never pickled), atomically."""

    def write(handle: IO[bytes]) -> None:
        np.savez(handle, allow_pickle=False, **arrays)

    return atomic_write(path, write)


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


HISTORY_FILE = "history.jsonl"


def read_history(folder: Path) -> list[dict[str, Any]]:
    """The per-epoch records of a run folder's history.jsonl: the one reader of that file.

    Blank lines are skipped. A last line that is not valid JSON is a write still under way (the
    run may be training) or cut short by a crash, and is skipped silently; any other line that
    is not a JSON object is a one-line DataError naming the file and the line.
    """
    path = folder / HISTORY_FILE
    if not path.is_file():
        raise DataError(f"{path}: no such file (is {folder} a run folder?)")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: cannot be read ({str(err) or type(err).__name__})") from None
    while lines and not lines[-1].strip():
        lines.pop()
    records = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            if number == len(lines):
                break  # torn: the lines before it are whole
            raise DataError(f"{path}: line {number} is not JSON") from None
        if not isinstance(record, dict):
            raise DataError(f"{path}: line {number}: expected a JSON object")
        records.append(record)
    return records


def new_run_dir(out: str | os.PathLike[str] | None, root: str = "runs") -> Path:
    """`out` if given (created; it must be empty or absent), else runs/<timestamp>[-k]."""
    if out is not None:
        folder = Path(out)
        if folder.exists() and not folder.is_dir():
            raise ConfigError(f"--out {folder}: exists and is not a folder")
        if folder.is_dir() and any(folder.iterdir()):
            raise ConfigError(f"--out {folder}: folder is not empty; pick a new one")
        folder.mkdir(parents=True, exist_ok=True)
        return folder
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    for k in range(1000):
        folder = Path(root) / (stamp if k == 0 else f"{stamp}-{k}")
        try:
            folder.mkdir(parents=True)
            return folder
        except FileExistsError:
            continue
    raise ConfigError(f"could not create a fresh run folder under {root}")
