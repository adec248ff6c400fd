"""Checkpoints and resume: a stopped or killed run ends bit-identical to an uninterrupted one."""

import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from digitlab.errors import ModelError
from digitlab.lab.checkpoint import read_checkpoint
from digitlab.lab.config import make_config
from digitlab.lab.experiment import Interrupted, run

CONFIG = {"epochs": 6, "dropout": 0.2, "optimizer": "adam", "lr": 0.003, "patience": 10}

SLOW_PLUGIN = '''
import time
import numpy as np
from digitlab import activation

@activation("slow_tanh_test", init="xavier")
def slow_tanh(z):
    """tanh that sleeps 20 ms a call, so that a test can kill the run mid-way."""
    time.sleep(0.02)
    return np.tanh(z)

@slow_tanh.derivative
def _(z):
    t = np.tanh(z)
    return 1 - t * t
'''


def weights(folder):
    with np.load(folder / "model.npz") as data:
        return {k: data[k] for k in data.files if k != "model.json"}


def assert_same_weights(a, b):
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for key in wa:
        np.testing.assert_array_equal(wa[key], wb[key], err_msg=key)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("whole")
    run(make_config(CONFIG), folder)
    return folder


def whole_and_resumed(config: dict, tmp_path) -> None:
    """tmp_path/whole trained straight through; tmp_path/cut stopped after 60 batches, resumed."""
    run(make_config(config), tmp_path / "whole")
    batches = iter(range(60))
    with pytest.raises(Interrupted):
        run(make_config(config), tmp_path / "cut", should_stop=lambda: next(batches, None) is None)
    run(make_config({}), tmp_path / "cut", resume=True)


def test_augmented_run_resumes_bit_identical(tmp_path):
    config = {**CONFIG, "epochs": 3, "augment": {"shift": 1, "rotate": 10, "elastic_alpha": 8}}
    whole_and_resumed(config, tmp_path)
    assert_same_weights(tmp_path / "whole", tmp_path / "cut")


def test_clipped_max_norm_run_resumes_bit_identical(tmp_path):
    whole_and_resumed({**CONFIG, "epochs": 3, "clip_grad_norm": 0.5, "max_norm": 1.0}, tmp_path)
    assert_same_weights(tmp_path / "whole", tmp_path / "cut")
    w = weights(tmp_path / "whole")["dense1.w"]
    assert np.sqrt((w * w).sum(axis=0)).max() <= 1.0 + 1e-6  # the limit held to the end


@pytest.mark.parametrize("stop_after", [1, 45, 100])  # batches: inside epochs 1, 2 and 3
def test_stop_mid_epoch_then_resume_is_bit_identical(tmp_path, uninterrupted, stop_after):
    batches = iter(range(stop_after))
    with pytest.raises(Interrupted, match="continue with: digitlab train --resume"):
        run(make_config(CONFIG), tmp_path, should_stop=lambda: next(batches, None) is None)
    header, _ = read_checkpoint(tmp_path)
    assert header["state"]["batch"] > 0 or header["state"]["epoch"] > 0
    run(make_config({}), tmp_path, resume=True)  # the config comes from the checkpoint
    assert_same_weights(uninterrupted, tmp_path)
    lines = [json.loads(x) for x in (tmp_path / "history.jsonl").read_text().splitlines()]
    whole = [json.loads(x) for x in (uninterrupted / "history.jsonl").read_text().splitlines()]
    assert [r["val_loss"] for r in lines] == [r["val_loss"] for r in whole]


def test_checkpoint_every_n_epochs(tmp_path):
    seen = []
    run(
        make_config({**CONFIG, "epochs": 4}), tmp_path, checkpoint_every=2,
        callbacks=[lambda record, model: seen.append(read_checkpoint(tmp_path)[0]["state"]["epoch"]
                                                     if (tmp_path / "checkpoint.npz").exists()
                                                     else None)],
    )  # fmt: skip
    assert seen == [None, None, 2, 2]  # callbacks run before the checkpoint of their epoch
    assert read_checkpoint(tmp_path)[0]["state"]["epoch"] == 4


def test_broken_checkpoint_is_a_one_line_error(tmp_path):
    (tmp_path / "checkpoint.npz").write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(ModelError, match="not a digitlab checkpoint") as caught:
        run(make_config({}), tmp_path, resume=True)
    assert "\n" not in str(caught.value)
    with pytest.raises(ModelError, match="no checkpoint here"):
        run(make_config({}), tmp_path / "nothing", resume=True)


def cli(*args):
    return [sys.executable, "-m", "digitlab.cli", "train", *args]


def checkpoint_epoch(folder):
    try:
        return read_checkpoint(folder)[0]["state"]["epoch"]
    except ModelError:
        return 0


@pytest.fixture
def slow_args(tmp_path):
    plugin = tmp_path / "slow.py"
    plugin.write_text(SLOW_PLUGIN)
    return ["--plugin", str(plugin), "--activation", "slow_tanh_test", "--dropout", "0.2",
            "--optimizer", "adam", "--lr", "0.003", "--epochs", "6", "--batch-size", "128",
            "--quiet"]  # fmt: skip


