"""`digitlab eval --split all` is every test image, as everywhere else: with the book split both
halves of MNIST's 10,000 (metrics.json's test_all), otherwise the test part."""

import json


def test_eval_all_is_the_whole_mnist_test_set_with_the_book_split(
    tmp_path, mnist_dir, monkeypatch, cli
):
    monkeypatch.setenv("DIGITLAB_DATA_DIR", str(mnist_dir))  # the saved config names no folder
    out = tmp_path / "run"
    code, _, err = cli(
        [
            "train",
            "--data",
            "mnist",
            "--split",
            "book",
            "--train-per-class",
            "50",
            "--hidden",
            "16",
            "--epochs",
            "1",
            "--no-report",
            "--quiet",
            "--out",
            str(out),
        ]
    )
    assert code == 0, err
    metrics = json.loads((out / "metrics.json").read_text())
    code, stdout, err = cli(["eval", str(out), "--split", "all"])
    assert code == 0, err
    whole = metrics["test_all"]
    assert f"all: n=10000 loss {whole['loss']:.4f} accuracy {100 * whole['accuracy']:.2f}%" in (
        stdout
    )
    code, stdout, _ = cli(["eval", str(out), "--split", "test"])
    assert f"test: n=5000 loss {metrics['test_loss']:.4f}" in stdout


def test_eval_all_is_the_test_part_otherwise(tmp_path, cli):
    out = tmp_path / "run"
    code, _, err = cli(["train", "--epochs", "2", "--no-report", "--quiet", "--out", str(out)])
    assert code == 0, err
    metrics = json.loads((out / "metrics.json").read_text())
    code, stdout, err = cli(["eval", str(out), "--split", "all"])
    assert code == 0, err
    assert f"all: n=359 loss {metrics['test_loss']:.4f}" in stdout
