"""The report's figures, drawn from plain arrays and dicts read from a run folder.

Every `*_plot` function takes NumPy arrays, lists or dicts (never a path, never a model) and
returns the PNG file's bytes; the caller decides where they go. Nothing here trains or evaluates.

Figures are built with matplotlib's object API on an explicit Agg canvas, never through pyplot:
nothing is shown, no global backend is switched (a notebook importing this keeps its own), and no
figure is registered anywhere, so each one is freed as soon as its PNG is written.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import MaxNLocator

DPI = 100
GRID_MAX = 64  # images per grid (hardest, misclassified, first-layer units)
GRID_COLUMNS = 8
JITTER_SEED = 0
SPLIT_STYLE = {"train": "tab:blue", "val": "tab:orange", "test": "tab:green"}
SPLIT_LABEL = {"train": "train", "val": "validation", "test": "test"}


def new_figure(width: float, height: float, constrained: bool = True) -> Figure:
    """A figure (inches) attached to an Agg canvas, outside pyplot."""
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained" if constrained else None)
    FigureCanvasAgg(fig)
    return fig


def figure_png(fig: Figure) -> bytes:
    """The figure as PNG bytes; the figure is cleared afterwards."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    fig.clear()
    return buffer.getvalue()


def history_series(history: Sequence[Mapping[str, Any]], key: str) -> np.ndarray:
    """The per-epoch values of `key` as float64, NaN where a record lacks it or is not a number."""
    values = []
    for record in history:
        value = record.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            values.append(float(value))
        else:
            values.append(np.nan)
    return np.array(values, dtype=np.float64)


def switch_marks(
    history: Sequence[Mapping[str, Any]], config: Mapping[str, Any]
) -> list[tuple[float, str]]:
    """(x, label) for each epoch whose record marks an activation switch: the line goes between
    the last epoch of the old activation and the first of the new, labelled with the new one
    (named in the config's activation_schedule)."""
    names = {}
    for epoch, entry in config.get("activation_schedule") or []:
        names[int(epoch) + 1] = entry.get("name") if isinstance(entry, Mapping) else entry
    marks = []
    for i, record in enumerate(history):
        if record.get("activation_switch"):
            epoch = int(record.get("epoch", i + 1))
            marks.append((epoch - 0.5, f"activation -> {names.get(epoch, '?')}"))
    return marks


def curves_plot(
    history: Sequence[Mapping[str, Any]],
    metric: str,
    marks: Sequence[tuple[float, str]] = (),
) -> bytes | None:
    """`metric` ('loss' or 'accuracy') per epoch for train, validation and, if recorded, test,
    with a dashed vertical line at each of `marks` (x, label): see switch_marks.

    Returns None when no epoch holds a number for the metric. Keys other than
    `{train,val,test}_{metric}` and `epoch` are ignored.
    """
    epochs = history_series(history, "epoch")
    if np.isnan(epochs).any():
        epochs = np.arange(1, len(history) + 1, dtype=np.float64)
    fig = new_figure(6.0, 4.0)
    ax = fig.add_subplot()
    drawn = 0
    for split, color in SPLIT_STYLE.items():
        values = history_series(history, f"{split}_{metric}")
        if np.isnan(values).all():
            continue
        ax.plot(epochs, values, marker="o", markersize=3, color=color, label=SPLIT_LABEL[split])
        drawn += 1
    if drawn == 0:
        return None
    for (x, label), style in zip(marks, ["--", ":", "-."] * len(marks), strict=False):
        ax.axvline(x, color="0.35", linestyle=style, linewidth=1, label=label)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric)
    ax.set_title(f"{metric} per epoch")
    ax.grid(alpha=0.3)
    ax.legend()
    return figure_png(fig)


