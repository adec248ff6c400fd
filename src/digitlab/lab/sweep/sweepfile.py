"""The sweep file: parse and check it, then plan its variants and trials (nothing runs here).

A sweep file is TOML (recipes/sweeps/lr_activation.toml is a complete example):

    name = "lr-x-activation"        # names the output folder sweeps/<name> [the file's stem]
    seeds = [0, 1, 2]               # or an int N meaning seeds 0..N-1 [1]
    mode = "grid"                   # or "random": `samples` variants drawn from the grid
    # samples = 4                   # (random mode) how many variants, without repetition
    # sample_seed = 0               # (random mode) seeds the draw, so reruns draw the same
    [base]                          # any `digitlab train` config keys, shared by every trial
    data = "digits"
    epochs = 20
    [grid]                          # option -> list of values; every combination is a variant
    lr = [0.01, 0.1, 1.0]
    activation = ["relu", "sigmoid", { name = "leaky_relu", slope = 0.1 }]

An adaptive search (`mode = "optuna"`, lab/sweep/adaptive.py) gives a [space] instead of a
[grid], and a budget of trials; Optuna's TPE picks each trial's options from the results so far:

    mode = "optuna"
    trials = 30                     # the budget: finished + pruned trials
    pruner = "median"               # or "halving", "none": stop trials whose val loss lags
    [space]
    lr = { low = 1e-4, high = 10.0, log = true }    # log-uniform float
    dropout = { low = 0.0, high = 0.5 }             # uniform float (floats: 0.0, not 0)
    batch_size = { low = 16, high = 128, step = 16 }  # int: both ends are integers
    activation = ["relu", "tanh", { name = "leaky_relu", slope = 0.1 }]  # a choice

Options that go together are listed instead of crossed: no [grid], and one table per variant,
whose keys override [base] for that variant:

    [[variants]]
    activation = "sigmoid"
    lr = 1.0
    [[variants]]
    activation = "relu"
    lr = 0.1

The accepted keys are declared once, as data a reference generator can read: SWEEP_KEYS (the
top level) and SECTION_KEYS (inside [base], [grid] and each [[variants]] table).

A trial is one variant with one seed. Its id is readable and stable: the varied options, the
seed and a hash of (base, options, seed), e.g. `lr=0.1,activation=relu_s2_5f1c0e9a2b`.
Changing [base] therefore gives new trials. Every trial's config is validated by `plan`,
before anything runs.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeGuard

import numpy as np
from pydantic import AliasChoices

from digitlab.errors import ConfigError, DigitlabError
from digitlab.lab.config import Config, make_config
from digitlab.report.sweep import option_label, variant_label

SWEEP_KEYS: dict[str, str] = {
    "name": "names the output folder sweeps/NAME [the file's stem]",
    "description": "free text, kept in the sweep folder's sweep.json",
    "seeds": "a list of distinct seeds >= 0, or a count N meaning seeds 0..N-1 [1]",
    "mode": '"grid" (every combination of [grid]), "random" (`samples` of them) or "optuna" '
    "(an adaptive search of [space]) [grid]",
    "samples": "random mode: how many variants, drawn without repetition",
    "sample_seed": "random mode: seeds the draw, so a rerun draws the same variants; optuna "
    "mode: seeds the sampler [0]",
    "trials": "optuna mode: the budget, finished + pruned trials (a rerun continues to it)",
    "pruner": 'optuna mode: "median", "halving" (successive halving) or "none": stop trials '
    "whose validation loss lags the others' at the same epoch (median: from epoch 2) [median]",
    "startup_trials": "optuna mode: random trials before TPE takes over and the pruner starts [5]",
    "base": "table of `digitlab train` config keys shared by every trial (no seed)",
    "grid": "table of key -> list of values; every combination is a variant",
    "space": "optuna mode: table of key -> {low, high[, log][, step]} (ints: an int range) or a "
    "list of choices",
    "variants": "`[[variants]]`: one table of keys per variant, over [base] (instead of [grid])",
}
"""The sweep file's top-level keys, each with a one-line description."""


def _config_keys() -> frozenset[str]:
    """Every key a config accepts: each field's name and the older names it still loads as."""
    keys = set()
    for name, info in Config.model_fields.items():
        keys.add(name)
        alias = info.validation_alias
        choices = alias.choices if isinstance(alias, AliasChoices) else [alias or info.alias]
        keys.update(choice for choice in choices if isinstance(choice, str))
    return frozenset(keys)


