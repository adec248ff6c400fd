"""The training loop.

`fit` is one plain function: per batch, one forward pass whose logits serve both the gradient
and the reported training loss and accuracy (never a second forward just to report), one
backward pass and one optimizer step. What to train for is a `TrainOptions`; who watches
(callbacks, monitors, a stop flag) is a `TrainHooks` (core/hooks.py). Per-epoch numbers go
into a History and to callbacks; printing is the caller's business. The only randomness is the
Generator passed in.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from digitlab.core.arrays import as_eval_data, as_model_data
from digitlab.core.evaluation import Evaluation, History, evaluate
from digitlab.core.guards import loss_problem
from digitlab.core.hooks import Monitor, Step, TrainHooks
from digitlab.core.layers import Dense
from digitlab.core.losses import get_loss
from digitlab.core.optim import Optimizer, clip_grad_norm, limit_unit_norms
from digitlab.errors import ConfigError, NumericError


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


@dataclass
class TrainOptions:
    """What to train for. `batch_size` and `learning_rate` map the epoch (0-based) to a value.

    With `patience`, training stops after that many epochs without a lower validation loss and
    the best weights are put back. A loss over `divergence` x max(first batch's loss, 1), or a
    non-finite one, stops training (None: only non-finite losses do). `augment`, if given, maps
    each training batch to a randomly altered copy (it draws from its own generator, so that
    shuffling is the same with and without it). `clip_grad_norm` scales the whole gradient down
    to that L2 norm before each step; `max_norm` caps, after each step, the L2 norm of every
    hidden dense unit's incoming weights (not the output layer's). Both are stateless.
    """

    epochs: int
    batch_size: Callable[[int], int]
    learning_rate: Callable[[int], float]
    loss: str = "softmax_cross_entropy"
    patience: int | None = None
    divergence: float | None = 1e4
    augment: Callable[[np.ndarray], np.ndarray] | None = None
    clip_grad_norm: float | None = None
    max_norm: float | None = None


def fit(
    model: Any,
    x: np.ndarray,
    y: np.ndarray,
    optimizer: Optimizer,
    options: TrainOptions,
    *,
    rng: np.random.Generator,
    validation: tuple[Any, np.ndarray] | None = None,
    hooks: TrainHooks | None = None,
    history: History | None = None,
    state: TrainState | None = None,
) -> History:
    """Train `model` in place with minibatch gradient descent up to `options.epochs` in all.

    Each epoch records epoch, learning_rate, batch_size, train_loss and train_accuracy (the
    mean over the epoch's batches, computed from the same forward pass as the gradient),
    val_loss and val_accuracy when `validation` is given (its x an array or a row source, see
    core/arrays.py), the monitors' numbers and seconds.
    Passing the `history` and `state` of an interrupted run continues it exactly; when the stop
    flag is raised, history.interrupted is set and `state` says where training stopped.

    An unusable loss (see core/guards.py) raises NumericError naming epoch, batch and where it
    arose; the weights of the last finished epoch are put back first.
    """
    get_loss(options.loss)  # an unknown loss is a ConfigError before any work
    for key in ("clip_grad_norm", "max_norm"):
        limit = getattr(options, key)
        if limit is not None and not limit > 0:
            raise ConfigError(f"{key} must be > 0, got {limit}")
    x, y = as_model_data(model, x, y, "training")  # C-ordered, the model's dtype: see arrays.py
    if validation is not None:
        validation = as_eval_data(model, *validation, "validation")
    hooks = hooks if hooks is not None else TrainHooks()
    history = history if history is not None else History()
    state = state if state is not None else TrainState()
    last_good = _copy_weights(model)
    while state.epoch < options.epochs:
        started = time.perf_counter()
        marks = {k: v for hook in hooks.epoch_start for k, v in hook(state.epoch, model).items()}
        optimizer.learning_rate = options.learning_rate(state.epoch)
        size = options.batch_size(state.epoch)
        batches = -(-len(x) // size)
        if state.order is None:
            state.order = rng.permutation(len(x))
        for start in range(state.batch * size, len(x), size):
            idx = state.order[start : start + size]
            xb, yb = x.take(idx, axis=0), y[idx]  # take: see benchmarks/PERFORMANCE.md
            _train_batch(model, optimizer, xb, yb, options, hooks, state, last_good, batches)
            if hooks.should_stop is not None and hooks.should_stop():
                history.interrupted = True
                return history
        record, result = _end_epoch(
            model, optimizer, len(x), size, validation, options, hooks.monitors, state
        )
        record.update(marks)
        record["seconds"] = time.perf_counter() - started
        history.append(record)
        last_good = _copy_weights(model)
        state.epoch, state.batch, state.order = state.epoch + 1, 0, None
        state.total_loss, state.correct = 0.0, 0
        stop = _early_stopping(state, history, options.patience, result, last_good)
        for callback in hooks.callbacks:
            callback(record, model)
        if stop:
            history.stopped_early = True
            break
    if state.best_weights is not None:
        _restore(model, state.best_weights)
    return history


def _train_batch(
    model: Any,
    optimizer: Optimizer,
    xb: np.ndarray,
    yb: np.ndarray,
    options: TrainOptions,
    hooks: TrainHooks,
    state: TrainState,
    last_good: list[np.ndarray],
    batches: int,
) -> None:
    """One forward, backward and optimizer step on batch number state.batch + 1."""
    epoch, number = state.epoch, state.batch + 1
    if options.augment is not None:
        xb = options.augment(xb)  # a fresh random variant of this batch's images
    # overflow warnings are silenced: the guard below catches the same event and says where
    with np.errstate(over="ignore", invalid="ignore"):
        logits = model.forward(xb, training=True)
        value, dlogits = get_loss(options.loss)(logits, yb)
    if state.first_loss is None:
        state.first_loss = value
    where = f"at epoch {epoch + 1}, batch {number}"
    reference = max(state.first_loss, 1.0)
    problem = loss_problem(value, where, reference, options.divergence, model, xb, last_good)
    if problem is not None:
        _restore(model, last_good)
        kept = f"weights of epoch {epoch}" if epoch else "initial weights"
        raise NumericError(
            f"{problem}; {kept} kept (try a lower learning rate, currently "
            f"{optimizer.learning_rate:g})"
        )
    state.total_loss += value * len(yb)
    state.correct += int(np.count_nonzero(logits.argmax(axis=1) == yb))
    model.backward(dlogits)
    step = Step(epoch, number, batches, value, logits, yb, model, optimizer)
    for monitor in hooks.monitors:
        monitor.before_update(step)
    if options.clip_grad_norm is not None:  # the monitors above saw the gradient as it came
        clip_grad_norm(model.g, options.clip_grad_norm)
    optimizer.step(model.theta, model.g, model.mask)
    if options.max_norm is not None:
        limit_unit_norms(hidden_dense_weights(model), options.max_norm)
    for monitor in hooks.monitors:
        monitor.after_update(step)
    state.batch = number
    if hooks.on_batch is not None:
        hooks.on_batch(epoch, number, len(yb))


def _end_epoch(
    model: Any,
    optimizer: Optimizer,
    rows: int,
    size: int,
    validation: tuple[Any, np.ndarray] | None,
    options: TrainOptions,
    monitors: Sequence[Monitor],
    state: TrainState,
) -> tuple[dict[str, float], Evaluation | None]:
    """The finished epoch's record (all but its seconds) and its validation result."""
    record = {
        "epoch": float(state.epoch + 1),
        "learning_rate": float(optimizer.learning_rate),
        "batch_size": float(size),
        "train_loss": state.total_loss / rows,
        "train_accuracy": state.correct / rows,
    }
    result = None
    if validation is not None:
        result = evaluate(model, *validation, loss=options.loss, what="validation")
        record["val_loss"], record["val_accuracy"] = result.loss, result.accuracy
    for monitor in monitors:
        record.update(monitor.end_epoch(state.epoch, model, result))
    return record, result


def _early_stopping(
    state: TrainState,
    history: History,
    patience: int | None,
    result: Evaluation | None,
    weights: list[np.ndarray],
) -> bool:
    """Keep the best validation loss's weights; True once `patience` epochs have not beaten it."""
    if patience is None or result is None:
        return False
    if result.loss < state.best_loss:
        state.best_loss, state.best_weights, state.since_best = result.loss, weights, 0
        history.best_epoch = state.epoch
        return False
    state.since_best += 1
    return state.since_best >= patience


def hidden_dense_weights(model: Any) -> list[np.ndarray]:
    """The weight matrices of every dense layer but the last (the output layer)."""
    dense = [lay for lay in model.layers if isinstance(lay, Dense)]
    return [lay.params["w"] for lay in dense[:-1]]


def _copy_weights(model: Any) -> list[np.ndarray]:
    return [p.copy() for _, p, _ in model.parameters()]


def _restore(model: Any, weights: list[np.ndarray]) -> None:
    for (_, param, _), saved in zip(model.parameters(), weights, strict=True):
        param[...] = saved
