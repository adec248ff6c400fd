"""Which validation examples moved the loss (Q7): per-example losses, the best-loss model kept
by save_best_model, the four groups and their parts of the change, and the report's section."""

import json

import numpy as np
import pytest

from digitlab.core.evaluation import predict_logits
from digitlab.core.losses import LOSSES, example_losses, loss
from digitlab.lab.config import make_config
from digitlab.lab.experiment import Interrupted, prepare_data, run
from digitlab.lab.modelfile import load_model
from digitlab.report.losschange import GROUPS, loss_change, read_loss_change


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_example_losses_average_to_the_registered_loss(name):
    rng = np.random.default_rng(1)
    logits, y = rng.normal(scale=4, size=(50, 10)), rng.integers(0, 10, 50)
    values = example_losses(name, logits, y)
    assert values.shape == (50,) and values.dtype == np.float64
    np.testing.assert_allclose(values.mean(), LOSSES[name](logits, y)[0], rtol=1e-12)
    np.testing.assert_allclose(values[7], LOSSES[name](logits[7:8], y[7:8])[0], rtol=1e-12)


def test_a_plugin_loss_is_taken_row_by_row():
    @loss("absolute_test_loss")
    def absolute(logits, y):
        rows = np.arange(len(y))
        return float(np.abs(1 - logits[rows, y]).mean()), np.zeros_like(logits)

    try:
        logits, y = np.array([[0.0, 3.0], [1.5, 0.0]]), np.array([1, 0])
        np.testing.assert_array_equal(example_losses("absolute_test_loss", logits, y), [2, 0.5])
    finally:
        del LOSSES["absolute_test_loss"]


def test_groups_counts_and_parts_by_hand():
    before = np.array([0.1, 0.2, 3.0, 2.0, 0.5, 1.0])
    after = np.array([0.05, 0.1, 9.0, 0.5, 2.5, 1.0])
    right_before = np.array([True, True, False, False, True, True])
    right_after = np.array([True, True, False, True, False, True])
    change = loss_change(before, after, right_before, right_after, tops=(0.2, 0.5))
    assert [g.name for g in change.groups] == list(GROUPS)
    assert [g.count for g in change.groups] == [3, 1, 1, 1]
    right, wrong, became_right, became_wrong = change.groups
    assert right.loss_before == pytest.approx((0.1 + 0.2 + 1.0) / 3)
    assert right.part == pytest.approx((-0.05 - 0.1 + 0) / 6)
    assert wrong.part == pytest.approx(6 / 6) and became_right.part == pytest.approx(-1.5 / 6)
    assert became_wrong.part == pytest.approx(2 / 6)
    assert sum(g.part for g in change.groups) == pytest.approx(change.change)
    assert wrong.share == pytest.approx(1 / change.change)
    assert change.top_share == {0.2: pytest.approx(6 / 8), 0.5: pytest.approx(1.0)}
    assert "wrong at both" in "\n".join(change.lines())


CONFIG = {"hidden_sizes": [16], "lr": 0.5, "epochs": 6, "save_best_model": True}


@pytest.fixture(scope="module")
def kept(tmp_path_factory):
    folder = tmp_path_factory.mktemp("best")
    run(make_config(CONFIG), folder)
    return folder


def test_the_best_model_is_the_lowest_validation_loss_epoch(kept):
    history = [json.loads(x) for x in (kept / "history.jsonl").read_text().splitlines()]
    losses = [r["val_loss"] for r in history]
    best_epoch = int(np.argmin(losses)) + 1
    model, extra = load_model(kept / "model_best.npz")
    assert extra["epoch"] == best_epoch and extra["config"]["save_best_model"] is True
    val = prepare_data(make_config(CONFIG)).splits.val
    per_example = example_losses("softmax_cross_entropy", predict_logits(model, val.x), val.y)
    assert per_example.mean() == pytest.approx(losses[best_epoch - 1], rel=1e-5)
    with np.load(kept / "predictions.npz") as p:
        np.testing.assert_allclose(p["val_best_losses"], per_example, rtol=1e-6)
        assert p["val_losses"].mean() == pytest.approx(losses[-1], rel=1e-5)
        assert int(p["best_loss_epoch"]) == best_epoch
    change, epoch = read_loss_change(kept)
    assert epoch == best_epoch and sum(g.count for g in change.groups) == len(val.y)
    assert change.change == pytest.approx(losses[-1] - losses[best_epoch - 1], rel=1e-4, abs=1e-6)


def test_a_run_without_save_best_model_has_none(tmp_path):
    run(make_config({**CONFIG, "save_best_model": False, "epochs": 1}), tmp_path)
    assert not (tmp_path / "model_best.npz").exists()
    assert read_loss_change(tmp_path) is None


def test_stopped_and_resumed_it_keeps_the_same_best_model(tmp_path, kept):
    batches = iter(range(100))  # 41 batches an epoch: stopped inside epoch 3
    with pytest.raises(Interrupted):
        run(make_config(CONFIG), tmp_path, should_stop=lambda: next(batches, None) is None)
    run(make_config({}), tmp_path, resume=True)
    for name in ("model_best.npz", "predictions.npz"):
        with np.load(kept / name) as a, np.load(tmp_path / name) as b:
            for key in a.files:
                np.testing.assert_array_equal(a[key], b[key], err_msg=f"{name}: {key}")


def test_the_report_section_shows_the_groups(kept):
    from digitlab.report.html import build_report

    page = build_report(kept).read_text()
    section = page.split('<section id="loss-change">')[1].split("</section>")[0]
    change, epoch = read_loss_change(kept)
    for g in change.groups:
        assert f"<td>{g.name}</td>" in section and f"{g.count:,}" in section
    assert f"mean loss, epoch {epoch}" in section
    assert (kept / "plots" / "loss_change.png").read_bytes()[:4] == b"\x89PNG"
