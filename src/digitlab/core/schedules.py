"""Schedules: the learning rate and the batch size as functions of the epoch (0-based).

A learning-rate schedule is built by a factory registered with `@schedule(name)`, called with
the base learning rate, the run's number of epochs and the config's keyword parameters; it
returns epoch -> learning rate. `batch_size_schedule` gives epoch -> batch size.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from digitlab.errors import ConfigError

Schedule = Callable[[int], float]
SCHEDULES: dict[str, Callable[..., Schedule]] = {}


def schedule(name: str) -> Callable[[Callable[..., Schedule]], Callable[..., Schedule]]:
    """Register a learning-rate schedule factory under `name`."""

    def register(f: Callable[..., Schedule]) -> Callable[..., Schedule]:
        SCHEDULES[name] = f
        return f

    return register


def get_schedule(name: str, learning_rate: float, epochs: int, **params: Any) -> Schedule:
    """The schedule `name` built for a base learning rate and a run of `epochs` epochs."""
    if name not in SCHEDULES:
        raise ConfigError(f"unknown schedule {name!r}; known: {', '.join(sorted(SCHEDULES))}")
    try:
        return SCHEDULES[name](learning_rate, epochs, **params)
    except TypeError as err:
        raise ConfigError(f"schedule {name!r}: {err}") from None


@schedule("constant")
def constant(learning_rate: float, epochs: int) -> Schedule:
    """The same learning rate every epoch."""
    return lambda epoch: learning_rate


@schedule("piecewise")
def piecewise(learning_rate: float, epochs: int, steps: list[list[float]]) -> Schedule:
    """[[rate, epochs], ...]: e.g. 0.5 for 10 epochs, then 0.1, then 0.02; the last rate stays."""
    if not steps or any(len(s) != 2 or s[0] <= 0 or s[1] <= 0 for s in steps):
        raise ConfigError("piecewise schedule needs steps = [[rate, epochs], ...], all > 0")
    ends = np.cumsum([int(s[1]) for s in steps])
    rates = [float(s[0]) for s in steps]
    return lambda epoch: rates[min(int(np.searchsorted(ends, epoch, side="right")), len(rates) - 1)]


@schedule("exponential")
def exponential(learning_rate: float, epochs: int, decay: float = 0.95) -> Schedule:
    """learning_rate * decay^epoch."""
    if not 0 < decay <= 1:
        raise ConfigError(f"exponential schedule needs 0 < decay <= 1, got {decay}")
    return lambda epoch: learning_rate * decay**epoch


@schedule("cosine")
def cosine(learning_rate: float, epochs: int, min_rate: float = 0.0) -> Schedule:
    """Cosine annealing from learning_rate down to min_rate over the run."""
    span = max(epochs - 1, 1)
    return lambda epoch: (
        min_rate
        + 0.5 * (learning_rate - min_rate) * (1 + math.cos(math.pi * min(epoch, span) / span))
    )


def batch_size_schedule(batch_size: int, ramp_start: int | None = None) -> Callable[[int], int]:
    """Constant batch size, or a ramp: ramp_start in epoch 0, doubling each epoch up to batch_size.

    A ramp from 2-3x the number of classes gives fast early epochs and a final accuracy less
    sensitive to the final batch size (Programming Machine Learning, the batch-size ramp).
    """
    if batch_size <= 0:
        raise ConfigError(f"batch size must be > 0, got {batch_size}")
    if ramp_start is None:
        return lambda epoch: batch_size
    if not 0 < ramp_start <= batch_size:
        raise ConfigError(f"batch ramp start must be in 1..{batch_size}, got {ramp_start}")
    return lambda epoch: min(ramp_start * 2**epoch, batch_size)
