"""A sweep's summary: per-variant statistics over seeds, summary.csv and the terminal table.

Everything here reads what the sweep recorded (trial records from trials.jsonl, and each done
trial's predictions.npz and config.json when its run folder has them) and never trains; the
page, summary.html, is drawn by sweep_page.py. Variants are ranked and the best is picked by
mean validation accuracy; test accuracy is shown beside it but never used to choose.

Intervals: the mean accuracy's 95% interval counts the spread over seeds and the sampling error
of the images (digitlab/stats.py, seeds_and_images_interval), so it is never zero wide.

Against the best: each variant is compared with the best on the test images, which played no
part in picking the best, using the pairing that exists: the same seed on the same test images.
McNemar's exact test on the per-image right/wrong results pooled over the seeds both finished
(the images' sampling error) and a paired t-test over those seeds (the spread between seeds)
must both reject (an intersection-union test: its p is the larger of the two), at 5% after
Holm's correction over all the variants compared. A variant with fewer than 3 shared seeds that
does not pass is "too few seeds to tell", not "within noise". Without per-image results (a trial
function that writes no predictions.npz, or other test images) only the paired t-test is used.
"""

from __future__ import annotations

import csv
import io
import json
import math
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rich import box
from rich.console import Console
from rich.table import Table

from digitlab.lab.runs import write_text
from digitlab.stats import (
    holm,
    mcnemar_exact,
    paired_t_test,
    seeds_and_images_interval,
    wilson_interval,
)

ALPHA = 0.05
MIN_SEEDS = 3  # fewer shared seeds: a paired t-test over seeds has next to no power
BEST, WITHIN, WORSE, BETTER = "best", "within noise of best", "worse", "better on test"
TOO_FEW, NO_RESULTS = "too few seeds to tell", "no results"
RULE = (
    "vs best (picked by validation): compared on the test images, which took no part in the "
    "pick, the same seed paired with the same seed: worse (or better) only when both McNemar's "
    "exact test on the per-image results pooled over the shared seeds and a paired t-test over "
    f"those seeds give p < {ALPHA} after Holm's correction over the {{m}} variants compared; "
    f"otherwise within noise, or too few seeds to tell with fewer than {MIN_SEEDS} shared seeds"
)
INTERVAL_METHOD = (
    "95% interval of the mean: variance over seeds / n plus the images' sampling variance "
    "(per-image correctness averaged over seeds, variance / N), t quantile with "
    "Welch-Satterthwaite df; Wilson interval for a single run"
)


@dataclass
class Images:
    """One done trial's per-image results on a split: labels and right/wrong, in image order."""

    y: np.ndarray
    correct: np.ndarray  # bool


@dataclass
class Comparison:
    """A variant against the best on the test images: the tests and what they say."""

    seeds: int  # seeds both finished
    difference: float  # mean test accuracy difference over those seeds (variant - best)
    paired_t_p: float | None = None
    mcnemar_p: float | None = None  # pooled over the shared seeds
    per_seed_mcnemar: list[tuple[int, float]] = field(default_factory=list)  # (seed, p)
    raw_p: float | None = None  # the larger of the two: both must reject
    holm_p: float | None = None


@dataclass
class VariantSummary:
    """One variant's results over its seeds; accuracies are fractions in [0, 1]."""

    options: dict[str, Any]
    planned: int
    done: list[dict[str, Any]] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)
    verdict: str = NO_RESULTS
    p_value: float | None = None  # Holm-adjusted p of the comparison with the best
    compared_by: str = ""  # "paired t + McNemar", "paired t", "McNemar" or ""
    comparison: Comparison | None = None
    images: dict[str, dict[str, Images]] = field(default_factory=dict)  # split -> id -> images
    splits: dict[str, str] = field(default_factory=dict)  # id -> config's split, when known

    def values(self, key: str) -> np.ndarray:
        return np.array([r["metrics"][key] for r in self.done], dtype=np.float64)

    def mean(self, key: str) -> float | None:
        return float(self.values(key).mean()) if self.done else None

    def std(self, key: str) -> float | None:
        return float(self.values(key).std(ddof=1)) if len(self.done) >= 2 else None

    def interval(self, split: str) -> tuple[tuple[float, float], str] | None:
        """95% interval for the mean accuracy: ("seeds+images", see INTERVAL_METHOD) or
        ("wilson", one run)."""
        if not self.done:
            return None
        metrics = [r["metrics"] for r in self.done]
        if len(self.done) == 1:
            if f"{split}_ci95" in metrics[0]:
                low, high = metrics[0][f"{split}_ci95"]
                return (float(low), float(high)), "wilson"
            if f"{split}_n" in metrics[0]:
                n = int(metrics[0][f"{split}_n"])
                return wilson_interval(round(metrics[0][f"{split}_accuracy"] * n), n), "wilson"
            return None
        images = [self.images.get(split, {}).get(r["id"]) for r in self.done]
        counts = {len(i.y) for i in images if i is not None} | {
            int(m[f"{split}_n"]) for m in metrics if f"{split}_n" in m
        }
        if len(counts) != 1:
            return None  # no image count, or seeds tested on different numbers of images
        shared = self._shared_images(split)
        correct = None
        if shared and all(i is not None for i in images):
            correct = np.stack([i.correct for i in images if i is not None])
        low, high = seeds_and_images_interval(
            self.values(f"{split}_accuracy"), counts.pop(), correct, shared
        )
        return (low, high), "seeds+images"

    def _shared_images(self, split: str) -> bool:
        """Whether every seed saw the same images of this split: the test set always (it does
        not depend on the seed); validation unless it is a seeded holdout of the training set
        (then per seed). Unknown (no config): assumed shared, the wider interval."""
        if split == "test":
            return True
        return not any(self.splits.get(r["id"]) == "holdout" for r in self.done)

    def by_seed(self) -> dict[int, dict[str, Any]]:
        return {int(r.get("seed", k)): r for k, r in enumerate(self.done)}


