"""What an export reads: run folders and sweeps turned into runs with names, numbers and figures.

`find_runs(paths)` takes run folders and sweep folders (every finished trial of a sweep, named
by its variant and seed) and returns one Source per run. A Source knows the run's per-epoch
numbers under grouped names (`scalar_name`), its flattened config (`flat_params`), its final
metrics (`final_metrics`), its figures (`figures`) and a fingerprint of its files. Both
exporters (TensorBoard and MLflow) use these names, so a number is called the same in both.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from digitlab.diagnostics.alarms import Finding, find
from digitlab.errors import ConfigError, DataError
from digitlab.lab.runs import is_run_folder, read_status
from digitlab.lab.sweep.trials import LOG_FILE, read_records
from digitlab.report.runfolder import RunFolder, read_run
from digitlab.report.sweep import variant_label

SPLIT_NAMES = {"train": "train", "val": "validation", "test": "test", "test_all": "test_all"}
TRAINING_KEYS = ("learning_rate", "batch_size", "seconds")
# monitor quantities (the part of a key after the layer's name) -> the group they are shown in
MONITOR_GROUPS = {
    "grad_norm": "gradient_norm",
    "norm": "weight_norm",
    "update_ratio": "update_ratio",
    "mean": "activation_mean",
    "std": "activation_std",
    "dead": "dead_share",
    "saturated": "saturated_share",
}
FINGERPRINT_FILES = ("config.json", "history.jsonl", "metrics.json", "status.json")


def scalar_name(key: str) -> str:
    """A history key's name in the export: `val_loss` -> `loss/validation`,
    `dense1.w.grad_norm` -> `gradient_norm/dense1.w`, `learning_rate` -> `training/learning_rate`,
    anything else (the prediction monitors) -> `monitors/<key>`."""
    split, _, metric = key.partition("_")
    if split in SPLIT_NAMES and metric in ("loss", "accuracy"):
        return f"{metric}/{SPLIT_NAMES[split]}"
    if key in TRAINING_KEYS:
        return f"training/{key}"
    layer, dot, quantity = key.rpartition(".")
    if dot:
        return f"{MONITOR_GROUPS.get(quantity, quantity)}/{layer}"
    return f"monitors/{key}"


def flat_params(config: dict[str, Any], prefix: str = "") -> dict[str, str | float | int | bool]:
    """The config as flat name -> value: tables become dotted names (`activation.slope`), lists
    and None become their JSON text (`hidden_sizes` -> `[100]`)."""
    flat: dict[str, str | float | int | bool] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flat_params(value, f"{name}."))
        elif isinstance(value, bool | int | float | str):
            flat[name] = value
        else:
            flat[name] = json.dumps(value, separators=(",", ":"))
    return flat


def final_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """metrics.json's numbers per split as `final/<split>_<quantity>`: loss, accuracy, the 95%
    interval's ends and n."""
    final: dict[str, float] = {}
    for split in SPLIT_NAMES:
        part = metrics.get(split)
        if not isinstance(part, dict):
            continue
        for key in ("accuracy", "loss", "n"):
            if _number(part.get(key)):
                final[f"final/{split}_{key}"] = float(part[key])
        interval = part.get("accuracy_ci95")
        if isinstance(interval, list) and len(interval) == 2 and all(map(_number, interval)):
            final[f"final/{split}_accuracy_low"] = float(interval[0])
            final[f"final/{split}_accuracy_high"] = float(interval[1])
    return final


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


@dataclass
class Source:
    """One run to export: its folder read, a name for the tracker, and tags (sweep, variant)."""

    run: RunFolder
    name: str
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def path(self) -> Path:
        return self.run.path.resolve()

    def scalars(self) -> dict[str, list[tuple[int, float]]]:
        """Every per-epoch number of history.jsonl: export name -> [(epoch, value), ...]."""
        series: dict[str, list[tuple[int, float]]] = {}
        for index, record in enumerate(self.run.history, start=1):
            epoch = _epoch(record, index)
            for key, value in record.items():
                if key != "epoch" and _number(value):
                    series.setdefault(scalar_name(key), []).append((epoch, float(value)))
        return series

    def epoch_times(self) -> dict[int, float]:
        """Epoch -> wall-clock time (seconds since 1970) when it ended: the run's start plus the
        seconds of the epochs so far (start: status.json's, else config.json's mtime)."""
        started = (self.run.live or read_status(self.run.path) or {}).get("started")
        try:
            clock = datetime.fromisoformat(str(started)).timestamp()
        except ValueError:
            clock = (self.run.path / "config.json").stat().st_mtime
        times = {}
        for index, record in enumerate(self.run.history, start=1):
            seconds = record.get("seconds", 0.0)
            clock += float(seconds) if _number(seconds) else 0.0
            times[_epoch(record, index)] = clock
        return times

    @property
    def last_epoch(self) -> int:
        return max((_epoch(r, k) for k, r in enumerate(self.run.history, 1)), default=0)

    @property
    def state(self) -> str:
        """finished, running, stopped, failed or died (a run without status.json is finished)."""
        return str(self.run.live["state"]) if self.run.live else "finished"

    def alarms(self) -> list[Finding]:
        """The alarms' findings on the history: the checks `digitlab diagnose` and the report
        make (warnings, then the info lines such as the best epochs)."""
        findings = find(self.run.history)
        return sorted(findings, key=lambda finding: finding.severity != "warning")

    def fingerprint(self) -> str:
        """sha256 of the files an export depends on: a changed run exports anew."""
        digest = hashlib.sha256()
        for name in FINGERPRINT_FILES:
            file = self.run.path / name
            digest.update(name.encode() + b"\0" + (file.read_bytes() if file.is_file() else b""))
        return digest.hexdigest()[:16]

    def figures(self) -> dict[str, bytes]:
        """The report's figures by file name: RUN/plots/*.png when report.html is current,
        else drawn afresh by `build_report` on a temporary copy (the run folder is not touched)."""
        plots = sorted((self.run.path / "plots").glob("*.png"))
        if plots and _report_current(self.run.path):
            return {file.name: file.read_bytes() for file in plots}
        from digitlab.report.html import build_report  # matplotlib only when drawing

        with tempfile.TemporaryDirectory(prefix="digitlab-export-") as tmp:
            copy = Path(tmp) / "run"
            shutil.copytree(self.run.path, copy, ignore=shutil.ignore_patterns(".*", "*.tmp"))
            build_report(copy)
            return {f.name: f.read_bytes() for f in sorted((copy / "plots").glob("*.png"))}


