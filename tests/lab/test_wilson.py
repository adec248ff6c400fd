"""The 95% Wilson interval against independent computations: scipy, and closed forms."""

import math

import pytest
from scipy.stats import binomtest

from digitlab.lab.experiment import wilson_interval

Z = 1.959963984540054  # the 97.5% normal quantile; the code's 1.96 differs by 2e-5 relative


@pytest.mark.parametrize(("correct", "n"), [(0, 10), (3, 10), (95, 100), (9956, 10000), (7, 7)])
def test_wilson_matches_scipy(correct, n):
    expected = binomtest(correct, n).proportion_ci(0.95, method="wilson")
    low, high = wilson_interval(correct, n)
    assert low == pytest.approx(expected.low, abs=2e-5)
    assert high == pytest.approx(expected.high, abs=2e-5)


def test_wilson_at_none_and_all_correct_is_the_closed_form():
    # at p = 0 the interval is [0, z^2 / (n + z^2)], at p = 1 [n / (n + z^2), 1]
    for n in (1, 20, 10000):
        assert wilson_interval(0, n) == pytest.approx((0.0, Z * Z / (n + Z * Z)), rel=1e-4)
        assert wilson_interval(n, n) == pytest.approx((n / (n + Z * Z), 1.0), rel=1e-4)


def test_wilson_by_hand():
    # 8 of 10: the roots of (p - 0.8)^2 = z^2 p (1 - p) / 10, solved as a quadratic in p
    a, b, c = 1 + Z * Z / 10, -(1.6 + Z * Z / 10), 0.64
    root = math.sqrt(b * b - 4 * a * c)
    low, high = wilson_interval(8, 10)
    assert low == pytest.approx((-b - root) / (2 * a), abs=1e-5)
    assert high == pytest.approx((-b + root) / (2 * a), abs=1e-5)
    assert (low, high) == pytest.approx((0.4902, 0.9433), abs=1e-4)  # the textbook's figures
