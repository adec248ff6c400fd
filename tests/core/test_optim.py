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