def test_kill_9_after_third_checkpoint_then_resume(tmp_path, slow_args):
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    subprocess.run(cli(*slow_args, "--out", str(whole)), check=True, capture_output=True)
    process = subprocess.Popen(
        cli(*slow_args, "--out", str(killed), "--checkpoint-every", "1"),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while checkpoint_epoch(killed) < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    process.kill()
    process.wait()
    assert 3 <= checkpoint_epoch(killed) < 6
    assert not (killed / "model.npz").exists()
    subprocess.run(cli("--resume", str(killed), "--quiet"), check=True, capture_output=True)
    assert_same_weights(whole, killed)


def test_sigint_saves_a_checkpoint_and_says_how_to_resume(tmp_path, slow_args):
    folder = tmp_path / "run"
    process = subprocess.Popen(
        cli(*slow_args, "--out", str(folder)), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    assert process.stdout is not None
    assert "train" in process.stdout.readline()  # the data line: training is about to start
    time.sleep(0.5)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130
    assert f"continue with: digitlab train --resume {folder}" in err
    assert "Traceback" not in err
    resumed = subprocess.run(
        cli("--resume", str(folder), "--quiet"), capture_output=True, text=True
    )
    assert resumed.returncode == 0, resumed.stderr
    assert (folder / "model.npz").exists()


def test_resume_refuses_other_flags(tmp_path):
    result = subprocess.run(cli("--resume", str(tmp_path), "--lr", "0.5"), capture_output=True,
                            text=True)  # fmt: skip
    assert result.returncode == 1
    assert "--resume continues with the run's own config" in result.stderr


def rewrite_the_old_way(folder, optimizer_header):
    """Write folder's checkpoint again as the code before the flat parameter vector wrote it:
    one array per parameter and state key ('optimizer/dense1.w/m'), the given optimizer table
    in the header (Adam: the step count per parameter name; the others: no count)."""
    from digitlab.lab.runs import write_npz

    header, arrays = read_checkpoint(folder)
    names = [key.removeprefix("model/") for key in arrays if key.startswith("model/")]
    old = {key: value for key, value in arrays.items() if not key.startswith("optimizer/")}
    for key in {key.rsplit("/", 1)[1] for key in arrays if key.startswith("optimizer/")}:
        for name in names:
            old[f"optimizer/{name}/{key}"] = np.array(arrays[f"optimizer/{name}/{key}"])
    header["optimizer"] = optimizer_header(header, names)
    old["checkpoint.json"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    write_npz(folder / "checkpoint.npz", old)


def test_a_checkpoint_written_the_old_way_resumes_bit_identically(tmp_path, uninterrupted):
    batches = iter(range(45))  # stops after batch 46
    with pytest.raises(Interrupted):
        run(make_config(CONFIG), tmp_path, should_stop=lambda: next(batches, None) is None)
    header, arrays = read_checkpoint(tmp_path)
    params = [key.removeprefix("model/") for key in arrays if key.startswith("model/")]
    assert header["optimizer"] == {"learning_rate": 0.003, "steps": dict.fromkeys(params, 46)}
    assert {k for k in arrays if k.startswith("optimizer/")} == {
        f"optimizer/{name}/{key}" for name in params for key in ("m", "v")
    }
    rewrite_the_old_way(tmp_path, lambda header, names: {
        "learning_rate": header["optimizer"]["learning_rate"],
        "steps": {name: 46 for name in names},
    })  # fmt: skip
    run(make_config({}), tmp_path, resume=True)
    assert_same_weights(uninterrupted, tmp_path)


def test_an_old_momentum_checkpoint_without_a_step_count_resumes(tmp_path):
    config = {**CONFIG, "optimizer": "nesterov", "epochs": 2}
    run(make_config(config), tmp_path / "whole")
    batches = iter(range(30))
    with pytest.raises(Interrupted):
        run(make_config(config), tmp_path / "cut", should_stop=lambda: next(batches, None) is None)
    rewrite_the_old_way(tmp_path / "cut", lambda header, names: {
        "learning_rate": header["optimizer"]["learning_rate"]
    })  # fmt: skip
    assert "steps" not in read_checkpoint(tmp_path / "cut")[0]["optimizer"]
    run(make_config({}), tmp_path / "cut", resume=True)
    assert_same_weights(tmp_path / "whole", tmp_path / "cut")


def test_optimizer_state_that_does_not_fit_the_model_is_a_one_line_error(tmp_path):
    batches = iter(range(3))
    with pytest.raises(Interrupted):
        run(make_config({**CONFIG, "epochs": 1}), tmp_path,
            should_stop=lambda: next(batches, None) is None)  # fmt: skip
    header, arrays = read_checkpoint(tmp_path)
    from digitlab.lab.runs import write_npz

    del arrays["optimizer/dense1.w/m"]
    arrays["checkpoint.json"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    write_npz(tmp_path / "checkpoint.npz", arrays)
    with pytest.raises(ModelError, match="optimizer state dense1.w/m missing") as caught:
        run(make_config({}), tmp_path, resume=True)
    assert "\n" not in str(caught.value)
