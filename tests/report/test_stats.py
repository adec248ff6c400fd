"""digitlab/stats.py's paired tests, Holm's correction and the seeds-and-images interval,
each against SciPy or the formula worked by hand."""

import math

import numpy as np
import pytest
from scipy import stats

from digitlab.stats import (
    holm,
    mcnemar_exact,
    paired_t_test,
    seeds_and_images_interval,
    wilson_interval,
)


def test_paired_t_matches_scipy_and_the_formula():
    rng = np.random.default_rng(0)
    for n in (2, 3, 7):
        a, b = rng.normal(0.95, 0.01, n), rng.normal(0.94, 0.01, n)
        t, df, p = paired_t_test(a, b)
        expected = stats.ttest_rel(a, b)
        d = a - b
        assert t == pytest.approx(d.mean() / (d.std(ddof=1) / math.sqrt(n)), rel=1e-12)
        assert (t, p) == pytest.approx((expected.statistic, expected.pvalue), rel=1e-10)
        assert df == n - 1
    assert paired_t_test([0.9, 0.8], [0.9, 0.8])[2] == 1.0  # no difference at all
    assert paired_t_test([0.75, 0.5], [0.5, 0.25])[2] == 0.0  # the same difference every seed


def test_mcnemar_exact_is_the_binomial_test_on_discordant_counts():
    for a_only, b_only in ((0, 0), (3, 0), (10, 2), (7, 9), (40, 61)):
        n = a_only + b_only
        expected = 1.0 if n == 0 else stats.binomtest(a_only, n, 0.5).pvalue
        assert mcnemar_exact(a_only, b_only) == pytest.approx(expected, rel=1e-12)
    # worked by hand: 6 discordant pairs all one way, p = 2 * 0.5**6
    assert mcnemar_exact(6, 0) == pytest.approx(2 / 64, rel=1e-12)


def test_holm_by_hand():
    p = [0.01, 0.04, 0.03, 0.005, 0.5]
    # sorted: 0.005 x5 = 0.025; 0.01 x4 = 0.04; 0.03 x3 = 0.09; 0.04 x2 = 0.08 -> 0.09 (monotone);
    # 0.5 x1 = 0.5
    assert holm(p) == pytest.approx([0.04, 0.09, 0.09, 0.025, 0.5], rel=1e-12)
    assert holm([0.6, 0.7]) == pytest.approx([1.0, 1.0])  # capped at 1
    assert holm([0.02]) == pytest.approx([0.02])
    assert list(holm([])) == []


def test_three_seeds_with_the_same_score_are_not_zero_wide():
    # the case: three seeds at 93.87% on the 359 test digits, the same images right
    n_images, right = 359, 337
    correct = np.zeros((3, n_images), dtype=bool)
    correct[:, :right] = True
    accuracy = right / n_images
    low, high = seeds_and_images_interval([accuracy] * 3, n_images, correct)
    half = math.sqrt(accuracy * (1 - accuracy) / (n_images - 1)) * stats.t.ppf(0.975, 358)
    assert (low, high) == pytest.approx((accuracy - half, accuracy + half), rel=1e-12)
    assert 2.4 < 100 * (high - low) / 2 < 2.6  # about +/-2.5 points, as one run's interval
    # without per-image results the same width: as if every seed got the same images right
    assert seeds_and_images_interval([accuracy] * 3, n_images) == pytest.approx((low, high))
    # seeds that share the score but not the images: narrower, yet never zero
    shifted = np.stack([np.roll(correct[0], 7 * k) for k in range(3)])
    low2, high2 = seeds_and_images_interval([accuracy] * 3, n_images, shifted)
    assert 0 < high2 - low2 < high - low


def test_interval_adds_the_seeds_and_the_images_parts():
    rng = np.random.default_rng(1)
    correct = rng.random((4, 500)) < np.array([[0.90], [0.92], [0.88], [0.93]])
    accuracies = correct.mean(axis=1)
    seeds_part = accuracies.var(ddof=1) / 4
    images_part = correct.mean(axis=0).var(ddof=1) / 500
    variance = seeds_part + images_part
    df = variance**2 / (seeds_part**2 / 3 + images_part**2 / 499)
    combined = stats.t.ppf(0.975, df) * math.sqrt(variance)
    seeds_alone = stats.t.ppf(0.975, 3) * math.sqrt(seeds_part)  # the former t-interval
    images_alone = stats.t.ppf(0.975, 499) * math.sqrt(images_part)
    half = max(combined, seeds_alone, images_alone)
    expected = (accuracies.mean() - half, accuracies.mean() + half)
    assert seeds_and_images_interval(accuracies, 500, correct) == pytest.approx(expected, rel=1e-12)
    # here Satterthwaite's df (about 4.6) would make it narrower than the seeds' part alone
    assert combined < seeds_alone == half
    # seeds closer together: the combined interval is wider than either part alone
    closer = accuracies.mean() + (accuracies - accuracies.mean()) / 4
    low, high = seeds_and_images_interval(closer, 500, correct)
    seeds_part = closer.var(ddof=1) / 4
    variance = seeds_part + images_part
    df = variance**2 / (seeds_part**2 / 3 + images_part**2 / 499)
    half = stats.t.ppf(0.975, df) * math.sqrt(variance)
    assert (high - low) / 2 == pytest.approx(half, rel=1e-12)
    assert half > max(stats.t.ppf(0.975, 3) * math.sqrt(seeds_part), images_alone)
    # other images per seed (a seeded holdout): the images' part is mean p(1-p) / N / n
    low, high = seeds_and_images_interval(closer, 500, shared_images=False)
    images_part = float(np.mean(closer * (1 - closer))) / 500 / 4
    variance = seeds_part + images_part
    df = variance**2 / (seeds_part**2 / 3 + images_part**2 / (4 * 500 - 1))
    assert (high - low) / 2 == pytest.approx(stats.t.ppf(0.975, df) * math.sqrt(variance))
    # other images per seed (a seeded holdout): the images' part is mean p(1-p) / N / n


def test_a_perfect_score_gets_the_wilson_interval():
    correct = np.ones((3, 200), dtype=bool)
    assert seeds_and_images_interval([1.0] * 3, 200, correct) == pytest.approx(
        wilson_interval(200, 200)
    )
    low, high = seeds_and_images_interval([1.0] * 3, 200, correct)
    assert high == 1.0 and low < 0.985
