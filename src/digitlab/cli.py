"""The command line: flags and TOML -> Config -> library calls -> printed results.

Errors we raise on purpose (DigitlabError) and bad flags are printed as one line on stderr with
a non-zero exit code (1 for a run that failed, 2 for a usage error), never as a traceback.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from digitlab.core.activations import ACTIVATIONS
from digitlab.core.init import INITIALISERS
from digitlab.core.losses import LOSSES
from digitlab.core.optim import OPTIMIZERS
from digitlab.core.schedules import SCHEDULES
from digitlab.core.train import evaluate
from digitlab.diagnostics.alarms import Finding, find
from digitlab.errors import ConfigError, DigitlabError
from digitlab.lab.checkpoint import read_checkpoint
from digitlab.lab.config import load_config, make_config, read_config_file
from digitlab.lab.experiment import (
    Interrupted,
    Prepared,
    config_of_model,
    parts,
    prepare_data,
    run,
    run_gradcheck,
    summarise,
)
from digitlab.lab.modelfile import load_model
from digitlab.lab.plugins import load_plugin
from digitlab.lab.runs import new_run_dir, read_history
from digitlab.lab.sweep import sweep_command
from digitlab.report.command import report_command
from digitlab.report.tough import tough_command

console = Console(highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)


def _hidden(value: str | None) -> list[int] | None:
    if value is None:
        return None
    try:
        return [int(part) for part in value.split(",") if part.strip()]
    except ValueError:
        raise click.BadParameter(
            f"expected a comma list of sizes like 256,128, got {value!r}"
        ) from None


def _params(pairs: tuple[str, ...], flag: str) -> dict[str, Any]:
    """KEY=VALUE pairs -> dict, values read as numbers where they are numbers."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got {pair!r}", param_hint=flag)
        try:
            out[key.strip()] = float(raw) if any(c in raw for c in ".eE") else int(raw)
        except ValueError:
            out[key.strip()] = raw
    return out


def _entry(name: str | None, params: dict[str, Any]) -> dict[str, Any] | None:
    if name is None and not params:
        return None
    return {"name": name, **params} if name is not None else None


def _with_params(values: dict[str, Any], key: str, params: dict[str, Any], file_value: Any) -> None:
    """Attach KEY=VALUE params to an entry whose name may come from the flag or the file."""
    if not params:
        return
    base = values.get(key) or file_value
    if base is None:
        raise ConfigError(
            f"--{key.replace('_', '-')}-param given without --{key.replace('_', '-')}"
        )
    name = base["name"] if isinstance(base, dict) else base
    values[key] = {**(base if isinstance(base, dict) else {}), "name": name, **params}


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="digitlab")
def app() -> None:
    """digitlab: a from-scratch NumPy neural-network workbench for handwritten digits."""