SECTION_KEYS: dict[str, frozenset[str]] = {
    section: _config_keys() - {"seed"} for section in ("base", "grid", "variants", "space")
}
"""The keys each section accepts: any config key but `seed` (set by the top-level `seeds`).
In [base] and [[variants]] a key takes a config value; in [grid], a list of them; in [space],
a range or a list of choices."""

RANGE_KEYS = ("low", "high", "log", "step")
PRUNERS = ("median", "halving", "none")


@dataclass
class SweepSpec:
    """A parsed, structurally checked sweep file (the configs are checked by `plan`)."""

    name: str
    seeds: list[int]
    base: dict[str, Any]
    grid: dict[str, list[Any]]
    mode: Literal["grid", "random", "optuna"] = "grid"
    samples: int | None = None
    sample_seed: int = 0
    description: str = ""
    listed: list[dict[str, Any]] | None = None  # [[variants]]: explicit option sets, no grid
    source: str = "sweep"  # where it came from, for error messages
    folder: Path | None = None  # the sweep file's folder: plugin paths are relative to it
    space: dict[str, dict[str, Any]] | None = None  # optuna mode: key -> parse_space's entry
    trials: int | None = None  # optuna mode: the budget
    pruner: str = "median"
    startup_trials: int = 5


def read_sweep(path: str | os.PathLike[str]) -> SweepSpec:
    """Read and check a sweep TOML file; one-line ConfigError if it is malformed."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as err:
        raise ConfigError(f"{path}: cannot read sweep file ({err.strerror})") from None
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: malformed TOML: {err}") from None
    return parse_sweep(table, source=str(path), default_name=path.stem, folder=path.parent)


def parse_sweep(
    table: dict[str, Any],
    *,
    source: str = "sweep",
    default_name: str = "sweep",
    folder: Path | None = None,
) -> SweepSpec:
    """A SweepSpec from the sweep file's table (see the module docstring for the keys)."""

    def bad(key: str, message: str) -> ConfigError:
        return ConfigError(f"{source}: {key}: {message}")

    unknown = sorted(set(table) - set(SWEEP_KEYS))
    if unknown:
        raise bad(unknown[0], f"unknown sweep key; known: {', '.join(SWEEP_KEYS)}")
    name = table.get("name", default_name)
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise bad("name", f"{name!r}: use letters, digits, '.', '_' and '-' (it names a folder)")
    seeds = table.get("seeds", 1)
    if isinstance(seeds, int) and not isinstance(seeds, bool) and seeds >= 1:
        seeds = list(range(seeds))
    elif not (
        isinstance(seeds, list)
        and seeds
        and all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds)
        and len(set(seeds)) == len(seeds)
    ):
        raise bad(
            "seeds", f"expected a count N >= 1 or a list of distinct seeds >= 0, got {seeds!r}"
        )
    mode = table.get("mode", "grid")
    if mode not in ("grid", "random", "optuna"):
        raise bad("mode", f"expected 'grid', 'random' or 'optuna', got {mode!r}")
    samples = table.get("samples")
    if mode == "random" and not (isinstance(samples, int) and samples >= 1):
        raise bad("samples", f"random mode needs samples = K >= 1, got {samples!r}")
    if mode != "random" and samples is not None:
        raise bad("samples", "only used with mode = 'random'")
    for key in ("trials", "pruner", "startup_trials", "space"):
        if mode != "optuna" and key in table:
            raise bad(key, "only used with mode = 'optuna'")
    sample_seed = table.get("sample_seed", 0)
    if not isinstance(sample_seed, int) or sample_seed < 0:
        raise bad("sample_seed", f"expected an int >= 0, got {sample_seed!r}")
    base, grid = table.get("base", {}), table.get("grid", {})
    for key, value in (("base", base), ("grid", grid)):
        if not isinstance(value, dict):
            raise bad(key, "expected a table")
        if "seed" in value:
            raise bad(f"{key}.seed", "set the seeds with the top-level `seeds` key")
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise bad(f"grid.{key}", f"expected a non-empty list of values, got {values!r}")
        seen = [json.dumps(v, sort_keys=True) for v in values]
        if len(set(seen)) != len(seen):
            duplicate = next(v for v, s in zip(values, seen, strict=True) if seen.count(s) > 1)
            raise bad(f"grid.{key}", f"value {option_label(duplicate)} appears twice")
        if key in base:
            raise bad(f"grid.{key}", "also set in [base]; set it in one place")
    listed = table.get("variants")
    if listed is not None:
        if grid or not isinstance(listed, list) or not listed:
            raise bad("variants", "expected a non-empty list of option tables, and no [grid]")
        if not all(isinstance(v, dict) and v and "seed" not in v for v in listed):
            raise bad("variants", "each variant is a non-empty table of options (no seed)")
        if mode != "grid":
            raise bad("mode", "[[variants]] lists the variants: no random mode")
    search: dict[str, Any] = {}
    if mode == "optuna":
        if "grid" in table or listed is not None:
            raise bad("mode", "an optuna search takes a [space], no [grid] or [[variants]]")
        search = _parse_search(table, dict(base), bad)
    description = table.get("description", "")
    return SweepSpec(
        name=name,
        seeds=list(seeds),
        base=dict(base),
        grid={k: list(v) for k, v in grid.items()},
        mode=mode,
        samples=samples,
        sample_seed=sample_seed,
        description=str(description),
        listed=[dict(v) for v in listed] if listed is not None else None,
        source=source,
        folder=folder,
        **search,
    )


