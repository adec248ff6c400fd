"""What training and evaluation report: a run's History (one record per epoch) and an
Evaluation (loss, accuracy and predictions of a model on a set of examples); and the checks that
data fit a model, shared by both."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from digitlab.core.arrays import as_eval_data, as_inputs, is_row_source
from digitlab.core.guards import spec_size
from digitlab.core.losses import get_loss, softmax

# Rows per forward pass in evaluation: bounds memory (a conv layer's im2col matrix grows with
# it) and is faster than larger chunks (see benchmarks/PERFORMANCE.md).
EVAL_CHUNK = 1024
# Fewer rows when the outputs of all the layers for a chunk would pass EVAL_BYTES: glibc's malloc
# serves blocks of up to 32 MiB from its heap and maps larger ones afresh every time, and their
# page faults then cost more than the forward pass (cnn_augment's 6,000 validation images: 1.7 s
# in chunks of 1,024 rows, 0.63 s in chunks of 64 or 128, 0.85 s in chunks of 152, where its
# second layer's im2col matrix passes 32 MiB). MLPs keep chunks of 1,024 rows.
EVAL_BYTES = 32 << 20


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

    def _repr_html_(self) -> str:
        """A notebook's view: curves and a table of the numbers (drawn by digitlab.report)."""
        from digitlab.report.reprs import history_html

        return history_html(self)


@dataclass
class Evaluation:
    """Loss, accuracy and predictions of a model on one set of examples."""

    loss: float
    accuracy: float
    predictions: np.ndarray  # (n,) predicted class
    probabilities: np.ndarray  # (n, k) softmax of the logits
    n: int
    labels: np.ndarray | None = None  # (n,) true class, kept by evaluate()

    def _repr_html_(self) -> str:
        """A notebook's view: accuracy with its interval, per-class table, confusion matrix."""
        from digitlab.report.reprs import evaluation_html

        return evaluation_html(self)


def chunk_rows(model: Any) -> int:
    """Rows per evaluation chunk: EVAL_CHUNK, or fewer for a model whose layers' outputs for
    one example are wide (a CNN's feature maps), so that a chunk's outputs fit in EVAL_BYTES."""
    size = spec_size(model.spec, model.input_size) if getattr(model, "spec", None) else None
    if size is None or size[1] == 0:
        return EVAL_CHUNK
    return max(1, min(EVAL_CHUNK, EVAL_BYTES // (size[1] * model.dtype.itemsize)))


def logits_in_chunks(
    model: Any, x: Any, what: str = "evaluation"
) -> Iterator[tuple[int, np.ndarray]]:
    """(first row, the model's output) for x's rows a chunk (chunk_rows) at a time, no
    training caches; x as as_inputs makes it, or a row source (core/arrays.py), whose rows are
    made and checked a chunk at a time."""
    made, chunk = is_row_source(x), chunk_rows(model)
    for start in range(0, len(x), chunk):
        rows = x[start : start + chunk]
        if made:
            rows = as_inputs(model, rows, what, first_row=start)
        yield start, model.forward(rows, training=False)


def predict_logits(model: Any, x: Any) -> np.ndarray:
    """The model's output for x, computed in chunks (chunk_rows), no training caches."""
    if not is_row_source(x):
        x = as_inputs(model, x)
    return np.concatenate([logits for _, logits in logits_in_chunks(model, x, "prediction")])


def evaluate(
    model: Any,
    x: Any,
    y: np.ndarray,
    loss: str = "softmax_cross_entropy",
    *,
    what: str = "evaluation",
) -> Evaluation:
    """Mean loss, accuracy, predictions and class probabilities of `model` on (x, y).

    Chunk by chunk (chunk_rows), so that the loss's work arrays stay the size of a chunk:
    the mean loss is the chunks' means weighted by their sizes.
    """
    x, y = as_eval_data(model, x, y, what)  # a row source is checked a chunk at a time
    loss_fn = get_loss(loss)
    probs = np.empty((len(y), model.output_shape[0]), model.dtype)
    predictions = np.empty(len(y), np.int64)
    total = 0.0
    for i, logits in logits_in_chunks(model, x, what):
        value, _ = loss_fn(logits, y[i : i + len(logits)])
        total += value * len(logits)
        probs[i : i + len(logits)] = softmax(logits)
        predictions[i : i + len(logits)] = logits.argmax(axis=1)
    accuracy = float((predictions == y).mean())
    return Evaluation(total / len(y), accuracy, predictions, probs, len(y), y)
