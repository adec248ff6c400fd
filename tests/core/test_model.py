"""Graph models: skip connections, branches used twice, merges; errors that name the nodes."""

import numpy as np
import pytest

from digitlab.core.model import build_model
from digitlab.diagnostics.gradcheck import check_model
from digitlab.errors import ConfigError

SKIP_AND_BRANCH = [
    {"name": "h1", "type": "dense", "units": 7, "inputs": ["input"]},
    {"name": "a1", "type": "activation", "activation": "tanh", "inputs": ["h1"]},
    {"name": "h2", "type": "dense", "units": 7, "inputs": ["a1"]},
    {"name": "a2", "type": "activation", "activation": "sigmoid", "inputs": ["h2"]},
    {"name": "skip", "type": "add", "inputs": ["a1", "a2"]},  # a1 feeds h2 and skip
    {"name": "side", "type": "dense", "units": 4, "inputs": ["input"]},
    {"name": "both", "type": "concat", "inputs": ["skip", "side"]},
    {"name": "output", "type": "dense", "units": 3, "inputs": ["both"]},
]


def test_gradients_of_a_graph_with_a_skip_and_a_branch_used_twice(rng, tiny_batch):
    x, y = tiny_batch
    model = build_model(SKIP_AND_BRANCH, 6, rng, np.float64)
    results = check_model(model, x, y)
    assert sorted(r.name for r in results) == sorted(
        f"{node}.{key}" for node in ("h1", "h2", "side", "output") for key in "wb"
    )
    assert all(r.passed for r in results), results


def test_a_stack_is_the_chain_shaped_graph(rng):
    stack = [{"type": "dense", "units": 5}, {"type": "activation", "name": "relu"},
             {"type": "dense", "units": 3}]  # fmt: skip
    model = build_model(stack, 4, rng)
    assert [n.name for n in model.nodes] == ["dense1", "relu1", "dense2"]
    assert [n.inputs for n in model.nodes] == [["input"], ["dense1"], ["relu1"]]
    assert model.output_shape == (3,)
    assert model.layers[0].needs_input_grad is False and model.layers[1].needs_input_grad


def test_shared_input_gradients_add_up(rng):
    spec = [
        {"name": "h", "type": "dense", "units": 3, "inputs": ["input"]},
        {"name": "twice", "type": "add", "inputs": ["h", "h"]},
    ]
    model = build_model(spec, 2, rng, np.float64)
    model.forward(np.ones((1, 2)), training=True)
    model.backward(np.ones((1, 3)))
    np.testing.assert_array_equal(model.layers[0].grads["b"], [2.0, 2.0, 2.0])


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ([{"name": "a", "type": "dense", "units": 3, "inputs": ["b"]},
          {"name": "b", "type": "dense", "units": 3, "inputs": ["a"]}],
         "cycle through nodes a, b"),
        ([{"name": "a", "type": "dense", "units": 3, "inputs": ["b"]},
          {"name": "b", "type": "dense", "units": 3, "inputs": ["a"]},
          {"type": "dense", "units": 3}],  # downstream of the cycle: not named as on it
         "cycle through nodes a, b$"),
        ([{"name": "a", "type": "dense", "units": 3, "inputs": ["input"]},
          {"name": "b", "type": "dense", "units": 4, "inputs": ["input"]},
          {"name": "sum", "type": "add", "inputs": ["a", "b"]}],
         r"node 'sum' \(add\): add needs inputs of one shape, got \[\(3,\), \(4,\)\]"),
        ([{"name": "a", "type": "dense", "units": 3, "inputs": ["nowhere"]}],
         "node 'a' takes input 'nowhere', which is not a node"),
        ([{"name": "a", "type": "dense", "units": 3, "inputs": ["input"]},
          {"name": "lost", "type": "dense", "units": 3, "inputs": ["input"]},
          {"name": "out", "type": "dense", "units": 2, "inputs": ["a"]}],
         "node 'lost' do not lead to the output"),
        ([{"name": "a", "type": "dense", "units": 3},
          {"name": "a", "type": "dense", "units": 3}], "'a' is used twice"),
        ([{"name": "a", "type": "dense", "units": 3, "inputs": ["input", "input"]}],
         "takes one input, got 2"),
    ],
)  # fmt: skip
def test_graph_errors_name_the_nodes(spec, message, rng):
    with pytest.raises(ConfigError, match=message) as caught:
        build_model(spec, 2, rng)
    assert "\n" not in str(caught.value)


