"""End-to-end: the `digitlab` command on the 8x8 digits, an MNIST subset and bad input."""

import gzip
import json
import shutil
import subprocess
import sys

import pytest

from digitlab.lab.runs import RUN_FILES


def test_default_train_reaches_97_percent_and_writes_the_run_folder(tmp_path):
    # the real console script, as a user runs it, with no arguments
    result = subprocess.run(
        [sys.executable, "-m", "digitlab", "train"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    (folder,) = (tmp_path / "runs").iterdir()
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["test_accuracy"] >= 0.97
    assert metrics["test"]["n"] == 359
    low, high = metrics["test"]["accuracy_ci95"]
    assert low < metrics["test_accuracy"] < high
    assert {p.name for p in folder.iterdir()} == {
        "config.json",
        "history.jsonl",
        "metrics.json",
        "model.npz",
        "predictions.npz",
        "diagnostics.json",
        "status.json",
        "report.html",
        "plots",
    }
    written = {p.name + ("/" if p.is_dir() else "") for p in folder.iterdir()}
    assert written <= set(RUN_FILES)  # the reference section's list of run-folder files
    assert len((folder / "history.jsonl").read_text().splitlines()) == 50
    assert "test" in result.stdout and "confusion" in result.stdout


def test_mnist_subset_and_eval_agree(tmp_path, mnist_dir, cli):
    out = tmp_path / "run"
    code, stdout, err = cli(
        [
            "train",
            "--data",
            "mnist",
            "--data-dir",
            str(mnist_dir),
            "--train-per-class",
            "300",
            "--hidden",
            "64",
            "--epochs",
            "8",
            "--standardize",
            "--lr",
            "0.1",
            "--out",
            str(out),
            "--quiet",
        ]
    )
    assert code == 0, err
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["train"]["n"] == 3000 and metrics["test"]["n"] == 10000
    assert metrics["test_accuracy"] >= 0.88
    code, stdout, err = cli(["eval", str(out)])
    assert code == 0, err
    assert f"accuracy {100 * metrics['test_accuracy']:.2f}%" in stdout


def test_book_split_reports_both_halves_and_the_whole(tmp_path, mnist_dir, cli):
    out = tmp_path / "run"
    code, _, err = cli(
        [
            "train",
            "--data",
            "mnist",
            "--data-dir",
            str(mnist_dir),
            "--split",
            "book",
            "--train-per-class",
            "100",
            "--hidden",
            "32",
            "--epochs",
            "2",
            "--out",
            str(out),
            "--quiet",
        ]
    )
    assert code == 0, err
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["val"]["n"] == metrics["test"]["n"] == 5000
    assert metrics["test_all"]["n"] == 10000
    whole = (metrics["val_accuracy"] + metrics["test_accuracy"]) / 2
    assert metrics["test_all"]["accuracy"] == pytest.approx(whole)


def corrupt_mnist(tmp_path, mnist_dir, how):
    folder = tmp_path / how
    shutil.copytree(mnist_dir, folder)
    target = folder / "t10k-labels-idx1-ubyte.gz"
    data = target.read_bytes()
    if how == "truncated":
        target.write_bytes(data[: len(data) // 2])
    elif how == "magic":
        raw = bytearray(gzip.decompress(data))
        raw[2] = 0x42
        target.write_bytes(gzip.compress(bytes(raw)))
    elif how == "count":
        raw = gzip.decompress(data)
        target.write_bytes(gzip.compress(raw[:8] + raw[8:-5]))
    return folder


@pytest.mark.parametrize("how", ["truncated", "magic", "count"])
def test_corrupt_idx_is_one_line(tmp_path, mnist_dir, how, cli):
    folder = corrupt_mnist(tmp_path, mnist_dir, how)
    code, _, err = cli(
        ["train", "--data", "mnist", "--data-dir", str(folder), "--out", str(tmp_path / "o")]
    )
    assert code == 1
    assert err.count("\n") == 1 and "t10k-labels" in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--activation", "swishy"], "unknown activation 'swishy'"),
        (["--optimizer", "adamm"], "unknown optimizer 'adamm'"),
        (["--lr", "abc"], "'abc' is not a valid float"),
        (["--lr", "0"], "learning_rate: Input should be greater than 0"),
        (["--hidden", "100,x"], "comma list"),
        (["--hidden", "0"], "hidden sizes must all be > 0"),
        (["--batch-size", "-5"], "batch_size"),
        (["--data", "cifar"], "'cifar' is not one of"),
        (["--data", "mnist", "--data-dir", "/nonexistent/folder"], "/nonexistent/folder"),
        (["--train-per-class", "5000"], "larger than class"),
        (["--bogus-flag"], "No such option '--bogus-flag'"),
        (["--config", "/nonexistent.toml"], "cannot read config"),
        (["--activation-param", "slope"], "expected KEY=VALUE"),
        (["--lr", "1e4", "--epochs", "3"], "training diverged"),
        (["--lr", "1e30", "--divergence", "0", "--epochs", "3"], "non-finite loss at epoch 1"),
    ],
)
def test_bad_input_is_one_line_and_non_zero(tmp_path, args, message, cli):
    code, _, err = cli(["train", "--out", str(tmp_path / "o"), "--quiet", *args])
    assert code != 0
    assert message in err
    assert err.startswith("digitlab: error:") and err.count("\n") == 1, err


def test_eval_rejects_a_file_that_is_not_a_model(tmp_path, cli):
    (tmp_path / "x.npz").write_text("not a model")
    code, _, err = cli(["eval", str(tmp_path / "x.npz")])
    assert code == 1 and "not a digitlab model file" in err and err.count("\n") == 1


def test_gradcheck_passes_builtin_and_names_a_planted_bug(tmp_path, cli):
    code, out, err = cli(["gradcheck", "--hidden", "16,8", "--activation", "tanh"])
    assert code == 0, err
    assert "PASS" in out
    plugin = tmp_path / "bad.py"
    plugin.write_text(
        "import numpy as np\n"
        "from digitlab import activation\n"
        "@activation('planted_sigmoid_bug')\n"
        "def f(z):\n    return 1 / (1 + np.exp(-z))\n"
        "@f.derivative\n"
        "def _(z):\n    return f(z) * f(1 - z)\n"  # s(z) s(1 - z): the classic slip
    )
    code, out, _ = cli(
        ["gradcheck", "--plugin", str(plugin), "--activation", "planted_sigmoid_bug",
         "--hidden", "8"])  # fmt: skip
    assert code == 1
    assert "FAIL: activation planted_sigmoid_bug" in out
    assert "the error enters at: planted_sigmoid_bug1" in out


def test_collapse_alarm_on_a_funnel_with_large_init(tmp_path, cli):
    out_dir = tmp_path / "run"
    code, out, err = cli(
        ["train", "--hidden", "48,32,24,18,14", "--activation", "relu", "--init", "normal",
         "--init-param", "std=1", "--batch-size", "25", "--epochs", "5", "--out", str(out_dir),
         "--quiet"])  # fmt: skip
    assert code == 0, err
    assert "class collapse" in out
    findings = json.loads((out_dir / "diagnostics.json").read_text())
    assert "class collapse" in {f["kind"] for f in findings}
    code, out, _ = cli(["diagnose", str(out_dir)])
    assert code == 0 and "class collapse" in out and "usual remedies" in out


def test_saturation_alarm_on_inverted_mnist_with_a_large_rate(tmp_path, mnist_dir, cli):
    code, out, err = cli(
        ["train", "--data", "mnist", "--data-dir", str(mnist_dir), "--invert", "--hidden", "30",
         "--activation", "sigmoid", "--loss", "quadratic", "--output-activation", "sigmoid",
         "--lr", "3", "--batch-size", "10", "--epochs", "1", "--train-per-class", "300",
         "--out", str(tmp_path / "run"), "--quiet"])  # fmt: skip
    assert code == 0, err
    assert "saturation" in out and "standardise the inputs" in out


def test_diagnose_needs_a_run_folder(tmp_path, cli):
    code, _, err = cli(["diagnose", str(tmp_path)])
    assert code == 1 and "history.jsonl: no such file" in err


def test_the_cli_loads_matplotlib_only_to_draw_a_report():
    """matplotlib is ~30 MB of a training run's peak memory: it loads when a report is drawn."""
    code = "import sys, digitlab.cli; print('matplotlib' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "False"
