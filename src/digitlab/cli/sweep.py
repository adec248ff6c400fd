"""`digitlab sweep SWEEP.toml [--out DIR] [--workers N] [--ray ADDRESS|local] [--retry-failed]`."""

from __future__ import annotations

import click

from digitlab.lab.sweep import read_sweep, run_sweep


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
def sweep(
    sweep_file: str,
    out: str | None,
    workers: int | None,
    ray_address: str | None,
    retry_failed: bool,
) -> None:
    """Run a parameter sweep (configs x seeds) from a TOML file; resumes where it stopped.
    With mode = "optuna" in the file, an adaptive search (pip install 'digitlab[optuna]').

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
