"""Two or more runs on the same test images: `digitlab compare RUN RUN ...`.

Each run's test accuracy with its 95% Wilson interval; for each pair McNemar's exact test on
the images both classified (the discordant ones: right for one run, wrong for the other), with
Holm's correction over the pairs; per-class accuracies and their differences from the first
run; and a grid of the digits each pair disagrees on. Per-image answers come from each run's
predictions.npz; a run written before that file existed has its model (model.npz) evaluated
again on the test set its config.json names. Runs tested on other images (another dataset,
split or count) cannot be paired: that is one DataError saying which and why.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

import numpy as np

from digitlab.errors import DataError, DigitlabError
from digitlab.lab.runs import is_run_folder
from digitlab.stats import holm, mcnemar_exact, wilson_interval

ALPHA = 0.05
METHOD = (
    "Intervals: 95% Wilson interval of each run's test accuracy. Pairs: McNemar's exact test "
    "(a two-sided binomial test of the images only one of the two runs got right), on the same "
    "test images, Holm-corrected over the {m} pair{s}"
)


@dataclass
class RunAnswers:
    """One run's answers on its test set."""

    path: Path
    config: dict[str, Any]
    y: np.ndarray
    pred: np.ndarray
    source: str  # "predictions.npz" or "model.npz, evaluated again"

    @property
    def correct(self) -> np.ndarray:
        return self.pred == self.y

    @property
    def accuracy(self) -> float:
        return float(self.correct.mean())

    def interval(self) -> tuple[float, float]:
        return wilson_interval(int(self.correct.sum()), len(self.y))


@dataclass
class Pair:
    """Runs a and b (indices) on the same images: who got which right, and the test."""

    a: int
    b: int
    a_only: np.ndarray  # indices of images only a got right
    b_only: np.ndarray
    both_wrong_apart: np.ndarray  # both wrong, with different answers
    p_value: float
    holm_p: float = 1.0


def test_set_name(config: dict[str, Any]) -> str:
    """The test images a config names, in words: the dataset's test set (the folder's name for
    idx), or with the book split its second half. Holdout and nielsen share the whole test set."""
    data = str(config.get("data"))
    if data == "idx" and config.get("data_dir"):
        data = f"idx:{Path(str(config['data_dir'])).name}"
    if config.get("split") == "book":
        return f"the second half of the {data} test set (book split)"
    return f"the {data} test set"


def read_answers(run: Path) -> RunAnswers:
    """A run folder's test labels and predictions: from predictions.npz, else by evaluating
    model.npz again on the test set of its saved config (or a one-line DataError why not)."""
    from digitlab.report.runfolder import read_run

    if not run.is_dir():
        raise DataError(f"{run}: not a run folder (no such folder)")
    if not is_run_folder(run):
        raise DataError(f"{run}: not a run folder (no config.json or history.jsonl)")
    folder = read_run(run)
    if folder.live is not None:
        raise DataError(f"{run}: the run has not finished ({folder.live['state']}): no results")
    if folder.predictions is not None:
        y, pred = folder.predictions["y"], folder.predictions["pred"]
        return RunAnswers(run, folder.config, y, pred, "predictions.npz")
    y, pred = _evaluate_again(run, folder.config)
    return RunAnswers(run, folder.config, y, pred, "model.npz, evaluated again")


