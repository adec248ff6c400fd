"""`digitlab compare RUN RUN ... [--out FILE]`: runs on the same test images, paired."""

from __future__ import annotations

from pathlib import Path

import click

from digitlab.cli.complete import run_folders


@click.command("compare")
@click.argument(
    "runs", nargs=-1, required=True, type=click.Path(path_type=Path), shell_complete=run_folders
)
@click.option(
    "--out",
    default="compare.html",
    show_default=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The HTML page (the grids of disagreeing digits embedded).",
)
def compare(runs: tuple[Path, ...], out: Path) -> None:
    """Compare two or more runs on the test images they all saw.

    Prints each run's test accuracy with its 95% Wilson interval, McNemar's exact test for each
    pair (Holm-corrected over the pairs) and the per-class accuracies, and writes OUT: the same
    tables and, per pair, a grid of the digits they disagree on. Runs saved without
    predictions.npz have their model evaluated again on the test set their config names.
    """
    from rich.table import Table

    from digitlab.cli.output import console
    from digitlab.errors import ConfigError, DigitlabError
    from digitlab.lab.runs import write_text
    from digitlab.report.compare import (
        check_same_images,
        compare_html,
        disagreement_grid,
        method_text,
        pairs_of,
        per_class,
        read_answers,
        test_images,
        test_set_name,
        verdict,
    )

    if len(runs) < 2:
        raise ConfigError("compare needs two or more run folders")
    answers = [read_answers(run) for run in runs]
    check_same_images(answers)
    pairs = pairs_of(answers)
    first = answers[0]
    console.print(
        f"test images: {test_set_name(first.config)}, {len(first.y):,} of them, the same for "
        "every run"
    )
    table = Table(title="runs (test accuracy, 95% Wilson interval)")
    for column in ("#", "run", "accuracy", "95% interval", "answers from"):
        right = column in ("#", "accuracy")
        table.add_column(column, justify="right" if right else "left", no_wrap=column != "run")
    for k, run in enumerate(answers, 1):
        low, high = run.interval()
        table.add_row(
            str(k),
            str(run.path),
            f"{100 * run.accuracy:.2f}%",
            f"{100 * low:.2f}-{100 * high:.2f}%",
            run.source,
        )
    console.print(table)
    table = Table(title="pairs: McNemar's exact test on the same test images")
    for column in ("pair", "only 1st right", "only 2nd right", "p", "p (Holm)", "verdict"):
        left = column in ("pair", "verdict")
        table.add_column(column, justify="left" if left else "right", no_wrap=True)
    for pair in pairs:
        table.add_row(
            f"{pair.a + 1} vs {pair.b + 1}",
            str(len(pair.a_only)),
            str(len(pair.b_only)),
            f"{pair.p_value:.3g}",
            f"{pair.holm_p:.3g}",
            verdict(pair),
        )
    console.print(table)
    counts, accuracy = per_class(answers)
    table = Table(title="per-class test accuracy (%) and difference from run 1 (points)")
    table.add_column("class", justify="right")
    table.add_column("images", justify="right")
    for k in range(1, len(answers) + 1):
        table.add_column(f"run {k}", justify="right")
    for k in range(2, len(answers) + 1):
        table.add_column(f"{k} - 1", justify="right")
    for c in range(len(counts)):
        if counts[c]:
            table.add_row(
                str(c),
                str(counts[c]),
                *(f"{100 * a:.2f}" for a in accuracy[:, c]),
                *(f"{100 * (a - accuracy[0, c]):+.2f}" for a in accuracy[1:, c]),
            )
    console.print(table)
    console.print(method_text(pairs) + ".")
    grids, note = {}, ""
    try:
        images, image_shape = test_images(first.config)
        if len(images) != len(first.y):
            raise DigitlabError(f"its config now gives {len(images):,} test images")
        for k, pair in enumerate(pairs):
            png = disagreement_grid(answers, pair, images, image_shape)
            if png is not None:
                grids[k] = png
    except DigitlabError as err:  # the numbers stand; only the pictures are missing
        note = f"the test images could not be loaded again from {first.path}'s config: {err}"
        console.print(f"no grids: {note}")
    console.print(str(write_text(out, compare_html(answers, pairs, grids, note))))
