"""Parameter sweeps: configs times seeds, run in parallel, recorded as they finish, resumable.

    digitlab sweep SWEEP.toml [--out DIR] [--workers N] [--ray ADDRESS|local] [--retry-failed]

A sweep file is TOML (recipes/sweeps/lr_activation.toml is a complete example):

    name = "lr-x-activation"        # names the output folder sweeps/<name> [the file's stem]
    seeds = [0, 1, 2]               # or an int N meaning seeds 0..N-1 [1]
    mode = "grid"                   # or "random": `samples` variants drawn from the grid
    # samples = 4                   # (random mode) how many variants, without repetition
    # sample_seed = 0               # (random mode) seeds the draw, so reruns draw the same
    [base]                          # any `digitlab train` config keys, shared by every trial
    data = "digits"
    epochs = 20
    [grid]                          # option -> list of values; every combination is a variant
    lr = [0.01, 0.1, 1.0]
    activation = ["relu", "sigmoid", { name = "leaky_relu", slope = 0.1 }]

Options that go together are listed instead of crossed: no [grid], and one table per variant,
whose keys override [base] for that variant:

    [[variants]]
    activation = "sigmoid"
    lr = 1.0
    [[variants]]
    activation = "relu"
    lr = 0.1

A trial is one variant with one seed. Its id is readable and stable: the varied options, the
seed and a hash of (base, options, seed), e.g. `lr=0.1,activation=relu_s2_5f1c0e9a2b`; its run
folder is OUT/trials/<id>/ (config.json, history.jsonl, metrics.json, predictions.npz,
model.npz; error.txt instead for a failed trial). Changing [base] therefore gives new trials;
records of the old ones stay in the log and are ignored.

Every trial's config is validated before anything runs. Trials run in worker processes (one
BLAS thread each, so N workers use N cores) or as Ray tasks (`--ray ADDRESS|local`). As each
finishes, one JSON line is appended (and fsynced) to OUT/trials.jsonl: id, options, seed,
status (done|failed), reason, key metrics, seconds. A rerun skips trials whose latest record
is done; failed ones are retried only with --retry-failed. A torn last line (a crash during a
write) is ignored and cut off before the next append. A worker that dies (a crash, SIGKILL,
the out-of-memory killer) fails only its own trial ("worker died: ..."); a fresh worker takes
its place. Ctrl-C stops the workers; finished trials stay recorded and a rerun resumes.

At the end OUT/summary.csv, a terminal table and OUT/summary.html rank the variants by mean
validation accuracy (see sweep_report.py for the statistics).

From Python: `run_sweep(read_sweep(path), out, workers=2, trial_fn=...)`; `trial_fn(config,
folder) -> metrics` must be importable by name (workers are spawned, not forked), and a script
that calls run_sweep needs `if __name__ == "__main__":`, since spawned workers import it.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import math
import multiprocessing
import multiprocessing.connection
import os
import re
import shutil
import signal
import tempfile
import threading
import time
import tomllib
import traceback
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import click
import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from digitlab.errors import ConfigError, DigitlabError
from digitlab.lab.config import Config, make_config
from digitlab.lab.experiment import run
from digitlab.lab.runs import write_json, write_text
from digitlab.lab.sweep_report import (
    option_label,
    print_table,
    summarise,
    variant_label,
    write_summary,
)

SWEEP_KEYS = (
    "name", "description", "seeds", "mode", "samples", "sample_seed", "base", "grid", "variants",
)  # fmt: skip
TRIALS_DIR = "trials"
LOG_FILE = "trials.jsonl"

TrialFunction = Callable[[Config, Path], dict[str, Any]]
"""Train one trial into `folder` and return its metrics (the content of metrics.json)."""


def run_trial(config: Config, folder: Path) -> dict[str, Any]:
    """The default trial: a complete digitlab run written to `folder`; returns its metrics."""
    return run(config, folder).metrics


# --- the sweep file -----------------------------------------------------------------------------


@dataclass
class SweepSpec:
    """A parsed, structurally checked sweep file (the configs are checked by `plan`)."""

    name: str
    seeds: list[int]
    base: dict[str, Any]
    grid: dict[str, list[Any]]
    mode: Literal["grid", "random"] = "grid"
    samples: int | None = None
    sample_seed: int = 0
    description: str = ""
    listed: list[dict[str, Any]] | None = None  # [[variants]]: explicit option sets, no grid
    source: str = "sweep"  # where it came from, for error messages
    folder: Path | None = None  # the sweep file's folder: plugin paths are relative to it


def read_sweep(path: str | os.PathLike[str]) -> SweepSpec:
    """Read and check a sweep TOML file; one-line ConfigError if it is malformed."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as err:
        raise ConfigError(f"{path}: cannot read sweep file ({err.strerror})") from None
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: malformed TOML: {err}") from None
    return parse_sweep(table, source=str(path), default_name=path.stem, folder=path.parent)


