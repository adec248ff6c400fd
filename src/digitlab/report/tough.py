"""`digitlab tough RUN RUN...`: Nielsen's 'tough' test digits, classified by each later net (N11).

The tough digits are the test examples to which the first run gave the true class a probability
below `--threshold` (0.7), hardest first, at most `--count` (200). The command prints how many
of them each run classifies correctly, and draws a grid of the hardest (up to 64), each titled
with every run's prediction in the order given (red where the last run is wrong). The runs must
have been tested on the same examples (the same data and split); the images are the first
run's test set as its network saw them, prepared again from its config.
"""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np

from digitlab.errors import ConfigError, DataError


def tough_examples(probs: np.ndarray, y: np.ndarray, threshold: float, count: int) -> np.ndarray:
    """Indices of the examples whose true class got probability < threshold, lowest first."""
    p_true = probs[np.arange(len(y)), y]
    hard = np.flatnonzero(p_true < threshold)
    return hard[np.argsort(p_true[hard], kind="stable")][:count]


@click.command("tough")
@click.argument("runs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--threshold", default=0.7, show_default=True, help="Tough: p(true) below this.")
@click.option("--count", default=200, show_default=True, help="At most this many, hardest first.")
@click.option("--out", default="tough.png", show_default=True, type=click.Path(path_type=Path))
def tough_command(runs: tuple[Path, ...], threshold: float, count: int, out: Path) -> None:
    """The first run's tough test digits (p(true) < threshold), classified by each run."""
    # imported here, as in `report`: matplotlib loads only when a picture is drawn
    from digitlab.lab.config import make_config
    from digitlab.lab.experiment import prepare_data
    from digitlab.lab.runs import write_bytes
    from digitlab.report import plots
    from digitlab.report.runfolder import read_run

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
    shown = chosen[: plots.GRID_MAX]
    labels = [
        f"true {y[i]}\n" + " ".join(f"{n}:{a['pred'][i]}" for n, a in enumerate(predictions, 1))
        for i in shown
    ]
    colors = ["black" if predictions[-1]["pred"][i] == y[i] else "tab:red" for i in shown]
    title = f"The {len(shown)} hardest of {len(chosen)} tough test digits, as each run classed them"
    png = plots.labelled_examples_plot(
        prepared.splits.test.x[shown], prepared.image_shape or (), labels, colors, title
    )
    click.echo(str(write_bytes(out, png)))
