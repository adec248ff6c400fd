"""The training loop, evaluation and the History of a run.

`fit` is one plain function: per batch, one forward pass whose logits serve both the gradient
and the reported training loss and accuracy (never a second forward just to report), one
backward pass and one optimizer step. Per-epoch numbers go into a History and to callbacks;
printing is the caller's business. The only randomness is the Generator passed in.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from digitlab.core.losses import get_loss
from digitlab.core.optim import Optimizer, Schedule
from digitlab.errors import NumericError

EVAL_CHUNK = 8192  # rows per forward pass in evaluation: bounds memory on big test sets


@dataclass
class History:
    """Per-epoch metrics: each key maps to a list with one value per finished epoch."""

    metrics: dict[str, list[float]] = field(default_factory=dict)
    best_epoch: int | None = None
    stopped_early: bool = False

    def append(self, record: dict[str, float]) -> None:
        for key, value in record.items():
            self.metrics.setdefault(key, []).append(value)

    def __getitem__(self, key: str) -> list[float]:
        return self.metrics[key]

    @property
    def epochs(self) -> int:
        return len(self.metrics.get("epoch", []))

    def records(self) -> list[dict[str, float]]:
        """One dict per epoch, the form written to history.jsonl."""
        keys = list(self.metrics)
        return [{k: self.metrics[k][i] for k in keys} for i in range(self.epochs)]


@dataclass
class Evaluation:
    """Loss, accuracy and predictions of a model on one set of examples."""

    loss: float
    accuracy: float
    predictions: np.ndarray  # (n,) predicted class
    probabilities: np.ndarray  # (n, k) softmax of the logits
    n: int


EpochCallback = Callable[[dict[str, float], Any], None]
BatchCallback = Callable[[int, int, int], None]


def predict_logits(model: Any, x: np.ndarray) -> np.ndarray:
    """The model's output for x, computed in chunks of EVAL_CHUNK rows, no training caches."""
    return np.concatenate(
        [model.forward(x[i : i + EVAL_CHUNK], training=False) for i in range(0, len(x), EVAL_CHUNK)]
    )


def evaluate(
    model: Any, x: np.ndarray, y: np.ndarray, loss: str = "softmax_cross_entropy"
) -> Evaluation:
    """Mean loss, accuracy, predictions and class probabilities of `model` on (x, y)."""
    logits = predict_logits(model, x)
    value, _ = get_loss(loss)(logits, y)
    shifted = logits - logits.max(axis=1, keepdims=True)
    probs = np.exp(shifted)
    probs /= probs.sum(axis=1, keepdims=True)
    predictions = logits.argmax(axis=1)
    return Evaluation(value, float((predictions == y).mean()), predictions, probs, len(y))


def batches(n: int, batch_size: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """Index arrays of a fresh seeded permutation of range(n), batch_size at a time."""
    order = rng.permutation(n)
    for start in range(0, n, batch_size):
        yield order[start : start + batch_size]


def locate_non_finite(model: Any, x: np.ndarray) -> str:
    """Where the first non-finite value is: a parameter, or a layer's output on batch x."""
    for name, param, grad in model.parameters():
        if not np.isfinite(param).all():
            return f"parameter {name}"
        if not np.isfinite(grad).all():
            return f"gradient of {name}"
    with np.errstate(all="ignore"):  # we are looking for the overflow, so it may happen here
        for lay in model.layers:
            x = lay.forward(x, training=False)
            if not np.isfinite(x).all():
                return f"output of layer {lay.name}"
    return "loss"


def fit(
    model: Any,
    x: np.ndarray,
    y: np.ndarray,
    optimizer: Optimizer,
    *,
    epochs: int,
    batch_size: Callable[[int], int],
    learning_rate: Schedule,
    rng: np.random.Generator,
    loss: str = "softmax_cross_entropy",
    validation: tuple[np.ndarray, np.ndarray] | None = None,
    patience: int | None = None,
    callbacks: Sequence[EpochCallback] = (),
    on_batch: BatchCallback | None = None,
    history: History | None = None,
) -> History:
    """Train `model` in place with minibatch gradient descent and return its History.

    Each epoch records epoch, learning_rate, batch_size, train_loss and train_accuracy (the
    mean over the epoch's batches, computed from the same forward pass as the gradient),
    val_loss and val_accuracy when `validation` is given, and seconds. With `patience`, training
    stops after that many epochs without a lower validation loss and the best weights are put
    back. A non-finite loss raises NumericError naming epoch, batch and where it arose; the
    weights of the last finished epoch are put back first.
    """
    loss_fn = get_loss(loss)
    history = history or History()
    best_loss, best_weights, since_best = np.inf, None, 0
    last_good = [p.copy() for _, p, _ in model.parameters()]
    start_epoch = history.epochs
    for epoch in range(start_epoch, start_epoch + epochs):
        started = time.perf_counter()
        optimizer.learning_rate = learning_rate(epoch)
        size = batch_size(epoch)
        total_loss, correct = 0.0, 0
        for number, idx in enumerate(batches(len(x), size, rng), start=1):
            xb, yb = x[idx], y[idx]
            # NumPy's overflow warnings are silenced here because the finiteness check below
            # catches the same event and says where it arose.
            with np.errstate(over="ignore", invalid="ignore"):
                logits = model.forward(xb, training=True)
                value, dlogits = loss_fn(logits, yb)
            if not np.isfinite(value):
                where = locate_non_finite(model, xb)
                _restore(model, last_good)
                raise NumericError(
                    f"non-finite loss at epoch {epoch + 1}, batch {number}: first non-finite "
                    f"value in the {where}; "
                    f"{f'weights of epoch {epoch}' if epoch else 'initial weights'} kept "
                    f"(try a lower learning rate, currently {optimizer.learning_rate:g})"
                )
            total_loss += value * len(idx)
            correct += int(np.count_nonzero(logits.argmax(axis=1) == yb))
            model.backward(dlogits)
            optimizer.step(model.parameters())
            if on_batch is not None:
                on_batch(epoch, number, len(idx))
        record = {
            "epoch": float(epoch + 1),
            "learning_rate": float(optimizer.learning_rate),
            "batch_size": float(size),
            "train_loss": total_loss / len(x),
            "train_accuracy": correct / len(x),
        }
        if validation is not None:
            result = evaluate(model, *validation, loss=loss)
            record["val_loss"], record["val_accuracy"] = result.loss, result.accuracy
        record["seconds"] = time.perf_counter() - started
        history.append(record)
        last_good = [p.copy() for _, p, _ in model.parameters()]
        for callback in callbacks:
            callback(record, model)
        if patience is not None and validation is not None:
            if record["val_loss"] < best_loss:
                best_loss, best_weights, since_best = record["val_loss"], last_good, 0
                history.best_epoch = epoch + 1
            else:
                since_best += 1
                if since_best >= patience:
                    history.stopped_early = True
                    break
    if best_weights is not None:
        _restore(model, best_weights)
    return history


def _restore(model: Any, weights: list[np.ndarray]) -> None:
    for (_, param, _), saved in zip(model.parameters(), weights, strict=True):
        param[...] = saved
