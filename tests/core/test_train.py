import numpy as np
import pytest

from digitlab.core.evaluation import evaluate
from digitlab.core.losses import get_loss
from digitlab.core.model import build_model
from digitlab.core.optim import OPTIMIZERS, get_optimizer
from digitlab.core.schedules import batch_size_schedule, get_schedule
from digitlab.core.specs import mlp_spec
from digitlab.core.train import TrainOptions, fit, hidden_dense_weights
from digitlab.errors import ConfigError, DataError, NumericError


def blobs(rng, n=300, k=3, d=6):
    centres = rng.standard_normal((k, d)) * 3
    y = rng.integers(0, k, n)
    return (centres[y] + rng.standard_normal((n, d))).astype(np.float32), y


def options(epochs, lr, batch_size=32, **kwargs):
    schedule = get_schedule("constant", lr, epochs)
    return TrainOptions(epochs, batch_size_schedule(batch_size), schedule, **kwargs)


def run(seed, epochs=5, lr=0.1, hooks=None, **kwargs):
    data_rng = np.random.default_rng(0)
    x, y = blobs(data_rng)
    model = build_model(mlp_spec([16], 3, "relu", dropout=0.1), 6, np.random.default_rng(seed))
    history = fit(
        model,
        x,
        y,
        get_optimizer("momentum", lr),
        options(epochs, lr, **kwargs),
        rng=np.random.default_rng(seed),
        validation=(x[:50], y[:50]),
        hooks=hooks,
    )
    return model, history, (x, y)


def test_learns_separable_blobs():
    model, history, (x, y) = run(0, epochs=10)
    assert history["train_accuracy"][-1] > 0.95
    assert evaluate(model, x, y).accuracy > 0.95
    assert history.epochs == 10
    assert set(history.metrics) >= {"train_loss", "val_loss", "val_accuracy", "learning_rate"}


def test_same_seed_bit_identical_weights():
    a, _, _ = run(3)
    b, _, _ = run(3)
    c, _, _ = run(4)
    for (_, pa, _), (_, pb, _), (_, pc, _) in zip(
        a.parameters(), b.parameters(), c.parameters(), strict=True
    ):
        np.testing.assert_array_equal(pa, pb)
        assert not np.array_equal(pa, pc)


def test_one_forward_per_batch(monkeypatch):
    """The reported training loss comes from the training forward pass, not a second one."""
    from digitlab.core.model import Sequential

    calls = {"train": 0, "eval": 0}
    original = Sequential.forward

    def counting(self, x, training=False):
        calls["train" if training else "eval"] += 1
        return original(self, x, training)

    monkeypatch.setattr(Sequential, "forward", counting)
    run(0, epochs=2)
    assert calls["train"] == 2 * int(np.ceil(300 / 32))
    assert calls["eval"] == 2  # one validation pass per epoch


def test_non_finite_loss_names_where_and_keeps_weights():
    with pytest.raises(NumericError, match=r"non-finite loss at epoch \d+, batch \d+: .*dense"):
        run(0, epochs=3, lr=1e30, divergence=None)


def test_divergence_stops_before_inf_and_names_the_weights():
    with pytest.raises(NumericError, match=r"training diverged; the fastest-growing .* dense\d.w"):
        run(0, epochs=3, lr=1e6)


def test_a_trained_models_tiny_first_loss_is_no_divergence_reference():
    """Fitting a trained model again: its first batch's loss can be 0 and a later batch's far
    above it without anything diverging; the reference is at least 1."""
    x = np.tile(np.float32([1, 0]), (40, 1))
    y = np.zeros(40, int)
    y[np.random.default_rng(0).permutation(40)[-1]] = 1  # the last batch (fit shuffles first)
    model = build_model(mlp_spec([], 2, "relu"), 2, np.random.default_rng(0))
    model.layers[0].params["w"][:] = [[20, -20], [0, 0]]  # class 0, p = 1 - 4e-18: loss 0.0

    def one_epoch(divergence):
        return fit(
            model, x, y, get_optimizer("sgd", 1e-9), options(1, 1e-9, 1, divergence=divergence),
            rng=np.random.default_rng(0),
        )  # fmt: skip

    history = one_epoch(1e4)  # the last batch's loss, 40, is not over 1e4 x max(0, 1)
    assert history["train_loss"][0] == pytest.approx(1.0, rel=1e-3)  # 40 / 40 rows
    with pytest.raises(NumericError, match=r"batch 40 is over 10 x 1 .*training diverged"):
        one_epoch(10)  # a threshold it does cross still stops it


