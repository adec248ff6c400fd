"""The gradient check of whole models: batch norm and dropout checked in training mode, with one
dropout mask and untouched running statistics; a planted wrong derivative still fails, named."""

import numpy as np
import pytest

from digitlab.core.activations import ACTIVATIONS
from digitlab.core.model import build_model
from digitlab.diagnostics.gradcheck import check_model

BN_DROPOUT = """
data = "digits"
{plugins}
layers = [
    {{ type = "dense", units = 32 }},
    {{ type = "batchnorm" }},
    {{ type = "activation", name = "{activation}" }},
    {{ type = "dropout", rate = 0.2 }},
]
"""

PLANTED = (
    "import numpy as np\n"
    "from digitlab import activation\n"
    "@activation('planted_tanh_bug')\n"
    "def f(z):\n    return np.tanh(z)\n"
    "@f.derivative\n"
    "def _(z):\n    return 1 - np.tanh(z)\n"  # 1 - tanh(z) instead of 1 - tanh(z)**2
)


def test_batchnorm_and_dropout_pass_from_the_cli(tmp_path, cli):
    config = tmp_path / "bn.toml"
    config.write_text(BN_DROPOUT.format(plugins="", activation="tanh"))
    code, out, err = cli(["gradcheck", "--config", str(config)])
    assert code == 0, out + err
    assert "PASS: every gradient matches" in out
    assert "layer batchnorm1" in out and "layer dense1" in out


@pytest.fixture
def registry():
    """The activation registry, put back as it was after the test (the plugin registers one)."""
    saved = dict(ACTIVATIONS)
    yield ACTIVATIONS
    ACTIVATIONS.clear()
    ACTIVATIONS.update(saved)


def test_a_wrong_derivative_in_that_model_fails_and_is_named(tmp_path, registry, cli):
    plugin = tmp_path / "planted.py"
    plugin.write_text(PLANTED)
    config = tmp_path / "bad.toml"
    config.write_text(
        BN_DROPOUT.format(plugins=f"plugins = [{str(plugin)!r}]", activation="planted_tanh_bug")
    )
    code, out, _ = cli(["gradcheck", "--config", str(config)])
    assert code == 1
    assert "FAIL: activation planted_tanh_bug" in out
    assert "the error enters at: planted_tanh_bug1" in out
    assert "planted_tanh_bug" in registry


def test_check_model_leaves_running_statistics_and_dropout_stream_alone(rng):
    spec = [
        {"type": "dense", "units": 5},
        {"type": "batchnorm"},
        {"type": "activation", "name": "tanh"},
        {"type": "dropout", "rate": 0.3},
        {"type": "dense", "units": 3},
    ]
    model = build_model(spec, 6, rng, np.float64)
    dropout = model.layers[3]
    buffers = {name: value.copy() for name, value in model.buffers()}
    x, y = rng.standard_normal((10, 6)), rng.integers(0, 3, 10)
    state = dropout.rng.bit_generator.state  # the rng fixture: the one x and y came from too
    results = check_model(model, x, y)
    assert all(r.passed for r in results), results
    for name, value in model.buffers():
        np.testing.assert_array_equal(value, buffers[name], err_msg=name)
    assert dropout.rng.bit_generator.state == state


@pytest.mark.parametrize("loss", ["sigmoid_cross_entropy", "quadratic"])
def test_the_shared_output_bias_passes_from_the_cli(loss, cli):
    """S1's one scalar output bias and network2's sigmoid cross-entropy, checked in float64."""
    code, out, err = cli(["gradcheck", "--hidden-sizes", "4", "--shared-bias", "--loss", loss])
    assert code == 0, out + err
    assert "PASS: every gradient matches" in out and "layer dense2" in out
