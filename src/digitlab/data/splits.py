"""Train/validation/test splits of a Dataset.

Every split is computed as index arrays first (vectorised, seeded only by the Generator passed
in), then the arrays are gathered once. Validation never overlaps training, the test set is never
used for fitting, and `train_per_class` / `train_first` shrink only the training part, after
the split.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from digitlab.errors import ConfigError, DataError

if TYPE_CHECKING:
    from digitlab.data.sources import Dataset

SPLITS = ("holdout", "book", "nielsen", "per_class")
NIELSEN_VALIDATION_SIZE = 10_000


@dataclass(frozen=True)
class Split:
    """Flattened images (n, features) and their integer labels (n,).

    x is an array, or for the test part of prepare_data(lazy=True) rows made when read
    (data.transforms.LazyRows: index it, or np.asarray it for all at once)."""

    x: Any
    y: np.ndarray


@dataclass(frozen=True)
class Splits:
    train: Split
    val: Split
    test: Split


def repeated_images(splits: Splits) -> dict[str, int]:
    """How many validation and test images are exact copies of a training image, and test
    images of a validation image (D7: 'suspiciously good' results). The splits are disjoint by
    index; this counts the same pixels under two indices. Rows are compared by a 128-bit hash
    of their bytes, so on raw pixels an exact copy is found and nothing else."""

    def digests(x: np.ndarray) -> list[bytes]:
        rows = np.ascontiguousarray(x)
        return [hashlib.blake2b(row.tobytes(), digest_size=16).digest() for row in rows]

    train = set(digests(splits.train.x))
    val = digests(splits.val.x)
    test = digests(splits.test.x)
    val_set = set(val)
    return {
        "val_in_train": sum(d in train for d in val),
        "test_in_train": sum(d in train for d in test),
        "test_in_val": sum(d in val_set for d in test),
    }


def _rank_within_class(y: np.ndarray, order: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For samples visited in `order`, each one's class index and its rank inside its class."""
    classes, inverse = np.unique(y[order], return_inverse=True)
    counts = np.bincount(inverse, minlength=classes.size)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    # `order` groups samples by class, so a sample's rank is its distance from its class start.
    return inverse, np.arange(order.size) - starts[inverse]


