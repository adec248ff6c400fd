"""Real runs on the 8x8 digits built to show each failure mode raise the matching alarm; the same
runs with the fault taken out raise none of the new ones. The monitors' new numbers are checked
against hand computations, and survive a checkpoint."""

import json
from pathlib import Path

import numpy as np
import pytest

import digitlab as dl
from digitlab.core.evaluation import History
from digitlab.core.losses import get_loss
from digitlab.core.train import TrainState
from digitlab.diagnostics.alarms import find
from digitlab.diagnostics.monitors import LayerStats, default_monitors
from digitlab.lab.config import make_config, read_config_file
from digitlab.lab.experiment import prepare_data, run

ROOT = Path(__file__).resolve().parents[2]
NEW = {
    "weights grow across epochs", "scale with depth", "near chance", "update ratio too high",
    "update ratio too low",
}  # fmt: skip


def warnings(records):
    return {f.kind: f for f in find(records) if f.severity == "warning"}


def recipe(name, **changes):
    return read_config_file(ROOT / "recipes" / "alarms" / f"{name}.toml") | changes


def trained(values, tmp_path):
    return run(make_config(values), tmp_path / "run").history.records()


# recipe -> (the alarm it shows, the change that takes the fault out)
CASES = {
    "wormhole": ("scale with depth", {"init": "he"}),
    "lr_too_high": ("update ratio too high", {"lr": 0.1}),
    "lr_too_low": ("update ratio too low", {"lr": 0.1}),
    "forgot_logsumexp": ("weights grow across epochs", {"loss": "softmax_cross_entropy"}),
}


@pytest.mark.parametrize("name", list(CASES))
def test_each_failure_recipe_raises_its_alarm_and_the_fixed_one_none(name, tmp_path):
    kind, fix = CASES[name]
    assert kind in warnings(trained(recipe(name), tmp_path))
    assert not NEW & set(warnings(trained(recipe(name, **fix), tmp_path / "fixed")))


def test_the_wormhole_is_seen_at_initialisation_in_the_first_epoch(tmp_path):
    first = trained(recipe("wormhole", epochs=1), tmp_path)
    assert 0 < first[0]["relu12.std_at_init"] < 1e-20  # 0.001 * sqrt(64 / 2) per layer
    assert first[0]["relu1.std_at_init"] == pytest.approx(0.0019, rel=0.1)
    message = warnings(first)["scale with depth"].message
    assert message.startswith("at initialisation, activations vanish with depth (std relu1 0.0019")
    assert "gradients vanish towards the input (bias gradient rms dense12.b" in message


def test_the_lr_too_low_recipe_is_also_near_chance(tmp_path):
    records = trained(recipe("lr_too_low"), tmp_path)
    assert {"near chance", "update ratio too low"} <= set(warnings(records))
    assert records[-1]["dense1.w.ratio_low_run"] >= 50


def shuffled_run(shuffle):
    """The default net (100 ReLU, lr 0.1) for 10 epochs on labels shuffled apart from the
    images, or on the true labels."""
    data = prepare_data(make_config({"data": "digits"}))
    train, val = data.splits.train, data.splits.val
    y = np.random.default_rng(1).permutation(train.y) if shuffle else train.y
    model = dl.build_model(dl.mlp_spec([100], 10, "relu"), 64, np.random.default_rng(0))
    options = dl.TrainOptions(10, dl.batch_size_schedule(32), dl.get_schedule("constant", 0.1, 10))
    history = dl.fit(
        model, train.x, y, dl.get_optimizer("sgd", 0.1), options, rng=np.random.default_rng(0),
        validation=(val.x, val.y), hooks=dl.TrainHooks(monitors=default_monitors()),
    )  # fmt: skip
    return history.records()


def test_labels_that_do_not_match_the_images_are_near_chance_without_a_collapse():
    records = shuffled_run(shuffle=True)
    found = warnings(records)
    assert "near chance" in found and "class collapse" not in found
    assert "for 10 classes (10.0%)" in found["near chance"].message
    assert not NEW & set(warnings(shuffled_run(shuffle=False)))


