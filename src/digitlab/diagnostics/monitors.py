"""Training monitors: cheap numbers per layer and per epoch, recorded in the history.

Each monitor implements digitlab.core.hooks.Monitor. They read arrays the step already has
(gradients, the pre-activations z cached for backward, the validation predictions) and do the
heavier work only on about 20 batches an epoch, so together they cost a few percent of training
(benchmarks/monitor_cost.py measures it). Their keys in each epoch's record:

- `<param>.norm` (weights, at the epoch's end), `<param>.grad_norm` and `<param>.update_ratio`
  (|delta w| / |w| of one optimizer step), averaged over the sampled batches; `<bias>.grad_rms`,
  the root mean square of a bias's gradient (the sum over the batch of dz: how large the
  gradient arriving at each layer is, unit for unit);
- `<weight>.ratio_low_run` / `.ratio_high_run`: the longest run of consecutive sampled steps,
  reaching into this epoch, whose update ratio was below RATIO_LOW or above the optimizer's
  ratio_high();
- `<activation layer>.mean` / `.std` of its outputs, `.dead` (share of units, or channels of
  images, whose f'(z) is 0 on every example of a batch: ReLU units that never fire) and
  `.saturated` (share of (example, unit) pairs with 0 < |f'(z)| < 0.01: sigmoid or tanh
  pinned near 0 or 1), `.zeros` and `.zero_share`: how many pre-activations z of the sampled
  batches were exactly 0, where f'(z) is the value chosen at the kink (ReLU: 0), and their share;
- in the first epoch's record, the same per-layer scales before any step (`<layer>.std_at_init`,
  `<bias>.grad_rms_at_init`): the first batch's forward and backward, seen before its update;
- `loss_spikes`: batches whose loss jumped far above its recent trend;
- `top_class_share` / `top2_class_share`: how concentrated the validation predictions are, and
  `val_examples`, how many there are, and `classes`, how many classes the model tells apart.

`state_dict`/`load_state_dict` give a monitor's running numbers as JSON-ready values, so that a
checkpoint carries them and a resumed run records what an uninterrupted one would.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from digitlab.core.batchnorm import BatchNorm
from digitlab.core.evaluation import Evaluation
from digitlab.core.hooks import Step
from digitlab.core.optim import Adam, Optimizer, RMSprop

SATURATED = 0.01  # |f'(z)| below this: the unit barely passes a gradient
TINY = 1e-15  # a float32 std below this is recomputed in float64 (3x the time of float32)
RATIO_LOW = 1e-4  # an update/weight ratio below this barely moves the weights
# Above this a step rewrites a tenth of the weights: healthy SGD runs peak at 2-7e-2 in their
# first epoch. Adam's step is about the rate per weight whatever the gradient, so its ratio is
# about rate / rms(w): 1e-3..7e-3 at its usual rate of 1e-3, 1e-2..7e-2 at a rate 100x that.
RATIO_HIGH, RATIO_HIGH_ADAPTIVE = 0.1, 0.03


def ratio_high(optimizer: Optimizer) -> float:
    """The update/weight ratio above which a step is too large for this kind of optimizer."""
    return RATIO_HIGH_ADAPTIVE if isinstance(optimizer, (Adam, RMSprop)) else RATIO_HIGH


def _norm(a: np.ndarray) -> float:
    """Euclidean norm: one BLAS dot product; redone in float64 if float32 overflowed, or
    underflowed to 0 (entries under 1e-19 square to nothing: a vanishing gradient's size)."""
    flat = a.ravel()
    with np.errstate(over="ignore"):  # a float32 overflow is caught just below and redone
        square = float(np.dot(flat, flat))
    underflowed = square == 0 and flat.any()
    if underflowed or (not np.isfinite(square) and np.isfinite(flat).all()):
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
        self.zeros: dict[str, list[int]] = {}  # layer -> [exact zeros of z, entries seen]
        self.initial: dict[str, float] = {}  # the scales before the first step, until recorded
        # weight -> [current run of low ratios, of high ratios, longest of each this epoch]
        self.runs: dict[str, list[int]] = {}
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
        first = step.epoch == 0 and step.batch == 1  # no step taken yet: the scales at init
        # a batch norm takes out the mean over the batch: the bias before it gets no gradient
        normed = {
            f"{node.inputs[0]}.b"
            for node in getattr(step.model, "nodes", [])
            if isinstance(node.layer, BatchNorm)
        }
        for name, param, grad in step.model.parameters():
            norm = _norm(grad)
            self._add(f"{name}.grad_norm", norm)
            if name.endswith(".w"):
                self._before[name] = param.copy()
            elif grad.ndim == 1 and name.endswith((".b", ".beta")) and name not in normed:
                rms = norm / float(np.sqrt(grad.size))
                self._add(f"{name}.grad_rms", rms)
                if first:
                    self.initial[f"{name}.grad_rms_at_init"] = rms
        units = (unit for lay in step.model.layers for unit in getattr(lay, "groups", [lay]))
        for lay in units:  # an activation layer, or one activation group of a mixed layer
            a = getattr(lay, "a", None)
            if a is None:
                continue
            slope = np.abs(lay.slope())
            std = float(a.std())
            if std < TINY:  # float32 squares of values under 1e-19 underflow: redo in float64
                std = float(a.std(dtype=np.float64))
            self._add(f"{lay.name}.mean", float(a.mean()))
            self._add(f"{lay.name}.std", std)
            if first:
                self.initial[f"{lay.name}.std_at_init"] = std
            zeros = self.zeros.setdefault(lay.name, [0, 0])
            zeros[0] += int(np.count_nonzero(lay.z == 0))
            zeros[1] += lay.z.size
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
        high = ratio_high(step.optimizer)
        for name, param, _ in step.model.parameters():
            old = self._before.get(name)
            if old is not None:
                ratio = _norm(param - old) / max(_norm(old), 1e-12)
                self._add(f"{name}.update_ratio", ratio)
                run = self.runs.setdefault(name, [0, 0, 0, 0])
                run[0] = run[0] + 1 if ratio < RATIO_LOW else 0
                run[1] = run[1] + 1 if ratio > high else 0
                run[2], run[3] = max(run[2], run[0]), max(run[3], run[1])
        self._before.clear()

    def state_dict(self) -> dict[str, Any]:
        # between batches there is nothing in _before: after_update empties it
        return {
            "sums": dict(self.sums),
            "counts": dict(self.counts),
            "zeros": {k: list(v) for k, v in self.zeros.items()},
            "initial": dict(self.initial),
            "runs": {k: list(v) for k, v in self.runs.items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.sums, self.counts = dict(state["sums"]), dict(state["counts"])
        self.zeros = {k: list(v) for k, v in state.get("zeros", {}).items()}
        self.initial = dict(state.get("initial", {}))
        self.runs = {k: list(v) for k, v in state.get("runs", {}).items()}

    def end_epoch(self, epoch: int, model: Any, validation: Evaluation | None) -> dict[str, float]:
        record = {key: total / self.counts[key] for key, total in self.sums.items()}
        for name, param, _ in model.parameters():
            if name.endswith(".w"):
                record[f"{name}.norm"] = _norm(param)
        for name, (count, size) in self.zeros.items():
            record[f"{name}.zeros"] = float(count)
            record[f"{name}.zero_share"] = count / max(size, 1)
        for name, run in self.runs.items():
            record[f"{name}.ratio_low_run"] = float(run[2])
            record[f"{name}.ratio_high_run"] = float(run[3])
            run[2], run[3] = run[0], run[1]  # a run still going counts in the next epoch too
        record |= self.initial
        self.initial = {}
        self.sums.clear()
        self.counts.clear()
        self.zeros.clear()
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
            "classes": float(validation.probabilities.shape[1]),  # chance is 1 / classes
        }


def default_monitors(samples: int = 20) -> list[Any]:
    """The monitors `digitlab train` runs unless told not to."""
    return [LayerStats(samples), LossSpikes(), ClassBalance()]
