"""Shared fixtures: a seeded rng, a tiny float64 batch, a tiny model, the real MNIST folder."""

from pathlib import Path

import numpy as np
import pytest

from digitlab.core.model import build_model
from digitlab.core.specs import mlp_spec

MNIST_DIR = (Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "mnist").resolve()


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture
def tiny_batch(rng):
    """16 x 6 float64 inputs, 3 classes."""
    x = rng.standard_normal((16, 6))
    y = rng.integers(0, 3, size=16)
    return x, y


@pytest.fixture
def tiny_model(rng):
    return build_model(mlp_spec([5, 4], 3, "tanh"), 6, rng, np.float64)


@pytest.fixture
def mnist_dir() -> Path:
    if not (MNIST_DIR / "train-images-idx3-ubyte.gz").exists():
        pytest.skip(f"MNIST files not found at {MNIST_DIR}")
    return MNIST_DIR
