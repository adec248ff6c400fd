"""A sweep's summary: per-variant statistics over seeds, summary.csv, a table, summary.html.

Everything here reads what the sweep recorded (trial records from trials.jsonl and each trial's
history.jsonl) and never trains. Variants are ranked and picked by mean validation accuracy;
test accuracy is shown beside it but never used to choose.

Within noise of the best: each variant's validation accuracies over seeds are compared with the
best variant's by Welch's two-sided t-test; p >= 0.05 is "within noise of best", p < 0.05
"worse". When either side has a single finished seed there is no variance to test, and the rule
falls back to overlap of 95% intervals (a t-interval over seeds, or the Wilson interval of the
single run). No correction for multiple comparisons: treat the labels as a rough guide.

The t distribution is computed here (regularised incomplete beta by a continued fraction), so
neither SciPy nor anything else beyond NumPy is needed.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from rich import box
from rich.console import Console
from rich.table import Table

from digitlab.lab.experiment import wilson_interval
from digitlab.lab.runs import write_text

if TYPE_CHECKING:  # matplotlib loads when a page is drawn, not with the CLI or in workers
    from matplotlib.figure import Figure

Values = Sequence[float] | np.ndarray
ALPHA = 0.05
BEST, WITHIN, WORSE, NO_RESULTS = "best", "within noise of best", "worse", "no results"
RULE = (
    "within noise of best: Welch's two-sided t-test on validation accuracy over seeds against "
    f"the best variant, p >= {ALPHA} (overlap of 95% intervals when a variant has one seed); "
    "no multiple-comparison correction"
)


# --- the t distribution -------------------------------------------------------------------------


def _beta_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of the incomplete beta function (modified Lentz's method).

    Numerics: converges fast for x < (a + 1) / (a + b + 2); the caller uses the symmetry
    I_x(a, b) = 1 - I_{1-x}(b, a) to stay in that region.
    """
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    result = d
    for m in range(1, 500):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            result *= c * d
        if abs(c * d - 1.0) < 1e-15:
            break
    return result


def incomplete_beta(a: float, b: float, x: float) -> float:
    """The regularised incomplete beta function I_x(a, b), for a, b > 0 and 0 <= x <= 1."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    if x < (a + 1) / (a + b + 2):
        return math.exp(log_front) * _beta_fraction(a, b, x) / a
    return 1.0 - math.exp(log_front) * _beta_fraction(b, a, 1.0 - x) / b


def t_two_sided_p(t: float, df: float) -> float:
    """P(|T| >= |t|) for Student's t with df (not necessarily whole) degrees of freedom."""
    if math.isinf(t):
        return 0.0
    return incomplete_beta(df / 2, 0.5, df / (df + t * t))


def t_quantile(p: float, df: float) -> float:
    """The p quantile (p > 0.5) of Student's t, by bisection on the two-sided tail."""
    tail = 2 * (1 - p)
    low, high = 0.0, 1.0
    while t_two_sided_p(high, df) > tail:
        low, high = high, 2 * high
    for _ in range(200):
        middle = (low + high) / 2
        if t_two_sided_p(middle, df) > tail:
            low = middle
        else:
            high = middle
    return (low + high) / 2


def welch_test(a: Values, b: Values) -> tuple[float, float, float]:
    """Welch's t-test of equal means: (t, Welch-Satterthwaite df, two-sided p). Needs n >= 2 each.

    t = (mean_a - mean_b) / sqrt(var_a / n_a + var_b / n_b), variances with ddof = 1.
    """
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    va, vb = x.var(ddof=1) / len(x), y.var(ddof=1) / len(y)
    difference = float(x.mean() - y.mean())
    if va + vb == 0:  # both constant: equal means are equal, different ones surely differ
        return (
            (0.0, math.inf, 1.0)
            if difference == 0
            else (math.copysign(math.inf, difference), math.inf, 0.0)
        )
    t = difference / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (len(x) - 1) + vb**2 / (len(y) - 1))
    return t, float(df), t_two_sided_p(t, df)


