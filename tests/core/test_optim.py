"""Optimizers on the flat parameter vector: each update rule checked step by step against the
textbook formula, penalties and decay on weights only, flat state, registries."""

import math

import numpy as np
import pytest

from digitlab.core.model import build_model
from digitlab.core.optim import OPTIMIZERS, Optimizer, get_optimizer
from digitlab.errors import ConfigError

# a tiny model: dense 2 -> 2, float64; theta = w (4 entries, mask 1) then b (2 entries, mask 0)
THETA = [0.5, -1.5, 2.0, -0.25, 0.75, -0.5]  # biases non-zero, so that decay would show
GRADS = [  # one gradient per step, with a sign change and a zero
    [0.3, -0.2, 0.0, 1.1, -0.7, 0.4],
    [-0.1, -0.4, 0.5, 0.9, 0.2, 0.4],
    [0.25, 0.1, -0.6, 0.3, -0.3, -0.1],
]
LR = 0.1


def tiny_model():
    model = build_model([{"type": "dense", "units": 2}], 2, np.random.default_rng(0), np.float64)
    model.theta[:] = THETA
    return model


def run(name, steps=3, **params):
    """theta after each of `steps` optimizer steps on the tiny model, and the optimizer."""
    model, optimizer = tiny_model(), get_optimizer(name, LR, **params)
    thetas = []
    for grad in GRADS[:steps]:
        model.g[:] = grad
        optimizer.step(model.theta, model.g, model.mask)
        thetas.append(model.theta.copy())
    return thetas, optimizer


def textbook(name, steps=3, momentum=0.9, rho=0.9, beta1=0.9, beta2=0.999, eps=1e-8,
             l1=0.0, l2=0.0, weight_decay=0.0):  # fmt: skip
    """The same steps, one number at a time in plain Python floats, as the formulas are written
    in the papers (Adam's bias corrections as m_hat and v_hat, Nesterov's look-ahead)."""
    weight = [True] * 4 + [False] * 2
    thetas, theta = [], list(THETA)
    state = [{"v": 0.0, "s": 0.0, "m": 0.0} for _ in theta]
    for t, grad in enumerate(GRADS[:steps], start=1):
        for i, (w, g, st) in enumerate(zip(theta, grad, state, strict=True)):
            if weight[i]:
                g += l2 * w + l1 * math.copysign(1.0, w)
                w -= LR * weight_decay * w
            if name == "sgd":
                w -= LR * g
            elif name == "momentum":
                st["v"] = momentum * st["v"] - LR * g
                w += st["v"]
            elif name == "nesterov":
                st["v"] = momentum * st["v"] - LR * g
                w += momentum * st["v"] - LR * g
            elif name == "rmsprop":
                st["s"] = rho * st["s"] + (1 - rho) * g * g
                w -= LR * g / (math.sqrt(st["s"]) + eps)
            else:  # adam, adamw
                st["m"] = beta1 * st["m"] + (1 - beta1) * g
                st["v"] = beta2 * st["v"] + (1 - beta2) * g * g
                m_hat, v_hat = st["m"] / (1 - beta1**t), st["v"] / (1 - beta2**t)
                w -= LR * m_hat / (math.sqrt(v_hat) + eps)
            theta[i] = w
        thetas.append(list(theta))
    return thetas


CASES = [
    ("sgd", {}),
    ("momentum", {}),
    ("momentum", {"momentum": 0.5}),
    ("nesterov", {}),
    ("rmsprop", {}),
    ("adam", {}),
    ("adam", {"beta1": 0.8, "beta2": 0.99}),
    ("adamw", {"weight_decay": 0.3}),
    ("sgd", {"l2": 0.2}),
    ("sgd", {"l1": 0.05}),
    ("momentum", {"l1": 0.05, "l2": 0.2}),
    ("adam", {"l1": 0.05, "l2": 0.2}),
    ("adamw", {"weight_decay": 0.3, "l2": 0.2}),
]


@pytest.mark.parametrize(("name", "params"), CASES)
def test_each_step_follows_the_formula(name, params):
    got, _ = run(name, **params)
    # Adam folds eps beside sqrt(v) instead of sqrt(v_hat): a relative difference < 1e-6 here
    tolerance = 1e-6 if name.startswith("adam") else 1e-13
    for step, (ours, theirs) in enumerate(zip(got, textbook(name, **params), strict=True)):
        np.testing.assert_allclose(ours, theirs, rtol=tolerance, atol=0, err_msg=f"step {step}")


def test_hand_computed_first_steps():
    """A few numbers worked out by hand, independent of the reference above."""
    (sgd, *_), _ = run("sgd", steps=1)
    np.testing.assert_allclose(sgd, [0.47, -1.48, 2.0, -0.36, 0.82, -0.54], rtol=1e-15)
    (_, momentum), _ = run("momentum", steps=2)  # v1 = -0.1 g1, v2 = 0.9 v1 - 0.1 g2
    np.testing.assert_allclose(momentum[0], 0.5 - 0.03 - 0.027 + 0.01, rtol=1e-15)
    (_, nesterov), _ = run("nesterov", steps=2)  # theta += 0.9 v - 0.1 g: -0.057, then -0.0053
    np.testing.assert_allclose(nesterov[0], 0.5 - 0.057 - 0.0053, rtol=1e-14)
    # Adam's first step is lr * g / |g| (m_hat = g, v_hat = g^2) wherever g != 0
    (adam, *_), _ = run("adam", steps=1)
    np.testing.assert_allclose(adam - THETA, [-0.1, 0.1, 0.0, -0.1, 0.1, -0.1], rtol=1e-5)


