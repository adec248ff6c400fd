"""Running a sweep: `run_sweep` plans the trials (sweepfile.py), skips those the log
(trials.py) records as done, runs the rest on an executor (executors.py), recording each as it
finishes, and ends with the summary: OUT/summary.csv, a terminal table and OUT/summary.html
ranking the variants by mean validation accuracy (report/sweep.py for the statistics,
report/sweep_page.py for the page). A trial's run folder is OUT/trials/<id>/ (config.json,
history.jsonl, metrics.json, predictions.npz, model.npz; error.txt instead for a failed trial).
A rerun skips trials whose latest record is done; failed ones are retried only with
--retry-failed. Ctrl-C stops the workers; finished trials stay recorded and a rerun resumes.
A sweep with mode = "optuna" is run by adaptive.py's `run_study` in the same folder, log and
executors, its trials asked from an Optuna study one at a time.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from digitlab.errors import ConfigError
from digitlab.lab.runs import write_json
from digitlab.lab.sweep.executors import Feed, Report, default_workers, run_local, run_ray
from digitlab.lab.sweep.sweepfile import SweepSpec, Trial, check_space, plan
from digitlab.lab.sweep.trials import LOG_FILE, TrialLog
from digitlab.lab.sweep.worker import TrialFunction, run_trial
from digitlab.report.sweep import print_table, summarise, variant_label, write_summary

TRIALS_DIR = "trials"


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
    if spec.mode == "optuna":
        from digitlab.lab.sweep.adaptive import require_optuna

        require_optuna()
        check_space(spec)
        options_list: list[dict[str, Any]] = []
        trials: list[Trial] = []
    else:
        options_list, trials = plan(spec)
    folder = Path(out) if out is not None else Path("sweeps") / spec.name
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"--out {folder}: exists and is not a folder")
    folder.mkdir(parents=True, exist_ok=True)
    trials_dir = folder / TRIALS_DIR
    with _exclusive(folder):  # a second sweep on the folder changes nothing in it
        trials_dir.mkdir(exist_ok=True)
        for stale in trials_dir.glob(".*"):  # staging folders of an interrupted earlier run
            shutil.rmtree(stale, ignore_errors=True)
        log = TrialLog(folder / LOG_FILE)
        if spec.mode == "optuna":
            from digitlab.lab.sweep.adaptive import run_study

            return run_study(spec, folder, log, workers, ray_address, trial_fn, console)
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
        rows = summarise(groups, trials_dir)
        keys = list(dict.fromkeys(k for options in options_list for k in options))
        details = sweep_details(spec, grid=spec.grid, variants=spec.listed)
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


def sweep_details(spec: SweepSpec, **mode_keys: Any) -> dict[str, Any]:
    """What a summary page and CSV say about the sweep: its name, file, seeds, mode and base,
    then the keys of its mode (a grid and variants, or a search space)."""
    return {
        "name": spec.name,
        "file": spec.source,
        "seeds": spec.seeds,
        "mode": spec.mode,
        "base": spec.base,
        **mode_keys,
    }


def _execute(
    todo: Sequence[Trial] | Feed,
    trials_dir: Path,
    log: TrialLog,
    workers: int | None,
    ray_address: str | None,
    trial_fn: TrialFunction,
    console: Console,
    *,
    count: int | None = None,
    after: Report | None = None,
) -> None:
    """Run the trials (a list, or a feed of `count` trials), record each outcome in the log as
    it arrives, print it, and pass it on to `after`."""
    count = len(todo) if isinstance(todo, Sequence) else count
    where = (
        f"Ray ({ray_address})"
        if ray_address
        else f"{min(workers or default_workers(), count or 1)} local worker processes"
    )
    console.print(f"running {count} trials on {where}")
    if importlib.util.find_spec("threadpoolctl") is None:
        console.print("threadpoolctl is not installed: BLAS threads per worker are not limited")
    columns = (TextColumn("trials"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    recorded_before = len(log.records)
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("", total=len(todo) if isinstance(todo, Sequence) else None)

        def report(trial: Trial, outcome: dict[str, Any]) -> None:
            record = {
                "id": trial.id,
                **({k: trial.study[k] for k in ("study", "number")} if trial.study else {}),
                "options": trial.options,
                "seed": trial.seed,
                **outcome,
                "finished": datetime.now(UTC).isoformat(timespec="seconds"),
            }
            log.append(record)
            progress.advance(task)
            number = f"trial {trial.study['number']}: " if trial.study else ""
            label = f"{number}{variant_label(trial.options)} seed {trial.seed}"
            if outcome["status"] == "done":
                m = outcome["metrics"]
                progress.console.print(
                    f"done   {label}: val {100 * m['val_accuracy']:.2f}% "
                    f"test {100 * m['test_accuracy']:.2f}% ({outcome['seconds']:.1f} s)",
                    soft_wrap=True,
                )
            elif outcome["status"] == "pruned":
                progress.console.print(
                    f"[yellow]pruned[/] {label}: {outcome['reason']}", soft_wrap=True
                )
            else:
                progress.console.print(
                    f"[red]failed[/] {label}: {outcome['reason']}", soft_wrap=True
                )
            if after is not None:
                after(trial, outcome)

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
