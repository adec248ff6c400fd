"""The model summary (issue 16, D6 and N13): node rows, parameter counts worked out by hand,
memory figures that follow from the arrays, the command and the report's table."""

import json
import tomllib
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

import digitlab as dl
from digitlab.diagnostics.summary import summarize
from digitlab.lab.config import make_config
from digitlab.lab.experiment import run

RECIPES = Path(__file__).parents[2] / "recipes"


def dense_count(n_in: int, n_out: int) -> int:
    return n_in * n_out + n_out


def test_book_net_has_79510_parameters():
    model = dl.build_model(dl.mlp_spec([100], 10, "sigmoid"), 784, np.random.default_rng(0))
    summary = summarize(model, batch_size=128)
    assert summary.parameters == dense_count(784, 100) + dense_count(100, 10) == 79_510
    assert [(r.name, r.kind, r.output_shape, r.parameters) for r in summary.rows] == [
        ("dense1", "dense", (100,), 78_500),
        ("sigmoid1", "activation", (100,), 0),
        ("dense2", "dense", (10,), 1_010),
    ]
    assert summary.rows[1].activation == "sigmoid"
    assert summary.rows[0].init == "xavier" and summary.rows[1].init == ""
    assert "79,510 parameters" in summary.text()


def test_one_layer_too_many_shows():
    """D6: an extra layer trains silently; the summary shows it and its parameters."""
    right = dl.mlp_spec([32], 10, "relu")
    wrong = [*right, {"type": "activation", "name": "relu"}, {"type": "dense", "units": 10}]
    rng = np.random.default_rng(0)
    rows_right = summarize(dl.build_model(right, 64, rng)).rows
    rows_wrong = summarize(dl.build_model(wrong, 64, rng)).rows
    assert len(rows_wrong) == len(rows_right) + 2
    assert rows_wrong[-1].parameters == dense_count(10, 10)


def test_conv_recipe_lists_every_node_with_counts_and_shapes():
    layers = tomllib.loads((RECIPES / "cnn_augment.toml").read_text())["layers"]
    spec = [*layers, {"type": "dense", "units": 10}]
    summary = summarize(dl.build_model(spec, 784, np.random.default_rng(0)), batch_size=8)
    assert len(summary.rows) == len(spec)
    by_name = {row.name: row for row in summary.rows}
    assert by_name["conv1"].output_shape == (32, 28, 28)
    assert by_name["conv1"].parameters == 3 * 3 * 1 * 32 + 32
    assert by_name["conv1"].init == "he"
    assert by_name["maxpool2"].output_shape == (64, 7, 7)
    assert by_name["dense1"].parameters == dense_count(64 * 7 * 7, 128)
    assert by_name["batchnorm1"].parameters == 2 * 128  # scale and shift; running stats are buffers
    assert summary.memory.buffers == 2 * 128 * 4


def test_graph_config_shows_inputs():
    layers = tomllib.loads((RECIPES / "skip_mixed.toml").read_text())["layers"]
    spec = [*layers, {"type": "dense", "units": 10}]
    summary = summarize(dl.build_model(spec, 784, np.random.default_rng(0)))
    assert summary.graph and "inputs" in summary.header()
    skip = next(row for row in summary.rows if row.kind == "add")
    assert skip.inputs == ["h1", "h2"]
    mixed = next(row for row in summary.rows if row.kind == "mixed")
    assert "relu 50%" in mixed.activation
    assert [row.name for row in summary.rows] == [line[0] for line in summary.table()]


