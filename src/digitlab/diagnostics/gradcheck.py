"""Gradient checks: analytic gradients against central finite differences in float64.

The relative error of two arrays is max|a - n| / max(max|a|, max|n|, tiny): one number per
parameter array, so a wrong derivative anywhere shows as an error near 1, a right one as ~1e-7.
Inputs should stay away from kinks (ReLU at 0), where a finite difference straddles two slopes.
"""

from __future__ import annotations

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
    """Every parameter array's gradient of loss(model(x), y), one result each.

    The model must be float64 and hold no dropout (or dropout with rate 0): the check needs a
    deterministic function of the parameters.
    """
    fn = get_loss(loss)
    logits = model.forward(x, training=True)
    _, dlogits = fn(logits, y)
    model.backward(dlogits)
    results = []
    for name, param, grad in model.parameters():
        analytic = grad.copy()
        numeric = np.zeros_like(param)
        for index in np.ndindex(*param.shape):
            saved = param[index]
            param[index] = saved + STEP
            plus, _ = fn(model.forward(x, training=False), y)
            param[index] = saved - STEP
            minus, _ = fn(model.forward(x, training=False), y)
            param[index] = saved
            numeric[index] = (plus - minus) / (2 * STEP)
        results.append(GradientResult(name, relative_error(analytic, numeric)))
    return results
