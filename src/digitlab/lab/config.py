"""The validated run configuration: one flat set of keys shared by TOML files and CLI flags.

A TOML file uses the flag names with underscores (`batch_size = 256`). Registry entries take
keyword parameters in a table beside their name, never in a string:

    activation = { name = "leaky_relu", slope = 0.1 }
    optimizer = { name = "adam", beta1 = 0.9 }
    learning_rate_schedule = { name = "piecewise", steps = [[0.5, 10], [0.1, 10], [0.02, 10]] }
    init = { name = "normal", std = 0.1 }

Keys use full words (`learning_rate`, `hidden_sizes`); the older short names (`lr`, `hidden`,
`lr_schedule`) still load, as aliases, so old files and saved run configs keep working.
Flags override the file; validation reports the first bad key in one line (ConfigError).
"""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo

from digitlab.core.activations import ACTIVATIONS, check_params
from digitlab.core.init import INITIALISERS
from digitlab.core.losses import LOSSES
from digitlab.core.optim import OPTIMIZERS, Optimizer, get_optimizer
from digitlab.core.schedules import SCHEDULES
from digitlab.data.augment import build_augment
from digitlab.errors import ConfigError
from digitlab.lab.plugins import load_plugins


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


def aliases(field: FieldInfo, name: str) -> list[str]:
    """A field's name followed by the older names it still accepts."""
    alias = field.validation_alias
    names = (
        [a for a in alias.choices if isinstance(a, str)] if isinstance(alias, AliasChoices) else []
    )
    return [name, *(a for a in names if a != name)]


# Registry-valued keys and the registry each names: config validation, CLI choices and shell
# completion all read the registries through this table, so a plugin's entries are valid everywhere.
REGISTRIES: dict[str, tuple[str, dict[str, Any]]] = {
    "activation": ("activation", ACTIVATIONS),
    "output_activation": ("activation", ACTIVATIONS),
    "init": ("initialiser", INITIALISERS),
    "loss": ("loss", LOSSES),
    "optimizer": ("optimizer", OPTIMIZERS),
    "learning_rate_schedule": ("schedule", SCHEDULES),
}


