"""Run folders, atomic writes and the live files of a run in progress.

Every file the project writes goes to a temporary file in the same folder and is then renamed
over the target, so a crash or a kill leaves the previous good file (or none), never half of one.
The one exception is history.jsonl while a run trains: each epoch appends one whole line,
flushed and fsynced, and readers skip a torn last line. Beside it status.json (rewritten
atomically) says running / finished / stopped / failed, with the pid, epoch e of E, start and
last-update times and the last error line; a reader shows `died` for a run whose process is gone.
A write that fails (a full disk, a file-size limit, a folder deleted or made read-only) is one
StorageError line naming the file, and leaves the previous file as it was. While a process
writes a run folder it holds RUN/.digitlab.lock (`writing`), so two never mix their files.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import socket
import tempfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import numpy as np

from digitlab import fast
from digitlab.errors import ConfigError, DataError, StorageError

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
    "status.json": "running / finished / stopped / failed (pruned: a trial an optuna sweep "
    "stopped), pid, host, whether the compiled kernels were on, epoch e of E, start and last "
    "update, the last error line; rewritten as the run trains",
    "report.html": "one self-contained page of the results (`digitlab report RUN` redraws it)",
    "plots/": "the report's figures as PNG files",
    "checkpoint.npz": "with --checkpoint-every or after Ctrl-C: what `train --resume` needs",
    "model_best.npz": "with --save-best-model: the model of the lowest validation loss (its epoch "
    "in the file's extra); predictions.npz then holds both models' per-example validation losses",
}


def is_run_folder(path: str | os.PathLike[str]) -> bool:
    """True for a folder a run wrote into (it holds config.json or history.jsonl)."""
    folder = Path(path)
    return (folder / "config.json").is_file() or (folder / "history.jsonl").is_file()


def storage_error(path: Path, error: OSError) -> StorageError:
    """A one-line StorageError for a write to `path` that failed with `error`."""
    reason = _REASONS.get(error.errno or 0) or error.strerror or str(error) or "write failed"
    if error.errno in (errno.ENOENT, errno.ENOTDIR) and not path.parent.is_dir():
        reason = f"its folder {path.parent} is gone"
    kept = "; the previous file is unchanged" if path.is_file() else ""
    return StorageError(f"{path}: cannot write: {reason}{kept}")


_REASONS = {
    errno.ENOSPC: "no space left on the device",
    errno.EFBIG: "file too large (over the file-size limit, ulimit -f)",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
}


def atomic_write(
    path: str | os.PathLike[str], write: Callable[[IO[bytes]], None], sync: bool = True
) -> Path:
    """Call write(file) on a temporary file beside `path`, fsync it (unless not `sync`), then
    rename it to `path`.

    A failure (a full disk, a file-size limit, a folder deleted or made read-only) leaves the
    previous file as it was and no temporary file, and is a one-line StorageError.
    """
    target = Path(path)
    tmp: str | None = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; give the file a normal mode
            write(handle)
            handle.flush()
            if sync:
                os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException as error:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        if isinstance(error, OSError):
            raise storage_error(target, error) from None
        raise
    return target


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_bytes(path: str | os.PathLike[str], data: bytes, sync: bool = True) -> Path:
    def write(handle: IO[bytes]) -> None:
        handle.write(data)

    return atomic_write(path, write, sync)


def write_text(path: str | os.PathLike[str], text: str, sync: bool = True) -> Path:
    return write_bytes(path, text.encode(), sync)


def write_json(path: str | os.PathLike[str], data: Any, sync: bool = True) -> Path:
    return write_text(path, json.dumps(data, indent=2, default=_jsonable) + "\n", sync)


def write_jsonl(path: str | os.PathLike[str], rows: list[dict[str, Any]]) -> Path:
    return write_text(path, "".join(json.dumps(r, default=_jsonable) + "\n" for r in rows))


def write_npz(path: str | os.PathLike[str], arrays: dict[str, Any]) -> Path:
    """Arrays to an .npz file (never pickled), atomically."""

    def write(handle: IO[bytes]) -> None:
        np.savez(handle, allow_pickle=False, **arrays)

    return atomic_write(path, write)


def replace_folder(staging: Path, target: Path) -> None:
    """Put the finished folder `staging` in place of `target` (and of any older `target`) by
    renames only, so a reader sees the old folder or the new one, never half of one."""
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.{os.getpid()}.old")
        shutil.rmtree(old, ignore_errors=True)
        target.rename(old)
    staging.rename(target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


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
    try:
        if out is not None:
            folder = Path(out)
            if folder.is_symlink() and not folder.exists():
                raise ConfigError(f"--out {folder}: a broken symbolic link or a symlink loop")
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
    except OSError as error:
        reason = _REASONS.get(error.errno or 0) or error.strerror or str(error)
        raise StorageError(f"--out {out or root}: cannot create the run folder: {reason}") from None
    raise ConfigError(f"could not create a fresh run folder under {root}")


LOCK_FILE = ".digitlab.lock"


@contextlib.contextmanager
def writing(folder: Path, fresh: bool) -> Iterator[None]:
    """Hold FOLDER/.digitlab.lock while this process writes the run folder, so that two
    processes never mix their files in one folder: for a fresh run the file is created with
    O_EXCL (of two `train --out` racing, the second gets one line), and it is flock'ed (a
    `--resume` beside a live run gets one line; a killed run's lock dies with it). Removed
    when done."""
    lock = folder / LOCK_FILE
    busy = f"{folder}: another digitlab process is writing to this run folder"
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | (os.O_EXCL if fresh else 0), 0o644)
    except FileExistsError:
        raise ConfigError(busy) from None
    except OSError as error:
        raise storage_error(lock, error) from None
    try:
        try:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except ImportError:  # not POSIX: O_EXCL alone
            pass
        except BlockingIOError:
            raise ConfigError(busy) from None
        try:
            yield
        finally:
            with contextlib.suppress(OSError):
                os.unlink(lock)
    finally:
        os.close(fd)


STATUS_FILE = "status.json"
STATES = ("running", "finished", "stopped", "failed", "died", "pruned")
FOREIGN_STALE = 24 * 3600.0  # seconds without an update before another host's run counts as died


def now_iso() -> str:
    """The current time in ISO 8601, UTC, to the millisecond."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def append_jsonl(path: str | os.PathLike[str], record: dict[str, Any], sync: bool = True) -> None:
    """Append one whole JSON line to `path`, flushed and fsynced unless not `sync` (readers skip
    a torn one)."""
    append_line(Path(path), (json.dumps(record, default=_jsonable) + "\n").encode(), sync)


