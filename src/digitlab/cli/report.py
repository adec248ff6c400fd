"""`digitlab report RUN` and `digitlab tough RUN RUN...`: pages and pictures of finished runs.

Both import the drawing code inside the command, so matplotlib loads only when a picture is drawn.
"""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np

from digitlab.cli.complete import run_folders
from digitlab.errors import ConfigError, DataError


@click.command("report")
@click.argument("run", type=click.Path(path_type=Path), shell_complete=run_folders)
def report(run: Path) -> None:
    """Write RUN/report.html, one self-contained page of a run's results, and RUN/plots/*.png."""
    from digitlab.report.html import build_report

    click.echo(str(build_report(run)))


@click.command("tough")
@click.argument(
    "runs", nargs=-1, required=True, type=click.Path(path_type=Path), shell_complete=run_folders
)
@click.option("--threshold", default=0.7, show_default=True, help="Tough: p(true) below this.")
@click.option("--count", default=200, show_default=True, help="At most this many, hardest first.")
@click.option("--out", default="tough.png", show_default=True, type=click.Path(path_type=Path))
def tough(runs: tuple[Path, ...], threshold: float, count: int, out: Path) -> None:
    """The first run's tough test digits (p(true) < threshold), classified by each run.

    Nielsen's 'tough' digits (N11): the test examples to which the first run gave the true
    class a probability below the threshold, hardest first. Prints how many each run gets
    right and draws the hardest (up to 64) with every run's answer. The runs must have been
    tested on the same examples; the images are the first run's test set, prepared again.
    """
    from digitlab.lab.config import make_config
    from digitlab.lab.experiment import prepare_data
    from digitlab.lab.runs import write_bytes
    from digitlab.report.runfolder import read_run
    from digitlab.report.tough import tough_examples, tough_grid

    if not 0 < threshold <= 1 or count < 1:
        raise ConfigError(f"need 0 < threshold <= 1 and count >= 1, got {threshold}, {count}")
    folders = [read_run(run) for run in runs]
    predictions = []
    for folder in folders:
        if folder.predictions is None:
            raise DataError(f"{folder.path}: no predictions.npz (a run from an older digitlab)")
        predictions.append(folder.predictions)
    y = predictions[0]["y"]
    for folder, arrays in zip(folders[1:], predictions[1:], strict=True):
        if not np.array_equal(arrays["y"], y):
            raise DataError(
                f"{folder.path} was tested on other examples than {folders[0].path} "
                "(a different dataset or split): their predictions cannot be compared"
            )
    chosen = tough_examples(predictions[0]["probs"], y, threshold, count)
    click.echo(f"{len(chosen)} tough test digits: p(true) < {threshold} for {folders[0].path}")
    for number, (folder, arrays) in enumerate(zip(folders, predictions, strict=True), 1):
        right = int((arrays["pred"][chosen] == y[chosen]).sum())
        accuracy = float((arrays["pred"] == y).mean())
        click.echo(
            f"  {number}. {folder.path}: {right} of {len(chosen)} right "
            f"(all {len(y):,} test examples: {accuracy:.2%})"
        )
    if len(chosen) == 0:
        return
    prepared = prepare_data(make_config(folders[0].config))
    if not np.array_equal(prepared.splits.test.y, y):
        raise DataError(f"{folders[0].path}: its config no longer gives the test set it was run on")
    answers = [arrays["pred"] for arrays in predictions]
    answers = [arrays["pred"] for arrays in predictions]
    png = tough_grid(prepared.splits.test.x, prepared.image_shape or (), y, chosen, answers)
    click.echo(str(write_bytes(out, png)))
