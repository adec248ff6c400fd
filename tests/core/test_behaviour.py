"""What features do, not what they report: each test watches the weights, the numbers or the
samples a feature produces, so it fails when the behaviour behind a flag or a name is removed."""

import numpy as np
import pytest

from digitlab.core.dropout import Dropout
from digitlab.core.evaluation import evaluate
from digitlab.core.init import INITIALISERS
from digitlab.core.model import build_model
from digitlab.core.optim import get_optimizer
from digitlab.core.schedules import batch_size_schedule, get_schedule
from digitlab.core.specs import mlp_spec
from digitlab.core.train import TrainHooks, TrainOptions, fit
from digitlab.errors import NumericError


def blobs(rng, n, k=3, d=6, spread=1.0):
    centres = np.random.default_rng(0).standard_normal((k, d)) * 1.5
    y = rng.integers(0, k, n)
    return (centres[y] + spread * rng.standard_normal((n, d))).astype(np.float32), y


def weights(model):
    return [param.copy() for _, param, _ in model.parameters()]


def same(a, b):
    return all(np.array_equal(p, q) for p, q in zip(a, b, strict=True))


class Recorder:
    """An epoch callback keeping each finished epoch's record and a copy of its weights."""

    def __init__(self):
        self.records, self.weights = [], []

    def __call__(self, record, model):
        self.records.append(dict(record))
        self.weights.append(weights(model))


def test_early_stopping_puts_back_the_best_epochs_weights():
    """With patience, the model fit returns is the best epoch's, not the last one's: its weights
    equal those that epoch ended with and its validation loss and accuracy are that epoch's."""
    rng = np.random.default_rng(1)
    x, y = blobs(rng, 200, spread=2.0)  # overlapping classes, a large net: it overfits
    x_val, y_val = blobs(rng, 400, spread=2.0)
    model = build_model(mlp_spec([64, 64], 3, "relu"), 6, np.random.default_rng(0))
    seen = Recorder()
    history = fit(
        model,
        x,
        y,
        get_optimizer("momentum", 0.1),
        TrainOptions(200, batch_size_schedule(16), get_schedule("constant", 0.1, 200), patience=5),
        rng=np.random.default_rng(0),
        validation=(x_val, y_val),
        hooks=TrainHooks(callbacks=[seen]),
    )
    losses = [r["val_loss"] for r in seen.records]
    best = int(np.argmin(losses))
    assert history.stopped_early and history.epochs == best + 1 + 5
    assert history.best_epoch == best + 1
    assert not same(seen.weights[best], seen.weights[-1])  # putting them back is observable
    assert same(weights(model), seen.weights[best])
    result = evaluate(model, x_val, y_val)
    assert result.loss == pytest.approx(losses[best], rel=1e-6)
    assert result.accuracy == seen.records[best]["val_accuracy"]
    assert result.loss < losses[-1]


def test_a_non_finite_loss_keeps_the_last_finished_epochs_weights():
    """fit raises, and the model holds the finite weights of the last finished epoch (as fit
    documents), not the overflowed ones of the failing step."""
    rng = np.random.default_rng(1)
    x, y = blobs(rng, 200)
    model = build_model(mlp_spec([16], 3, "relu"), 6, np.random.default_rng(0))
    seen = Recorder()

    def learning_rate(epoch):  # two sound epochs, then a step that overflows float32
        return 0.1 if epoch < 2 else 1e30

    kept = r"non-finite loss at epoch 3, .*weights of epoch 2 kept"
    with pytest.raises(NumericError, match=kept):
        fit(
            model,
            x,
            y,
            get_optimizer("sgd", 0.1),
            TrainOptions(5, batch_size_schedule(20), learning_rate, divergence=None),
            rng=np.random.default_rng(0),
            hooks=TrainHooks(callbacks=[seen]),
        )
    assert len(seen.weights) == 2
    now = weights(model)
    assert all(np.isfinite(p).all() for p in now)
    assert same(now, seen.weights[-1])
    assert not same(now, seen.weights[0])


