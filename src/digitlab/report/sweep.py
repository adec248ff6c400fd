"""A sweep's summary: per-variant statistics over seeds, summary.csv and the terminal table.

Everything here reads what the sweep recorded (trial records from trials.jsonl) and never
trains; the page, summary.html, is drawn by sweep_page.py. Variants are ranked and picked by
mean validation accuracy; test accuracy is shown beside it but never used to choose.

Within noise of the best: each variant's validation accuracies over seeds are compared with the
best variant's by Welch's two-sided t-test; p >= 0.05 is "within noise of best", p < 0.05
"worse". When either side has a single finished seed there is no variance to test, and the rule
falls back to overlap of 95% intervals (a t-interval over seeds, or the Wilson interval of the
single run). No correction for multiple comparisons: treat the labels as a rough guide. The
statistics are in digitlab/stats.py (Student's t from SciPy).
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rich import box
from rich.console import Console
from rich.table import Table

from digitlab.lab.runs import write_text
from digitlab.stats import mean_interval, welch_test, wilson_interval

ALPHA = 0.05
BEST, WITHIN, WORSE, NO_RESULTS = "best", "within noise of best", "worse", "no results"
RULE = (
    "within noise of best: Welch's two-sided t-test on validation accuracy over seeds against "
    f"the best variant, p >= {ALPHA} (overlap of 95% intervals when a variant has one seed); "
    "no multiple-comparison correction"
)


@dataclass
class VariantSummary:
    """One variant's results over its seeds; accuracies are fractions in [0, 1]."""

    options: dict[str, Any]
    planned: int
    done: list[dict[str, Any]] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)
    verdict: str = NO_RESULTS
    p_value: float | None = None
    compared_by: str = ""  # "welch" or "overlap"

    def values(self, key: str) -> np.ndarray:
        return np.array([r["metrics"][key] for r in self.done], dtype=np.float64)

    def mean(self, key: str) -> float | None:
        return float(self.values(key).mean()) if self.done else None

    def std(self, key: str) -> float | None:
        return float(self.values(key).std(ddof=1)) if len(self.done) >= 2 else None

    def interval(self, split: str) -> tuple[tuple[float, float], str] | None:
        """95% interval for the mean accuracy: ("t" over seeds) or ("wilson", one run)."""
        if len(self.done) >= 2:
            low, high = mean_interval(self.values(f"{split}_accuracy"))
            return (max(0.0, low), min(1.0, high)), "t"
        if len(self.done) == 1:
            metrics = self.done[0]["metrics"]
            if f"{split}_ci95" in metrics:
                low, high = metrics[f"{split}_ci95"]
                return (float(low), float(high)), "wilson"
            if f"{split}_n" in metrics:
                n = int(metrics[f"{split}_n"])
                return wilson_interval(round(metrics[f"{split}_accuracy"] * n), n), "wilson"
        return None


def summarise(
    groups: Sequence[tuple[dict[str, Any], Sequence[dict[str, Any] | None]]],
) -> list[VariantSummary]:
    """Per-variant summaries from (options, latest record of each planned trial or None),
    ranked by mean validation accuracy (variants without results last), each marked against
    the best."""
    rows = []
    for options, records in groups:
        row = VariantSummary(options=dict(options), planned=len(records))
        for record in records:
            if record is not None and record.get("status") == "done":
                row.done.append(record)
            elif record is not None:
                row.failed.append(record)
        rows.append(row)
    rows.sort(key=lambda r: -mean if (mean := r.mean("val_accuracy")) is not None else math.inf)
    if rows and rows[0].done:
        best = rows[0]
        best.verdict = BEST
        for row in rows[1:]:
            if row.done:
                row.verdict, row.p_value, row.compared_by = _compare(row, best)
    return rows


def _compare(row: VariantSummary, best: VariantSummary) -> tuple[str, float | None, str]:
    if len(row.done) >= 2 and len(best.done) >= 2:
        _, _, p = welch_test(row.values("val_accuracy"), best.values("val_accuracy"))
        return (WITHIN if p >= ALPHA else WORSE), p, "welch"
    mine, theirs = row.interval("val"), best.interval("val")
    if mine is None or theirs is None:
        return "n/a", None, ""
    overlap = mine[0][1] >= theirs[0][0] and theirs[0][1] >= mine[0][0]
    return (WITHIN if overlap else WORSE), None, "overlap"


def option_label(value: Any) -> str:
    """How an option value is shown: 0.1, relu, leaky_relu(slope=0.1), [128,64]."""
    if isinstance(value, dict) and "name" in value:
        params = ",".join(f"{k}={option_label(v)}" for k, v in value.items() if k != "name")
        return f"{value['name']}({params})" if params else str(value["name"])
    if isinstance(value, list):
        return "[" + ",".join(option_label(v) for v in value) + "]"
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    if isinstance(value, float):
        short = f"{value:.6g}"  # 1e+08 rather than 100000000.0, when nothing is lost
        return short if float(short) == value and len(short) < len(repr(value)) else repr(value)
    return str(value)


