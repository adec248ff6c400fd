"""The studio's run routes: the runs list, one run, live events, recipes, train/stop/resume.

Everything here reads run folders through `paths.resolve_run` and the live files of
`lab.runs` (history.jsonl, status.json); nothing is unpickled. Change detection is stat-based
(POLL seconds for one run, LIST_POLL for the list), so a watched run costs the trainer nothing
but a few stat calls a second.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, StreamingResponse
from starlette.routing import Route

from digitlab.diagnostics.alarms import find
from digitlab.errors import ConfigError, DigitlabError
from digitlab.lab.config import make_config, read_config_file, to_dict
from digitlab.lab.runs import (
    HISTORY_FILE,
    STATUS_FILE,
    new_run_dir,
    process_alive,
    read_status,
    write_json,
)
from digitlab.studio.paths import FILE_NAME, NotFound, resolve_file, resolve_run, run_id

POLL = 0.3  # seconds between stat checks of a watched run
LIST_POLL = 1.0  # seconds between scans for the runs list
RECHECK = 2.0  # seconds between liveness checks of a running run's process
PING = 15.0  # seconds between SSE comments that keep proxies and the disconnect check alive
MAX_DEPTH = 4  # folder levels searched below each served folder
EXAMPLES_SHOWN = 24  # hardest and misclassified digits sent to the page, each
STUDIO_DIR = ".studio"  # under the first folder: configs and logs of runs started here
RUN_MARKERS = (STATUS_FILE, HISTORY_FILE, "metrics.json")
# A report is a file from a run folder: shown sandboxed (no scripts, not our origin), images
# only as the data URIs it embeds.
REPORT_CSP = "sandbox; default-src 'none'; img-src data:; style-src 'unsafe-inline'"


class Conflict(DigitlabError):
    """The request does not fit the run's state (HTTP 409), e.g. stopping a finished run."""


def clean(value: Any) -> Any:
    """JSON-safe copy: NaN and infinities become null (browsers' JSON has neither)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean(v) for v in value]
    if isinstance(value, np.generic):
        return clean(value.item())
    return value


def read_rows(path: Path) -> list[dict[str, Any]]:
    """The whole JSON-object lines of a .jsonl file; a torn or bad line is skipped."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    rows = []
    for line in text.splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows


