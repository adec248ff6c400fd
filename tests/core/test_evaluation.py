"""evaluate() works chunk by chunk: its numbers are those of one pass over all the rows."""

from __future__ import annotations

import numpy as np
import pytest

import digitlab as dl
from digitlab.core.evaluation import EVAL_CHUNK, evaluate
from digitlab.core.losses import get_loss, softmax


@pytest.mark.parametrize("loss", ["softmax_cross_entropy", "sigmoid_cross_entropy", "quadratic"])
def test_chunked_evaluation_equals_one_pass_over_all_rows(loss: str) -> None:
    rng = np.random.default_rng(3)
    spec = [{"type": "dense", "units": 7}, {"type": "activation", "name": "tanh"}]
    model = dl.build_model([*spec, {"type": "dense", "units": 4}], 5, rng, dtype=np.float64)
    n = 2 * EVAL_CHUNK + 37  # two full chunks and a short one
    x, y = rng.standard_normal((n, 5)), rng.integers(0, 4, n)
    result = evaluate(model, x, y, loss)
    logits = model.forward(x)
    expected, _ = get_loss(loss)(logits, y)
    assert result.loss == pytest.approx(expected, rel=1e-12)
    np.testing.assert_array_equal(result.probabilities, softmax(logits))
    np.testing.assert_array_equal(result.predictions, logits.argmax(axis=1))
    assert result.accuracy == np.mean(logits.argmax(axis=1) == y)
    assert result.n == n and result.probabilities.dtype == np.float64
