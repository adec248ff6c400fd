"""How a History, an Evaluation and a run folder show themselves in a notebook (`_repr_html_`).

Each function returns one compact HTML fragment: a heading line, tables of the real numbers
and, where there are curves, one small inline PNG (loss and accuracy side by side). Every
string that comes from data (paths, config values, alarm messages) is escaped here. Like the
report, nothing here trains or evaluates: it draws what it is given.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from html import escape
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from digitlab.report import plots
from digitlab.report.page import embed_png
from digitlab.stats import wilson_interval

if TYPE_CHECKING:
    from digitlab.core.evaluation import Evaluation, History
    from digitlab.report.runfolder import RunFolder

TABLE_ROWS = 12  # a longer history shows its first HEAD_ROWS and last epochs
HEAD_ROWS = 3
CELL = "padding:1px 6px;text-align:right;border:1px solid #ddd"
HISTORY_COLUMNS = {  # key -> (header, format)
    "epoch": ("epoch", "{:.0f}"),
    "train_loss": ("train loss", "{:.4f}"),
    "train_accuracy": ("train acc.", "{:.2%}"),
    "val_loss": ("val. loss", "{:.4f}"),
    "val_accuracy": ("val. acc.", "{:.2%}"),
    "learning_rate": ("learning rate", "{:g}"),
    "batch_size": ("batch", "{:.0f}"),
    "seconds": ("s", "{:.2f}"),
}
RUN_SETTINGS = (  # config keys a run's view shows; config.json holds them all
    *("data", "hidden_sizes", "activation", "optimizer", "learning_rate"),
    *("batch_size", "epochs", "seed"),
)


def curves_figure(records: Sequence[Mapping[str, Any]], width: float = 8.0) -> Figure:
    """Loss (left) and accuracy (right) per epoch for train, validation and test, if recorded."""
    epochs = plots.history_series(records, "epoch")
    if np.isnan(epochs).any():
        epochs = np.arange(1, len(records) + 1, dtype=np.float64)
    # fixed margins: constrained layout would double the time of each (live) redraw
    fig = plots.new_figure(width, width * 0.34, constrained=False)
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.16, top=0.9, wspace=0.18)
    for ax, metric in zip(fig.subplots(1, 2), ("loss", "accuracy"), strict=True):
        for split, color in plots.SPLIT_STYLE.items():
            values = plots.history_series(records, f"{split}_{metric}")
            if not np.isnan(values).all():
                label = plots.SPLIT_LABEL[split]
                ax.plot(epochs, values, marker="o", markersize=2, color=color, label=label)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_title(metric, fontsize=10)
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=8)
    return fig


def curves_png(records: Sequence[Mapping[str, Any]]) -> bytes:
    return plots.figure_png(curves_figure(records))


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A compact table of already-escaped cells."""
    head = "".join(f'<th style="{CELL}">{cell}</th>' for cell in header)
    body = "".join(
        "<tr>" + "".join(f'<td style="{CELL}">{cell}</td>' for cell in row) + "</tr>"
        for row in rows
    )
    return f'<table style="border-collapse:collapse"><tr>{head}</tr>{body}</table>'


def _number(value: Any, form: str) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool) and np.isfinite(value):
        return escape(form.format(value))
    return "&ndash;"


def _accuracy_text(accuracy: float, n: int) -> str:
    low, high = wilson_interval(int(round(accuracy * n)), n)
    return f"{accuracy:.2%} (95% interval {low:.2%}&ndash;{high:.2%}, n = {n:,})"


def history_rows(records: Sequence[Mapping[str, Any]]) -> str:
    """The per-epoch table: the first HEAD_ROWS and the last epochs of a long history."""
    columns = [key for key in HISTORY_COLUMNS if any(key in r for r in records)]
    shown = list(enumerate(records))
    if len(shown) > TABLE_ROWS:
        shown = shown[:HEAD_ROWS] + [(-1, {})] + shown[HEAD_ROWS - TABLE_ROWS + 1 :]
    rows = []
    for index, record in shown:
        if index < 0:
            skipped = len(records) - TABLE_ROWS + 1
            rows.append(["&hellip;"] + [f"({skipped} epochs)"] + [""] * (len(columns) - 2))
        else:
            rows.append([_number(record.get(k), HISTORY_COLUMNS[k][1]) for k in columns])
    return _table([escape(HISTORY_COLUMNS[k][0]) for k in columns], rows)


def history_html(history: History) -> str:
    """A History: what happened (epochs, best epoch, early stop), its curves, its numbers."""
    records = history.records()
    notes = [f"{len(records)} epochs"]
    if history.best_epoch is not None:
        notes.append(f"best validation loss at epoch {history.best_epoch}")
    if history.stopped_early:
        notes.append("stopped early")
    if history.interrupted:
        notes.append("interrupted")
    parts = [f"<p><b>History</b>: {escape(', '.join(notes))}</p>"]
    if records:
        parts += [embed_png(curves_png(records), "loss and accuracy per epoch")]
        parts += [history_rows(records)]
    return "<div>" + "".join(parts) + "</div>"