def _json_file(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _json_object(path: Path) -> dict[str, Any]:
    data = _json_file(path)
    return data if isinstance(data, dict) else {}


def _signature(folder: Path, names: Sequence[str]) -> tuple[Any, ...]:
    out: list[Any] = []
    for name in names:
        try:
            st = (folder / name).stat()
            out.append((st.st_ino, st.st_size, st.st_mtime_ns))
        except OSError:
            out.append(None)
    return tuple(out)


def describe_model(config: dict[str, Any]) -> str:
    """A short name for the network a config builds: '100-30 relu', 'conv-pool-dense'."""
    layers = config.get("layers")
    if isinstance(layers, list) and layers:
        kinds = [str(layer.get("type", "?")) for layer in layers if isinstance(layer, dict)]
        return "-".join(kinds)
    hidden = config.get("hidden_sizes", config.get("hidden")) or []  # older runs: `hidden`
    activation = config.get("activation") or {}
    name = activation.get("name", "") if isinstance(activation, dict) else str(activation)
    sizes = "-".join(str(h) for h in hidden) if hidden else "linear"
    return f"{sizes} {name}".strip()


def _iso_seconds(started: str | None, updated: str | None) -> float | None:
    from datetime import datetime

    try:
        return (
            datetime.fromisoformat(updated or "") - datetime.fromisoformat(started or "")
        ).total_seconds()
    except ValueError:
        return None


def _mtime_iso(path: Path) -> str | None:
    from datetime import UTC, datetime

    try:
        return datetime.fromtimestamp(path.stat().st_mtime, UTC).isoformat(timespec="seconds")
    except OSError:
        return None


def run_state(folder: Path, status: dict[str, Any] | None) -> str:
    """The run's state: from status.json, else guessed for runs written before it existed."""
    if status is not None:
        return str(status["state"])
    if (folder / "metrics.json").is_file():
        return "finished"
    if (folder / "checkpoint.npz").is_file():
        return "stopped"
    if (folder / "error.txt").is_file():
        return "failed"
    return "died"


def summarise_run(folder: Path, rid: str, name: str) -> dict[str, Any]:
    """One row of the runs list for a run folder."""
    status = read_status(folder)
    config = _json_object(folder / "config.json")
    rows = read_rows(folder / HISTORY_FILE)
    metrics = _json_object(folder / "metrics.json")
    val = [r["val_accuracy"] for r in rows if isinstance(r.get("val_accuracy"), int | float)]
    test: dict[str, Any] = metrics["test"] if isinstance(metrics.get("test"), dict) else {}
    seconds = sum(r.get("seconds", 0.0) for r in rows if isinstance(r.get("seconds"), int | float))
    return clean(
        {
            "id": rid,
            "name": name,
            "kind": "run",
            "status": run_state(folder, status),
            "dataset": config.get("data"),
            "model": describe_model(config) if config else None,
            "epoch": status["epoch"] if status else len(rows),
            "epochs": status["epochs"] if status else config.get("epochs"),
            "best_val_accuracy": max(val) if val else None,
            "test_accuracy": test.get("accuracy"),
            "test_interval": test.get("accuracy_ci95"),
            "started": status["started"] if status else _mtime_iso(folder / "config.json"),
            "updated": status["updated"] if status else _mtime_iso(folder / HISTORY_FILE),
            "seconds": (
                _iso_seconds(status["started"], status["updated"]) if status else seconds or None
            ),
            "error": status.get("error") if status else None,
        }
    )


def _lock_held(path: Path) -> bool:
    """Whether some process holds a POSIX lock on `path` (read from /proc/locks: no locking)."""
    try:
        inode = path.stat().st_ino
        locks = Path("/proc/locks").read_text()
    except OSError:
        return False
    return any(
        line.split()[5].endswith(f":{inode}")
        for line in locks.splitlines()
        if len(line.split()) > 5
    )


def summarise_sweep(folder: Path, rid: str, name: str) -> dict[str, Any]:
    """One row of the runs list for a sweep folder (sweep.json + trials.jsonl)."""
    spec = _json_object(folder / "sweep.json")
    latest = {r.get("id"): r for r in read_rows(folder / "trials.jsonl")}
    trials = spec.get("trials") or []
    done = [latest[t] for t in trials if t in latest]
    failed = [r for r in done if r.get("status") == "failed"]
    if _lock_held(folder / ".lock"):
        state = "running"
    elif trials and len(done) == len(trials):
        state = "failed" if len(failed) == len(trials) else "finished"
    else:
        state = "stopped"
    vals = [
        float(r["val_accuracy"]) for r in done if isinstance(r.get("val_accuracy"), int | float)
    ]
    tests = [r for r in done if isinstance(r.get("test_accuracy"), int | float)]
    best = max(tests, key=lambda r: r.get("val_accuracy") or 0.0) if tests else None
    seconds = sum(r.get("seconds", 0.0) for r in done if isinstance(r.get("seconds"), int | float))
    base = spec.get("base") or {}
    return clean(
        {
            "id": rid,
            "name": name,
            "kind": "sweep",
            "status": state,
            "dataset": base.get("data", "digits"),
            "model": f"{len(trials)} trials",
            "epoch": len(done),
            "epochs": len(trials),
            "best_val_accuracy": max(vals) if vals else None,
            "test_accuracy": best.get("test_accuracy") if best else None,
            "test_interval": None,
            "started": _mtime_iso(folder / "sweep.json"),
            "updated": _mtime_iso(folder / "trials.jsonl"),
            "seconds": seconds or None,
            "error": None,
        }
    )


def find_runs(folders: Sequence[Path]) -> list[tuple[int, Path, str]]:
    """(folder index, path, kind) of every run and sweep below the served folders.

    Hidden folders (staging, .studio) and symlinked folders are skipped; a run folder's own
    subfolders are not searched; a sweep's are (its trials are runs)."""
    found: list[tuple[int, Path, str]] = []
    for k, root in enumerate(folders):
        stack = [(Path(root), 0)]
        while stack:
            folder, depth = stack.pop()
            try:
                names = set(os.listdir(folder))
            except OSError:
                continue
            if "sweep.json" in names:
                found.append((k, folder, "sweep"))
            elif any(marker in names for marker in RUN_MARKERS):
                found.append((k, folder, "run"))
                continue
            if depth >= MAX_DEPTH:
                continue
            for name in sorted(names, reverse=True):
                child = folder / name
                if name.startswith(".") or child.is_symlink() or not child.is_dir():
                    continue
                stack.append((child, depth + 1))
    return found


@dataclass
class Studio:
    """The state the routes share: the served folders, started children, a summary cache."""

    folders: list[Path]
    children: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)
    cache: dict[Path, tuple[tuple[Any, ...], dict[str, Any]]] = field(default_factory=dict)

    def reap(self) -> None:
        """Collect children that ended, so none lingers as a zombie."""
        for pid, child in list(self.children.items()):
            if child.poll() is not None:
                self.children.pop(pid, None)

    def runs(self) -> list[dict[str, Any]]:
        self.reap()
        rows = []
        for k, folder, kind in find_runs(self.folders):
            rid = run_id(self.folders, k, folder)
            name = rid.partition("/")[2] or Path(self.folders[k]).name
            names = (
                ("sweep.json", "trials.jsonl") if kind == "sweep" else (*RUN_MARKERS, "config.json")
            )
            signature = _signature(folder, names)
            cached = self.cache.get(folder)
            if cached is None or cached[0] != signature or cached[1]["status"] == "running":
                summary = (summarise_sweep if kind == "sweep" else summarise_run)(folder, rid, name)
                self.cache[folder] = (signature, summary)
            rows.append(self.cache[folder][1])
        return rows


