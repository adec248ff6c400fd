"""Inverted dropout: in training, each unit is zeroed with probability `rate` and the rest are
scaled by 1 / (1 - rate), so evaluation uses the layer as the identity.

Srivastava et al. 2014, https://jmlr.org/papers/v15/srivastava14a.html
"""

from __future__ import annotations

from typing import Any

import numpy as np

from digitlab.core.layers import Shape, layer
from digitlab.errors import ConfigError


class Dropout:
    """Inverted dropout: in training, zero each unit with probability `rate`, scale the rest."""

    multi_input = False

    def __init__(self, rate: float, rng: np.random.Generator) -> None:
        if not 0 <= rate < 1:
            raise ConfigError(f"dropout rate must be in [0, 1), got {rate}")
        self.name = "dropout"
        self.rate, self.rng = rate, rng
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.buffers: dict[str, np.ndarray] = {}
        self.needs_input_grad = True
        self._mask: np.ndarray | None = None

    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        if not training or self.rate == 0:
            self._mask = None
            return x
        keep = 1 - self.rate
        # The 1/keep scaling is folded into the mask, so evaluation needs no rescaling.
        self._mask = (self.rng.random(x.shape, dtype=np.float64) < keep).astype(x.dtype)
        self._mask /= x.dtype.type(keep)
        return x * self._mask

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return dout if self._mask is None else dout * self._mask


@layer("dropout")
def _dropout(
    spec: dict[str, Any], in_shape: Shape, rng: np.random.Generator, dtype: Any
) -> tuple[Any, Shape]:
    return Dropout(float(spec["rate"]), rng), in_shape
