"""A full disk, a file-size limit: each write that fails is one line naming the file, leaves
the previous file byte-identical and no temporary file behind."""

import json
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from digitlab.lab.checkpoint import read_checkpoint
from digitlab.lab.modelfile import load_model


def file_size_limit(limit: int):
    def apply() -> None:  # in the child: writes past `limit` bytes fail with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)

    return apply


def python(code: str, limit: int) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          preexec_fn=file_size_limit(limit), timeout=120)  # fmt: skip


def digitlab(
    args: list[str], limit: int | None = None, tmp: Path | None = None
) -> subprocess.CompletedProcess:
    def apply() -> None:  # no SIGXFSZ handling here: the CLI must ignore the signal itself
        if limit is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    env = {**os.environ, "TMPDIR": str(tmp)} if tmp else None
    return subprocess.run([sys.executable, "-m", "digitlab", *args], capture_output=True,
                          text=True, preexec_fn=apply, timeout=300, env=env)  # fmt: skip


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def temporary_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.endswith(".tmp") or ".partial" in p.name]


def test_atomic_write_over_the_limit_keeps_the_previous_file(tmp_path: Path) -> None:
    target = tmp_path / "metrics.json"
    target.write_bytes(b"old" * 100)
    done = python(f"from digitlab.lab.runs import write_bytes\n"
                  f"write_bytes({str(target)!r}, bytes(5000))", limit=1000)  # fmt: skip
    assert done.returncode != 0
    assert done.stderr.strip().splitlines()[-1] == (
        f"digitlab.errors.StorageError: {target}: cannot write: file too large (over the "
        "file-size limit, ulimit -f); the previous file is unchanged"
    )
    assert target.read_bytes() == b"old" * 100
    assert sorted(tmp_path.iterdir()) == [target]


def test_append_over_the_limit_leaves_the_file_as_it_was(tmp_path: Path) -> None:
    log = tmp_path / "trials.jsonl"
    log.write_bytes(b'{"id": "a"}\n' * 70)  # 840 bytes; the next line would cross 1000
    before = log.read_bytes()
    done = python(f"from digitlab.lab.sweep.trials import TrialLog\nfrom pathlib import Path\n"
                  f"TrialLog(Path({str(log)!r})).append({{'id': 'b', 'pad': 'x' * 300}})",
                  limit=1000)  # fmt: skip
    assert "StorageError" in done.stderr and "file too large" in done.stderr
    assert log.read_bytes() == before
    assert sorted(tmp_path.iterdir()) == [log]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("full-disk") / "run"
    done = digitlab(["train", "--epochs", "2", "--hidden", "8", "--checkpoint-every", "1",
                     "--out", str(run), "--quiet"])  # fmt: skip
    assert done.returncode == 0, done.stderr
    return run


def test_report_over_the_limit_keeps_the_run_byte_identical(trained: Path) -> None:
    before = snapshot(trained)
    done = digitlab(["report", str(trained)], limit=20_000)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr
    assert lines[0].startswith(f"digitlab: error: {trained}")
    assert "cannot write: file too large" in lines[0]
    assert snapshot(trained) == before
    assert temporary_files(trained) == []


def test_training_over_the_limit_is_one_line_and_keeps_the_epochs(tmp_path: Path) -> None:
    run = tmp_path / "run"
    done = digitlab(["train", "--epochs", "2", "--hidden", "8", "--out", str(run), "--quiet",
                     "--no-report"], limit=6_000, tmp=tmp_path)  # fmt: skip
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert "cannot write: file too large" in lines[0]
    assert temporary_files(run) == []
    # the two epochs trained are saved elsewhere, and the message says where
    rescued = Path(lines[0].rsplit("the run so far is saved in ", 1)[1])
    assert rescued.parent == tmp_path
    model, extra = load_model(rescued)
    assert len((rescued / "history.jsonl").read_text().splitlines()) == 2
    assert extra["config"]["hidden_sizes"] == [8]
    for name in ("config.json", "status.json"):  # whole files, as before the failure
        json.loads((run / name).read_text())


@pytest.fixture
def small_tmpfs(tmp_path: Path):
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=300k", "tmpfs", str(mount)],
                          capture_output=True, text=True)  # fmt: skip
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({done.stderr.strip()})")
    yield mount
    subprocess.run(["umount", str(mount)], check=False)


def test_training_onto_a_full_tmpfs(small_tmpfs: Path) -> None:
    run = small_tmpfs / "run"
    done = digitlab(["train", "--epochs", "3", "--hidden", "64", "--checkpoint-every", "1",
                     "--optimizer", "adam", "--out", str(run), "--quiet"])  # fmt: skip
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert "cannot write: no space left on the device" in lines[0]
    assert temporary_files(run) == []
    for path in run.glob("*.json"):
        json.loads(path.read_text())  # whole
    if (run / "checkpoint.npz").exists():
        read_checkpoint(run)  # the last whole checkpoint
    if (run / "model.npz").exists():
        load_model(run)