def _studio(request: Request) -> Studio:
    studio: Studio = request.app.state.studio
    return studio


def example_images(folder: Path) -> dict[str, Any] | None:
    """The hardest and misclassified test digits of predictions.npz, as 0-255 images."""
    path = folder / "predictions.npz"
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            shape = [int(v) for v in data["image_shape"]]
            y, pred, probs = data["test_y"], data["test_pred"], data["test_probs"]
            examples, images = data["test_examples"], data["test_example_images"]
    except (OSError, ValueError, KeyError):
        return None
    if len(shape) != 2 or len(examples) == 0:
        return None
    hardest_count = min(64, len(y))  # experiment.EXAMPLES hardest come first
    groups = {"hardest": range(0, min(EXAMPLES_SHOWN, hardest_count))}
    groups["misclassified"] = range(
        hardest_count, min(hardest_count + EXAMPLES_SHOWN, len(examples))
    )
    out: dict[str, Any] = {"shape": shape}
    for group, positions in groups.items():
        items = []
        for position in positions:
            index = int(examples[position])
            image = images[position].astype(np.float64)
            low, high = float(image.min()), float(image.max())
            scaled = (image - low) / (high - low) if high > low else np.zeros_like(image)
            items.append(
                {
                    "index": index,
                    "label": int(y[index]),
                    "predicted": int(pred[index]),
                    "probability": float(probs[index, pred[index]]),
                    "pixels": np.round(scaled * 255).astype(int).tolist(),
                }
            )
        out[group] = items
    return out


def vanished_run(folders: Sequence[Path], rid: str) -> dict[str, Any] | None:
    """A run started here whose folder is gone: `digitlab train` removes the folder of a run
    that failed before its first epoch (bad input); its log says why."""
    head, _, name = rid.partition("/")
    if head != "0" or not FILE_NAME.match(name):
        return None
    log = Path(folders[0]) / STUDIO_DIR / f"{name}.log"
    try:
        lines = [line.strip() for line in log.read_text(errors="replace").splitlines()]
    except OSError:
        return None
    ended = f"the run ended before its first epoch (see {log})"  # its error line comes later
    error = next((line for line in reversed(lines) if line), ended)
    return {
        "id": rid,
        "kind": "run",
        "name": name,
        "status": {"state": "failed", "error": error.removeprefix("digitlab: error: ")},
        "config": _json_file(log.with_suffix(".json")),
        "history": [],
        "diagnostics": [],
        "metrics": None,
        "confusion": None,
        "examples": None,
        "plots": [],
        "report": False,
        "checkpoint": False,
    }


