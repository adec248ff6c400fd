"""The file system: symlink loops, unreadable files and folders, a run folder deleted or made
read-only while training, paths with spaces and non-ASCII characters, two processes writing one
run folder or one sweep folder. Each works or ends with one line, and nothing written is lost."""

import contextlib
import fcntl
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from digitlab.errors import ConfigError, StorageError
from digitlab.lab.config import make_config
from digitlab.lab.experiment import run
from digitlab.lab.modelfile import load_model
from digitlab.lab.runs import LOCK_FILE, writing

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "bad_inputs.py"
spec = importlib.util.spec_from_file_location("bad_inputs", SCRIPT)
assert spec is not None and spec.loader is not None
bad_inputs = importlib.util.module_from_spec(spec)
sys.modules["bad_inputs"] = bad_inputs
spec.loader.exec_module(bad_inputs)


def one_line(code: object, err: str, expect: str) -> None:
    lines = err.strip().splitlines()
    assert code not in (0, None), err
    assert len(lines) == 1 and lines[0].startswith("digitlab: error:"), err
    assert expect in lines[0], lines[0]


def loop(folder: Path, name: str) -> Path:
    """A symlink loop: name -> name.b -> name."""
    (folder / name).symlink_to(folder / f"{name}.b")
    (folder / f"{name}.b").symlink_to(folder / name)
    return folder / name


@pytest.mark.parametrize("data", ["idx", "mnist"])
def test_data_dir_that_is_a_symlink_loop(cli, tmp_path: Path, data: str) -> None:
    looped = loop(tmp_path, "data")
    code, _, err = cli(["train", "--data", data, "--data-dir", str(looped), "--quiet",
                        "--out", str(tmp_path / "out")])  # fmt: skip
    one_line(code, err, f"{looped}: a broken symbolic link or a symlink loop")
    assert not (tmp_path / "out").exists()


def test_data_file_that_is_a_symlink_loop(cli, tmp_path: Path) -> None:
    folder = bad_inputs.tiny_idx_folder(tmp_path / "data")
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    loop(folder, "t10k-labels-idx1-ubyte.gz")
    code, _, err = cli(["train", "--data", "idx", "--data-dir", str(folder), "--quiet",
                        "--out", str(tmp_path / "out")])  # fmt: skip
    one_line(code, err, "t10k-labels-idx1-ubyte.gz (a broken symbolic link or a symlink loop)")


def test_out_that_is_a_symlink_loop(cli, tmp_path: Path) -> None:
    looped = loop(tmp_path, "out")
    code, _, err = cli(["train", "--out", str(looped), "--quiet"])
    one_line(code, err, "a broken symbolic link or a symlink loop")


def test_spaces_and_non_ascii_in_every_path(cli, tmp_path: Path) -> None:
    root = tmp_path / "mes données ✓"
    folder = bad_inputs.tiny_idx_folder(root / "dätä ördner 1")
    config = root / "réglages v2.toml"
    config.write_text("epochs = 2\nhidden_sizes = [8]\n")
    out = root / "rün öut"
    code, _, err = cli(["train", "--config", str(config), "--data", "idx", "--data-dir",
                        str(folder), "--out", str(out), "--quiet"])  # fmt: skip
    assert code == 0, err
    assert json.loads((out / "metrics.json").read_text())["test"]["n"] == 20
    assert (out / "report.html").stat().st_size > 10_000
    code, output, err = cli(["eval", str(out), "--data", "idx", "--data-dir", str(folder)])
    assert code == 0, err


# --- unreadable files and folders: root ignores permission bits, so run as nobody ---------------


def as_nobody(args: list[str]) -> subprocess.CompletedProcess:
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to run a command as another user")
    command = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
               sys.executable, "-m", "digitlab", *args]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=300, cwd="/")


