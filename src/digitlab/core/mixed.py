"""A layer of mixed activations: every unit may use its own registered activation.

    {"type": "mixed", "activations": {"relu": 0.5, "sin": 0.25, "abs": 0.25}, "seed": 0}
    {"type": "mixed", "pattern": ["relu", "sin", "abs"]}

With proportions, the units are assigned to activations in those shares (rounded, the rest
going to the largest remainders) and shuffled with `seed`; with a pattern, unit i uses
pattern[i % len(pattern)]. An activation with keyword parameters is a table:
{"leaky_relu": {"share": 0.5, "slope": 0.1}} or, in a pattern, {"name": "leaky_relu", "slope": 0.1}.
Each group is one slice of columns, so forward and backward stay whole-batch NumPy, one call
per group. The monitors report every group apart (`mixed1.relu.dead`, `mixed1.sin.saturated`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from digitlab.core.activations import ActivationEntry, check_params, get_activation
from digitlab.core.layers import Activation, Shape, layer
from digitlab.errors import ConfigError


class Group(Activation):
    """The units of one activation in a mixed layer: what monitors read as if it were a layer."""

    def __init__(self, entry: ActivationEntry, params: dict[str, Any], units: np.ndarray):
        super().__init__(entry.name, **params)
        self.units = units  # column indices
        self.name = ""


class MixedActivation:
    """a[:, units_g] = f_g(z[:, units_g]) for each activation group g."""

    multi_input = False

    def __init__(self, groups: list[Group]) -> None:
        self.groups = groups
        self.name = "mixed"
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.buffers: dict[str, np.ndarray] = {}
        self.needs_input_grad = True

    def forward(self, z: np.ndarray, training: bool) -> np.ndarray:
        a = np.empty_like(z)
        for group in self.groups:
            zg = z[:, group.units]
            a[:, group.units] = ag = group.f(zg, **group.fparams)
            if training:
                group.z, group.a = zg, ag
        return a

    def backward(self, dout: np.ndarray) -> np.ndarray:
        dz = np.empty_like(dout)
        for group in self.groups:
            dz[:, group.units] = dout[:, group.units] * group.slope()
        return dz

    @property
    def name(self) -> str:
        return self._name

    @name.setter
    def name(self, name: str) -> None:
        # build_model renames layers (mixed -> mixed1): the groups follow, for the monitors
        self._name = name
        seen: dict[str, int] = {}
        for group in self.groups:
            seen[group.activation] = seen.get(group.activation, 0) + 1
            suffix = "" if seen[group.activation] == 1 else str(seen[group.activation])
            group.name = f"{name}.{group.activation}{suffix}"


def _entry(item: Any) -> tuple[str, dict[str, Any]]:
    if isinstance(item, str):
        return item, {}
    if isinstance(item, dict) and "name" in item:
        return item["name"], {k: v for k, v in item.items() if k != "name"}
    raise ConfigError(f"mixed layer: expected an activation name or table, got {item!r}")


def assign_units(units: int, shares: list[float], rng: np.random.Generator) -> list[np.ndarray]:
    """Split range(units) into len(shares) seeded random groups of the given shares."""
    shares_array = np.asarray(shares, dtype=np.float64)
    if (shares_array <= 0).any():
        raise ConfigError(f"mixed layer: shares must be > 0, got {shares}")
    exact = units * shares_array / shares_array.sum()
    counts = np.floor(exact).astype(int)
    leftover = units - counts.sum()
    counts[np.argsort(-(exact - counts), kind="stable")[:leftover]] += 1
    order = rng.permutation(units)
    bounds = np.concatenate([[0], np.cumsum(counts)])
    return [np.sort(order[a:b]) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


@layer("mixed")
def _mixed(
    spec: dict[str, Any], in_shape: Shape, rng: np.random.Generator, dtype: Any
) -> tuple[Any, Shape]:
    if len(in_shape) != 1:
        raise ConfigError(f"mixed layer needs flat inputs, got shape {in_shape}")
    units = in_shape[0]
    if ("activations" in spec) == ("pattern" in spec):
        raise ConfigError("mixed layer: give either activations (shares) or pattern")
    if "pattern" in spec:
        pattern = [_entry(item) for item in spec["pattern"]]
        if not pattern:
            raise ConfigError("mixed layer: empty pattern")
        position = np.arange(units) % len(pattern)
        chosen = [(name, params, np.flatnonzero(position == i)) for i, (name, params) in
                  enumerate(pattern)]  # fmt: skip
    else:
        names, shares, params_list = [], [], []
        for name, value in spec["activations"].items():
            table = value if isinstance(value, dict) else {"share": value}
            names.append(name)
            shares.append(float(table.get("share", 1.0)))
            params_list.append({k: v for k, v in table.items() if k != "share"})
        groups = assign_units(units, shares, np.random.default_rng(spec.get("seed", 0)))
        chosen = list(zip(names, params_list, groups, strict=True))
    built = []
    for name, params, columns in chosen:
        check_params(name, params)
        if columns.size:
            built.append(Group(get_activation(name), params, columns))
    return MixedActivation(built), in_shape