def _epoch(record: dict[str, Any], index: int) -> int:
    """A record's epoch number; its position (from 1) when it has none."""
    epoch = record.get("epoch", index)
    return int(epoch) if _number(epoch) else index


def _report_current(folder: Path) -> bool:
    """report.html was drawn after the run's last result (not a snapshot of a run in progress)."""
    report = folder / "report.html"
    if not report.is_file():
        return False
    newest = max(
        (folder / name).stat().st_mtime
        for name in ("history.jsonl", "metrics.json")
        if (folder / name).is_file()
    )
    return report.stat().st_mtime >= newest


def is_sweep_folder(path: Path) -> bool:
    return (path / LOG_FILE).is_file() or (path / "sweep.json").is_file()


def find_runs(paths: list[str | os.PathLike[str]]) -> tuple[list[Source], list[str]]:
    """The runs to export from run and sweep folders, and notes on what was skipped.

    A sweep contributes each trial whose latest record is done (failed trials are noted). A
    folder given twice (or also inside a sweep given) counts once; two runs with one name get
    `-2`, `-3`, ... in the order given.
    """
    sources: list[Source] = []
    notes: list[str] = []
    for given in paths:
        path = Path(given)
        if not path.is_dir():
            raise DataError(f"{path}: no such folder")
        if is_run_folder(path):
            sources.append(Source(read_run(path), path.resolve().name))
        elif is_sweep_folder(path):
            found, skipped = _sweep_trials(path)
            sources += found
            notes += skipped
        else:
            raise DataError(
                f"{path}: not a run folder (no config.json or history.jsonl) "
                f"nor a sweep folder (no {LOG_FILE})"
            )
    unique = {source.path: source for source in reversed(sources)}  # the first of each path
    sources = [source for source in sources if unique[source.path] is source]
    seen: dict[str, int] = {}
    for source in sources:
        count = seen[source.name] = seen.get(source.name, 0) + 1
        if count > 1:
            source.name = f"{source.name}-{count}"
    return sources, notes


def _sweep_trials(folder: Path) -> tuple[list[Source], list[str]]:
    records, _ = read_records(folder / LOG_FILE)
    latest = {r["id"]: r for r in records}
    sweep = _sweep_name(folder)
    sources, notes = [], []
    for trial, record in latest.items():
        run_dir = folder / "trials" / str(trial)
        if record.get("status") != "done" or not is_run_folder(run_dir):
            notes.append(f"{run_dir}: skipped (trial {record.get('status', 'not recorded')})")
            continue
        options = record.get("options") if isinstance(record.get("options"), dict) else {}
        seed = record.get("seed")
        slug = str(trial).rsplit("_", 2)[0]  # the id without _s<seed>_<hash>
        tags = {
            "sweep": sweep,
            "sweep_folder": str(folder.resolve()),
            "trial": str(trial),
            "variant": variant_label(options or {}),
            "seed": str(seed),
        }
        sources.append(Source(read_run(run_dir), f"{sweep}/{slug}_seed{seed}", tags))
    if not sources and not notes:
        raise DataError(f"{folder}: a sweep folder with no recorded trials")
    return sources, notes


def _sweep_name(folder: Path) -> str:
    try:
        name = json.loads((folder / "sweep.json").read_text()).get("name")
    except (OSError, ValueError, AttributeError):
        name = None
    name = str(name or folder.resolve().name)
    return re.sub(r"[^A-Za-z0-9._=,+-]+", "-", name).strip("-.") or "sweep"


def require(module: str, what: str) -> Any:
    """Import `module` for `what`, or a one-line ConfigError naming the extra to install."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConfigError(
            f"{what} needs {module}, which is not installed: pip install 'digitlab[track]'"
        ) from None
