"""evaluate() works chunk by chunk: its numbers are those of one pass over all the rows."""

from __future__ import annotations

import numpy as np
import pytest

import digitlab as dl
from digitlab.core.evaluation import (
    EVAL_BYTES,
    EVAL_CHUNK,
    chunk_rows,
    evaluate,
    logits_in_chunks,
)
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


def test_a_wide_model_is_evaluated_in_smaller_chunks() -> None:
    """A CNN's feature maps make a chunk of 1,024 rows hundreds of MiB: chunk_rows keeps a
    chunk's layer outputs under EVAL_BYTES; an MLP keeps EVAL_CHUNK rows; the numbers are those
    of one pass over all the rows either way."""
    rng = np.random.default_rng(5)
    cnn = dl.build_model(
        [
            {"type": "reshape", "shape": [1, 28, 28]},
            {"type": "conv2d", "filters": 32, "kernel_size": 3, "padding": 1},
            {"type": "maxpool2d", "size": 2},
            {"type": "activation", "name": "relu"},
            {"type": "flatten"},
            {"type": "dense", "units": 10},
        ],
        784,
        rng,
    )
    mlp = dl.build_model(
        [{"type": "dense", "units": 100}, {"type": "dense", "units": 10}], 784, rng
    )
    rows = chunk_rows(cnn)
    per_row = (784 + 32 * 28 * 28 + 3 * 32 * 14 * 14 + 10) * 4  # every layer's output, float32
    assert rows == EVAL_BYTES // per_row < EVAL_CHUNK
    assert chunk_rows(mlp) == EVAL_CHUNK
    n = 2 * rows + 5
    x, y = rng.standard_normal((n, 784)).astype(np.float32), rng.integers(0, 10, n)
    chunks = [len(logits) for _, logits in logits_in_chunks(cnn, x)]
    assert chunks == [rows, rows, 5]
    result = evaluate(cnn, x, y)
    np.testing.assert_array_equal(result.predictions, cnn.forward(x).argmax(axis=1))
