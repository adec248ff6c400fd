"""Saving and loading models: arrays plus a JSON description in one .npz file, never pickle.

The file holds one array per parameter (named like 'dense1.w') and 'model.json', the UTF-8
bytes of {"format": "digitlab-model", "version": 1, "model": <description>, "extra": {...}}.
Loading reads it with allow_pickle=False, rebuilds the model from the description and checks
that every array is there with the right shape and dtype.

A run's model file keeps in extra["pipeline"] what its data pipeline needs beyond the config
(`pipeline_record`): the raw images' shape and scale, the fitted statistics (standardize's
mean and std, the pixel subset's columns), so that new inputs (a drawing) get exactly the
training images' transforms without reloading the training data (`restore_pipeline`).
"""

from __future__ import annotations

import json
import math
import os
import struct
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from digitlab.core.evaluation import EVAL_CHUNK
from digitlab.core.guards import spec_size
from digitlab.core.model import Sequential, build_model
from digitlab.data.transforms import Pipeline, PixelSubset, Standardize, build_pipeline
from digitlab.errors import DataError, DigitlabError, ModelError
from digitlab.lab.plugins import load_plugins
from digitlab.lab.runs import write_npz
from digitlab.memory import ensure_fits, size_text

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


def check_model_memory(
    spec: list[dict[str, Any]], input_size: int, dtype: Any, rows: int, error: type[DigitlabError]
) -> int | None:
    """Refuse a model that would not fit in memory, before building it: its weights with their
    gradients, optimizer state and a copy, and its outputs for `rows` examples at once (a batch
    or an evaluation chunk) forward and backward. The parameter count, None for a bad spec."""
    size = spec_size(spec, input_size)
    if size is None:
        return None
    parameters, width = size
    itemsize = np.dtype(dtype).itemsize
    weights = 6 * parameters * itemsize  # theta, g, mask, two optimizer slots, best weights
    ensure_fits(weights, f"the model ({parameters:,} parameters, training state included)", error)
    rows = max(1, rows)
    batch = weights + 3 * rows * width * itemsize
    ensure_fits(batch, f"the model with {rows:,} examples at once (a batch)", error)
    return parameters


# Deflate never expands more than 1032:1: a member claiming more is damaged or a zip bomb.
_MAX_ZIP_RATIO = 1032
_NPZ_ERRORS = (
    ValueError,
    OSError,
    zipfile.BadZipFile,
    EOFError,
    KeyError,
    zlib.error,
    NotImplementedError,
    RuntimeError,
    struct.error,
    UnicodeDecodeError,
    IndexError,
    TypeError,
    OverflowError,
)  # fmt: skip  (what zipfile and np.load raise on damaged archives; fuzz_files.py finds them)


def _check_archive(path: Path) -> None:
    """Check an .npz archive before np.load allocates anything: every member an .npy array
    (no object arrays, which would need pickle) whose header's shape and dtype account for
    exactly its size, each size possible for its compressed size, and all of them in memory."""
    with zipfile.ZipFile(path) as archive:
        infos = archive.infolist()
        for info in infos:
            if info.compress_type == zipfile.ZIP_STORED and info.file_size != info.compress_size:
                raise ValueError(f"{info.filename}: stored sizes disagree")
            if info.file_size > _MAX_ZIP_RATIO * info.compress_size + 1024:
                raise ValueError(
                    f"{info.filename} claims {size_text(info.file_size)} from "
                    f"{size_text(info.compress_size)}: a zip bomb or a damaged archive"
                )
        ensure_fits(sum(i.file_size for i in infos), f"{path}: its arrays", ModelError)
        for info in infos:
            with archive.open(info) as member:
                version = np.lib.format.read_magic(member)
                if version == (1, 0):
                    shape, _, dtype = np.lib.format.read_array_header_1_0(member)
                elif version == (2, 0):
                    shape, _, dtype = np.lib.format.read_array_header_2_0(member)
                else:
                    raise ValueError(f"{info.filename}: .npy version {version} is not supported")
                if dtype.hasobject:
                    raise ValueError(f"{info.filename} holds Python objects (pickle)")
                size = math.prod(shape) * dtype.itemsize + member.tell()
                if size != info.file_size:
                    raise ValueError(
                        f"{info.filename}: its header says {dtype}{list(shape)}, "
                        f"which does not fit its {info.file_size} bytes"
                    )


