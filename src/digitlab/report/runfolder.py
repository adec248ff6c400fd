"""Reading a run folder for a report: every file checked, every failure one line naming it.

A run folder holds config.json, history.jsonl, metrics.json and model.npz (all required) and
predictions.npz (optional: runs written before it existed lack it, and a report then leaves out
the sections that need it). A file that is there but unreadable or malformed is an error
(DataError, or ModelError for model.npz), never a partial report. A run that has not finished
(status.json says running, stopped, failed or died, and there is no metrics.json) is read as a
snapshot: its config and history so far, with `live` holding its status.
"""

from __future__ import annotations

import json
import math
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from digitlab.core.layers import Dense
from digitlab.errors import DataError
from digitlab.lab.modelfile import MODEL_FILE, load_model
from digitlab.lab.runs import read_history, read_status

SPLITS = ("train", "val", "test", "test_all")  # metrics.json's per-split summaries, in order
PREDICTION_KEYS = ("y", "pred", "probs", "examples", "example_images")
REPORT_SPLIT = "test"  # the split whose predictions the report draws


@dataclass
class FirstLayer:
    """What the weights section needs from the model: its first layer's kind and weights."""

    kind: str  # class name of the first layer, e.g. 'Dense'
    input_size: int
    w: np.ndarray | None  # (n_inputs, n_hidden) when the first layer is dense


@dataclass
class ModelSummary:
    """The network as model.npz describes it (never as the config's `hidden` would build it)."""

    input_size: int
    output_size: int
    dtype: str
    layers: list[dict[str, Any]]  # the layer dicts it was built from (see core/model.py)
    parameters: int  # trained numbers; buffers such as batch norm's running mean excluded


@dataclass
class RunFolder:
    """The parsed contents of a run folder."""

    path: Path
    config: dict[str, Any]
    history: list[dict[str, Any]]
    metrics: dict[str, Any]
    predictions: dict[str, np.ndarray] | None  # REPORT_SPLIT's arrays, unprefixed, + image_shape
    first_layer: FirstLayer
    model: ModelSummary | None  # None for a run not finished
    live: dict[str, Any] | None = None  # status.json of a run not finished: a snapshot so far
    pipeline: dict[str, Any] | None = None  # the model file's pipeline record (modelfile.py)

    def _repr_html_(self) -> str:
        """A notebook's view: settings, accuracy per split, alarms, curves, link to report."""
        from digitlab.report.reprs import run_html

        return run_html(self)


def read_run(run_dir: str | os.PathLike[str]) -> RunFolder:
    """Read and check every file of the run folder `run_dir`."""
    path = Path(run_dir)
    if not path.is_dir():
        raise DataError(f"{path}: no such run folder")
    config = _read_json_object(path / "config.json")
    history = read_history(path)
    status = read_status(path)
    if (
        status is not None
        and status["state"] != "finished"
        and not (path / "metrics.json").exists()
    ):
        # still training (or stopped, failed, died): its history so far, no results yet
        return RunFolder(
            path, config, history, {}, None, FirstLayer("none", 0, None), model=None, live=status
        )
    metrics = _read_metrics(path / "metrics.json")
    predictions_file = path / "predictions.npz"
    predictions = _read_predictions(predictions_file) if predictions_file.exists() else None
    model, extra = load_model(path / MODEL_FILE)  # ModelError names the file
    first = model.layers[0] if model.layers else None
    first_layer = FirstLayer(
        kind=type(first).__name__ if first is not None else "none",
        input_size=model.input_size,
        w=np.array(first.params["w"]) if isinstance(first, Dense) else None,
    )
    description = model.describe()
    summary = ModelSummary(
        input_size=model.input_size,
        output_size=int(np.prod(model.output_shape)),
        dtype=str(description["dtype"]),
        layers=[dict(layer) for layer in description["layers"]],
        parameters=sum(int(param.size) for _, param, _ in model.parameters()),
    )
    record = extra.get("pipeline") if isinstance(extra, dict) else None
    return RunFolder(
        path,
        config,
        history,
        metrics,
        predictions,
        first_layer,
        summary,
        pipeline=record if isinstance(record, dict) else None,
    )


