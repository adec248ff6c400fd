"""The live files a run keeps while it trains: history.jsonl line by line, status.json."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest

from digitlab.lab.config import make_config
from digitlab.lab.experiment import Interrupted, run
from digitlab.lab.runs import LiveRun, read_history, read_status

CONFIG = {"epochs": 3, "hidden": [8], "seed": 2}


def test_each_epoch_appends_a_line_and_updates_the_status(tmp_path):
    folder = tmp_path / "run"
    seen = []

    def watch(record, model):  # runs before the live writer: the line of this epoch is next
        seen.append((len(read_history(folder)), json.loads((folder / "status.json").read_text())))

    run(make_config(CONFIG), folder, callbacks=[watch])
    assert [lines for lines, _ in seen] == [0, 1, 2]
    assert [status["epoch"] for _, status in seen] == [0, 1, 2]
    assert all(s["state"] == "running" and s["pid"] == os.getpid() for _, s in seen)
    status = read_status(folder)
    assert status["state"] == "finished" and status["epoch"] == status["epochs"] == 3
    assert status["error"] is None and status["started"] <= status["updated"]
    assert status["host"] == socket.gethostname()
    assert len(read_history(folder)) == 3


def test_a_stopped_run_says_stopped_with_the_line_that_says_how_to_go_on(tmp_path):
    folder = tmp_path / "run"
    epochs = []
    with pytest.raises(Interrupted):
        run(
            make_config(CONFIG),
            folder,
            callbacks=[lambda record, model: epochs.append(record["epoch"])],
            should_stop=lambda: len(epochs) >= 1,
        )
    status = read_status(folder)
    assert status["state"] == "stopped" and "--resume" in status["error"]
    assert status["epoch"] == 1 and len(read_history(folder)) == 1
    run(make_config(CONFIG), folder, resume=True)
    assert read_status(folder)["state"] == "finished"
    assert [r["epoch"] for r in read_history(folder)] == [1, 2, 3]


def test_a_run_failing_after_an_epoch_keeps_its_history_and_says_why(tmp_path):
    folder = tmp_path / "run"

    def fail_in_epoch_two(record, model):
        if record["epoch"] == 2:
            raise RuntimeError("first line\nthe last error line")

    with pytest.raises(RuntimeError):
        run(make_config(CONFIG), folder, callbacks=[fail_in_epoch_two])
    status = read_status(folder)
    assert status["state"] == "failed" and status["error"] == "the last error line"
    assert len(read_history(folder)) == 1


def test_a_dead_pid_reads_as_died_and_a_foreign_host_only_when_stale(tmp_path):
    live = LiveRun(tmp_path, 5)
    live.start([])
    assert read_status(tmp_path)["state"] == "running"
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    status = json.loads((tmp_path / "status.json").read_text())
    (tmp_path / "status.json").write_text(json.dumps({**status, "pid": child.pid}))
    assert read_status(tmp_path)["state"] == "died"
    fresh = {**status, "pid": child.pid, "host": "elsewhere"}
    (tmp_path / "status.json").write_text(json.dumps(fresh))
    assert read_status(tmp_path)["state"] == "running"  # cannot see the process: trust it
    old = (datetime.now(UTC) - timedelta(days=2)).isoformat()
    (tmp_path / "status.json").write_text(json.dumps({**fresh, "updated": old}))
    assert read_status(tmp_path)["state"] == "died"


def test_an_unreaped_killed_child_reads_as_died(tmp_path):
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])
    live = LiveRun(tmp_path, 5)
    live.status["pid"] = zombie.pid
    live.start([])
    try:
        for _ in range(200):  # until it has exited (a zombie: not yet waited for)
            if read_status(tmp_path)["state"] == "died":
                break
            time.sleep(0.05)
        assert read_status(tmp_path)["state"] == "died"
    finally:
        zombie.wait()


@pytest.mark.parametrize("text", ["", "{", "[1]", '{"state": "sleeping"}'])
def test_a_malformed_status_is_no_status(tmp_path, text):
    (tmp_path / "status.json").write_text(text)
    assert read_status(tmp_path) is None
