"""The CSV form (Kaggle's MNIST files): the same digits as the IDX files, and one line naming
the file and line for every bad row."""

from pathlib import Path

import numpy as np
import pytest

from digitlab.data import load_dataset
from digitlab.data.csvdata import load_csv, read_csv
from digitlab.data.sources import DIGITS_TEST_FRACTION
from digitlab.errors import DataError

HEADER = "label," + ",".join(f"pixel{k}" for k in range(784))


def write_csv(path: Path, x: np.ndarray, y: np.ndarray | None, header: bool = True) -> Path:
    """Rows as Kaggle writes them: label, then the pixels as whole numbers."""
    columns = x if y is None else np.column_stack([y, x])
    lines = [",".join(str(int(v)) for v in row) for row in columns]
    if header:
        lines.insert(0, HEADER if y is not None else HEADER.removeprefix("label,"))
    path.write_text("\n".join(lines) + "\n")
    return path


def test_the_csv_form_loads_exactly_the_idx_digits(tmp_path, mnist):
    """The first 300 training and 100 test MNIST digits, written as Kaggle's train.csv and
    test.csv, load as the same arrays the IDX files hold."""
    write_csv(tmp_path / "train.csv", mnist.x_train[:300], mnist.y_train[:300])
    write_csv(tmp_path / "test.csv", mnist.x_test[:100], mnist.y_test[:100])
    dataset = load_dataset("csv", data_dir=tmp_path)
    np.testing.assert_array_equal(dataset.x_train, mnist.x_train[:300])
    np.testing.assert_array_equal(dataset.y_train, mnist.y_train[:300])
    np.testing.assert_array_equal(dataset.x_test, mnist.x_test[:100])
    np.testing.assert_array_equal(dataset.y_test, mnist.y_test[:100])
    assert dataset.x_train.dtype == np.uint8 and dataset.y_train.dtype == np.int64
    assert dataset.image_shape == (28, 28) and dataset.max_value == 255
    assert dataset.n_classes == 10 and dataset.name == tmp_path.name


def test_one_csv_file_holds_out_a_fixed_test_part(tmp_path, mnist):
    path = write_csv(tmp_path / "digits.csv", mnist.x_train[:200], mnist.y_train[:200])
    dataset = load_csv(path)
    assert len(dataset.y_test) == round(200 * DIGITS_TEST_FRACTION)
    x = np.concatenate([dataset.x_train, dataset.x_test])
    y = np.concatenate([dataset.y_train, dataset.y_test])
    order = np.lexsort(x.T)  # the same rows, whatever the split's order
    reference = np.lexsort(mnist.x_train[:200].T)
    np.testing.assert_array_equal(x[order], mnist.x_train[:200][reference])
    np.testing.assert_array_equal(y[order], mnist.y_train[:200][reference])
    # without a header the first column is the label; a train.csv alone is held out too
    write_csv(tmp_path / "train.csv", mnist.x_train[:200], mnist.y_train[:200], header=False)
    again = load_csv(tmp_path)
    np.testing.assert_array_equal(again.x_test, dataset.x_test)


def test_a_test_csv_without_labels_is_read_but_not_used_for_evaluation(tmp_path, rng):
    x = rng.integers(0, 256, (6, 784))
    path = write_csv(tmp_path / "test.csv", x, None)
    pixels, labels, lines = read_csv(path)
    np.testing.assert_array_equal(pixels, x)
    assert labels is None and lines.tolist() == [2, 3, 4, 5, 6, 7]
    write_csv(tmp_path / "train.csv", x, np.arange(6) % 2)
    with pytest.raises(DataError) as caught:
        load_csv(tmp_path)
    assert str(caught.value).startswith(
        f"{path}: no label column, so it cannot be used for evaluation; pass --data-dir "
        f"{tmp_path / 'train.csv'}"
    )


def bad_csv(tmp_path: Path, rng: np.random.Generator, line: int, text: str) -> str:
    """The one-line error for a train.csv of 8 rows whose `line` (1 = header) is `text`."""
    path = write_csv(tmp_path / "train.csv", rng.integers(0, 256, (8, 784)), np.arange(8) % 3)
    lines = path.read_text().splitlines()
    lines[line - 1] = text
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError) as caught:
        load_csv(tmp_path)
    assert "\n" not in str(caught.value)
    return str(caught.value).removeprefix(f"{path}")


def test_bad_rows_are_named_by_line(tmp_path, rng):
    row = ["1"] + ["0"] * 784
    assert bad_csv(tmp_path, rng, 4, ",".join(row[:-1])) == (
        ", line 4: 784 columns, the header has 785"
    )
    assert bad_csv(tmp_path, rng, 5, ",".join([*row[:9], "x7", *row[10:]])) == (
        ", line 5: column 10 is 'x7', not a number"
    )
    assert bad_csv(tmp_path, rng, 3, ",".join([*row[:3], "", *row[4:]])) == (
        ", line 3: column 4 is '', not a number"
    )
    assert bad_csv(tmp_path, rng, 6, ",".join(["-1", *row[1:]])) == (
        ", line 6: label -1 is out of range (labels are whole numbers 0..999)"
    )
    assert bad_csv(tmp_path, rng, 7, ",".join(["2.5", *row[1:]])).startswith(
        ", line 7: label 2.5 is out of range"
    )
    assert bad_csv(tmp_path, rng, 9, ",".join([*row[:100], "256", *row[101:]])) == (
        ", line 9: pixel 99 is 256; pixels are whole numbers 0..255"
    )


def test_bad_files_are_one_line(tmp_path, rng):
    x = rng.integers(0, 256, (6, 784))
    write_csv(tmp_path / "train.csv", x, np.arange(6) % 2)
    write_csv(tmp_path / "test.csv", x[:3], np.array([0, 1, 2]))
    with pytest.raises(DataError, match=r"test.csv, line 4: label 2 is out of range \(train"):
        load_csv(tmp_path)
    (tmp_path / "test.csv").unlink()
    square = tmp_path / "wide.csv"
    write_csv(square, rng.integers(0, 256, (4, 783)), np.arange(4) % 2, header=False)
    with pytest.raises(DataError, match="783 pixel columns do not make a square image"):
        load_csv(square)
    (tmp_path / "empty.csv").write_text("\n\n")
    with pytest.raises(DataError, match="empty.csv: an empty file"):
        load_csv(tmp_path / "empty.csv")
    one_class = write_csv(tmp_path / "one.csv", x, np.zeros(6))
    with pytest.raises(DataError, match="every row has label 0; need two classes"):
        load_csv(one_class)
    with pytest.raises(DataError, match="no train.csv"):
        load_csv(tmp_path / "sub" if (tmp_path / "sub").mkdir() is None else tmp_path)
    with pytest.raises(DataError, match="no such file or folder"):
        load_csv(tmp_path / "missing.csv")