def load_images(row: VariantSummary, trials_dir: Path) -> None:
    """Fill row.images and row.splits from each done trial's predictions.npz and config.json
    (a trial function may write neither; an unreadable file counts as missing)."""
    for record in row.done:
        folder = trials_dir / str(record["id"])
        try:
            with np.load(folder / "predictions.npz", allow_pickle=False) as arrays:
                for split in ("val", "test"):
                    y, pred = arrays[f"{split}_y"], arrays[f"{split}_pred"]
                    row.images.setdefault(split, {})[record["id"]] = Images(y, pred == y)
        except (OSError, KeyError, ValueError, zipfile.BadZipFile):
            pass
        try:
            split = json.loads((folder / "config.json").read_text()).get("split")
            if isinstance(split, str):
                row.splits[record["id"]] = split
        except (OSError, ValueError, AttributeError):
            pass


def summarise(
    groups: Sequence[tuple[dict[str, Any], Sequence[dict[str, Any] | None]]],
    trials_dir: Path | None = None,
) -> list[VariantSummary]:
    """Per-variant summaries from (options, latest record of each planned trial or None),
    ranked by mean validation accuracy (variants without results last), each compared with the
    best (per-image results read from trials_dir/<id>/ when given)."""
    rows = []
    for options, records in groups:
        row = VariantSummary(options=dict(options), planned=len(records))
        for record in records:
            if record is not None and record.get("status") == "done":
                row.done.append(record)
            elif record is not None:
                row.failed.append(record)
        if trials_dir is not None:
            load_images(row, trials_dir)
        rows.append(row)
    rows.sort(key=lambda r: -mean if (mean := r.mean("val_accuracy")) is not None else math.inf)
    if rows and rows[0].done:
        best = rows[0]
        best.verdict = BEST
        compared = [row for row in rows[1:] if row.done]
        for row in compared:
            row.comparison, row.compared_by = compare_with_best(row, best)
        tested = [(row, c) for row in compared if (c := row.comparison) and c.raw_p is not None]
        adjusted = holm([c.raw_p for _, c in tested if c.raw_p is not None])
        for (row, comparison), p in zip(tested, adjusted, strict=True):
            comparison.holm_p = row.p_value = float(p)
        for row in compared:
            row.verdict = verdict(row.comparison)
    return rows


def compare_with_best(row: VariantSummary, best: VariantSummary) -> tuple[Comparison, str]:
    """The paired tests of one variant against the best on the test images (see the module)."""
    mine, theirs = row.by_seed(), best.by_seed()
    seeds = sorted(set(mine) & set(theirs))
    ours = np.array([mine[s]["metrics"]["test_accuracy"] for s in seeds], dtype=np.float64)
    best_values = np.array([theirs[s]["metrics"]["test_accuracy"] for s in seeds])
    result = Comparison(len(seeds), float((ours - best_values).mean()) if seeds else 0.0)
    methods = []
    if len(seeds) >= 2:
        result.paired_t_p = paired_t_test(ours, best_values)[2]
        methods.append("paired t")
    pairs = [
        (
            s,
            row.images.get("test", {}).get(mine[s]["id"]),
            best.images.get("test", {}).get(theirs[s]["id"]),
        )
        for s in seeds
    ]
    if seeds and all(
        a is not None and b is not None and np.array_equal(a.y, b.y) for _, a, b in pairs
    ):
        mine_only = best_only = 0
        for seed, a, b in pairs:
            assert a is not None and b is not None
            k_mine, k_best = (
                int((a.correct & ~b.correct).sum()),
                int((~a.correct & b.correct).sum()),
            )
            result.per_seed_mcnemar.append((seed, mcnemar_exact(k_mine, k_best)))
            mine_only, best_only = mine_only + k_mine, best_only + k_best
        result.mcnemar_p = mcnemar_exact(mine_only, best_only)
        methods.append("McNemar")
    tests = [p for p in (result.paired_t_p, result.mcnemar_p) if p is not None]
    if result.paired_t_p is not None:  # without the seeds' test nothing can be decided
        result.raw_p = max(tests)
    return result, " + ".join(methods)


