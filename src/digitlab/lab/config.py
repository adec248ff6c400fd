"""The validated run configuration: one flat set of keys shared by TOML files and CLI flags.

A TOML file uses the flag names with underscores (`batch_size = 256`). Registry entries take
keyword parameters in a table beside their name, never in a string:

    activation = { name = "leaky_relu", slope = 0.1 }
    optimizer = { name = "adam", beta1 = 0.9 }
    lr_schedule = { name = "piecewise", steps = [[0.5, 10], [0.1, 10], [0.02, 10]] }
    init = { name = "normal", std = 0.1 }

Flags override the file; validation reports the first bad key in one line (ConfigError).
"""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from digitlab.core.activations import ACTIVATIONS, check_params
from digitlab.core.init import INITIALISERS
from digitlab.core.losses import LOSSES
from digitlab.core.optim import OPTIMIZERS
from digitlab.core.schedules import SCHEDULES
from digitlab.data.augment import build_augment
from digitlab.errors import ConfigError
from digitlab.lab.plugins import load_plugin


class Entry(BaseModel):
    """A registry name plus keyword parameters: `{name = "leaky_relu", slope = 0.1}`."""

    model_config = ConfigDict(extra="allow", frozen=True)
    name: str

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.model_extra or {})

    @model_validator(mode="before")
    @classmethod
    def _from_name(cls, value: Any) -> Any:
        return {"name": value} if isinstance(value, str) else value


def _known(entry: Entry | None, registry: dict[str, Any], what: str) -> Entry | None:
    if entry is not None and entry.name not in registry:
        raise ValueError(f"unknown {what} {entry.name!r}; known: {', '.join(sorted(registry))}")
    return entry


