import numpy as np
import pytest

from digitlab.core.activations import ACTIVATIONS
from digitlab.core.dropout import Dropout
from digitlab.core.model import build_model
from digitlab.core.specs import mlp_spec
from digitlab.diagnostics.gradcheck import check_model
from digitlab.errors import ConfigError

SMOOTH = [n for n in sorted(ACTIVATIONS) if n not in ("relu", "abs", "shifted_relu", "leaky_relu")]


@pytest.mark.parametrize("loss", ["softmax_cross_entropy", "quadratic", "sigmoid_cross_entropy"])
@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_model_gradients(activation, loss, tiny_batch):
    x, y = tiny_batch
    model = build_model(mlp_spec([5, 4], 3, activation), 6, np.random.default_rng(7), np.float64)
    if activation not in SMOOTH:
        # keep pre-activations away from the kinks by shifting the first biases
        model.layers[0].params["b"][:] = 0.3
    results = check_model(model, x, y, loss)
    assert [r.name for r in results] == [
        "dense1.w",
        "dense1.b",
        "dense2.w",
        "dense2.b",
        "dense3.w",
        "dense3.b",
    ]
    worst = max(results, key=lambda r: r.error)
    assert worst.passed, worst


def test_dropout_backward_uses_the_forward_mask(rng):
    layer = Dropout(0.5, rng)
    x = np.ones((100, 20))
    out = layer.forward(x, training=True)
    assert set(np.unique(out)) <= {0.0, 2.0}
    np.testing.assert_array_equal(layer.backward(np.ones_like(x)), out)
    np.testing.assert_array_equal(layer.forward(x, training=False), x)


def test_dropout_keeps_the_expected_value(rng):
    out = Dropout(0.3, rng).forward(np.ones((2000, 50), np.float32), training=True)
    assert out.dtype == np.float32
    assert out.mean() == pytest.approx(1.0, abs=0.02)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_forward_backward_keep_dtype(dtype, rng):
    model = build_model(mlp_spec([8], 3, "sigmoid", dropout=0.2), 5, rng, dtype)
    x = rng.standard_normal((4, 5)).astype(dtype)
    logits = model.forward(x, training=True)
    assert logits.dtype == dtype
    model.backward(np.ones_like(logits))
    for _, p, g in model.parameters():
        assert p.dtype == dtype and g.dtype == dtype


def test_layer_names_and_default_inits():
    spec = mlp_spec([10, 10], 3, "relu")
    assert [s.get("init") for s in spec if s["type"] == "dense"] == ["he", "he", "xavier"]
    model = build_model(spec, 4, np.random.default_rng(0))
    assert [lay.name for lay in model.layers] == ["dense1", "relu1", "dense2", "relu2", "dense3"]


def test_bad_specs_are_config_errors():
    with pytest.raises(ConfigError, match="unknown type 'conv9'"):
        build_model([{"type": "conv9"}], 4, np.random.default_rng(0))
    with pytest.raises(ConfigError, match="units > 0"):
        build_model([{"type": "dense", "units": 0}], 4, np.random.default_rng(0))
    with pytest.raises(ConfigError, match="takes slope"):
        mlp_spec([3], 2, "leaky_relu", activation_params={"slop": 0.1})


def test_reshape_and_flatten_round_trip(rng):
    spec = [
        {"type": "reshape", "shape": [1, 4, 4]},
        {"type": "flatten"},
        {"type": "dense", "units": 3},
    ]
    model = build_model(spec, 16, rng, np.float64)
    x = rng.standard_normal((5, 16))
    assert model.forward(x, training=True).shape == (5, 3)
    assert [lay.name for lay in model.layers] == ["reshape1", "flatten1", "dense1"]


def test_dense_after_images_needs_flatten(rng):
    with pytest.raises(ConfigError, match=r"layer 2 \(dense\): dense layer needs flat inputs"):
        build_model(
            [{"type": "reshape", "shape": [1, 4, 4]}, {"type": "dense", "units": 3}], 16, rng
        )
    with pytest.raises(ConfigError, match="cannot reshape"):
        build_model([{"type": "reshape", "shape": [3, 4, 4]}], 16, rng)


# one example of every registered type, in a graph that can hold them all
EVERY_TYPE = [
    {"name": "image", "type": "reshape", "shape": [1, 4, 4], "inputs": ["input"]},
    {"name": "conv", "type": "conv2d", "filters": 2, "kernel_size": 3, "padding": 1},
    {"name": "norm", "type": "batchnorm"},
    {"name": "max", "type": "maxpool2d", "size": 2},
    {"name": "avg", "type": "avgpool2d", "size": 2, "stride": 1},
    {"name": "flat", "type": "flatten"},
    {"name": "dense", "type": "dense", "units": 2},
    {"name": "act", "type": "activation", "activation": "tanh"},
    {"name": "mix", "type": "mixed", "pattern": ["relu", "sin"]},
    {"name": "drop", "type": "dropout", "rate": 0.5},
    {"name": "sum", "type": "add", "inputs": ["act", "drop"]},
    {"name": "both", "type": "concat", "inputs": ["sum", "dense"]},
    {"name": "output", "type": "dense", "units": 3},
]


