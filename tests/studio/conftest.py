"""Studio fixtures: served folders holding a finished run, and a TestClient on the loopback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from digitlab.lab.config import make_config
from digitlab.lab.experiment import run
from digitlab.lab.runs import now_iso, write_json, write_jsonl
from digitlab.studio.app import create_app

ORIGIN = "http://127.0.0.1:8765"


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real two-epoch run on the 8x8 digits (copied into each test's folder by `served`)."""
    folder = tmp_path_factory.mktemp("finished") / "done"
    run(make_config({"epochs": 2, "hidden": [8], "seed": 1}), folder)
    return folder


def fake_run(folder: Path, state: str, pid: int, epochs: int = 5, lines: int = 2) -> Path:
    """A run folder with a status and `lines` history lines, as a live trainer leaves it."""
    folder.mkdir(parents=True)
    write_json(folder / "config.json", {"data": "digits", "hidden": [4], "epochs": epochs})
    rows = [
        {"epoch": e + 1, "train_loss": 1.0 / (e + 1), "val_accuracy": 0.5 + e / 10}
        for e in range(lines)
    ]
    write_jsonl(folder / "history.jsonl", rows)
    status = {
        "state": state,
        "pid": pid,
        "epoch": lines,
        "epochs": epochs,
        "started": now_iso(),
        "updated": now_iso(),
        "error": None,
    }
    (folder / "status.json").write_text(json.dumps(status))
    return folder


@pytest.fixture
def served(tmp_path: Path, finished_run: Path) -> list[Path]:
    """Two served folders: runs/ (a finished run, a copy) and sweeps/ (empty)."""
    import shutil

    runs, sweeps = tmp_path / "runs", tmp_path / "sweeps"
    shutil.copytree(finished_run, runs / "done")
    sweeps.mkdir()
    return [runs, sweeps]


@pytest.fixture
def app(served: list[Path]):
    return create_app(served)


@pytest.fixture
def client(app) -> TestClient:
    return TestClient(app, base_url=ORIGIN)


@pytest.fixture
def post_headers(app) -> dict[str, str]:
    """What the page sends with a POST: its token and its own origin."""
    return {"X-Digitlab-Token": app.state.page_token, "Origin": ORIGIN}


@pytest.fixture(name="fake_run")
def fake_run_fixture():
    return fake_run


@pytest.fixture(name="origin")
def origin_fixture() -> str:
    return ORIGIN