def readable_tree(path: Path) -> None:
    """Let nobody reach `path` (pytest's tmp folders are 0700)."""
    for part in [*reversed(path.parents), path]:
        if part.is_dir() and str(part).startswith(("/tmp", os.environ.get("TMPDIR", "/tmp"))):
            part.chmod(part.stat().st_mode | 0o755)


@pytest.mark.parametrize("what", ["data file", "data folder", "config", "model"])
def test_unreadable_files_and_folders(tmp_path: Path, what: str) -> None:
    folder = bad_inputs.tiny_idx_folder(tmp_path / "data")
    readable_tree(folder)
    tmp_path.chmod(0o777)  # nobody may create the run folder here
    for path in folder.iterdir():
        path.chmod(0o644)
    out = tmp_path / "out"
    args = ["train", "--data", "idx", "--data-dir", str(folder), "--out", str(out), "--quiet"]
    if what == "data file":
        (folder / "t10k-images-idx3-ubyte.gz").chmod(0)
        expect = "t10k-images-idx3-ubyte.gz: cannot read: Permission denied"
    elif what == "data folder":
        folder.chmod(0)
        expect = f"{folder}: cannot read folder: Permission denied"
    elif what == "config":
        config = tmp_path / "run.toml"
        config.write_text("epochs = 1\n")
        config.chmod(0)
        args += ["--config", str(config)]
        expect = f"File {str(config)!r} is not readable"
    else:
        model = bad_inputs.saved_model(tmp_path) / "model.npz"
        readable_tree(model.parent)
        model.chmod(0)
        args = ["eval", str(model)]
        expect = f"{model}: cannot read: Permission denied"
    done = as_nobody(args)
    one_line(done.returncode, done.stderr, expect)
    assert "Traceback" not in done.stderr
    assert not out.exists()


# --- a run folder deleted or made read-only while training --------------------------------------


def test_run_folder_deleted_during_training(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr("tempfile.tempdir", None)
    folder = tmp_path / "run"
    folder.mkdir()

    def delete_after_epoch_two(record, model) -> None:
        if record["epoch"] == 2:
            shutil.rmtree(folder)

    config = make_config({"epochs": 4, "hidden_sizes": [8]})
    with pytest.raises(StorageError) as error:
        run(config, folder, callbacks=[delete_after_epoch_two])
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith(f"{folder / 'history.jsonl'}: cannot write: its folder {folder} ")
    rescued = Path(message.rsplit("the run so far is saved in ", 1)[1])
    assert rescued.parent == tmp_path
    assert len((rescued / "history.jsonl").read_text().splitlines()) == 2
    load_model(rescued)


READ_ONLY_DURING_TRAINING = """
import sys
from pathlib import Path
from digitlab.errors import StorageError
from digitlab.lab.config import make_config
from digitlab.lab.experiment import run
folder = Path(sys.argv[1])
def read_only_after_epoch_one(record, model):
    if record["epoch"] == 1:
        folder.chmod(0o555)
try:
    run(make_config({"epochs": 3, "hidden_sizes": [8]}), folder,
        callbacks=[read_only_after_epoch_one])
except StorageError as error:
    print(error)
"""


def test_run_folder_made_read_only_during_training(tmp_path: Path) -> None:
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to run as another user (root ignores modes)")
    readable_tree(tmp_path)
    folder = tmp_path / "run"
    folder.mkdir()
    shutil.chown(folder, 65534, 65534)
    command = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable,
               "-c", READ_ONLY_DURING_TRAINING, str(folder)]  # fmt: skip
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    tmp_path.chmod(0o777)
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    message = done.stdout.strip()
    assert "\n" not in message and done.stderr == "", done.stderr
    assert f"{folder}" in message and "cannot write: permission denied" in message
    rescued = Path(message.rsplit("the run so far is saved in ", 1)[1])
    assert len((rescued / "history.jsonl").read_text().splitlines()) == 1
    load_model(rescued)
    # what was written before is whole: the first epoch's line
    assert len((folder / "history.jsonl").read_text().splitlines()) == 1