def parse_sweep(
    table: dict[str, Any],
    *,
    source: str = "sweep",
    default_name: str = "sweep",
    folder: Path | None = None,
) -> SweepSpec:
    """A SweepSpec from the sweep file's table (see the module docstring for the keys)."""

    def bad(key: str, message: str) -> ConfigError:
        return ConfigError(f"{source}: {key}: {message}")

    unknown = sorted(set(table) - set(SWEEP_KEYS))
    if unknown:
        raise bad(unknown[0], f"unknown sweep key; known: {', '.join(SWEEP_KEYS)}")
    name = table.get("name", default_name)
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise bad("name", f"{name!r}: use letters, digits, '.', '_' and '-' (it names a folder)")
    seeds = table.get("seeds", 1)
    if isinstance(seeds, int) and not isinstance(seeds, bool) and seeds >= 1:
        seeds = list(range(seeds))
    elif not (
        isinstance(seeds, list)
        and seeds
        and all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds)
        and len(set(seeds)) == len(seeds)
    ):
        raise bad(
            "seeds", f"expected a count N >= 1 or a list of distinct seeds >= 0, got {seeds!r}"
        )
    mode = table.get("mode", "grid")
    if mode not in ("grid", "random"):
        raise bad("mode", f"expected 'grid' or 'random', got {mode!r}")
    samples = table.get("samples")
    if mode == "random" and not (isinstance(samples, int) and samples >= 1):
        raise bad("samples", f"random mode needs samples = K >= 1, got {samples!r}")
    if mode == "grid" and samples is not None:
        raise bad("samples", "only used with mode = 'random'")
    sample_seed = table.get("sample_seed", 0)
    if not isinstance(sample_seed, int) or sample_seed < 0:
        raise bad("sample_seed", f"expected an int >= 0, got {sample_seed!r}")
    base, grid = table.get("base", {}), table.get("grid", {})
    for key, value in (("base", base), ("grid", grid)):
        if not isinstance(value, dict):
            raise bad(key, "expected a table")
        if "seed" in value:
            raise bad(f"{key}.seed", "set the seeds with the top-level `seeds` key")
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise bad(f"grid.{key}", f"expected a non-empty list of values, got {values!r}")
        seen = [json.dumps(v, sort_keys=True) for v in values]
        if len(set(seen)) != len(seen):
            duplicate = next(v for v, s in zip(values, seen, strict=True) if seen.count(s) > 1)
            raise bad(f"grid.{key}", f"value {option_label(duplicate)} appears twice")
        if key in base:
            raise bad(f"grid.{key}", "also set in [base]; set it in one place")
    listed = table.get("variants")
    if listed is not None:
        if grid or not isinstance(listed, list) or not listed:
            raise bad("variants", "expected a non-empty list of option tables, and no [grid]")
        if not all(isinstance(v, dict) and v and "seed" not in v for v in listed):
            raise bad("variants", "each variant is a non-empty table of options (no seed)")
        if mode != "grid":
            raise bad("mode", "[[variants]] lists the variants: no random mode")
    description = table.get("description", "")
    return SweepSpec(
        name=name,
        seeds=list(seeds),
        base=dict(base),
        grid={k: list(v) for k, v in grid.items()},
        mode=mode,
        samples=samples,
        sample_seed=sample_seed,
        description=str(description),
        listed=[dict(v) for v in listed] if listed is not None else None,
        source=source,
        folder=folder,
    )


# --- variants and trials ------------------------------------------------------------------------


@dataclass
class Trial:
    """One variant with one seed."""

    id: str
    variant: int  # index into the plan's variants
    options: dict[str, Any]
    seed: int
    values: dict[str, Any]  # the raw config: base + options + seed, plugin paths resolved


