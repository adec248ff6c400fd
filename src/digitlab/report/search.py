"""An optuna sweep's search section on its summary page: the best trial, the parameters'
importance, the history (objective per trial, the running best, pruned trials marked), the
objective against each parameter, and every trial in a table.

It reads only the record the search wrote (OUT/search.json, lab/sweep/adaptive.py) and needs no
Optuna; the figures are PNGs embedded by the report shell (page.py).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from html import escape
from typing import Any

import numpy as np

from digitlab.report import plots
from digitlab.report.page import embed_png
from digitlab.report.sweep import option_label, variant_label

PRUNED, DIVERGED, FINISHED, BEST_LINE = "#d98c00", "#cf222e", "#0969da", "#1a7f37"


def _value_scale(ax: Any, values: Sequence[float]) -> None:
    """Log scale when the values span more than a factor of 20 (losses of bad trials do)."""
    positive = [v for v in values if v > 0]
    if positive and max(positive) / min(positive) > 20:
        ax.set_yscale("log")


def history_plot(search: dict[str, Any]) -> bytes | None:
    """Objective per trial in the order they were asked, the running best as a step line,
    pruned trials at their last reported value, diverged ones on the top edge."""
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    trials = [t for t in search["trials"] if t["state"] in ("complete", "pruned")]
    if not trials:
        return None
    fig = plots.new_figure(9, 4.2)
    ax = fig.subplots()
    done = [t for t in trials if t["value"] is not None]
    pruned = [t for t in trials if t["state"] == "pruned" and t["last"] is not None]
    diverged = [t for t in trials if t["diverged"]]
    ax.plot([t["number"] for t in done], [t["value"] for t in done], "o", color=FINISHED)
    ax.plot(
        [t["number"] for t in pruned],
        [t["last"] for t in pruned],
        "v",
        color=PRUNED,
        fillstyle="none",
    )
    if done:
        order = sorted(done, key=lambda t: t["number"])
        best = list(np.minimum.accumulate([t["value"] for t in order]))
        last = max(t["number"] for t in trials)  # the line runs on to the last trial
        numbers = [t["number"] for t in order] + [last]
        ax.step(numbers, best + best[-1:], where="post", color=BEST_LINE)
    _value_scale(ax, [t["value"] for t in done] + [t["last"] for t in pruned])
    for t in diverged:
        ax.plot(t["number"], 1.0, "x", color=DIVERGED, transform=ax.get_xaxis_transform())
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("trial")
    ax.set_ylabel("validation loss")
    ax.set_title("Search history")
    ax.grid(alpha=0.3)
    handles = [
        Line2D([], [], marker="o", linestyle="", color=FINISHED, label="finished: its value"),
        Line2D([], [], color=BEST_LINE, label="best so far"),
        Line2D(
            [],
            [],
            marker="v",
            linestyle="",
            color=PRUNED,
            fillstyle="none",
            label="pruned: last epoch's",
        ),
        Line2D([], [], marker="x", linestyle="", color=DIVERGED, label="diverged (top edge)"),
    ]
    ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return plots.figure_png(fig)


def slice_plot(search: dict[str, Any]) -> bytes | None:
    """The objective of each finished trial against each parameter (log axis for log ranges;
    a choice by its position), pruned trials at their last reported value."""
    space: dict[str, dict[str, Any]] = search.get("space") or {}
    shown = [t for t in search["trials"] if t["value"] is not None or t["state"] == "pruned"]
    shown = [t for t in shown if (t["value"] if t["value"] is not None else t["last"]) is not None]
    if not shown or not space:
        return None
    fig = plots.new_figure(min(max(4.0 * len(space), 7.0), 12), 3.6)
    axes = np.atleast_1d(fig.subplots(1, len(space), sharey=True))
    for ax, (key, entry) in zip(axes, space.items(), strict=True):
        labels = [option_label(c) for c in entry.get("choices", [])]
        for t in shown:
            if key not in t["options"]:
                continue
            x = t["options"][key]
            x = labels.index(option_label(x)) if entry["type"] == "choice" else x
            pruned = t["value"] is None
            ax.plot(
                x,
                t["last"] if pruned else t["value"],
                "v" if pruned else "o",
                color=PRUNED if pruned else FINISHED,
                fillstyle="none" if pruned else "full",
            )
        if entry["type"] == "choice":
            ax.set_xticks(range(len(labels)), labels, rotation=30, fontsize=7)
        elif entry["log"]:
            ax.set_xscale("log")
        ax.set_xlabel(key)
        ax.grid(alpha=0.3)
    _value_scale(axes[0], [t["value"] if t["value"] is not None else t["last"] for t in shown])
    axes[0].set_ylabel("validation loss")
    fig.suptitle("Validation loss against each parameter (pruned: open triangles)")
    return plots.figure_png(fig)


def importance_plot(importance: dict[str, float]) -> bytes | None:
    if not importance:
        return None
    names = list(importance)[::-1]
    fig = plots.new_figure(6, 1.2 + 0.35 * len(names))
    ax = fig.subplots()
    ax.barh(names, [importance[n] for n in names], color=FINISHED)
    ax.set_xlabel("importance (sums to 1)")
    ax.set_title("Parameter importance")
    ax.grid(axis="x", alpha=0.3)
    return plots.figure_png(fig)


def _number(value: Any) -> str:
    return "-" if value is None else f"{value:.4g}"


def search_html(search: dict[str, Any]) -> str:
    """The search section: text, figures and the trial table."""
    best = search.get("best")
    states = [t["state"] for t in search["trials"]]
    counts = ", ".join(f"{states.count(s)} {s}" for s in dict.fromkeys(states))
    if best is not None:
        options = "".join(
            f"<tr><th>{escape(k)}</th><td><code>{escape(option_label(v))}</code></td></tr>"
            for k, v in best["options"].items()
        )
        runs = ", ".join(f'<a href="trials/{escape(r)}/">{escape(r)}</a>' for r in best["runs"])
        best_html = (
            f"<p>Best trial: <b>{best['number']}</b>, validation loss "
            f"<b>{_number(best['value'])}</b> (mean over seeds); runs: {runs}. Its config (the "
            "base with these options) is in search.json under <code>best.config</code>.</p>"
            f"<table>{options}</table>"
        )
    else:
        best_html = "<p>No trial has finished yet.</p>"
    importance = search.get("importance") or {}
    figures = [
        ("Search history", history_plot(search)),
        ("Validation loss against each parameter", slice_plot(search)),
        ("Parameter importance", importance_plot(importance)),
    ]
    note = search.get("importance_note")
    rows = []
    for t in search["trials"]:
        value = "diverged" if t["diverged"] else _number(t["value"])
        rows.append(
            f'<tr><td class="num">{t["number"]}</td><td>{escape(t["state"])}</td>'
            f'<td class="num">{value}</td><td class="num">{t["epochs"] or "-"}</td>'
            f"<td>{escape(variant_label(t['options']))}</td></tr>"
        )
    return f"""<h2>Search</h2>
<p>Optuna study <code>{escape(search["study"])}</code> ({escape(search["journal"])}):
objective {escape(search["objective"])}; sampler {escape(search["sampler"])}; pruner
{escape(search["pruner"])}. Budget {search["budget"]} finished or pruned trials, {search["counted"]}
so far ({escape(counts)}). The table above ranks the finished trials by validation accuracy, as
every sweep does; the search picks by validation loss.</p>
{best_html}
{"".join(f"<h3>{escape(n)}</h3>{embed_png(png, n)}" for n, png in figures if png is not None)}
{f'<p class="note">{escape(note)}</p>' if note else ""}
<h3>Trials</h3>
<table><thead><tr><th>#</th><th>state</th><th>validation loss</th><th>epochs reported</th>
<th>options</th></tr></thead><tbody>{"".join(rows)}</tbody></table>
<details><summary>search.json settings</summary><pre>{
        escape(json.dumps({k: search[k] for k in ("space", "budget", "pruner")}, indent=1))
    }</pre></details>"""