def test_the_cli_prints_the_alarm_of_initialisation_after_epoch_1(cli, tmp_path):
    config = ROOT / "recipes" / "alarms" / "wormhole.toml"
    args = ["train", "--config", str(config), "--epochs", "2", "--no-report"]
    code, out, _ = cli([*args, "--out", str(tmp_path / "run")])
    assert code == 0
    lines = out.splitlines()
    epoch1 = next(i for i, line in enumerate(lines) if line.startswith("epoch   1:"))
    epoch2 = next(i for i, line in enumerate(lines) if line.startswith("epoch   2:"))
    alarm = next(i for i, line in enumerate(lines) if "alarm: at initialisation" in line)
    assert epoch1 < alarm < epoch2
    saved = json.loads((tmp_path / "run" / "diagnostics.json").read_text())
    assert "scale with depth" in {f["kind"] for f in saved}


def one_epoch(model, x, y, lr, epochs=1, stats=None):
    stats = stats or LayerStats(samples=1000)
    options = dl.TrainOptions(
        epochs, dl.batch_size_schedule(len(x)), dl.get_schedule("constant", lr, epochs)
    )
    history = dl.fit(
        model, x, y, dl.get_optimizer("sgd", lr), options, rng=np.random.default_rng(0),
        hooks=dl.TrainHooks(monitors=[stats]),
    )  # fmt: skip
    return history.records()


def zero_net():
    """2 inputs -> 3 ReLU units -> 2 classes, float64, with z exactly 0 in 3 of 9 places."""
    spec = [{"type": "dense", "units": 3}, {"type": "activation", "name": "relu"}]
    spec.append({"type": "dense", "units": 2})
    model = dl.build_model(spec, 2, np.random.default_rng(0), np.float64)
    model.layers[0].params["w"][...] = [[1, -1, 0], [0, 0, 1]]
    x = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])  # z: [1 -1 0], [0 0 1], [1 -1 1]
    return model, x, np.array([0, 1, 1])


def test_exact_zeros_of_z_are_counted():
    model, x, y = zero_net()
    record = one_epoch(model, x, y, lr=1e-3)[0]
    assert record["relu1.zeros"] == 3.0 and record["relu1.zero_share"] == pytest.approx(1 / 3)
    info = [f for f in find([record | {"epoch": 1.0}]) if f.kind == "exact zeros"]
    assert "relu1 3 in 1 of 1 epochs, at most 33.3% of z (epoch 1)" in info[0].message


def test_scales_at_initialisation_are_those_of_the_first_batch_before_its_step():
    spec = dl.mlp_spec([5, 4, 3], 2, "tanh")
    x = np.random.default_rng(2).standard_normal((8, 4))
    y = np.array([0, 1] * 4)
    reference = dl.build_model(spec, 4, np.random.default_rng(0), np.float64)
    _, dlogits = get_loss("softmax_cross_entropy")(reference.forward(x, training=True), y)
    reference.backward(dlogits)
    model = dl.build_model(spec, 4, np.random.default_rng(0), np.float64)
    first, second = one_epoch(model, x, y, lr=0.5, epochs=2)
    for i, lay in enumerate(lay for lay in reference.layers if hasattr(lay, "a")):
        assert first[f"tanh{i + 1}.std_at_init"] == pytest.approx(lay.a.std(), rel=1e-12)
    for name, _, grad in reference.parameters():
        if name.endswith(".b"):
            rms = np.sqrt(np.mean(grad**2))
            assert first[f"{name}.grad_rms_at_init"] == pytest.approx(rms, rel=1e-12)
    assert not any(key.endswith("_at_init") for key in second)  # the first epoch's only


def test_runs_of_small_update_ratios_continue_across_epochs():
    model, x, y = zero_net()
    records = one_epoch(model, x, y, lr=1e-9, epochs=3)  # one step an epoch, each tiny
    assert [r["dense1.w.ratio_low_run"] for r in records] == [1.0, 2.0, 3.0]
    assert [r["dense1.w.ratio_high_run"] for r in records] == [0.0, 0.0, 0.0]


