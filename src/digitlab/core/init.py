"""Weight initialisers: a registry of functions (rng, n_in, n_out, dtype, **params) -> w.

w has shape (n_in, n_out). Biases start at zero unless a Dense layer is given a `bias_std` (the
fastai-style 8x8 experiments draw weights and biases from N(0, 0.1^2)) or a constant `bias_init`
(Perrotta's ReLU with biases at +1); not both.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from digitlab.errors import ConfigError

Initialiser = Callable[..., np.ndarray]
INITIALISERS: dict[str, Initialiser] = {}


def initialiser(name: str) -> Callable[[Initialiser], Initialiser]:
    """Register an initialiser under `name`."""

    def register(f: Initialiser) -> Initialiser:
        INITIALISERS[name] = f
        return f

    return register


def get_initialiser(name: str) -> Initialiser:
    """The initialiser registered as `name`, or a ConfigError listing the known names."""
    if name not in INITIALISERS:
        raise ConfigError(f"unknown initialiser {name!r}; known: {', '.join(sorted(INITIALISERS))}")
    return INITIALISERS[name]


def _normal(rng: np.random.Generator, shape: tuple[int, int], std: float, dtype: Any) -> np.ndarray:
    return (rng.standard_normal(shape) * std).astype(dtype)


@initialiser("normal")
def normal(
    rng: np.random.Generator, n_in: int, n_out: int, dtype: Any, std: float = 1.0
) -> np.ndarray:
    """N(0, std^2), std 1 by default (Nielsen's chapter 1 'large' init)."""
    if std <= 0:
        raise ConfigError(f"initialiser 'normal' needs std > 0, got {std}")
    return _normal(rng, (n_in, n_out), std, dtype)


@initialiser("xavier")
def xavier(rng: np.random.Generator, n_in: int, n_out: int, dtype: Any) -> np.ndarray:
    """Glorot/Xavier normal: N(0, 2 / (n_in + n_out)). For sigmoid and tanh.

    Glorot and Bengio 2010, http://proceedings.mlr.press/v9/glorot10a.html
    """
    return _normal(rng, (n_in, n_out), np.sqrt(2.0 / (n_in + n_out)), dtype)


@initialiser("he")
def he(rng: np.random.Generator, n_in: int, n_out: int, dtype: Any) -> np.ndarray:
    """He normal: N(0, 2 / n_in). For the ReLU family.

    He et al. 2015, https://arxiv.org/abs/1502.01852
    """
    return _normal(rng, (n_in, n_out), np.sqrt(2.0 / n_in), dtype)


@initialiser("lecun")
def lecun(rng: np.random.Generator, n_in: int, n_out: int, dtype: Any) -> np.ndarray:
    """LeCun normal: N(0, 1 / n_in) (Nielsen's improved init in chapter 3)."""
    return _normal(rng, (n_in, n_out), np.sqrt(1.0 / n_in), dtype)