def _evaluate_again(run: Path, saved: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    from digitlab.core.evaluation import evaluate
    from digitlab.lab.config import make_config
    from digitlab.lab.experiment import prepare_data
    from digitlab.lab.modelfile import MODEL_FILE, load_model

    try:
        model, _ = load_model(run / MODEL_FILE)
        config = make_config(saved)
        test = prepare_data(config).splits.test
        result = evaluate(model, test.x, test.y, config.loss)
    except DigitlabError as err:
        raise DataError(
            f"{run}: no predictions.npz, and its model cannot be evaluated again: {err}"
        ) from None
    return test.y, result.predictions


def check_same_images(runs: list[RunAnswers]) -> None:
    """Every run must have been tested on the same images as the first: the same dataset,
    split and count, and (as a check) the same labels in the same order."""
    first = runs[0]
    for other in runs[1:]:
        names = test_set_name(first.config), test_set_name(other.config)
        if names[0] != names[1] or len(first.y) != len(other.y):
            raise DataError(
                f"{first.path} and {other.path} cannot be paired: tested on {names[0]} "
                f"({len(first.y):,} images) vs {names[1]} ({len(other.y):,} images)"
            )
        if not np.array_equal(first.y, other.y):
            raise DataError(
                f"{first.path} and {other.path} cannot be paired: their test labels differ, "
                "so they did not see the same images in the same order"
            )


def pairs_of(runs: list[RunAnswers]) -> list[Pair]:
    """Every pair of runs, McNemar's exact test on each, Holm-adjusted over the pairs."""
    pairs = []
    for a in range(len(runs)):
        for b in range(a + 1, len(runs)):
            right_a, right_b = runs[a].correct, runs[b].correct
            a_only, b_only = np.flatnonzero(right_a & ~right_b), np.flatnonzero(~right_a & right_b)
            apart = np.flatnonzero(~right_a & ~right_b & (runs[a].pred != runs[b].pred))
            pairs.append(Pair(a, b, a_only, b_only, apart, mcnemar_exact(len(a_only), len(b_only))))
    for pair, adjusted in zip(pairs, holm([p.p_value for p in pairs]), strict=True):
        pair.holm_p = float(adjusted)
    return pairs


def per_class(runs: list[RunAnswers]) -> tuple[np.ndarray, np.ndarray]:
    """Images per class (k,) and each run's accuracy per class (runs, k); NaN for a class
    without images."""
    y = runs[0].y
    classes = int(max(r.y.max() for r in runs)) + 1
    counts = np.bincount(y, minlength=classes)
    right = np.stack([np.bincount(y[r.correct], minlength=classes) for r in runs])
    with np.errstate(invalid="ignore", divide="ignore"):  # a class with no images: NaN
        return counts, right / counts


def method_text(pairs: list[Pair]) -> str:
    return METHOD.format(m=len(pairs), s="s" * (len(pairs) != 1))


def verdict(pair: Pair) -> str:
    if pair.holm_p >= ALPHA:
        return "within noise"
    return f"{pair.a + 1} better" if len(pair.a_only) > len(pair.b_only) else f"{pair.b + 1} better"


def disagreement_grid(
    runs: list[RunAnswers], pair: Pair, images: np.ndarray, image_shape: tuple[int, ...]
) -> bytes | None:
    """The images a pair disagrees on: only the first right (blue), only the second (red),
    then both wrong with different answers (black); up to plots.GRID_MAX, shared evenly."""
    from digitlab.report import plots

    groups = [pair.a_only, pair.b_only, pair.both_wrong_apart]
    if not sum(len(g) for g in groups):
        return None
    # an even share of the grid for each kind (what one kind leaves goes to the others)
    quota, left = [0, 0, 0], plots.GRID_MAX
    while left and any(quota[k] < len(g) for k, g in enumerate(groups)):
        for k, group in enumerate(groups):
            if left and quota[k] < len(group):
                quota[k], left = quota[k] + 1, left - 1
    shown = np.concatenate([g[:q] for g, q in zip(groups, quota, strict=True)]).astype(np.int64)
    colours = [
        c for c, q in zip(("tab:blue", "tab:red", "black"), quota, strict=True) for _ in range(q)
    ]
    a, b, y = runs[pair.a].pred, runs[pair.b].pred, runs[0].y
    labels = [f"true {y[i]}\n{pair.a + 1}:{a[i]} {pair.b + 1}:{b[i]}" for i in shown]
    title = (
        f"Runs {pair.a + 1} and {pair.b + 1} disagree on {sum(len(g) for g in groups)} test "
        f"digits: blue only {pair.a + 1} right ({len(pair.a_only)}), red only {pair.b + 1} right "
        f"({len(pair.b_only)}), black both wrong ({len(pair.both_wrong_apart)}); "
        f"{len(shown)} shown"
    )
    return plots.labelled_examples_plot(images[shown], image_shape, labels, colours, title)


def test_images(config: dict[str, Any]) -> tuple[np.ndarray, tuple[int, ...]]:
    """The raw test images (n, features) of the run's dataset and split, for the grids."""
    from digitlab.lab.config import make_config
    from digitlab.lab.experiment import raw_splits

    dataset, splits = raw_splits(make_config(config))
    return splits.test.x, tuple(dataset.image_shape)


def _percent(value: float) -> str:
    return "-" if np.isnan(value) else f"{100 * value:.2f}"


def compare_html(
    runs: list[RunAnswers], pairs: list[Pair], grids: dict[int, bytes], note: str
) -> str:
    """The page: runs, pairs, per-class accuracies and the grids (embedded PNGs)."""
    from digitlab.report.page import document, embed_png

    run_rows = "".join(
        f"<tr><td>{k}</td><td><code>{escape(str(r.path))}</code></td>"
        f'<td class="num">{100 * r.accuracy:.2f}%</td>'
        f'<td class="num">{100 * r.interval()[0]:.2f}-{100 * r.interval()[1]:.2f}%</td>'
        f'<td class="num">{int(r.correct.sum()):,} / {len(r.y):,}</td>'
        f"<td>{escape(r.source)}</td></tr>"
        for k, r in enumerate(runs, 1)
    )
    pair_rows = "".join(
        f'<tr><td>{p.a + 1} vs {p.b + 1}</td><td class="num">{len(p.a_only)}</td>'
        f'<td class="num">{len(p.b_only)}</td><td class="num">{len(p.both_wrong_apart)}</td>'
        f'<td class="num">{p.p_value:.3g}</td><td class="num">{p.holm_p:.3g}</td>'
        f"<td>{escape(verdict(p))}</td></tr>"
        for p in pairs
    )
    counts, accuracy = per_class(runs)
    head = "".join(f"<th>run {k}</th>" for k in range(1, len(runs) + 1))
    head += "".join(f"<th>{k} - 1 (points)</th>" for k in range(2, len(runs) + 1))
    class_rows = "".join(
        f'<tr><td>{c}</td><td class="num">{counts[c]}</td>'
        + "".join(f'<td class="num">{_percent(a)}</td>' for a in accuracy[:, c])
        + "".join(
            f'<td class="num">{100 * (a - accuracy[0, c]):+.2f}</td>' for a in accuracy[1:, c]
        )
        + "</tr>"
        for c in range(len(counts))
        if counts[c]
    )
    figures = "".join(
        f"<h3>Runs {pairs[k].a + 1} and {pairs[k].b + 1}</h3>"
        + embed_png(png, f"digits runs {pairs[k].a + 1} and {pairs[k].b + 1} disagree on")
        for k, png in grids.items()
    )
    images = escape(test_set_name(runs[0].config))
    body = f"""<p>{escape(method_text(pairs))}. Test images: {images}, {len(runs[0].y):,} of
them, the same for every run.</p>
<h2 id="runs">Runs</h2>
<table><thead><tr><th>#</th><th>run</th><th>test accuracy</th><th>95% Wilson interval</th>
<th>right</th><th>answers from</th></tr></thead><tbody>{run_rows}</tbody></table>
<h2 id="pairs">Pairs</h2>
<table><thead><tr><th>pair</th><th>only the first right</th><th>only the second right</th>
<th>both wrong, apart</th><th>McNemar exact p</th><th>p (Holm)</th><th>verdict</th></tr></thead>
<tbody>{pair_rows}</tbody></table>
<h2 id="per-class">Per class</h2>
<table><thead><tr><th>class</th><th>images</th>{head}</tr></thead><tbody>{class_rows}</tbody></table>
<h2 id="disagreements">Where they disagree</h2>
{f'<p class="note">{escape(note)}</p>' if note else ""}{figures or "<p>They never disagree.</p>"}"""
    return document(
        "compare runs", "Compare runs", body, nav=["runs", "pairs", "per-class", "disagreements"]
    )
