"""Data augmentation: random affine and elastic distortions of training images, a batch at once.

Each image gets its own random affine map (rotation and scale about the image centre, then a
shift) and, when `elastic_alpha` > 0, Simard's elastic distortion: a displacement field drawn
uniform in [-1, 1] per pixel and axis, smoothed with a Gaussian of std `elastic_sigma` and
multiplied by `elastic_alpha` (Simard, Steinkraus and Platt 2003, "Best practices for
convolutional neural networks applied to visual document analysis",
https://doi.org/10.1109/ICDAR.2003.1227801). Output pixel p reads the input at
T^-1(p) + displacement(p) by bilinear interpolation; a pixel read from outside the image takes
the fill: by default the image's background, its minimum (0 for [0, 1] data, a constant negative
value for standardised data), its maximum with background="max" for inverted (dark on light)
data; or one fixed value for every image (the config's `fill`, "zero" or a number, put on the
augmented rows' scale by `build_augment`).

Conventions: rows grow downwards; a positive angle turns the image counterclockwise as shown
(+90 degrees is np.rot90(image)); a positive shift moves it down and right (np.roll).
An Augment draws only from the Generator it holds, so the training shuffle is the same with and
without it. Everything is whole-batch NumPy: one (n, h, w) grid of sampling coordinates, one
gather of four neighbours, and the Gaussian as two small convolution matrices.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from digitlab.errors import ConfigError, DataError

AUGMENT_KEYS = (
    "shift", "rotate", "scale", "elastic_alpha", "elastic_sigma", "probability", "fill",
)  # fmt: skip
FILLS = ("background", "zero")  # or a number in [0, 1]: a share of the raw pixel range


def gaussian_matrix(size: int, sigma: float) -> np.ndarray:
    """(size, size) matrix K with K @ v = v smoothed by a Gaussian of std `sigma`.

    K[i, j] = g(i - j), g truncated at 4 sigma and normalised to sum 1 over its full width;
    values past the edge count as 0 (scipy.ndimage.gaussian_filter1d with mode="constant").
    K is symmetric, so v @ K smooths rows the same way.
    """
    radius = int(4 * sigma + 0.5)
    total = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2).sum()
    distance = np.subtract.outer(np.arange(size), np.arange(size))
    weights = np.exp(-0.5 * (distance / sigma) ** 2) / total
    return np.where(np.abs(distance) <= radius, weights, 0.0)


def affine_coordinates(
    image_shape: tuple[int, int], angle: np.ndarray, scale: np.ndarray, shift: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Where each output pixel reads its input: (rows, cols), each (n, h, w).

    angle (n,) radians, counterclockwise as shown; scale (n,) factors; shift (n, 2) pixels
    (down, right). With c the image centre and R(a) = [[cos a, -sin a], [sin a, cos a]] acting
    on (row, col), output pixel p reads c + R(-angle) (p - c - shift) / scale.
    """
    height, width = image_shape
    dtype = angle.dtype
    centre_row, centre_col = dtype.type((height - 1) / 2), dtype.type((width - 1) / 2)
    rows = np.arange(height, dtype=dtype)[:, None] - centre_row - shift[:, 0, None, None]  # (n,h,1)
    cols = np.arange(width, dtype=dtype)[None, :] - centre_col - shift[:, 1, None, None]  # (n,1,w)
    cos = (np.cos(angle) / scale)[:, None, None]
    sin = (np.sin(angle) / scale)[:, None, None]
    return centre_row + cos * rows + sin * cols, centre_col - sin * rows + cos * cols


def bilinear(
    images: np.ndarray, rows: np.ndarray, cols: np.ndarray, fill: np.ndarray
) -> np.ndarray:
    """images (n, h, w) read at real coordinates rows, cols (n, h', w'); outside reads fill (n,).

    Numerics: each image sits in a frame of its fill value (one pixel before, two after) and
    coordinates are clipped to [-1, h] x [-1, w], so the four neighbours of any point are valid
    indices of one flat array and a point outside reads exactly fill. Interpolating as
    a + t (b - a) gives a exactly where t = 0, so whole-pixel moves are exact; elsewhere
    rounding may leave [min, max] of the image by about one ulp of its largest value.
    """
    n, height, width = images.shape
    stride = width + 3
    padded = np.empty((n, height + 3, stride), dtype=images.dtype)
    padded[...] = fill[:, None, None]
    padded[:, 1 : height + 1, 1 : width + 1] = images
    rows = np.clip(rows, -1, height)
    cols = np.clip(cols, -1, width)
    row0, col0 = np.floor(rows), np.floor(cols)
    rows -= row0  # now the weights of the lower and right neighbours
    cols -= col0
    # Flat index of the top-left neighbour, padded[i, row0 + 1, col0 + 1]; row0 * stride + col0
    # is a small integer, exact even in float32 for images up to 4,000 x 4,000.
    index = (row0 * stride + col0).astype(np.intp)
    index += (np.arange(n) * padded[0].size + stride + 1)[:, None, None]
    flat = padded.reshape(-1)
    # Shifted views instead of index + 1 etc.: no extra index arrays.
    top = np.take(flat, index)
    top += cols * (np.take(flat[1:], index) - top)
    bottom = np.take(flat[stride:], index)
    bottom += cols * (np.take(flat[stride + 1 :], index) - bottom)
    top += rows * (bottom - top)
    return top