def variants(spec: SweepSpec) -> list[dict[str, Any]]:
    """The variants' options in grid order (the last key varies fastest); in random mode the
    `samples` drawn without repetition by `sample_seed`, kept in grid order."""
    if spec.listed is not None:  # explicit variants override [base] keys for themselves
        return [dict(v) for v in spec.listed]
    keys, sizes = list(spec.grid), [len(v) for v in spec.grid.values()]
    total = math.prod(sizes)
    indices: Sequence[int] = range(total)
    if spec.mode == "random":
        rng = np.random.default_rng(spec.sample_seed)
        count = min(spec.samples or total, total)
        indices = sorted(int(i) for i in rng.choice(total, size=count, replace=False))
    out = []
    for index in indices:
        picks = []
        for size in reversed(sizes):
            index, pick = divmod(index, size)
            picks.append(pick)
        picks.reverse()
        out.append({k: spec.grid[k][p] for k, p in zip(keys, picks, strict=True)})
    return out


def trial_id(base: dict[str, Any], options: dict[str, Any], seed: int) -> str:
    """`<options>_s<seed>_<hash>`: readable, stable, and unique for (base, options, seed)."""
    canonical = json.dumps(
        {"base": base, "options": options, "seed": seed}, sort_keys=True, separators=(",", ":")
    )
    digest = hashlib.sha256(canonical.encode()).hexdigest()[:10]
    slug = ",".join(f"{k}={option_label(v)}" for k, v in options.items()) or "base"
    slug = re.sub(r"[^A-Za-z0-9.,=+_-]+", "-", slug).strip("-")[:80]
    return f"{slug}_s{seed}_{digest}"


def plan(spec: SweepSpec) -> tuple[list[dict[str, Any]], list[Trial]]:
    """Variants and trials (seed-major: every variant's first seed comes first), each trial's
    config validated; ConfigError naming the variant and key at the first bad one."""
    options_list = variants(spec)
    base = dict(spec.base)
    plugins = base.get("plugins")
    if isinstance(plugins, list) and spec.folder is not None:  # relative to the sweep file
        base["plugins"] = [str(spec.folder / p) for p in plugins]
    trials = []
    for seed in spec.seeds:
        for index, options in enumerate(options_list):
            values = {**base, **options, "seed": seed}
            try:
                make_config(values)
            except DigitlabError as err:
                raise ConfigError(
                    f"{spec.source}: variant {variant_label(options)} (seed {seed}): {err}"
                ) from None
            trials.append(Trial(trial_id(spec.base, options, seed), index, options, seed, values))
    return options_list, trials


# --- the trial log ------------------------------------------------------------------------------


def read_records(path: Path) -> tuple[list[dict[str, Any]], int]:
    """The complete records in a trials.jsonl, and how many lines were unreadable (a torn last
    line from a crash mid-write, or damage) and so ignored."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return [], 0
    records, bad = [], 0
    lines = data.split(b"\n")
    for k, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError):
            bad += 1
            continue
        if k == len(lines) - 1 or not isinstance(record, dict) or "id" not in record:
            bad += 1  # no newline yet: the write may not have finished
            continue
        records.append(record)
    return records, bad


class TrialLog:
    """OUT/trials.jsonl: one complete JSON line per finished trial, appended and fsynced.

    On opening, an unterminated last line (a write cut short) is cut off, so the next append
    starts on a fresh line and never glues itself onto the fragment.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.records, self.ignored = read_records(path)
        if path.exists():
            data = path.read_bytes()
            if data and not data.endswith(b"\n"):
                with open(path, "r+b") as handle:
                    handle.truncate(data.rfind(b"\n") + 1)
                    handle.flush()
                    os.fsync(handle.fileno())

    def latest(self) -> dict[str, dict[str, Any]]:
        """Trial id -> its last record (a retried trial has several)."""
        return {r["id"]: r for r in self.records}

    def append(self, record: dict[str, Any]) -> None:
        line = (json.dumps(record) + "\n").encode()
        with open(self.path, "ab") as handle:
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())
        self.records.append(record)


# --- running one trial (inside a worker) --------------------------------------------------------


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


def _first_line(text: str) -> str:
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
        outcome = {"status": "failed", "reason": _first_line(str(err)), "metrics": {}}
        write_text(folder / "error.txt", f"{err}\n")
    except (Exception, SystemExit) as err:  # SystemExit too: a trial must not end its worker
        outcome = {
            "status": "failed",
            "reason": f"{type(err).__name__}: {_first_line(str(err))}",
            "metrics": {},
        }
        write_text(folder / "error.txt", traceback.format_exc())
    outcome["seconds"] = round(time.perf_counter() - start, 3)
    return outcome


