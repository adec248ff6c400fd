"""Interruptions through the real `digitlab train` command: SIGTERM, --resume, divergence.

A resumed run must leave the files an uninterrupted run leaves: the same weights, metrics,
history.jsonl and diagnostics.json. The one field left out of the comparison is each epoch's
`seconds`, wall-clock time, which differs between any two runs.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from digitlab.errors import ModelError
from digitlab.lab.checkpoint import read_checkpoint

# An activation that sends SIGTERM to its own process at its Nth call ($STOP_AT_CALL), or
# returns NaN from its Nth call on ($NAN_AT_CALL), so that a run is interrupted or diverges at a
# chosen batch; without the variables it is plain tanh.
SELF_STOPPING_PLUGIN = '''
import os
import signal
import numpy as np
from digitlab import activation

CALLS = [0]

@activation("tanh_stop_test", init="xavier")
def tanh_stop(z):
    """tanh; SIGTERM to this process at call $STOP_AT_CALL, NaN from call $NAN_AT_CALL on."""
    CALLS[0] += 1
    if CALLS[0] == int(os.environ.get("STOP_AT_CALL", "0")):
        os.kill(os.getpid(), signal.SIGTERM)
    if 0 < int(os.environ.get("NAN_AT_CALL", "0")) <= CALLS[0]:
        return np.full_like(z, np.nan)
    return np.tanh(z)

@tanh_stop.derivative
def _(z):
    t = np.tanh(z)
    return 1 - t * t
'''

SLOW_PLUGIN = '''
import time
import numpy as np
from digitlab import activation

@activation("slow_tanh_resume_test", init="xavier")
def slow_tanh(z):
    """tanh that sleeps 20 ms a call, so that the test can signal the run mid-way."""
    time.sleep(0.02)
    return np.tanh(z)

@slow_tanh.derivative
def _(z):
    t = np.tanh(z)
    return 1 - t * t
'''

WALL_CLOCK = {"seconds"}


def train(*args: str, stop_at: int | None = None, nan_at: int | None = None, timeout=120):
    env = {k: v for k, v in os.environ.items() if k not in ("STOP_AT_CALL", "NAN_AT_CALL")}
    if stop_at is not None:
        env["STOP_AT_CALL"] = str(stop_at)
    if nan_at is not None:
        env["NAN_AT_CALL"] = str(nan_at)
    return subprocess.run(
        [sys.executable, "-m", "digitlab.cli", "train", *args, "--quiet", "--no-report"],
        capture_output=True, text=True, env=env, timeout=timeout, check=False,
    )  # fmt: skip


def history(folder: Path) -> list[dict]:
    lines = (folder / "history.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k not in WALL_CLOCK} for line in lines]


def assert_same_run(whole: Path, resumed: Path) -> None:
    assert history(resumed) == history(whole)
    for name in ("diagnostics.json", "metrics.json", "config.json"):
        assert (resumed / name).read_text() == (whole / name).read_text(), name
    with np.load(whole / "model.npz") as a, np.load(resumed / "model.npz") as b:
        assert a.files == b.files
        for key in a.files:
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    with np.load(whole / "predictions.npz") as a, np.load(resumed / "predictions.npz") as b:
        for key in a.files:
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)


@pytest.fixture(scope="module")
def self_stopping(tmp_path_factory):
    """The plugin, the flags, and the uninterrupted run they make (4 epochs of 21 batches)."""
    folder = tmp_path_factory.mktemp("self-stopping")
    plugin = folder / "stopper.py"
    plugin.write_text(SELF_STOPPING_PLUGIN)
    flags = ["--plugin", str(plugin), "--activation", "tanh_stop_test", "--hidden", "32",
             "--optimizer", "adam", "--lr", "0.01", "--dropout", "0.1", "--batch-size", "64",
             "--epochs", "4", "--patience", "3", "--checkpoint-every", "1"]  # fmt: skip
    whole = folder / "whole"
    done = train(*flags, "--out", str(whole))
    assert done.returncode == 0, done.stderr
    return flags, whole


# 1,293 training images in batches of 64: 21 batches an epoch, then one validation forward pass
# (22 calls an epoch). Call 21 is epoch 1's last batch, so the stop comes before its record is
# written; call 30 is inside epoch 2; call 66 is epoch 3's validation pass, so training stops
# after the first batch of epoch 4.
@pytest.mark.parametrize("stop_at", [21, 30, 66])
def test_sigterm_at_a_batch_then_resume_leaves_the_uninterrupted_files(
    tmp_path, self_stopping, stop_at
):
    flags, whole = self_stopping
    folder = tmp_path / "run"
    stopped = train(*flags, "--out", str(folder), stop_at=stop_at)
    assert stopped.returncode == 128 + signal.SIGTERM, stopped.stderr
    assert f"continue with: digitlab train --resume {folder}" in stopped.stderr
    assert "Traceback" not in stopped.stderr
    assert not (folder / "model.npz").exists()
    state = read_checkpoint(folder)[0]["state"]
    assert state["batch"] > 0  # it stopped inside an epoch
    resumed = train("--resume", str(folder))
    assert resumed.returncode == 0, resumed.stderr
    assert_same_run(whole, folder)


def checkpoint_epoch(folder: Path) -> int:
    try:
        return read_checkpoint(folder)[0]["state"]["epoch"]
    except ModelError:
        return 0


def test_sigterm_from_outside_stops_at_a_batch_with_a_checkpoint_and_resume_finishes(tmp_path):
    plugin = tmp_path / "slow.py"
    plugin.write_text(SLOW_PLUGIN)
    flags = ["--plugin", str(plugin), "--activation", "slow_tanh_resume_test", "--hidden", "16",
             "--batch-size", "128", "--epochs", "5", "--checkpoint-every", "1"]  # fmt: skip
    whole, folder = tmp_path / "whole", tmp_path / "run"
    assert train(*flags, "--out", str(whole)).returncode == 0
    process = subprocess.Popen(
        [sys.executable, "-m", "digitlab.cli", "train", *flags, "--out", str(folder), "--quiet",
         "--no-report"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while checkpoint_epoch(folder) < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert process.poll() is None, "the run ended before it could be signalled"
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=10)  # one batch takes well under a second
    assert process.returncode == 128 + signal.SIGTERM
    assert err.splitlines() == [
        "digitlab: SIGTERM: stopping after this batch",
        err.splitlines()[-1],
    ]
    assert err.splitlines()[-1].startswith("digitlab: stopped at epoch ")
    assert err.splitlines()[-1].endswith(f"continue with: digitlab train --resume {folder}")
    assert not (folder / "model.npz").exists()
    assert 1 <= checkpoint_epoch(folder) < 5
    resumed = train("--resume", str(folder))
    assert resumed.returncode == 0, resumed.stderr
    assert_same_run(whole, folder)


def test_a_diverged_run_keeps_the_last_good_epoch_in_its_folder(tmp_path, self_stopping):
    flags, _ = self_stopping
    plugin = flags[flags.index("--plugin") + 1]
    flags = ["--plugin", plugin, "--activation", "tanh_stop_test", "--hidden", "32",
             "--optimizer", "adam", "--lr", "0.01", "--dropout", "0.1",
             "--batch-size", "64"]  # fmt: skip
    two_epochs, diverged = tmp_path / "two", tmp_path / "diverged"
    assert train(*flags, "--epochs", "2", "--out", str(two_epochs)).returncode == 0
    # NaN from call 50 on: epoch 3's 6th batch (22 calls an epoch, see above)
    failed = train(*flags, "--epochs", "4", "--out", str(diverged), nan_at=50)
    assert failed.returncode == 1
    lines = failed.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("digitlab: error: non-finite loss at epoch 3")
    assert "weights of epoch 2 kept" in lines[0]
    assert lines[0].endswith(f"they are saved in {diverged / 'model.npz'}")
    assert sorted(p.name for p in diverged.iterdir()) == [
        "config.json", "diagnostics.json", "history.jsonl", "model.npz", "status.json"
    ]  # fmt: skip
    status = json.loads((diverged / "status.json").read_text())
    assert status["state"] == "failed" and "non-finite loss at epoch 3" in status["error"]
    assert history(diverged) == history(two_epochs)
    with np.load(two_epochs / "model.npz") as a, np.load(diverged / "model.npz") as b:
        for key in a.files:
            if key != "model.json":
                np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    evaluated = subprocess.run(
        [sys.executable, "-m", "digitlab.cli", "eval", str(diverged)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert evaluated.returncode == 0, evaluated.stderr