def read_npz(path: Path, header_key: str, what: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The JSON header stored as `header_key` and the other arrays of an .npz file, read with
    allow_pickle=False after `_check_archive`; anything else is a one-line ModelError calling
    the file not `what`."""
    try:
        _check_archive(path)
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except _NPZ_ERRORS as err:
        if isinstance(err, OSError) and err.errno and err.strerror:  # unreadable, not damaged
            raise ModelError(f"{path}: cannot read: {err.strerror}") from None
        raise ModelError(f"{path}: not {what} ({_short(err)})") from None
    if header_key not in arrays:
        raise ModelError(f"{path}: not {what} (no {header_key} inside)")
    try:
        header = json.loads(arrays.pop(header_key).tobytes().decode())
    except (ValueError, UnicodeDecodeError, RecursionError) as err:
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
        layers, input_size = description["layers"], int(description["input_size"])
        dtype = np.dtype(description["dtype"])
        if not isinstance(layers, list) or not all(isinstance(lay, dict) for lay in layers):
            raise TypeError("layers must be a list of tables")
        # never build more weights than the file holds (or than memory does)
        size = spec_size(layers, input_size)
        held = sum(array.size for key, array in arrays.items() if key.startswith(prefix))
        if size is not None and size[0] > held:
            raise ModelError(f"it describes {size[0]:,} parameters, the file holds {held:,}")
        check_model_memory(layers, input_size, dtype, EVAL_CHUNK, ModelError)
        model = build_model(layers, input_size, np.random.default_rng(0), dtype)
    except (
        ValueError, KeyError, TypeError, AttributeError, RecursionError, OverflowError,
        DigitlabError,
    ) as err:  # fmt: skip
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
    extra, description = header.get("extra", {}), header.get("model", {})
    config = extra.get("config", {}) if isinstance(extra, dict) else None
    plugins = config.get("plugins", []) if isinstance(config, dict) else None
    if not isinstance(description, dict) or not isinstance(plugins, list):
        raise ModelError(f"{path}: not a digitlab model file (its model or extra is not a table)")
    if not all(isinstance(plugin, str) for plugin in plugins):
        raise ModelError(f"{path}: not a digitlab model file (plugins {plugins!r})")
    # a model that uses a user's activation needs the user's plugin (package or file) to be rebuilt
    load_plugins(plugins)
    return rebuild(description, arrays, str(path)), extra


def pipeline_record(
    pipeline: Pipeline, image_shape: tuple[int, int], max_value: float
) -> dict[str, Any]:
    """The JSON-ready part of a fitted pipeline that its config does not already say."""
    fitted: dict[str, Any] = {}
    for transform in pipeline.transforms:
        if isinstance(transform, Standardize) and transform.mean is not None:
            assert transform.std is not None
            fitted["standardize"] = {"mean": transform.mean.tolist(), "std": transform.std.tolist()}
        if isinstance(transform, PixelSubset) and transform.columns is not None:
            fitted["pixel_subset"] = {
                "columns": transform.columns.tolist(),
                "n_features": transform.n_features,
            }
    return {"image_shape": list(image_shape), "max_value": max_value, "fitted": fitted}


def restore_pipeline(config: dict[str, Any], record: dict[str, Any]) -> Pipeline:
    """The fitted pipeline of a run from its config (a dict as in config.json) and the
    `pipeline_record` saved with its model; the result transforms rows exactly as in training.

    Transforms without data-dependent state are fitted on one blank row (they only read its
    width); standardize and the pixel subset get their saved statistics and columns back (a
    random subset saved before its columns were kept is drawn again from the seed).
    """
    try:
        height, width = (int(side) for side in record["image_shape"])
        pipeline = build_pipeline(
            max_value=float(record["max_value"]),
            image_shape=(height, width),
            dtype=np.dtype(config.get("dtype", "float32")),
            crop=int(config.get("crop", 0)),
            pixel_subset=config.get("pixel_subset"),
            pixel_pick=str(config.get("pixel_pick", "random")),
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
            elif isinstance(transform, PixelSubset) and (
                transform.pick != "random" or "pixel_subset" in record["fitted"]
            ):
                saved = record["fitted"]["pixel_subset"]
                transform.set_columns(saved["columns"], int(saved["n_features"]))
            else:
                transform.fit(x)
            x = transform(x)
    except (KeyError, TypeError, ValueError, DataError) as err:
        raise ModelError(f"the saved data pipeline is incomplete ({_short(err)})") from None
    pipeline.fitted = True
    return pipeline


def _short(err: BaseException) -> str:
    return str(err).splitlines()[0] if str(err) else type(err).__name__
