"""Saving and loading models: arrays plus a JSON description in one .npz file, never pickle.

The file holds one array per parameter (named like 'dense1.w') and 'model.json', the UTF-8
bytes of {"format": "digitlab-model", "version": 1, "model": <description>, "extra": {...}}.
Loading reads it with allow_pickle=False, rebuilds the model from the description and checks
that every array is there with the right shape and dtype.

A run's model file keeps in extra["pipeline"] what its data pipeline needs beyond the config
(`pipeline_record`): the raw images' shape and scale and the fitted statistics (standardize's
mean and std), so that new inputs (a drawing) get exactly the training images' transforms
without reloading the training data (`restore_pipeline`).
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from digitlab.core.model import Sequential, build_model
from digitlab.data.transforms import Pipeline, Standardize, build_pipeline
from digitlab.errors import DigitlabError, ModelError
from digitlab.lab.plugins import load_plugins
from digitlab.lab.runs import write_npz

FORMAT, VERSION = "digitlab-model", 1
MODEL_FILE = "model.npz"


def save_model(
    model: Sequential, path: str | os.PathLike[str], extra: dict[str, Any] | None = None
) -> Path:
    """Write `model` (and JSON-ready `extra`, e.g. the data pipeline) atomically to `path`."""
    header = {"format": FORMAT, "version": VERSION, "model": model.describe(), "extra": extra or {}}
    arrays = {name: param for name, param, _ in model.parameters()}
    arrays.update(model.buffers())
    arrays["model.json"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)

    return write_npz(path, arrays)


def read_npz(path: Path, header_key: str, what: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The JSON header stored as `header_key` and the other arrays of an .npz file, read with
    allow_pickle=False; anything else is a one-line ModelError calling the file not `what`."""
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (ValueError, OSError, zipfile.BadZipFile, EOFError, KeyError) as err:
        raise ModelError(f"{path}: not {what} ({_short(err)})") from None
    if header_key not in arrays:
        raise ModelError(f"{path}: not {what} (no {header_key} inside)")
    try:
        header = json.loads(arrays.pop(header_key).tobytes().decode())
    except (ValueError, UnicodeDecodeError) as err:
        raise ModelError(f"{path}: not {what} (unreadable {header_key}: {_short(err)})") from None
    if not isinstance(header, dict):
        raise ModelError(f"{path}: not {what} ({header_key} is not a table)")
    return header, arrays


def rebuild(
    description: dict[str, Any], arrays: dict[str, np.ndarray], where: str, prefix: str = ""
) -> Sequential:
    """The model a description names, its parameters and buffers set from `arrays`
    (keys `prefix + name`), each checked for presence, shape, dtype and finiteness."""
    try:
        model = build_model(
            description["layers"],
            int(description["input_size"]),
            np.random.default_rng(0),
            np.dtype(description["dtype"]),
        )
    except (ValueError, KeyError, TypeError, DigitlabError) as err:
        raise ModelError(f"{where}: invalid model description ({_short(err)})") from None
    expected = {prefix + name: param for name, param, _ in model.parameters()}
    expected.update((prefix + name, buffer) for name, buffer in model.buffers())
    given = {key for key in arrays if key.startswith(prefix)}
    missing, unexpected = sorted(set(expected) - given), sorted(given - set(expected))
    if missing or unexpected:
        raise ModelError(
            f"{where}: arrays do not fit the description (missing {missing}, extra {unexpected})"
        )
    for name, param in expected.items():
        saved = arrays[name]
        if saved.shape != param.shape or saved.dtype != param.dtype:
            raise ModelError(
                f"{where}: array {name} is {saved.dtype}{list(saved.shape)}, "
                f"the description needs {param.dtype}{list(param.shape)}"
            )
        if not np.isfinite(saved).all():
            raise ModelError(f"{where}: array {name} holds non-finite values")
        param[...] = saved
    return model


def load_model(path: str | os.PathLike[str]) -> tuple[Sequential, dict[str, Any]]:
    """The model saved at `path` (a model file or a run folder) and its `extra` dict."""
    path = Path(path)
    if path.is_dir():
        path = path / MODEL_FILE
    if not path.is_file():
        raise ModelError(f"{path}: no such model file")
    header, arrays = read_npz(path, "model.json", "a digitlab model file")
    if header.get("format") != FORMAT or header.get("version") != VERSION:
        found = f"{header.get('format')!r} version {header.get('version')!r}"
        raise ModelError(f"{path}: not a digitlab model file (format {found})")
    extra = header.get("extra", {})
    # a model that uses a user's activation needs the user's plugin (package or file) to be rebuilt
    load_plugins(extra.get("config", {}).get("plugins", []))
    return rebuild(header.get("model", {}), arrays, str(path)), extra


def pipeline_record(
    pipeline: Pipeline, image_shape: tuple[int, int], max_value: float
) -> dict[str, Any]:
    """The JSON-ready part of a fitted pipeline that its config does not already say."""
    fitted: dict[str, Any] = {}
    for transform in pipeline.transforms:
        if isinstance(transform, Standardize) and transform.mean is not None:
            assert transform.std is not None
            fitted["standardize"] = {"mean": transform.mean.tolist(), "std": transform.std.tolist()}
    return {"image_shape": list(image_shape), "max_value": max_value, "fitted": fitted}


def restore_pipeline(config: dict[str, Any], record: dict[str, Any]) -> Pipeline:
    """The fitted pipeline of a run from its config (a dict as in config.json) and the
    `pipeline_record` saved with its model; the result transforms rows exactly as in training.

    Transforms without data-dependent state are fitted on one blank row (they only read its
    width); standardize gets the saved statistics back.
    """
    try:
        height, width = (int(side) for side in record["image_shape"])
        pipeline = build_pipeline(
            max_value=float(record["max_value"]),
            image_shape=(height, width),
            dtype=np.dtype(config.get("dtype", "float32")),
            crop=int(config.get("crop", 0)),
            pixel_subset=config.get("pixel_subset"),
            seed=int(config.get("seed", 0)),
            invert=bool(config.get("invert", False)),
            standardize=bool(config.get("standardize", False)),
            per_pixel=bool(config.get("per_pixel", False)),
        )
        x = np.zeros((1, height * width), pipeline.dtype)
        for transform in pipeline.transforms:
            if isinstance(transform, Standardize):
                saved = record["fitted"]["standardize"]
                transform.mean = np.asarray(saved["mean"], pipeline.dtype)
                transform.std = np.asarray(saved["std"], pipeline.dtype)
            else:
                transform.fit(x)
            x = transform(x)
    except (KeyError, TypeError, ValueError) as err:
        raise ModelError(f"the saved data pipeline is incomplete ({_short(err)})") from None
    pipeline.fitted = True
    return pipeline


def _short(err: BaseException) -> str:
    return str(err).splitlines()[0] if str(err) else type(err).__name__
