"""activation_schedule: the hidden layers' activation reassigned at chosen epochs (Q13).

The forward pass after a switch computes the new function (checked against the formula on the
model's own weights), the saved model carries it, the history marks the epoch, and a run
stopped on either side of the switch resumes bit-identically.
"""

import json

import numpy as np
import pytest

from digitlab.core.activations import get_activation
from digitlab.core.hooks import activation_schedule, set_hidden_activation
from digitlab.core.model import build_model
from digitlab.lab.config import make_config
from digitlab.lab.experiment import Interrupted, run
from digitlab.lab.modelfile import load_model

SPEC = [
    {"type": "dense", "units": 5},
    {"type": "activation", "name": "sigmoid"},
    {"type": "dense", "units": 4},
    {"type": "activation", "name": "tanh"},
    {"type": "dense", "units": 3},
    {"type": "activation", "name": "sigmoid"},
]
CONFIG = {
    "hidden_sizes": [16, 16],
    "activation": "sigmoid",
    "activation_schedule": [[2, "relu"]],
    "optimizer": "adam",
    "lr": 0.003,
    "dropout": 0.1,
    "epochs": 4,
}


def by_hand(model, x, hidden):
    """The stack's output computed from its weights: hidden(x w1 + b1) ... then sigmoid."""
    weights = dict((name, p) for name, p, _ in model.parameters())
    a = x
    for i in (1, 2):
        a = hidden(a @ weights[f"dense{i}.w"] + weights[f"dense{i}.b"])
    z = a @ weights["dense3.w"] + weights["dense3.b"]
    return 1 / (1 + np.exp(-z))


def test_after_a_switch_the_forward_pass_computes_the_new_function(rng):
    model = build_model(SPEC, 6, rng, np.float64)
    x = rng.normal(size=(8, 6))
    before = model.forward(x)
    set_hidden_activation(model, "leaky_relu", {"slope": 0.1})
    after = model.forward(x)

    def leaky(z):
        return np.where(z > 0, z, 0.1 * z)

    np.testing.assert_allclose(after, by_hand(model, x, leaky), rtol=1e-12)
    assert np.abs(after - before).max() > 1e-3
    # the output activation stays; the description names the new one, under the built names
    assert [n.name for n in model.nodes if n.name.startswith(("sig", "tanh"))] == [
        "sigmoid1", "tanh1", "sigmoid2"
    ]  # fmt: skip
    assert model.spec[1] == {"type": "activation", "name": "sigmoid1", "activation": "leaky_relu",
                             "slope": 0.1}  # fmt: skip
    rebuilt = build_model(model.spec, 6, rng, np.float64)
    rebuilt.theta[...] = model.theta
    np.testing.assert_array_equal(rebuilt.forward(x), after)
    assert [n.name for n in rebuilt.nodes] == [n.name for n in model.nodes]


def test_the_backward_pass_uses_the_new_derivative(rng):
    model = build_model(SPEC, 6, rng, np.float64)
    set_hidden_activation(model, "relu")
    x, y = rng.normal(size=(4, 6)), np.array([0, 1, 2, 1])
    model.forward(x, training=True)
    hidden = model.nodes[1].layer
    np.testing.assert_array_equal(hidden.slope(), (hidden.z > 0).astype(float))
    assert get_activation("relu").f is hidden.f and y.shape == (4,)


def test_the_schedule_sets_the_activation_in_effect_and_marks_the_switch_epoch(rng):
    model = build_model(SPEC, 6, rng, np.float64)
    start = activation_schedule([(3, "relu", {}), (1, "tanh", {})])
    assert start(0, model) == {} and model.nodes[1].layer.activation == "sigmoid"
    assert start(1, model) == {"activation_switch": 1.0}
    assert model.nodes[1].layer.activation == "tanh"
    assert start(2, model) == {} and model.nodes[1].layer.activation == "tanh"
    assert start(3, model) == {"activation_switch": 1.0}
    assert start(5, model) == {} and model.nodes[1].layer.activation == "relu"
    assert model.nodes[-1].layer.activation == "sigmoid"  # the output layer is never switched


@pytest.fixture(scope="module")
def switched(tmp_path_factory):
    folder = tmp_path_factory.mktemp("switched")
    run(make_config(CONFIG), folder)
    return folder