def _parse_search(
    table: dict[str, Any], base: dict[str, Any], bad: Callable[[str, str], ConfigError]
) -> dict[str, Any]:
    """The optuna mode's keys: trials, pruner, startup_trials and the [space]."""
    trials = table.get("trials")
    if not _is_int(trials) or trials < 1:
        raise bad("trials", f"optuna mode needs trials = N >= 1 (the budget), got {trials!r}")
    pruner = table.get("pruner", "median")
    if pruner not in PRUNERS:
        raise bad("pruner", f"expected one of {', '.join(PRUNERS)}, got {pruner!r}")
    startup = table.get("startup_trials", 5)
    if not _is_int(startup) or startup < 0:
        raise bad("startup_trials", f"expected an int >= 0, got {startup!r}")
    space = table.get("space")
    if not isinstance(space, dict) or not space:
        raise bad("space", "optuna mode needs a [space] table: key -> range or list of choices")
    parsed = {}
    for key, entry in space.items():
        if key not in SECTION_KEYS["space"]:
            raise bad(f"space.{key}", "not a config key (see digitlab train --help)")
        if key in base:
            raise bad(f"space.{key}", "also set in [base]; set it in one place")
        parsed[key] = parse_space(entry, _naming(bad, f"space.{key}"))
    return {"space": parsed, "trials": trials, "pruner": pruner, "startup_trials": startup}


def _naming(bad: Callable[[str, str], ConfigError], key: str) -> Callable[[str], ConfigError]:
    return lambda message: bad(key, message)


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def parse_space(entry: Any, bad: Callable[[str], ConfigError]) -> dict[str, Any]:
    """One [space] entry as {type: float|int|choice, ...}: a list is a choice; a table
    {low, high[, log][, step]} a range, of ints when both ends are ints (TOML's 1 vs 1.0)."""
    if isinstance(entry, list):
        if not entry:
            raise bad("expected a non-empty list of choices")
        labels = [option_label(v) for v in entry]
        if len(set(labels)) != len(labels):
            raise bad(f"choice {next(x for x in labels if labels.count(x) > 1)} appears twice")
        return {"type": "choice", "choices": list(entry)}
    if not isinstance(entry, dict):
        raise bad("expected {low = ..., high = ...[, log = true][, step = ...]} or a list")
    unknown = sorted(set(entry) - set(RANGE_KEYS))
    if unknown:
        raise bad(f"unknown key {unknown[0]!r}; a range has {', '.join(RANGE_KEYS)}")
    low: Any = entry.get("low")
    high: Any = entry.get("high")
    log: Any = entry.get("log")
    step: Any = entry.get("step")
    if not (_is_number(low) and _is_number(high)):
        raise bad(f"low and high must be numbers, got low = {low!r}, high = {high!r}")
    if not low < high:
        raise bad(f"low ({low}) must be below high ({high})")
    log = False if log is None else log
    if not isinstance(log, bool):
        raise bad(f"log is true or false, got {log!r}")
    if log and low <= 0:
        raise bad(f"a log range needs low > 0, got {low}")
    kind = "int" if _is_int(low) and _is_int(high) and (step is None or _is_int(step)) else "float"
    if step is not None:
        if not _is_number(step) or step <= 0:
            raise bad(f"step must be a number > 0, got {step!r}")
        if log and step != 1:
            raise bad("a log range takes no step")
        if kind == "int" and (high - low) % step:
            raise bad(f"high - low ({high - low}) is not a multiple of step ({step})")
    if kind == "float":
        low, high = float(low), float(high)
        step = None if step is None else float(step)
    return {"type": kind, "low": low, "high": high, "log": log, "step": step}


