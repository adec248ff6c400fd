"""Executors: run a list of trials and report each outcome as it arrives.

`run_local` keeps N spawned worker processes (one BLAS thread each, so N workers use N cores),
each running one trial at a time; a worker that dies (a crash, SIGKILL, the out-of-memory
killer) fails only its own trial ("worker died: ...") and a fresh worker takes its place.
Ctrl-C stops the workers. `run_ray` runs each trial as a Ray task and brings its files back.
Both call `report(trial, outcome)` in the parent, in the order trials finish. Both take a list
of trials, or a `Feed` that hands out trials as workers come free (an optuna search asks its
study for the next trial only then, so each trial learns from all that finished before it).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.connection
import os
import signal
import tempfile
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from digitlab.errors import ConfigError
from digitlab.lab.runs import replace_folder, write_text
from digitlab.lab.sweep.sweepfile import Trial
from digitlab.lab.sweep.worker import (
    TrialFunction,
    attempt,
    first_line,
    staging_folder,
    worker_main,
)

Report = Callable[[Trial, dict[str, Any]], None]
"""Called in the parent with each trial and its outcome {status, reason, metrics, seconds}."""


class Feed(Protocol):
    """Hands out trials one at a time as workers come free."""

    def take(self) -> Trial | None:
        """The next trial to run, or None when there is none to run now."""
        ...

    def give_back(self, trial: Trial) -> None:
        """A trial taken but not started (its worker died while idle): hand it out again."""
        ...

    def more(self) -> bool:
        """Whether `take` can give a trial now."""
        ...


class ListFeed:
    """A fixed list of trials, in order."""

    def __init__(self, trials: Sequence[Trial]) -> None:
        self.queue = deque(trials)

    def take(self) -> Trial | None:
        return self.queue.popleft() if self.queue else None

    def give_back(self, trial: Trial) -> None:
        self.queue.appendleft(trial)

    def more(self) -> bool:
        return bool(self.queue)


def _feed(trials: Sequence[Trial] | Feed) -> Feed:
    return ListFeed(trials) if isinstance(trials, Sequence) else trials


def _job(trial: Trial, trials_dir: Path) -> tuple[Any, ...]:
    return (trial.values, str(trials_dir), trial.id, trial.study)


def _store_failure(trials_dir: Path, trial: str, reason: str) -> None:
    """error.txt for a trial whose worker died (the worker could not write it itself)."""
    staging = staging_folder(trials_dir, trial)
    write_text(staging / "error.txt", reason + "\n")
    replace_folder(staging, trials_dir / trial)


def _death_reason(exitcode: int | None, while_starting: bool) -> str:
    if exitcode is not None and exitcode < 0:
        name = signal.Signals(-exitcode).name
        hint = " (out of memory, or killed)" if -exitcode == signal.SIGKILL else ""
        return f"worker died: killed by {name}{hint}"
    hint = ""
    if while_starting:  # the usual cause: spawn re-runs a script that has no main guard
        hint = (
            " while starting (a Python script that runs a sweep needs "
            "`if __name__ == '__main__':` around it)"
        )
    return f"worker died: exit code {exitcode}{hint}"


@dataclass
class _Slot:
    process: multiprocessing.process.BaseProcess
    conn: multiprocessing.connection.Connection
    trial: Trial | None = None
    finished: int = 0  # trials this worker has reported


def _start_worker(ctx: Any, trial_fn: TrialFunction) -> _Slot:
    parent_end, child_end = ctx.Pipe()
    process = ctx.Process(target=worker_main, args=(child_end, trial_fn), daemon=True)
    # An ignored SIGINT survives exec, so the child ignores Ctrl-C from its very first
    # instruction (before worker_main can say so); the parent's handler is back at once.
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if main else None
    try:
        process.start()
    finally:
        if main:
            signal.signal(signal.SIGINT, previous)
    child_end.close()  # so the parent sees EOF when the child dies
    return _Slot(process, parent_end)


def _stop(slots: list[_Slot]) -> None:
    for slot in slots:
        if slot.trial is None and slot.process.is_alive():
            with contextlib.suppress(OSError):
                slot.conn.send(None)
        else:
            slot.process.terminate()
    for slot in slots:
        slot.process.join(timeout=5)
        if slot.process.is_alive():
            slot.process.kill()
            slot.process.join()
        slot.conn.close()


def run_local(
    trials: Sequence[Trial] | Feed,
    trials_dir: Path,
    workers: int,
    trial_fn: TrialFunction,
    report: Report,
) -> None:
    """Run trials on `workers` local processes, each running one trial at a time; a worker
    that dies fails its trial and is replaced."""
    ctx = multiprocessing.get_context("spawn")  # no inherited threads or locks; portable
    feed = _feed(trials)
    slots: list[_Slot] = []
    try:
        while feed.more() or any(s.trial is not None for s in slots):
            for slot in slots:
                if slot.trial is None and feed.more() and (trial := feed.take()) is not None:
                    try:
                        slot.conn.send(_job(trial, trials_dir))
                        slot.trial = trial
                    except OSError:  # died while idle: its replacement takes the trial
                        feed.give_back(trial)
                        slot.process.join()
            slots = [s for s in slots if s.trial is not None or s.process.is_alive()]
            while len(slots) < workers and feed.more() and (trial := feed.take()) is not None:
                slots.append(_start_worker(ctx, trial_fn))
                slots[-1].conn.send(_job(trial, trials_dir))
                slots[-1].trial = trial
            busy = [s for s in slots if s.trial is not None]
            if not busy:
                break  # nothing running and nothing to hand out
            multiprocessing.connection.wait(
                [s.conn for s in busy] + [s.process.sentinel for s in busy]
            )
            for slot in busy:
                assert slot.trial is not None
                outcome: dict[str, Any] | None = None
                if slot.conn.poll():
                    with contextlib.suppress(EOFError, OSError):
                        outcome = slot.conn.recv()
                elif slot.process.is_alive():
                    continue
                if outcome is None:  # the pipe closed or the process ended with no result
                    slot.process.join()
                    reason = _death_reason(slot.process.exitcode, slot.finished == 0)
                    _store_failure(trials_dir, slot.trial.id, reason)
                    outcome = {"status": "failed", "reason": reason, "metrics": {}, "seconds": None}
                    slot.conn.close()
                    slots.remove(slot)
                trial, slot.trial = slot.trial, None
                slot.finished += 1
                report(trial, outcome)
    finally:
        _stop(slots)


def _ray_job(
    values: dict[str, Any], trial_fn: TrialFunction, study: dict[str, Any] | None = None
) -> tuple[dict[str, Any], dict[str, bytes]]:
    """A Ray task: run the trial in a temporary folder on whichever node, return its files."""
    with tempfile.TemporaryDirectory(prefix="digitlab-trial-") as tmp:
        outcome = attempt(values, Path(tmp), trial_fn, study)
        files = {
            p.relative_to(tmp).as_posix(): p.read_bytes()
            for p in Path(tmp).rglob("*")
            if p.is_file()
        }
    return outcome, files


def run_ray(
    trials: Sequence[Trial] | Feed,
    trials_dir: Path,
    address: str,
    workers: int | None,
    trial_fn: TrialFunction,
    report: Report,
) -> None:
    """Run trials as Ray tasks (one CPU each) on the cluster at `address`, or on a local Ray
    instance started here for `address == "local"` (with `workers` CPUs if given). The files
    come back to this machine, so the nodes need digitlab installed but no shared disk (an
    optuna search excepted: its tasks report to the study's journal file in the sweep folder).
    A feed has at most as many tasks in flight as there are CPUs (`workers`, or the cluster's)."""
    try:
        import ray
        import ray.exceptions
    except ImportError:
        raise ConfigError(
            "--ray needs Ray, which is not installed: pip install 'ray[default]'"
        ) from None
    started = not ray.is_initialized()
    if started:
        try:
            if address == "local":
                ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
            else:
                ray.init(address=address, log_to_driver=False)
        except Exception as err:  # Ray raises several types (ConnectionError, ValueError, ...)
            where = "start a local Ray instance" if address == "local" else f"reach {address}"
            raise ConfigError(
                f"--ray: cannot {where}: {type(err).__name__}: {first_line(str(err))}"
            ) from None
    task = ray.remote(num_cpus=1, max_retries=0)(_ray_job)
    feed = _feed(trials)
    if isinstance(trials, Sequence):
        limit = len(trials)
    else:
        limit = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
    pending: dict[Any, Trial] = {}
    try:
        while True:
            while len(pending) < limit and feed.more() and (trial := feed.take()) is not None:
                pending[task.remote(trial.values, trial_fn, trial.study)] = trial
            if not pending:
                break
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                trial = pending.pop(ref)
                try:
                    outcome, files = ray.get(ref)
                except ray.exceptions.RayError as err:
                    died = (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError)
                    prefix = "worker died: " if isinstance(err, died) else ""
                    reason = f"{prefix}{type(err).__name__}: {first_line(str(err))}"
                    _store_failure(trials_dir, trial.id, reason)
                    report(
                        trial,
                        {"status": "failed", "reason": reason, "metrics": {}, "seconds": None},
                    )
                    continue
                staging = staging_folder(trials_dir, trial.id)
                for name, data in files.items():
                    (staging / name).parent.mkdir(parents=True, exist_ok=True)
                    (staging / name).write_bytes(data)  # atomic as a whole by _install
                replace_folder(staging, trials_dir / trial.id)
                report(trial, outcome)
    finally:
        for ref in pending:
            with contextlib.suppress(Exception):
                ray.cancel(ref, force=True)
        if started:
            ray.shutdown()


def default_workers() -> int:
    """The CPUs this process may use."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1
