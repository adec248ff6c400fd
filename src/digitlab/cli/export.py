"""`digitlab export tensorboard|mlflow RUN...`: runs and sweeps into tracking tools.

The trackers are imported inside the commands, so `digitlab` starts without them installed.
"""

from __future__ import annotations

from pathlib import Path

import click

from digitlab.cli.complete import run_folders

RUNS = click.argument(
    "runs", nargs=-1, required=True, type=click.Path(path_type=Path), shell_complete=run_folders
)


@click.group("export")
def export() -> None:
    """Export run folders and sweeps (every trial) to TensorBoard or MLflow."""


@export.command("tensorboard")
@RUNS
@click.option(
    "--to",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Log folder: each run goes to TO/<name> (a rerun replaces it).",
)
def tensorboard(runs: tuple[Path, ...], to: Path) -> None:
    """Write runs and sweeps as TensorBoard event files.

    RUNS are run folders or sweep folders (every finished trial). Each run gets TO/<name>: its
    per-epoch numbers as scalars, its config and final metrics as hparams and the report's
    figures as images. View them with `tensorboard --logdir TO`.
    """
    from digitlab.export import export_tensorboard, find_runs

    sources, notes = find_runs(list(runs))
    for note in notes:
        click.echo(note)
    for folder in export_tensorboard(sources, to):
        click.echo(f"wrote {folder}")


@export.command("mlflow")
@RUNS
@click.option(
    "--tracking-uri",
    help="Where to log [sqlite:///mlflow.db: a database in the current folder, artifacts in "
    "./mlruns]; a folder or file:URI for a file store.",
)
@click.option("--experiment", default="digitlab", show_default=True, help="MLflow experiment.")
def mlflow(runs: tuple[Path, ...], tracking_uri: str | None, experiment: str) -> None:
    """Log runs and sweeps as MLflow runs.

    RUNS are run folders or sweep folders (every finished trial, under a parent run per sweep).
    Each run gets its config as params, its per-epoch metrics (step = epoch), its final metrics
    and its folder's files as artifacts. Exporting again adds no duplicate: an unchanged run is
    kept, a changed one replaced.
    """
    from digitlab.export import DEFAULT_TRACKING_URI, export_mlflow, find_runs

    sources, notes = find_runs(list(runs))
    for note in notes:
        click.echo(note)
    uri = tracking_uri or DEFAULT_TRACKING_URI
    for done in export_mlflow(sources, uri, experiment):
        click.echo(f"{done.action:9} {done.name}: run {done.run_id}")
    click.echo(f"tracking URI {uri}, experiment {experiment!r}")