def confusion_table(confusion: np.ndarray) -> str:
    """counts[true, predicted] as a table, each cell shaded by its share of the true class."""
    counts = np.asarray(confusion, dtype=np.int64)
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    header = ["true \\ predicted"] + [str(j) for j in range(len(counts))]
    rows = []
    for true, row in enumerate(counts):
        cells = [f"<b>{true}</b>"]
        for predicted, count in enumerate(row):
            alpha = 0.08 + 0.7 * shares[true, predicted] if count else 0.0
            style = f"background:rgba(31,119,180,{alpha:.2f})"
            cells.append(f'<span style="{style};display:block">{count}</span>')
        rows.append(cells)
    return _table(header, rows)


def per_class_table(confusion: np.ndarray) -> str:
    scores = plots.per_class_scores(confusion)
    rows = [
        [str(j), f"{int(scores.support[j]):,}", _number(p, "{:.2%}"), _number(r, "{:.2%}")]
        for j, (p, r) in enumerate(zip(scores.precision, scores.recall, strict=True))
    ]
    return _table(["class", "n", "precision", "recall"], rows)


def confusion_of(labels: np.ndarray, predictions: np.ndarray, n_classes: int) -> np.ndarray:
    """counts[true, predicted] over n_classes classes."""
    flat = np.bincount(labels * n_classes + predictions, minlength=n_classes * n_classes)
    return flat.reshape(n_classes, n_classes)


def evaluation_html(evaluation: Evaluation) -> str:
    """An Evaluation: accuracy with its Wilson interval, loss, and with labels the per-class
    precision and recall and the confusion matrix."""
    head = (
        f"<p><b>Evaluation</b>: accuracy {_accuracy_text(evaluation.accuracy, evaluation.n)}, "
        f"loss {evaluation.loss:.4f}</p>"
    )
    if evaluation.labels is None:
        return f"<div>{head}<p>(no labels kept: no per-class numbers)</p></div>"
    k = evaluation.probabilities.shape[1]
    confusion = confusion_of(evaluation.labels, evaluation.predictions, k)
    tables = (
        '<div style="display:flex;gap:2em;align-items:flex-start">'
        f"<div>{per_class_table(confusion)}</div><div>{confusion_table(confusion)}</div></div>"
    )
    return f"<div>{head}{tables}</div>"


def _setting(value: Any) -> str:
    if isinstance(value, dict):  # a registry entry: {name, **params}
        params = ", ".join(f"{k}={v}" for k, v in value.items() if k != "name")
        return f"{value.get('name', '?')} ({params})" if params else str(value.get("name", "?"))
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value)


def run_html(run: RunFolder) -> str:
    """A run folder: state, main settings, accuracy per split, alarms, curves and a link to its
    report."""
    from digitlab.diagnostics.alarms import find

    state = run.live["state"] if run.live is not None else "finished"
    path = str(run.path)
    parts = [f"<p><b>Run</b> <code>{escape(path)}</code> ({escape(str(state))})</p>"]
    config = run.config
    settings = [
        [escape(key), escape(_setting(config[key]))] for key in RUN_SETTINGS if key in config
    ]
    if config.get("layers"):
        settings.insert(1, ["layers", f"{len(config['layers'])} layer tables"])
    summary = [_table(["setting", "value"], settings)]
    rows = []
    for split in ("train", "val", "test", "test_all"):
        scores = run.metrics.get(split)
        if isinstance(scores, dict):
            text = _accuracy_text(float(scores["accuracy"]), int(scores["n"]))
            rows.append([escape(split), text, f"{float(scores['loss']):.4f}"])
    if rows:
        summary.append(_table(["split", "accuracy", "loss"], rows))
    parts.append(
        '<div style="display:flex;gap:2em;align-items:flex-start">'
        + "".join(f"<div>{table}</div>" for table in summary)
        + "</div>"
    )
    warnings = [f for f in find(run.history) if f.severity == "warning"]
    if warnings:
        items = "".join(f"<li><b>{escape(f.kind)}</b>: {escape(f.message)}</li>" for f in warnings)
        parts.append(f"<p>Alarms:</p><ul>{items}</ul>")
    else:
        parts.append("<p>No alarms.</p>")
    if run.history:
        parts.append(embed_png(curves_png(run.history), "loss and accuracy per epoch"))
    report = run.path / "report.html"
    if report.is_file():
        link = escape(quote(os.fspath(report)), quote=True)  # relative stays relative
        parts.append(f'<p><a href="{link}" target="_blank">report.html</a></p>')
    raw = escape(json.dumps(config, indent=2))
    parts.append(f"<details><summary>config.json</summary><pre>{raw}</pre></details>")
    return "<div>" + "".join(parts) + "</div>"