def run_details(folders: Sequence[Path], rid: str) -> dict[str, Any]:
    try:
        folder = resolve_run(folders, rid)
    except NotFound:
        vanished = vanished_run(folders, rid)
        if vanished is None:
            raise
        return clean(vanished)
    if (folder / "sweep.json").is_file():
        spec = _json_object(folder / "sweep.json")
        return clean(
            {
                "id": rid,
                "kind": "sweep",
                "sweep": spec,
                "trials": read_rows(folder / "trials.jsonl"),
                "summary_html": (folder / "summary.html").is_file(),
            }
        )
    status = read_status(folder)
    rows = read_rows(folder / HISTORY_FILE)
    metrics = _json_file(folder / "metrics.json")
    stored = _json_file(folder / "diagnostics.json")
    findings = stored if isinstance(stored, list) else [f.as_dict() for f in find(rows)]
    test = metrics.get("test") if isinstance(metrics, dict) else None
    plots = folder / "plots"
    images = sorted(p.name for p in plots.glob("*.png")) if plots.is_dir() else []
    return clean(
        {
            "id": rid,
            "kind": "run",
            "name": rid.partition("/")[2],
            "status": {**(status or {}), "state": run_state(folder, status)},
            "config": _json_file(folder / "config.json"),
            "history": rows,
            "diagnostics": findings,
            "metrics": metrics,
            "confusion": test.get("confusion") if isinstance(test, dict) else None,
            "examples": example_images(folder),
            "plots": images,
            "report": (folder / "report.html").is_file(),
            "checkpoint": (folder / "checkpoint.npz").is_file(),
        }
    )


async def list_runs(request: Request) -> JSONResponse:
    studio = _studio(request)
    return JSONResponse({"runs": await asyncio.to_thread(studio.runs)})


async def one_run(request: Request) -> JSONResponse:
    folders = _studio(request).folders
    return JSONResponse(
        await asyncio.to_thread(run_details, folders, request.query_params.get("run", ""))
    )


async def plot_file(request: Request) -> FileResponse:
    """A PNG of the run's report (plots/NAME), through the safe resolver."""
    q = request.query_params
    path = resolve_file(_studio(request).folders, q.get("run"), "plots", q.get("name", ""))
    if path.suffix != ".png":
        raise NotFound(f"no such plot: {path.name}")
    return FileResponse(path, media_type="image/png")


async def report_page(request: Request) -> HTMLResponse:
    """The run's report.html (self-contained) or a sweep's summary.html."""
    folder = resolve_run(_studio(request).folders, request.query_params.get("run"))
    for name in ("report.html", "summary.html"):
        if (folder / name).is_file():
            text = (folder / name).read_text(encoding="utf-8", errors="replace")
            return HTMLResponse(text, headers={"Content-Security-Policy": REPORT_CSP})
    raise NotFound("this run has no report yet")


def _sse(event: str, data: Any) -> bytes:
    return f"event: {event}\ndata: {json.dumps(clean(data), separators=(',', ':'))}\n\n".encode()


async def run_events(request: Request, folder: Path, after: int) -> AsyncIterator[bytes]:
    """`history` per new line (data: `index`, `record`, and with the newest line `diagnostics`,
    the alarms so far), `status` per change, and
    `reset` when the history was rewritten shorter (a resumed run)."""
    sent, last_status, history_sig, status_sig = after, None, None, None
    checked = pinged = time.monotonic()
    yield b"retry: 1000\n\n"
    while not await request.is_disconnected():
        now = time.monotonic()
        signature = _signature(folder, (HISTORY_FILE,))
        if signature != history_sig:
            history_sig = signature
            rows = read_rows(folder / HISTORY_FILE)
            if len(rows) < sent:
                sent = 0
                yield _sse("reset", {"rows": len(rows)})
            for index in range(sent, len(rows)):
                event: dict[str, Any] = {"index": index, "record": rows[index]}
                if index == len(rows) - 1:  # the alarms as of the newest line
                    event["diagnostics"] = [f.as_dict() for f in find(rows)]
                yield _sse("history", event)
            sent = len(rows)
        signature = _signature(folder, (STATUS_FILE, "metrics.json", "report.html"))
        if signature != status_sig or now - checked > RECHECK:
            status_sig, checked = signature, now
            status = read_status(folder)
            current = {**(status or {}), "state": run_state(folder, status)}
            current["report"] = (folder / "report.html").is_file()
            if current != last_status:
                last_status = current
                yield _sse("status", current)
        if now - pinged > PING:
            pinged = now
            yield b": ping\n\n"
        await asyncio.sleep(POLL)


