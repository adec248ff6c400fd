"""Saving and loading models: arrays plus a JSON description in one .npz file, never pickle.

The file holds one array per parameter (named like 'dense1.w') and 'model.json', the UTF-8
bytes of {"format": "digitlab-model", "version": 1, "model": <description>, "extra": {...}}.
Loading reads it with allow_pickle=False, rebuilds the model from the description and checks
that every array is there with the right shape and dtype.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from digitlab.core.layers import Sequential, build_model
from digitlab.errors import DigitlabError, ModelError
from digitlab.lab.plugins import load_plugin
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


def load_model(path: str | os.PathLike[str]) -> tuple[Sequential, dict[str, Any]]:
    """The model saved at `path` (a model file or a run folder) and its `extra` dict."""
    path = Path(path)
    if path.is_dir():
        path = path / MODEL_FILE
    if not path.is_file():
        raise ModelError(f"{path}: no such model file")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (ValueError, OSError, zipfile.BadZipFile, EOFError, KeyError) as err:
        raise ModelError(f"{path}: not a digitlab model file ({_short(err)})") from None
    if not isinstance(arrays, dict) or "model.json" not in arrays:
        raise ModelError(f"{path}: not a digitlab model file (no model.json inside)")
    try:
        header = json.loads(arrays.pop("model.json").tobytes().decode())
        if header.get("format") != FORMAT:
            raise ValueError("wrong format marker")
        if header.get("version") != VERSION:
            raise ValueError(f"unsupported version {header.get('version')}")
        description = header["model"]
        # a model that uses a user's activation needs the user's plugin file to be rebuilt
        for plugin in header.get("extra", {}).get("config", {}).get("plugins", []):
            load_plugin(plugin)
        model = build_model(
            description["layers"],
            int(description["input_size"]),
            np.random.default_rng(0),
            np.dtype(description["dtype"]),
        )
    except ModelError:
        raise
    except (ValueError, KeyError, TypeError, UnicodeDecodeError, DigitlabError) as err:
        raise ModelError(f"{path}: invalid model description ({_short(err)})") from None
    expected = {name: param for name, param, _ in model.parameters()}
    expected.update(model.buffers())
    missing, unexpected = sorted(set(expected) - set(arrays)), sorted(set(arrays) - set(expected))
    if missing or unexpected:
        raise ModelError(
            f"{path}: arrays do not fit the description (missing {missing}, extra {unexpected})"
        )
    for name, param in expected.items():
        saved = arrays[name]
        if saved.shape != param.shape or saved.dtype != param.dtype:
            raise ModelError(
                f"{path}: array {name} is {saved.dtype}{list(saved.shape)}, "
                f"the description needs {param.dtype}{list(param.shape)}"
            )
        if not np.isfinite(saved).all():
            raise ModelError(f"{path}: array {name} holds non-finite values")
        param[...] = saved
    return model, header.get("extra", {})


def _short(err: BaseException) -> str:
    return str(err).splitlines()[0] if str(err) else type(err).__name__
