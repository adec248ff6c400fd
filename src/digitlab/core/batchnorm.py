"""Batch normalisation, for flat features (n, f) and for images (n, c, h, w) per channel.

Ioffe and Szegedy 2015, https://arxiv.org/abs/1502.03167
"""

from __future__ import annotations

from typing import Any

import numpy as np

from digitlab.core.images import channels_first, channels_last
from digitlab.core.layers import Shape, layer
from digitlab.errors import ConfigError


class BatchNorm:
    """y = gamma * (x - mean) / sqrt(var + eps) + beta, per feature (n, f) or channel (n, c, h, w).

    Training normalises with the batch's mean and (biased) variance and moves the running
    statistics towards them: running = (1 - momentum) * running + momentum * batch, with the
    unbiased variance m / (m - 1) * var for m values per channel. Evaluation uses the running
    statistics, kept in `buffers` so that they are saved with the model.

    Both directions work on rows: flat inputs as they are, images as their channels-last pixels
    (n*h*w, c), a view of the memory the conv layers hand over, so every statistic is a sum down
    contiguous columns; einsum sums them (see benchmarks/PERFORMANCE.md).
    """

    multi_input = False

    def __init__(self, features: int, momentum: float, eps: float, dtype: Any) -> None:
        self.name = "batchnorm"
        self.params = {"gamma": np.ones(features, dtype), "beta": np.zeros(features, dtype)}
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        self.buffers = {
            "running_mean": np.zeros(features, dtype),
            "running_var": np.ones(features, dtype),
        }
        self.needs_input_grad = True
        self.momentum, self.eps = dtype.type(momentum), dtype.type(eps)
        self._x_hat: np.ndarray | None = None  # (rows, features)
        self._inv_std: np.ndarray | None = None

    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        rows = _rows(x)
        running_mean, running_var = self.buffers["running_mean"], self.buffers["running_var"]
        if training:
            m = len(rows)
            mean = np.einsum("ij->j", rows) / x.dtype.type(m)
            x_hat = rows - mean
            var = np.einsum("ij,ij->j", x_hat, x_hat) / x.dtype.type(m)
            running_mean *= 1 - self.momentum
            running_mean += self.momentum * mean
            running_var *= 1 - self.momentum
            running_var += self.momentum * x.dtype.type(m / max(m - 1, 1)) * var
        else:
            x_hat = rows - running_mean
            var = running_var
        inv_std = 1 / np.sqrt(var + self.eps)
        x_hat *= inv_std
        if training:
            self._x_hat, self._inv_std = x_hat, inv_std
        out = x_hat * self.params["gamma"]
        out += self.params["beta"]
        return _unrows(out, x.shape)

    def backward(self, dout: np.ndarray) -> np.ndarray | None:
        """dx = gamma * inv_std * (dout - mean(dout) - x_hat * mean(dout * x_hat)) per channel."""
        assert self._x_hat is not None and self._inv_std is not None, "backward before training"
        x_hat, dgamma, dbeta = self._x_hat, self.grads["gamma"], self.grads["beta"]
        d = _rows(dout)
        np.einsum("ij,ij->j", d, x_hat, out=dgamma)
        np.einsum("ij->j", d, out=dbeta)
        if not self.needs_input_grad:
            return None
        m = dout.dtype.type(len(d))
        dx = d - dbeta / m
        dx -= x_hat * (dgamma / m)
        dx *= self.params["gamma"] * self._inv_std
        return _unrows(dx, dout.shape)


def _rows(x: np.ndarray) -> np.ndarray:
    """(rows, features): flat x as it is, images (n, c, h, w) as channels-last pixel rows (a view
    when the memory is channels-last, as the conv and pool layers leave it; else a copy)."""
    return x if x.ndim == 2 else channels_last(x).reshape(-1, x.shape[1])


def _unrows(rows: np.ndarray, shape: Shape) -> np.ndarray:
    """The inverse of _rows for an array of `shape`: (n, c, h, w) over channels-last memory."""
    if len(shape) == 2:
        return rows
    n, c, h, w = shape
    return channels_first(rows.reshape(n, h, w, c))


@layer("batchnorm")
def _batchnorm(
    spec: dict[str, Any], in_shape: Shape, rng: np.random.Generator, dtype: Any
) -> tuple[Any, Shape]:
    if len(in_shape) not in (1, 3):
        raise ConfigError(f"batchnorm needs (features,) or (channels, h, w) inputs, got {in_shape}")
    momentum, eps = float(spec.get("momentum", 0.1)), float(spec.get("eps", 1e-5))
    if not 0 < momentum <= 1 or eps <= 0:
        raise ConfigError(f"batchnorm needs 0 < momentum <= 1 and eps > 0, got {momentum}, {eps}")
    return BatchNorm(in_shape[0], momentum, eps, dtype), in_shape
