"""Shared fixtures: a seeded rng, a tiny float64 batch, a tiny model, the real MNIST folder."""

import os
from pathlib import Path

import numpy as np
import pytest

from digitlab.core.model import build_model
from digitlab.core.specs import mlp_spec

# Where the real MNIST files are: $DIGITLAB_DATA_DIR (CI sets it), else a developer's
# ../shared/data/mnist beside the checkout.
DEVELOPER_MNIST = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "mnist"
MNIST_DIR = Path(os.environ.get("DIGITLAB_DATA_DIR") or DEVELOPER_MNIST).resolve()
MNIST_NAMES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)


def require_mnist() -> Path:
    """The real MNIST folder; skips without it, but fails in CI (CI=true), which must have it."""
    missing = [name for name in MNIST_NAMES if not (MNIST_DIR / name).is_file()]
    if missing:
        message = f"MNIST files not found in {MNIST_DIR} (missing {', '.join(missing)}); set "
        message += "DIGITLAB_DATA_DIR to the folder holding them"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return MNIST_DIR


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


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    return require_mnist()


@pytest.fixture(autouse=True)
def _registries_restored():
    """Every registry as it was before each test: a plugin a test loads registers entries that
    would otherwise leak into later tests (a planted wrong derivative fails every later check)."""
    from digitlab.core.activations import ACTIVATIONS
    from digitlab.core.init import INITIALISERS
    from digitlab.core.layers import LAYERS
    from digitlab.core.losses import LOSSES
    from digitlab.core.optim import OPTIMIZERS
    from digitlab.core.schedules import SCHEDULES

    registries = [ACTIVATIONS, INITIALISERS, LAYERS, LOSSES, OPTIMIZERS, SCHEDULES]
    saved = [dict(registry) for registry in registries]
    yield
    for registry, entries in zip(registries, saved, strict=True):
        registry.clear()
        registry.update(entries)


@pytest.fixture
def cli(capsys):
    """Run the CLI in-process: cli(args) -> (exit code, stdout, stderr)."""
    from digitlab.cli import main

    def run(args: list[str]) -> tuple[object, str, str]:
        try:
            main(args)
            code: object = 0
        except SystemExit as done:
            code = done.code
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


@pytest.fixture(scope="session")
def mnist_image_folder(tmp_path_factory, mnist_dir: Path) -> Path:
    """400 MNIST training digits as image files of every kind, in one subfolder per digit."""
    from digit_images import write_digit_images  # tests/digit_images.py

    from digitlab.data import load_idx_folder

    mnist = load_idx_folder(mnist_dir)
    root = tmp_path_factory.mktemp("own_images")
    write_digit_images(root, mnist.x_train[:400].reshape(-1, 28, 28), mnist.y_train[:400])
    return root
