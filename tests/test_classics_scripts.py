"""The scripts behind the README's classic-experiment figures: baselines, layer scales and the
figures read back from sweep and run folders."""

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def test_baselines_on_the_digits(capsys):
    assert script("baselines").main(["--data", "digits"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "digits: 1294 training images; split holdout"
    figures = {
        line.split(":")[0]: float(line.split("test ")[1].split("%")[0]) for line in lines[1:]
    }
    assert set(figures) == {
        "nearest centroid",
        "logistic regression",
        "PCA (32) + logistic regression",
    }
    assert 85 < figures["nearest centroid"] < figures["logistic regression"] < 100


def test_layer_scales_shrink_by_std_times_sqrt_fan_in_over_two(tmp_path, capsys):
    recipe = tmp_path / "deep.toml"
    recipe.write_text(
        'data = "digits"\nhidden = [32, 32, 32, 32]\ninit = { name = "normal", std = 0.01 }\n'
    )
    assert script("layer_scales").main([str(recipe)]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()[2:]]
    stds = [float(row[1]) for row in rows]
    assert [row[0] for row in rows] == ["relu1", "relu2", "relu3", "relu4"]
    for upper, lower in zip(stds[1:], stds, strict=False):
        assert 0.01 < upper / lower < 0.08  # about 0.01 * sqrt(32 / 2) = 0.04 per layer
    assert all(row[3] == "0.00%" for row in rows)  # z is never exactly 0 here


def test_classics_reads_a_sweep_and_a_run(tmp_path, capsys, cli):
    sweep = tmp_path / "s.toml"
    sweep.write_text(
        'name = "s"\nseeds = 2\n[base]\ndata = "digits"\nepochs = 2\nhidden = [8]\n'
        "[grid]\nshared_bias = [true, false]\n"
    )
    code, _, err = cli(["sweep", str(sweep), "--out", str(tmp_path / "out"), "--workers", "1"])
    assert code == 0, err
    classics = script("classics")
    assert classics.main([str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert out.count(": 2 done; val ") == 2
    assert '{"shared_bias": true}' in out and "best val loss / accuracy epochs" in out
    run = next((tmp_path / "out" / "trials").iterdir())
    assert classics.main([str(run), "--per-class"]) == 0
    assert "val per digit: " in capsys.readouterr().out
    assert classics.main([str(tmp_path)]) == 1


def test_classics_splits_the_loss_change_of_a_run_with_its_best_model(tmp_path, capsys, cli):
    from digitlab.report.losschange import read_loss_change

    run = tmp_path / "run"
    flags = ["--hidden", "8", "--epochs", "3", "--lr", "0.5", "--save-best-model", "--quiet"]
    code, _, err = cli(["train", *flags, "--no-report", "--out", str(run)])
    assert code == 0, err
    capsys.readouterr()
    assert script("classics").main([str(run), "--loss-change"]) == 0
    out = capsys.readouterr().out
    change, epoch = read_loss_change(run)
    assert f"run: validation loss from epoch {epoch} (lowest) to the end" in out
    for line in change.lines():
        assert line in out


@pytest.mark.parametrize("name", ["baselines", "layer_scales"])
def test_bad_input_is_one_line(name, tmp_path, capsys):
    missing = str(tmp_path / "nowhere")
    args = ["--data", "mnist", "--data-dir", missing] if name == "baselines" else [missing]
    assert script(name).main(args) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "error" in err