# --- two processes on one run folder, two sweeps on one folder ----------------------------------


def test_two_trains_into_one_out(tmp_path: Path) -> None:
    out = tmp_path / "same"
    runs = [
        subprocess.Popen([sys.executable, "-m", "digitlab", "train", "--epochs", "3", "--seed",
                          str(seed), "--out", str(out), "--quiet", "--no-report"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        for seed in (1, 2)
    ]  # fmt: skip
    results = [(p.wait(timeout=300), p.stderr.read() if p.stderr else "") for p in runs]
    winners = [seed for seed, (code, _) in zip((1, 2), results, strict=True) if code == 0]
    assert len(winners) == 1, results
    (code, err), = [r for r in results if r[0] != 0]  # fmt: skip
    assert "folder is not empty" in err or "another digitlab process is writing" in err, err
    assert len(err.strip().splitlines()) == 1
    config = json.loads((out / "config.json").read_text())
    model, extra = load_model(out)
    assert config["seed"] == extra["config"]["seed"] == winners[0]
    assert len((out / "history.jsonl").read_text().splitlines()) == 3
    assert not (out / LOCK_FILE).exists()


def test_the_run_lock_refuses_a_second_writer(tmp_path: Path, cli) -> None:
    with writing(tmp_path, fresh=True):
        with pytest.raises(ConfigError, match="another digitlab process is writing"):
            with writing(tmp_path, fresh=True):
                pass
        with pytest.raises(ConfigError, match="another digitlab process is writing"):
            with writing(tmp_path, fresh=False):
                pass
    assert not (tmp_path / LOCK_FILE).exists()


def test_resume_beside_a_live_run_is_refused(tmp_path: Path, cli) -> None:
    folder = tmp_path / "run"
    code, _, err = cli(["train", "--epochs", "2", "--hidden", "8", "--checkpoint-every", "1",
                        "--out", str(folder), "--quiet", "--no-report"])  # fmt: skip
    assert code == 0, err
    before = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    with writing(folder, fresh=False):  # a live run holds the folder
        code, _, err = cli(["train", "--resume", str(folder), "--quiet"])
    one_line(code, err, "another digitlab process is writing to this run folder")
    assert {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()} == before


TWO_TRIALS = """
name = "two"
seeds = 2
[base]
data = "digits"
epochs = 1
hidden_sizes = [8]
"""


def test_a_second_sweep_on_a_busy_folder_is_refused(tmp_path: Path, cli) -> None:
    (tmp_path / "two.toml").write_text(TWO_TRIALS)
    out = tmp_path / "out"
    out.mkdir()
    with open(out / ".lock", "w") as held:  # what a running sweep holds
        fcntl.flock(held, fcntl.LOCK_EX)
        code, _, err = cli(["sweep", str(tmp_path / "two.toml"), "--out", str(out)])
    one_line(code, err, f"{out}: another sweep is running in this folder")
    assert not (out / "trials.jsonl").exists()


def test_two_sweeps_at_once_record_each_trial_once(tmp_path: Path) -> None:
    (tmp_path / "two.toml").write_text(TWO_TRIALS)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "digitlab", "sweep", str(tmp_path / "two.toml"), "--out",
               str(out), "--workers", "1"]  # fmt: skip
    sweeps = [subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True) for _ in range(2)]  # fmt: skip
    results = [(p.wait(timeout=300), p.stderr.read() if p.stderr else "") for p in sweeps]
    for code, err in results:
        assert code == 0 or "another sweep is running in this folder" in err, results
        with contextlib.suppress(IndexError):
            assert len(err.strip().splitlines()) <= 1
    records = [json.loads(line) for line in (out / "trials.jsonl").read_text().splitlines()]
    assert sorted(r["id"] for r in records) == sorted({r["id"] for r in records})
    assert len(records) == 2 and all(r["status"] == "done" for r in records)
