"""`digitlab studio`: loopback and a free port by default, a token for any other host."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import uvicorn
from click.testing import CliRunner
from starlette.testclient import TestClient

from digitlab.errors import ConfigError
from digitlab.studio.command import studio_command


@pytest.fixture
def served_calls(monkeypatch):
    calls = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append((app, kw)))
    return calls


def test_default_is_loopback_a_free_port_and_no_token(served_calls, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(studio_command, [])
    assert result.exit_code == 0, result.output
    ((app, options),) = served_calls
    assert options["host"] == "127.0.0.1" and options["port"] > 0
    assert f"http://127.0.0.1:{options['port']}/ " in result.output
    assert "token" not in result.output
    assert app.state.studio.folders == [Path("runs"), Path("sweeps")]


def test_another_host_gets_a_random_token_printed_in_the_url(served_calls, tmp_path):
    result = CliRunner().invoke(
        studio_command, [str(tmp_path), "--host", "0.0.0.0", "--port", "8123"]
    )
    assert result.exit_code == 0, result.output
    token = re.search(r"\?token=(\S+)", result.output).group(1)
    assert len(token) >= 16
    ((app, options),) = served_calls
    assert (options["host"], options["port"]) == ("0.0.0.0", 8123)
    client = TestClient(app, base_url="http://10.0.0.2:8123")
    assert client.get("/api/runs").status_code == 401
    assert client.get(f"/api/runs?token={token}").status_code == 200


def test_a_given_token_is_used_and_checked(served_calls, tmp_path):
    result = CliRunner().invoke(studio_command, [str(tmp_path), "--token", "correct-horse"])
    assert result.exit_code == 0 and "?token=correct-horse" in result.output
    result = CliRunner().invoke(studio_command, [str(tmp_path), "--token", "short"])
    assert isinstance(result.exception, ConfigError)


def test_a_file_is_not_a_folder_to_serve(served_calls, tmp_path):
    (tmp_path / "f").write_text("x")
    result = CliRunner().invoke(studio_command, [str(tmp_path / "f")])
    assert result.exit_code != 0 and not served_calls