def test_adam_corrects_the_bias_of_its_moments():
    """Without the corrections the first step would be lr * 0.1 g / (0.0316 |g|) = 3.16 lr."""
    (first, second, _), _ = run("adam")
    np.testing.assert_allclose(np.abs(first - THETA)[[0, 1, 3, 4, 5]], LR, rtol=1e-5)
    assert np.abs(second - first).max() < 1.5 * LR


def test_nesterov_is_not_plain_momentum():
    assert not np.allclose(run("nesterov")[0][1], run("momentum")[0][1])


@pytest.mark.parametrize(
    ("name", "penalty"),
    [("sgd", {"l2": 0.2}), ("sgd", {"l1": 0.05}), ("adam", {"l1": 0.05}),
     ("momentum", {"l2": 0.2}), ("adamw", {"weight_decay": 0.3})],
)  # fmt: skip
def test_penalties_and_decay_change_the_weights_only(name, penalty):
    plain = run("adam" if name == "adamw" else name)[0][-1]
    penalised = run(name, **penalty)[0][-1]
    np.testing.assert_array_equal(penalised[4:], plain[4:])  # the biases: bit-identical
    assert np.all(np.abs(penalised[:4] - plain[:4]) > 1e-4)  # every weight moved otherwise


@pytest.mark.parametrize(
    ("name", "keys"),
    [("sgd", set()), ("momentum", {"velocity"}), ("nesterov", {"velocity"}),
     ("rmsprop", {"square"}), ("adam", {"m", "v"}), ("adamw", {"m", "v"})],
)  # fmt: skip
def test_state_is_flat_arrays_and_a_step_count(name, keys):
    _, optimizer = run(name)
    assert set(optimizer.state) == keys and optimizer.steps == 3
    for array in optimizer.state.values():
        assert array.shape == (len(THETA),) and array.dtype == np.float64


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_state_dict_round_trip_continues_bit_identically(name):
    _, optimizer = run(name, steps=2)
    clone = get_optimizer(name, LR)
    clone.load_state_dict(optimizer.state_dict())
    theta = np.array(run(name, steps=2)[0][-1])
    theta_clone, g = theta.copy(), np.array(GRADS[2])
    mask = tiny_model().mask
    optimizer.step(theta, g.copy(), mask)
    clone.step(theta_clone, g.copy(), mask)
    np.testing.assert_array_equal(theta, theta_clone)


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_each_optimizer_descends_a_bowl(name):
    """Minimise 0.5 |theta - 3|^2 from 0, in float32: the update keeps the dtype."""
    lr = 0.05 if name in ("adam", "adamw", "rmsprop") else 0.1
    optimizer = get_optimizer(name, lr)
    theta, mask = np.zeros(4, np.float32), np.zeros(4, np.float32)
    for _ in range(300):
        optimizer.step(theta, theta - np.float32(3), mask)
    assert theta.dtype == np.float32
    np.testing.assert_allclose(theta, 3, atol=0.1)


def test_a_frozen_first_layer_is_a_slice_of_theta():
    from digitlab.core.specs import mlp_spec

    model = build_model(mlp_spec([5], 3, "tanh"), 4, np.random.default_rng(0), np.float64)
    offset = dict((name, start) for name, start, _ in model.layout)["dense2.w"]
    before = model.theta.copy()
    model.g[:] = 1.0
    get_optimizer("adam", 0.1).step(model.theta[offset:], model.g[offset:], model.mask[offset:])
    np.testing.assert_array_equal(model.theta[:offset], before[:offset])
    assert np.all(model.theta[offset:] != before[offset:])


def test_a_new_optimizer_needs_only_its_update():
    class SignDescent(Optimizer):
        def update(self, theta, g):
            theta -= self.learning_rate * np.sign(g)

    model = tiny_model()
    model.g[:] = GRADS[0]
    SignDescent(0.5).step(model.theta, model.g, model.mask)
    np.testing.assert_allclose(model.theta, np.array(THETA) - 0.5 * np.sign(GRADS[0]))


def test_bad_values_are_config_errors():
    with pytest.raises(ConfigError, match="learning rate must be > 0"):
        get_optimizer("sgd", 0)
    with pytest.raises(ConfigError, match="penalties must be >= 0"):
        get_optimizer("sgd", 0.1, l2=-1)
    with pytest.raises(ConfigError, match="unknown optimizer 'adamm'"):
        get_optimizer("adamm", 0.1)
    with pytest.raises(ConfigError, match="optimizer 'sgd'"):
        get_optimizer("sgd", 0.1, momentum=0.9)


def test_clip_grad_norm_scales_the_whole_gradient_exactly():
    from digitlab.core.optim import clip_grad_norm

    g = np.array([3.0, -4.0, 0.0, 12.0])  # norm 13
    assert clip_grad_norm(g, 6.5) == 13.0
    np.testing.assert_array_equal(g, [1.5, -2.0, 0.0, 6.0])  # halved: the direction is kept
    assert np.linalg.norm(g) == 6.5
    small = np.array([0.3, 0.4], np.float32)
    assert clip_grad_norm(small, 1.0) == pytest.approx(0.5)
    np.testing.assert_array_equal(small, np.array([0.3, 0.4], np.float32))  # within: untouched
    assert small.dtype == np.float32


def test_limit_unit_norms_caps_each_column_and_keeps_the_short_ones():
    from digitlab.core.optim import limit_unit_norms

    w = np.array([[3.0, 0.1, 0.0], [4.0, 0.2, 0.0]])  # column norms 5, ~0.22, 0
    limit_unit_norms([w], 2.0)
    np.testing.assert_allclose(w[:, 0], [1.2, 1.6])  # 5 -> 2, same direction
    np.testing.assert_array_equal(w[:, 1:], [[0.1, 0.0], [0.2, 0.0]])