def mean_interval(values: Values, level: float = 0.95) -> tuple[float, float]:
    """The t-interval for the mean of `values` (n >= 2): mean +- t(n-1) * s / sqrt(n)."""
    x = np.asarray(values, dtype=np.float64)
    half = t_quantile(0.5 + level / 2, len(x) - 1) * float(x.std(ddof=1)) / math.sqrt(len(x))
    return float(x.mean()) - half, float(x.mean()) + half


# --- per-variant statistics ---------------------------------------------------------------------


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


# --- outputs ------------------------------------------------------------------------------------


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


def _percent(value: float | None, std: float | None = None, sign: str = "%") -> str:
    if value is None:
        return "-"
    spread = "" if std is None else (f"±{100 * std:.2f}" if not sign else f" ± {100 * std:.2f}")
    return f"{100 * value:.2f}{spread}{sign}"


def _interval_text(row: VariantSummary, split: str = "test", sign: str = "%") -> str:
    """ "low-high% (t)" for the page; "low-high" (and "*" for Wilson) in the terminal."""
    interval = row.interval(split)
    if interval is None:
        return "-"
    (low, high), kind = interval
    if not sign:
        return f"{100 * low:.2f}-{100 * high:.2f}" + ("*" if kind == "wilson" else "")
    return f"{100 * low:.2f}-{100 * high:.2f}{sign} ({kind})"


def _seeds_text(row: VariantSummary) -> str:
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
            _seeds_text(row),
            _percent(row.mean("val_accuracy"), row.std("val_accuracy"), ""),
            _percent(row.mean("test_accuracy"), row.std("test_accuracy"), ""),
            _interval_text(row, sign=""),
            f"[{style}]{verdict}[/]" if style else verdict,
        )
    console.print(table)
    console.print(
        "Accuracies in %. Test 95% CI: t-interval of the mean over seeds (* Wilson interval of a "
        "single run). Ranked and selected by validation accuracy; test is shown, never used to "
        f"pick. {RULE[0].upper()}{RULE[1:]}."
    )


# --- the HTML page ------------------------------------------------------------------------------


def _png(fig: Figure) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


COLOURS = {BEST: "#1a7f37", WITHIN: "#0969da", WORSE: "#8c959f"}


def accuracy_plot(rows: Sequence[VariantSummary]) -> Figure | None:
    """Mean test accuracy per variant with its 95% interval, in validation rank order; each seed
    as a dot and the mean validation accuracy as a cross."""
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    shown = [row for row in rows if row.done]
    if not shown:
        return None
    fig = Figure(figsize=(9, 1.6 + 0.4 * len(shown)), layout="constrained")
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
    return fig


