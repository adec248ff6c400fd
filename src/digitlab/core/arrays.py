"""What fit, evaluate and prediction accept: any real-valued array, converted once.

Inputs x may be any real NumPy array or nested list (float64, integers, uint8 pixels, strided
views, Fortran order): they become one C-ordered array of the model's dtype, copied only when
they are not that already. Labels y may be any integer dtype, or floats holding whole numbers.
Everything else (complex, object, strings, wrong shape, NaN or inf, labels out of range) is a
one-line DataError naming the argument.

Evaluation also takes a row source: rows made when read, such as data.transforms.LazyRows (raw
pixels converted a chunk at a time, so a validation or test set is not held as floats). Its
shape is checked at once and each chunk's rows as they are read.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from digitlab.errors import DataError

_REAL = "buif"  # bool, unsigned, signed, float: the kinds that convert to a float exactly enough


def as_model_data(
    model: Any, x: Any, y: Any, what: str = "training"
) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) for fit and evaluate: as_inputs(x) and y as int64 class indices the model has.

    `what` names the call in messages ("training x: ...", "validation y: ...").
    """
    x = as_inputs(model, x, what)
    return x, as_labels(model, y, len(x), what)


def is_row_source(x: Any) -> bool:
    """Whether x makes its rows when read (x[start:stop] gives an array; see the top)."""
    return bool(getattr(x, "makes_rows", False))


def as_eval_data(model: Any, x: Any, y: Any, what: str = "evaluation") -> tuple[Any, np.ndarray]:
    """as_model_data(x, y), except that a row source stays as it is, its shape checked."""
    if not is_row_source(x):
        return as_model_data(model, x, y, what)
    _check_shape(model, tuple(x.shape), what)
    return x, as_labels(model, y, len(x), what)


def as_inputs(model: Any, x: Any, what: str = "prediction", first_row: int = 0) -> np.ndarray:
    """x as C-ordered rows (n, model.input_size) of the model's dtype, copied only if need be.

    first_row: where x starts in the rows the message speaks of (a chunk of a row source)."""
    x = np.asarray(x)
    if x.dtype.kind not in _REAL:
        raise DataError(f"{what} x: expected real numbers, got an array of {x.dtype}")
    _check_shape(model, x.shape, what)
    with np.errstate(over="ignore"):  # a float64 too large for float32 becomes inf: caught below
        x = np.ascontiguousarray(x, dtype=model.dtype)
    # min and max propagate NaN and show inf, without a boolean array the size of x
    if not (np.isfinite(x.min()) and np.isfinite(x.max())):
        row = first_row + int(np.flatnonzero(~np.isfinite(x).all(axis=1))[0])
        raise DataError(f"{what} x: holds NaN or inf (as {model.dtype}), first in row {row}")
    return x


def _check_shape(model: Any, shape: tuple[int, ...], what: str) -> None:
    if len(shape) != 2 or shape[0] == 0:
        raise DataError(f"{what} x: must be non-empty rows (n, features), got shape {shape}")
    if shape[1] != model.input_size:
        raise DataError(
            f"{what} x: the data have {shape[1]} features but the model takes {model.input_size}"
        )


def as_labels(model: Any, y: Any, n: int, what: str = "training") -> np.ndarray:
    """y as n int64 class indices in 0..outputs-1: any integer dtype, or floats of whole numbers."""
    y = np.asarray(y)
    whole = y.dtype.kind in "iu" or (
        y.dtype.kind == "f" and bool(np.isfinite(y).all()) and bool((y == np.round(y)).all())
    )
    if y.shape != (n,) or not whole:
        raise DataError(
            f"{what} y: labels must be {n} integers (any integer dtype, or whole floats), got "
            f"{y.dtype}{list(y.shape)}"
        )
    if len(model.output_shape) != 1:
        raise DataError(f"the model's outputs {model.output_shape} are not flat: add a flatten")
    n_outputs = model.output_shape[0]
    if y.min() < 0 or y.max() >= n_outputs:
        raise DataError(
            f"{what} y: labels must lie in 0..{n_outputs - 1} for a model with {n_outputs} "
            f"outputs, found {y.min():g}..{y.max():g}"
        )
    return np.ascontiguousarray(y, dtype=np.int64)
