"""Each alarm fires on a planted record and stays silent just short of its threshold; the
overfitting and dead-unit alarms weigh their numbers' noise and withdraw what a run contradicts."""

import json
from pathlib import Path

import numpy as np
import pytest
from finding_kinds import infos, warnings

from digitlab.core.losses import LOSSES, loss
from digitlab.diagnostics.alarms import find
from digitlab.diagnostics.gradcheck import check_loss

DATA = Path(__file__).parent / "data"


def quiet(epochs=10, **extra):
    """A healthy run's records: losses falling, nothing the monitors watch for."""
    return [
        {
            "epoch": float(e),
            "train_loss": 1 / e,
            "val_loss": 1 / e,
            "val_accuracy": 0.9,
            "top_class_share": 0.12,
            "top2_class_share": 0.22,
            "val_examples": 1000.0,
            "relu1.dead": 0.05,
            "sigmoid1.saturated": 0.1,
            "loss_spikes": 0.0,
            "loss_spike_batches": 100.0,
            **extra,
        }
        for e in range(1, epochs + 1)
    ]


def test_the_quiet_run_is_quiet():
    assert warnings(quiet()) == {}


@pytest.mark.parametrize(("share", "fires"), [(0.5, True), (0.49, False)])
def test_class_collapse(share, fires):
    records = quiet(3)
    records[-1] |= {"top_class_share": share, "top2_class_share": share + 0.1}
    assert ("class collapse" in warnings(records)) is fires


@pytest.mark.parametrize(("share", "fires"), [(0.5, True), (0.49, False)])
def test_saturation_at_its_worst_epoch(share, fires):
    records = quiet(5)
    records[1]["sigmoid1.saturated"] = share  # epoch 2, gone later: still reported
    found = warnings(records)
    assert ("saturation" in found) is fires
    if fires:
        assert found["saturation"].epoch == 2 and "sigmoid1 50% at epoch 2" in (
            found["saturation"].message
        )


@pytest.mark.parametrize(("epoch", "fires"), [(3, True), (4, False)])
def test_saturation_is_judged_in_the_first_three_epochs(epoch, fires):
    records = quiet(6)
    records[epoch - 1]["sigmoid1.saturated"] = 0.6
    assert ("saturation" in warnings(records)) is fires


def test_a_sigmoid_net_saturating_as_it_learns_is_no_alarm():
    """recipes/book_sigmoid_100.toml (98.6%): saturation 18% -> 52% over 30 epochs."""
    shares = np.linspace(0.177, 0.524, 30)
    records = quiet(30)
    for record, share in zip(records, shares, strict=True):
        record["sigmoid1.saturated"] = float(share)
    assert warnings(records) == {}


def norms(*values):
    names = [f"dense{i}.w.norm" for i in range(1, len(values) + 2)]
    return dict(zip(names, [*values, 1.0], strict=True))  # the output layer last, not counted


@pytest.mark.parametrize(
    ("hidden", "fires"),
    [
        ((1.0, 1.5, 3.0), True),  # x3.0, rising layer by layer
        ((1.0, 1.5, 2.99), False),  # just under x3
        ((1.0, 3.5, 3.2), False),  # not rising all the way
        ((1.0, 4.0), False),  # two hidden layers: too shallow to judge
    ],
)
def test_weights_growing_with_depth(hidden, fires):
    records = quiet(3)
    records[-1] |= norms(*hidden)
    found = warnings(records)
    assert ("weights grow with depth" in found) is fires
    if fires:
        assert "x3.0" in found["weights grow with depth"].message


@pytest.mark.parametrize(
    ("spikes", "batches", "fires"),
    [
        ((0, 2, 1), 500, True),  # 3 spikes in 1,500 batches: 0.2% of them
        ((0, 2, 1), 501, False),  # 3 in 1,503: just under 0.2%
        ((0, 1, 1), 100, False),  # 2: under the minimum of 3
        ((5, 3, 2), 1600, True),  # 10 in 4,800
    ],
)
def test_loss_spikes(spikes, batches, fires):
    records = quiet(3)
    for record, count in zip(records, spikes, strict=True):
        record |= {"loss_spikes": float(count), "loss_spike_batches": float(batches)}
    found = warnings(records)
    assert ("loss spikes" in found) is fires
    if fires:
        assert found["loss spikes"].epoch == 1 + int(np.argmax(spikes))


def nielsen_history():
    """The first 100 epochs of recipes/nielsen_overfitting.toml (seed 0): 1,000 training
    images, 10,000 validation; the validation loss turns at epoch 10 (0.3670)."""
    lines = (DATA / "nielsen_overfitting.jsonl").read_text().splitlines()
    return [json.loads(line) | {"val_examples": 10000.0} for line in lines]


def test_a_real_overfitting_history_fires_naming_the_turn():
    found = warnings(nielsen_history())
    assert "overfitting" in found
    assert "risen since epoch 10 (0.3670 -> 0.4627)" in found["overfitting"].message


def test_the_overfitting_alarm_waits_for_a_rise_beyond_noise():
    records = nielsen_history()
    first = next(e for e in range(1, 101) if "overfitting" in warnings(records[:e]))
    # by epoch 25 the loss is 10% up (0.4058) but within 2 standard errors of the difference
    # (each mean's bounded at sqrt(0.4 * 10 / 10,000) = 0.02)
    assert 25 < first <= 50


