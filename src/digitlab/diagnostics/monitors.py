"""Training monitors: cheap numbers per layer and per epoch, recorded in the history.

Each monitor implements digitlab.core.hooks.Monitor. They read arrays the step already has
(gradients, the pre-activations z cached for backward, the validation predictions) and do the
heavier work only on about 20 batches an epoch, so together they cost a few percent of training
(benchmarks/monitor_cost.py measures it). Their keys in each epoch's record:

- `<param>.norm` (weights, at the epoch's end), `<param>.grad_norm` and `<param>.update_ratio`
  (|delta w| / |w| of one optimizer step), averaged over the sampled batches;
- `<activation layer>.mean` / `.std` of its outputs, `.dead` (share of units, or channels of
  images, whose f'(z) is 0 on every example of a batch: ReLU units that never fire) and
  `.saturated` (share of
  (example, unit) pairs with 0 < |f'(z)| < 0.01: sigmoid or tanh pinned near 0 or 1);
- `loss_spikes`: batches whose loss jumped far above its recent trend;
- `top_class_share` / `top2_class_share`: how concentrated the validation predictions are, and
  `val_examples`, how many there are.

`state_dict`/`load_state_dict` give a monitor's running numbers as JSON-ready values, so that a
checkpoint carries them and a resumed run records what an uninterrupted one would.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from digitlab.core.evaluation import Evaluation
from digitlab.core.hooks import Step

SATURATED = 0.01  # |f'(z)| below this: the unit barely passes a gradient


def _norm(a: np.ndarray) -> float:
    """Euclidean norm: one BLAS dot product; redone in float64 if float32 overflowed."""
    flat = a.ravel()
    with np.errstate(over="ignore"):  # a float32 overflow is caught just below and redone
        square = float(np.dot(flat, flat))
    if not np.isfinite(square) and np.isfinite(flat).all():
        square = float(np.dot(flat.astype(np.float64), flat.astype(np.float64)))
    return float(np.sqrt(square))


class LayerStats:
    """Weight, gradient and update norms per parameter; activation statistics per layer.

    Measured on about `samples` evenly spaced batches per epoch (every batch of a short epoch).
    """

    def __init__(self, samples: int = 20) -> None:
        self.samples = samples
        self.sums: dict[str, float] = {}
        self.counts: dict[str, int] = {}
        self._before: dict[str, np.ndarray] = {}

    def _add(self, key: str, value: float) -> None:
        self.sums[key] = self.sums.get(key, 0.0) + value
        self.counts[key] = self.counts.get(key, 0) + 1

    def _sampled(self, step: Step) -> bool:
        every = max(1, step.batches // self.samples)
        return (step.batch - 1) % every == 0

    def before_update(self, step: Step) -> None:
        if not self._sampled(step):
            return
        for name, param, grad in step.model.parameters():
            self._add(f"{name}.grad_norm", _norm(grad))
            if name.endswith(".w"):
                self._before[name] = param.copy()
        units = (unit for lay in step.model.layers for unit in getattr(lay, "groups", [lay]))
        for lay in units:  # an activation layer, or one activation group of a mixed layer
            a = getattr(lay, "a", None)
            if a is None:
                continue
            slope = np.abs(lay.slope())
            self._add(f"{lay.name}.mean", float(a.mean()))
            self._add(f"{lay.name}.std", float(a.std()))
            # a unit is a feature of flat rows, or a channel of images (n, c, h, w): a channel
            # is dead when it is zero at every position of every example
            units = np.moveaxis(slope, 1, 0).reshape(slope.shape[1], -1).T
            self._add(f"{lay.name}.dead", float((units == 0).all(axis=0).mean()))
            saturated = (units > 0) & (units < SATURATED)
            # a count, not saturated.mean(): the mean of a boolean array converts it to float64
            self._add(f"{lay.name}.saturated", np.count_nonzero(saturated) / saturated.size)

    def after_update(self, step: Step) -> None:
        if not self._before:
            return
        for name, param, _ in step.model.parameters():
            old = self._before.get(name)
            if old is not None:
                change = _norm(param - old)
                self._add(f"{name}.update_ratio", change / max(_norm(old), 1e-12))
        self._before.clear()

    def state_dict(self) -> dict[str, Any]:
        # between batches there is nothing in _before: after_update empties it
        return {"sums": dict(self.sums), "counts": dict(self.counts)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.sums, self.counts = dict(state["sums"]), dict(state["counts"])

    def end_epoch(self, epoch: int, model: Any, validation: Evaluation | None) -> dict[str, float]:
        record = {key: total / self.counts[key] for key, total in self.sums.items()}
        for name, param, _ in model.parameters():
            if name.endswith(".w"):
                record[f"{name}.norm"] = _norm(param)
        self.sums.clear()
        self.counts.clear()
        return record


class LossSpikes:
    """Counts jumps: batches whose loss exceeds 2x its running mean and 6 running deviations,
    when the next batch's loss is still above 1.5x that mean.

    The second condition tells a step that hurt the model (too high a learning rate: the loss
    stays up) from a lone hard batch, which is common once the loss is small (one misread digit
    in a batch of 128 can triple a loss of 0.02) and is gone by the next batch.
    """

    def __init__(self, warmup: int = 10, smoothing: float = 0.1) -> None:
        self.warmup, self.smoothing = warmup, smoothing
        self.mean: float | None = None
        self.deviation = 0.0
        self.seen = 0
        self.counted = 0  # batches seen up to the last epoch's end
        self.spikes = 0
        self.jumped = False  # the last batch jumped: this one says whether it was a spike

    def before_update(self, step: Step) -> None:
        loss = step.loss
        self.seen += 1
        if self.mean is None:
            self.mean = loss
            return
        if self.jumped:
            self.jumped = False
            if loss > 1.5 * self.mean:
                self.spikes += 1
        if self.seen > self.warmup and loss > 2 * self.mean + 6 * self.deviation:
            self.jumped = True
            return  # a jump does not move the trend it is measured against
        self.deviation += self.smoothing * (abs(loss - self.mean) - self.deviation)
        self.mean += self.smoothing * (loss - self.mean)

    def after_update(self, step: Step) -> None:
        pass

    _STATE = ("mean", "deviation", "seen", "counted", "spikes", "jumped")

    def state_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self._STATE}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name in self._STATE:
            setattr(self, name, state[name])

    def end_epoch(self, epoch: int, model: Any, validation: Evaluation | None) -> dict[str, float]:
        spikes, self.spikes = self.spikes, 0
        batches, self.counted = self.seen - self.counted, self.seen
        return {"loss_spikes": float(spikes), "loss_spike_batches": float(batches)}


class ClassBalance:
    """How concentrated the validation predictions are on their one or two commonest classes."""

    def before_update(self, step: Step) -> None:
        pass

    def after_update(self, step: Step) -> None:
        pass

    def state_dict(self) -> dict[str, Any]:
        return {}  # it keeps nothing between epochs

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass

    def end_epoch(self, epoch: int, model: Any, validation: Evaluation | None) -> dict[str, float]:
        if validation is None or validation.n == 0:
            return {}
        counts = np.bincount(validation.predictions, minlength=validation.probabilities.shape[1])
        shares = np.sort(counts)[::-1] / validation.n
        return {
            "top_class_share": float(shares[0]),
            "top2_class_share": float(shares[:2].sum()),
            "val_examples": float(validation.n),  # the alarms weigh a loss's noise by it
        }


def default_monitors(samples: int = 20) -> list[Any]:
    """The monitors `digitlab train` runs unless told not to."""
    return [LayerStats(samples), LossSpikes(), ClassBalance()]