CONFIG_OPTIONS = [
    click.option(
        "--config", "config_file", type=click.Path(dir_okay=False), help="TOML config file."
    ),
    click.option("--data", type=click.Choice(["digits", "mnist", "idx"]), help="Dataset [digits]."),
    click.option("--data-dir", help="Folder holding the four IDX files (no checksum check)."),
    click.option("--cache-dir", help="Where MNIST is downloaded [$DIGITLAB_CACHE or ~/.cache]."),
    click.option(
        "--split", type=click.Choice(["holdout", "book", "nielsen"]), help="Validation split."
    ),
    click.option("--val-fraction", type=float, help="Validation share of training data [0.1]."),
    click.option("--train-per-class", type=int, help="Keep the first N training images per class."),
    click.option("--train-first", type=int, help="Keep the first N training images."),
    click.option(
        "--augment", multiple=True, help="KEY=VALUE: shift, rotate, scale, elastic_alpha, ..."
    ),
    click.option(
        "--standardize/--no-standardize", default=None, help="Standardise with train stats."
    ),
    click.option("--per-pixel/--no-per-pixel", default=None, help="Standardise each pixel apart."),
    click.option("--invert/--no-invert", default=None, help="Invert pixels (1 - x)."),
    click.option("--crop", type=int, help="Crop this many border pixels on each side."),
    click.option("--pixel-subset", type=int, help="Keep a fixed seeded random subset of N pixels."),
    click.option("--hidden", help="Hidden layer sizes, comma separated [100]."),
    click.option("--activation", help="Hidden activation [relu]; see `digitlab list`."),
    click.option("--activation-param", multiple=True, help="KEY=VALUE, e.g. slope=0.1."),
    click.option("--init", help="Initialiser: normal, xavier, he, lecun [per activation]."),
    click.option("--init-param", multiple=True, help="KEY=VALUE, e.g. std=0.1."),
    click.option("--bias-std", type=float, help="Draw biases from N(0, std^2) [0: zeros]."),
    click.option("--dropout", type=float, help="Dropout rate after each hidden layer [0]."),
    click.option("--output-activation", help="Activation on the output layer (e.g. sigmoid)."),
    click.option("--loss", help="softmax_cross_entropy, quadratic, sigmoid_cross_entropy."),
    click.option("--optimizer", help="Optimizer [sgd]; see `digitlab list`."),
    click.option("--optimizer-param", multiple=True, help="KEY=VALUE, e.g. momentum=0.9."),
    click.option("--lr", type=float, help="Learning rate [0.1]."),
    click.option("--lr-schedule", help="constant, piecewise, exponential, cosine."),
    click.option("--lr-schedule-param", multiple=True, help="KEY=VALUE, e.g. decay=0.9."),
    click.option("--batch-size", type=int, help="Batch size [32]."),
    click.option("--batch-ramp", type=int, help="Start batch size, doubled each epoch."),
    click.option("--epochs", type=int, help="Epochs [50]."),
    click.option("--l1", type=float, help="L1 penalty coefficient."),
    click.option("--l2", type=float, help="L2 penalty coefficient (adds l2 * w to dw)."),
    click.option("--patience", type=int, help="Early stopping patience in epochs."),
    click.option(
        "--monitors/--no-monitors", default=None, help="Per-layer monitors and alarms [on]."
    ),
    click.option(
        "--divergence",
        type=float,
        help="Stop when loss > this x the first batch's (at least 1) [1e4; 0 off].",
    ),
    click.option("--seed", type=int, help="Seed for split, init, dropout, shuffle [0]."),
    click.option(
        "--dtype", type=click.Choice(["float32", "float64"]), help="Float type [float32]."
    ),
    click.option("--plugin", multiple=True, help="Python file registering activations etc."),
]


def config_options(command: Any) -> Any:
    """The flags that make a Config, shared by train and gradcheck."""
    for option in reversed(CONFIG_OPTIONS):
        command = option(command)
    return command


def config_from_flags(
    config_file: str | None, plugin: tuple[str, ...], flags: dict[str, Any]
) -> Any:
    """File values, with the flags that were given on top, validated into a Config."""
    file_values = read_config_file(config_file) if config_file is not None else {}
    if plugin:
        flags["plugins"] = [*file_values.get("plugins", []), *plugin]
    params = {
        key: _params(flags.pop(f"{key}_param"), f"--{key.replace('_', '-')}-param")
        for key in ("activation", "init", "optimizer", "lr_schedule")
    }
    flags["hidden"] = _hidden(flags["hidden"])
    flags["augment"] = _params(flags["augment"], "--augment") or None
    values = {**file_values, **{k: v for k, v in flags.items() if v is not None}}
    for key, extra in params.items():
        _with_params(values, key, extra, file_values.get(key))
    return load_config(None, values)


