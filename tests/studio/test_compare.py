"""Compare: accuracies with intervals, per-class accuracies, discordant digits, McNemar's test."""

import json
import math
import shutil

import numpy as np
import pytest

from digitlab.errors import DataError
from digitlab.lab.config import make_config
from digitlab.lab.experiment import run, wilson_interval
from digitlab.studio.model_api import compare, mcnemar_exact


def mcnemar_by_hand(b: int, c: int) -> float:
    """2 * P(X <= min(b, c)) for X ~ Binomial(b + c, 1/2), capped at 1."""
    n = b + c
    tail = sum(math.comb(n, k) for k in range(min(b, c) + 1)) / 2**n
    return min(1.0, 2 * tail)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    run(make_config({"epochs": 1, "hidden": [4], "lr": 0.02}), root / "small")
    run(make_config({"epochs": 4, "hidden": [32], "seed": 1}), root / "big")
    return root


def test_mcnemar_exact_p_matches_a_hand_computation():
    # 1 vs 6 discordant pairs: 2 * (C(7,0) + C(7,1)) / 2^7 = 2 * 8 / 128
    assert mcnemar_exact(1, 6) == pytest.approx(0.125, rel=1e-12)
    assert mcnemar_exact(6, 1) == pytest.approx(0.125, rel=1e-12)
    assert mcnemar_exact(0, 0) == 1.0 and mcnemar_exact(4, 4) == pytest.approx(1.0)
    for b, c in ((3, 12), (0, 9), (20, 35)):
        assert mcnemar_exact(b, c) == pytest.approx(mcnemar_by_hand(b, c), rel=1e-9)


def test_two_runs_side_by_side(runs):
    result = compare({"0/small": runs / "small", "0/big": runs / "big"})
    with (
        np.load(runs / "small" / "predictions.npz") as a,
        np.load(runs / "big" / "predictions.npz") as b,
    ):
        y, pred_a, pred_b = a["test_y"], a["test_pred"], b["test_pred"]
    small, big = result["runs"]
    assert (small["id"], big["id"]) == ("0/small", "0/big")
    for summary, pred in ((small, pred_a), (big, pred_b)):
        correct = int((pred == y).sum())
        assert summary["n"] == len(y) and summary["correct"] == correct
        assert summary["interval"] == list(wilson_interval(correct, len(y)))
        assert summary["per_class"] == [float((pred[y == k] == k).mean()) for k in range(10)]
    assert len(small["curves"]["val_loss"]) == 1 and len(big["curves"]["val_accuracy"]) == 4
    (pair,) = result["pairs"]
    a_only = np.flatnonzero((pred_a == y) & (pred_b != y))
    b_only = np.flatnonzero((pred_a != y) & (pred_b == y))
    assert pair["a_only"] == a_only.tolist() and pair["b_only"] == b_only.tolist()
    assert len(b_only) > len(a_only)  # the bigger, longer-trained net wins
    assert pair["p_value"] == pytest.approx(mcnemar_by_hand(len(a_only), len(b_only)))
    shown = pair["b_only"][:24]
    assert sorted(map(int, result["images"])) == sorted(set(shown) | set(pair["a_only"][:24]))
    assert result["labels"][str(shown[0])] == int(y[shown[0]])
    assert np.array(result["images"][str(shown[0])]).shape == (64,)
    assert result["image_shape"] == [8, 8]
    json.dumps(result)  # all plain JSON


def test_three_runs_give_every_pair(runs):
    result = compare({"a": runs / "small", "b": runs / "big", "c": runs / "small"})
    assert [(p["a"], p["b"]) for p in result["pairs"]] == [("a", "b"), ("a", "c"), ("b", "c")]
    assert result["pairs"][1]["a_only"] == [] and result["pairs"][1]["p_value"] == 1.0


def test_runs_on_different_test_sets_are_a_one_line_error(runs, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(runs / "big", other)
    config = json.loads((other / "config.json").read_text())
    config.update(data="mnist", split="book")
    (other / "config.json").write_text(json.dumps(config))
    with pytest.raises(DataError) as caught:
        compare({"0/small": runs / "small", "1/other": other})
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("0/small and 1/other were tested on different test sets")
    with pytest.raises(DataError, match="two or more runs"):
        compare({"0/small": runs / "small"})


def studio_client(folders):
    from starlette.testclient import TestClient

    from digitlab.studio.app import create_app

    app = create_app(folders)
    return TestClient(app, base_url="http://127.0.0.1")


def test_compare_api(runs, tmp_path):
    client = studio_client([runs, tmp_path])
    response = client.get("/api/compare?runs=0/small,0/big")
    assert response.status_code == 200, response.text
    assert response.json() == json.loads(
        json.dumps(compare({"0/small": runs / "small", "0/big": runs / "big"}))
    )
    shutil.copytree(runs / "big", tmp_path / "copy")
    predictions = dict(np.load(tmp_path / "copy" / "predictions.npz"))
    predictions["test_y"] = predictions["test_y"][::-1].copy()
    np.savez(tmp_path / "copy" / "predictions.npz", **predictions)
    response = client.get("/api/compare?runs=0/small,1/copy")
    assert response.status_code == 400
    assert response.json()["error"].startswith(
        "0/small and 1/copy were tested on different test sets"
    )
    assert client.get("/api/compare?runs=0/small").status_code == 400
    assert client.get("/api/compare?runs=0/small,0/../small").status_code == 404
