"""What training and evaluation report: a run's History (one record per epoch) and an
Evaluation (loss, accuracy and predictions of a model on a set of examples); and the checks that
data fit a model, shared by both."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from digitlab.core.losses import get_loss, softmax
from digitlab.errors import DataError

# Rows per forward pass in evaluation: bounds memory (a conv layer's im2col matrix grows with
# it) and is faster than larger chunks (see benchmarks/PERFORMANCE.md).
EVAL_CHUNK = 1024


@dataclass
class History:
    """One record (a dict of numbers) per finished epoch; history[key] lists one key's values."""

    epoch_records: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int | None = None
    stopped_early: bool = False
    interrupted: bool = False

    def append(self, record: dict[str, float]) -> None:
        self.epoch_records.append(dict(record))

    def __getitem__(self, key: str) -> list[float]:
        """key's value in every epoch (NaN in an epoch that did not record it)."""
        if not any(key in record for record in self.epoch_records):
            raise KeyError(key)
        return [record.get(key, float("nan")) for record in self.epoch_records]

    @property
    def metrics(self) -> dict[str, list[float]]:
        keys = dict.fromkeys(key for record in self.epoch_records for key in record)
        return {key: self[key] for key in keys}

    @property
    def epochs(self) -> int:
        return len(self.epoch_records)

    def records(self) -> list[dict[str, float]]:
        """One dict per epoch, the form written to history.jsonl."""
        return [dict(record) for record in self.epoch_records]


@dataclass
class Evaluation:
    """Loss, accuracy and predictions of a model on one set of examples."""

    loss: float
    accuracy: float
    predictions: np.ndarray  # (n,) predicted class
    probabilities: np.ndarray  # (n, k) softmax of the logits
    n: int


def predict_logits(model: Any, x: np.ndarray) -> np.ndarray:
    """The model's output for x, computed in chunks of EVAL_CHUNK rows, no training caches."""
    return np.concatenate(
        [model.forward(x[i : i + EVAL_CHUNK], training=False) for i in range(0, len(x), EVAL_CHUNK)]
    )


def evaluate(
    model: Any, x: np.ndarray, y: np.ndarray, loss: str = "softmax_cross_entropy"
) -> Evaluation:
    """Mean loss, accuracy, predictions and class probabilities of `model` on (x, y)."""
    check_data(model, x, y, "evaluation")
    logits = predict_logits(model, x)
    value, _ = get_loss(loss)(logits, y)
    probs = softmax(logits)
    predictions = logits.argmax(axis=1)
    return Evaluation(value, float((predictions == y).mean()), predictions, probs, len(y))


def check_data(model: Any, x: np.ndarray, y: np.ndarray, name: str) -> None:
    """Shapes and labels that fit the model, checked once before training (cheap checks only:
    NaN or inf in x is caught at the first batch that holds it, and named there)."""
    if x.ndim != 2 or len(x) == 0:
        raise DataError(f"{name} data must be non-empty rows (n, features), got shape {x.shape}")
    if x.shape[1] != model.input_size:
        raise DataError(
            f"{name} data have {x.shape[1]} features but the model takes {model.input_size}"
        )
    if y.shape != (len(x),) or not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"{name} labels must be {len(x)} integers, got {y.dtype}{list(y.shape)}")
    if len(model.output_shape) != 1:
        raise DataError(f"the model's outputs {model.output_shape} are not flat: add a flatten")
    n_outputs = model.output_shape[0]
    if y.min() < 0 or y.max() >= n_outputs:
        raise DataError(
            f"{name} labels must lie in 0..{n_outputs - 1} for a model with {n_outputs} outputs,"
            f" found {y.min()}..{y.max()}"
        )
