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
