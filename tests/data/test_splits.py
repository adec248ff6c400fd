"""Splits: stratified, disjoint, seeded holdout; the book and Nielsen splits; per-class subsets."""

import numpy as np
import pytest

from digitlab.data import SPLITS, Dataset, make_splits
from digitlab.data.splits import first_per_class, stratified_holdout
from digitlab.errors import ConfigError, DataError


def numbered_dataset(n_train: int = 300, n_test: int = 60, n_classes: int = 3) -> Dataset:
    """A dataset whose rows spell their own index (in base 256), so any split can be traced."""

    def rows(count: int, offset: int) -> np.ndarray:
        index = np.arange(count) + offset
        return np.stack([index // 65536, (index // 256) % 256, index % 256], axis=1).astype(
            np.uint8
        )

    rng = np.random.default_rng(5)
    return Dataset(
        name="numbered",
        x_train=rows(n_train, 0),
        y_train=rng.integers(0, n_classes, size=n_train),
        x_test=rows(n_test, 1_000_000),
        y_test=rng.integers(0, n_classes, size=n_test),
        image_shape=(1, 3),
        n_classes=n_classes,
        max_value=255.0,
    )


def row_ids(x: np.ndarray) -> np.ndarray:
    return x[:, 0].astype(np.int64) * 65536 + x[:, 1].astype(np.int64) * 256 + x[:, 2]


# stratified_holdout


def test_stratified_holdout_is_stratified_disjoint_and_complete() -> None:
    y = np.repeat(np.arange(4), [100, 50, 30, 21])
    keep, held = stratified_holdout(y, 0.2, np.random.default_rng(0))
    assert np.all(np.diff(keep) > 0) and np.all(np.diff(held) > 0)
    assert np.intersect1d(keep, held).size == 0
    np.testing.assert_array_equal(np.union1d(keep, held), np.arange(y.size))
    assert held.size == round(0.2 * y.size)
    counts = np.bincount(y[held], minlength=4)
    np.testing.assert_array_equal(counts[:3], [20, 10, 6])
    assert counts[3] in (4, 5)


def test_stratified_holdout_is_seeded() -> None:
    y = np.tile(np.arange(10), 50)
    first = stratified_holdout(y, 0.1, np.random.default_rng(3))
    same = stratified_holdout(y, 0.1, np.random.default_rng(3))
    other = stratified_holdout(y, 0.1, np.random.default_rng(4))
    np.testing.assert_array_equal(first[1], same[1])
    assert not np.array_equal(first[1], other[1])


# first_per_class


def test_first_per_class_takes_the_first_of_each_class() -> None:
    y = np.array([2, 0, 0, 1, 2, 0, 1, 1, 2, 0])
    np.testing.assert_array_equal(first_per_class(y, 2), [0, 1, 2, 3, 4, 6])
    np.testing.assert_array_equal(first_per_class(y, 1), [0, 1, 3])


def test_first_per_class_too_many_names_the_class() -> None:
    y = np.array([0, 0, 0, 1, 1, 2, 2, 2])
    with pytest.raises(DataError, match="--train-per-class 3 is larger than class 1, which has 2"):
        first_per_class(y, 3)


@pytest.mark.parametrize("n", [0, -1])
def test_first_per_class_needs_a_positive_count(n: int) -> None:
    with pytest.raises(ConfigError):
        first_per_class(np.zeros(5, dtype=np.int64), n)


# make_splits


def test_holdout_split(rng: np.random.Generator) -> None:
    dataset = numbered_dataset()
    splits = make_splits(dataset, rng=rng, val_fraction=0.2)
    train_ids, val_ids = row_ids(splits.train.x), row_ids(splits.val.x)
    assert np.intersect1d(train_ids, val_ids).size == 0
    np.testing.assert_array_equal(np.sort(np.concatenate([train_ids, val_ids])), np.arange(300))
    assert splits.val.y.size == 60
    np.testing.assert_array_equal(dataset.y_train[train_ids], splits.train.y)
    np.testing.assert_array_equal(splits.test.x, dataset.x_test)
    np.testing.assert_array_equal(splits.test.y, dataset.y_test)
    class_share = np.bincount(dataset.y_train) / 300
    val_share = np.bincount(splits.val.y) / 60
    assert np.all(np.abs(class_share - val_share) < 0.02)


def test_holdout_is_seeded() -> None:
    dataset = numbered_dataset()
    first = make_splits(dataset, rng=np.random.default_rng(1))
    same = make_splits(dataset, rng=np.random.default_rng(1))
    other = make_splits(dataset, rng=np.random.default_rng(2))
    np.testing.assert_array_equal(first.val.x, same.val.x)
    np.testing.assert_array_equal(first.train.x, same.train.x)
    assert not np.array_equal(first.val.x, other.val.x)


def test_train_per_class_applies_after_the_split(rng: np.random.Generator) -> None:
    dataset = numbered_dataset()
    full = make_splits(dataset, rng=np.random.default_rng(9))
    small = make_splits(dataset, train_per_class=10, rng=np.random.default_rng(9))
    np.testing.assert_array_equal(small.val.x, full.val.x)
    np.testing.assert_array_equal(np.bincount(small.train.y), [10, 10, 10])
    # The first 10 of each class among the training part, in dataset order.
    np.testing.assert_array_equal(
        row_ids(small.train.x), row_ids(full.train.x)[first_per_class(full.train.y, 10)]
    )
    assert np.intersect1d(row_ids(small.train.x), row_ids(small.val.x)).size == 0


def test_book_split_on_mnist(mnist: Dataset, rng: np.random.Generator) -> None:
    splits = make_splits(mnist, "book", rng=rng)
    assert splits.train.y.size == 60000
    assert splits.val.y.size == 5000 and splits.test.y.size == 5000
    np.testing.assert_array_equal(splits.val.x, mnist.x_test[:5000])
    np.testing.assert_array_equal(splits.test.x, mnist.x_test[5000:])
    np.testing.assert_array_equal(splits.test.y, mnist.y_test[5000:])


def test_nielsen_split_on_mnist(mnist: Dataset, rng: np.random.Generator) -> None:
    splits = make_splits(mnist, "nielsen", rng=rng)
    assert splits.train.y.size == 50000 and splits.val.y.size == 10000
    assert splits.test.y.size == 10000
    np.testing.assert_array_equal(splits.val.x, mnist.x_train[50000:])
    np.testing.assert_array_equal(splits.train.y, mnist.y_train[:50000])


def test_holdout_on_mnist(mnist: Dataset, rng: np.random.Generator) -> None:
    splits = make_splits(mnist, rng=rng)
    assert splits.train.y.size == 54000 and splits.val.y.size == 6000
    assert splits.test.y.size == 10000
    assert splits.train.x.dtype == np.uint8 and splits.train.x.shape[1] == 784


def test_mnist_per_class_too_large(mnist: Dataset, rng: np.random.Generator) -> None:
    with pytest.raises(DataError, match="--train-per-class 7000 is larger than class 5"):
        make_splits(mnist, "book", train_per_class=7000, rng=rng)


def test_nielsen_needs_more_than_10000() -> None:
    with pytest.raises(DataError, match="more than 10000"):
        make_splits(numbered_dataset(), "nielsen", rng=np.random.default_rng(0))


@pytest.mark.parametrize(
    ("split", "val_fraction", "match"),
    [
        ("random", 0.1, "holdout, book, nielsen, per_class"),
        ("holdout", 0.0, "val_fraction"),
        ("holdout", 1.0, "val_fraction"),
        ("holdout", -0.5, "val_fraction"),
    ],
)
def test_bad_split_settings(split: str, val_fraction: float, match: str) -> None:
    assert SPLITS == ("holdout", "book", "nielsen", "per_class")
    with pytest.raises(ConfigError, match=match):
        make_splits(
            numbered_dataset(), split, val_fraction=val_fraction, rng=np.random.default_rng(0)
        )


def test_empty_validation_is_an_error() -> None:
    with pytest.raises(DataError, match="validation set empty"):
        make_splits(numbered_dataset(n_train=4), val_fraction=0.1, rng=np.random.default_rng(0))


def test_train_first_keeps_the_first_training_rows(rng: np.random.Generator) -> None:
    dataset = numbered_dataset()
    splits = make_splits(dataset, "holdout", train_first=25, rng=rng)
    whole = make_splits(dataset, "holdout", rng=np.random.default_rng(1234))
    assert len(splits.train.y) == 25
    np.testing.assert_array_equal(splits.train.x, whole.train.x[:25])
    assert len(splits.val.y) == len(whole.val.y)  # validation never shrinks
    with pytest.raises(DataError, match="--train-first 9999 is more than"):
        make_splits(dataset, "holdout", train_first=9999, rng=rng)


# per_class: the 8x8 digits' hand-built classifier (first 174 of each class, last 20 validate)


def test_per_class_split_takes_the_first_of_each_class_in_source_order() -> None:
    dataset = numbered_dataset(n_train=300, n_test=60)
    rng = np.random.default_rng(0)
    splits = make_splits(dataset, "per_class", per_class=12, val_per_class=3, rng=rng)
    ids = np.concatenate([row_ids(dataset.x_train), row_ids(dataset.x_test)])
    y = np.concatenate([dataset.y_train, dataset.y_test])
    for k in range(3):
        first = ids[y == k][:12]  # the source order: training file, then test file
        np.testing.assert_array_equal(row_ids(splits.train.x[splits.train.y == k]), first[:9])
        np.testing.assert_array_equal(row_ids(splits.val.x[splits.val.y == k]), first[9:])
    assert np.bincount(splits.train.y).tolist() == [9, 9, 9]
    assert np.bincount(splits.val.y).tolist() == [3, 3, 3]
    used = np.concatenate([row_ids(s.x) for s in (splits.train, splits.val, splits.test)])
    assert np.array_equal(np.sort(used), np.sort(ids))  # disjoint and complete


def test_per_class_split_follows_the_source_index() -> None:
    plain = numbered_dataset(n_train=30, n_test=30)
    # the same 60 images, stored with their halves swapped: the source order is unchanged
    swapped = Dataset(
        name="swapped",
        x_train=plain.x_test,
        y_train=plain.y_test,
        x_test=plain.x_train,
        y_test=plain.y_train,
        image_shape=plain.image_shape,
        n_classes=3,
        max_value=255.0,
        source_index=np.concatenate([np.arange(30, 60), np.arange(30)]),
    )
    rng = np.random.default_rng(0)
    a = make_splits(plain, "per_class", per_class=6, val_per_class=2, rng=rng)
    b = make_splits(swapped, "per_class", per_class=6, val_per_class=2, rng=rng)
    for part in ("train", "val", "test"):
        np.testing.assert_array_equal(getattr(a, part).x, getattr(b, part).x)


def test_per_class_split_errors() -> None:
    rng = np.random.default_rng(0)
    dataset = numbered_dataset()
    with pytest.raises(ConfigError, match="val_per_class must be between 0 and per_class"):
        make_splits(dataset, "per_class", per_class=5, val_per_class=5, rng=rng)
    with pytest.raises(DataError, match="larger than class"):
        make_splits(dataset, "per_class", per_class=1000, val_per_class=5, rng=rng)
    with pytest.raises(ConfigError, match="sets its own sizes"):
        make_splits(dataset, "per_class", train_first=10, rng=rng)


def test_repeated_images_are_counted_across_splits() -> None:
    """D7: an image copied into another split is counted, under whatever index it sits."""
    from digitlab.data.splits import Split, Splits, repeated_images

    rng = np.random.default_rng(0)
    train = rng.integers(0, 256, size=(50, 64), dtype=np.uint8)
    val = rng.integers(0, 256, size=(20, 64), dtype=np.uint8)
    test = rng.integers(0, 256, size=(30, 64), dtype=np.uint8)
    labels = np.zeros
    clean = Splits(Split(train, labels(50)), Split(val, labels(20)), Split(test, labels(30)))
    assert repeated_images(clean) == {"val_in_train": 0, "test_in_train": 0, "test_in_val": 0}
    val[3], val[7] = train[10], train[49]  # two validation images copy training ones
    test[0] = train[0]
    test[5], test[6] = val[0], val[0]  # one validation image, copied twice into the test set
    test[9] = train[1].copy()
    test[9, 0] ^= 1  # one pixel off: not a copy
    dirty = Splits(Split(train, labels(50)), Split(val, labels(20)), Split(test, labels(30)))
    assert repeated_images(dirty) == {"val_in_train": 2, "test_in_train": 1, "test_in_val": 2}


def test_a_run_records_the_count(tmp_path) -> None:
    import json

    from digitlab.lab.config import make_config
    from digitlab.lab.experiment import run

    run(make_config({"epochs": 1, "hidden_sizes": [8]}), tmp_path / "run")
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["repeated_val_in_train"] == metrics["repeated_test_in_train"] == 0
    assert metrics["repeated_test_in_val"] == 0  # the bundled digits hold no exact copies