def test_early_stopping_restores_best():
    _, history, _ = run(0, epochs=40, lr=0.5, patience=2)
    assert history.stopped_early
    assert history.best_epoch is not None and history.best_epoch < history.epochs


@pytest.mark.parametrize(
    ("x", "y", "message"),
    [
        (np.zeros((10, 5), np.float32), np.zeros(10, int), "10 features|have 5 features"),
        (np.zeros((10, 6), np.float32), np.full(10, 3), r"labels must lie in 0..2 .* found 3..3"),
        (np.zeros((10, 6), np.float32), np.full(10, -1), "labels must lie in 0..2"),
        (np.zeros((10, 6), np.float32), np.zeros(9, int), "labels must be 10 integers"),
        (np.zeros((10, 6), np.float32), np.full(10, 0.5), "labels must be 10 integers"),
        (np.zeros((0, 6), np.float32), np.zeros(0, int), "must be non-empty"),
    ],
)
def test_bad_training_data_is_a_data_error(x, y, message):
    from digitlab.errors import DataError

    model = build_model(mlp_spec([4], 3, "relu"), 6, np.random.default_rng(0))
    with pytest.raises(DataError, match=message):
        fit(
            model, x, y, get_optimizer("sgd", 0.1), options(1, 0.1, 4), rng=np.random.default_rng(0)
        )


def test_nan_in_the_data_is_named_as_such():
    x = np.ones((20, 6), np.float32)
    x[13, 2] = np.nan
    model = build_model(mlp_spec([4], 3, "relu"), 6, np.random.default_rng(0))
    with pytest.raises(DataError, match="training x: holds NaN or inf .* row 13"):
        fit(model, x, np.zeros(20, int), get_optimizer("sgd", 0.1), options(1, 0.1, 4),
            rng=np.random.default_rng(0))  # fmt: skip


def test_non_finite_output_in_a_branch_names_that_node():
    """The locator follows the graph: a skip connection's branch that overflows is named, not
    the loss (walking the nodes as a chain feeds the branch the wrong input)."""
    spec = [
        {"name": "trunk", "type": "dense", "units": 6, "inputs": ["input"]},
        {"name": "squash", "type": "activation", "activation": "tanh", "inputs": ["trunk"]},
        {"name": "branch", "type": "dense", "units": 6, "inputs": ["input"]},
        {"name": "skip", "type": "add", "inputs": ["squash", "branch"]},
        {"name": "output", "type": "dense", "units": 3, "inputs": ["skip"]},
    ]
    model = build_model(spec, 6, np.random.default_rng(0))
    layers = {lay.name: lay for lay in model.layers}
    # 100 x 1e37 x 6 overflows float32 on the data; fed the trunk's zeros, it would not
    layers["branch"].params["w"][:] = 1e37
    layers["trunk"].params["w"][:] = 0
    x = np.full((8, 6), 100, np.float32)
    with pytest.raises(NumericError, match="first non-finite value in the output of layer branch"):
        fit(model, x, np.zeros(8, int), get_optimizer("sgd", 0.1),
            options(1, 0.1, 4, divergence=None), rng=np.random.default_rng(0))  # fmt: skip


