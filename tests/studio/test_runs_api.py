"""The run routes: the runs list, one run, the event stream's generator, recipes."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

from digitlab.lab.runs import append_jsonl, now_iso, write_json
from digitlab.studio import runs_api


def test_runs_list_describes_a_finished_run(client):
    (row,) = client.get("/api/runs").json()["runs"]
    assert row["id"] == "0/done" and row["name"] == "done" and row["kind"] == "run"
    assert row["status"] == "finished"
    assert row["dataset"] == "digits" and row["model"] == "8 relu"
    assert row["epoch"] == row["epochs"] == 2
    assert 0 < row["best_val_accuracy"] <= 1
    low, high = row["test_interval"]
    assert low < row["test_accuracy"] < high
    assert row["seconds"] > 0 and row["started"] <= row["updated"]


def test_runs_list_shows_running_died_and_sweeps(client, served, fake_run):
    import os

    fake_run(served[0] / "live", "running", os.getpid())
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    fake_run(served[0] / "nested" / "gone", "running", gone.pid)
    fake_run(served[1] / "halted", "stopped", os.getpid())
    sweep = served[1] / "lr"
    (sweep / "trials").mkdir(parents=True)
    write_json(
        sweep / "sweep.json", {"name": "lr", "base": {"data": "digits"}, "trials": ["a", "b"]}
    )
    append_jsonl(sweep / "trials.jsonl", {"id": "a", "status": "done", "val_accuracy": 0.9})
    fake_run(sweep / "trials" / "a", "finished", os.getpid())
    rows = {row["id"]: row for row in client.get("/api/runs").json()["runs"]}
    assert rows["0/live"]["status"] == "running"
    assert rows["0/nested/gone"]["status"] == "died"
    assert rows["1/halted"]["status"] == "stopped"
    assert rows["1/lr"]["kind"] == "sweep" and rows["1/lr"]["status"] == "stopped"
    assert (rows["1/lr"]["epoch"], rows["1/lr"]["epochs"]) == (1, 2)
    assert rows["1/lr"]["best_val_accuracy"] == 0.9
    assert rows["1/lr/trials/a"]["kind"] == "run"
    details = client.get("/api/run?run=1/lr").json()
    assert details["kind"] == "sweep" and details["trials"][0]["id"] == "a"


def test_one_run_has_everything_the_page_draws(client):
    data = client.get("/api/run?run=0/done").json()
    assert data["status"]["state"] == "finished"
    assert data["config"]["hidden_sizes"] == [8]
    assert [row["epoch"] for row in data["history"]] == [1, 2]
    assert "train_loss" in data["history"][0] and "dense1.w.norm" in data["history"][0]
    assert isinstance(data["diagnostics"], list)
    assert data["metrics"]["test"]["n"] == 359
    confusion = data["confusion"]
    assert len(confusion) == 10 and sum(map(sum, confusion)) == 359
    examples = data["examples"]
    assert examples["shape"] == [8, 8]
    first = examples["hardest"][0]
    assert len(first["pixels"]) == 64 and 0 <= min(first["pixels"]) <= max(first["pixels"]) <= 255
    assert data["report"] is False and data["checkpoint"] is False


def test_non_finite_numbers_reach_the_page_as_null(client, served):
    folder = served[0] / "done"
    append_jsonl(folder / "history.jsonl", {"epoch": 3, "train_loss": float("nan")})
    data = client.get("/api/run?run=0/done").json()
    assert data["history"][-1]["train_loss"] is None


def test_a_torn_last_history_line_is_skipped(client, served, fake_run):
    import os

    folder = fake_run(served[0] / "torn", "running", os.getpid())
    with open(folder / "history.jsonl", "a") as handle:
        handle.write('{"epoch": 3, "train_lo')
    data = client.get("/api/run?run=0/torn").json()
    assert len(data["history"]) == 2


class FakeRequest:
    """Enough of a Request for the event generator: disconnects after `polls` checks."""

    def __init__(self, polls: int) -> None:
        self.polls = polls

    async def is_disconnected(self) -> bool:
        self.polls -= 1
        return self.polls < 0


def collect(folder, after, polls, during=None):
    """The events run_events yields over `polls` polls; `during(i)` runs before poll i."""

    async def main():
        request = FakeRequest(polls)
        events = []
        count = 0
        async for chunk in runs_api.run_events(request, folder, after):
            text = chunk.decode()
            if text.startswith("event: "):
                head, data = text.split("\n")[:2]
                events.append((head[7:], json.loads(data[6:])))
            count += 1
            if during is not None:
                during(count)
        return events

    return asyncio.run(main())


def test_the_event_stream_sends_new_lines_and_status_changes(served, fake_run, monkeypatch):
    import os

    monkeypatch.setattr(runs_api, "POLL", 0.01)
    folder = fake_run(served[0] / "live", "running", os.getpid(), lines=2)
    done = []

    def during(count):
        if count == 3 and not done:  # after the first status event: the trainer moves on
            append_jsonl(folder / "history.jsonl", {"epoch": 3, "train_loss": 0.2})
            with open(folder / "history.jsonl", "a") as handle:
                handle.write('{"epoch": 4, "tra')  # torn: not sent
            status = json.loads((folder / "status.json").read_text())
            status.update(state="finished", epoch=3, updated=now_iso())
            (folder / "status.json").write_text(json.dumps(status))
            done.append(True)

    events = collect(folder, after=1, polls=20, during=during)
    history = [data for kind, data in events if kind == "history"]
    assert [h["index"] for h in history] == [1, 2]
    assert history[1]["record"]["epoch"] == 3 and isinstance(history[1]["diagnostics"], list)
    states = [data["state"] for kind, data in events if kind == "status"]
    assert states == ["running", "finished"]


def test_recipes_and_choices(client):
    recipes = {r["name"]: r for r in client.get("/api/recipes").json()["recipes"]}
    assert recipes["digits_32_16"]["values"]["hidden"] == [32, 16]
    assert "fastai" in recipes["digits_32_16"]["description"]
    assert all(not r["values"].get("plugins") for r in recipes.values())
    choices = client.get("/api/choices").json()
    assert "relu" in choices["activations"] and "adam" in choices["optimizers"]
    assert choices["defaults"]["epochs"] == 50


def test_the_page_and_its_assets_are_served(client):
    page = client.get("/")
    assert page.status_code == 200
    for asset in ("studio.css", "studio.js", "draw.js", "inside.js", "compare.js"):
        assert f"/static/{asset}" in page.text
    for asset in ("studio.css", "studio.js"):
        assert client.get(f"/static/{asset}").status_code == 200
    assert "window.Studio" in client.get("/static/studio.js").text
