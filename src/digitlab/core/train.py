"""The training loop, evaluation and the History of a run.

`fit` is one plain function: per batch, one forward pass whose logits serve both the gradient
and the reported training loss and accuracy (never a second forward just to report), one
backward pass and one optimizer step. Per-epoch numbers go into a History and to callbacks;
printing is the caller's business. The only randomness is the Generator passed in.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from digitlab.core.losses import get_loss, softmax
from digitlab.core.optim import Optimizer
from digitlab.core.schedules import Schedule
from digitlab.errors import DataError, NumericError

# Rows per forward pass in evaluation. It bounds memory, and chunks this size also run faster:
# the small CNN's 10,000 test images took 6.7 s in chunks of 8,192 rows (its second layer's
# im2col matrix alone is 1.8 GB then) and 2.2 s in chunks of 1,024; the MLPs run at the same speed.
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


def locate_non_finite(model: Any, x: np.ndarray) -> str:
    """The first input, parameter, gradient or layer output (on batch x) holding a NaN or inf."""
    if not np.isfinite(x).all():
        return "input batch itself (the data hold NaN or inf)"
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


def fastest_growing(model: Any, before: list[np.ndarray]) -> str:
    """Which weight matrix grew most (by norm) since `before`: where a divergence shows."""
    growth = [
        (float(np.linalg.norm(param)) / max(float(np.linalg.norm(old)), 1e-12), name)
        for (name, param, _), old in zip(model.parameters(), before, strict=True)
        if name.endswith(".w")  # biases start at zero: any change would look infinite
    ]
    factor, name = max(growth)
    return f"the fastest-growing weights are {name} (x{factor:.3g} since the last good ones)"


@dataclass
class Step:
    """What a monitor sees of one batch: before the update, the gradients are fresh."""

    epoch: int  # 0-based
    batch: int  # 1-based within the epoch
    batches: int  # in this epoch
    loss: float
    logits: np.ndarray
    y: np.ndarray
    model: Any
    optimizer: Optimizer


class Monitor(Protocol):
    """Cheap per-batch observers (see digitlab.diagnostics.monitors); never change training."""

    def before_update(self, step: Step) -> None: ...

    def after_update(self, step: Step) -> None: ...

    def end_epoch(
        self, epoch: int, model: Any, validation: Evaluation | None
    ) -> dict[str, float]: ...


@dataclass
class TrainState:
    """Where training is, enough to continue bit-identically: saved by checkpoints.

    `epoch` counts finished epochs; inside an epoch, `order` is its permutation, `batch` the
    batches done and `total_loss`/`correct` their running sums.
    """

    epoch: int = 0
    batch: int = 0
    order: np.ndarray | None = None
    total_loss: float = 0.0
    correct: int = 0
    first_loss: float | None = None
    best_loss: float = float("inf")
    best_weights: list[np.ndarray] | None = None
    since_best: int = 0


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
    monitors: Sequence[Monitor] = (),
    history: History | None = None,
    state: TrainState | None = None,
    should_stop: Callable[[], bool] | None = None,
    divergence: float | None = 1e4,
    augment: Callable[[np.ndarray], np.ndarray] | None = None,
) -> History:
    """Train `model` in place with minibatch gradient descent up to `epochs` epochs in all.

    Each epoch records epoch, learning_rate, batch_size, train_loss and train_accuracy (the
    mean over the epoch's batches, computed from the same forward pass as the gradient),
    val_loss and val_accuracy when `validation` is given, the monitors' numbers and seconds.
    With `patience`, training stops after that many epochs without a lower validation loss and
    the best weights are put back. Passing the `history` and `state` of an interrupted run
    continues it exactly; `should_stop` is polled after every batch (history.interrupted is
    then set, and `state` says where training stopped).

    `augment`, if given, maps each training batch to a randomly altered copy (it draws from its
    own generator, so that shuffling is the same with and without it).

    A non-finite loss, or one over `divergence` times the first batch's (or times 1 if that was
    smaller: a trained model's first loss can be near 0, and an ordinary batch 10,000 times it),
    raises NumericError naming epoch, batch and where it arose; the weights of the last finished
    epoch are put back first.
    """
    loss_fn = get_loss(loss)
    check_data(model, x, y, "training")
    # each batch gathers rows: from a non-C-ordered array (x[:, columns] is Fortran-ordered)
    # that is ~100x slower than the one-time copy
    x = np.ascontiguousarray(x)
    if validation is not None:
        check_data(model, *validation, "validation")
    history = history if history is not None else History()
    state = state if state is not None else TrainState()
    last_good = [p.copy() for _, p, _ in model.parameters()]
    while state.epoch < epochs:
        epoch = state.epoch
        started = time.perf_counter()
        optimizer.learning_rate = learning_rate(epoch)
        size = batch_size(epoch)
        if state.order is None:
            state.order = rng.permutation(len(x))
        for start in range(state.batch * size, len(x), size):
            idx = state.order[start : start + size]
            number = state.batch + 1
            xb, yb = x.take(idx, axis=0), y[idx]  # take: 26 ms an MNIST epoch, x[idx]: 31
            if augment is not None:
                xb = augment(xb)  # a fresh random variant of this batch's images
            # NumPy's overflow warnings are silenced here because the checks below catch the
            # same event and say where it arose.
            with np.errstate(over="ignore", invalid="ignore"):
                logits = model.forward(xb, training=True)
                value, dlogits = loss_fn(logits, yb)
            if state.first_loss is None:
                state.first_loss = value
            reference = max(state.first_loss, 1.0)
            if not np.isfinite(value) or (divergence and value > divergence * reference):
                if np.isfinite(value):
                    problem = (
                        f"loss {value:.3g} at epoch {epoch + 1}, batch {number} is over "
                        f"{divergence:g} x {reference:.3g} (the first batch's loss, at least 1): "
                        f"training diverged; {fastest_growing(model, last_good)}"
                    )
                else:
                    where = locate_non_finite(model, xb)
                    problem = (
                        f"non-finite loss at epoch {epoch + 1}, batch {number}: first "
                        f"non-finite value in the {where}"
                    )
                _restore(model, last_good)
                kept = f"weights of epoch {epoch}" if epoch else "initial weights"
                raise NumericError(
                    f"{problem}; {kept} kept (try a lower learning rate, currently "
                    f"{optimizer.learning_rate:g})"
                )
            state.total_loss += value * len(idx)
            state.correct += int(np.count_nonzero(logits.argmax(axis=1) == yb))
            model.backward(dlogits)
            step = (
                Step(epoch, number, -(-len(x) // size), value, logits, yb, model, optimizer)
                if monitors
                else None
            )
            for monitor in monitors:
                monitor.before_update(step)  # type: ignore[arg-type]
            optimizer.step(model.theta, model.g, model.mask)
            for monitor in monitors:
                monitor.after_update(step)  # type: ignore[arg-type]
            state.batch = number
            if on_batch is not None:
                on_batch(epoch, number, len(idx))
            if should_stop is not None and should_stop():
                history.interrupted = True
                return history
        record = {
            "epoch": float(epoch + 1),
            "learning_rate": float(optimizer.learning_rate),
            "batch_size": float(size),
            "train_loss": state.total_loss / len(x),
            "train_accuracy": state.correct / len(x),
        }
        result = evaluate(model, *validation, loss=loss) if validation is not None else None
        if result is not None:
            record["val_loss"], record["val_accuracy"] = result.loss, result.accuracy
        for monitor in monitors:
            record.update(monitor.end_epoch(epoch, model, result))
        record["seconds"] = time.perf_counter() - started
        history.append(record)
        last_good = [p.copy() for _, p, _ in model.parameters()]
        state.epoch, state.batch, state.order = epoch + 1, 0, None
        state.total_loss, state.correct = 0.0, 0
        stop = False
        if patience is not None and result is not None:
            if result.loss < state.best_loss:
                state.best_loss, state.best_weights, state.since_best = result.loss, last_good, 0
                history.best_epoch = epoch + 1
            else:
                state.since_best += 1
                stop = state.since_best >= patience
        for callback in callbacks:
            callback(record, model)
        if stop:
            history.stopped_early = True
            break
    if state.best_weights is not None:
        _restore(model, state.best_weights)
    return history


def _restore(model: Any, weights: list[np.ndarray]) -> None:
    for (_, param, _), saved in zip(model.parameters(), weights, strict=True):
        param[...] = saved
