"""What watches training: the per-epoch and per-batch callbacks, and the monitors' contract.

A monitor sees each sampled batch as a `Step`, once before the optimizer's update (the
gradients are fresh) and once after, and returns its per-epoch numbers at the end of an epoch;
it never changes training. The built-in ones are in digitlab.diagnostics.monitors.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from digitlab.core.evaluation import Evaluation
from digitlab.core.optim import Optimizer

EpochCallback = Callable[[dict[str, float], Any], None]
BatchCallback = Callable[[int, int, int], None]


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
