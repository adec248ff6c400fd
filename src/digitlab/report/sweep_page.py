"""A sweep's page, OUT/summary.html: settings, the ranked table, its figures and failures.

It reads the trial records (via sweep.py's VariantSummary), each done trial's history.jsonl
(through lab/runs.py's reader) and, for variants that crop, keep a pixel subset or augment, one
trial's model file and test images (the pixels it reads, its augmented images); it never
trains, and uses the run report's page shell and PNG embedder (page.py), so the page is one
self-contained file.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from html import escape
from pathlib import Path
from typing import Any

import numpy as np

from digitlab.data.augment import augment_examples, build_augment
from digitlab.data.transforms import input_pixels
from digitlab.errors import DigitlabError
from digitlab.lab.modelfile import MODEL_FILE, load_model, restore_pipeline
from digitlab.lab.runs import HISTORY_FILE, read_history
from digitlab.report import plots
from digitlab.report.page import document, embed_png
from digitlab.report.sweep import (
    BEST,
    BETTER,
    INTERVAL_METHOD,
    TOO_FEW,
    WITHIN,
    WORSE,
    VariantSummary,
    interval_text,
    option_label,
    percent_text,
    rule_text,
    seeds_text,
    variant_label,
)

COLOURS = {
    BEST: "#1a7f37",
    WITHIN: "#0969da",
    TOO_FEW: "#bf8700",
    WORSE: "#8c959f",
    BETTER: "#cf222e",
}


def accuracy_plot(rows: Sequence[VariantSummary]) -> bytes | None:
    """Mean test accuracy per variant with its 95% interval, in validation rank order; each seed
    as a dot and the mean validation accuracy as a cross."""
    from matplotlib.lines import Line2D

    shown = [row for row in rows if row.done]
    if not shown:
        return None
    fig = plots.new_figure(9, 1.6 + 0.4 * len(shown))
    ax = fig.subplots()
    for y, row in enumerate(reversed(shown)):
        mean = row.mean("test_accuracy")
        assert mean is not None
        colour = COLOURS.get(row.verdict, "#000000")
        interval = row.interval("test")
        err = None
        if interval is not None:
            (low, high), _ = interval
            err = [[100 * (mean - low)], [100 * (high - mean)]]
        ax.errorbar(100 * mean, y, xerr=err, fmt="o", color=colour, capsize=3)
        ax.plot(
            100 * row.values("test_accuracy"), [y] * len(row.done), ".", color=colour, alpha=0.4
        )
        ax.plot(100 * (row.mean("val_accuracy") or 0), y, "x", color="#cf222e", markersize=6)
    ax.set_yticks(range(len(shown)), [variant_label(r.options) for r in reversed(shown)])
    ax.set_xlabel("accuracy (%)")
    ax.set_title("Test accuracy per variant, ranked top-down by validation accuracy")
    ax.grid(axis="x", alpha=0.3)
    handles = [
        Line2D(
            [], [], marker="o", linestyle="", color=COLOURS[BEST], label="test: mean, 95% interval"
        ),
        Line2D(
            [], [], marker=".", linestyle="", color=COLOURS[BEST], alpha=0.4, label="test: seeds"
        ),
        Line2D([], [], marker="x", linestyle="", color="#cf222e", label="validation: mean"),
    ]
    handles += [
        Line2D([], [], marker="s", linestyle="", color=c, label=v) for v, c in COLOURS.items()
    ]
    ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return plots.figure_png(fig)


def curves_plot(rows: Sequence[VariantSummary], curves: dict[int, np.ndarray]) -> bytes | None:
    """Validation accuracy per epoch, averaged over each variant's seeds; a triangle marks the
    first epoch of each activation a variant's activation_schedule switches to."""
    from matplotlib.ticker import MaxNLocator

    if not curves:
        return None
    fig = plots.new_figure(9, 4.8)
    ax = fig.subplots()
    colours = [f"C{k}" for k in range(10)]
    switched = False
    for k, (index, curve) in enumerate(sorted(curves.items())):
        ax.plot(
            np.arange(1, len(curve) + 1),
            100 * curve,
            color=colours[k % 10],
            linestyle=("-", "--", ":")[(k // 10) % 3],
            label=variant_label(rows[index].options),
        )
        starts = [int(s[0]) for s in rows[index].options.get("activation_schedule") or []]
        starts = [e for e in starts if e < len(curve)]  # 0-based: epoch e + 1 is the first
        if starts:
            marks = 100 * curve[starts]
            ax.plot(np.array(starts) + 1, marks, "v", color=colours[k % 10], markersize=8)
            switched = True
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("validation accuracy (%), mean over seeds")
    ax.set_title("Validation curves" + (" (triangles: activation switched)" if switched else ""))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    return plots.figure_png(fig)


def mean_curves(rows: Sequence[VariantSummary], trials_dir: Path) -> dict[int, np.ndarray]:
    """Row index -> validation accuracy per epoch averaged over the seeds that reached it."""
    curves = {}
    for index, row in enumerate(rows):
        series = [
            [h.get("val_accuracy", np.nan) for h in read_history(trials_dir / r["id"])]
            for r in row.done
            if (trials_dir / r["id"] / HISTORY_FILE).is_file()  # a trial_fn may write none
        ]
        series = [s for s in series if s]
        if not series:
            continue
        padded = np.full((len(series), max(len(s) for s in series)), np.nan)
        for k, s in enumerate(series):
            padded[k, : len(s)] = s
        curves[index] = np.nanmean(padded, axis=0)  # early-stopped seeds drop out of later epochs
    return curves


def first_trial(
    row: VariantSummary, trials_dir: Path, wanted: Callable[[dict[str, Any]], bool]
) -> tuple[Path, dict[str, Any]] | None:
    """A variant's first done trial's folder and config, when its config is `wanted`."""
    if not row.done:
        return None
    folder = trials_dir / row.done[0]["id"]
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError):
        return None
    return (folder, config) if isinstance(config, dict) and wanted(config) else None


def kept_pixels(
    rows: Sequence[VariantSummary], trials_dir: Path
) -> tuple[list[np.ndarray], list[str]]:
    """The raw pixels each variant that crops or keeps a pixel subset reads, as (h, w) bool
    masks (its first done trial's, from the pipeline saved with its model), and their labels."""
    masks, labels = [], []
    for row in rows:
        first = first_trial(row, trials_dir, lambda c: bool(c.get("crop") or c.get("pixel_subset")))
        if first is None:
            continue
        folder, config = first
        try:
            _, extra = load_model(folder / MODEL_FILE)
            record = extra["pipeline"]
            height, width = (int(side) for side in record["image_shape"])
            pixels = input_pixels(restore_pipeline(config, record), (height, width))
        except (OSError, ValueError, KeyError, TypeError, AttributeError, DigitlabError):
            continue  # a trial without a model file or pipeline: nothing to draw
        mask = np.zeros(height * width, dtype=bool)
        mask[pixels] = True
        masks.append(mask.reshape(height, width))
        labels.append(variant_label(row.options))
    return masks, labels


def pixels_plot(rows: Sequence[VariantSummary], trials_dir: Path) -> bytes | None:
    """kept_pixels side by side; None when no variant selects pixels."""
    masks, labels = kept_pixels(rows, trials_dir)
    if not masks or len({mask.shape for mask in masks}) > 1:
        return None
    title = "pixels each variant keeps (black; its first seed's run)"
    labels = [label.replace(" ", "\n") for label in labels]
    return plots.labelled_tiles_plot(np.stack(masks), labels, title)


def augmented_plot(rows: Sequence[VariantSummary], trials_dir: Path) -> bytes | None:
    """For each variant that augments, a test image and four variants of it as its first done
    trial's settings make them (fill included), drawn with a fixed seed; the same test image
    in every row when the trials' saved examples share one. None if no variant augments."""
    found = []  # (label, settings, pixel range, test indices, their images, image shape)
    for row in rows:
        first = first_trial(row, trials_dir, lambda c: bool(c.get("augment")))
        if first is None:
            continue
        folder, config = first
        try:
            _, extra = load_model(folder / MODEL_FILE)
            black, white = extra["pipeline"].get("pixel_range", (0.0, 1.0))
            with np.load(folder / "predictions.npz", allow_pickle=False) as arrays:
                shape = tuple(int(side) for side in arrays["image_shape"])
                examples, images = arrays["test_examples"], arrays["test_example_images"]
        except (OSError, ValueError, KeyError, TypeError, DigitlabError):
            continue  # a trial without its model or predictions: nothing to draw
        if len(shape) != 2 or not len(examples):
            continue
        span = (float(black), float(white))
        found.append((variant_label(row.options), config, span, examples, images, shape))
    if not found or len({item[-1] for item in found}) > 1:
        return None
    shared = set.intersection(*(set(item[3].tolist()) for item in found))
    tiles, labels = [], []
    for label, config, span, examples, images, shape in found:
        pick = int(np.flatnonzero(examples == min(shared))[0]) if shared else 0
        augment = build_augment(
            config["augment"],
            (shape[0], shape[1]),
            np.random.default_rng(0),
            background="max" if config.get("invert") else "min",
            pixel_range=span,
        )
        grid = augment_examples(images[pick : pick + 1], augment, (shape[0], shape[1]), 1, 4)
        tiles.extend(grid[0])
        labels += ["", "", label, "", ""]  # over the middle of its row
    title = "a test image and four augmented variants, per variant (fixed seed)"
    return plots.labelled_tiles_plot(np.stack(tiles), labels, title, columns=5)


def tests_text(row: VariantSummary) -> str:
    """The comparison's numbers for the page: test difference, p-values, seeds."""
    c = row.comparison
    if c is None:
        return ""
    parts = [f"{c.seeds} shared seed{'s' * (c.seeds != 1)}"]
    if c.seeds:
        parts.append(f"test difference {100 * c.difference:+.2f} points")
    if c.paired_t_p is not None:
        parts.append(f"paired t p = {c.paired_t_p:.3g}")
    if c.mcnemar_p is not None:
        seeds = ", ".join(f"seed {seed}: {p:.2g}" for seed, p in c.per_seed_mcnemar)
        parts.append(f"McNemar p = {c.mcnemar_p:.3g} (per seed: {seeds})")
    if c.holm_p is not None:
        parts.append(f"<b>p (Holm) = {c.holm_p:.3g}</b>")
    return "; ".join(parts)


def summary_html(
    title: str,
    rows: Sequence[VariantSummary],
    keys: Sequence[str],
    trials_dir: Path,
    details: dict[str, Any],
    extra_html: str = "",
) -> str:
    """The self-contained page: settings, table, both plots (embedded PNGs), `extra_html` (an
    optuna search's section, report/search.py) and failures."""
    pngs = {
        "Test accuracy per variant": accuracy_plot(rows),
        "Validation curves": curves_plot(rows, mean_curves(rows, trials_dir)),
        "Input pixels per variant": pixels_plot(rows, trials_dir),
        "Augmented images per variant": augmented_plot(rows, trials_dir),
    }
    head = "".join(f"<th>{escape(h)}</th>" for h in ("#", *keys)) + "".join(
        f"<th>{h}</th>"
        for h in (
            "seeds",
            "val acc (mean ± std)",
            "val 95% interval",
            "test acc (mean ± std)",
            "test 95% interval",
        )
    )
    body = []
    for rank, row in enumerate(rows, 1):
        cells = [str(rank) if row.done else ""]
        cells += [escape(option_label(row.options.get(k, ""))) for k in keys]
        cells += [
            seeds_text(row),
            percent_text(row.mean("val_accuracy"), row.std("val_accuracy")),
            interval_text(row, "val"),
            percent_text(row.mean("test_accuracy"), row.std("test_accuracy")),
            interval_text(row),
        ]
        verdict = f'<td class="v-{row.verdict.split()[0]}">{escape(row.verdict)}</td>'
        body.append(
            "<tr>"
            + "".join(f'<td class="num">{c}</td>' for c in cells)
            + verdict
            + f"<td>{tests_text(row)}</td></tr>"
        )
    failures = [
        f"<li><code>{escape(r['id'])}</code>: {escape(str(r.get('reason')))}</li>"
        for row in rows
        for r in row.failed
    ]
    settings = "".join(
        f"<tr><th>{escape(k)}</th><td><code>{escape(json.dumps(v))}</code></td></tr>"
        for k, v in details.items()
    )
    figures = "".join(
        f"<h2>{escape(name)}</h2>{embed_png(png, name)}"
        for name, png in pngs.items()
        if png is not None
    )
    rule = rule_text(rows)
    body_html = f"""<p>Variants are ranked and the best is selected by mean <b>validation</b>
accuracy over seeds; test accuracy is never used to pick. Intervals: {escape(INTERVAL_METHOD)}.
{escape(rule[0].upper() + rule[1:])}.</p>
<h2>Summary</h2>
<table><thead><tr>{head}<th>vs best</th><th>tests against the best</th></tr></thead><tbody>
{"".join(body)}
</tbody></table>
{figures}
{extra_html}
<h2>Failed trials</h2>
{"<ul>" + "".join(failures) + "</ul>" if failures else "<p>None.</p>"}
<h2>Sweep</h2>
<table>{settings}</table>"""
    return document(title, title, body_html)