def confusion_plot(confusion: np.ndarray, title: str = "test confusion matrix") -> bytes:
    """Heat map of counts[true, predicted]: colour is the share of the true class, text the count.

    Colouring by row share keeps errors visible in small classes; the count is written in each
    cell.
    """
    counts = np.asarray(confusion, dtype=np.int64)
    k = counts.shape[0]
    totals = counts.sum(axis=1, keepdims=True)
    shares = counts / np.maximum(totals, 1)
    size = min(max(4.5, 0.55 * k + 1.5), 14.0)
    fig = new_figure(size + 1.0, size)
    ax = fig.add_subplot()
    image = ax.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of the true class")
    fontsize = 9 if k <= 12 else 6
    for true in range(k):
        for predicted in range(k):
            ax.text(
                predicted,
                true,
                str(counts[true, predicted]),
                ha="center",
                va="center",
                fontsize=fontsize,
                color="white" if shares[true, predicted] > 0.5 else "black",
            )
    ax.set_xticks(range(k))
    ax.set_yticks(range(k))
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(f"{title} (n = {int(counts.sum())})")
    return figure_png(fig)


@dataclass
class PerClass:
    """Per-class scores from a confusion matrix; NaN where a class is never true / predicted."""

    support: np.ndarray  # (k,) examples whose true class is j (row sums)
    predicted: np.ndarray  # (k,) examples predicted as j (column sums)
    precision: np.ndarray  # (k,) counts[j, j] / predicted[j]
    recall: np.ndarray  # (k,) counts[j, j] / support[j]


def per_class_scores(confusion: np.ndarray) -> PerClass:
    """precision_j = C[j, j] / sum_i C[i, j] and recall_j = C[j, j] / sum_i C[j, i]."""
    counts = np.asarray(confusion, dtype=np.int64)
    correct = np.diag(counts).astype(np.float64)
    support, predicted = counts.sum(axis=1), counts.sum(axis=0)
    # 0/0 is a class that never occurs (or is never predicted): NaN, shown as a dash
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(predicted > 0, correct / predicted, np.nan)
        recall = np.where(support > 0, correct / support, np.nan)
    return PerClass(support, predicted, precision, recall)


