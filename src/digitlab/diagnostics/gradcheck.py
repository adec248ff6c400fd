"""Gradient checks: analytic gradients against central finite differences in float64.

The relative error of two arrays is max|a - n| / max(max|a|, max|n|, tiny): one number per
parameter array, so a wrong derivative anywhere shows as an error near 1, a right one as ~1e-7.
Inputs should stay away from kinks (ReLU at 0), where a finite difference straddles two slopes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from digitlab.core.activations import get_activation
from digitlab.core.losses import get_loss

STEP = 1e-6
TOLERANCE = 1e-5


def relative_error(analytic: np.ndarray, numeric: np.ndarray) -> float:
    """max |analytic - numeric| / max(|analytic|, |numeric|), 0 when both vanish."""
    scale = max(float(np.abs(analytic).max(initial=0)), float(np.abs(numeric).max(initial=0)))
    if scale < 1e-12:
        return 0.0
    return float(np.abs(analytic - numeric).max()) / scale


@dataclass(frozen=True)
class GradientResult:
    """The check of one parameter array (or activation / loss)."""

    name: str
    error: float
    tolerance: float = TOLERANCE

    @property
    def passed(self) -> bool:
        return self.error <= self.tolerance


def check_activation(name: str, z: np.ndarray, **params: Any) -> GradientResult:
    """f'(z) of a registered activation against (f(z + h) - f(z - h)) / 2h, in float64; where
    f' is also registered as a function of the output, the worse of the two forms."""
    entry = get_activation(name)
    assert entry.df is not None
    z = np.asarray(z, dtype=np.float64)
    numeric = (entry.f(z + STEP, **params) - entry.f(z - STEP, **params)) / (2 * STEP)
    error = relative_error(entry.df(z, **params), numeric)
    if entry.df_of_output is not None:
        of_output = entry.df_of_output(entry.f(z, **params), **params)
        error = max(error, relative_error(of_output, numeric))
    return GradientResult(f"activation {name}", error)


def check_loss(name: str, logits: np.ndarray, y: np.ndarray) -> GradientResult:
    """A registered loss's gradient with respect to the logits against finite differences."""
    fn = get_loss(name)
    logits = np.asarray(logits, dtype=np.float64)
    _, analytic = fn(logits, y)
    numeric = np.zeros_like(logits)
    for index in np.ndindex(*logits.shape):
        saved = logits[index]
        logits[index] = saved + STEP
        plus, _ = fn(logits, y)
        logits[index] = saved - STEP
        minus, _ = fn(logits, y)
        logits[index] = saved
        numeric[index] = (plus - minus) / (2 * STEP)
    return GradientResult(f"loss {name}", relative_error(analytic, numeric))


def check_model(
    model: Any, x: np.ndarray, y: np.ndarray, loss: str = "softmax_cross_entropy"
) -> list[GradientResult]:
    """Every parameter array's gradient of loss(model(x), y), one result each (model in float64).

    Both the analytic and the numeric pass run the model in training mode, the mode whose
    gradient training uses: batch norm normalises with the batch's statistics, and dropout
    draws the same mask every time (each layer's generator is put back to one state before
    every forward). The running statistics and the generators end as they were.

    Numerics: a gradient below the finite differences' resolution (about machine epsilon x the
    loss / STEP, e.g. a bias under batch norm, on which the loss does not depend) counts as
    matching: its relative error would only measure rounding.
    """
    fn = get_loss(loss)
    forward = _frozen_forward(model)
    value, dlogits = fn(forward(x), y)
    model.backward(dlogits)
    resolution = 100 * np.finfo(np.float64).eps * max(abs(value), 1.0) / STEP
    results = []
    for name, param, grad in model.parameters():
        analytic = grad.copy()
        numeric = np.zeros_like(param)
        for index in np.ndindex(*param.shape):
            saved = param[index]
            param[index] = saved + STEP
            plus, _ = fn(forward(x), y)
            param[index] = saved - STEP
            minus, _ = fn(forward(x), y)
            param[index] = saved
            numeric[index] = (plus - minus) / (2 * STEP)
        below = max(np.abs(analytic).max(initial=0), np.abs(numeric).max(initial=0)) < resolution
        error = 0.0 if below else relative_error(analytic, numeric)
        results.append(GradientResult(name, error))
    forward(None)
    return results


def _frozen_forward(model: Any) -> Callable[[np.ndarray | None], np.ndarray]:
    """A training-mode forward that first puts back the buffers (running statistics) and every
    layer's generator (dropout's masks) as they are now; forward(None) only puts them back."""
    buffers = [(array, array.copy()) for _, array in model.buffers()]
    generators = {
        id(lay.rng): (lay.rng, lay.rng.bit_generator.state)
        for lay in model.layers
        if isinstance(getattr(lay, "rng", None), np.random.Generator)
    }

    def forward(x: np.ndarray | None) -> np.ndarray:
        for array, saved in buffers:
            array[...] = saved
        for generator, state in generators.values():
            generator.bit_generator.state = state
        return model.forward(x, training=True) if x is not None else np.empty(0)

    return forward
