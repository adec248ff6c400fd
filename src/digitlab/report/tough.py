"""Nielsen's 'tough' test digits (N11): which examples they are, and a grid of them.

The command, `digitlab tough RUN RUN...`, is in cli/report.py; this module only selects and draws.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from digitlab.report import plots


def tough_examples(probs: np.ndarray, y: np.ndarray, threshold: float, count: int) -> np.ndarray:
    """Indices of the examples whose true class got probability < threshold, lowest first."""
    p_true = probs[np.arange(len(y)), y]
    hard = np.flatnonzero(p_true < threshold)
    return hard[np.argsort(p_true[hard], kind="stable")][:count]


def tough_grid(
    x: np.ndarray,
    image_shape: Sequence[int],
    y: np.ndarray,
    chosen: np.ndarray,
    predictions: list[np.ndarray],
) -> bytes:
    """PNG of the hardest chosen examples, each titled with every run's answer in order (red
    where the last run is wrong)."""
    shown = chosen[: plots.GRID_MAX]
    labels = [
        f"true {y[i]}\n" + " ".join(f"{n}:{pred[i]}" for n, pred in enumerate(predictions, 1))
        for i in shown
    ]
    colors = ["black" if predictions[-1][i] == y[i] else "tab:red" for i in shown]
    title = f"The {len(shown)} hardest of {len(chosen)} tough test digits, as each run classed them"
    return plots.labelled_examples_plot(x[shown], image_shape, labels, colors, title)