def per_class_plot(scores: PerClass) -> bytes:
    """Bars of precision and recall per class."""
    k = len(scores.support)
    classes = np.arange(k)
    fig = new_figure(min(max(6.0, 0.6 * k + 1.5), 16.0), 4.0)
    ax = fig.add_subplot()
    width = 0.4
    ax.bar(classes - width / 2, np.nan_to_num(scores.precision), width, label="precision")
    ax.bar(classes + width / 2, np.nan_to_num(scores.recall), width, label="recall")
    ax.set_xticks(classes)
    ax.set_xlabel("class")
    ax.set_ylim(0.0, 1.05)
    ax.set_title("precision and recall per class (test)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2)
    return figure_png(fig)


def example_tiles(images: np.ndarray, image_shape: Sequence[int]) -> np.ndarray:
    """Images (n, features) as tiles (n, h, w): reshaped by image_shape, or, when that is empty,
    each feature vector as a strip one eighth as tall as it is wide."""
    images = np.asarray(images)
    n, features = images.shape
    if len(image_shape) == 2:
        height, width = int(image_shape[0]), int(image_shape[1])
        return images.reshape(n, height, width)
    return np.repeat(images[:, None, :], max(1, features // 8), axis=1)


def _tile_grid(
    tiles: np.ndarray,
    labels: Sequence[str],
    colors: Sequence[str],
    title: str,
    cmap: str,
    symmetric: bool = False,
    columns: int | None = None,
) -> bytes:
    """Tiles in rows of GRID_COLUMNS, each with its own colour scale and a label above it.

    All tiles share one axes whose data units are inches, so there is one axes to draw
    rather than one per tile.
    """
    n, height, width = tiles.shape
    strips = width > 2 * height  # feature vectors, not images: fewer, wider tiles
    columns = min(columns or (4 if strips else GRID_COLUMNS), n)
    rows = -(-n // columns)
    tile_width = 2.8 if strips else 1.4
    tile_height = tile_width * height / width
    label_height = 0.2 * (1 + max(label.count("\n") for label in labels)) + 0.05
    gap = 0.15
    header = 0.45
    cell_width, cell_height = tile_width + gap, tile_height + label_height + gap
    fig_width, fig_height = columns * cell_width + gap, rows * cell_height + header
    fig = new_figure(fig_width, fig_height, constrained=False)
    ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
    for i in range(n):
        row, column = divmod(i, columns)
        left = gap + column * cell_width
        top = header + row * cell_height + label_height
        tile = tiles[i].astype(np.float64)
        bound = (float(np.abs(tile).max()) or 1.0) if symmetric else None
        ax.imshow(
            tile,
            cmap=cmap,
            extent=(left, left + tile_width, top + tile_height, top),
            interpolation="nearest",
            vmin=-bound if bound is not None else None,
            vmax=bound,
        )
        frame = Rectangle((left, top), tile_width, tile_height, fill=False, lw=0.5, ec="0.8")
        ax.add_patch(frame)  # shows a tile's extent where its edge pixels are background
        ax.text(
            left + tile_width / 2,
            top - 0.03,
            labels[i],
            ha="center",
            va="bottom",
            fontsize=9.5,
            color=colors[i],
        )
    ax.text(fig_width / 2, 0.12, title, ha="center", va="top", fontsize=12)
    ax.set_xlim(0.0, fig_width)
    ax.set_ylim(fig_height, 0.0)
    ax.set_aspect("equal")
    ax.set_axis_off()
    return figure_png(fig)


def examples_plot(
    images: np.ndarray,
    y: np.ndarray,
    predictions: np.ndarray,
    probabilities: np.ndarray,
    image_shape: Sequence[int],
    title: str,
) -> bytes:
    """A grid of inputs, each titled 'true t / pred p (prob q)', q the predicted class's
    probability; misclassified titles in red.

    images (n, features) as the network saw them (each tile gets its own grey scale, so
    standardised inputs look like the digits); y, predictions (n,); probabilities (n,).
    """
    labels = [
        f"true {t} / pred {p}\n(prob {q:.2f})"
        for t, p, q in zip(
            y[:GRID_MAX], predictions[:GRID_MAX], probabilities[:GRID_MAX], strict=True
        )
    ]
    colors = ["black" if t == p else "tab:red" for t, p in zip(y, predictions, strict=True)]
    return labelled_examples_plot(images, image_shape, labels, colors, title)


def labelled_examples_plot(
    images: np.ndarray,
    image_shape: Sequence[int],
    labels: Sequence[str],
    colors: Sequence[str],
    title: str,
) -> bytes:
    """A grid of inputs (n, features), each under its own label and label colour."""
    tiles = example_tiles(images[:GRID_MAX], image_shape)
    return _tile_grid(tiles, list(labels)[:GRID_MAX], list(colors)[:GRID_MAX], title, "gray_r")


def jitter_scatter_plot(y: np.ndarray, predictions: np.ndarray, n_classes: int) -> bytes:
    """Predicted against true class, each point jittered (seeded) so the counts show as clouds;
    misclassified points in red on top."""
    rng = np.random.default_rng(JITTER_SEED)
    y, predictions = np.asarray(y), np.asarray(predictions)
    x_jitter = y + rng.uniform(-0.35, 0.35, size=len(y))
    y_jitter = predictions + rng.uniform(-0.35, 0.35, size=len(y))
    wrong = y != predictions
    size = min(max(5.0, 0.5 * n_classes + 1.0), 14.0)
    fig = new_figure(size, size + 0.5)
    ax = fig.add_subplot()
    alpha = float(np.clip(60.0 / max(1, int((~wrong).sum()) / max(1, n_classes)), 0.08, 0.6))
    ax.scatter(
        x_jitter[~wrong],
        y_jitter[~wrong],
        s=6,
        alpha=alpha,
        color="tab:blue",
        linewidths=0,
        label=f"correct ({int((~wrong).sum())})",
    )
    ax.scatter(
        x_jitter[wrong],
        y_jitter[wrong],
        s=14,
        alpha=0.8,
        color="tab:red",
        linewidths=0,
        label=f"misclassified ({int(wrong.sum())})",
    )
    ticks = np.arange(n_classes)
    ax.set_xticks(ticks)
    ax.set_yticks(ticks)
    ax.set_xticks(ticks[:-1] + 0.5, minor=True)
    ax.set_yticks(ticks[:-1] + 0.5, minor=True)
    ax.grid(which="minor", alpha=0.3)
    ax.tick_params(which="minor", length=0)
    ax.set_xlim(-0.5, n_classes - 0.5)
    ax.set_ylim(-0.5, n_classes - 0.5)
    ax.set_aspect("equal")
    ax.set_xlabel("true class")
    ax.set_ylabel("predicted class")
    ax.set_title(f"predicted vs true class, test (n = {len(y)}, jittered)")
    legend = ax.legend(
        loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=2, fontsize=9, markerscale=2
    )
    for handle in legend.legend_handles:
        if handle is not None:
            handle.set_alpha(1.0)
    return figure_png(fig)


def weights_plot(w: np.ndarray, image_shape: Sequence[int]) -> bytes:
    """The first dense layer's weights, one image per hidden unit (the first GRID_MAX units).

    w is (n_inputs, n_hidden) with n_inputs = h * w; each unit's column is drawn on its own
    symmetric red-blue scale (red positive, blue negative, white zero).
    """
    height, width = int(image_shape[0]), int(image_shape[1])
    units = min(GRID_MAX, w.shape[1])
    tiles = np.asarray(w)[:, :units].T.reshape(units, height, width)
    labels = [f"unit {j + 1}" for j in range(units)]
    title = f"first-layer weights, {units} of {w.shape[1]} hidden units"
    return _tile_grid(tiles, labels, ["black"] * units, title, cmap="RdBu_r", symmetric=True)


def monitors_plot(history: Sequence[Mapping[str, Any]]) -> bytes | None:
    """Per-layer weight norms, and dead / saturated shares, per epoch (the monitors' numbers).

    Returns None when the history has no monitor keys (a run trained with --no-monitors).
    """
    keys = list(history[-1]) if history else []
    norms = [k for k in keys if k.endswith(".w.norm")]
    shares = [k for k in keys if k.endswith((".dead", ".saturated"))]
    if not norms and not shares:
        return None
    epochs = np.arange(1, len(history) + 1, dtype=np.float64)
    fig = new_figure(11.0, 4.0)
    left, right = fig.subplots(1, 2)
    for key in norms:
        left.plot(epochs, history_series(history, key), marker="o", markersize=3, label=key[:-5])
    left.set_title("weight norm per layer")
    left.set_xlabel("epoch")
    for key in shares:
        right.plot(epochs, 100 * history_series(history, key), marker="o", markersize=3, label=key)
    right.set_title("dead / saturated units (%)")
    right.set_xlabel("epoch")
    right.set_ylim(0, 100)
    for ax in (left, right):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize="small")
    return figure_png(fig)


def augmentation_plot(images: np.ndarray) -> bytes:
    """Rows of an original image followed by its augmented variants: images (n, 1 + v, h, w)."""
    n, per_row = images.shape[:2]
    tiles = images.reshape(n * per_row, *images.shape[2:])
    labels = [
        "original" if i % per_row == 0 else f"variant {i % per_row}" for i in range(len(tiles))
    ]
    colors = ["black" if i % per_row == 0 else "0.35" for i in range(len(tiles))]
    title = "augmented training examples"
    return _tile_grid(tiles, labels, colors, title, "gray_r", columns=per_row)


def pixels_plot(
    pixels: np.ndarray, weights: np.ndarray | None, image_shape: Sequence[int], title: str
) -> bytes:
    """The raw pixels a run's inputs read (black: kept) and, given the first dense layer's
    weights w (n_inputs, n_hidden), each kept pixel's mean |w| over the hidden units."""
    height, width = int(image_shape[0]), int(image_shape[1])
    tiles = [np.zeros(height * width)]
    tiles[0][pixels] = 1.0
    labels = [f"{len(pixels)} of {height * width} pixels kept"]
    if weights is not None:
        tiles.append(np.zeros(height * width))
        tiles[1][pixels] = np.abs(np.asarray(weights, dtype=np.float64)).mean(axis=1)
        labels.append("mean |weight| per pixel")
    stacked = np.stack(tiles).reshape(len(tiles), height, width)
    return _tile_grid(stacked, labels, ["black"] * len(tiles), title, "gray_r", columns=2)


def labelled_tiles_plot(
    tiles: np.ndarray, labels: Sequence[str], title: str, columns: int | None = None
) -> bytes:
    """Images (n, h, w) in a grid, each labelled (masks: kept pixels black), grey scale."""
    tiles = np.asarray(tiles, dtype=np.float64)
    return _tile_grid(tiles, list(labels), ["black"] * len(tiles), title, "gray_r", columns=columns)
