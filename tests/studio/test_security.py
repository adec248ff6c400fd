"""The guard and the path resolver: traversal in every form, tokens, origins, body sizes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from digitlab.errors import ConfigError
from digitlab.lab.config import make_config
from digitlab.studio.app import create_app
from digitlab.studio.paths import NotFound, resolve_file, resolve_run
from digitlab.studio.security import MAX_BODY

ORIGIN = "http://127.0.0.1:8765"  # the clients' base URL (conftest)


TRAVERSALS = [
    "0/..",
    "0/../..",
    "0/../sweeps",
    "0/done/../..",
    "0/done/../../runs/done",
    "0/./../..",
    "0//etc",
    "0/" + "/etc/passwd",
    "/etc/passwd",
    "0/..\\..",
    "0/done\x00",
    "2/done",
    "-1/done",
    "x/done",
    "00/../done",
    "0",
    "",
    "0/%2e%2e",  # arrives decoded once: a literal name that does not exist
    "0/" + "a" * 2000,
]


@pytest.mark.parametrize("run_id", TRAVERSALS)
def test_resolve_run_refuses_everything_outside(served, run_id):
    with pytest.raises(NotFound):
        resolve_run(served, run_id)


def test_resolve_run_accepts_a_run_and_the_folder_itself(served):
    assert resolve_run(served, "0/done") == (served[0] / "done").resolve()
    assert resolve_run(served, "0/") == served[0].resolve()
    assert resolve_run(served, "0/./done/") == (served[0] / "done").resolve()


def test_symlinks_leading_out_are_refused_and_inside_ones_followed(served, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.png").write_bytes(b"secret")
    os.symlink(outside, served[0] / "escape")
    os.symlink(served[0] / "done", served[1] / "alias")  # into another served folder
    os.symlink(served[0] / "done", served[0] / "inside")
    with pytest.raises(NotFound):
        resolve_run(served, "0/escape")
    with pytest.raises(NotFound):
        resolve_run(served, "1/alias")
    assert resolve_run(served, "0/inside") == (served[0] / "done").resolve()
    plots = served[0] / "done" / "plots"
    plots.mkdir()
    os.symlink(outside / "secret.png", plots / "leak.png")
    with pytest.raises(NotFound):
        resolve_file(served, "0/done", "plots", "leak.png")


@pytest.mark.parametrize("name", ["../config.json", "..", "/etc/passwd", ".hidden.png", "a/b.png"])
def test_resolve_file_takes_plain_names_only(served, name):
    with pytest.raises(NotFound):
        resolve_file(served, "0/done", "plots", name)


@pytest.mark.parametrize(
    "query",
    [
        "run=0/..",
        "run=0/%2e%2e",
        "run=0%2f%2e%2e%2f%2e%2e",
        "run=0/%252e%252e",
        "run=%2fetc",
        "run=0/done/..%2f..",
        "run=0/..%5c..",
        "run=0/done%00",
        "run=3/done",
    ],
)
def test_api_answers_404_for_traversal_in_any_encoding(client, query):
    for path in ("/api/run", "/api/events", "/api/report"):
        response = client.get(f"{path}?{query}")
        assert response.status_code == 404, (path, query)
        assert "error" in response.json()


@pytest.mark.parametrize("name", ["../config.json", "..%2fconfig.json", "%2e%2e%2fmetrics.json"])
def test_plot_route_never_leaves_plots(client, name):
    assert client.get(f"/api/plot?run=0/done&name={name}").status_code == 404


@pytest.mark.parametrize(
    "path",
    ["/static/../app.py", "/static/%2e%2e/app.py", "/static/..%2fapp.py", "/static//etc/passwd"],
)
def test_static_files_stay_in_static(client, path):
    response = client.get(path)
    assert response.status_code == 404
    assert "create_app" not in response.text


def test_without_a_token_only_loopback_hosts_are_answered(app):
    assert TestClient(app, base_url="http://localhost:1234").get("/api/runs").status_code == 200
    assert TestClient(app, base_url="http://[::1]:1234").get("/api/runs").status_code == 200
    rebound = TestClient(app, base_url="http://evil.example:8765")
    response = rebound.get("/api/runs")
    assert response.status_code == 403 and "host" in response.json()["error"]


@pytest.fixture
def token_app(served):
    """As with --host 0.0.0.0: a token on every request."""
    return create_app(served, token="s3cret-token-value")


def test_token_is_required_on_every_request(token_app):
    client = TestClient(token_app, base_url="http://192.168.1.5:8765")
    for path in ("/", "/api/runs", "/api/run?run=0/done", "/static/studio.js", "/api/recipes"):
        missing = client.get(path)
        assert missing.status_code == 401, path
        wrong = client.get(path, params={"token": "guess"})
        assert wrong.status_code == 403, path
        assert client.get(path, headers={"X-Digitlab-Token": "nope"}).status_code == 403
    assert client.get("/api/runs", params={"token": "s3cret-token-value"}).status_code == 200
    assert (
        client.get("/api/runs", headers={"X-Digitlab-Token": "s3cret-token-value"}).status_code
        == 200
    )
    cookie = {"Cookie": "digitlab_token=s3cret-token-value"}
    assert client.get("/api/runs", headers=cookie).status_code == 200
    assert client.get("/api/runs", headers={"Cookie": "digitlab_token=x"}).status_code == 403


def test_the_page_with_a_token_sets_the_cookie_and_embeds_it(token_app):
    client = TestClient(token_app, base_url="http://192.168.1.5:8765")
    response = client.get("/?token=s3cret-token-value")
    assert response.status_code == 200
    assert 'content="s3cret-token-value"' in response.text
    assert "digitlab_token=s3cret-token-value" in response.headers["set-cookie"]
    assert "default-src 'self'" in response.headers["content-security-policy"]


def test_post_with_a_token_needs_the_token_and_the_origin(token_app):
    client = TestClient(token_app, base_url="http://192.168.1.5:8765")
    body = {"config": {"epochs": 0}}
    good = {"X-Digitlab-Token": "s3cret-token-value", "Origin": "http://192.168.1.5:8765"}
    assert client.post("/api/train", json=body).status_code == 401
    assert (
        client.post("/api/train", json=body, headers={**good, "X-Digitlab-Token": "x"}).status_code
        == 403
    )
    no_origin = {"X-Digitlab-Token": "s3cret-token-value"}
    assert client.post("/api/train", json=body, headers=no_origin).status_code == 403
    other = {**good, "Origin": "http://evil.example"}
    assert client.post("/api/train", json=body, headers=other).status_code == 403
    assert client.post("/api/train", json=body, headers=good).status_code == 400  # epochs 0


def test_post_without_origin_is_refused(client, app):
    headers = {"X-Digitlab-Token": app.state.page_token}
    response = client.post("/api/stop?run=0/done", headers=headers)
    assert response.status_code == 403 and "Origin" in response.json()["error"]
    referer = {**headers, "Referer": f"{ORIGIN}/#/run?run=0/done"}
    assert client.post("/api/stop?run=0/done", headers=referer).status_code == 409  # not running
    cross = {**headers, "Referer": "http://evil.example/page"}
    assert client.post("/api/stop?run=0/done", headers=cross).status_code == 403


def test_post_without_the_page_token_is_refused_even_on_loopback(client, app):
    response = client.post("/api/train", json={}, headers={"Origin": ORIGIN})
    assert response.status_code == 403
    assert "x-digitlab-token" in response.json()["error"]
    assert app.state.page_token in client.get("/").text


def test_get_cannot_start_runs(client):
    assert client.get("/api/train").status_code == 405


def test_oversized_bodies_are_refused(client, post_headers):
    big = b"{" + b" " * (MAX_BODY + 10) + b"}"
    response = client.post("/api/train", content=big, headers=post_headers)
    assert response.status_code == 413

    def chunks():  # no Content-Length: counted as it arrives
        for _ in range(MAX_BODY // 65536 + 2):
            yield b" " * 65536

    response = client.post("/api/train", content=chunks(), headers=post_headers)
    assert response.status_code == 413
    lying = {**post_headers, "Content-Length": str(MAX_BODY + 1)}
    assert client.post("/api/train", content=b"{}", headers=lying).status_code in (400, 413)


@pytest.mark.parametrize(
    "config",
    [
        {"epochs": 0},
        {"activation": "nope"},
        {"hidden": [0]},
        {"data": "digits", "split": "book"},
        {"unknown_key": 1},
        {"lr": -1},
    ],
)
def test_bad_config_is_400_with_the_cli_one_line_message(client, post_headers, config):
    with pytest.raises(ConfigError) as expected:
        make_config(config)
    response = client.post("/api/train", json={"config": config}, headers=post_headers)
    assert response.status_code == 400
    assert response.json() == {"error": str(expected.value)}
    assert "\n" not in response.json()["error"]


def test_plugins_cannot_be_set_from_the_page(client, post_headers, tmp_path):
    plugin = tmp_path / "evil.py"
    plugin.write_text("raise SystemExit('imported')\n")
    body = {"config": {"plugins": [str(plugin)]}}
    response = client.post("/api/train", json=body, headers=post_headers)
    assert response.status_code == 400 and "plugins" in response.json()["error"]


@pytest.mark.parametrize(
    "body", [b"not json", b"[1, 2]", b'{"config": [1]}', b'{"recipe": "nope"}']
)
def test_malformed_train_requests_are_400(client, post_headers, body):
    response = client.post("/api/train", content=body, headers=post_headers)
    assert response.status_code == 400 and response.json()["error"]


def test_nothing_is_unpickled(served):
    """Every np.load in the studio refuses pickles: a pickled predictions.npz is not read."""
    import numpy as np

    folder = served[0] / "done"
    np.savez(folder / "predictions.npz", test_y=np.array([object()], dtype=object))
    client = TestClient(create_app(served), base_url=ORIGIN)
    data = client.get("/api/run?run=0/done").json()
    assert data["examples"] is None
    source = Path(__file__).resolve().parents[2] / "src" / "digitlab" / "studio"
    for path in source.glob("*.py"):
        text = path.read_text()
        assert "import pickle" not in text, path
        for line in text.splitlines():
            if "np.load(" in line:
                assert "allow_pickle=False" in line, (path, line)


def test_reports_are_sandboxed_and_nothing_is_sniffed(client, served):
    (served[0] / "done" / "report.html").write_text("<script>alert(1)</script>")
    response = client.get("/api/report?run=0/done")
    assert response.status_code == 200
    assert response.headers["content-security-policy"].startswith("sandbox")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert client.get("/api/runs").headers["x-content-type-options"] == "nosniff"