def space_values(entry: dict[str, Any]) -> list[Any]:
    """The values that bound a space entry (its ends, or every choice), to validate up front."""
    return list(entry["choices"]) if entry["type"] == "choice" else [entry["low"], entry["high"]]


# --- variants and trials ------------------------------------------------------------------------


@dataclass
class Trial:
    """One variant with one seed."""

    id: str
    variant: int  # index into the plan's variants
    options: dict[str, Any]
    seed: int
    values: dict[str, Any]  # the raw config: base + options + seed, plugin paths resolved
    study: dict[str, Any] | None = None  # optuna mode: where the worker reports (adaptive.py)


def variants(spec: SweepSpec) -> list[dict[str, Any]]:
    """The variants' options in grid order (the last key varies fastest); in random mode the
    `samples` drawn without repetition by `sample_seed`, kept in grid order. An optuna search
    has no fixed variants: here each [space] key at each end or choice, the rest as in [base]."""
    if spec.listed is not None:  # explicit variants override [base] keys for themselves
        return [dict(v) for v in spec.listed]
    if spec.mode == "optuna":  # the search's bounds, one key at a time: what check_space checks
        return [{k: v} for k, entry in (spec.space or {}).items() for v in space_values(entry)]
    keys, sizes = list(spec.grid), [len(v) for v in spec.grid.values()]
    total = math.prod(sizes)
    indices: Sequence[int] = range(total)
    if spec.mode == "random":
        rng = np.random.default_rng(spec.sample_seed)
        count = min(spec.samples or total, total)
        indices = sorted(int(i) for i in rng.choice(total, size=count, replace=False))
    out = []
    for index in indices:
        picks = []
        for size in reversed(sizes):
            index, pick = divmod(index, size)
            picks.append(pick)
        picks.reverse()
        out.append({k: spec.grid[k][p] for k, p in zip(keys, picks, strict=True)})
    return out


def trial_id(base: dict[str, Any], options: dict[str, Any], seed: int) -> str:
    """`<options>_s<seed>_<hash>`: readable, stable, and unique for (base, options, seed)."""
    canonical = json.dumps(
        {"base": base, "options": options, "seed": seed}, sort_keys=True, separators=(",", ":")
    )
    digest = hashlib.sha256(canonical.encode()).hexdigest()[:10]
    slug = ",".join(f"{k}={option_label(v)}" for k, v in options.items()) or "base"
    slug = re.sub(r"[^A-Za-z0-9.,=+_-]+", "-", slug).strip("-")[:80]
    return f"{slug}_s{seed}_{digest}"


def resolved_base(spec: SweepSpec) -> dict[str, Any]:
    """[base] with plugin paths made relative to the sweep file."""
    base = dict(spec.base)
    plugins = base.get("plugins")
    if isinstance(plugins, list) and spec.folder is not None:
        base["plugins"] = [str(spec.folder / p) for p in plugins]
    return base


def check_space(spec: SweepSpec) -> None:
    """Validate [base] and every end and choice of the [space] as a config, before anything
    runs: ConfigError naming the key and value at the first bad one."""
    base = resolved_base(spec)
    try:
        make_config({**base, "seed": spec.seeds[0]})
    except DigitlabError as err:
        raise ConfigError(f"{spec.source}: base: {err}") from None
    for key, entry in (spec.space or {}).items():
        for value in space_values(entry):
            try:
                make_config({**base, key: value, "seed": spec.seeds[0]})
            except DigitlabError as err:
                raise ConfigError(
                    f"{spec.source}: space.{key} = {option_label(value)}: {err}"
                ) from None


def plan(spec: SweepSpec) -> tuple[list[dict[str, Any]], list[Trial]]:
    """Variants and trials (seed-major: every variant's first seed comes first), each trial's
    config validated; ConfigError naming the variant and key at the first bad one."""
    options_list = variants(spec)
    base = resolved_base(spec)
    trials = []
    for seed in spec.seeds:
        for index, options in enumerate(options_list):
            values = {**base, **options, "seed": seed}
            try:
                make_config(values)
            except DigitlabError as err:
                raise ConfigError(
                    f"{spec.source}: variant {variant_label(options)} (seed {seed}): {err}"
                ) from None
            trials.append(Trial(trial_id(spec.base, options, seed), index, options, seed, values))
    return options_list, trials
