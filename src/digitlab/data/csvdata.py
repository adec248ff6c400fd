"""The CSV form of an image dataset (Kaggle's MNIST files): one image per row.

A header row (`label,pixel0,...,pixel783`) names the `label` column; the other columns are
the pixels, row by row, whole numbers 0..255, as many as a square image has (784 = 28x28). A
file whose first row is all numbers has no header: its first column is the label. The images
are used as they are (no resizing): the CSV form holds prepared images already.

`load_csv` reads a folder holding train.csv and, if it has labels, test.csv; or one CSV file,
a fixed 20% of which is then the test set. A test.csv without labels (Kaggle's) cannot be used
for evaluation. Problems are one-line DataErrors naming the file and the line.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from digitlab.data.sources import Dataset, held_out_test
from digitlab.errors import DataError

MAX_CLASSES = 1000  # a guard: labels this large are a pixel column read as labels


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _bad_line(path: Path, rows: list[tuple[int, str]], width: int, what: str) -> DataError:
    """The error for the first row with the wrong number of cells or a cell not a number."""
    for number, line in rows:
        cells = line.split(",")
        if len(cells) != width:
            return DataError(f"{path}, line {number}: {len(cells)} columns, the {what} has {width}")
        for column, cell in enumerate(cells, 1):
            if not _is_number(cell):
                return DataError(
                    f"{path}, line {number}: column {column} is {cell.strip()!r}, not a number"
                )
    return DataError(f"{path}: not a table of numbers")


def read_csv(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """One CSV file: pixels (n, h*w) uint8, labels (n,) int64 or None when it has no label
    column, and each row's line number in the file (for messages)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")  # -sig: a spreadsheet's byte-order mark
    except (OSError, UnicodeDecodeError) as err:
        reason = getattr(err, "strerror", None) or "not a text file"
        raise DataError(f"{path}: cannot read it ({reason})") from None
    rows = [(number, line) for number, line in enumerate(text.splitlines(), 1) if line.strip()]
    if not rows:
        raise DataError(f"{path}: an empty file")
    first = rows[0][1].split(",")
    header = not all(_is_number(cell) for cell in first)
    label_column: int | None = 0
    if header:
        names = [cell.strip().strip('"').lower() for cell in first]
        label_column = names.index("label") if "label" in names else None
        rows = rows[1:]
        if not rows:
            raise DataError(f"{path}: a header and no rows")
    width = len(first)
    try:
        table = np.loadtxt(
            [line for _, line in rows], delimiter=",", dtype=np.float32, comments=None, ndmin=2
        )
    except ValueError:
        raise _bad_line(path, rows, width, "header" if header else "first row") from None
    if table.shape[1] != width:
        raise _bad_line(path, rows, width, "header" if header else "first row")
    lines = np.array([number for number, _ in rows])
    labels = None if label_column is None else table[:, label_column]
    pixels = table if label_column is None else np.delete(table, label_column, axis=1)
    side = math.isqrt(pixels.shape[1])
    if side * side != pixels.shape[1] or side == 0:
        raise DataError(
            f"{path}: {pixels.shape[1]} pixel columns do not make a square image (28x28 is 784)"
        )
    bad = ~((pixels >= 0) & (pixels <= 255) & (pixels == np.rint(pixels)))
    if bad.any():
        row, column = (int(i) for i in np.argwhere(bad)[0])
        raise DataError(
            f"{path}, line {lines[row]}: pixel {column} is {pixels[row, column]:g}; pixels are "
            f"whole numbers 0..255"
        )
    if labels is None:
        return pixels.astype(np.uint8), None, lines
    bad_labels = ~((labels >= 0) & (labels < MAX_CLASSES) & (labels == np.rint(labels)))
    if bad_labels.any():
        row = int(np.flatnonzero(bad_labels)[0])
        raise DataError(
            f"{path}, line {lines[row]}: label {labels[row]:g} is out of range (labels are "
            f"whole numbers 0..{MAX_CLASSES - 1})"
        )
    return pixels.astype(np.uint8), labels.astype(np.int64), lines


def _labelled(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x, y, lines = read_csv(path)
    if y is None:
        raise DataError(f"{path}: no label column (a header cell named label), so no training")
    return x, y, lines


def load_csv(path: str | os.PathLike[str]) -> Dataset:
    """A folder with train.csv (and test.csv, with labels), or one CSV file, as a Dataset."""
    path = Path(path).expanduser()
    if path.is_file():
        x, y, _ = _labelled(path)
        n_classes = _n_classes(path, y)
        side = math.isqrt(x.shape[1])
        return held_out_test(path.stem, x, y, (side, side), 255.0, n_classes)
    if not path.is_dir():
        raise DataError(f"{path}: no such file or folder")
    train_file, test_file = path / "train.csv", path / "test.csv"
    if not train_file.is_file():
        raise DataError(f"{path}: no train.csv (and test.csv, optional) in this folder")
    x_train, y_train, _ = _labelled(train_file)
    n_classes = _n_classes(train_file, y_train)
    side = math.isqrt(x_train.shape[1])
    if not test_file.is_file():
        return held_out_test(path.resolve().name, x_train, y_train, (side, side), 255.0, n_classes)
    x_test, y_test, lines = read_csv(test_file)
    if y_test is None:
        raise DataError(
            f"{test_file}: no label column, so it cannot be used for evaluation; pass "
            f"--data-dir {train_file} to hold a test part out of train.csv instead"
        )
    if x_test.shape[1] != x_train.shape[1]:
        raise DataError(
            f"{test_file}: {x_test.shape[1]} pixel columns, {train_file.name} has "
            f"{x_train.shape[1]}"
        )
    unknown = np.flatnonzero(y_test >= n_classes)
    if unknown.size:
        row = int(unknown[0])
        raise DataError(
            f"{test_file}, line {lines[row]}: label {y_test[row]} is out of range "
            f"({train_file.name} has labels 0..{n_classes - 1})"
        )
    return Dataset(
        name=path.resolve().name,
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        image_shape=(side, side),
        n_classes=n_classes,
        max_value=255.0,
    )


def _n_classes(path: Path, y: np.ndarray) -> int:
    n_classes = int(y.max()) + 1
    if np.unique(y).size < 2:
        raise DataError(f"{path}: every row has label {y[0]}; need two classes or more")
    return n_classes
