"""Fixtures for the data tests: a seeded rng, the real MNIST folder, tiny IDX folders."""

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from digitlab.data import Dataset, load_idx_folder, write_idx

IdxFolderWriter = Callable[..., Path]


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture(scope="session")
def mnist_folder(mnist_dir: Path) -> Path:
    """The real MNIST folder (tests/conftest.py's mnist_dir: skipped without it, failed in CI)."""
    return mnist_dir


@pytest.fixture(scope="session")
def mnist(mnist_folder: Path) -> Dataset:
    """The real MNIST, loaded once; tests must not modify its arrays."""
    return load_idx_folder(mnist_folder)


def write_idx_folder(
    folder: Path,
    *,
    n_train: int = 40,
    n_test: int = 20,
    image_shape: tuple[int, int] = (5, 5),
    n_classes: int = 3,
    suffix: str = ".gz",
    dotted: bool = False,
    seed: int = 0,
) -> Path:
    """Write the four MNIST-style files of a small random dataset into `folder`."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    separator = "." if dotted else "-"
    for prefix, count in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, size=(count, *image_shape), dtype=np.uint8)
        # Every class appears; the rest is random.
        labels = np.concatenate(
            [np.arange(n_classes), rng.integers(0, n_classes, size=count - n_classes)]
        ).astype(np.uint8)
        write_idx(folder / f"{prefix}-images{separator}idx3-ubyte{suffix}", images)
        write_idx(folder / f"{prefix}-labels{separator}idx1-ubyte{suffix}", labels)
    return folder


@pytest.fixture
def tiny_idx_folder(tmp_path: Path) -> Path:
    """40 train and 20 test 5x5 images, 3 classes, gzip-compressed."""
    return write_idx_folder(tmp_path / "tiny")


@pytest.fixture
def idx_folder_writer() -> IdxFolderWriter:
    """write_idx_folder, for tests that need their own variant of the tiny folder."""
    return write_idx_folder