def _install(staging: Path, final: Path) -> None:
    """Put a finished trial folder in place of any older one, by renames only."""
    old = None
    if final.exists():
        old = final.with_name(f".{final.name}.{os.getpid()}.old")
        shutil.rmtree(old, ignore_errors=True)
        final.rename(old)
    staging.rename(final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _staging(trials_dir: Path, trial: str) -> Path:
    staging = trials_dir / f".{trial}.{os.getpid()}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    return staging


def _local_job(
    values: dict[str, Any], trials_dir: str, trial: str, trial_fn: TrialFunction
) -> dict[str, Any]:
    staging = _staging(Path(trials_dir), trial)
    outcome = attempt(values, staging, trial_fn)
    _install(staging, Path(trials_dir) / trial)
    return outcome


def _worker_main(conn: multiprocessing.connection.Connection, trial_fn: TrialFunction) -> None:
    """A local worker: run the jobs the parent sends, one at a time, until told to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
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


def _store_failure(trials_dir: Path, trial: str, reason: str) -> None:
    """error.txt for a trial whose worker died (the worker could not write it itself)."""
    staging = _staging(trials_dir, trial)
    write_text(staging / "error.txt", reason + "\n")
    _install(staging, trials_dir / trial)


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


# --- executors ----------------------------------------------------------------------------------

Report = Callable[[Trial, dict[str, Any]], None]


@dataclass
class _Slot:
    process: multiprocessing.process.BaseProcess
    conn: multiprocessing.connection.Connection
    trial: Trial | None = None
    finished: int = 0  # trials this worker has reported


def _start_worker(ctx: Any, trial_fn: TrialFunction) -> _Slot:
    parent_end, child_end = ctx.Pipe()
    process = ctx.Process(target=_worker_main, args=(child_end, trial_fn), daemon=True)
    # An ignored SIGINT survives exec, so the child ignores Ctrl-C from its very first
    # instruction (before _worker_main can say so); the parent's handler is back at once.
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
    trials: Sequence[Trial],
    trials_dir: Path,
    workers: int,
    trial_fn: TrialFunction,
    report: Report,
) -> None:
    """Run trials on `workers` local processes, each running one trial at a time; a worker
    that dies fails its trial and is replaced."""
    ctx = multiprocessing.get_context("spawn")  # no inherited threads or locks; portable
    queue = deque(trials)
    slots: list[_Slot] = []
    try:
        while queue or any(s.trial is not None for s in slots):
            for slot in slots:
                if queue and slot.trial is None:
                    trial = queue.popleft()
                    try:
                        slot.conn.send((trial.values, str(trials_dir), trial.id))
                        slot.trial = trial
                    except OSError:  # died while idle: its replacement takes the trial
                        queue.appendleft(trial)
                        slot.process.join()
            slots = [s for s in slots if s.trial is not None or s.process.is_alive()]
            while queue and len(slots) < workers:
                slots.append(_start_worker(ctx, trial_fn))
                trial = queue.popleft()
                slots[-1].conn.send((trial.values, str(trials_dir), trial.id))
                slots[-1].trial = trial
            busy = [s for s in slots if s.trial is not None]
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
    values: dict[str, Any], trial_fn: TrialFunction
) -> tuple[dict[str, Any], dict[str, bytes]]:
    """A Ray task: run the trial in a temporary folder on whichever node, return its files."""
    with tempfile.TemporaryDirectory(prefix="digitlab-trial-") as tmp:
        outcome = attempt(values, Path(tmp), trial_fn)
        files = {
            p.relative_to(tmp).as_posix(): p.read_bytes()
            for p in Path(tmp).rglob("*")
            if p.is_file()
        }
    return outcome, files


def run_ray(
    trials: Sequence[Trial],
    trials_dir: Path,
    address: str,
    workers: int | None,
    trial_fn: TrialFunction,
    report: Report,
) -> None:
    """Run trials as Ray tasks (one CPU each) on the cluster at `address`, or on a local Ray
    instance started here for `address == "local"` (with `workers` CPUs if given). The files
    come back to this machine, so the nodes need digitlab installed but no shared disk."""
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
                f"--ray: cannot {where}: {type(err).__name__}: {_first_line(str(err))}"
            ) from None
    task = ray.remote(num_cpus=1, max_retries=0)(_ray_job)
    pending = {task.remote(t.values, trial_fn): t for t in trials}
    try:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                trial = pending.pop(ref)
                try:
                    outcome, files = ray.get(ref)
                except ray.exceptions.RayError as err:
                    died = (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError)
                    prefix = "worker died: " if isinstance(err, died) else ""
                    reason = f"{prefix}{type(err).__name__}: {_first_line(str(err))}"
                    _store_failure(trials_dir, trial.id, reason)
                    report(
                        trial,
                        {"status": "failed", "reason": reason, "metrics": {}, "seconds": None},
                    )
                    continue
                staging = _staging(trials_dir, trial.id)
                for name, data in files.items():
                    (staging / name).parent.mkdir(parents=True, exist_ok=True)
                    (staging / name).write_bytes(data)  # atomic as a whole by _install
                _install(staging, trials_dir / trial.id)
                report(trial, outcome)
    finally:
        for ref in pending:
            with contextlib.suppress(Exception):
                ray.cancel(ref, force=True)
        if started:
            ray.shutdown()


# --- the sweep ----------------------------------------------------------------------------------


def default_workers() -> int:
    """The CPUs this process may use."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


@contextlib.contextmanager
def _exclusive(out: Path) -> Iterator[None]:
    """One sweep at a time per folder (POSIX advisory lock on OUT/.lock)."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        yield
        return
    with open(out / ".lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConfigError(f"{out}: another sweep is running in this folder") from None
        yield


@dataclass
class SweepResult:
    out: Path
    ran: int
    skipped: int
    failed: list[dict[str, Any]] = field(default_factory=list)
    rows: list[Any] = field(default_factory=list)


def run_sweep(
    spec: SweepSpec,
    out: str | os.PathLike[str] | None = None,
    *,
    workers: int | None = None,
    ray_address: str | None = None,
    retry_failed: bool = False,
    trial_fn: TrialFunction = run_trial,
    console: Console | None = None,
) -> SweepResult:
    """Validate every trial, run those not yet done, record each as it finishes, and write
    the summary (OUT/summary.csv, OUT/summary.html) and print its table."""
    console = console or Console(highlight=False)
    options_list, trials = plan(spec)
    folder = Path(out) if out is not None else Path("sweeps") / spec.name
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"--out {folder}: exists and is not a folder")
    folder.mkdir(parents=True, exist_ok=True)
    trials_dir = folder / TRIALS_DIR
    trials_dir.mkdir(exist_ok=True)
    with _exclusive(folder):
        for stale in trials_dir.glob(".*"):  # staging folders of an interrupted earlier run
            shutil.rmtree(stale, ignore_errors=True)
        log = TrialLog(folder / LOG_FILE)
        latest = log.latest()
        done = [t for t in trials if latest.get(t.id, {}).get("status") == "done"]
        failed = [t for t in trials if latest.get(t.id, {}).get("status") == "failed"]
        retry = {t.id for t in failed} if retry_failed else set()
        todo = [t for t in trials if t.id not in latest or t.id in retry]
        write_json(
            folder / "sweep.json",
            {
                "name": spec.name,
                "description": spec.description,
                "source": spec.source,
                "seeds": spec.seeds,
                "mode": spec.mode,
                "samples": spec.samples,
                "sample_seed": spec.sample_seed,
                "base": spec.base,
                "grid": spec.grid,
                "trials": [t.id for t in trials],
            },
        )
        console.print(
            f"[bold]sweep {spec.name}[/]: {len(options_list)} variants x {len(spec.seeds)} seeds "
            f"= {len(trials)} trials -> {folder}"
        )
        if log.ignored:
            console.print(f"{LOG_FILE}: ignored {log.ignored} unreadable line(s) (a torn write)")
        if done:
            console.print(f"skipping {len(done)} trials already done")
        if failed and retry_failed:
            console.print(f"retrying {len(failed)} failed trials (--retry-failed)")
        elif failed:
            console.print(
                f"skipping {len(failed)} failed trials; rerun with --retry-failed to retry them"
            )
        if todo:
            _execute(todo, trials_dir, log, workers, ray_address, trial_fn, console)
        else:
            console.print("nothing to run")
        latest = log.latest()
        groups = [
            (options, [latest.get(t.id) for t in trials if t.variant == index])
            for index, options in enumerate(options_list)
        ]
        rows = summarise(groups)
        keys = list(dict.fromkeys(k for options in options_list for k in options))
        details: dict[str, Any] = {
            "name": spec.name,
            "file": spec.source,
            "seeds": spec.seeds,
            "mode": spec.mode,
            "base": spec.base,
            "grid": spec.grid,
            "variants": spec.listed,
        }
        if spec.mode == "random":
            details.update(samples=spec.samples, sample_seed=spec.sample_seed)
        csv_path, html_path = write_summary(folder, f"sweep {spec.name}", rows, keys, details)
        print_table(console, rows, keys)
        failures = [r for row in rows for r in row.failed]
        for record in failures[:10]:
            console.print(f"[red]failed[/] {record['id']}: {record['reason']}", soft_wrap=True)
        if len(failures) > 10:
            console.print(f"... and {len(failures) - 10} more failed trials (see {LOG_FILE})")
        console.print(f"wrote {csv_path} and {html_path}")
    return SweepResult(folder, len(todo), len(trials) - len(todo), failures, rows)


def _execute(
    todo: list[Trial],
    trials_dir: Path,
    log: TrialLog,
    workers: int | None,
    ray_address: str | None,
    trial_fn: TrialFunction,
    console: Console,
) -> None:
    where = (
        f"Ray ({ray_address})"
        if ray_address
        else f"{min(workers or default_workers(), len(todo))} local worker processes"
    )
    console.print(f"running {len(todo)} trials on {where}")
    if importlib.util.find_spec("threadpoolctl") is None:
        console.print("threadpoolctl is not installed: BLAS threads per worker are not limited")
    columns = (TextColumn("trials"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    recorded_before = len(log.records)
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("", total=len(todo))

        def report(trial: Trial, outcome: dict[str, Any]) -> None:
            record = {
                "id": trial.id,
                "options": trial.options,
                "seed": trial.seed,
                **outcome,
                "finished": datetime.now(UTC).isoformat(timespec="seconds"),
            }
            log.append(record)
            progress.advance(task)
            label = f"{variant_label(trial.options)} seed {trial.seed}"
            if outcome["status"] == "done":
                m = outcome["metrics"]
                progress.console.print(
                    f"done   {label}: val {100 * m['val_accuracy']:.2f}% "
                    f"test {100 * m['test_accuracy']:.2f}% ({outcome['seconds']:.1f} s)",
                    soft_wrap=True,
                )
            else:
                progress.console.print(
                    f"[red]failed[/] {label}: {outcome['reason']}", soft_wrap=True
                )

        try:
            if ray_address:
                run_ray(todo, trials_dir, ray_address, workers, trial_fn, report)
            else:
                run_local(todo, trials_dir, workers or default_workers(), trial_fn, report)
        except KeyboardInterrupt:
            progress.console.print(
                f"interrupted: {len(log.records) - recorded_before} more trials recorded in "
                f"{log.path}; rerun to resume"
            )
            raise


@click.command("sweep")
@click.argument("sweep_file", type=click.Path(dir_okay=False))
@click.option("--out", type=click.Path(file_okay=False), help="Sweep folder [sweeps/<name>].")
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    help="Trials run at once [number of CPUs]; with --ray local, the CPUs Ray may use.",
)
@click.option(
    "--ray",
    "ray_address",
    metavar="ADDRESS|local",
    help="Run trials as Ray tasks on the cluster at ADDRESS, or on a new local Ray instance.",
)
@click.option("--retry-failed", is_flag=True, help="Run failed trials again (done ones are kept).")
def sweep_command(
    sweep_file: str,
    out: str | None,
    workers: int | None,
    ray_address: str | None,
    retry_failed: bool,
) -> None:
    """Run a parameter sweep (configs x seeds) from a TOML file; resumes where it stopped.

    Writes OUT/trials/<id>/ per trial, OUT/trials.jsonl, OUT/summary.csv and OUT/summary.html.
    Failed trials are listed but do not change the exit code; a bad sweep file does.
    """
    run_sweep(
        read_sweep(sweep_file),
        out,
        workers=workers,
        ray_address=ray_address,
        retry_failed=retry_failed,
    )