async def list_events(request: Request) -> AsyncIterator[bytes]:
    """`runs` (data: the whole runs list) whenever it changes."""
    studio, last = _studio(request), None
    yield b"retry: 2000\n\n"
    while not await request.is_disconnected():
        runs = await asyncio.to_thread(studio.runs)
        if runs != last:
            last = runs
            yield _sse("runs", {"runs": runs})
        await asyncio.sleep(LIST_POLL)


async def events(request: Request) -> StreamingResponse:
    rid = request.query_params.get("run")
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    if rid is None:
        stream = list_events(request)
    else:
        folder = resolve_run(_studio(request).folders, rid)
        after = request.query_params.get("after", "0")
        stream = run_events(request, folder, int(after) if after.isdigit() else 0)
    return StreamingResponse(stream, media_type="text/event-stream", headers=headers)


# --- recipes and starting, stopping, resuming runs ------------------------------------------

FORBIDDEN_KEYS = ("plugins",)  # a page must not make the server import Python files


def recipe_folders() -> list[Path]:
    """Where recipes live: ./recipes, and the project's recipes/ beside an editable install."""
    candidates = [Path.cwd() / "recipes", Path(__file__).resolve().parents[3] / "recipes"]
    seen: list[Path] = []
    for folder in candidates:
        if folder.is_dir() and folder.resolve() not in seen:
            seen.append(folder.resolve())
    return seen


def _description(path: Path) -> str:
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        lines.append(line.lstrip("# ").rstrip())
    return " ".join(line for line in lines if not line.startswith("Run:"))


def recipes() -> dict[str, dict[str, Any]]:
    """name -> {name, description, values} of every recipe file (plugins left out)."""
    found: dict[str, dict[str, Any]] = {}
    for folder in recipe_folders():
        for path in sorted(folder.glob("*.toml")):
            if path.stem in found:
                continue
            try:
                values = read_config_file(path)
            except DigitlabError:
                continue
            if values.get("plugins"):
                continue  # needs Python files: run it from the command line
            values.pop("plugins", None)
            found[path.stem] = {
                "name": path.stem,
                "description": _description(path),
                "values": values,
            }
    return found


FORM_KEYS = (
    "data",
    "hidden_sizes",
    "activation",
    "optimizer",
    "learning_rate",
    "learning_rate_schedule",
    "batch_size",
    "epochs",
    "seed",
)


def choices() -> dict[str, Any]:
    """The registries' names (for the Train page's lists) and the config defaults it shows."""
    from digitlab.core.activations import ACTIVATIONS
    from digitlab.core.losses import LOSSES
    from digitlab.core.optim import OPTIMIZERS
    from digitlab.core.schedules import SCHEDULES

    defaults = to_dict(make_config({}))
    return {
        "activations": sorted(ACTIVATIONS),
        "optimizers": sorted(OPTIMIZERS),
        "schedules": sorted(SCHEDULES),
        "losses": sorted(LOSSES),
        "defaults": {key: defaults[key] for key in FORM_KEYS},
    }


async def list_choices(request: Request) -> JSONResponse:
    return JSONResponse(clean(choices()))


async def list_recipes(request: Request) -> JSONResponse:
    return JSONResponse({"recipes": clean(list((await asyncio.to_thread(recipes)).values()))})


