"""What watches training: the per-epoch and per-batch callbacks, and the monitors' contract,
gathered for `fit` in a TrainHooks; and the one hook that changes the model between epochs, the
activation schedule.

A monitor sees each sampled batch as a `Step`, once before the optimizer's update (the
gradients are fresh) and once after, and returns its per-epoch numbers at the end of an epoch;
it never changes training. The built-in ones are in digitlab.diagnostics.monitors.
An epoch-start hook (epoch, model) -> numbers runs before each epoch's first batch (again when a
run resumes inside that epoch, so it must give the same result twice); its numbers go into that
epoch's record.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from digitlab.core.activations import check_params, get_activation
from digitlab.core.evaluation import Evaluation
from digitlab.core.layers import Activation
from digitlab.core.optim import Optimizer

EpochCallback = Callable[[dict[str, float], Any], None]
BatchCallback = Callable[[int, int, int], None]
EpochStart = Callable[[int, Any], dict[str, float]]


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
class TrainHooks:
    """Who watches training: per-epoch callbacks (record, model), a per-batch callback (epoch,
    batch, rows), monitors (see Monitor), a stop flag polled after every batch, and epoch-start
    hooks that may change the model (see activation_schedule below)."""

    callbacks: Sequence[EpochCallback] = ()
    epoch_start: Sequence[EpochStart] = ()
    on_batch: BatchCallback | None = None
    monitors: Sequence[Monitor] = ()
    should_stop: Callable[[], bool] | None = None


def set_hidden_activation(model: Any, name: str, params: dict[str, Any] | None = None) -> None:
    """Make every activation layer but the output one compute `name` (with `params`), in the
    layers and in the model's description, so a saved model carries it.

    Weights and layer names stay: the description names each activation node as it was built
    (a sigmoid layer switched to relu stays `sigmoid1`), so the monitors' keys do not change
    and a model rebuilt from a checkpoint has the same names as the one that wrote it.
    """
    entry, params = get_activation(name), dict(params or {})
    check_params(name, params)
    for node in model.nodes:
        lay, i = node.layer, node.index
        if not isinstance(lay, Activation):
            continue
        if node.name != model.output:
            lay.activation, lay.f, lay.df, lay.fparams = name, entry.f, entry.df, params
            lay.df_of_output, lay.z, lay.a = entry.df_of_output, None, None
            node.spec = {"type": "activation", "name": name, **params}
        pinned = {"type": "activation", "name": node.name, "activation": lay.activation}
        if "inputs" in model.spec[i]:
            pinned["inputs"] = model.spec[i]["inputs"]
        model.spec[i] = {**pinned, **lay.fparams}


def activation_schedule(switches: Sequence[tuple[int, str, dict[str, Any]]]) -> EpochStart:
    """An epoch-start hook: from epoch e (0-based) of each (e, name, params), sorted by e, the
    hidden layers compute that activation; before the first e they keep the model's own.

    The epoch a switch takes effect records activation_switch = 1 (reports mark it). Setting
    the activation in effect at every epoch start makes a resumed run the same as one that
    never stopped.
    """
    switches = sorted(switches, key=lambda switch: switch[0])

    def start(epoch: int, model: Any) -> dict[str, float]:
        current = [switch for switch in switches if switch[0] <= epoch]
        if current:
            set_hidden_activation(model, current[-1][1], current[-1][2])
        return {"activation_switch": 1.0} if current and current[-1][0] == epoch else {}

    return start