def test_graph_model_saves_and_loads(rng, tmp_path):
    from digitlab.lab.modelfile import load_model, save_model

    model = build_model(SKIP_AND_BRANCH, 6, rng)
    loaded, _ = load_model(save_model(model, tmp_path / "graph.npz"))
    x = rng.standard_normal((5, 6)).astype(np.float32)
    np.testing.assert_array_equal(loaded.forward(x), model.forward(x))


def test_input_gradients_only_below_a_parameter():
    # the data's reshape and the first conv need no input gradient; the pool after it does
    spec = [
        {"type": "reshape", "shape": [1, 6, 6]},
        {"type": "conv2d", "filters": 2, "kernel_size": 3, "padding": 1},
        {"type": "maxpool2d", "size": 2},
        {"type": "flatten"},
        {"type": "dense", "units": 3},
    ]
    model = build_model(spec, 36, np.random.default_rng(0))
    assert [lay.needs_input_grad for lay in model.layers] == [False, False, True, True, True]


# ---------------------------------------------------------------- parameters as one vector

CNN = [
    {"type": "reshape", "shape": [1, 4, 4]},
    {"type": "conv2d", "filters": 2, "kernel_size": 3},
    {"type": "batchnorm"},
    {"type": "flatten"},
    {"type": "dense", "units": 3},
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_every_parameter_and_gradient_is_a_view_of_theta_and_g(dtype):
    model = build_model(CNN, 16, np.random.default_rng(0), dtype)
    assert [(name, shape) for name, _, shape in model.layout] == [
        ("conv1.w", (3, 3, 1, 2)), ("conv1.b", (2,)), ("batchnorm1.gamma", (2,)),
        ("batchnorm1.beta", (2,)), ("dense1.w", (8, 3)), ("dense1.b", (3,)),
    ]  # fmt: skip
    assert [offset for _, offset, _ in model.layout] == [0, 18, 20, 22, 24, 48]
    assert model.theta.shape == model.g.shape == model.mask.shape == (51,)
    assert model.theta.dtype == model.g.dtype == model.mask.dtype == dtype
    for (name, param, grad), (layout_name, offset, shape) in zip(
        model.parameters(), model.layout, strict=True
    ):
        assert name == layout_name and param.shape == grad.shape == shape
        assert np.shares_memory(param, model.theta) and np.shares_memory(grad, model.g)
        param[...] = 7.0  # writing through the layer's view changes theta
        assert (model.theta[offset : offset + param.size] == 7.0).all()
        grad[...] = -1.0
        assert (model.g[offset : offset + grad.size] == -1.0).all()
    model.theta[:] = 0.5  # and writing theta changes every layer's arrays
    assert all((param == 0.5).all() for _, param, _ in model.parameters())
    # penalties and decay act on weight matrices only: not biases, nor batch-norm gamma/beta
    for name, entries in model.views(model.mask).items():
        assert (entries == (1.0 if name.endswith(".w") else 0.0)).all(), name


def test_building_moves_the_initial_values_into_theta(rng):
    from digitlab.core.layers import Dense
    from digitlab.core.model import Model, Node

    w, b = rng.standard_normal((8, 3)), rng.standard_normal(3)
    lay = Dense(w.copy(), b.copy(), "d")
    model = Model([Node("d", lay, ["input"])], 8, [], np.float64, (3,))
    np.testing.assert_array_equal(model.theta, np.concatenate([w.ravel(), b]))
    assert lay.params["w"].base is model.theta and lay.grads["b"].base is model.g


def test_a_layer_may_keep_its_parameters_only_in_params():
    from digitlab.core.layers import Dense
    from digitlab.core.model import Model, Node

    w = np.ones((3, 3), np.float32)
    tied = [
        Node("a", Dense(w, np.zeros(3, np.float32), "a"), ["input"]),
        Node("b", Dense(w, np.zeros(3, np.float32), "b"), ["a"]),
    ]
    with pytest.raises(ConfigError, match="shares one with another layer"):
        Model(tied, 3, [], np.float32, (3,))

    class Private(Dense):
        def __init__(self, w, b):
            super().__init__(w, b, "p")
            self.w = w  # a second reference, which the view in params would leave behind

    with pytest.raises(ConfigError, match="keeps a parameter outside its params dict"):
        Model([Node("p", Private(w, np.zeros(3, np.float32)), ["input"])], 3, [], np.float32, (3,))