def history(folder):
    lines = (folder / "history.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(x).items() if k != "seconds"} for x in lines]


def test_a_run_records_the_switch_and_saves_the_activation_in_effect(tmp_path, switched):
    records = history(switched)
    assert [r.get("activation_switch") for r in records] == [None, None, 1.0, None]
    kept = tmp_path / "kept"
    run(make_config({**CONFIG, "activation_schedule": None}), kept)
    plain = history(kept)
    assert [r["val_loss"] for r in records[:2]] == [r["val_loss"] for r in plain[:2]]
    assert records[2]["val_loss"] != plain[2]["val_loss"]
    assert "sigmoid1.dead" in records[3]  # the monitors' keys keep the built names
    model, extra = load_model(switched / "model.npz")
    assert [lay.activation for lay in model.layers if hasattr(lay, "activation")] == [
        "relu", "relu"
    ]  # fmt: skip
    assert extra["config"]["activation_schedule"] == [[2, {"name": "relu"}]]
    x = np.random.default_rng(0).random((20, 64)).astype(np.float32)
    weights = dict((name, p) for name, p, _ in model.parameters())
    a = x
    for i in (1, 2):
        a = np.maximum(a @ weights[f"dense{i}.w"] + weights[f"dense{i}.b"], 0)
    expected = a @ weights["dense3.w"] + weights["dense3.b"]
    np.testing.assert_allclose(model.forward(x), expected, rtol=1e-5, atol=1e-6)


# 1,293 training images in batches of 32: 41 batches an epoch. Batch 30 is inside epoch 1
# (before the switch), batch 100 inside epoch 3 (after it), batch 82 ends epoch 2.
@pytest.mark.parametrize("stop_after", [30, 82, 100])
def test_a_run_stopped_either_side_of_the_switch_resumes_bit_identically(
    tmp_path, switched, stop_after
):
    batches = iter(range(stop_after))
    with pytest.raises(Interrupted):
        run(make_config(CONFIG), tmp_path, should_stop=lambda: next(batches, None) is None)
    run(make_config({}), tmp_path, resume=True)
    assert history(tmp_path) == history(switched)
    with np.load(switched / "model.npz") as a, np.load(tmp_path / "model.npz") as b:
        assert a.files == b.files
        for key in a.files:
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)


@pytest.mark.parametrize(
    ("flag", "message"),
    [
        ("2:swoosh", "unknown activation 'swoosh'; known: abs, cos, elu"),
        ("4:relu", "epoch 4 is out of range: switch after 1 to 3 epochs"),
        ("0:relu", "epoch 0 is out of range"),
        ("3:relu,2:tanh", "the epochs must increase, got [3, 2]"),
        ("relu", "expected EPOCH:NAME"),
    ],
)
def test_a_bad_schedule_is_one_line(cli, tmp_path, flag, message):
    code, _, err = cli(["train", "--epochs", "4", "--activation-schedule", flag,
                        "--out", str(tmp_path / "run")])  # fmt: skip
    assert code != 0
    assert message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "run").exists()


def test_a_bad_schedule_parameter_is_one_line(tmp_path):
    with pytest.raises(Exception, match="slope") as raised:
        make_config({"activation_schedule": [[1, {"name": "relu", "slope": 0.1}]], "epochs": 3})
    assert type(raised.value).__name__ == "ConfigError"


def test_the_report_marks_the_switch_epoch_on_the_curves(switched):
    from digitlab.report import plots
    from digitlab.report.html import build_report

    records = history(switched)
    config = json.loads((switched / "config.json").read_text())
    assert plots.switch_marks(records, config) == [(2.5, "activation -> relu")]
    marked = plots.curves_plot(records, "loss", plots.switch_marks(records, config))
    assert marked is not None and marked != plots.curves_plot(records, "loss")
    build_report(switched)
    assert (switched / "plots" / "curves_loss.png").read_bytes() == marked


def test_the_sweep_summary_marks_a_variant_s_switch():
    from digitlab.report.sweep import VariantSummary
    from digitlab.report.sweep_page import curves_plot

    curve = {0: np.linspace(0.1, 0.9, 6)}
    kept = [VariantSummary(options={"activation": "sigmoid"}, planned=1)]
    switched = [
        VariantSummary(
            options={"activation": "sigmoid", "activation_schedule": [[3, "relu"]]}, planned=1
        )
    ]
    plain, marked = curves_plot(kept, curve), curves_plot(switched, curve)
    assert plain is not None and marked is not None and plain != marked