class Config(BaseModel):
    """Everything a run needs; defaults train the 8x8 digits to about 98% in seconds."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    plugins: list[str] = Field(default_factory=list)
    # data
    data: Literal["digits", "mnist", "idx"] = "digits"
    data_dir: str | None = None
    cache_dir: str | None = None
    split: Literal["holdout", "book", "nielsen"] = "holdout"
    val_fraction: float = Field(0.1, gt=0, lt=1)
    train_per_class: int | None = Field(None, gt=0)
    train_first: int | None = Field(None, gt=0)
    standardize: bool = False
    per_pixel: bool = False
    invert: bool = False
    crop: int = Field(0, ge=0)
    pixel_subset: int | None = Field(None, gt=0)
    # model: `layers` (a stack or graph of layer tables, see digitlab.core.model) replaces
    # hidden/activation/dropout; an output dense layer is added unless a node is named "output"
    layers: list[dict[str, Any]] | None = None
    hidden: list[int] = Field(default_factory=lambda: [100])
    activation: Entry = Entry(name="relu")
    init: Entry | None = None
    bias_std: float = Field(0.0, ge=0)
    dropout: float = Field(0.0, ge=0, lt=1)
    output_activation: str | None = None
    loss: str = "softmax_cross_entropy"
    dtype: Literal["float32", "float64"] = "float32"
    # training
    optimizer: Entry = Entry(name="sgd")
    lr: float = Field(0.1, gt=0)
    lr_schedule: Entry = Entry(name="constant")
    batch_size: int = Field(32, gt=0)
    batch_ramp: int | None = Field(None, gt=0)
    epochs: int = Field(50, gt=0)
    l1: float = Field(0.0, ge=0)
    l2: float = Field(0.0, ge=0)
    patience: int | None = Field(None, gt=0)
    monitors: bool = True  # per-layer statistics and alarms (a few percent of training time)
    monitor_samples: int = Field(20, gt=0)  # batches per epoch the layer statistics look at
    augment: dict[str, float] | None = None  # {shift, rotate, scale, elastic_alpha, ...}
    divergence: float = Field(1e4, ge=0)  # stop at loss > this x max(first, 1); 0: never
    seed: int = Field(0, ge=0)

    @field_validator("hidden")
    @classmethod
    def _positive_sizes(cls, sizes: list[int]) -> list[int]:
        if any(s <= 0 for s in sizes):
            raise ValueError(f"hidden sizes must all be > 0, got {sizes}")
        return sizes

    @field_validator("activation")
    @classmethod
    def _activation(cls, entry: Entry) -> Entry:
        _known(entry, ACTIVATIONS, "activation")
        try:
            check_params(entry.name, entry.params)
        except ConfigError as err:
            raise ValueError(str(err)) from None
        return entry

    @field_validator("output_activation")
    @classmethod
    def _output_activation(cls, name: str | None) -> str | None:
        if name is not None:
            _known(Entry(name=name), ACTIVATIONS, "activation")
        return name

    @field_validator("init")
    @classmethod
    def _init(cls, entry: Entry | None) -> Entry | None:
        return _known(entry, INITIALISERS, "initialiser")

    @field_validator("optimizer")
    @classmethod
    def _optimizer(cls, entry: Entry) -> Entry:
        return _known(entry, OPTIMIZERS, "optimizer")  # type: ignore[return-value]

    @field_validator("lr_schedule")
    @classmethod
    def _schedule(cls, entry: Entry) -> Entry:
        return _known(entry, SCHEDULES, "schedule")  # type: ignore[return-value]

    @field_validator("loss")
    @classmethod
    def _loss(cls, name: str) -> str:
        _known(Entry(name=name), LOSSES, "loss")
        return name

    @model_validator(mode="after")
    def _data_source(self) -> Config:
        if self.data == "digits" and self.data_dir is not None:
            raise ValueError("--data-dir reads IDX files; use it with --data mnist or --data idx")
        if self.data == "idx" and self.data_dir is None:
            raise ValueError("--data idx needs --data-dir DIR")
        if self.split == "book" and self.data == "digits":
            raise ValueError("--split book cuts MNIST's test set; use holdout with the 8x8 digits")
        if self.augment and self.per_pixel:
            raise ValueError("augment moves pixels across per-pixel statistics: drop per_pixel")
        if self.augment:  # check the keys and values now, not when training starts
            try:
                build_augment(self.augment, (1, 1), np.random.default_rng(0))
            except ConfigError as err:
                raise ValueError(f"augment: {err}") from None
        if self.batch_ramp is not None and self.batch_ramp > self.batch_size:
            raise ValueError(
                f"batch_ramp {self.batch_ramp} is larger than batch_size {self.batch_size}"
            )
        return self


def make_config(values: dict[str, Any]) -> Config:
    """Validate `values` into a Config, or raise a one-line ConfigError.

    Plugin files named in `values` are imported first, so what they register validates.
    """
    plugins = values.get("plugins") or []
    if not isinstance(plugins, list):
        raise ConfigError("plugins: expected a list of Python files")
    for plugin in plugins:
        load_plugin(plugin)
    try:
        return Config(**values)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "config"
        message = first["msg"].removeprefix("Value error, ")
        more = f" (and {err.error_count() - 1} more)" if err.error_count() > 1 else ""
        raise ConfigError(f"{where}: {message}{more}") from None


def read_config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The raw key/value table of a TOML (or JSON, as written into run folders) config file."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as err:
        raise ConfigError(f"{path}: cannot read config ({err.strerror})") from None
    try:
        values = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as err:
        raise ConfigError(f"{path}: malformed config: {err}") from None
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: a config must be a table of keys")
    plugins = values.get("plugins", [])
    if isinstance(plugins, list):  # plugin paths in a file are relative to that file
        values["plugins"] = [str(path.parent / p) for p in plugins]
    return values


def load_config(path: str | os.PathLike[str] | None, overrides: dict[str, Any]) -> Config:
    """The file's values (if any) with `overrides` (flags that were given) on top, validated."""
    values = read_config_file(path) if path is not None else {}
    values.update({k: v for k, v in overrides.items() if v is not None})
    return make_config(values)


def to_dict(config: Config) -> dict[str, Any]:
    """A JSON/TOML-ready dict of the resolved config, entries written as tables."""
    out = config.model_dump()
    for key in ("activation", "init", "optimizer", "lr_schedule"):
        entry = getattr(config, key)
        out[key] = None if entry is None else {"name": entry.name, **entry.params}
    return out