def test_divergence_keeps_the_last_finished_epochs_weights():
    rng = np.random.default_rng(1)
    x, y = blobs(rng, 200)
    model = build_model(mlp_spec([16], 3, "relu"), 6, np.random.default_rng(0))
    seen = Recorder()
    with pytest.raises(NumericError, match=r"training diverged.*weights of epoch 1 kept"):
        fit(
            model,
            x,
            y,
            get_optimizer("sgd", 0.1),
            TrainOptions(5, batch_size_schedule(20), lambda epoch: 0.1 if epoch < 1 else 1e6),
            rng=np.random.default_rng(0),
            hooks=TrainHooks(callbacks=[seen]),
        )
    assert same(weights(model), seen.weights[0])


@pytest.mark.parametrize("rate", [0.2, 0.5, 0.7])
def test_dropout_drops_a_share_rate_and_scales_the_rest_by_one_over_keep(rate):
    rows, cols = 1000, 1000
    layer = Dropout(rate, np.random.default_rng(0))
    x = np.ones((rows, cols), np.float32)
    out = layer.forward(x, training=True)
    zeros = np.count_nonzero(out == 0) / out.size
    standard_error = np.sqrt(rate * (1 - rate) / out.size)
    assert abs(zeros - rate) < 4 * standard_error
    np.testing.assert_allclose(out[out != 0], 1 / (1 - rate), rtol=1e-6)
    assert out.dtype == np.float32
    # backward passes the gradient through the same units, with the same scale
    np.testing.assert_array_equal(layer.backward(np.ones_like(x)), out)
    assert layer.forward(x, training=False) is x  # evaluation: the identity


def test_dropout_from_a_spec_uses_the_rate_it_names():
    model = build_model(mlp_spec([500], 3, "relu", dropout=0.2), 6, np.random.default_rng(0))
    (layer,) = [lay for lay in model.layers if isinstance(lay, Dropout)]
    out = layer.forward(np.ones((1000, 500), np.float32), training=True)
    assert abs(np.mean(out == 0) - 0.2) < 4 * np.sqrt(0.2 * 0.8 / out.size)


# The scale each initialiser promises: a new one must state its formula here.
N_IN, N_OUT = 600, 150  # unequal, so swapping them shows
SCALES = {
    "normal": lambda n_in, n_out, std=1.0: std,
    "xavier": lambda n_in, n_out: np.sqrt(2 / (n_in + n_out)),
    "he": lambda n_in, n_out: np.sqrt(2 / n_in),
    "lecun": lambda n_in, n_out: np.sqrt(1 / n_in),
}
PARAMS = {"normal": [{}, {"std": 0.1}]}


def check_normal(w, std):
    """w's mean is 0 and its standard deviation `std`, each within 4 standard errors."""
    n = w.size
    sample = w.astype(np.float64)
    assert abs(sample.mean()) < 4 * std / np.sqrt(n)
    # the sample std of n normal draws has a standard error of std / sqrt(2n)
    assert abs(sample.std() - std) < 4 * std / np.sqrt(2 * n), (sample.std(), std)


@pytest.mark.parametrize(
    ("name", "params"),
    [(name, params) for name in sorted(INITIALISERS) for params in PARAMS.get(name, [{}])],
)
def test_each_initialiser_draws_at_its_formulas_scale(name, params):
    assert name in SCALES, f"state {name}'s scale in SCALES"
    w = INITIALISERS[name](np.random.default_rng(0), N_IN, N_OUT, np.float32, **params)
    assert w.shape == (N_IN, N_OUT) and w.dtype == np.float32
    check_normal(w, SCALES[name](N_IN, N_OUT, **params))


@pytest.mark.parametrize("name", ["he", "lecun", "xavier"])
def test_layers_pass_their_fan_in(name):
    """A dense layer's fan-in is its inputs; a conv's is kernel height x width x channels."""
    spec = [{"type": "dense", "units": N_OUT, "init": name}]
    dense = build_model(spec, N_IN, np.random.default_rng(0))
    check_normal(dense.layers[0].params["w"], SCALES[name](N_IN, N_OUT))
    conv = [
        {"type": "reshape", "shape": [16, 8, 8]},
        {"type": "conv2d", "filters": 400, "kernel_size": 3, "init": name},
    ]
    model = build_model(conv, 16 * 64, np.random.default_rng(0))
    check_normal(model.layers[1].params["w"], SCALES[name](16 * 9, 400))