def test_a_checkpoint_in_the_first_epoch_keeps_the_new_numbers():
    """Stopped after batch 2 of epoch 1 and resumed from the monitors' state_dict (through
    JSON, as a checkpoint holds it): the same records as an uninterrupted run."""
    data = prepare_data(make_config({"data": "digits"}))
    x, y = data.splits.train.x[:320], data.splits.train.y[:320]

    def train(stop_at=None):
        model = dl.build_model(dl.mlp_spec([16, 16], 10, "relu"), 64, np.random.default_rng(0))
        optimizer, rng = dl.get_optimizer("sgd", 0.01), np.random.default_rng(0)
        options = dl.TrainOptions(
            3, dl.batch_size_schedule(32), dl.get_schedule("constant", 0.01, 3)
        )
        history, state, stats = History(), TrainState(), LayerStats(samples=3)
        calls = iter(range(1, 10**6))
        hooks = dl.TrainHooks(monitors=[stats], should_stop=lambda: next(calls) == stop_at)
        dl.fit(model, x, y, optimizer, options, rng=rng, hooks=hooks, history=history, state=state)
        if stop_at is not None:
            resumed = LayerStats(samples=3)
            resumed.load_state_dict(json.loads(json.dumps(stats.state_dict())))
            hooks = dl.TrainHooks(monitors=[resumed])
            dl.fit(
                model, x, y, optimizer, options, rng=rng, hooks=hooks, history=history, state=state
            )
        return [{k: v for k, v in r.items() if k != "seconds"} for r in history.records()]

    whole, resumed = train(), train(stop_at=2)
    assert "relu1.std_at_init" in whole[0] and "dense1.w.ratio_low_run" in whole[-1]
    assert resumed == whole


def test_exact_zeros_reach_the_history_the_diagnostics_and_the_report(cli, tmp_path):
    """Three of the 64 pixels: most images are all zero there, so z = b, and b stays exactly 0
    for units ReLU's f'(0) = 0 never lets a gradient through (Q4)."""
    folder = tmp_path / "run"
    args = ["train", "--data", "digits", "--pixel-subset", "3", "--hidden", "20,20"]
    code, _, _ = cli([*args, "--epochs", "3", "--quiet", "--out", str(folder)])
    assert code == 0
    history = [json.loads(line) for line in (folder / "history.jsonl").read_text().splitlines()]
    assert history[0]["relu1.zeros"] > 0
    # the share is of the z entries on the sampled batches: 1,294 images in 41 batches of 32,
    # every 2nd sampled (batches 1, 3, ..., 41, the last of 14): 654 rows x 20 units
    assert history[0]["relu1.zeros"] / history[0]["relu1.zero_share"] == pytest.approx(654 * 20)
    saved = {f["kind"]: f for f in json.loads((folder / "diagnostics.json").read_text())}
    total = int(sum(r["relu1.zeros"] for r in history))
    assert f"relu1 {total:,} in " in saved["exact zeros"]["message"]
    assert saved["exact zeros"]["severity"] == "info"
    assert "pre-activations z exactly 0" in (folder / "report.html").read_text()


def test_a_loss_summed_over_the_batch_makes_steps_too_large(tmp_path):
    """D4: the sum over a batch of 32 instead of the mean is a rate 32x too high."""
    from digitlab.core.losses import LOSSES, loss

    @loss("summed_test")
    def summed(logits, y):
        value, dlogits = LOSSES["softmax_cross_entropy"](logits, y)
        return value * len(y), dlogits * len(y)

    values = {"data": "digits", "activation": "tanh", "epochs": 5}
    assert "update ratio too high" in warnings(trained(values | {"loss": "summed_test"}, tmp_path))
    assert not NEW & set(warnings(trained(values, tmp_path / "mean")))


@pytest.mark.parametrize(("lr", "kind"), [(0.001, None), (0.00001, "update ratio too low")])
def test_adam_is_judged_at_its_own_scale(lr, kind, tmp_path):
    """Adam's usual rate 1e-3 moves each weight by about 1e-3 a step: no alarm; 100x less is
    too slow."""
    values = {"data": "digits", "optimizer": "adam", "lr": lr, "epochs": 5}
    found = NEW & set(warnings(trained(values, tmp_path)))
    assert kind in found if kind else not found
