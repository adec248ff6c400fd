import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from digitlab.core.losses import LOSSES, get_loss, log_softmax, row_max, softmax
from digitlab.diagnostics.gradcheck import check_loss

NAMES = sorted(LOSSES)
logit_arrays = arrays(
    np.float64, st.tuples(st.integers(1, 8), st.integers(2, 6)), elements=st.floats(-50, 50)
)


@pytest.mark.parametrize("name", NAMES)
def test_gradient_matches_finite_differences(name, tiny_batch):
    x, y = tiny_batch
    assert check_loss(name, x[:, :3] * 3, y).passed


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gradient_dtype_follows_logits(name, dtype, tiny_batch):
    x, y = tiny_batch
    value, grad = get_loss(name)(x[:, :3].astype(dtype), y)
    assert grad.dtype == dtype
    assert isinstance(value, float)


@pytest.mark.parametrize("name", NAMES)
def test_extreme_logits_stay_finite(name):
    logits = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 0.0], [0.0, 0.0, 0.0]], dtype=np.float32)
    y = np.array([1, 1, 2])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        value, grad = get_loss(name)(logits, y)
    assert np.isfinite(value) and np.isfinite(grad).all()


def test_cross_entropy_of_a_zero_probability_is_exact_not_clipped():
    # softmax gives the true class exp(-1000): the loss is 1000, not -log(1e-8) = 18.4
    logits = np.array([[1000.0, 0.0]])
    value, _ = get_loss("softmax_cross_entropy")(logits, np.array([1]))
    assert value == pytest.approx(1000.0)


@given(logit_arrays)
def test_cross_entropy_matches_plain_formula(logits):
    y = np.arange(len(logits)) % logits.shape[1]
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    plain = -np.log(probs[np.arange(len(y)), y]).mean()
    value, _ = get_loss("softmax_cross_entropy")(logits, y)
    assert value == pytest.approx(plain, rel=1e-9, abs=1e-12)


@given(logit_arrays, st.floats(-1e3, 1e3))
def test_softmax_rows_sum_to_one_and_ignore_a_shift(logits, shift):
    probs = softmax(logits)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(softmax(logits + shift), probs, atol=1e-9)
    np.testing.assert_allclose(np.exp(log_softmax(logits)), probs, atol=1e-12)


def test_row_max_not_batch_max():
    # A batch-wide max underflows the second row to all zeros (0/0 = NaN); the row max does not.
    logits = np.array([[1000.0, 0.0], [0.0, 1.0]])
    with np.errstate(all="ignore"):
        e = np.exp(logits - logits.max())
        batch_max = e / e.sum(axis=1, keepdims=True)
    assert np.isnan(batch_max[1]).all()
    assert np.isfinite(softmax(logits)).all()
    value, grad = get_loss("softmax_cross_entropy")(logits, np.array([0, 1]))
    assert np.isfinite(value) and np.isfinite(grad).all()


@pytest.mark.parametrize("columns", [1, 10, 32, 33, 300])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_row_max_is_the_plain_max_in_both_layouts(columns, dtype):
    x = np.random.default_rng(columns).normal(size=(50, columns)).astype(dtype)
    x[3, 0], x[4, -1], x[5] = np.nan, -np.inf, -0.0
    for rows in (x, np.asfortranarray(x), x[::2]):
        out = row_max(rows)
        assert out.shape == (len(rows), 1) and out.dtype == dtype
        np.testing.assert_array_equal(out, rows.max(axis=1, keepdims=True))


def test_loss_is_mean_over_samples_and_sum_over_classes():
    # Uniform logits over k classes: each sample's loss is log k, whatever n is.
    for n, k in [(1, 10), (7, 10), (5, 3)]:
        value, grad = get_loss("softmax_cross_entropy")(np.zeros((n, k)), np.zeros(n, int))
        assert value == pytest.approx(np.log(k))
        assert grad[0, 0] == pytest.approx((1 / k - 1) / n)


def test_sigmoid_cross_entropy_is_nielsens_network2_cost():
    """-sum_k [t_k ln a_k + (1 - t_k) ln(1 - a_k)] with a = sigmoid(z), averaged over samples;
    its gradient (a - t) / n (float64, logits where the plain formula is exact enough)."""
    rng = np.random.default_rng(3)
    logits = rng.normal(0, 3, size=(7, 10))
    y = rng.integers(0, 10, size=7)
    t = np.eye(10)[y]
    a = 1 / (1 + np.exp(-logits))
    plain = -(t * np.log(a) + (1 - t) * np.log(1 - a)).sum(axis=1).mean()
    value, grad = get_loss("sigmoid_cross_entropy")(logits, y)
    np.testing.assert_allclose(value, plain, rtol=1e-12)
    np.testing.assert_allclose(grad, (a - t) / 7, rtol=1e-12, atol=1e-15)


def test_the_batch_max_plugin_is_exact_until_a_row_underflows(monkeypatch):
    """M14's bug (recipes/plugins/batch_max_softmax.py) agrees with ours while every row stays
    within float32's range of the batch's largest logit, and turns non-finite past it."""
    import runpy
    from pathlib import Path

    import digitlab.core.losses as losses

    monkeypatch.setattr(losses, "LOSSES", dict(LOSSES))  # the plugin registers into a copy
    plugin = Path(__file__).parents[2] / "recipes" / "plugins" / "batch_max_softmax.py"
    batch_max = runpy.run_path(str(plugin))["batch_max_softmax"]
    ours = get_loss("softmax_cross_entropy")
    rng = np.random.default_rng(0)
    logits = (rng.standard_normal((6, 4)) * 5).astype(np.float32)
    logits[0] += 60  # 60 above the others: still exact in float32
    y = np.array([0, 1, 2, 3, 0, 1])
    value, grad = batch_max(logits.copy(), y)
    expected_value, expected_grad = ours(logits, y)
    assert value == pytest.approx(expected_value, rel=1e-5)
    np.testing.assert_allclose(grad, expected_grad, atol=1e-6)
    logits[0] += 60  # now 120 above: the other rows' exponentials underflow to zero
    value, grad = batch_max(logits.copy(), y)
    assert not np.isfinite(value) and np.isnan(grad[1:]).all()
    expected_value, expected_grad = ours(logits, y)
    assert np.isfinite(expected_value) and np.isfinite(expected_grad).all()