@pytest.mark.parametrize(("optimizer", "slots"), [("sgd", 0), ("momentum", 1), ("adam", 2)])
def test_memory_follows_from_the_arrays(optimizer, slots):
    model = dl.build_model(dl.mlp_spec([50], 10), 64, np.random.default_rng(0))
    n = 64 * 50 + 50 + 50 * 10 + 10
    memory = summarize(model, 16, dl.get_optimizer(optimizer, 0.1)).memory
    assert memory.parameters == memory.gradients == 4 * n
    assert memory.optimizer == slots * 4 * n
    # at least the input and the two layers' outputs; a bigger batch needs more
    assert memory.batch >= 16 * (64 + 50 + 50 + 10) * 4
    assert summarize(model, 256).memory.batch > 8 * memory.batch
    assert memory.model == 4 * n * (2 + slots)


def test_float64_doubles_the_bytes():
    spec = dl.mlp_spec([20], 10)
    m32 = summarize(dl.build_model(spec, 64, np.random.default_rng(0))).memory
    m64 = summarize(dl.build_model(spec, 64, np.random.default_rng(0), np.float64)).memory
    assert m64.parameters == 2 * m32.parameters


def test_summary_leaves_the_model_as_it_was():
    spec = [
        {"type": "dense", "units": 20},
        {"type": "batchnorm"},
        {"type": "activation", "name": "relu"},
        {"type": "dropout", "rate": 0.5},
        {"type": "dense", "units": 10},
    ]
    model = dl.build_model(spec, 64, np.random.default_rng(0))
    dropout = next(lay for lay in model.layers if hasattr(lay, "rng"))
    model.g[...] = 0.5
    theta, g = model.theta.copy(), model.g.copy()
    buffers = {name: value.copy() for name, value in model.buffers()}
    draw = dropout.rng.bit_generator.state
    summarize(model, 32, dl.get_optimizer("adam", 0.01))
    assert np.array_equal(model.theta, theta) and np.array_equal(model.g, g)
    for name, value in model.buffers():
        assert np.array_equal(value, buffers[name])
    assert dropout.rng.bit_generator.state == draw


def test_command_from_flags_and_from_a_run(cli, tmp_path):
    code, out, err = cli(["summary", "--hidden-sizes", "100", "--optimizer", "adam"])
    assert code == 0, err
    assert "7,510" in out  # 64-100-10 on the 8x8 digits: 6,500 + 1,010
    assert "optimizer state 58.7 KiB" in out  # Adam: two slots of 7,510 float32
    folder = tmp_path / "run"
    run(make_config({"hidden_sizes": [16], "epochs": 1}), folder)
    code, out, err = cli(["summary", str(folder), "--json"])
    assert code == 0, err
    data = json.loads(out)
    assert data["parameters"] == dense_count(64, 16) + dense_count(16, 10)
    assert [layer["name"] for layer in data["layers"]] == ["dense1", "relu1", "dense2"]
    code, out, err = cli(["summary", str(folder), "--epochs", "3"])
    assert code == 1 and "not both" in err and len(err.strip().splitlines()) == 1


def test_command_on_mnist_shows_79510(cli, mnist_dir):
    args = ["summary", "--hidden-sizes", "100", "--data", "mnist", "--data-dir", str(mnist_dir)]
    code, out, err = cli(args)
    assert code == 0, err
    assert "79,510 parameters" in out


class _Cells(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.section: str | None = None
        self.cells: list[str] = []
        self._in_cell = False

    def handle_starttag(self, tag, attrs):
        if tag == "section":
            self.section = dict(attrs).get("id")
        self._in_cell = tag == "td" and self.section == "layers"

    def handle_endtag(self, tag):
        if tag == "td":
            self._in_cell = False

    def handle_data(self, data):
        if self._in_cell:
            self.cells.append(data)


def test_report_has_the_table(tmp_path):
    from digitlab.report.html import build_report

    folder = tmp_path / "run"
    run(make_config({"hidden_sizes": [16], "epochs": 1}), folder)
    html = build_report(folder).read_text()
    parser = _Cells()
    parser.feed(html)
    assert parser.cells[:4] == ["dense1", "dense", "16", f"{dense_count(64, 16):,}"]
    assert f"{dense_count(64, 16) + dense_count(16, 10):,} parameters" in html
