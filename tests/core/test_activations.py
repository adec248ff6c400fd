import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from digitlab.core.activations import ACTIVATIONS, activation, get_activation, sigmoid
from digitlab.core.layers import Activation
from digitlab.diagnostics.gradcheck import check_activation
from digitlab.errors import ConfigError

NAMES = sorted(ACTIVATIONS)


def away_from_kinks(rng, n=200):
    z = rng.uniform(-4, 4, size=n)
    return z[np.abs(z) > 1e-3]  # finite differences straddle the kink at 0 otherwise


@pytest.mark.parametrize("name", NAMES)
def test_derivative_matches_finite_differences(name, rng):
    z = away_from_kinks(rng)
    z = z[np.abs(z + 1) > 1e-3]  # shifted_relu's kink at -1
    assert check_activation(name, z).passed


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_preserved(name, dtype):
    entry = get_activation(name)
    z = np.linspace(-3, 3, 11).astype(dtype)
    assert entry.f(z).dtype == dtype
    assert entry.df(z).dtype == dtype


@pytest.mark.parametrize("name", NAMES)
def test_extreme_inputs_stay_finite(name):
    entry = get_activation(name)
    z = np.array([-1e4, -100.0, -30.0, 0.0, 30.0, 100.0], dtype=np.float32)
    # underflow to 0 is harmless (exp of a very negative number); overflow and NaN are not
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        assert np.isfinite(entry.f(z)).all()
        assert np.isfinite(entry.df(z)).all()


def test_relu_derivative_at_zero_is_zero():
    assert get_activation("relu").df(np.zeros(3))[0] == 0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_is_max_with_zero_to_the_bit(dtype):
    """relu takes its maximum against an array of zeros (for speed): the same bits as
    np.maximum(z, 0), NaN (of either sign), -0 and infinities included, for any shape."""
    special = np.array([np.nan, -np.nan, -0.0, 0.0, np.inf, -np.inf, 1e-45, -1e-45, 3.5, -2.0])
    for z in (special.astype(dtype), np.random.default_rng(0).normal(size=(7, 3, 5)).astype(dtype)):
        out = get_activation("relu").f(z)
        assert out.dtype == dtype and out.shape == z.shape
        bits = np.uint32 if dtype == np.float32 else np.uint64
        np.testing.assert_array_equal(out.view(bits), np.maximum(z, 0).view(bits))
    channels_last = np.zeros((2, 4, 4, 3), dtype).transpose(0, 3, 1, 2)  # as a conv returns it
    assert get_activation("relu").f(channels_last).strides == channels_last.strides


def test_leaky_relu_takes_its_slope():
    entry = get_activation("leaky_relu")
    assert entry.f(np.array([-2.0]), slope=0.1)[0] == pytest.approx(-0.2)
    assert check_activation("leaky_relu", np.array([-1.5, 0.7]), slope=0.1).passed


@given(arrays(np.float64, st.integers(1, 50), elements=st.floats(-700, 700)))
def test_sigmoid_bounded_and_symmetric(z):
    s = sigmoid(z)
    assert ((s >= 0) & (s <= 1)).all()
    np.testing.assert_allclose(sigmoid(-z), 1 - s, atol=1e-15)


def test_sigmoid_extremes_no_overflow():
    with np.errstate(over="raise"):
        out = sigmoid(np.array([-1e308, -800.0, 800.0, 1e308]))
    np.testing.assert_array_equal(out, [0.0, 0.0, 1.0, 1.0])


def test_user_registered_activation_is_found_everywhere():
    @activation("test_square", init="xavier")
    def square(z):
        """z^2, a test activation."""
        return z * z

    @square.derivative
    def _(z):
        return 2 * z

    try:
        assert get_activation("test_square").doc == "z^2, a test activation."
        assert check_activation("test_square", np.array([0.5, -1.3])).passed
    finally:
        del ACTIVATIONS["test_square"]


def test_planted_wrong_derivatives_fail_the_check(rng):
    z = away_from_kinks(rng)

    @activation("bad_relu", init="he")
    def bad_relu(z):
        """ReLU whose derivative is fed the activation with >= 0 (a classic bug)."""
        return np.maximum(z, 0)

    @bad_relu.derivative
    def _(z):
        return (np.maximum(z, 0) >= 0).astype(z.dtype)

    @activation("bad_sigmoid")
    def bad_sigmoid(z):
        """sigmoid with s(z) * s(1 - z) as its derivative."""
        return sigmoid(z)

    @bad_sigmoid.derivative
    def _(z):
        return sigmoid(z) * sigmoid(1 - z)

    try:
        assert not check_activation("bad_relu", z).passed
        assert not check_activation("bad_sigmoid", z).passed
    finally:
        del ACTIVATIONS["bad_relu"], ACTIVATIONS["bad_sigmoid"]


def test_a_wrong_derivative_of_the_output_fails_the_check(rng):
    @activation("bad_tanh")
    def bad_tanh(z):
        """tanh, right as f'(z) but with 1 - a as its derivative of the output."""
        return np.tanh(z)

    @bad_tanh.derivative
    def _(z):
        return 1 - np.tanh(z) ** 2

    @bad_tanh.derivative_of_output
    def _(a):
        return 1 - a

    try:
        assert not check_activation("bad_tanh", away_from_kinks(rng)).passed
    finally:
        del ACTIVATIONS["bad_tanh"]


@pytest.mark.parametrize("name", [n for n in NAMES if ACTIVATIONS[n].df_of_output is not None])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_both_derivative_forms_give_the_same_bits(name, dtype, rng):
    # training reads f' off the output; monitors and the gradient check read f'(z)
    entry = get_activation(name)
    z = (rng.standard_normal(1000) * 5).astype(dtype)
    np.testing.assert_array_equal(entry.df_of_output(entry.f(z)), entry.df(z))
    layer = Activation(name)
    dout = rng.standard_normal(1000).astype(dtype)
    layer.forward(z, training=True)
    np.testing.assert_array_equal(layer.backward(dout), entry.df(z) * dout)


def test_unknown_activation_lists_known():
    with pytest.raises(ConfigError, match="unknown activation 'swishy'.*relu"):
        get_activation("swishy")