def append_line(path: Path, line: bytes, sync: bool = True) -> None:
    """Append `line` whole, fsynced unless not `sync`; on a failure (a full disk) the file is cut
    back to its previous length, so it is left as it was, and the error is one line."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        try:
            size = os.lseek(fd, 0, os.SEEK_END)
            try:
                view = memoryview(line)
                while view:  # unbuffered: nothing is left to be written later, at close
                    view = view[os.write(fd, view) :]
                if sync:
                    os.fsync(fd)
            except OSError:
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, size)
                raise
        finally:
            os.close(fd)
    except OSError as error:
        raise storage_error(path, error) from None


class LiveRun:
    """Keeps a training run's history.jsonl and status.json current, epoch by epoch.

    `start` (re)writes the history so far, `epoch` is an epoch callback appending one line,
    `mark` records its state (and how it ended). The status file is tiny and rewritten atomically.

    An epoch's two writes are not fsynced: readers (the studio, `digitlab report`) see them at
    once, a killed process keeps them, and a run's end writes its history again, fsynced; only
    a machine that crashes mid-run can lose the last lines. Two fsyncs an epoch took 0.65 ms,
    9% of an 8x8-digits epoch, and more when two sweep workers wait for each other's.
    """

    def __init__(self, folder: Path, epochs: int) -> None:
        self.folder = folder
        self.status: dict[str, Any] = {
            "state": "running",
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "compiled": fast.enabled(),  # the optional numba kernels on (the numbers are the same)
            "epoch": 0,
            "epochs": epochs,
            "started": now_iso(),
            "updated": now_iso(),
            "error": None,
        }

    def start(self, records: list[dict[str, Any]], epochs: int | None = None) -> None:
        """Write the history so far (empty for a fresh run, restored for a resumed one)."""
        write_jsonl(self.folder / HISTORY_FILE, records)
        fields: dict[str, Any] = {"epoch": len(records)}
        if epochs:
            fields["epochs"] = epochs
        self._update(**fields)

    def epoch(self, record: dict[str, Any], model: Any = None) -> None:
        append_jsonl(self.folder / HISTORY_FILE, record, sync=False)
        self._update(epoch=int(record.get("epoch", self.status["epoch"] + 1)), sync=False)

    def mark(self, state: str, error: BaseException | str | None = None) -> None:
        """Record the run's state; when it ended with an error that may be a full disk or a
        vanished folder, so the status is then written if possible (the error says more)."""
        text = str(error).strip() if error is not None else ""
        line = text.splitlines()[-1] if text else (type(error).__name__ if error else None)
        if error is None:
            self._update(state=state, error=line)
            return
        with contextlib.suppress(StorageError):
            self._update(state=state, error=line)

    def remove(self) -> None:
        """Delete what `start` wrote (and config.json): a run that never began leaves nothing."""
        for name in (STATUS_FILE, HISTORY_FILE, "config.json"):
            with contextlib.suppress(OSError):
                (self.folder / name).unlink(missing_ok=True)

    def _update(self, sync: bool = True, **fields: Any) -> None:
        self.status.update(fields, updated=now_iso())
        write_json(self.folder / STATUS_FILE, self.status, sync)


def process_alive(pid: int) -> bool:
    """Whether process `pid` exists on this host and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: it exists
    except (OverflowError, ValueError):
        return False
    try:  # a killed child its parent has not reaped yet is a zombie: dead for our purposes
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rpartition(")")[2].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def read_status(folder: Path) -> dict[str, Any] | None:
    """status.json of a run folder with `state` corrected to `died` when its process is gone,
    or None when there is none (a run written before live status, or not a run)."""
    try:
        status = json.loads((folder / STATUS_FILE).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(status, dict) or status.get("state") not in STATES:
        return None
    if status["state"] == "running":
        pid, host = status.get("pid"), status.get("host")
        if host in (None, socket.gethostname()):
            if not isinstance(pid, int) or not process_alive(pid):
                status["state"] = "died"
        else:
            try:
                updated = datetime.fromisoformat(status["updated"])
                if (datetime.now(UTC) - updated).total_seconds() > FOREIGN_STALE:
                    status["state"] = "died"
            except (KeyError, TypeError, ValueError):
                pass
    return status
