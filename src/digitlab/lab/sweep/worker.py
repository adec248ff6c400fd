"""Running one trial, inside a worker process or a Ray task.

`attempt` validates a trial's config, runs the trial function with one BLAS thread and turns
whatever happens into an outcome {status, reason, metrics, seconds}: a failure is recorded,
never raised. A local trial is written to a hidden staging folder and renamed into place when
complete (`install`), so OUT/trials/<id>/ never holds half a trial.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import multiprocessing.connection
import os
import shutil
import signal
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from digitlab.errors import ConfigError, DigitlabError
from digitlab.lab.config import Config, make_config
from digitlab.lab.experiment import run
from digitlab.lab.runs import write_text

TrialFunction = Callable[[Config, Path], dict[str, Any]]
"""Train one trial into `folder` and return its metrics (the content of metrics.json)."""


def run_trial(config: Config, folder: Path) -> dict[str, Any]:
    """The default trial: a complete digitlab run written to `folder`; returns its metrics."""
    return run(config, folder).metrics


@contextlib.contextmanager
def _one_blas_thread() -> Iterator[None]:
    """Limit BLAS (and OpenMP) to one thread, so N workers share N cores without contention."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # the sweep warns once in the parent; run with the default threads
        yield
        return
    with threadpool_limits(limits=1):
        yield


def key_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    """What a trial record keeps: accuracy and loss per split, and n and the 95% interval for
    validation and test."""
    out: dict[str, Any] = {}
    for split in ("train", "val", "test"):
        for key in ("accuracy", "loss"):
            if f"{split}_{key}" in metrics:
                out[f"{split}_{key}"] = float(metrics[f"{split}_{key}"])
        part = metrics.get(split)
        if split != "train" and isinstance(part, dict):
            if "n" in part:
                out[f"{split}_n"] = int(part["n"])
            if "accuracy_ci95" in part:
                out[f"{split}_ci95"] = [float(v) for v in part["accuracy_ci95"]]
    for needed in ("val_accuracy", "test_accuracy"):
        if needed not in out:
            raise ConfigError(f"the trial's metrics have no {needed}")
    return out


def first_line(text: str) -> str:
    return (text.strip().splitlines() or [""])[0]


def attempt(values: dict[str, Any], folder: Path, trial_fn: TrialFunction) -> dict[str, Any]:
    """Validate and run one trial into `folder`: the outcome {status, reason, metrics, seconds}.

    Our own errors (bad config or data, a non-finite loss) give their one-line message; any
    other exception its type and first line, with the traceback in folder/error.txt.
    """
    start = time.perf_counter()
    outcome: dict[str, Any]
    try:
        with _one_blas_thread():
            config = make_config(values)
            outcome = {
                "status": "done",
                "reason": None,
                "metrics": key_metrics(trial_fn(config, folder)),
            }
    except DigitlabError as err:
        outcome = {"status": "failed", "reason": first_line(str(err)), "metrics": {}}
        write_text(folder / "error.txt", f"{err}\n")
    except (Exception, SystemExit) as err:  # SystemExit too: a trial must not end its worker
        outcome = {
            "status": "failed",
            "reason": f"{type(err).__name__}: {first_line(str(err))}",
            "metrics": {},
        }
        write_text(folder / "error.txt", traceback.format_exc())
    outcome["seconds"] = round(time.perf_counter() - start, 3)
    return outcome


def install(staging: Path, final: Path) -> None:
    """Put a finished trial folder in place of any older one, by renames only."""
    old = None
    if final.exists():
        old = final.with_name(f".{final.name}.{os.getpid()}.old")
        shutil.rmtree(old, ignore_errors=True)
        final.rename(old)
    staging.rename(final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def staging_folder(trials_dir: Path, trial: str) -> Path:
    staging = trials_dir / f".{trial}.{os.getpid()}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    return staging


def _local_job(
    values: dict[str, Any], trials_dir: str, trial: str, trial_fn: TrialFunction
) -> dict[str, Any]:
    staging = staging_folder(Path(trials_dir), trial)
    outcome = attempt(values, staging, trial_fn)
    install(staging, Path(trials_dir) / trial)
    return outcome


def _die_with_parent() -> None:
    """Ask Linux to SIGKILL this worker when the sweep that started it dies (even by SIGKILL),
    so that no orphan keeps running a trial that the sweep, rerun, runs again beside it."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # 1: PR_SET_PDEATHSIG
    parent = multiprocessing.parent_process()
    if parent is not None and os.getppid() != parent.pid:  # it died before the request
        os._exit(1)


def worker_main(conn: multiprocessing.connection.Connection, trial_fn: TrialFunction) -> None:
    """A local worker: run the jobs the parent sends, one at a time, until told to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    _die_with_parent()
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):  # the parent is gone
            return
        if job is None:
            return
        try:
            values, trials_dir, trial = job
            conn.send(_local_job(values, trials_dir, trial, trial_fn))
        except (BrokenPipeError, OSError):
            return
