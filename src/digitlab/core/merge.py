"""Merge layers for graph models: add (a skip connection) and concat.

A merge is `multi_input` (see the Layer contract in core/layers.py): its forward takes the list
of its inputs' outputs and its backward returns one gradient per input.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from digitlab.core.layers import Shape, layer
from digitlab.errors import ConfigError


class Concat:
    """Joins its inputs along the feature axis (flat rows) or the channel axis (images)."""

    multi_input = True

    def __init__(self, sizes: list[int]) -> None:
        self.name = "concat"
        self.sizes = sizes  # each input's extent along the joined axis
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.buffers: dict[str, np.ndarray] = {}
        self.needs_input_grad = True

    def forward(self, xs: list[np.ndarray], training: bool) -> np.ndarray:
        return np.concatenate(xs, axis=1)

    def backward(self, dout: np.ndarray) -> list[np.ndarray]:
        return np.split(dout, np.cumsum(self.sizes)[:-1], axis=1)


def _merge_shapes(kind: str, shapes: list[Shape]) -> None:
    if len(shapes) < 2:
        raise ConfigError(f"{kind} needs at least two inputs, got {len(shapes)}")


@layer("concat")
def _concat(spec: dict[str, Any], in_shape: Any, rng: np.random.Generator, dtype: Any) -> Any:
    shapes: list[Shape] = in_shape
    _merge_shapes("concat", shapes)
    if any(s[1:] != shapes[0][1:] for s in shapes):
        raise ConfigError(f"concat needs inputs equal but for their first axis, got {shapes}")
    out = (sum(s[0] for s in shapes), *shapes[0][1:])
    return Concat([s[0] for s in shapes]), out


_concat.multi_input = True  # type: ignore[attr-defined]


class Add:
    """The sum of its inputs (a skip connection), which must have one shape."""

    multi_input = True

    def __init__(self, count: int) -> None:
        self.name = "add"
        self.count = count
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.buffers: dict[str, np.ndarray] = {}
        self.needs_input_grad = True

    def forward(self, xs: list[np.ndarray], training: bool) -> np.ndarray:
        total = xs[0] + xs[1]
        for x in xs[2:]:
            total += x
        return total

    def backward(self, dout: np.ndarray) -> list[np.ndarray]:
        return [dout] * self.count  # d(a + b)/da = 1: each input gets the same gradient


@layer("add")
def _add(spec: dict[str, Any], in_shape: Any, rng: np.random.Generator, dtype: Any) -> Any:
    shapes: list[Shape] = in_shape
    _merge_shapes("add", shapes)
    if len(set(shapes)) != 1:
        raise ConfigError(f"add needs inputs of one shape, got {shapes}")
    return Add(len(shapes)), shapes[0]


_add.multi_input = True  # type: ignore[attr-defined]
