"""Feature transforms, fitted on training data only, chained by a Pipeline.

A transform has `fit(x) -> self` (x: training rows (n, features), already in the pipeline's
float dtype), `__call__(x)` that returns new rows in the same dtype, and
`output_shape(image_shape)` that says what image its output still is (None: not an image any
more). Fitting never sees validation or test data: only `Pipeline.fit` fits, on what it is given.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from digitlab.errors import ConfigError, DataError

DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
_CHUNK_ROWS = 4096  # rows per float64 block when computing statistics
_CHUNK_PIXELS = 1 << 20  # pixels widened at a time by to_float


class Transform(Protocol):
    def fit(self, x: np.ndarray) -> Transform: ...

    def __call__(self, x: np.ndarray, inplace: bool = False) -> np.ndarray: ...

    def output_shape(self, image_shape: tuple[int, int] | None) -> tuple[int, int] | None: ...


class ScaleTo01:
    """x / max_value, mapping raw pixels to [0, 1]."""

    def __init__(self, max_value: float) -> None:
        if not max_value > 0:
            raise ConfigError(f"max_value must be positive, got {max_value}")
        self.max_value = max_value

    def fit(self, x: np.ndarray) -> ScaleTo01:
        return self

    def __call__(self, x: np.ndarray, inplace: bool = False) -> np.ndarray:
        return np.divide(x, x.dtype.type(self.max_value), out=x if inplace else None)

    def output_shape(self, image_shape: tuple[int, int] | None) -> tuple[int, int] | None:
        return image_shape


class Invert:
    """1 - x: white digits on black become black on white (expects x in [0, 1])."""

    def fit(self, x: np.ndarray) -> Invert:
        return self

    def __call__(self, x: np.ndarray, inplace: bool = False) -> np.ndarray:
        return np.subtract(x.dtype.type(1), x, out=x if inplace else None)

    def output_shape(self, image_shape: tuple[int, int] | None) -> tuple[int, int] | None:
        return image_shape


class Crop:
    """Drop `border` pixels on every side of each height x width image."""

    def __init__(self, border: int, image_shape: tuple[int, int]) -> None:
        height, width = image_shape
        if border < 0:
            raise ConfigError(f"crop border must be 0 or more, got {border}")
        if height - 2 * border < 1 or width - 2 * border < 1:
            raise ConfigError(
                f"crop border {border} leaves nothing of {height}x{width} images "
                f"(at most {(min(height, width) - 1) // 2})"
            )
        self.border = border
        self.image_shape = (height, width)

    def fit(self, x: np.ndarray) -> Crop:
        return self

    def __call__(self, x: np.ndarray, inplace: bool = False) -> np.ndarray:
        height, width = self.image_shape
        if x.shape[1] != height * width:
            raise DataError(
                f"crop expects {height}x{width} = {height * width} features, got {x.shape[1]}"
            )
        border = self.border
        images = x.reshape(x.shape[0], height, width)
        return images[:, border : height - border, border : width - border].reshape(x.shape[0], -1)

    def output_shape(self, image_shape: tuple[int, int] | None) -> tuple[int, int] | None:
        if image_shape != self.image_shape:
            raise ConfigError(f"crop was set up for {self.image_shape} images, got {image_shape}")
        return (image_shape[0] - 2 * self.border, image_shape[1] - 2 * self.border)


PIXEL_PICKS = ("random", "variance")


class PixelSubset:
    """Keep a fixed subset of N feature columns, in their original order: a random one drawn
    from `seed` (pick "random"), or the N columns of highest variance in the rows `fit` sees,
    the training images (pick "variance"; ties go to the lower index)."""

    def __init__(self, n_pixels: int, seed: int, pick: str = "random") -> None:
        if n_pixels < 1:
            raise ConfigError(f"pixel subset size must be at least 1, got {n_pixels}")
        if pick not in PIXEL_PICKS:
            raise ConfigError(f"pixel pick must be one of {', '.join(PIXEL_PICKS)}, got {pick!r}")
        self.n_pixels = n_pixels
        self.seed = seed
        self.pick = pick
        self.columns: np.ndarray | None = None
        self.n_features: int | None = None
        self.fixed = False  # columns given by set_columns: fit only checks the width

    def fit(self, x: np.ndarray) -> PixelSubset:
        n_features = x.shape[1]
        if self.fixed:
            if n_features != self.n_features:
                raise DataError(
                    f"the saved pixel subset reads {self.n_features} features, got {n_features}"
                )
            return self
        if self.n_pixels > n_features:
            raise ConfigError(
                f"pixel subset of {self.n_pixels} is larger than the {n_features} features"
            )
        if self.pick == "variance":
            _, std = _mean_and_std(x, per_feature=True)
            chosen = np.argsort(-std, kind="stable")[: self.n_pixels]
        else:
            rng = np.random.default_rng(self.seed)
            chosen = rng.choice(n_features, size=self.n_pixels, replace=False)
        self.columns = np.sort(chosen)
        self.n_features = n_features
        return self

    def set_columns(self, columns: Any, n_features: int) -> PixelSubset:
        """Use these columns (as saved with a model); a later fit keeps them."""
        columns = np.sort(np.asarray(columns, dtype=np.intp))
        if columns.shape != (self.n_pixels,) or len(np.unique(columns)) != self.n_pixels:
            raise DataError(f"a pixel subset of {self.n_pixels} needs as many distinct columns")
        if columns[0] < 0 or columns[-1] >= n_features:
            raise DataError(f"pixel subset columns must lie in 0..{n_features - 1}")
        self.columns = columns
        self.n_features = n_features
        self.fixed = True
        return self

    def __call__(self, x: np.ndarray, inplace: bool = False) -> np.ndarray:
        if self.columns is None:
            raise RuntimeError("PixelSubset used before fit")
        # take, not x[:, columns]: that is Fortran-ordered, and gathering a batch's rows from
        # it made an MNIST epoch take 18 s instead of 0.2 s
        return x.take(self.columns, axis=1)

    def output_shape(self, image_shape: tuple[int, int] | None) -> tuple[int, int] | None:
        # Keeping every column in order is still the same image.
        return image_shape if self.n_pixels == self.n_features else None


def _mean_and_std(x: np.ndarray, per_feature: bool) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation over rows (per feature) or over everything, in float64.

    Numerics: two passes over float64 blocks of rows, so float32 data loses no precision to
    long sums and no full float64 copy of x is made.
    """
    n_rows = x.shape[0]
    if n_rows == 0:
        raise DataError("cannot fit standardization on an empty training set")
    blocks = [x[start : start + _CHUNK_ROWS] for start in range(0, n_rows, _CHUNK_ROWS)]
    column_sums = sum(block.sum(axis=0, dtype=np.float64) for block in blocks)
    count = n_rows if per_feature else x.size
    mean = np.asarray(column_sums if per_feature else np.sum(column_sums), dtype=np.float64)
    mean = mean / count
    squares = sum(_squared_deviations(block, mean) for block in blocks)
    std = np.sqrt(np.asarray(squares if per_feature else np.sum(squares)) / count)
    return mean, std


