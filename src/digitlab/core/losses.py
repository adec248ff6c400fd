"""Losses from the network's output: the mean loss over the batch and its gradient.

A loss takes `logits` (n, k), the last layer's output, and integer labels y (n,), and returns
(loss, dlogits). The loss is summed over classes and averaged over samples, so the gradient is
divided by n only (never by n * k, which would silently shrink the learning rate k times).
Softmax and sigmoid stay inside the losses: the fused gradients (probs - onehot) come for free.
Every loss is registered in `LOSSES`; prediction is always the argmax of the logits.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from digitlab.errors import ConfigError

LossFn = Callable[[np.ndarray, np.ndarray], tuple[float, np.ndarray]]
LOSSES: dict[str, LossFn] = {}


def loss(name: str) -> Callable[[LossFn], LossFn]:
    """Register a loss function under `name`."""

    def register(f: LossFn) -> LossFn:
        LOSSES[name] = f
        return f

    return register


def get_loss(name: str) -> LossFn:
    """The loss registered as `name`, or a ConfigError listing the known names."""
    if name not in LOSSES:
        raise ConfigError(f"unknown loss {name!r}; known: {', '.join(sorted(LOSSES))}")
    return LOSSES[name]


def row_max(x: np.ndarray) -> np.ndarray:
    """Each row's maximum, as a column (n, 1). A maximum is exact, so the column-major copy for
    narrow rows changes no number."""
    if x.shape[1] <= 32:
        x = np.asfortranarray(x)  # column-major copy: see benchmarks/PERFORMANCE.md
    return x.max(axis=1, keepdims=True)


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """logits - logsumexp(logits) per row.

    Numerics: the row maximum (not the batch maximum) is subtracted before exponentiating, so
    every row has one exp(0) = 1 term and its sum can neither overflow nor underflow to zero.
    """
    shifted = logits - row_max(logits)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def softmax(logits: np.ndarray) -> np.ndarray:
    """exp(logits) normalised per row, shifted by the row maximum."""
    e = np.exp(logits - row_max(logits))
    return e / e.sum(axis=1, keepdims=True)


def _rows(y: np.ndarray) -> np.ndarray:
    return np.arange(y.shape[0])


@loss("softmax_cross_entropy")
def softmax_cross_entropy(logits: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """-log softmax(logits)[y], averaged over samples; gradient (softmax - onehot) / n.

    Numerics: the loss is read off the log-softmax, so a probability that underflows to 0
    gives a large finite loss instead of log(0), with no epsilon to bias it.
    """
    n = logits.shape[0]
    shifted = logits - row_max(logits)
    e = np.exp(shifted)
    sums = e.sum(axis=1, keepdims=True)
    rows = _rows(y)
    log_probs_true = shifted[rows, y] - np.log(sums[:, 0])
    e /= sums  # e becomes the gradient in place: softmax - onehot, over n
    e[rows, y] -= 1
    e /= n
    return float(-log_probs_true.mean(dtype=np.float64)), e


@loss("quadratic")
def quadratic(logits: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """0.5 * sum over classes of (output - onehot)^2, averaged over samples (Nielsen's MSE).

    The outputs are used as they are: put an output activation (e.g. sigmoid) in the model to
    get Nielsen's sigmoid outputs.
    """
    n = logits.shape[0]
    diff = logits.copy()
    diff[_rows(y), y] -= 1
    value = 0.5 * float(np.einsum("ij,ij->", diff, diff, dtype=np.float64)) / n
    diff /= n
    return value, diff


@loss("sigmoid_cross_entropy")
def sigmoid_cross_entropy(logits: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Binary cross-entropy of sigmoid(logits) against one-hot targets, summed over classes.

    loss = sum_k [log(1 + exp(z_k)) - t_k z_k]; gradient (sigmoid(z) - t) / n.
    Numerics: log(1 + exp(z)) is logaddexp(0, z) and sigmoid never exponentiates a positive
    number, so neither overflows for extreme logits.
    """
    n = logits.shape[0]
    total = np.logaddexp(logits.dtype.type(0), logits).sum(dtype=np.float64)
    total -= logits[_rows(y), y].sum(dtype=np.float64)
    e = np.exp(-np.abs(logits))
    dlogits = np.where(logits >= 0, 1, e) / (1 + e)
    dlogits[_rows(y), y] -= 1
    dlogits /= n
    return float(total) / n, dlogits.astype(logits.dtype, copy=False)


def example_losses(name: str, logits: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Each example's loss (n,) in float64: the terms whose mean the registered loss `name`
    returns (for comparing examples, e.g. which ones make a validation loss rise).

    The built-in losses are written out row-wise here, with the same numerics; a plugin's loss
    is called on one row at a time (slow, but exact for any loss that averages over rows).
    """
    get_loss(name)
    z, rows = logits.astype(np.float64), _rows(y)
    if name == "softmax_cross_entropy":
        return -log_softmax(z)[rows, y]
    if name == "quadratic":
        diff = z.copy()
        diff[rows, y] -= 1
        return 0.5 * (diff * diff).sum(axis=1)
    if name == "sigmoid_cross_entropy":
        return np.logaddexp(0.0, z).sum(axis=1) - z[rows, y]
    return np.array([LOSSES[name](logits[i : i + 1], y[i : i + 1])[0] for i in rows])
