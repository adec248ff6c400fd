import numpy as np
import pytest

from digitlab.core.optim import (
    OPTIMIZERS,
    SCHEDULES,
    batch_size_schedule,
    get_optimizer,
    get_schedule,
)
from digitlab.errors import ConfigError


def quadratic_bowl(optimizer, steps=300):
    """Minimise 0.5 * |w - 3|^2 from w = 0."""
    w = np.zeros(4)
    grad = np.zeros(4)
    for _ in range(steps):
        grad[:] = w - 3
        optimizer.step([("dense1.b", w, grad)])
    return w


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_each_optimizer_descends_a_bowl(name):
    lr = 0.05 if name in ("adam", "adamw", "rmsprop") else 0.1
    w = quadratic_bowl(get_optimizer(name, lr))
    np.testing.assert_allclose(w, 3, atol=0.1)


def test_sgd_step_is_exact():
    w, g = np.array([1.0, 2.0]), np.array([0.5, -1.0])
    get_optimizer("sgd", 0.1).step([("x.b", w, g)])
    np.testing.assert_allclose(w, [0.95, 2.1])


def test_l2_applies_to_weights_not_biases():
    opt = get_optimizer("sgd", 1.0, l2=0.1)
    w, b = np.ones(2), np.ones(2)
    opt.step([("d.w", w, np.zeros(2)), ("d.b", b, np.zeros(2))])
    np.testing.assert_allclose(w, 0.9)
    np.testing.assert_allclose(b, 1.0)


def test_state_dict_round_trip():
    opt = get_optimizer("adam", 0.01)
    quadratic_bowl(opt, steps=3)
    clone = get_optimizer("adam", 0.01)
    clone.load_state_dict(opt.state_dict())
    w1, w2 = np.ones(4), np.ones(4)
    opt.step([("dense1.b", w1, np.ones(4))])
    clone.step([("dense1.b", w2, np.ones(4))])
    np.testing.assert_array_equal(w1, w2)


def test_schedules():
    assert [get_schedule("constant", 0.3, 5)(e) for e in range(3)] == [0.3] * 3
    piece = get_schedule("piecewise", 1, 30, steps=[[0.5, 10], [0.1, 10], [0.02, 10]])
    assert [piece(e) for e in (0, 9, 10, 19, 20, 29, 40)] == [0.5, 0.5, 0.1, 0.1, 0.02, 0.02, 0.02]
    assert get_schedule("exponential", 1.0, 5, decay=0.5)(2) == 0.25
    cos = get_schedule("cosine", 1.0, 11)
    assert cos(0) == 1.0 and cos(10) == pytest.approx(0.0) and cos(5) == pytest.approx(0.5)
    assert set(SCHEDULES) == {"constant", "piecewise", "exponential", "cosine"}


def test_batch_ramp_doubles_to_the_cap():
    ramp = batch_size_schedule(256, 20)
    assert [ramp(e) for e in range(6)] == [20, 40, 80, 160, 256, 256]
    assert batch_size_schedule(32)(5) == 32


def test_bad_values_are_config_errors():
    with pytest.raises(ConfigError, match="learning rate must be > 0"):
        get_optimizer("sgd", 0)
    with pytest.raises(ConfigError, match="unknown optimizer 'adamm'"):
        get_optimizer("adamm", 0.1)
    with pytest.raises(ConfigError, match="optimizer 'sgd'"):
        get_optimizer("sgd", 0.1, momentum=0.9)
    with pytest.raises(ConfigError, match="batch size must be > 0"):
        batch_size_schedule(0)


# ---------------------------------------------------------------- packed models


def _mlp(seed=0, dtype=np.float32):
    from digitlab.core.model import build_model
    from digitlab.core.specs import mlp_spec

    return build_model(mlp_spec([6, 5], 3, "tanh"), 4, np.random.default_rng(seed), dtype)


def _unpack(model):
    """Give every layer its own parameter and gradient arrays again (no flat buffer)."""
    for lay in model.layers:
        for key in lay.params:
            lay.params[key] = lay.params[key].copy()
            lay.grads[key] = lay.grads[key].copy()


def _train(model, optimizer, steps=5, seed=1):
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        for _, _, grad in model.parameters():
            grad[...] = rng.standard_normal(grad.shape)
        optimizer.step(model.parameters())
    return [param.copy() for _, param, _ in model.parameters()]


