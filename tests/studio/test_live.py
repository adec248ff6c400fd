"""Live run files end to end: a real `digitlab train` child process, watched while it runs,
killed with SIGKILL (the studio says died), and started, stopped and resumed from the API."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn
from click.testing import CliRunner

from digitlab.cli import app as cli
from digitlab.lab.runs import process_alive, read_history, read_status
from digitlab.report.html import build_report
from digitlab.studio.command import free_port
from digitlab.studio.runs_api import train_command

LONG = ["--data", "digits", "--hidden", "64", "--epochs", "400", "--quiet", "--no-report"]


def wait_for(what: str, check: Callable[[], bool], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def lines(folder: Path) -> int:
    try:
        return len(read_history(folder))
    except Exception:  # not written yet  # noqa: BLE001
        return 0


def state(folder: Path) -> str | None:
    status = read_status(folder)
    return status["state"] if status else None


def running_epochs(folder: Path, n: int) -> bool:
    """Running, with at least n epochs in both the history and the status (written after)."""
    status = read_status(folder)
    return bool(status and status["state"] == "running" and status["epoch"] >= n) and (
        lines(folder) >= n
    )


@contextmanager
def serving(app) -> Iterator[str]:
    """The app on a real uvicorn server in a thread; yields its origin."""
    port = free_port("127.0.0.1")
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=1
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for("the server", lambda: server.started, 30)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def read_events(url: str, wanted: Callable[[list[tuple[str, dict]]], bool]) -> list:
    """SSE events from url until wanted(events) holds (or 60 s pass)."""
    events: list[tuple[str, dict]] = []
    kind = None
    with httpx.stream("GET", url, timeout=60) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: ") and kind:
                events.append((kind, json.loads(line[6:])))
                if wanted(events):
                    break
    return events


@pytest.fixture
def child_cleanup():
    """Kill (by pid) any training process a test left running."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_history_grows_live_and_a_killed_run_shows_as_died(served, app, client, child_cleanup):
    folder = served[0] / "live"
    child = subprocess.Popen(
        train_command(*LONG, "--out", str(folder)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    child_cleanup.append(child.pid)
    wait_for("two epochs", lambda: running_epochs(folder, 2))
    status = json.loads((folder / "status.json").read_text())
    assert status["pid"] == child.pid and status["epochs"] == 400
    assert 2 <= status["epoch"] <= 400 and status["error"] is None
    rows = {r["id"]: r for r in client.get("/api/runs").json()["runs"]}
    assert rows["0/live"]["status"] == "running" and rows["0/live"]["epochs"] == 400

    # the event stream of a real server sends the lines so far and the status
    with serving(app) as origin:
        events = read_events(
            f"{origin}/api/events?run=0/live",
            lambda ev: (
                sum(k == "history" for k, _ in ev) >= 2 and any(k == "status" for k, _ in ev)
            ),
        )
    indices = [data["index"] for kind, data in events if kind == "history"]
    assert indices[:2] == [0, 1]
    assert next(data for kind, data in events if kind == "status")["state"] == "running"

    # diagnose and report work on the run while it goes
    result = CliRunner().invoke(cli, ["diagnose", str(folder)])
    assert result.exit_code == 0, result.output
    assert "epochs" in result.output
    report = build_report(folder).read_text()
    assert "A snapshot: the run is running" in report and 'id="diagnostics"' in report

    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    rows = {r["id"]: r for r in client.get("/api/runs").json()["runs"]}
    assert rows["0/live"]["status"] == "died"
    assert client.get("/api/run?run=0/live").json()["status"]["state"] == "died"
    result = CliRunner().invoke(cli, ["diagnose", str(folder)])
    assert result.exit_code == 0, result.output
    assert "A snapshot: the run is died" in build_report(folder).read_text()


def test_start_stop_and_resume_from_the_api(served, client, post_headers, child_cleanup):
    body = {"config": {"data": "digits", "hidden": [64], "epochs": 400, "seed": 3}}
    started = client.post("/api/train", json=body, headers=post_headers)
    assert started.status_code == 200, started.text
    run_id, pid = started.json()["run"], started.json()["pid"]
    child_cleanup.append(pid)
    folder = served[0] / run_id.partition("/")[2]
    assert folder.parent == served[0]
    wait_for("two epochs", lambda: running_epochs(folder, 2))
    assert os.getsid(pid) != os.getsid(0)  # its own session: the page and server may go

    stopped = client.post(f"/api/stop?run={run_id}", headers=post_headers)
    assert stopped.status_code == 200, stopped.text
    wait_for("the stop", lambda: state(folder) == "stopped", 60)
    assert (folder / "checkpoint.npz").is_file()
    assert "checkpoint saved" in read_status(folder)["error"]
    again = client.post(f"/api/stop?run={run_id}", headers=post_headers)
    assert again.status_code == 409
    before = lines(folder)

    resumed = client.post(f"/api/resume?run={run_id}", headers=post_headers)
    assert resumed.status_code == 200, resumed.text
    child_cleanup.append(resumed.json()["pid"])
    wait_for("more epochs", lambda: running_epochs(folder, before + 2))
    assert client.post(f"/api/resume?run={run_id}", headers=post_headers).status_code == 409
    client.post(f"/api/stop?run={run_id}", headers=post_headers)
    wait_for("the second stop", lambda: state(folder) == "stopped", 60)
    epochs = [int(r["epoch"]) for r in read_history(folder)]
    assert epochs == list(range(1, len(epochs) + 1))  # resumed where it stopped, no gap
    assert (served[0] / ".studio" / f"{folder.name}.log").is_file()
    assert "0/.studio" not in {r["id"] for r in client.get("/api/runs").json()["runs"]}


def test_a_run_that_fails_before_its_first_epoch_shows_its_error(served, client, post_headers):
    """Bad input found while loading data: the trainer leaves no folder, the page the reason."""
    missing = served[0].parent / "no-such-idx-folder"
    body = {"config": {"data": "idx", "data_dir": str(missing), "epochs": 2}}
    started = client.post("/api/train", json=body, headers=post_headers)
    assert started.status_code == 200, started.text
    run_id, pid = started.json()["run"], started.json()["pid"]
    folder = served[0] / run_id.partition("/")[2]
    wait_for("the trainer to exit", lambda: not process_alive(pid), 120)
    assert not folder.exists()
    data = client.get(f"/api/run?run={run_id}").json()
    assert data["status"]["state"] == "failed"
    assert "no-such-idx-folder" in data["status"]["error"]
    assert data["config"]["data"] == "idx"
