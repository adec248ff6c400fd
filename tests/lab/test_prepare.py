"""prepare_data fits the transforms on the training part only, whatever the other parts hold."""

import numpy as np
import pytest

from digitlab.data.idx import write_idx
from digitlab.data.transforms import LazyRows
from digitlab.lab.config import make_config
from digitlab.lab.experiment import prepare_data, whole_test_set


@pytest.fixture
def shifted_folder(tmp_path):
    """Dark training images (0..99) and bright test images (150..255), 6x6, 3 classes: every
    statistic of the test file (validation and test parts in the book split) is far from the
    training file's."""
    rng = np.random.default_rng(0)
    for prefix, count, low, high in (("train", 300, 0, 100), ("t10k", 200, 150, 256)):
        images = rng.integers(low, high, size=(count, 6, 6), dtype=np.uint8)
        labels = np.resize(np.arange(3, dtype=np.uint8), count)
        write_idx(tmp_path / f"{prefix}-images-idx3-ubyte", images)
        write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte", labels)
    return tmp_path


def raw(folder, prefix):
    from digitlab.data.idx import read_idx

    return read_idx(folder / f"{prefix}-images-idx3-ubyte").reshape(-1, 36) / 255.0


@pytest.mark.parametrize("per_pixel", [False, True])
def test_standardize_uses_the_training_parts_mean_and_std(shifted_folder, per_pixel):
    config = make_config(
        {"data": "idx", "data_dir": str(shifted_folder), "split": "book", "standardize": True,
         "per_pixel": per_pixel, "dtype": "float64"}
    )  # fmt: skip
    prepared = prepare_data(config)
    train, test_file = raw(shifted_folder, "train"), raw(shifted_folder, "t10k")
    axis = 0 if per_pixel else None
    mean, std = train.mean(axis=axis), train.std(axis=axis)
    splits = prepared.splits
    np.testing.assert_allclose(splits.train.x, (train - mean) / std, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(splits.val.x, (test_file[:100] - mean) / std, rtol=1e-9)
    np.testing.assert_allclose(splits.test.x, (test_file[100:] - mean) / std, rtol=1e-9)
    assert splits.val.x.mean() > 3  # the bright part is not centred: it was not fitted on


def test_holdout_validation_rows_stay_out_of_the_fit(shifted_folder):
    """In a holdout split the validation rows come from the training file; the fitted
    statistics are still those of the rows left for training (their mean 0 and std 1)."""
    config = make_config(
        {"data": "idx", "data_dir": str(shifted_folder), "split": "holdout", "val_fraction": 0.3,
         "standardize": True, "per_pixel": True, "dtype": "float64", "train_first": 60}
    )  # fmt: skip
    splits = prepare_data(config).splits
    assert len(splits.train.y) == 60 and len(splits.val.y) == 90
    np.testing.assert_allclose(splits.train.x.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(splits.train.x.std(axis=0), 1, rtol=1e-12)
    assert np.abs(splits.val.x.mean(axis=0)).max() > 0.1  # other rows: not exactly centred


@pytest.mark.parametrize("split", ["book", "holdout"])
def test_lazy_test_rows_are_the_eager_array(shifted_folder, split):
    """lazy=True (digitlab train's way): the test part stays raw uint8 pixels, a quarter of its
    float32 size, and every read of it gives exactly the eager array; validation, evaluated every
    epoch, is converted once."""
    values = {"data": "idx", "data_dir": str(shifted_folder), "split": split,
              "standardize": True, "crop": 1}  # fmt: skip
    config = make_config(values)
    eager, lazy = prepare_data(config).splits, prepare_data(config, lazy=True).splits
    for name in ("train", "val"):
        assert isinstance(getattr(lazy, name).x, np.ndarray)
        np.testing.assert_array_equal(getattr(lazy, name).x, getattr(eager, name).x)
    rows, full = lazy.test.x, eager.test.x
    assert isinstance(rows, LazyRows) and rows.raw.dtype == np.uint8
    assert rows.nbytes == len(rows) * 36  # 6x6 uint8 pixels, not 4x4 float32 (the crop)
    assert rows.shape == full.shape == (len(rows), 16)
    np.testing.assert_array_equal(rows[3:11], full[3:11])
    np.testing.assert_array_equal(rows[[5, 0, 5]], full[[5, 0, 5]])
    np.testing.assert_array_equal(rows[2], full[2])
    np.testing.assert_array_equal(np.asarray(rows), full)
    assert np.asarray(rows, dtype=np.float64).dtype == np.float64
    with pytest.raises(ValueError, match="new array"):  # NumPy 2's copy=False: no copy allowed
        np.asarray(rows, copy=False)
    whole_lazy, whole = whole_test_set(config, lazy), whole_test_set(config, eager)
    np.testing.assert_array_equal(np.asarray(whole_lazy.x), whole.x)
    np.testing.assert_array_equal(whole_lazy.y, whole.y)
