import numpy as np
import pytest

import digitlab.core.mixed  # noqa: F401  (registers the layer)
from digitlab.core.mixed import assign_units
from digitlab.core.model import build_model
from digitlab.diagnostics.gradcheck import check_model
from digitlab.diagnostics.monitors import default_monitors
from digitlab.errors import ConfigError


def mixed_model(rng, mixed, dtype=np.float64):
    spec = [
        {"type": "dense", "units": 12},
        {"type": "mixed", **mixed},
        {"type": "dense", "units": 3},
    ]
    model = build_model(spec, 6, rng, dtype)
    model.layers[0].params["b"][:] = 0.3  # away from the kinks of relu and abs
    return model


@pytest.mark.parametrize(
    "mixed",
    [
        {"activations": {"relu": 0.5, "sin": 0.25, "tanh": 0.25}, "seed": 3},
        {"pattern": ["sigmoid", {"name": "leaky_relu", "slope": 0.2}, "abs"]},
        {"activations": {"elu": {"share": 2, "alpha": 0.5}, "cos": 1}},
    ],
)
def test_gradients_of_a_mixed_layer(mixed, rng, tiny_batch):
    x, y = tiny_batch
    results = check_model(mixed_model(rng, mixed), x, y)
    assert all(r.passed for r in results), results


def test_each_unit_uses_its_activation(rng):
    model = mixed_model(rng, {"pattern": ["identity", "relu"]})
    layer = model.layers[1]
    z = np.linspace(-2, 2, 24).reshape(2, 12)
    a = layer.forward(z, training=False)
    np.testing.assert_array_equal(a[:, 0::2], z[:, 0::2])
    np.testing.assert_array_equal(a[:, 1::2], np.maximum(z[:, 1::2], 0))
    assert [g.name for g in layer.groups] == ["mixed1.identity", "mixed1.relu"]


def test_shares_are_kept_and_seeded():
    groups = assign_units(10, [0.5, 0.3, 0.2], np.random.default_rng(0))
    assert [len(g) for g in groups] == [5, 3, 2]
    assert sorted(np.concatenate(groups).tolist()) == list(range(10))
    again = assign_units(10, [0.5, 0.3, 0.2], np.random.default_rng(0))
    assert all(np.array_equal(a, b) for a, b in zip(groups, again, strict=True))


def test_monitors_report_each_group(rng, tiny_batch):
    from digitlab.core.optim import batch_size_schedule, get_optimizer, get_schedule
    from digitlab.core.train import TrainHooks, TrainOptions, fit

    x, y = tiny_batch
    model = mixed_model(rng, {"activations": {"relu": 1, "sigmoid": 1}})
    options = TrainOptions(1, batch_size_schedule(4), get_schedule("constant", 0.1, 1))
    hooks = TrainHooks(monitors=default_monitors())
    history = fit(model, x, y, get_optimizer("sgd", 0.1), options, rng=rng, hooks=hooks)
    assert "mixed1.relu.dead" in history.metrics and "mixed1.sigmoid.saturated" in history.metrics


def test_bad_mixed_specs(rng):
    with pytest.raises(ConfigError, match="either activations"):
        mixed_model(rng, {})
    with pytest.raises(ConfigError, match="unknown activation 'nope'"):
        mixed_model(rng, {"pattern": ["relu", "nope"]})
    with pytest.raises(ConfigError, match="shares must be > 0"):
        mixed_model(rng, {"activations": {"relu": 0, "sin": 1}})