def variant_label(options: dict[str, Any]) -> str:
    return " ".join(f"{k}={option_label(v)}" for k, v in options.items()) or "base"


# --- outputs --------------------------------------------------------------------------------------


def _fraction(value: float | None) -> str:
    return "" if value is None else f"{value:.6g}"


def summary_csv(rows: Sequence[VariantSummary], keys: Sequence[str]) -> str:
    """summary.csv: one row per variant in rank order."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(
        [
            "rank",
            *keys,
            "seeds_done",
            "seeds_failed",
            "val_accuracy_mean",
            "val_accuracy_std",
            "test_accuracy_mean",
            "test_accuracy_std",
            "test_accuracy_ci95_low",
            "test_accuracy_ci95_high",
            "test_interval",
            "vs_best",
            "welch_p",
            "seconds_mean",
        ]
    )
    for rank, row in enumerate(rows, 1):
        interval = row.interval("test")
        low, high = interval[0] if interval else (None, None)
        writer.writerow(
            [
                rank if row.done else "",
                *(option_label(row.options.get(k, "")) for k in keys),
                len(row.done),
                len(row.failed),
                _fraction(row.mean("val_accuracy")),
                _fraction(row.std("val_accuracy")),
                _fraction(row.mean("test_accuracy")),
                _fraction(row.std("test_accuracy")),
                _fraction(low),
                _fraction(high),
                interval[1] if interval else "",
                row.verdict,
                _fraction(row.p_value),
                _fraction(float(np.mean([r["seconds"] for r in row.done])) if row.done else None),
            ]
        )
    return buffer.getvalue()


def percent_text(value: float | None, std: float | None = None, sign: str = "%") -> str:
    if value is None:
        return "-"
    spread = "" if std is None else (f"±{100 * std:.2f}" if not sign else f" ± {100 * std:.2f}")
    return f"{100 * value:.2f}{spread}{sign}"


def interval_text(row: VariantSummary, split: str = "test", sign: str = "%") -> str:
    """ "low-high% (t)" for the page; "low-high" (and "*" for Wilson) in the terminal."""
    interval = row.interval(split)
    if interval is None:
        return "-"
    (low, high), kind = interval
    if not sign:
        return f"{100 * low:.2f}-{100 * high:.2f}" + ("*" if kind == "wilson" else "")
    return f"{100 * low:.2f}-{100 * high:.2f}{sign} ({kind})"


def seeds_text(row: VariantSummary) -> str:
    return f"{len(row.done)}/{row.planned}" + (f" ({len(row.failed)} failed)" * bool(row.failed))


def print_table(console: Console, rows: Sequence[VariantSummary], keys: Sequence[str]) -> None:
    """The ranked summary as a rich table (accuracies in %), then the rule used."""
    table = Table(
        title="sweep summary, ranked by mean validation accuracy",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    table.add_column("#", justify="right", no_wrap=True)
    for key in keys:
        table.add_column(key, no_wrap=True)
    for column in ("seeds", "val mean±sd", "test mean±sd", "test 95% CI"):
        table.add_column(column, justify="right", no_wrap=True)
    table.add_column("vs best")
    styles = {BEST: "bold green", WITHIN: "green", WORSE: "red"}
    for rank, row in enumerate(rows, 1):
        style = styles.get(row.verdict, "")
        verdict = row.verdict.removesuffix(" of best")
        table.add_row(
            str(rank) if row.done else "",
            *(option_label(row.options.get(k, "")) for k in keys),
            seeds_text(row),
            percent_text(row.mean("val_accuracy"), row.std("val_accuracy"), ""),
            percent_text(row.mean("test_accuracy"), row.std("test_accuracy"), ""),
            interval_text(row, sign=""),
            f"[{style}]{verdict}[/]" if style else verdict,
        )
    console.print(table)
    console.print(
        "Accuracies in %. Test 95% CI: t-interval of the mean over seeds (* Wilson interval of a "
        "single run). Ranked and selected by validation accuracy; test is shown, never used to "
        f"pick. {RULE[0].upper()}{RULE[1:]}."
    )


def write_summary(
    out: Path,
    title: str,
    rows: Sequence[VariantSummary],
    keys: Sequence[str],
    details: dict[str, Any],
    extra_html: str = "",
) -> tuple[Path, Path]:
    """Write OUT/summary.csv and OUT/summary.html (each atomically); `extra_html` is a section
    the page shows after its figures (an optuna search's)."""
    from digitlab.report.sweep_page import summary_html  # matplotlib loads only to draw

    csv_path = write_text(out / "summary.csv", summary_csv(rows, keys))
    html_path = write_text(
        out / "summary.html",
        summary_html(title, rows, keys, out / "trials", details, extra_html=extra_html),
    )
    return csv_path, html_path