class Config(BaseModel):
    """Everything a run needs; defaults train the 8x8 digits to about 98% in seconds.

    Each field's description is its flag's help text and its line in the README's reference;
    a `validation_alias` lists older names that still load (and still work as flags).
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True, populate_by_name=True)

    plugins: list[str] = Field(
        default_factory=list, description="Python files registering activations, layers etc."
    )
    # data
    data: Literal["digits", "mnist", "idx", "folder", "csv"] = Field(
        "digits", description="Dataset (folder: your own images; csv: the Kaggle CSV form)."
    )
    data_dir: str | None = Field(
        None,
        description="Folder holding the four IDX files, read as they are [mnist: "
        "$DIGITLAB_DATA_DIR, else the cache]; folder: one subfolder of images per class; "
        "csv: train.csv (and test.csv) or one CSV file.",
    )
    image_size: int | None = Field(
        None, ge=8, le=256, description="Side of the images --data folder makes [28]."
    )
    cache_dir: str | None = Field(
        None,
        description="Where MNIST is downloaded [$DIGITLAB_CACHE/mnist or ~/.cache/digitlab/mnist].",
    )
    split: Literal["holdout", "book", "nielsen", "per_class"] = Field(
        "holdout", description="Validation split."
    )
    val_fraction: float = Field(0.1, gt=0, lt=1, description="Validation share of training data.")
    train_per_class: int | None = Field(
        None, gt=0, description="Keep the first N training images per class."
    )
    train_first: int | None = Field(None, gt=0, description="Keep the first N training images.")
    per_class: int = Field(
        174, gt=1, description="per_class split: the first N images of each class (all files)."
    )
    val_per_class: int = Field(
        20, gt=0, description="per_class split: the last N of those validate; the rest test."
    )
    raw_pixels: bool = Field(
        False, description="Keep the raw pixel values (digits: 0-16) instead of scaling to [0, 1]."
    )
    standardize: bool = Field(False, description="Standardise with the training set's statistics.")
    per_pixel: bool = Field(False, description="Standardise each pixel apart.")
    invert: bool = Field(False, description="Invert pixels (1 - x).")
    crop: int = Field(0, ge=0, description="Crop this many border pixels on each side.")
    pixel_subset: int | None = Field(
        None, gt=0, description="Keep a fixed subset of N pixels (see pixel_pick)."
    )
    pixel_pick: Literal["random", "variance"] = Field(
        "random",
        description="Which N pixels pixel_subset keeps: random (drawn from the seed) or the N "
        "of highest variance in the training images.",
    )
    # model: `layers` (a stack or graph of layer tables, see digitlab.core.model) replaces
    # hidden_sizes/activation/dropout; an output dense layer is added unless a node is "output"
    layers: list[dict[str, Any]] | None = Field(
        None,
        description="A stack or graph of layer tables (TOML only; replaces hidden_sizes, "
        "activation and dropout).",
    )
    hidden_sizes: list[int] = Field(
        default_factory=lambda: [100],
        validation_alias=AliasChoices("hidden_sizes", "hidden"),
        description="Hidden layer sizes (a flag takes a comma list like 256,128).",
    )
    activation: Entry = Field(Entry(name="relu"), description="Hidden activation.")
    activation_schedule: list[tuple[int, Entry]] | None = Field(
        None,
        description='Switch the hidden activation after N epochs: [[10, "relu"]] (a flag: '
        "10:relu,20:tanh; parameters in TOML: [10, {name = ..., slope = 0.1}]). Layers keep "
        "their names: a switched sigmoid1 computes relu.",
    )
    init: Entry | None = Field(None, description="Weight initialiser [per activation].")
    bias_std: float = Field(0.0, ge=0, description="Draw biases from N(0, std^2) (0: zeros).")
    bias_init: float = Field(
        0.0,
        allow_inf_nan=False,
        description="Hidden layers' biases start at this constant (the output's at 0).",
    )
    dropout: float = Field(0.0, ge=0, lt=1, description="Dropout rate after each hidden layer.")
    shared_bias: bool = Field(
        False, description="One output bias shared by all classes (the dense key shared_bias)."
    )
    output_activation: str | None = Field(
        None, description="Activation on the output layer (e.g. sigmoid)."
    )
    loss: str = Field("softmax_cross_entropy", description="Loss, computed from the logits.")
    dtype: Literal["float32", "float64"] = Field("float32", description="Float type.")
    # training
    optimizer: Entry = Field(Entry(name="sgd"), description="Optimizer.")
    learning_rate: float = Field(
        0.1,
        gt=0,
        validation_alias=AliasChoices("learning_rate", "lr"),
        description="Learning rate.",
    )
    learning_rate_schedule: Entry = Field(
        Entry(name="constant"),
        validation_alias=AliasChoices("learning_rate_schedule", "lr_schedule"),
        description="Learning-rate schedule.",
    )
    batch_size: int = Field(32, gt=0, description="Batch size.")
    batch_ramp: int | None = Field(
        None, gt=0, description="Start batch size, doubled each epoch up to batch_size."
    )
    epochs: int = Field(50, gt=0, description="Epochs.")
    l1: float = Field(0.0, ge=0, description="L1 penalty coefficient.")
    l2: float = Field(0.0, ge=0, description="L2 penalty coefficient (adds l2 * w to dw).")
    patience: int | None = Field(
        None, gt=0, description="Early stopping patience in epochs (best weights restored)."
    )
    clip_grad_norm: float | None = Field(
        None,
        gt=0,
        allow_inf_nan=False,
        description="Before each step, scale the gradient down to this L2 norm (over all "
        "parameters at once).",
    )
    max_norm: float | None = Field(
        None,
        gt=0,
        allow_inf_nan=False,
        description="After each step, cap each hidden unit's incoming weight vector at this L2 "
        "norm (dense layers but the output).",
    )
    save_best_model: bool = Field(
        False,
        description="Also keep the model of the lowest validation loss (model_best.npz) and "
        "both models' per-example validation losses.",
    )
    monitors: bool = Field(
        True, description="Per-layer monitors and alarms (a few percent of training time)."
    )
    monitor_samples: int = Field(
        20, gt=0, description="Batches per epoch the layer statistics look at."
    )
    augment: dict[str, float | str] | None = Field(
        None,
        description="Augmentation: shift, rotate, scale, elastic_alpha, elastic_sigma, "
        "probability, fill (what enters from outside: background, each image's own [default]; "
        "zero, raw black; or v in [0, 1] of the raw range, 1 white ink; through invert and "
        "standardize like the images).",
    )
    divergence: float = Field(
        1e4, ge=0, description="Stop when loss > this x max(first batch's, 1) (0: never)."
    )
    seed: int = Field(0, ge=0, description="Seed for split, init, dropout, shuffle.")
    threads: int | None = Field(
        None,
        ge=1,
        description=(
            "BLAS threads for training and evaluation [BLAS's own: every core]; 1 on a busy "
            "machine. Counts may differ in a result's last bits."
        ),
    )

    @model_validator(mode="before")
    @classmethod
    def _one_name_per_key(cls, values: Any) -> Any:
        if isinstance(values, dict):
            for name, field in cls.model_fields.items():
                given = [a for a in aliases(field, name) if a in values]
                if len(given) > 1:
                    raise ValueError(f"{' and '.join(given)} name the same key: give one")
        return values

    @field_validator("plugins")
    @classmethod
    def _absolute_plugins(cls, paths: list[str]) -> list[str]:
        # a saved config.json is read again from elsewhere (--config RUN/config.json, --resume)
        return [str(Path(path).expanduser().resolve()) for path in paths]

    @field_validator("hidden_sizes")
    @classmethod
    def _positive_sizes(cls, sizes: list[int]) -> list[int]:
        if any(s <= 0 for s in sizes):
            raise ValueError(f"hidden sizes must all be > 0, got {sizes}")
        return sizes

    @field_validator(*REGISTRIES)
    @classmethod
    def _registered(cls, value: Any, info: ValidationInfo) -> Any:
        what, registry = REGISTRIES[str(info.field_name)]
        name = value.name if isinstance(value, Entry) else value
        if name is not None and name not in registry:
            raise ValueError(f"unknown {what} {name!r}; known: {', '.join(sorted(registry))}")
        return value

    @field_validator("activation")
    @classmethod
    def _activation_params(cls, entry: Entry) -> Entry:
        try:
            check_params(entry.name, entry.params)
        except ConfigError as err:
            raise ValueError(str(err)) from None
        return entry

    @field_validator("activation_schedule")
    @classmethod
    def _switches(cls, switches: list[tuple[int, Entry]] | None) -> Any:
        for _, entry in switches or []:
            if entry.name not in ACTIVATIONS:
                known = ", ".join(sorted(ACTIVATIONS))
                raise ValueError(f"unknown activation {entry.name!r}; known: {known}")
            try:
                check_params(entry.name, entry.params)
            except ConfigError as err:
                raise ValueError(str(err)) from None
        epochs = [epoch for epoch, _ in switches or []]
        if epochs != sorted(set(epochs)):
            raise ValueError(f"the epochs must increase, got {epochs}")
        return switches

    @model_validator(mode="after")
    def _data_source(self) -> Config:
        if self.data == "digits" and self.data_dir is not None:
            raise ValueError(
                "--data-dir names data files; use it with --data mnist, idx, folder or csv"
            )
        if self.data in ("idx", "folder", "csv") and self.data_dir is None:
            raise ValueError(f"--data {self.data} needs --data-dir DIR")
        if self.image_size is not None and self.data != "folder":
            raise ValueError("--image-size sizes the images of --data folder; drop it")
        if self.split == "book" and self.data == "digits":
            raise ValueError("--split book cuts MNIST's test set; use holdout with the 8x8 digits")
        if self.pixel_pick != "random" and self.pixel_subset is None:
            raise ValueError(f"pixel_pick {self.pixel_pick!r} needs pixel_subset N")
        if self.augment and self.per_pixel:
            raise ValueError("augment moves pixels across per-pixel statistics: drop per_pixel")
        if self.augment:  # check the keys and values now, not when training starts
            try:
                build_augment(self.augment, (1, 1), np.random.default_rng(0))
            except ConfigError as err:
                raise ValueError(f"augment: {err}") from None
        for epoch, _ in self.activation_schedule or []:
            if not 0 < epoch < self.epochs:
                raise ValueError(
                    f"activation_schedule: epoch {epoch} is out of range: switch after 1 to "
                    f"{self.epochs - 1} epochs (set the first activation with activation)"
                )
        if self.batch_ramp is not None and self.batch_ramp > self.batch_size:
            raise ValueError(
                f"batch_ramp {self.batch_ramp} is larger than batch_size {self.batch_size}"
            )
        return self

    @model_validator(mode="after")
    def _one_bias_initialiser(self) -> Config:
        if self.bias_init and self.bias_std:
            raise ValueError("give bias_init (a constant) or bias_std (random biases), not both")
        return self


def make_config(values: dict[str, Any]) -> Config:
    """Validate `values` into a Config, or raise a one-line ConfigError.

    Installed plugins and the plugin files named in `values` are imported first, so what they
    register validates.
    """
    plugins = values.get("plugins") or []
    if not isinstance(plugins, list) or not all(isinstance(p, str) for p in plugins):
        raise ConfigError("plugins: expected a list of Python files")
    load_plugins(plugins)
    try:
        return Config(**values)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "config"
        message = first["msg"].removeprefix("Value error, ")
        more = f" (and {err.error_count() - 1} more)" if err.error_count() > 1 else ""
        raise ConfigError(f"{where}: {message}{more}") from None


MAX_CONFIG_BYTES = 1 << 20  # a config file is a few hundred bytes; a larger one is a mistake


def read_config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The raw key/value table of a TOML (or JSON, as written into run folders) config file."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:  # a config is small: read a bounded amount
            data = handle.read(MAX_CONFIG_BYTES + 1)
    except OSError as err:
        raise ConfigError(f"{path}: cannot read config ({err.strerror or err})") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path}: cannot read config (over {MAX_CONFIG_BYTES} bytes)")
    try:
        text = data.decode("utf-8")
        values = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: malformed config: not UTF-8 text ({err.reason})") from None
    except (ValueError, RecursionError) as err:  # TOML's and JSON's errors are ValueErrors
        message = str(err).splitlines()[0] if str(err) else "nested too deeply"
        raise ConfigError(f"{path}: malformed config: {message}") from None
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: a config must be a table of keys")
    plugins = values.get("plugins", [])
    if isinstance(plugins, list):  # plugin paths in a file are relative to that file
        values["plugins"] = [str(path.parent / p) if isinstance(p, str) else p for p in plugins]
    return values


def canonical_keys(values: dict[str, Any]) -> dict[str, Any]:
    """`values` with older key names (`lr`, `hidden`) renamed to the full ones, so that a flag
    or override under either name replaces the file's value under either name."""
    renames = {
        alias: name
        for name, field in Config.model_fields.items()
        for alias in aliases(field, name)[1:]
    }
    out: dict[str, Any] = {}
    for key, value in values.items():
        name = renames.get(key, key)
        if name in out:
            raise ConfigError(f"{key}: the same key as {name}; give one of them")
        out[name] = value
    return out


def load_config(path: str | os.PathLike[str] | None, overrides: dict[str, Any]) -> Config:
    """The file's values (if any) with `overrides` (flags that were given) on top, validated."""
    values = canonical_keys(read_config_file(path)) if path is not None else {}
    values.update(canonical_keys({k: v for k, v in overrides.items() if v is not None}))
    return make_config(values)


def to_dict(config: Config) -> dict[str, Any]:
    """A JSON/TOML-ready dict of the resolved config, entries written as tables."""
    out = config.model_dump()
    for key in ("activation", "init", "optimizer", "learning_rate_schedule"):
        entry = getattr(config, key)
        out[key] = None if entry is None else {"name": entry.name, **entry.params}
    if config.activation_schedule is not None:
        out["activation_schedule"] = [
            [epoch, {"name": entry.name, **entry.params}]
            for epoch, entry in config.activation_schedule
        ]
    return out


def make_optimizer(config: Config) -> Optimizer:
    """The optimizer a config names, with its rate, penalties and parameters."""
    return get_optimizer(
        config.optimizer.name,
        config.learning_rate,
        l1=config.l1,
        l2=config.l2,
        **config.optimizer.params,
    )