def curves_plot(rows: Sequence[VariantSummary], curves: dict[int, np.ndarray]) -> Figure | None:
    """Validation accuracy per epoch, averaged over each variant's seeds."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    if not curves:
        return None
    fig = Figure(figsize=(9, 4.8), layout="constrained")
    ax = fig.subplots()
    colours = [f"C{k}" for k in range(10)]
    for k, (index, curve) in enumerate(sorted(curves.items())):
        ax.plot(
            np.arange(1, len(curve) + 1),
            100 * curve,
            color=colours[k % 10],
            linestyle=("-", "--", ":")[(k // 10) % 3],
            label=variant_label(rows[index].options),
        )
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("validation accuracy (%), mean over seeds")
    ax.set_title("Validation curves")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    return fig


def read_history(path: Path) -> list[dict[str, Any]]:
    """The readable lines of a history.jsonl (none if it is missing)."""
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return []
    out = []
    for line in lines:
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


def mean_curves(rows: Sequence[VariantSummary], trials_dir: Path) -> dict[int, np.ndarray]:
    """Row index -> validation accuracy per epoch averaged over the seeds that reached it."""
    curves = {}
    for index, row in enumerate(rows):
        series = [
            [h["val_accuracy"] for h in read_history(trials_dir / r["id"] / "history.jsonl")]
            for r in row.done
        ]
        series = [s for s in series if s]
        if not series:
            continue
        padded = np.full((len(series), max(len(s) for s in series)), np.nan)
        for k, s in enumerate(series):
            padded[k, : len(s)] = s
        curves[index] = np.nanmean(padded, axis=0)  # early-stopped seeds drop out of later epochs
    return curves


def summary_html(
    title: str,
    rows: Sequence[VariantSummary],
    keys: Sequence[str],
    trials_dir: Path,
    details: dict[str, Any],
) -> str:
    """The self-contained page: settings, table, both plots (embedded PNGs) and failures."""
    figures = {
        "Test accuracy per variant": accuracy_plot(rows),
        "Validation curves": curves_plot(rows, mean_curves(rows, trials_dir)),
    }
    head = "".join(f"<th>{escape(h)}</th>" for h in ("#", *keys)) + "".join(
        f"<th>{h}</th>"
        for h in ("seeds", "val acc (mean ± std)", "test acc (mean ± std)", "test 95% interval")
    )
    body = []
    for rank, row in enumerate(rows, 1):
        cells = [str(rank) if row.done else ""]
        cells += [escape(option_label(row.options.get(k, ""))) for k in keys]
        cells += [
            _seeds_text(row),
            _percent(row.mean("val_accuracy"), row.std("val_accuracy")),
            _percent(row.mean("test_accuracy"), row.std("test_accuracy")),
            _interval_text(row),
        ]
        p = f" (p = {row.p_value:.3g})" if row.p_value is not None else ""
        verdict = f'<td class="v-{row.verdict.split()[0]}">{escape(row.verdict)}{p}</td>'
        body.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + verdict + "</tr>")
    failures = [
        f"<li><code>{escape(r['id'])}</code>: {escape(str(r.get('reason')))}</li>"
        for row in rows
        for r in row.failed
    ]
    settings = "".join(
        f"<tr><th>{escape(k)}</th><td><code>{escape(json.dumps(v))}</code></td></tr>"
        for k, v in details.items()
    )
    plots = "".join(
        f'<h2>{escape(name)}</h2><img alt="{escape(name)}" src="data:image/png;base64,{_png(fig)}">'
        for name, fig in figures.items()
        if fig is not None
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 72em; color: #1f2328; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
th, td {{ border: 1px solid #d0d7de; padding: 0.25em 0.6em; text-align: right; }}
th {{ background: #f6f8fa; }}
.v-best {{ color: #1a7f37; font-weight: bold; }} .v-within {{ color: #0969da; }}
.v-worse {{ color: #8c959f; }} img {{ max-width: 100%; }}
</style></head><body>
<h1>{escape(title)}</h1>
<p>Variants are ranked and selected by mean <b>validation</b> accuracy over seeds; test accuracy
is shown but never used to pick. Test intervals are 95% t-intervals of the mean over seeds
(Wilson interval of the single run when only one seed finished); they cover the spread between
seeds, not the test set's own sampling error (each run's Wilson interval, in its metrics.json).
{escape(RULE[0].upper() + RULE[1:])}.</p>
<h2>Summary</h2>
<table><thead><tr>{head}<th>vs best</th></tr></thead><tbody>
{"".join(body)}
</tbody></table>
{plots}
<h2>Failed trials</h2>
{"<ul>" + "".join(failures) + "</ul>" if failures else "<p>None.</p>"}
<h2>Sweep</h2>
<table>{settings}</table>
</body></html>
"""


def write_summary(
    out: Path,
    title: str,
    rows: Sequence[VariantSummary],
    keys: Sequence[str],
    details: dict[str, Any],
) -> tuple[Path, Path]:
    """Write OUT/summary.csv and OUT/summary.html (each atomically)."""
    csv_path = write_text(out / "summary.csv", summary_csv(rows, keys))
    html_path = write_text(
        out / "summary.html", summary_html(title, rows, keys, out / "trials", details)
    )
    return csv_path, html_path
