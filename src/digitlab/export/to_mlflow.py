"""Runs to MLflow runs (`digitlab export mlflow`), through MLflow's own client.

Each run becomes one MLflow run in the experiment (default `digitlab`): the flattened config as
params, every per-epoch number as a metric with step = epoch (names from sources.scalar_name,
the same as in TensorBoard), the final metrics as `final/...` at the last epoch, and the run
folder's files as artifacts (plus the report's figures under plots/ when the folder has none,
as a sweep's trials), and the alarms' kinds as the tag `digitlab.alarms` (empty: none). A
sweep's trials are tagged with sweep, variant and seed and nested under one parent run for the
sweep, which holds its summary.

The default tracking URI is `sqlite:///mlflow.db` (a database in the current folder, artifacts
in ./mlruns), MLflow's own default. A file store (`--tracking-uri ./mlruns` or `file:...`)
works too: MLflow 3 refuses it unless MLFLOW_ALLOW_FILE_STORE is set, so asking for one sets it.

Idempotent: every run is tagged `digitlab.source_id` (a hash of the run folder's absolute path)
and `digitlab.fingerprint` (a hash of its config, history, metrics and status). Exporting
again finds it by the first: unchanged, it is left as it is; changed (a run that was still
training), the old MLflow run is deleted and a new one logged. Never two for one folder.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from digitlab.errors import ConfigError, DataError
from digitlab.export.sources import Source, final_metrics, flat_params, require

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
DEFAULT_EXPERIMENT = "digitlab"
SOURCE_TAG = "digitlab.source_id"
FINGERPRINT_TAG = "digitlab.fingerprint"
SWEEP_FILES = ("sweep.json", "trials.jsonl", "summary.csv", "summary.html")
STATUS = {"finished": "FINISHED", "stopped": "KILLED", "failed": "FAILED", "died": "FAILED"}
BATCH = 100  # MLflow's limit on params per log_batch call (1,000 for metrics)


@dataclass
class Exported:
    """What happened to one run: action is new, replaced or unchanged."""

    name: str
    run_id: str
    action: str


def source_id(path: Path) -> str:
    return hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:24]


def export_mlflow(
    sources: list[Source],
    tracking_uri: str | None = None,
    experiment: str = DEFAULT_EXPERIMENT,
) -> list[Exported]:
    """Log each source as an MLflow run (a sweep's trials under a parent run per sweep)."""
    uri = tracking_uri or DEFAULT_TRACKING_URI
    require("mlflow", "digitlab export mlflow")
    if uri.startswith("sqlite:"):
        require("sqlalchemy", f"the tracking URI {uri}")
    elif "://" not in uri or uri.startswith("file:"):
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")  # asked for by name
    from mlflow.exceptions import MlflowException

    for chatty in ("mlflow.store.db.utils", "alembic"):  # 'creating tables...' on every new db
        logging.getLogger(chatty).setLevel(logging.WARNING)
    try:
        return _export(sources, uri, experiment)
    except MlflowException as err:
        first = (str(err.message).strip().splitlines() or [type(err).__name__])[0]
        raise ConfigError(f"mlflow ({uri}): {first.split('. ')[0]}") from None
    except OSError as err:
        raise DataError(f"mlflow ({uri}): {err.strerror or err} ({err.filename})") from None


def _export(sources: list[Source], uri: str, experiment: str) -> list[Exported]:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    found = client.get_experiment_by_name(experiment)
    if found is not None and found.lifecycle_stage != "active":
        raise ConfigError(f"mlflow experiment {experiment!r} is deleted; pick another name")
    experiment_id = found.experiment_id if found else client.create_experiment(experiment)
    parents: dict[str, str] = {}
    done = []
    for source in sources:
        folder = source.tags.get("sweep_folder")
        if folder and folder not in parents:
            parents[folder] = _sweep_parent(client, experiment_id, Path(folder), source)
        done.append(_export_run(client, experiment_id, source, parents.get(folder or "")))
    return done


def _find(client: Any, experiment_id: str, path: Path) -> list[Any]:
    return list(
        client.search_runs(
            [experiment_id], filter_string=f"tags.`{SOURCE_TAG}` = '{source_id(path)}'"
        )
    )


def _export_run(client: Any, experiment_id: str, source: Source, parent: str | None) -> Exported:
    from mlflow.entities import Metric, Param

    fingerprint = source.fingerprint()
    existing = _find(client, experiment_id, source.path)
    if len(existing) == 1 and existing[0].data.tags.get(FINGERPRINT_TAG) == fingerprint:
        run_id = existing[0].info.run_id
        if parent:
            client.set_tag(run_id, "mlflow.parentRunId", parent)
        return Exported(source.name, run_id, "unchanged")
    for old in existing:
        client.delete_run(old.info.run_id)
    times = source.epoch_times()
    now = time.time()
    started = min(times.values(), default=now) - _first_seconds(source)
    tags = {
        SOURCE_TAG: source_id(source.path),
        "digitlab.run_folder": str(source.path),
        "digitlab.state": source.state,
        "digitlab.alarms": ",".join(f.kind for f in source.alarms() if f.severity == "warning"),
        **source.tags,
    }
    if parent:
        tags["mlflow.parentRunId"] = parent
    run = client.create_run(
        experiment_id, start_time=int(started * 1000), tags=tags, run_name=source.name
    )
    run_id = run.info.run_id
    params = [Param(k, str(v)) for k, v in flat_params(source.run.config).items()]
    for k in range(0, len(params), BATCH):
        client.log_batch(run_id, params=params[k : k + BATCH])
    stamp = {epoch: int(1000 * t) for epoch, t in times.items()}
    metrics = [
        Metric(tag, value, stamp.get(epoch, int(now * 1000)), epoch)
        for tag, points in source.scalars().items()
        for epoch, value in points
    ]
    last = source.last_epoch
    end = stamp.get(last, int(now * 1000))
    metrics += [Metric(tag, v, end, last) for tag, v in final_metrics(source.run.metrics).items()]
    for k in range(0, len(metrics), 10 * BATCH):
        client.log_batch(run_id, metrics=metrics[k : k + 10 * BATCH])
    _log_folder(client, run_id, source)
    if source.state in STATUS:
        client.set_terminated(run_id, STATUS[source.state], end_time=end)
    client.set_tag(run_id, FINGERPRINT_TAG, fingerprint)  # last: a run cut short is logged anew
    return Exported(source.name, run_id, "replaced" if existing else "new")


def _first_seconds(source: Source) -> float:
    first = source.run.history[0].get("seconds", 0.0) if source.run.history else 0.0
    return float(first) if isinstance(first, int | float) else 0.0


def _log_folder(client: Any, run_id: str, source: Source) -> None:
    """Every file of the run folder (hidden and temporary files aside), keeping subfolders;
    the report's figures under plots/ when the folder has none."""
    folder = source.path
    for file in sorted(folder.rglob("*")):
        relative = file.relative_to(folder)
        if file.is_file() and not any(part.startswith(".") for part in relative.parts):
            where = relative.parent.as_posix()
            client.log_artifact(run_id, str(file), None if where == "." else where)
    if not any((folder / "plots").glob("*.png")):
        with tempfile.TemporaryDirectory(prefix="digitlab-export-") as tmp:
            for name, png in source.figures().items():
                (Path(tmp) / name).write_bytes(png)
            client.log_artifacts(run_id, tmp, "plots")


def _sweep_parent(client: Any, experiment_id: str, folder: Path, trial: Source) -> str:
    """The parent run of a sweep's trials: found by its folder's tag, else created; its
    artifacts (the sweep's summary files) logged again each time."""
    existing = _find(client, experiment_id, folder)
    if existing:
        run_id = str(existing[0].info.run_id)
    else:
        tags = {
            SOURCE_TAG: source_id(folder),
            "digitlab.run_folder": str(folder.resolve()),
            "digitlab.kind": "sweep",
            "sweep": trial.tags.get("sweep", folder.name),
        }
        run = client.create_run(experiment_id, tags=tags, run_name=tags["sweep"])
        run_id = run.info.run_id
        client.set_terminated(run_id, "FINISHED")
    for name in SWEEP_FILES:
        if (folder / name).is_file():
            client.log_artifact(run_id, str(folder / name))
    return run_id
