"""`digitlab train`, `gradcheck` and `diagnose`: a config from flags and TOML, trained or
checked, and the diagnostics of a finished run.

Ctrl-C or SIGTERM during training finishes the current batch, writes a checkpoint and says how
to resume.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from digitlab.cli.complete import run_folders
from digitlab.cli.options import config_from_flags, config_options, given_flags
from digitlab.cli.output import console, err_console, print_findings, print_results
from digitlab.diagnostics.alarms import find
from digitlab.errors import ConfigError
from digitlab.lab.checkpoint import read_checkpoint
from digitlab.lab.config import make_config
from digitlab.lab.experiment import Interrupted, Prepared, parts, run, run_gradcheck
from digitlab.lab.runs import new_run_dir, read_history, writing


@click.command()
@config_options
@click.option("--out", type=click.Path(file_okay=False), help="Run folder [runs/<time>].")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--checkpoint-every", type=click.IntRange(min=1), help="Checkpoint every N epochs.")
@click.option(
    "--resume",
    type=click.Path(file_okay=False),
    shell_complete=run_folders,
    help="Continue RUN from its checkpoint.",
)
@click.option(
    "--report/--no-report", default=True, help="Write report.html and plots/. [default: on]"
)
def train(
    config_file: str | None,
    out: str | None,
    quiet: bool,
    plugin: tuple[str, ...],
    checkpoint_every: int | None,
    resume: str | None,
    report: bool,
    **flags: Any,
) -> None:
    """Train a network and write a run folder (model, config, history, metrics).

    Ctrl-C or SIGTERM finishes the current batch, writes a checkpoint and says how to resume.
    """
    if resume is not None:
        given = given_flags(flags)
        if given or config_file or plugin or out:
            raise ConfigError(
                f"--resume continues with the run's own config; drop {given or '--out'}"
            )
        folder = Path(resume)
        config = make_config(read_checkpoint(folder)[0]["config"])
        with writing(folder, fresh=False), _stop_on_signals() as stop:
            _train_into(folder, config, quiet, checkpoint_every, stop, resume=True, report=report)
        return
    config = config_from_flags(config_file, plugin, flags)
    folder = new_run_dir(out)
    try:
        with writing(folder, fresh=True), _stop_on_signals() as stop:
            _train_into(folder, config, quiet, checkpoint_every, stop, report=report)
    except BaseException:
        with suppress(OSError):  # the folder may be gone or read-only: nothing to tidy then
            if not any(folder.iterdir()):  # nothing was written: leave no empty folder behind
                folder.rmdir()
        raise


class StopFlag:
    """Set by SIGINT or SIGTERM; training polls it after every batch."""

    def __init__(self) -> None:
        self.signum: int | None = None

    def __call__(self) -> bool:
        return self.signum is not None


@contextmanager
def _stop_on_signals() -> Iterator[StopFlag]:
    """SIGINT and SIGTERM ask training to stop after the current batch; a second one aborts."""
    flag = StopFlag()

    def handler(signum: int, frame: Any) -> None:
        if flag():
            raise KeyboardInterrupt
        flag.signum = signum
        err_console.print(f"digitlab: {signal.Signals(signum).name}: stopping after this batch")

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield flag
    except Interrupted as stopped:
        err_console.print(f"digitlab: {stopped}", markup=False)
        sys.exit(128 + (flag.signum or signal.SIGINT))
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


@click.command()
@config_options
@click.option("--examples", default=8, show_default=True, help="Training examples to check on.")
def gradcheck(
    config_file: str | None, plugin: tuple[str, ...], examples: int, **flags: Any
) -> None:
    """Check every gradient of the configured model, and every activation, against finite
    differences in float64; exit 1 if any disagrees."""
    config = config_from_flags(config_file, plugin, flags)
    report = run_gradcheck(config, examples)
    table = Table(title=f"gradient check, float64, {examples} examples (relative error)")
    for column in ("what", "worst relative error", "verdict"):
        table.add_column(column)
    for result in report.activations:
        table.add_row(result.name, f"{result.error:.2e}", _verdict(result.passed))
    for layer, result in report.layers.items():
        table.add_row(
            f"layer {layer} ({result.name})", f"{result.error:.2e}", _verdict(result.passed)
        )
    console.print(table)
    for line in report.verdict():
        console.print(line)
    if not report.passed:
        sys.exit(1)


def _verdict(passed: bool) -> str:
    return "[green]pass[/]" if passed else "[bold red]FAIL[/]"


def _train_into(
    folder: Path,
    config: Any,
    quiet: bool,
    checkpoint_every: int | None = None,
    should_stop: Callable[[], bool] | None = None,
    resume: bool = False,
    report: bool = True,
) -> None:
    columns = (
        TextColumn("epoch {task.fields[epoch]}/{task.fields[epochs]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[status]}"),
    )
    with Progress(*columns, console=console, disable=quiet, transient=False) as progress:
        state: dict[str, Any] = {"epoch": -1}
        records: list[dict[str, float]] = []
        alarmed: set[str] = set()

        def on_data(prepared: Prepared) -> None:
            train_part, val_part, test_part = parts(prepared.splits).values()
            repeated = prepared.repeated or {}
            copies = (
                f"{repeated['val_in_train']} validation and {repeated['test_in_train']} test "
                f"images repeat a training image, {repeated['test_in_val']} test images a "
                "validation image"
                if any(repeated.values())
                else "no image repeated across them"
            )
            progress.console.print(
                f"[bold]{config.data}[/]: {len(train_part.y)} train, {len(val_part.y)} "
                f"validation, {len(test_part.y)} test ({copies}), {train_part.x.shape[1]} "
                f"inputs, {prepared.n_classes} classes"
            )
            state["n"] = len(train_part.y)
            state["task"] = progress.add_task(
                "", total=state["n"], epoch=1, epochs=config.epochs, status=""
            )

        def on_batch(epoch: int, number: int, size: int) -> None:
            if epoch != state["epoch"]:
                state["epoch"] = epoch
                fields = {"epoch": epoch + 1, "epochs": config.epochs, "status": ""}
                progress.reset(state["task"], total=state["n"], **fields)
            progress.advance(state["task"], size)

        def on_epoch(record: dict[str, float], model: Any) -> None:
            status = (
                f"loss {record['train_loss']:.4f} acc {record['train_accuracy']:.4f} | "
                f"val loss {record['val_loss']:.4f} acc {record['val_accuracy']:.4f}"
            )
            progress.update(state["task"], status=status)
            if not quiet:
                progress.console.print(f"epoch {int(record['epoch']):>3}: {status}")
            records.append(record)
            for finding in find(records):  # say each kind of trouble once, when it appears
                if finding.severity == "warning" and finding.kind not in alarmed:
                    alarmed.add(finding.kind)
                    progress.console.print(f"[yellow]alarm[/]: {finding.message}")

        result = run(
            config,
            folder,
            callbacks=[on_epoch],
            on_batch=on_batch,
            on_data=on_data,
            checkpoint_every=checkpoint_every,
            should_stop=should_stop,
            resume=resume,
        )
    print_results(result.metrics, result.prepared.n_classes)
    history = result.history
    print_findings(find(history.records()))
    note = busy_machine_note(config.threads)
    if note:
        console.print(f"[dim]{note}[/]")
    del result  # the report reads the run folder: the data go first (peak memory)
    if report:
        from digitlab.report import build_report  # matplotlib (30 MB) loads only to draw

        console.print(f"report: {build_report(folder)}")
    if history.stopped_early:
        console.print(f"early stopping: best validation loss at epoch {history.best_epoch}")
    console.print(f"run folder: {folder}")


def busy_machine_note(threads: int | None) -> str | None:
    """A hint when the run shared the cores with other jobs while BLAS ran several threads
    (its own threads count in the load: one process alone loads a core each)."""
    if threads is not None or not hasattr(os, "getloadavg"):
        return None
    from threadpoolctl import threadpool_info

    blas = max((p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"), default=1)
    cores, load = os.cpu_count() or 1, os.getloadavg()[0]
    if blas < 2 or load <= cores + 1:
        return None
    return (
        f"note: the machine was busy (load {load:.1f} on {cores} cores) while BLAS ran {blas} "
        "threads, which wait for each other at every matrix product when other jobs hold the "
        "cores: --threads 1 can make epochs several times faster here"
    )


@click.command()
@click.argument("run_dir", metavar="RUN", shell_complete=run_folders)
def diagnose(run_dir: str) -> None:
    """Print the diagnostics of a finished run (read from its history; nothing is rerun)."""
    records = read_history(Path(run_dir))
    findings = find(records)
    warnings = [f for f in findings if f.severity == "warning"]
    console.print(f"{run_dir}: {len(records)} epochs, {len(warnings)} alarm(s)")
    print_findings(findings)
    if not warnings:
        console.print("no alarms: nothing the monitors watch for went wrong")