def _number(name: str, value: Any, low: float, high: float, *, high_open: bool = False) -> float:
    """`value` as a float in [low, high] (or [low, high)), else a one-line ConfigError."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"augment {name} must be a number, got {value!r}")
    inside = low <= value < high if high_open else low <= value <= high
    if not (math.isfinite(value) and inside):
        upper = f"below {high:g}" if high_open else f"at most {high:g}"
        raise ConfigError(f"augment {name} must be at least {low:g} and {upper}, got {value!r}")
    return float(value)


class Augment:
    """A random affine (+ elastic) distortion of every image in a batch of flat rows (n, h*w).

    shift: max pixels per axis, uniform in [-shift, shift]; rotate: max degrees; scale: factor
    uniform in [1 - scale, 1 + scale]; elastic_alpha, elastic_sigma: Simard's displacement field
    (alpha 34, sigma 4 for MNIST in the paper); probability: share of images altered;
    background: "min" or "max", the value of each image that pixels from outside it take;
    fill: one value they take instead, on the rows' own scale (None: the background).
    Returns a new array of x's shape and dtype; x is never modified.
    """

    def __init__(
        self,
        image_shape: tuple[int, int],
        rng: np.random.Generator,
        *,
        shift: float = 0.0,
        rotate: float = 0.0,
        scale: float = 0.0,
        elastic_alpha: float = 0.0,
        elastic_sigma: float = 4.0,
        probability: float = 1.0,
        background: str = "min",
        fill: float | None = None,
    ) -> None:
        shape = tuple(image_shape)
        if len(shape) != 2 or not all(
            isinstance(size, int | np.integer) and size > 0 for size in shape
        ):
            raise ConfigError(f"augment image_shape must be two positive sizes, got {image_shape}")
        self.image_shape = (int(shape[0]), int(shape[1]))
        self.rng = rng
        self.shift = _number("shift", shift, 0, math.inf, high_open=True)
        self.rotate = _number("rotate", rotate, 0, 180)
        # A factor of 0 would collapse the image to a point.
        self.scale = _number("scale", scale, 0, 1, high_open=True)
        self.elastic_alpha = _number("elastic_alpha", elastic_alpha, 0, math.inf, high_open=True)
        # the smoothing kernel spans 8 sigma: beyond 1,000 it would not fit in memory, and
        # any sigma far above the image's side already gives a constant field
        self.elastic_sigma = _number("elastic_sigma", elastic_sigma, 0, 1000)
        if self.elastic_sigma == 0:
            raise ConfigError("augment elastic_sigma must be positive, got 0")
        self.probability = _number("probability", probability, 0, 1)
        if background not in ("min", "max"):
            raise ConfigError(f"augment background must be 'min' or 'max', got {background!r}")
        self.background = background
        if fill is not None and not math.isfinite(fill):
            raise ConfigError(f"augment fill must be finite, got {fill!r}")
        self.fill = fill
        height, width = self.image_shape
        # alpha rides on the row kernel: the field is alpha * K_rows @ noise @ K_cols.
        self.kernels = (
            self.elastic_alpha * gaussian_matrix(height, self.elastic_sigma),
            gaussian_matrix(width, self.elastic_sigma),
        )

    @property
    def active(self) -> bool:
        """Whether calls can change anything (else they return a copy and draw nothing)."""
        magnitudes = (self.shift, self.rotate, self.scale, self.elastic_alpha)
        return self.probability > 0 and any(magnitudes)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        height, width = self.image_shape
        if x.ndim != 2 or not np.issubdtype(x.dtype, np.floating):
            raise DataError(f"augment expects float rows (n, features), got {x.dtype} {x.shape}")
        if x.shape[1] != height * width:
            raise ConfigError(
                f"augment was set up for {height}x{width} = {height * width} features, "
                f"got {x.shape[1]}"
            )
        if not self.active or len(x) == 0:
            return x.copy()
        if self.probability == 1:
            return self._distort(x)
        out = x.copy()
        chosen = np.flatnonzero(self.rng.random(len(x)) < self.probability)
        if len(chosen):
            out[chosen] = self._distort(x[chosen])
        return out

    def _uniform(self, half_width: float, size: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        """Uniform in [-half_width, half_width], drawn and returned in `dtype`."""
        draw_dtype = np.float32 if dtype == np.float32 else np.float64  # what rng.random offers
        values = self.rng.random(size, dtype=draw_dtype).astype(dtype, copy=False)
        values *= dtype.type(2 * half_width)
        values -= dtype.type(half_width)
        return values

    def _distort(self, x: np.ndarray) -> np.ndarray:
        n, dtype = len(x), x.dtype
        height, width = self.image_shape
        images = x.reshape(n, height, width)
        angle = np.deg2rad(self._uniform(self.rotate, (n,), dtype))
        scale = 1 + self._uniform(self.scale, (n,), dtype)
        shift = self._uniform(self.shift, (n, 2), dtype)
        rows, cols = affine_coordinates(self.image_shape, angle, scale, shift)
        if self.elastic_alpha > 0:
            kernel_rows, kernel_cols = (kernel.astype(dtype) for kernel in self.kernels)
            # Separable Gaussian as two products with small matrices, for all 2n fields at once.
            field = kernel_rows @ self._uniform(1.0, (2 * n, height, width), dtype) @ kernel_cols
            rows += field[:n]
            cols += field[n:]
        if self.fill is not None:
            fill = np.full(n, self.fill, dtype=dtype)
        elif self.background == "min":
            fill = images.min(axis=(1, 2))
        else:
            fill = images.max(axis=(1, 2))
        return bilinear(images, rows, cols, fill).reshape(n, height * width)


def build_augment(
    params: dict[str, Any],
    image_shape: tuple[int, int] | None,
    rng: np.random.Generator,
    *,
    background: str = "min",
    pixel_range: tuple[float, float] = (0.0, 1.0),
) -> Augment:
    """An Augment from config keys (a subset of AUGMENT_KEYS) for images of `image_shape`.

    background comes from the pipeline, not the user: "max" when the images were inverted.
    pixel_range: what the pipeline makes of a raw pixel 0 (black) and of the raw maximum
    (white); the key fill ("zero", or v in [0, 1]: black + v (white - black)) is put on the
    rows' scale with it, so 0 is black paper and 1 white ink however the rows were transformed.
    """
    unknown = sorted(set(params) - set(AUGMENT_KEYS))
    if unknown:
        raise ConfigError(
            f"unknown augment key(s) {', '.join(unknown)}; known: {', '.join(AUGMENT_KEYS)}"
        )
    if image_shape is None:
        raise ConfigError("augmentation needs images; it cannot follow a pixel subset")
    params = dict(params)
    fill = params.pop("fill", "background")
    if fill == "zero":
        fill = 0.0
    elif fill == "background":
        fill = None
    elif isinstance(fill, str):
        names = ", ".join(FILLS)
        raise ConfigError(f"augment fill must be {names} or a number, got {fill!r}")
    else:
        fill = _number("fill", fill, 0, 1)
    black, white = pixel_range
    value = None if fill is None else black + fill * (white - black)
    return Augment(image_shape, rng, background=background, fill=value, **params)


def augment_examples(
    x: np.ndarray, augment: Augment, image_shape: tuple[int, int], n: int = 8, variants: int = 5
) -> np.ndarray:
    """The first `n` rows of x as images, each followed by `variants` augmented copies.

    Returns (n, 1 + variants, h, w) for a picture grid. It draws from augment's generator, so
    give it an Augment of its own to leave a training run's stream alone.
    """
    if tuple(image_shape) != augment.image_shape:
        raise ConfigError(f"augment was set up for {augment.image_shape} images, got {image_shape}")
    if not 1 <= n <= len(x) or variants < 0:
        raise ConfigError(f"need 1 <= n <= {len(x)} rows and variants >= 0, got {n}, {variants}")
    originals = x[:n]
    altered = augment(np.repeat(originals, variants, axis=0))
    images = np.concatenate(
        [originals[:, None, :], altered.reshape(n, variants, -1)], axis=1
    )  # (n, 1 + variants, h*w)
    return images.reshape(n, 1 + variants, *image_shape)
