"""A sweep's marks against the best, checked against paired tests done by hand with SciPy on
constructed per-image results (predictions.npz in each trial folder, as a sweep writes them)."""

import csv
import json

import numpy as np
import pytest
from scipy import stats

from digitlab.report.sweep import (
    BEST,
    TOO_FEW,
    WITHIN,
    WORSE,
    summarise,
    write_summary,
)

N = 359  # the 8x8 digits' test set
Y = np.arange(N) % 10


def trial(trials_dir, name, seed, correct, val_accuracy):
    """A done trial whose test results are `correct` (booleans per image)."""
    trial_id = f"{name}_s{seed}"
    folder = trials_dir / trial_id
    folder.mkdir(parents=True)
    pred = np.where(correct, Y, (Y + 1) % 10)
    np.savez(
        folder / "predictions.npz", test_y=Y, test_pred=pred, val_y=Y[:144], val_pred=pred[:144]
    )
    (folder / "config.json").write_text(json.dumps({"split": "holdout", "seed": seed}))
    return {
        "id": trial_id,
        "seed": seed,
        "status": "done",
        "seconds": 1.0,
        "metrics": {
            "val_accuracy": val_accuracy,
            "test_accuracy": float(correct.mean()),
            "val_n": 144,
            "test_n": N,
        },
    }


def wrong_on(count, rng):
    correct = np.ones(N, dtype=bool)
    correct[rng.choice(N, count, replace=False)] = False
    return correct


@pytest.fixture
def sweep(tmp_path):
    rng = np.random.default_rng(7)
    trials_dir = tmp_path / "trials"
    best = {s: wrong_on(10 + s, rng) for s in range(3)}  # ~97%
    groups = {
        "best": [trial(trials_dir, "best", s, best[s], 0.98) for s in range(3)],
        # the best's results with 2 more images wrong per seed: within noise
        "near": [trial(trials_dir, "near", s, best[s] & wrong_on(2, rng), 0.97) for s in range(3)],
        # the lr 0.01 relu: about 93.5% every seed (93.06% validation)
        "low": [trial(trials_dir, "low", s, wrong_on(23 + s % 2, rng), 0.9306) for s in range(3)],
        # the 2-seed sweep: 30.7% against 97%, one seed each way of it
        "two": [
            trial(trials_dir, "two", s, rng.random(N) < 0.307 + 0.05 * (s - 0.5), 0.30)
            for s in range(2)
        ],
        "same": [trial(trials_dir, "same", s, best[s], 0.96) for s in range(3)],
    }
    return trials_dir, groups


def by_hand(groups):
    """The rule done by hand: paired t over seeds and McNemar on pooled discordant counts,
    the larger p, Holm over the variants compared."""
    best = groups["best"]
    raw = {}
    for name, records in groups.items():
        if name == "best":
            continue
        seeds = [r["seed"] for r in records]
        ours = np.array([r["metrics"]["test_accuracy"] for r in records])
        theirs = np.array([best[s]["metrics"]["test_accuracy"] for s in seeds])
        p_t = stats.ttest_rel(ours, theirs).pvalue if not np.all(ours == theirs) else 1.0
        mine_only = best_only = 0
        for record in records:
            a = np.load(record["folder"] / "predictions.npz")
            b = np.load(best[record["seed"]]["folder"] / "predictions.npz")
            right_a, right_b = a["test_pred"] == Y, b["test_pred"] == Y
            mine_only += int((right_a & ~right_b).sum())
            best_only += int((~right_a & right_b).sum())
        n = mine_only + best_only
        p_m = stats.binomtest(mine_only, n, 0.5).pvalue if n else 1.0
        raw[name] = (max(p_t, p_m), p_t, p_m, len(seeds))
    # Holm: the k-th smallest of m times (m - k + 1), running maximum, capped at 1
    order = sorted(raw, key=lambda name: raw[name][0])
    adjusted, running = {}, 0.0
    for k, name in enumerate(order):
        running = max(running, (len(order) - k) * raw[name][0])
        adjusted[name] = min(1.0, running)
    return raw, adjusted


def test_marks_agree_with_paired_tests_by_hand(sweep, tmp_path):
    trials_dir, groups = sweep
    for records in groups.values():
        for record in records:
            record["folder"] = trials_dir / record["id"]
    raw, adjusted = by_hand(groups)
    rows = summarise([({"v": name}, records) for name, records in groups.items()], trials_dir)
    marks = {row.options["v"]: row for row in rows}
    assert marks["best"].verdict == BEST
    for name, (p, p_t, p_m, seeds) in raw.items():
        row = marks[name]
        assert row.comparison is not None and row.comparison.seeds == seeds
        assert row.comparison.paired_t_p == pytest.approx(p_t, rel=1e-9)
        assert row.comparison.mcnemar_p == pytest.approx(p_m, rel=1e-9)
        assert row.comparison.raw_p == pytest.approx(p, rel=1e-9)
        assert row.p_value == pytest.approx(adjusted[name], rel=1e-9)
        if adjusted[name] < 0.05:
            expected = WORSE
        else:
            expected = TOO_FEW if seeds < 3 else WITHIN
        assert row.verdict == expected, name
    assert marks["low"].verdict == WORSE  # 93.5% vs 97% with three seeds: not within noise
    assert marks["two"].verdict == TOO_FEW  # 30.7% vs 97% with two seeds: never within noise
    assert marks["near"].verdict == WITHIN and marks["same"].verdict == WITHIN
    assert marks["same"].p_value == 1.0
    # per seed McNemar, each on the same images
    for seed, p in marks["low"].comparison.per_seed_mcnemar:
        assert 0 <= seed < 3 and 0 < p < 1


def test_summary_files_state_the_method_and_the_intervals(sweep, tmp_path):
    trials_dir, groups = sweep
    rows = summarise([({"v": name}, records) for name, records in groups.items()], trials_dir)
    write_summary(tmp_path, "marks", rows, ["v"], {"name": "marks"})
    text = (tmp_path / "summary.csv").read_text()
    table = list(csv.DictReader(text.splitlines()))
    assert [r["v"] for r in table][0] == "best"
    for row in table:
        low, high = float(row["test_accuracy_ci95_low"]), float(row["test_accuracy_ci95_high"])
        assert low < float(row["test_accuracy_mean"]) < high
        assert row["test_interval"] == "seeds+images"
        assert (high - low) / 2 > 0.01  # the images' error alone is over one point here
        low, high = float(row["val_accuracy_ci95_low"]), float(row["val_accuracy_ci95_high"])
        assert low < high
    same = next(r for r in table if r["v"] == "same")
    assert same["vs_best"] == WITHIN and float(same["p_holm"]) == 1.0
    method = table[0]["method"]
    assert {r["method"] for r in table} == {method}
    assert method.startswith("intervals: 95% interval") and "McNemar" in method and "Holm" in method
    assert "over the 4 variants compared" in method
    html = (tmp_path / "summary.html").read_text()
    assert "McNemar" in html and "Holm" in html
    assert '<td class="v-too">too few seeds to tell</td>' in html  # the 2-seed variant
    assert "per seed: seed 0:" in html