def test_an_unknown_loss_fails_before_training():
    from digitlab.errors import ConfigError

    model = build_model(mlp_spec([4], 3, "relu"), 6, np.random.default_rng(0))
    with pytest.raises(ConfigError, match="unknown loss 'nope'"):
        fit(model, np.zeros((10, 5), np.float32), np.zeros(10, int), get_optimizer("sgd", 0.1),
            options(1, 0.1, 4, loss="nope"), rng=np.random.default_rng(0))  # fmt: skip


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_clipping_and_max_norm_work_with_every_optimizer(name):
    x, y = blobs(np.random.default_rng(0))
    model = build_model(mlp_spec([16, 8], 3, "relu"), 6, np.random.default_rng(0))
    fit(model, x, y, get_optimizer(name, 0.05), options(2, 0.05, clip_grad_norm=0.5,
        max_norm=0.9), rng=np.random.default_rng(0))  # fmt: skip
    for w in hidden_dense_weights(model):
        assert np.sqrt((w * w).sum(axis=0)).max() <= 0.9 * (1 + 1e-6)
    assert np.isfinite(model.theta).all()


def test_one_clipped_sgd_step_is_the_scaled_gradient():
    x, y = blobs(np.random.default_rng(0), n=32)
    model = build_model(mlp_spec([16], 3, "relu"), 6, np.random.default_rng(1), np.float64)
    before = model.theta.copy()
    model.backward(get_loss("softmax_cross_entropy")(model.forward(x, training=True), y)[1])
    g = model.g.copy()
    norm = np.linalg.norm(g)
    limit = norm / 4  # so the clip acts
    fit(model, x.astype(np.float64), y, get_optimizer("sgd", 0.1),
        options(1, 0.1, clip_grad_norm=limit), rng=np.random.default_rng(0))  # fmt: skip
    # the one batch is the whole set, so the step saw the same gradient
    np.testing.assert_allclose(model.theta, before - 0.1 * g * (limit / norm), rtol=1e-12)


def test_max_norm_puts_the_long_hidden_units_at_the_limit_and_leaves_the_output():
    x, y = blobs(np.random.default_rng(0))
    spec = mlp_spec([16, 8], 3, "relu", init="normal", init_params={"std": 1.0})
    model = build_model(spec, 6, np.random.default_rng(0))
    hidden = hidden_dense_weights(model)
    assert [w.shape for w in hidden] == [(6, 16), (16, 8)]  # not the output layer's (8, 3)
    output = model.layers[-1].params["w"]
    column_norms = [np.sqrt((w * w).sum(axis=0)) for w in [*hidden, output]]
    long = [norms > 2.6 for norms in column_norms]  # one small step cannot bring these below 2.5
    short = [norms < 2.4 for norms in column_norms]
    assert all(flags.any() for flags in long) and short[0].any()
    fit(model, x, y, get_optimizer("sgd", 1e-3), options(1, 1e-3, len(x), max_norm=2.5),
        rng=np.random.default_rng(0))  # fmt: skip
    after = [np.sqrt((w * w).sum(axis=0)) for w in [*hidden, output]]
    for norms, was_long, was_short in zip(after[:2], long[:2], short[:2], strict=True):
        np.testing.assert_allclose(norms[was_long], 2.5, rtol=1e-6)  # renormalised to the limit
        assert (norms[was_short] < 2.41).all()  # untouched by the limit
    assert after[2][long[2]].min() > 2.59  # the output layer is not limited


def test_limits_are_off_by_default_and_positive():
    assert options(1, 0.1).clip_grad_norm is None and options(1, 0.1).max_norm is None
    x, y = blobs(np.random.default_rng(0))
    model = build_model(mlp_spec([4], 3, "relu"), 6, np.random.default_rng(0))
    with pytest.raises(ConfigError, match="max_norm must be > 0, got 0"):
        fit(model, x, y, get_optimizer("sgd", 0.1), options(1, 0.1, max_norm=0),
            rng=np.random.default_rng(0))  # fmt: skip


def test_limits_that_never_bind_leave_training_bit_identical():
    plain, _, _ = run(seed=3, epochs=2)
    loose, _, _ = run(seed=3, epochs=2, clip_grad_norm=1e9, max_norm=1e9)
    np.testing.assert_array_equal(plain.theta, loose.theta)
    tight, _, _ = run(seed=3, epochs=2, clip_grad_norm=1e-3)
    assert not np.array_equal(plain.theta, tight.theta)  # and one that binds changes them
