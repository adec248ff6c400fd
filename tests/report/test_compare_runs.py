"""`digitlab compare`: the numbers read back from the run folders and checked by hand (SciPy's
binomial test for McNemar, Holm's order), the page, old runs and runs that cannot be paired."""

import json
import re
import shutil

import numpy as np
import pytest
from scipy import stats

from digitlab.lab.config import make_config
from digitlab.lab.experiment import run
from digitlab.report.compare import RunAnswers, pairs_of, per_class
from digitlab.stats import wilson_interval


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Three short runs on the 8x8 digits' test set (same images), one of them poor."""
    root = tmp_path_factory.mktemp("compare")
    settings = [
        {"epochs": 2, "hidden_sizes": [32]},
        {"epochs": 2, "hidden_sizes": [32], "seed": 1},
        {"epochs": 1, "hidden_sizes": [8], "activation": "sigmoid", "learning_rate": 0.05},
    ]
    for k, values in enumerate(settings):
        run(make_config({**values, "monitors": False}), root / f"run{k + 1}")
    return root


def answers(folder):
    with np.load(folder / "predictions.npz") as arrays:
        return arrays["test_y"], arrays["test_pred"]


def test_compare_prints_accuracies_and_mcnemar_as_scipy_gives_them(runs, cli, tmp_path):
    folders = [runs / f"run{k}" for k in (1, 2, 3)]
    out = tmp_path / "page.html"
    code, text, err = cli(["compare", *map(str, folders), "--out", str(out)])
    assert code == 0, err
    y, _ = answers(folders[0])
    right = [answers(f)[1] == y for f in folders]
    for r in right:
        low, high = wilson_interval(int(r.sum()), len(y))
        assert f"{100 * r.mean():.2f}%" in text and f"{100 * low:.2f}-{100 * high:.2f}%" in text
    raw = {}
    for a, b in ((0, 1), (0, 2), (1, 2)):
        only_a, only_b = int((right[a] & ~right[b]).sum()), int((~right[a] & right[b]).sum())
        n = only_a + only_b
        raw[(a, b)] = stats.binomtest(only_a, n, 0.5).pvalue if n else 1.0
        row = re.search(rf"{a + 1} vs {b + 1}\s*│\s*(\d+)\s*│\s*(\d+)\s*│\s*(\S+)", text)
        assert row is not None, text
        assert (int(row[1]), int(row[2])) == (only_a, only_b)
        assert float(row[3]) == pytest.approx(raw[(a, b)], rel=1e-3)
    assert "Holm-corrected over the 3 pairs" in text
    page = out.read_text()
    assert page.count("data:image/png;base64,") >= 2  # the poor run disagrees with both
    assert "McNemar" in page and "Per class" in page
    # per-class accuracies on the page, from the predictions by hand
    classes, accuracy = per_class([RunAnswers(f, {}, y, answers(f)[1], "") for f in folders])
    for c in range(10):
        expected = (answers(folders[2])[1][y == c] == c).mean()
        assert accuracy[2, c] == pytest.approx(expected) and classes[c] == (y == c).sum()


def test_holm_over_pairs_by_hand():
    y = np.arange(200) % 10
    wrong = {0: 4, 1: 20, 2: 60}  # the first 4, 20, 60 images wrong
    runs = [
        RunAnswers(f"r{k}", {}, y, np.where(np.arange(200) < n, (y + 1) % 10, y), "")
        for k, n in wrong.items()
    ]
    pairs = pairs_of(runs)
    raw = [stats.binomtest(0, n, 0.5).pvalue for n in (16, 56, 40)]  # discordant, one way
    assert [p.p_value for p in pairs] == pytest.approx(raw, rel=1e-12)
    # Holm: smallest (56) x3, next (40) x2, largest (16) x1, made non-decreasing
    order = np.argsort(raw)
    expected = np.empty(3)
    running = 0.0
    for k, index in enumerate(order):
        running = max(running, (3 - k) * raw[index])
        expected[index] = min(1.0, running)
    assert [p.holm_p for p in pairs] == pytest.approx(expected, rel=1e-12)
    assert pairs[0].holm_p == pytest.approx(raw[0])  # the largest p keeps its value


def test_an_old_run_without_predictions_is_evaluated_again(runs, cli, tmp_path):
    old = shutil.copytree(runs / "run1", tmp_path / "old")
    (old / "predictions.npz").unlink()
    code, text, err = cli(
        ["compare", str(old), str(runs / "run1"), "--out", str(tmp_path / "c.html")]
    )
    assert code == 0, err
    assert "model.npz, evaluated again" in text
    # the same model on the same images: the same answers, so they never disagree
    assert re.search(r"1 vs 2\s*│\s*0\s*│\s*0\s*│\s*1\s*│\s*1\s*│\s*within noise", text), text
    assert "They never disagree." in (tmp_path / "c.html").read_text()


def test_runs_that_cannot_be_paired_or_compared_get_one_line(runs, cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # where compare.html would go
    other = shutil.copytree(runs / "run2", tmp_path / "other")
    config = json.loads((other / "config.json").read_text())
    (other / "config.json").write_text(json.dumps({**config, "data": "mnist", "split": "book"}))
    code, text, err = cli(["compare", str(runs / "run1"), str(other)])
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert "cannot be paired" in err and "the digits test set (359 images)" in err
    assert "the second half of the mnist test set (book split) (359 images)" in err
    # holdout and nielsen splits test on the same images: only the dataset and book matter
    (other / "config.json").write_text(json.dumps({**config, "split": "nielsen"}))
    code, text, err = cli(["compare", str(runs / "run1"), str(other), "--out", "c.html"])
    assert code == 0, err
    shuffled = shutil.copytree(runs / "run2", tmp_path / "shuffled")
    with np.load(shuffled / "predictions.npz") as arrays:
        saved = dict(arrays)
    saved["test_y"] = np.roll(saved["test_y"], 1)
    np.savez(shuffled / "predictions.npz", **saved)
    code, text, err = cli(["compare", str(runs / "run1"), str(shuffled)])
    assert code == 1 and "their test labels differ" in err
    code, _, err = cli(["compare", str(runs / "run1")])
    assert code == 1 and "two or more" in err
    code, _, err = cli(["compare", str(runs / "run1"), str(tmp_path / "nothing")])
    assert code == 1 and "not a run folder" in err and len(err.strip().splitlines()) == 1
    old = shutil.copytree(runs / "run2", tmp_path / "old")
    (old / "predictions.npz").unlink()
    config = json.loads((old / "config.json").read_text())
    (old / "config.json").write_text(
        json.dumps({**config, "data": "idx", "data_dir": str(tmp_path / "gone")})
    )
    code, _, err = cli(["compare", str(runs / "run1"), str(old)])
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert "no predictions.npz, and its model cannot be evaluated again" in err
    assert not (tmp_path / "compare.html").exists()
