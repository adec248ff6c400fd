"""Interval estimates and tests for accuracies: shared by runs (lab) and reports (report).

The Wilson interval is plain arithmetic. Student's t (quantiles, tail probabilities, Welch's
test) comes from `scipy.stats`, imported inside the functions that need it: importing it takes
about two seconds, which neither the CLI nor a sweep worker should pay for a run.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

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