def test_a_model_keeps_its_arrays_in_two_flat_buffers():
    model = _mlp()
    sizes = [param.size for _, param, _ in model.parameters()]
    assert model.flat_params.shape == model.flat_grads.shape == (sum(sizes),)
    for _, param, grad in model.parameters():
        assert param.base is model.flat_params and grad.base is model.flat_grads
    model.flat_params[:] = 0.5  # the views see it
    assert all((param == 0.5).all() for _, param, _ in model.parameters())


@pytest.mark.parametrize(
    "name, params",
    [
        ("sgd", {"l2": 0.01}),
        ("momentum", {"l1": 0.001}),
        ("nesterov", {}),
        ("rmsprop", {"l2": 0.01}),
        ("adam", {"l1": 0.001, "l2": 0.01}),
        ("adamw", {"weight_decay": 0.05, "l2": 0.01}),
    ],
)
def test_packed_and_per_array_updates_are_bit_identical(name, params):
    packed, separate = _mlp(), _mlp()
    _unpack(separate)
    opt_packed = get_optimizer(name, 0.01, **params)
    opt_separate = get_optimizer(name, 0.01, **params)
    after_packed, after_separate = _train(packed, opt_packed), _train(separate, opt_separate)
    assert "*" in opt_packed.state and "*" not in opt_separate.state  # two different paths ran
    for a, b in zip(after_packed, after_separate, strict=True):
        np.testing.assert_array_equal(a, b)
    # and the state reads the same, per parameter name
    sd_packed, sd_separate = opt_packed.state_dict(), opt_separate.state_dict()
    assert sd_packed["arrays"].keys() == sd_separate["arrays"].keys()
    for key, value in sd_packed["arrays"].items():
        np.testing.assert_array_equal(value, sd_separate["arrays"][key])
    assert sd_packed.get("steps") == sd_separate.get("steps")


@pytest.mark.parametrize("packed_first", [True, False])
def test_state_moves_between_packed_and_per_array_optimizers(packed_first):
    """A checkpointed state continues bit-identically, whichever form saved or loads it."""
    first, second, reference = _mlp(), _mlp(), _mlp()
    _unpack(second if packed_first else first)
    opt_first, opt_reference = get_optimizer("adam", 0.01), get_optimizer("adam", 0.01)
    _train(first, opt_first, steps=3)
    _train(reference, opt_reference, steps=3)
    for (_, p2, _), (_, p1, _) in zip(second.parameters(), first.parameters(), strict=True):
        p2[...] = p1
    opt_second = get_optimizer("adam", 0.01)
    opt_second.load_state_dict(opt_first.state_dict())
    after_second = _train(second, opt_second, steps=2, seed=2)
    after_reference = _train(reference, opt_reference, steps=2, seed=2)
    for a, b in zip(after_second, after_reference, strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_subset_or_a_non_elementwise_optimizer_gets_array_by_array_updates():
    from digitlab.core.optim import Optimizer

    calls = []

    class PerLayerNorm(Optimizer):
        def update(self, name, param, grad):
            calls.append(name)
            param -= self.learning_rate * grad / (np.linalg.norm(grad) + 1)

    model = _mlp()
    PerLayerNorm(0.1).step(model.parameters())
    assert calls == [name for name, _, _ in model.parameters()]
    before = [param.copy() for _, param, _ in model.parameters()]
    for _, _, grad in model.parameters():
        grad[...] = 1.0
    get_optimizer("adam", 0.1).step(list(model.parameters())[2:])  # a frozen first layer
    after = [param for _, param, _ in model.parameters()]
    for i, (old, new) in enumerate(zip(before, after, strict=True)):
        assert np.array_equal(old, new) == (i < 2)


def test_tied_or_privately_held_arrays_are_not_packed():
    from digitlab.core.layers import Dense
    from digitlab.core.model import Model, Node

    w = np.ones((3, 3), np.float32)
    tied = [
        Node("a", Dense(w, np.zeros(3, np.float32), "a"), ["input"]),
        Node("b", Dense(w, np.zeros(3, np.float32), "b"), ["a"]),
    ]
    model = Model(tied, 3, [], np.float32, (3,))
    assert model.flat_params is None
    assert model.layers[0].params["w"] is model.layers[1].params["w"]

    class Private(Dense):
        def __init__(self, w, b):
            super().__init__(w, b, "p")
            self.w = w  # a second reference, which a view would leave behind

    model = Model(
        [Node("p", Private(w.copy(), np.zeros(3, np.float32)), ["input"])], 3, [], np.float32, (3,)
    )
    assert model.flat_params is None