def verdict(comparison: Comparison | None) -> str:
    """What a comparison says: worse or better when the Holm-adjusted p < ALPHA; otherwise
    within noise, or too few seeds to tell when fewer than MIN_SEEDS were shared."""
    if comparison is None or comparison.seeds == 0:
        return TOO_FEW
    if comparison.holm_p is not None and comparison.holm_p < ALPHA:
        return WORSE if comparison.difference < 0 else BETTER
    return TOO_FEW if comparison.seeds < MIN_SEEDS else WITHIN


def rule_text(rows: Sequence[VariantSummary]) -> str:
    """The method sentence, with the number of variants Holm's correction covered."""
    m = sum(1 for r in rows if r.comparison is not None and r.comparison.raw_p is not None)
    return RULE.format(m=m)


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
    """summary.csv: one row per variant in rank order; the last column states the methods."""
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
            "val_accuracy_ci95_low",
            "val_accuracy_ci95_high",
            "test_accuracy_mean",
            "test_accuracy_std",
            "test_accuracy_ci95_low",
            "test_accuracy_ci95_high",
            "test_interval",
            "vs_best",
            "shared_seeds",
            "test_difference_mean",
            "paired_t_p",
            "mcnemar_p",
            "p_holm",
            "seconds_mean",
            "method",
        ]
    )
    method = f"intervals: {INTERVAL_METHOD}. {rule_text(rows)}."
    for rank, row in enumerate(rows, 1):
        val, test = row.interval("val"), row.interval("test")
        val_low, val_high = val[0] if val else (None, None)
        low, high = test[0] if test else (None, None)
        comparison = row.comparison
        writer.writerow(
            [
                rank if row.done else "",
                *(option_label(row.options.get(k, "")) for k in keys),
                len(row.done),
                len(row.failed),
                _fraction(row.mean("val_accuracy")),
                _fraction(row.std("val_accuracy")),
                _fraction(val_low),
                _fraction(val_high),
                _fraction(row.mean("test_accuracy")),
                _fraction(row.std("test_accuracy")),
                _fraction(low),
                _fraction(high),
                test[1] if test else "",
                row.verdict,
                comparison.seeds if comparison else "",
                _fraction(comparison.difference) if comparison else "",
                _fraction(comparison.paired_t_p) if comparison else "",
                _fraction(comparison.mcnemar_p) if comparison else "",
                _fraction(row.p_value),
                _fraction(float(np.mean([r["seconds"] for r in row.done])) if row.done else None),
                method,
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
    table.add_column("vs best (p Holm)")
    styles = {
        BEST: "bold green",
        WITHIN: "green",
        WORSE: "red",
        BETTER: "bold red",
        TOO_FEW: "yellow",
    }
    for rank, row in enumerate(rows, 1):
        style = styles.get(row.verdict, "")
        verdict = row.verdict.removesuffix(" of best")
        verdict += "" if row.p_value is None else f" ({row.p_value:.2g})"
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
    rule = rule_text(rows)
    console.print(
        f"Accuracies in %. Test {INTERVAL_METHOD} (marked *). Ranked and selected by validation "
        f"accuracy. {rule[0].upper()}{rule[1:]}."
    )


def write_summary(
    out: Path,
    title: str,
    rows: Sequence[VariantSummary],
    keys: Sequence[str],
    details: dict[str, Any],
) -> tuple[Path, Path]:
    """Write OUT/summary.csv and OUT/summary.html (each atomically)."""
    from digitlab.report.sweep_page import summary_html  # matplotlib loads only to draw

    csv_path = write_text(out / "summary.csv", summary_csv(rows, keys))
    html_path = write_text(
        out / "summary.html", summary_html(title, rows, keys, out / "trials", details)
    )
    return csv_path, html_path
