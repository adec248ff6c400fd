"""Interval estimates and tests for accuracies: shared by runs (lab) and reports (report).

The Wilson interval and Holm's correction are plain arithmetic. Student's t (quantiles, tail
probabilities, Welch's and the paired t-test) and the binomial test behind McNemar's exact test
come from `scipy.stats`, imported inside the functions that need it: importing it takes about
two seconds, which neither the CLI nor a sweep worker should pay for a run.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from statistics import NormalDist

import numpy as np

Values = Sequence[float] | np.ndarray


def wilson_interval(correct: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The 95% Wilson score interval of a proportion correct / n (sound near 0 and 1 too)."""
    if n == 0:
        return (0.0, 1.0)
    p = correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def t_quantile(p: float, df: float) -> float:
    """The p quantile of Student's t with df (not necessarily whole) degrees of freedom."""
    from scipy import stats

    return float(stats.t.ppf(p, df))


def t_two_sided_p(t: float, df: float) -> float:
    """P(|T| >= |t|) for Student's t with df degrees of freedom."""
    from scipy import stats

    return float(2 * stats.t.sf(abs(t), df))


def welch_test(a: Values, b: Values) -> tuple[float, float, float]:
    """Welch's t-test of equal means: (t, Welch-Satterthwaite df, two-sided p). Needs n >= 2 each.

    t = (mean_a - mean_b) / sqrt(var_a / n_a + var_b / n_b), variances with ddof = 1.
    Both samples constant (SciPy gives NaN): equal means are equal (p = 1), different ones
    surely differ (p = 0).
    """
    from scipy import stats

    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    va, vb = x.var(ddof=1) / len(x), y.var(ddof=1) / len(y)
    difference = float(x.mean() - y.mean())
    if va + vb == 0:
        return (
            (0.0, math.inf, 1.0)
            if difference == 0
            else (math.copysign(math.inf, difference), math.inf, 0.0)
        )
    with warnings.catch_warnings():
        # seeds that agree to many digits: SciPy warns of precision loss in the variance,
        # which changes nothing here (the variances above are the same numbers)
        warnings.simplefilter("ignore", RuntimeWarning)
        result = stats.ttest_ind(x, y, equal_var=False)
    df = (va + vb) ** 2 / (va**2 / (len(x) - 1) + vb**2 / (len(y) - 1))  # as SciPy's (>= 1.11)
    return float(result.statistic), float(df), float(result.pvalue)


def mean_interval(values: Values, level: float = 0.95) -> tuple[float, float]:
    """The t-interval for the mean of `values` (n >= 2): mean +- t(n-1) * s / sqrt(n)."""
    x = np.asarray(values, dtype=np.float64)
    half = t_quantile(0.5 + level / 2, len(x) - 1) * float(x.std(ddof=1)) / math.sqrt(len(x))
    return float(x.mean()) - half, float(x.mean()) + half


def paired_t_test(a: Values, b: Values) -> tuple[float, float, float]:
    """The paired t-test of equal means (a[k] and b[k] belong together, e.g. the same seed):
    (t, df = n - 1, two-sided p). Needs n >= 2.

    t = mean(d) / (std(d, ddof=1) / sqrt(n)) with d = a - b. Constant differences (SciPy gives
    NaN): none is no difference (p = 1), a constant nonzero one surely is one (p = 0).
    """
    from scipy import stats

    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    d = x - y
    if np.all(d == d[0]):
        return (
            (0.0, len(d) - 1.0, 1.0)
            if d[0] == 0
            else (math.copysign(math.inf, d[0]), len(d) - 1.0, 0.0)
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # near-constant d: precision warning only
        result = stats.ttest_rel(x, y)
    return float(result.statistic), len(d) - 1.0, float(result.pvalue)


def mcnemar_exact(a_only: int, b_only: int) -> float:
    """McNemar's exact two-sided p-value for paired right/wrong results: of the n = a_only +
    b_only discordant examples (right for one, wrong for the other), a_only is Binomial(n, 1/2)
    when both are equally good (a binomial test; p = 1 when they never disagree)."""
    from scipy.stats import binomtest

    n = a_only + b_only
    return 1.0 if n == 0 else float(binomtest(a_only, n, 0.5).pvalue)


def holm(p_values: Values) -> np.ndarray:
    """Holm's step-down adjusted p-values (reject where adjusted < alpha: family-wise error <=
    alpha for any number of tests). The k-th smallest p of m is multiplied by m - k + 1, then
    made non-decreasing in that order, and capped at 1."""
    p = np.asarray(p_values, dtype=np.float64)
    order = np.argsort(p, kind="stable")
    scaled = (len(p) - np.arange(len(p))) * p[order]
    adjusted = np.empty_like(p)
    adjusted[order] = np.minimum(np.maximum.accumulate(scaled), 1.0)
    return adjusted


def seeds_and_images_interval(
    accuracies: Values,
    n_images: int,
    correct: np.ndarray | None = None,
    shared_images: bool = True,
    level: float = 0.95,
) -> tuple[float, float]:
    """Interval for the mean accuracy of runs that differ by seed, counting both the spread
    between seeds and the sampling error of the images they were tested on.

    variance = s^2 / n + v / N: s^2 is the variance of the n accuracies (ddof 1; 0 for one run);
    v / N the images' part. On images every seed saw (`shared_images`), v is the variance over
    the N images of each image's correctness averaged over the seeds (`correct`, (n, N) booleans;
    without it p(1 - p), as if every seed got the same images right: the most it can be); on
    other images per seed, v = mean of p_k (1 - p_k) / n. The half width is t(df) * sqrt(variance)
    with df from Welch-Satterthwaite (n - 1 for the seeds' part, N - 1 for the images'), and
    never less than either part's own t(its df) * sqrt(part).
    Numerics: when the variance is 0 (every seed right, or wrong, on every image) the interval is
    the Wilson interval of the mean on N images, so it never has zero width.
    """
    x = np.asarray(accuracies, dtype=np.float64)
    n, mean = len(x), float(x.mean())
    seeds_part = float(x.var(ddof=1)) / n if n >= 2 else 0.0
    if not shared_images:
        images_part = float(np.mean(x * (1 - x))) / n_images / n
    elif correct is not None:
        per_image = np.asarray(correct, dtype=np.float64).reshape(n, -1).mean(axis=0)
        images_part = float(per_image.var(ddof=1)) / n_images if n_images >= 2 else 0.0
    else:
        images_part = mean * (1 - mean) / max(n_images - 1, 1)
    variance = seeds_part + images_part
    if variance <= 0:
        z = NormalDist().inv_cdf(0.5 + level / 2)
        return wilson_interval(round(mean * n_images), n_images, z)
    parts = [(seeds_part, n - 1), (images_part, (n_images if shared_images else n * n_images) - 1)]
    parts = [(part, dof) for part, dof in parts if part > 0 and dof > 0]
    df = variance**2 / sum(part**2 / dof for part, dof in parts)
    # Satterthwaite's df can grow faster than the variance: never narrower than a part alone
    half = max(
        t_quantile(0.5 + level / 2, dof) * math.sqrt(v) for v, dof in [(variance, df), *parts]
    )
    return max(0.0, mean - half), min(1.0, mean + half)