def stratified_holdout(
    y: np.ndarray, fraction: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Split indices into (keep, held) with `fraction` of every class held out at random.

    Each class gives floor(count * fraction) samples; the few left over to reach
    round(n * fraction) in total go to the classes with the largest remainders. Both index
    arrays are sorted.
    """
    y = np.asarray(y)
    if not 0.0 < fraction < 1.0:
        raise ConfigError(f"holdout fraction must be between 0 and 1, got {fraction}")
    # Random keys, then a stable sort by class: a random permutation inside each class.
    order = np.lexsort((rng.random(y.size), y))
    inverse, rank = _rank_within_class(y, order)
    counts = np.bincount(inverse)
    exact = counts * fraction
    held_per_class = np.floor(exact).astype(np.int64)
    missing = int(round(y.size * fraction)) - int(held_per_class.sum())
    if missing > 0:
        largest_remainders = np.argsort(-(exact - held_per_class), kind="stable")[:missing]
        held_per_class[largest_remainders] += 1
    held_mask = rank < held_per_class[inverse]
    return np.sort(order[~held_mask]), np.sort(order[held_mask])


def first_per_class(y: np.ndarray, n: int) -> np.ndarray:
    """The sorted indices of the first `n` examples of every class, in dataset order."""
    y = np.asarray(y)
    if n <= 0:
        raise ConfigError(f"--train-per-class must be positive, got {n}")
    order = np.argsort(y, kind="stable")
    inverse, rank = _rank_within_class(y, order)
    classes, counts = np.unique(y, return_counts=True)
    smallest = int(np.argmin(counts)) if counts.size else 0
    if counts.size and counts[smallest] < n:
        raise DataError(
            f"--train-per-class {n} is larger than class {classes[smallest]}, "
            f"which has {counts[smallest]} training examples"
        )
    return np.sort(order[rank < n])


def _check_disjoint(train_index: np.ndarray, val_index: np.ndarray) -> None:
    overlap = np.intersect1d(train_index, val_index)
    if overlap.size:
        raise AssertionError(f"train and validation share {overlap.size} training examples")


def _rows(array: np.ndarray, index: np.ndarray) -> np.ndarray:
    """array[index], as a view (no copy of the data) when index is one contiguous range."""
    if index.size and index[-1] - index[0] + 1 == index.size and (np.diff(index) == 1).all():
        return array[int(index[0]) : int(index[-1]) + 1]
    return array[index]


def per_class_splits(dataset: Dataset, per_class: int, val_per_class: int) -> Splits:
    """The first `per_class` images of each class in the source's order (training and test
    files pooled), the last `val_per_class` of them validation, the others training; every
    image left over is the test set (the 8x8 digits' hand-built classifier: 174 and 20)."""
    if not 0 < val_per_class < per_class:
        raise ConfigError(
            f"val_per_class must be between 0 and per_class ({per_class}), got {val_per_class}"
        )
    x = np.concatenate([dataset.x_train, dataset.x_test])
    y = np.concatenate([dataset.y_train, dataset.y_test])
    index = dataset.source_index if dataset.source_index is not None else np.arange(y.size)
    visit = np.argsort(index, kind="stable")
    x, y = x[visit], y[visit]  # the pooled images in the source's order
    first_per_class(y, per_class)  # raises when a class has fewer than per_class images
    order = np.argsort(y, kind="stable")
    rank = np.empty(y.size, dtype=np.int64)
    rank[order] = _rank_within_class(y, order)[1]  # each image's rank inside its class
    masks = (
        rank < per_class - val_per_class,
        (rank >= per_class - val_per_class) & (rank < per_class),
        rank >= per_class,
    )
    if not masks[2].any():
        raise DataError(f"{dataset.name}: per_class {per_class} leaves the test set empty")
    train, val, test = (Split(x[mask], y[mask]) for mask in masks)
    return Splits(train=train, val=val, test=test)


def make_splits(
    dataset: Dataset,
    split: str = "holdout",
    *,
    val_fraction: float = 0.1,
    train_per_class: int | None = None,
    train_first: int | None = None,
    per_class: int = 174,
    val_per_class: int = 20,
    rng: np.random.Generator,
) -> Splits:
    """Cut a Dataset into train, validation and test.

    holdout: validation is a stratified random `val_fraction` of the training set.
    book: all training images; validation and test are the first and second half of the test
        set ('Programming Machine Learning').
    nielsen: the last 10,000 training images are validation (Nielsen's 50k/10k).
    per_class: see per_class_splits (train_per_class and train_first do not apply).
    """
    if split not in SPLITS:
        raise ConfigError(f"unknown split {split!r}; choose one of: {', '.join(SPLITS)}")
    if split == "per_class":
        if train_per_class is not None or train_first is not None:
            raise ConfigError("the per_class split sets its own sizes: drop train_per_class")
        return per_class_splits(dataset, per_class, val_per_class)
    if not 0.0 < val_fraction < 1.0:
        raise ConfigError(f"val_fraction must be between 0 and 1, got {val_fraction}")
    n_train = dataset.y_train.shape[0]
    test_part = slice(None)
    if split == "holdout":
        train_index, val_index = stratified_holdout(dataset.y_train, val_fraction, rng)
        val = Split(dataset.x_train[val_index], dataset.y_train[val_index])
    elif split == "nielsen":
        if n_train <= NIELSEN_VALIDATION_SIZE:
            raise DataError(
                f"{dataset.name}: the nielsen split needs more than {NIELSEN_VALIDATION_SIZE} "
                f"training examples, this dataset has {n_train}"
            )
        train_index = np.arange(n_train - NIELSEN_VALIDATION_SIZE)
        val_index = np.arange(n_train - NIELSEN_VALIDATION_SIZE, n_train)
        val = Split(dataset.x_train[val_index], dataset.y_train[val_index])
    else:
        half = dataset.y_test.shape[0] // 2
        train_index = np.arange(n_train)
        val_index = np.empty(0, dtype=np.int64)  # validation comes from the test set here
        val = Split(dataset.x_test[:half], dataset.y_test[:half])
        test_part = slice(half, None)
    if train_per_class is not None:
        train_index = train_index[first_per_class(dataset.y_train[train_index], train_per_class)]
    if train_first is not None:
        if train_first <= 0:
            raise ConfigError(f"--train-first must be positive, got {train_first}")
        if train_first > train_index.size:
            raise DataError(
                f"--train-first {train_first} is more than the {train_index.size} training "
                f"examples the {split} split leaves"
            )
        train_index = train_index[:train_first]  # Nielsen's 'the first 100 training images'

    _check_disjoint(train_index, val_index)
    test_size = dataset.y_test[test_part].size
    for part, size in (
        ("train", train_index.size),
        ("validation", val.y.size),
        ("test", test_size),
    ):
        if size == 0:
            raise DataError(f"{dataset.name}: the {split} split leaves the {part} set empty")
    return Splits(
        train=Split(_rows(dataset.x_train, train_index), _rows(dataset.y_train, train_index)),
        val=val,
        test=Split(dataset.x_test[test_part], dataset.y_test[test_part]),
    )
