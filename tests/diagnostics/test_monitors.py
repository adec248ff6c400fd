import numpy as np
import pytest

from digitlab.core.model import build_model
from digitlab.core.optim import batch_size_schedule, get_optimizer, get_schedule
from digitlab.core.specs import mlp_spec
from digitlab.core.train import TrainHooks, TrainOptions, fit
from digitlab.diagnostics.alarms import find
from digitlab.diagnostics.monitors import ClassBalance, LayerStats, LossSpikes, default_monitors


def train(spec, x, y, lr=0.1, epochs=3, monitors=None, seed=0):
    model = build_model(spec, x.shape[1], np.random.default_rng(seed))
    options = TrainOptions(epochs, batch_size_schedule(32), get_schedule("constant", lr, epochs))
    hooks = TrainHooks(monitors=default_monitors(samples=1000) if monitors is None else monitors)
    history = fit(
        model, x, y, get_optimizer("sgd", lr), options, rng=np.random.default_rng(seed),
        validation=(x[:64], y[:64]), hooks=hooks,
    )  # fmt: skip
    return model, history


@pytest.fixture
def blobs():
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((3, 6)) * 3
    y = rng.integers(0, 3, 300)
    return (centres[y] + rng.standard_normal((300, 6))).astype(np.float32), y


def test_records_hold_every_monitor_key(blobs):
    _, history = train(mlp_spec([8, 8], 3, "sigmoid"), *blobs)
    record = history.records()[-1]
    keys = (
        "dense1.w.norm", "dense1.w.grad_norm", "dense1.w.update_ratio", "dense1.b.grad_norm",
        "sigmoid1.mean", "sigmoid1.std", "sigmoid1.dead", "sigmoid1.saturated",
        "loss_spikes", "top_class_share", "top2_class_share",
    )  # fmt: skip
    for key in keys:
        assert key in record, key
    assert 0 < record["sigmoid1.mean"] < 1
    assert record["dense1.w.update_ratio"] > 0


def test_update_ratio_of_sgd_is_lr_grad_over_weight(blobs):
    model, history = train(mlp_spec([4], 3, "tanh"), *blobs, epochs=1, lr=0.01)
    ratio = history["dense2.w.update_ratio"][0]
    assert 1e-6 < ratio < 0.1


def test_monitors_do_not_change_training(blobs):
    spec = mlp_spec([8], 3, "relu", dropout=0.2)
    with_monitors, _ = train(spec, *blobs)
    without, _ = train(spec, *blobs, monitors=[])
    for (_, a, _), (_, b, _) in zip(with_monitors.parameters(), without.parameters(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_dead_relu_units_are_counted(blobs):
    x, y = blobs
    model = build_model(mlp_spec([10], 3, "relu"), 6, np.random.default_rng(0))
    model.layers[0].params["b"][:5] = -1e3  # half the units can never fire
    stats = LayerStats(samples=1000)
    options = TrainOptions(1, batch_size_schedule(32), get_schedule("constant", 1e-9, 1))
    history = fit(
        model, x, y, get_optimizer("sgd", 1e-9), options, rng=np.random.default_rng(0),
        hooks=TrainHooks(monitors=[stats]),
    )  # fmt: skip
    assert history["relu1.dead"][0] == pytest.approx(0.5)
    assert history["relu1.saturated"][0] == 0


def test_loss_spikes_counts_jumps():
    class FakeStep:
        def __init__(self, loss):
            self.loss = loss

    spikes = LossSpikes(warmup=5)
    # 10 then 4: a jump the next batch does not undo, a spike; 12 then 1.2: a lone hard batch;
    # 1.4: noise, no jump
    for loss in [1.0] * 20 + [10.0, 4.0] + [1.0] * 5 + [12.0, 1.2, 1.4, 1.1]:
        spikes.before_update(FakeStep(loss))
    assert spikes.end_epoch(0, None, None) == {"loss_spikes": 1.0, "loss_spike_batches": 31.0}
    spikes.before_update(FakeStep(1.0))
    assert spikes.end_epoch(1, None, None) == {"loss_spikes": 0.0, "loss_spike_batches": 1.0}


def test_a_jump_at_the_end_of_an_epoch_is_judged_in_the_next():
    class FakeStep:
        def __init__(self, loss):
            self.loss = loss

    spikes = LossSpikes(warmup=5)
    for loss in [1.0] * 20 + [10.0]:
        spikes.before_update(FakeStep(loss))
    assert spikes.end_epoch(0, None, None)["loss_spikes"] == 0.0
    spikes.before_update(FakeStep(5.0))
    assert spikes.end_epoch(1, None, None)["loss_spikes"] == 1.0


def test_class_balance_sees_collapse():
    from digitlab.core.evaluation import Evaluation

    collapsed = Evaluation(1.0, 0.1, np.full(100, 3), np.full((100, 10), 0.1), 100)
    assert ClassBalance().end_epoch(0, None, collapsed)["top_class_share"] == 1.0
    assert find([{"epoch": 1.0, "top_class_share": 1.0, "top2_class_share": 1.0}])[0].kind == (
        "class collapse"
    )