def test_every_registered_layer_keeps_the_layer_contract(rng):
    """Each built-in type (the registry as importing digitlab.core fills it) has every member
    of the Layer protocol: params and grads with one set of keys, buffers, the two flags."""
    from digitlab.core.layers import LAYERS, Layer

    model = build_model(EVERY_TYPE, 16, rng, np.float64)
    assert {spec["type"] for spec in EVERY_TYPE} == set(LAYERS)
    members = [m for m in Layer.__annotations__] + ["forward", "backward"]
    for lay in model.layers:
        assert all(hasattr(lay, m) for m in members), (lay.name, members)
        assert set(lay.params) == set(lay.grads)
        assert isinstance(lay.buffers, dict)
        assert lay.multi_input == (lay.name in ("sum", "both"))
    x, y = rng.standard_normal((6, 16)), rng.integers(0, 3, 6)
    assert all(r.passed for r in check_model(model, x, y))


@pytest.mark.parametrize("loss", ["softmax_cross_entropy", "quadratic", "sigmoid_cross_entropy"])
def test_shared_output_bias(loss, tiny_batch):
    """One scalar output bias: shape (1,), gradient summed over the units, gradient-checked."""
    x, y = tiny_batch
    spec = mlp_spec([4], 3, "tanh", shared_bias=True)
    assert spec[-1] == {"type": "dense", "units": 3, "init": "xavier", "shared_bias": True}
    model = build_model(spec, 6, np.random.default_rng(7), np.float64)
    output = model.layers[-1]
    assert output.params["b"].shape == (1,) and model.layers[0].params["b"].shape == (4,)
    output.params["b"][:] = 0.4
    assert max(check_model(model, x, y, loss), key=lambda r: r.error).passed
    logits = model.forward(x, training=True)
    dlogits = np.random.default_rng(1).standard_normal(logits.shape)
    model.backward(dlogits)
    np.testing.assert_allclose(output.grads["b"], [dlogits.sum()])
    first = model.layers[0].params
    hidden = np.tanh(x @ first["w"] + first["b"])
    np.testing.assert_allclose(logits, hidden @ output.params["w"] + 0.4)


def test_parameter_count_of_the_book_net():
    """N13: 784-100-10 has 784 * 100 + 100 + 100 * 10 + 10 = 79,510 parameters."""
    model = build_model(mlp_spec([100], 10, "sigmoid"), 784, np.random.default_rng(0))
    assert model.theta.size == 79_510
    spec = mlp_spec([100], 10, "sigmoid", shared_bias=True)
    shared = build_model(spec, 784, np.random.default_rng(0))
    assert shared.theta.size == 79_510 - 9  # one output bias instead of ten


def test_bias_init_starts_hidden_biases_at_the_constant_and_the_output_at_zero():
    spec = mlp_spec([5, 4], 3, "relu", bias_init=1.0)
    model = build_model(spec, 6, np.random.default_rng(0), np.float32)
    dense = [lay for lay in model.layers if lay.name.startswith("dense")]
    np.testing.assert_array_equal(dense[0].params["b"], np.ones(5, np.float32))
    np.testing.assert_array_equal(dense[1].params["b"], np.ones(4, np.float32))
    np.testing.assert_array_equal(dense[2].params["b"], np.zeros(3, np.float32))
    assert [lay.init for lay in dense] == ["he, bias 1", "he, bias 1", "xavier"]
    # the weights are drawn as without it: the constant takes no random numbers
    plain = build_model(mlp_spec([5, 4], 3, "relu"), 6, np.random.default_rng(0), np.float32)
    np.testing.assert_array_equal(model.layers[0].params["w"], plain.layers[0].params["w"])
    assert "bias_init" not in mlp_spec([5], 3, "relu")[0]  # 0 is the default and not written


def test_bias_init_in_a_layer_table_and_its_bad_values():
    rng = np.random.default_rng(0)
    model = build_model([{"type": "dense", "units": 3, "bias_init": -0.5}], 4, rng, np.float64)
    np.testing.assert_array_equal(model.layers[0].params["b"], [-0.5, -0.5, -0.5])
    for spec, message in [
        ({"bias_init": 1.0, "bias_std": 0.1}, "bias_init .* or bias_std .*, not both"),
        ({"bias_init": float("nan")}, "bias_init must be a finite number, got nan"),
        ({"bias_init": "one"}, "bad spec"),
        ({"bias_std": -1.0}, "bias_std must be a number >= 0"),
    ]:
        with pytest.raises(ConfigError, match=message) as caught:
            build_model([{"type": "dense", "units": 3, **spec}], 4, rng)
        assert "\n" not in str(caught.value)