@app.command()
@config_options
@click.option("--out", type=click.Path(file_okay=False), help="Run folder [runs/<time>].")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--checkpoint-every", type=click.IntRange(min=1), help="Checkpoint every N epochs.")
@click.option(
    "--resume", type=click.Path(file_okay=False), help="Continue RUN from its checkpoint."
)
@click.option("--report/--no-report", default=True, help="Write report.html and plots/ [on].")
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
        given = [f"--{k.replace('_', '-')}" for k, v in flags.items() if v not in (None, ())]
        if given or config_file or plugin or out:
            raise ConfigError(
                f"--resume continues with the run's own config; drop {given or '--out'}"
            )
        folder = Path(resume)
        config = make_config(read_checkpoint(folder)[0]["config"])
        with _stop_on_signals() as stop:
            _train_into(folder, config, quiet, checkpoint_every, stop, resume=True, report=report)
        return
    config = config_from_flags(config_file, plugin, flags)
    folder = new_run_dir(out)
    try:
        with _stop_on_signals() as stop:
            _train_into(folder, config, quiet, checkpoint_every, stop, report=report)
    except BaseException:
        if not any(folder.iterdir()):  # nothing was written: leave no empty run folder behind
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


@app.command()
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
            progress.console.print(
                f"[bold]{config.data}[/]: {len(train_part.y)} train, {len(val_part.y)} "
                f"validation, {len(test_part.y)} test, {train_part.x.shape[1]} inputs, "
                f"{prepared.n_classes} classes"
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
    _print_results(result.metrics, result.prepared.n_classes)
    history = result.history
    _print_findings(find(history.records()))
    del result  # the report reads the run folder: the data go first (peak memory)
    if report:
        from digitlab.report import build_report  # matplotlib (30 MB) loads only to draw

        console.print(f"report: {build_report(folder)}")
    if history.stopped_early:
        console.print(f"early stopping: best validation loss at epoch {history.best_epoch}")
    console.print(f"run folder: {folder}")


def _print_findings(findings: list[Finding]) -> None:
    for finding in findings:
        if finding.severity == "info":
            console.print(f"[dim]{finding.message}[/]")
            continue
        console.print(f"[bold yellow]{finding.kind}[/]: {finding.message}")
        if finding.causes:
            console.print("  likely causes: " + "; ".join(finding.causes))
        if finding.remedies:
            console.print("  usual remedies: " + "; ".join(finding.remedies))


@app.command()
@click.argument("run_dir", metavar="RUN")
def diagnose(run_dir: str) -> None:
    """Print the diagnostics of a finished run (read from its history; nothing is rerun)."""
    records = read_history(Path(run_dir))
    findings = find(records)
    warnings = [f for f in findings if f.severity == "warning"]
    console.print(f"{run_dir}: {len(records)} epochs, {len(warnings)} alarm(s)")
    _print_findings(findings)
    if not warnings:
        console.print("no alarms: nothing the monitors watch for went wrong")


def _print_results(metrics: dict[str, Any], n_classes: int) -> None:
    table = Table(title="results (95% Wilson interval)")
    for column in ("split", "n", "loss", "accuracy", "95% interval"):
        table.add_column(column, justify="right")
    labels = {"train": "train", "val": "validation", "test": "test", "test_all": "val + test"}
    for name, label in labels.items():
        if name not in metrics:
            continue
        m = metrics[name]
        low, high = m["accuracy_ci95"]
        table.add_row(
            label,
            str(m["n"]),
            f"{m['loss']:.4f}",
            f"{100 * m['accuracy']:.2f}%",
            f"{100 * low:.2f}-{100 * high:.2f}%",
        )
    console.print(table)
    _print_confusion(np.array(metrics["test"]["confusion"]), "test confusion matrix (rows: true)")


def _print_confusion(confusion: np.ndarray, title: str) -> None:
    table = Table(title=title)
    table.add_column("")
    for k in range(len(confusion)):
        table.add_column(str(k), justify="right")
    for k, row in enumerate(confusion):
        table.add_row(str(k), *(f"[bold]{v}[/]" if i == k else str(v) for i, v in enumerate(row)))
    console.print(table)


@app.command("eval")
@click.argument("model_path", metavar="MODEL")
@click.option("--data", type=click.Choice(["digits", "mnist", "idx"]), help="Dataset [as trained].")
@click.option("--data-dir", help="Folder holding the four IDX files.")
@click.option(
    "--split",
    "split_name",
    type=click.Choice(["train", "val", "test", "all"]),
    default="test",
    show_default=True,
    help="Which part to evaluate on.",
)
def eval_command(model_path: str, data: str | None, data_dir: str | None, split_name: str) -> None:
    """Evaluate a saved model (a run folder or model file) on a dataset split.

    The data pipeline is rebuilt from the config saved with the model (same split and seed),
    so the transforms are fitted on the same training data as in training.
    """
    model, extra = load_model(model_path)
    config = config_of_model(extra)
    if data is not None or data_dir is not None:
        config = load_config(
            None,
            {
                **config.model_dump(),
                "data": data or config.data,
                "data_dir": data_dir or config.data_dir,
            },
        )
    prepared = prepare_data(config)
    if prepared.splits.train.x.shape[1] != model.input_size:
        raise ConfigError(
            f"the model takes {model.input_size} inputs but the data has "
            f"{prepared.splits.train.x.shape[1]}"
        )
    names = ("train", "val", "test") if split_name == "all" else (split_name,)
    for name in names:
        part = getattr(prepared.splits, name)
        m = summarise(evaluate(model, part.x, part.y, config.loss), part.y, prepared.n_classes)
        low, high = m["accuracy_ci95"]
        console.print(
            f"{name}: n={m['n']} loss {m['loss']:.4f} accuracy {100 * m['accuracy']:.2f}% "
            f"(95% interval {100 * low:.2f}-{100 * high:.2f}%)"
        )
        _print_confusion(np.array(m["confusion"]), f"{name} confusion matrix (rows: true)")


def _summary(obj: Any) -> str:
    return (obj.__doc__ or "").strip().splitlines()[0] if obj.__doc__ else ""


@app.command("list")
@click.option("--plugin", multiple=True, help="Python file registering more entries.")
def list_command(plugin: tuple[str, ...]) -> None:
    """List the registered activations, initialisers, losses, optimizers and schedules."""
    for path in plugin:
        load_plugin(path)
    sections: dict[str, dict[str, str]] = {
        "activations": {
            name: f"{entry.doc} (init: {entry.init}"
            + "".join(f", {k}={v}" for k, v in entry.params().items())
            + ")"
            for name, entry in ACTIVATIONS.items()
        },
        "initialisers": {name: _summary(f) for name, f in INITIALISERS.items()},
        "losses": {name: _summary(f) for name, f in LOSSES.items()},
        "optimizers": {name: _summary(cls) for name, cls in OPTIMIZERS.items()},
        "lr schedules": {name: _summary(f) for name, f in SCHEDULES.items()},
    }
    for title, entries in sections.items():
        table = Table(title=title, title_justify="left", show_header=False)
        table.add_column(style="bold")
        table.add_column()
        for name, text in sorted(entries.items()):
            table.add_row(name, text)
        console.print(table)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the click app, turning our errors into one line and an exit code."""
    err = Console(stderr=True, highlight=False)
    try:
        app.main(args=argv, prog_name="digitlab", standalone_mode=False)
    except click.exceptions.Exit as done:
        sys.exit(done.exit_code)
    except click.ClickException as bad:
        err.print(f"digitlab: error: {bad.format_message()}", markup=False, soft_wrap=True)
        sys.exit(bad.exit_code)
    except click.Abort:
        err.print("digitlab: aborted", markup=False)
        sys.exit(130)
    except DigitlabError as failure:
        err.print(f"digitlab: error: {failure}", markup=False, soft_wrap=True)
        sys.exit(1)
    except KeyboardInterrupt:
        err.print("digitlab: interrupted", markup=False)
        sys.exit(130)


app.add_command(report_command)
app.add_command(tough_command)
app.add_command(sweep_command)


if __name__ == "__main__":  # python -m digitlab.cli
    main()
