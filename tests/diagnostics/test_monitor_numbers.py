"""The monitors' numbers on hand-built models and batches whose answers are worked out here."""

import numpy as np
import pytest

from digitlab.core.model import build_model
from digitlab.core.optim import get_optimizer
from digitlab.core.schedules import batch_size_schedule, get_schedule
from digitlab.core.train import TrainHooks, TrainOptions, fit
from digitlab.diagnostics.monitors import LayerStats


def one_step(model, x, y, lr):
    """One epoch of one batch (every batch sampled): the LayerStats record."""
    history = fit(
        model,
        x,
        y,
        get_optimizer("sgd", lr),
        TrainOptions(1, batch_size_schedule(len(x)), get_schedule("constant", lr, 1)),
        rng=np.random.default_rng(0),
        hooks=TrainHooks(monitors=[LayerStats(samples=20)]),
    )
    return history.records()[0]


def relu_net():
    """3 inputs -> 4 ReLU units -> 2 classes, float64. Unit 0 always fires, unit 1 never
    (bias -100), unit 2 on one example of three, unit 3 never (weights -1, inputs >= 0)."""
    spec = [
        {"type": "dense", "units": 4},
        {"type": "activation", "name": "relu"},
        {"type": "dense", "units": 2},
    ]
    model = build_model(spec, 3, np.random.default_rng(0), np.float64)
    w1, b1 = model.layers[0].params["w"], model.layers[0].params["b"]
    w1[...] = [[1, 0, 0, -1], [0, 1, 1, -1], [0, 0, -1, -1]]
    b1[...] = [0.5, -100, 0, 0]
    model.layers[2].params["w"][...] = [[1, -1], [0.5, 0.5], [-2, 1], [0, 3]]
    x = np.array([[1.0, 2.0, 0.0], [2.0, 0.0, 1.0], [0.0, 1.0, 3.0]])
    return model, x, np.array([0, 1, 1])


def test_dead_share_mean_and_std_of_a_relu_layer():
    model, x, y = relu_net()
    record = one_step(model, x, y, lr=0.1)
    # z = x @ w1 + b1 -> unit 2 fires on example 0 only (z = 2, -1, -2); units 1 and 3: never
    a = np.array([[1.5, 0, 2, 0], [2.5, 0, 0, 0], [0.5, 0, 0, 0]])
    assert record["relu1.dead"] == 0.5
    assert record["relu1.saturated"] == 0.0
    assert record["relu1.mean"] == pytest.approx(a.mean(), rel=1e-12)
    assert record["relu1.std"] == pytest.approx(a.std(), rel=1e-12)


def test_norms_and_update_ratio_are_those_of_the_sgd_step():
    model, x, y = relu_net()
    w1 = model.layers[0].params["w"].copy()
    b1 = model.layers[0].params["b"].copy()
    w2 = model.layers[2].params["w"].copy()
    lr = 0.1
    record = one_step(model, x, y, lr)
    # the gradients of the mean cross-entropy, by hand
    z1 = x @ w1 + b1
    a1 = np.maximum(z1, 0)
    logits = a1 @ w2
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    dlogits = (p - np.eye(2)[y]) / len(y)
    grads = {"dense2.w": a1.T @ dlogits, "dense2.b": dlogits.sum(axis=0)}
    dz1 = (dlogits @ w2.T) * (z1 > 0)
    grads |= {"dense1.w": x.T @ dz1, "dense1.b": dz1.sum(axis=0)}
    for name, grad in grads.items():
        assert record[f"{name}.grad_norm"] == pytest.approx(np.linalg.norm(grad), rel=1e-12)
    for name, w in (("dense1.w", w1), ("dense2.w", w2)):
        step = lr * grads[name]
        assert record[f"{name}.update_ratio"] == pytest.approx(
            np.linalg.norm(step) / np.linalg.norm(w), rel=1e-9
        )
        assert record[f"{name}.norm"] == pytest.approx(np.linalg.norm(w - step), rel=1e-12)
    assert "dense1.b.update_ratio" not in record  # biases start at 0: no ratio for them


def test_saturated_share_counts_example_unit_pairs():
    """Sigmoid units with z = +-10 pass f'(z) = 4.5e-5 < 0.01: 3 of these 8 pairs."""
    spec = [
        {"type": "dense", "units": 4},
        {"type": "activation", "name": "sigmoid"},
        {"type": "dense", "units": 2},
    ]
    model = build_model(spec, 4, np.random.default_rng(0), np.float64)
    model.layers[0].params["w"][...] = np.eye(4)  # z = x
    x = np.array([[10.0, 0.0, -10.0, 0.5], [0.0, 10.0, 1.0, -2.0]])
    record = one_step(model, x, np.array([0, 1]), lr=1e-3)
    assert record["sigmoid1.saturated"] == 3 / 8
    assert record["sigmoid1.dead"] == 0.0  # a saturated sigmoid still passes a gradient


def test_a_conv_channel_is_dead_only_when_silent_everywhere():
    """3 channels on 4x4 images: one always fires (bias 1), one never (bias -1), one only
    near the bright pixel. Dead channels: 1 of 3 (not the many silent positions)."""
    spec = [
        {"type": "reshape", "shape": [1, 4, 4]},
        {"type": "conv2d", "filters": 3, "kernel_size": 3, "padding": 1},
        {"type": "activation", "name": "relu"},
        {"type": "flatten"},
        {"type": "dense", "units": 2},
    ]
    model = build_model(spec, 16, np.random.default_rng(0), np.float64)
    conv = model.layers[1]
    conv.params["w"][...] = 0
    conv.params["w"][1, 1, 0, 2] = 1  # channel 2 copies the image
    conv.params["b"][...] = [1, -1, 0]
    x = np.zeros((2, 16))
    x[:, 5] = 1  # one bright pixel per image
    record = one_step(model, x, np.array([0, 1]), lr=1e-3)
    assert record["relu1.dead"] == pytest.approx(1 / 3)


def test_class_balance_records_the_shares_and_the_validation_size():
    from digitlab.core.evaluation import Evaluation
    from digitlab.diagnostics.monitors import ClassBalance

    predictions = np.array([2, 2, 2, 0, 0, 1, 2, 2])  # class 2: 5 of 8, then class 0: 2
    result = Evaluation(0.5, 0.5, predictions, np.full((8, 3), 1 / 3), 8)
    record = ClassBalance().end_epoch(0, None, result)
    assert record == {
        "top_class_share": 5 / 8, "top2_class_share": 7 / 8, "val_examples": 8.0, "classes": 3.0
    }  # fmt: skip