def _read_text(path: Path) -> str:
    if not path.is_file():
        raise DataError(f"{path}: missing from the run folder")
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: cannot be read ({_short(err)})") from None


def _parse_json(path: Path, text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise DataError(f"{path}: not valid JSON ({_short(err)})") from None


def _read_json_object(path: Path) -> dict[str, Any]:
    data = _parse_json(path, _read_text(path))
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected a JSON object, found {type(data).__name__}")
    return data


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _read_metrics(path: Path) -> dict[str, Any]:
    """metrics.json, with each split's summary checked: accuracy, interval, n, confusion."""
    metrics = _read_json_object(path)
    if REPORT_SPLIT not in metrics:
        raise DataError(f"{path}: no {REPORT_SPLIT!r} split")
    for split in SPLITS:
        if split not in metrics:
            continue
        summary = metrics[split]
        where = f"{path}: split {split!r}"
        if not isinstance(summary, dict):
            raise DataError(f"{where}: expected an object")
        for key in ("loss", "accuracy", "n"):
            if not _is_number(summary.get(key)):
                raise DataError(f"{where}: {key!r} is missing or not a number")
        interval = summary.get("accuracy_ci95")
        if not (
            isinstance(interval, list) and len(interval) == 2 and all(map(_is_number, interval))
        ):
            raise DataError(f"{where}: 'accuracy_ci95' is not a [low, high] pair")
        confusion = summary.get("confusion")
        try:
            counts = np.array(confusion, dtype=np.int64)
        except (TypeError, ValueError, OverflowError):
            counts = np.zeros((0, 1), dtype=np.int64)
        if counts.ndim != 2 or counts.shape[0] != counts.shape[1] or counts.size == 0:
            raise DataError(f"{where}: 'confusion' is not a square matrix of counts")
        if (counts < 0).any():
            raise DataError(f"{where}: 'confusion' holds negative counts")
    return metrics


def _read_predictions(path: Path) -> dict[str, np.ndarray]:
    """REPORT_SPLIT's arrays (keys y, pred, probs, examples, example_images) and image_shape."""
    prefix = f"{REPORT_SPLIT}_"
    wanted = [prefix + key for key in PREDICTION_KEYS] + ["image_shape"]
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [key for key in wanted if key not in data.files]
            if missing:
                raise DataError(f"{path}: lacks {', '.join(missing)}")
            arrays = {key.removeprefix(prefix): data[key] for key in wanted}
    except DataError:
        raise
    except (ValueError, OSError, zipfile.BadZipFile, EOFError, KeyError) as err:
        raise DataError(f"{path}: not a readable .npz file ({_short(err)})") from None
    y, pred, probs = arrays["y"], arrays["pred"], arrays["probs"]
    examples, images, shape = arrays["examples"], arrays["example_images"], arrays["image_shape"]
    n = len(y)
    problems = []
    if y.ndim != 1 or pred.shape != y.shape or not _integral(y, pred, examples, shape):
        problems.append("labels and predictions must be integer vectors of one length")
    elif probs.ndim != 2 or probs.shape[0] != n:
        problems.append(f"{prefix}probs must be (n, k) with n = {n}")
    elif examples.ndim != 1 or ((examples < 0) | (examples >= n)).any():
        problems.append(f"{prefix}examples must be indices below {n}")
    elif images.ndim != 2 or images.shape[0] != len(examples):
        problems.append(f"{prefix}example_images must be one row per example")
    elif shape.shape not in ((0,), (2,)) or (shape.size and int(np.prod(shape)) != images.shape[1]):
        problems.append(f"image_shape {shape.tolist()} does not fit {images.shape[1]} features")
    elif ((y < 0) | (y >= probs.shape[1]) | (pred < 0) | (pred >= probs.shape[1])).any():
        problems.append(f"classes must lie in 0..{probs.shape[1] - 1}")
    if problems:
        raise DataError(f"{path}: {problems[0]}")
    return arrays


def _integral(*arrays: np.ndarray) -> bool:
    return all(np.issubdtype(a.dtype, np.integer) or a.size == 0 for a in arrays)


def _short(err: BaseException) -> str:
    return str(err).splitlines()[0] if str(err) else type(err).__name__