def _squared_deviations(block: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """Column sums of (block - mean)^2 in float64, in one block-sized buffer (peak memory)."""
    deviations = block.astype(np.float64)
    deviations -= mean
    np.square(deviations, out=deviations)
    return deviations.sum(axis=0)


class Standardize:
    """(x - mean) / std with the training mean and std: one scalar each, or per feature.

    Numerics: a constant feature (MNIST's border pixels) gets its value as mean and std 1, so it
    maps to exactly 0 instead of NaN or inf.
    """

    def __init__(self, per_pixel: bool = False) -> None:
        self.per_pixel = per_pixel
        self.mean: np.ndarray | None = None
        self.std: np.ndarray | None = None

    def fit(self, x: np.ndarray) -> Standardize:
        mean, std = _mean_and_std(x, self.per_pixel)
        # Found by min == max rather than by std == 0: a float64 mean of a constant column can
        # be a few ulps off, which would turn a tiny nonzero std into outputs of -1.
        axis = 0 if self.per_pixel else None
        constant = x.min(axis=axis) == x.max(axis=axis)
        first_row = x[0] if self.per_pixel else x.flat[0]
        self.mean = np.where(constant, first_row, mean).astype(x.dtype)
        self.std = np.where(constant | (std == 0), 1.0, std).astype(x.dtype)
        return self

    def __call__(self, x: np.ndarray, inplace: bool = False) -> np.ndarray:
        if self.mean is None or self.std is None:
            raise RuntimeError("Standardize used before fit")
        out = np.subtract(x, self.mean.astype(x.dtype), out=x if inplace else None)
        return np.divide(out, self.std.astype(x.dtype), out=out)

    def output_shape(self, image_shape: tuple[int, int] | None) -> tuple[int, int] | None:
        return image_shape


def to_float(holder: list[np.ndarray], dtype: npt.DTypeLike) -> np.ndarray:
    """The one array in `holder`, taken out of it and converted to `dtype`.

    Memory: uint8 pixels (MNIST's) are copied into the end of the new array (its last quarter
    for float32), the original is let go, and the copy is widened in place, front to back, a
    chunk at a time. A chunk's output never reaches input not yet read: with n pixels of k
    bytes, pixel i's output ends at byte k(i + 1) and the input still to read starts at byte
    (k - 1)n + i + 1, which is no earlier, as i < n. (NumPy buffers the overlap within a chunk.)
    So the training set is never held twice (`digitlab train` on MNIST peaked at 1.56x the
    float32 training set instead of 1.67x; under 1.5x since the test set stays pixels, see
    LazyRows: benchmarks/PERFORMANCE.md).
    """
    x = holder.pop()
    dtype = np.dtype(dtype)
    if x.dtype != np.uint8 or x.ndim != 2 or dtype.itemsize == 1:
        return np.asarray(x).astype(dtype)
    out = np.empty(x.shape, dtype)
    n = x.size
    flat = out.reshape(-1)
    pixels = flat.view(np.uint8)[(dtype.itemsize - 1) * n :]
    pixels[...] = x.reshape(-1)
    del x  # the only reference left: the original pixels go now
    for start in range(0, n, _CHUNK_PIXELS):
        flat[start : start + _CHUNK_PIXELS] = pixels[start : start + _CHUNK_PIXELS]
    return out


class Pipeline:
    """Transforms applied in order to rows converted to `dtype` (float32 or float64)."""

    def __init__(self, transforms: list[Transform], dtype: npt.DTypeLike = np.float32) -> None:
        self.dtype = np.dtype(dtype)
        if self.dtype not in DTYPES:
            raise ConfigError(f"dtype must be float32 or float64, got {self.dtype}")
        self.transforms = list(transforms)
        self.fitted = False

    def _convert(self, x: np.ndarray, owned: bool) -> np.ndarray:
        x = np.asarray(x)
        if x.ndim != 2:
            raise DataError(f"expected rows of shape (n, features), got shape {x.shape}")
        if owned and x.dtype == self.dtype and x.flags.c_contiguous:
            return x  # the caller's fresh copy (to_float): the transforms may overwrite it
        return x.astype(self.dtype)

    def _apply(self, transform: Transform, x: np.ndarray) -> np.ndarray:
        # x is always the pipeline's own array (a converted copy or a transform's output),
        # so elementwise transforms may overwrite it: one training-set-sized array, not three.
        out = transform(x, inplace=True)
        if out.dtype != self.dtype:
            raise TypeError(f"{type(transform).__name__} turned {self.dtype} into {out.dtype}")
        return out

    def fit(self, x_train: np.ndarray) -> Pipeline:
        """Fit each transform on the training rows as transformed by the ones before it."""
        self.fit_transform(x_train)
        return self

    def fit_transform(self, x_train: np.ndarray, owned: bool = False) -> np.ndarray:
        """Fit on the training rows and return them transformed (one pass, not two).

        With `owned`, rows already of the pipeline's dtype are transformed in place, not copied
        (for a copy nobody else holds, such as to_float's)."""
        x = self._convert(x_train, owned)
        for transform in self.transforms:
            transform.fit(x)
            x = self._apply(transform, x)
        self.fitted = True
        return x

    def __call__(self, x: np.ndarray, owned: bool = False) -> np.ndarray:
        if not self.fitted:
            raise RuntimeError("Pipeline used before fit; fit it on the training rows first")
        x = self._convert(x, owned)
        for transform in self.transforms:
            x = self._apply(transform, x)
        return x

    def output_shape(self, image_shape: tuple[int, int] | None) -> tuple[int, int] | None:
        for transform in self.transforms:
            image_shape = transform.output_shape(image_shape)
        return image_shape


class LazyRows:
    """Rows kept as they were loaded (MNIST's uint8 pixels) and put through a fitted pipeline
    when read: rows[i:j] (or any row index) gives those rows as the pipeline makes them.

    A test set is read a chunk at a time by evaluation (a row source, see core/arrays.py), so it
    is never held as floats: MNIST's 10,000 test images take 7.5 MiB of pixels instead of 30 MiB
    of float32. The transforms work row by row, so a chunk's rows are exactly what converting the
    whole set would give. np.asarray(rows) converts all.
    """

    makes_rows = True

    def __init__(self, raw: np.ndarray, pipeline: Pipeline) -> None:
        if not pipeline.fitted:
            raise RuntimeError("LazyRows needs a fitted pipeline")
        # its own copy of a view: a slice of the loaded dataset would keep all of it alive
        self.raw = raw if raw.base is None else raw.copy()
        self.pipeline = pipeline
        self.shape = (len(raw), pipeline(raw[:1]).shape[1])
        self.dtype = pipeline.dtype

    def __len__(self) -> int:
        return len(self.raw)

    def __getitem__(self, index: Any) -> np.ndarray:
        rows = self.raw[index]
        if rows.ndim == 1:  # one row
            return self.pipeline(rows[None, :])[0]
        return self.pipeline(rows)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        if copy is False:  # NumPy's rule, as for a list: an array that must be made is a copy
            raise ValueError("LazyRows makes its rows when read: they exist only as a new array")
        rows = self.pipeline(self.raw)
        return rows if dtype is None else rows.astype(dtype, copy=False)

    @property
    def nbytes(self) -> int:
        return int(self.raw.nbytes)


def build_pipeline(
    *,
    max_value: float,
    image_shape: tuple[int, int],
    dtype: npt.DTypeLike = np.float32,
    crop: int = 0,
    pixel_subset: int | None = None,
    pixel_pick: str = "random",
    seed: int = 0,
    invert: bool = False,
    standardize: bool = False,
    per_pixel: bool = False,
) -> Pipeline:
    """The canonical order: crop -> pixel subset -> scale to [0, 1] -> invert -> standardize."""
    if per_pixel and not standardize:
        raise ConfigError("per_pixel only applies with standardize")
    if pixel_pick != "random" and pixel_subset is None:
        raise ConfigError("pixel_pick only applies with pixel_subset")
    transforms: list[Transform] = []
    if crop:
        transforms.append(Crop(crop, image_shape))
    if pixel_subset is not None:
        transforms.append(PixelSubset(pixel_subset, seed, pixel_pick))
    transforms.append(ScaleTo01(max_value))
    if invert:
        transforms.append(Invert())
    if standardize:
        transforms.append(Standardize(per_pixel=per_pixel))
    return Pipeline(transforms, dtype=dtype)


def input_pixels(pipeline: Pipeline, image_shape: tuple[int, int]) -> np.ndarray:
    """The raw pixel (flat index into an h x w image) each of a fitted pipeline's output
    features reads, after its crop and pixel subset: an int array, one per feature."""
    height, width = image_shape
    # each pixel's own index rides through the selecting transforms (exact in float64)
    index = np.arange(height * width, dtype=np.float64)[None, :]
    for transform in pipeline.transforms:
        if isinstance(transform, Crop | PixelSubset):
            index = transform(index)
    return index[0].astype(np.intp)


def pixel_range(pipeline: Pipeline, n_features: int, max_value: float) -> tuple[float, float]:
    """What a fitted pipeline makes of a raw pixel 0 (MNIST's black paper) and of a raw
    pixel at `max_value` (white ink): the values augmentation fills with for "zero" and 1.

    Both are read at the first output feature: with a scalar standardisation (the only kind
    augmentation allows) every feature maps a raw value alike.
    """
    rows = np.array([[0.0], [max_value]]).repeat(n_features, axis=1)
    out = pipeline(rows)
    return float(out[0, 0]), float(out[1, 0])
