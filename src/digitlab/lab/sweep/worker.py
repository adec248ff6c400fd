"""Running one trial, inside a worker process or a Ray task.

`attempt` validates a trial's config, runs the trial function with one BLAS thread and turns
whatever happens into an outcome {status, reason, metrics, seconds} (and `error`, the type of a
failure): a failure is recorded, never raised. In an optuna search (adaptive.py) the trial
function also gets `callbacks`, epoch callbacks that report to the study and raise `Pruned` to
stop a trial whose validation loss lags; its outcome is then "pruned". A local trial is
written to a hidden staging folder and renamed into place when complete (`runs.replace_folder`), so
OUT/trials/<id>/ never holds half a trial.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import multiprocessing
import multiprocessing.connection
import os
import shutil
import signal
import sys
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from digitlab.core.hooks import EpochCallback
from digitlab.errors import ConfigError, DigitlabError
from digitlab.lab.config import Config, make_config
from digitlab.lab.experiment import run
from digitlab.lab.runs import (
    HISTORY_FILE,
    STATUS_FILE,
    append_jsonl,
    now_iso,
    read_history,
    replace_folder,
    write_json,
    write_text,
)

TrialFunction = Callable[..., dict[str, Any]]
"""`trial_fn(config, folder)`: train one trial into `folder` and return its metrics (the content
of metrics.json). In optuna mode it is called with `callbacks=[...]` too, epoch callbacks it
passes on to the training (run_trial does)."""


class Pruned(DigitlabError):
    """The study's pruner stopped this trial after an epoch: `record` is that epoch's history
    line, `metrics` what the trial record keeps of it."""

    def __init__(self, message: str, record: dict[str, Any], metrics: dict[str, Any]) -> None:
        super().__init__(message)
        self.record, self.metrics = record, metrics


def run_trial(
    config: Config, folder: Path, callbacks: Sequence[EpochCallback] = ()
) -> dict[str, Any]:
    """The default trial: a complete digitlab run written to `folder`; returns its metrics."""
    return run(config, folder, callbacks=callbacks).metrics


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


def mark_pruned(folder: Path, pruned: Pruned) -> None:
    """Finish the run folder of a pruned trial: the pruning epoch's history line (the pruner
    stops the run in an epoch callback, before the run's own callback writes it) and
    status.json saying "pruned" at that epoch (the run marked itself failed)."""
    try:
        status = json.loads((folder / STATUS_FILE).read_text())
        written = len(read_history(folder))
    except (OSError, ValueError, DigitlabError):
        return  # a trial function that keeps no run folder
    epoch = int(pruned.record.get("epoch", written + 1))
    if written < epoch:
        append_jsonl(folder / HISTORY_FILE, pruned.record)
    if isinstance(status, dict):
        status.update(state="pruned", epoch=epoch, error=str(pruned), updated=now_iso())
        write_json(folder / STATUS_FILE, status)


def attempt(
    values: dict[str, Any],
    folder: Path,
    trial_fn: TrialFunction,
    study: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Validate and run one trial into `folder`: the outcome {status, reason, metrics, seconds}.

    Our own errors (bad config or data, a non-finite loss) give their one-line message; any
    other exception its type and first line, with the traceback in folder/error.txt. With
    `study` (optuna mode), the trial reports each epoch to it and may be pruned.
    """
    start = time.perf_counter()
    outcome: dict[str, Any]
    try:
        with _one_blas_thread():
            config = make_config(values)
            if study is None:
                metrics = trial_fn(config, folder)
            else:
                from digitlab.lab.sweep.adaptive import pruning_callbacks

                metrics = trial_fn(config, folder, callbacks=pruning_callbacks(study))
            outcome = {"status": "done", "reason": None, "metrics": key_metrics(metrics)}
    except Pruned as pruned:
        outcome = {"status": "pruned", "reason": str(pruned), "metrics": pruned.metrics}
        mark_pruned(folder, pruned)
    except DigitlabError as err:
        outcome = {
            "status": "failed",
            "reason": first_line(str(err)),
            "metrics": {},
            "error": type(err).__name__,
        }
        write_text(folder / "error.txt", f"{err}\n")
    except (Exception, SystemExit) as err:  # SystemExit too: a trial must not end its worker
        outcome = {
            "status": "failed",
            "reason": f"{type(err).__name__}: {first_line(str(err))}",
            "metrics": {},
            "error": type(err).__name__,
        }
        write_text(folder / "error.txt", traceback.format_exc())
    outcome["seconds"] = round(time.perf_counter() - start, 3)
    return outcome


def staging_folder(trials_dir: Path, trial: str) -> Path:
    staging = trials_dir / f".{trial}.{os.getpid()}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    return staging


def _local_job(
    values: dict[str, Any],
    trials_dir: str,
    trial: str,
    trial_fn: TrialFunction,
    study: dict[str, Any] | None = None,
) -> dict[str, Any]:
    staging = staging_folder(Path(trials_dir), trial)
    outcome = attempt(values, staging, trial_fn, study)
    replace_folder(staging, Path(trials_dir) / trial)
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
            values, trials_dir, trial, study = job
            conn.send(_local_job(values, trials_dir, trial, trial_fn, study))
        except (BrokenPipeError, OSError):
            return