def _json_body(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        raise ConfigError("the request body is not JSON") from None
    if not isinstance(body, dict):
        raise ConfigError("the request body must be a JSON object")
    return body


def config_from_request(body: dict[str, Any]) -> Any:
    """The body's recipe (by name) with `config` on top, validated like the CLI's config."""
    values: dict[str, Any] = {}
    name = body.get("recipe")
    if name:
        known = recipes()
        if name not in known:
            raise ConfigError(f"unknown recipe {name!r}; known: {', '.join(sorted(known))}")
        values.update(known[name]["values"])
    overrides = body.get("config") or {}
    if not isinstance(overrides, dict):
        raise ConfigError("config: expected an object of config keys")
    values.update({k: v for k, v in overrides.items() if v is not None})
    for key in FORBIDDEN_KEYS:
        if values.get(key):
            raise ConfigError(f"{key}: cannot be set from the studio; use the command line")
        values.pop(key, None)
    return make_config(values)


def train_command(*args: str) -> list[str]:
    """The command line of a `digitlab train` child process running this interpreter."""
    return [sys.executable, "-c", "from digitlab.cli import main; main()", "train", *args]


def spawn(studio: Studio, args: list[str], log_name: str) -> subprocess.Popen[bytes]:
    """Start `digitlab train ARGS` in its own session (closing the page or the server never
    kills it), its output going to FIRST/.studio/LOG_NAME.log."""
    logs = Path(studio.folders[0]) / STUDIO_DIR
    logs.mkdir(parents=True, exist_ok=True)
    with open(logs / f"{log_name}.log", "ab") as log:
        child = subprocess.Popen(
            train_command(*args, "--quiet"),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=Path.cwd(),
        )
    studio.children[child.pid] = child
    return child


def start_run(studio: Studio, body: dict[str, Any]) -> dict[str, Any]:
    config = config_from_request(body)
    root = Path(studio.folders[0])
    root.mkdir(parents=True, exist_ok=True)
    folder = new_run_dir(None, root=str(root))  # created empty: --out accepts an empty folder
    configs = root / STUDIO_DIR
    config_file = write_json(configs / f"{folder.name}.json", to_dict(config))
    child = spawn(studio, ["--config", str(config_file), "--out", str(folder)], folder.name)
    return {"run": run_id(studio.folders, 0, folder), "pid": child.pid}


def _is_digitlab(pid: int) -> bool:
    try:
        return b"digitlab" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def stop_run(studio: Studio, rid: str) -> dict[str, Any]:
    folder = resolve_run(studio.folders, rid)
    status = read_status(folder)
    if status is None or status["state"] != "running":
        raise Conflict(f"run {rid} is not running")
    pid = status["pid"]
    if not (pid in studio.children or _is_digitlab(pid)) or not process_alive(pid):
        raise Conflict(f"process {pid} is not a digitlab run")
    os.kill(pid, signal.SIGINT)  # the trainer finishes its batch and writes a checkpoint
    return {"run": rid, "signal": "SIGINT", "pid": pid}


def resume_run(studio: Studio, rid: str) -> dict[str, Any]:
    folder = resolve_run(studio.folders, rid)
    status = read_status(folder)
    state = run_state(folder, status)
    if state == "running":
        raise Conflict(f"run {rid} is still running")
    if not (folder / "checkpoint.npz").is_file():
        raise Conflict(f"run {rid} has no checkpoint to resume from")
    child = spawn(studio, ["--resume", str(folder)], folder.name)
    return {"run": rid, "pid": child.pid}


async def post_train(request: Request) -> JSONResponse:
    body = _json_body(await request.body())
    return JSONResponse(await asyncio.to_thread(start_run, _studio(request), body))


async def post_stop(request: Request) -> JSONResponse:
    rid = request.query_params.get("run", "")
    return JSONResponse(await asyncio.to_thread(stop_run, _studio(request), rid))


async def post_resume(request: Request) -> JSONResponse:
    rid = request.query_params.get("run", "")
    return JSONResponse(await asyncio.to_thread(resume_run, _studio(request), rid))


def routes() -> list[Route]:
    return [
        Route("/runs", list_runs),
        Route("/run", one_run),
        Route("/plot", plot_file),
        Route("/report", report_page),
        Route("/events", events),
        Route("/recipes", list_recipes),
        Route("/choices", list_choices),
        Route("/train", post_train, methods=["POST"]),
        Route("/stop", post_stop, methods=["POST"]),
        Route("/resume", post_resume, methods=["POST"]),
    ]