def cnn_augment_history():
    """recipes/cnn_augment.toml's shape (6,000 validation images): best 0.0220 at epoch 14,
    up to 0.0246 by epoch 22 while training loss falls, a new best 0.0216 at epoch 27."""
    val = np.concatenate(
        [
            np.geomspace(0.06, 0.0220, 14),
            [0.0228, 0.0224, 0.0231, 0.0236, 0.0233, 0.0240],
            [0.0238, 0.0246, 0.0241, 0.0239, 0.0232],
            [0.0225, 0.0216, 0.0219, 0.0217, 0.0218],
        ]
    )
    train = np.geomspace(0.3, 0.03, 30)
    return [
        {
            "epoch": float(e + 1),
            "train_loss": float(train[e]),
            "val_loss": float(val[e]),
            "val_accuracy": 0.99,
            "val_examples": 6000.0,
        }
        for e in range(30)
    ]


def test_the_cnn_augment_history_raises_no_overfitting_alarm_at_any_epoch():
    records = cnn_augment_history()
    assert records[21]["val_loss"] > 1.1 * records[13]["val_loss"]  # the old rule fired here
    for epoch in range(1, 31):
        assert "overfitting" not in warnings(records[:epoch]), epoch
    assert "best validation loss at epoch 27 (0.0216)" in infos(records)["best epochs"].message


def test_without_the_validation_size_a_10_percent_rise_still_fires():
    records = [{k: v for k, v in r.items() if k != "val_examples"} for r in cnn_augment_history()]
    assert "overfitting" in warnings(records[:22])


def test_an_alarm_the_run_contradicts_is_withdrawn_at_the_end():
    records = cnn_augment_history()
    for record in records:
        record["val_examples"] = 1e7  # so precise that the rise to 0.0246 is real
    assert "overfitting" in warnings(records[:22])
    found = find(records)
    assert "overfitting" not in {f.kind for f in found if f.severity == "warning"}
    (withdrawn,) = [f for f in found if f.kind == "overfitting withdrawn"]
    assert withdrawn.severity == "info"
    assert "alarm of epoch 22 (validation loss 0.0220 -> 0.0246)" in withdrawn.message
    assert "new best validation loss at epoch 27 (0.0216)" in withdrawn.message


@pytest.mark.parametrize(
    ("value_scale", "gradient_scale"),
    [(1, 4), (4, 1)],  # the gradient forgets the mean's 1/n; the value is a sum, not a mean
    ids=["wrong gradient", "wrong value"],
)
def test_check_loss_catches_a_planted_wrong_loss(value_scale, gradient_scale):
    reference = LOSSES["softmax_cross_entropy"]

    @loss("planted_wrong")
    def planted(logits, y):
        value, dlogits = reference(logits, y)
        return value * value_scale, dlogits * gradient_scale

    try:
        logits = np.random.default_rng(0).standard_normal((4, 3))
        y = np.array([0, 2, 1, 1])
        assert check_loss("softmax_cross_entropy", logits, y).passed
        assert not check_loss("planted_wrong", logits, y).passed
    finally:
        del LOSSES["planted_wrong"]


def with_dead(shares):
    records = quiet(len(shares))
    for record, share in zip(records, shares, strict=True):
        record["relu3.dead"] = share
    return records


@pytest.mark.parametrize(
    ("shares", "fires"),
    [
        ((0.1, 0.6, 0.55, 0.5), True),  # three epochs in a row at 50% or more
        ((0.6, 0.6, 0.49, 0.6), False),  # a dip under 50% in the last three
        ((0.59,), False),  # one epoch: early steps silence units that come back
        ((0.9, 0.9), False),
    ],
)
def test_dead_units_need_three_epochs_in_a_row(shares, fires):
    found = warnings(with_dead(shares))
    assert ("dead units" in found) is fires
    if fires:
        assert "epochs 2-4: relu3 50%" in found["dead units"].message


def test_dead_units_that_come_back_withdraw_the_alarm():
    records = with_dead((0.6, 0.6, 0.6, 0.3, 0.2, 0.1))
    assert "dead units" in warnings(records[:3])  # the CLI printed it at epoch 3
    assert "dead units" not in warnings(records)
    withdrawn = infos(records)["dead units withdrawn"]
    assert "alarm of epoch 3" in withdrawn.message and "relu3 60% -> 10%" in withdrawn.message


def test_a_real_run_with_half_its_units_dead_fires():
    from digitlab.core.model import build_model
    from digitlab.core.optim import get_optimizer
    from digitlab.core.schedules import batch_size_schedule, get_schedule
    from digitlab.core.specs import mlp_spec
    from digitlab.core.train import TrainHooks, TrainOptions, fit
    from digitlab.diagnostics.monitors import default_monitors

    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((200, 6)).astype(np.float32), rng.integers(0, 3, 200)
    model = build_model(mlp_spec([10], 3, "relu"), 6, np.random.default_rng(0))
    model.layers[0].params["b"][:6] = -1e3  # 6 of 10 units can never fire
    history = fit(
        model,
        x,
        y,
        get_optimizer("sgd", 0.01),
        TrainOptions(3, batch_size_schedule(50), get_schedule("constant", 0.01, 3)),
        rng=np.random.default_rng(0),
        validation=(x[:50], y[:50]),
        hooks=TrainHooks(monitors=default_monitors()),
    )
    found = warnings(history.records())
    assert "relu1 60%" in found["dead units"].message
    assert "dead units" not in warnings(history.records()[:2])
