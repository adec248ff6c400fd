"""A drawing (canvas pixels or an uploaded image) prepared the way a dataset's images were.

Input: a grayscale image (height, width), ink = high values, on any scale. Output: one image
in the dataset's raw form (its image shape, on its 0..max_value scale, ink high), ready for the
run's own pipeline (crop, scale, invert, standardize), which then does to the drawing exactly
what it did to the training images.

- "mnist" (MNIST and other IDX images): as NIST did for MNIST, the ink's bounding box is scaled
  to fit a 20x20 box (for 28x28; the same share of other sizes) keeping its aspect ratio,
  resampled by area averaging (anti-aliased), and placed in the field so that its centre of mass
  lies at pixel (14, 14) of 0..27 (side / 2; a whole-pixel shift, kept inside the field).
- "digits" (scikit-learn's 8x8 digits, from UCI optdigits): the bounding box is scaled to fit
  a 32x32 bitmap keeping its aspect ratio and centred; each 4x4 block's share of ink, times 16
  and rounded, gives the 0..16 counts the dataset holds.

An empty drawing (no pixel above INK) is a DataError: there is nothing to classify, and an
all-zero input would still get a confident-looking answer from most networks.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from digitlab.errors import DataError

INK = 0.1  # a pixel is ink above this share of the drawing's brightest pixel
MNIST_FIELD, MNIST_BOX = 28, 20
DIGITS_BITMAP, DIGITS_BLOCK = 32, 4
STYLES = ("mnist", "digits")


def area_matrix(n: int, m: int) -> np.ndarray:
    """(m, n) weights that resample n pixels to m by area averaging: row i averages the input
    pixels under output pixel i's span [i n/m, (i+1) n/m), each weighted by its overlap."""
    edges = np.arange(m + 1) * (n / m)
    left = np.maximum(edges[:-1, None], np.arange(n)[None, :])
    right = np.minimum(edges[1:, None], np.arange(n)[None, :] + 1)
    return np.clip(right - left, 0, None) * (m / n)


def resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Area-averaging resize (anti-aliased when shrinking): rows, then columns."""
    rows = area_matrix(image.shape[0], height)
    columns = area_matrix(image.shape[1], width)
    return rows @ image @ columns.T


def ink_box(image: np.ndarray) -> tuple[slice, slice]:
    """The rows and columns of the smallest box holding every ink pixel."""
    top = float(image.max()) if image.size else 0.0
    if not top > 0:
        raise DataError("the drawing is empty: draw a digit first")
    ink = image > INK * top
    rows, columns = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    return slice(rows[0], rows[-1] + 1), slice(columns[0], columns[-1] + 1)


def fit_box(image: np.ndarray, box_height: int, box_width: int) -> np.ndarray:
    """The ink's bounding box resized to fit box_height x box_width, keeping its aspect ratio."""
    rows, columns = ink_box(image)
    ink = image[rows, columns]
    scale = min(box_height / ink.shape[0], box_width / ink.shape[1])
    height = min(box_height, max(1, round(ink.shape[0] * scale)))
    width = min(box_width, max(1, round(ink.shape[1] * scale)))
    return resize(ink, height, width)


def centre_of_mass(image: np.ndarray) -> tuple[float, float]:
    """(row, column) of the ink's centre of mass, pixel centres at whole indices."""
    total = image.sum()
    rows = np.arange(image.shape[0]) @ image.sum(axis=1) / total
    columns = np.arange(image.shape[1]) @ image.sum(axis=0) / total
    return float(rows), float(columns)


def place(
    image: np.ndarray,
    field: tuple[int, int],
    at: tuple[float, float],
    to: tuple[float, float] | None = None,
) -> np.ndarray:
    """`image` pasted into a zero field so that point `at` of it (row, column) lands as near
    point `to` of the field (default: its centre) as a whole-pixel shift inside it allows."""
    out = np.zeros(field)
    to = to or ((field[0] - 1) / 2, (field[1] - 1) / 2)
    top, left = (
        int(np.clip(np.rint(target - point), 0, size - extent))
        for size, target, point, extent in zip(field, to, at, image.shape, strict=True)
    )
    out[top : top + image.shape[0], left : left + image.shape[1]] = image
    return out


def prepare_mnist(image: np.ndarray, field: tuple[int, int] = (28, 28)) -> np.ndarray:
    """The ink fitted into a 20/28 box of `field`, anti-aliased, centred by mass; 0..1."""
    box = (round(field[0] * MNIST_BOX / MNIST_FIELD), round(field[1] * MNIST_BOX / MNIST_FIELD))
    fitted = fit_box(image, *box)
    # MNIST's centres of mass lie in [13.5, 14.5) of 0..27 (row and column): the target is
    # pixel 14 = side / 2, half a pixel past the field's middle 13.5 (measured on its images)
    return place(fitted, field, centre_of_mass(fitted), (field[0] / 2, field[1] / 2))


def prepare_digits(image: np.ndarray, field: tuple[int, int] = (8, 8)) -> np.ndarray:
    """The ink fitted into a 32x32 bitmap, centred, then 4x4 block shares; 0..1."""
    bitmap = (field[0] * DIGITS_BLOCK, field[1] * DIGITS_BLOCK)
    fitted = fit_box(image, *bitmap)
    centre = ((fitted.shape[0] - 1) / 2, (fitted.shape[1] - 1) / 2)
    blocks = place(fitted, bitmap, centre).reshape(field[0], DIGITS_BLOCK, field[1], DIGITS_BLOCK)
    return blocks.mean(axis=(1, 3))


def prepare_drawing(
    image: np.ndarray, image_shape: tuple[int, int], max_value: float, style: str = "mnist"
) -> np.ndarray:
    """A drawing as one raw dataset image (image_shape, float64 whole numbers on
    0..max_value, as a dataset's pixels are).

    The drawing is first scaled so that its brightest pixel is 1 (a faint pen still counts as
    full ink, as a scanner's threshold made it in NIST's forms).
    """
    image = np.asarray(image, dtype=np.float64)
    if image.ndim != 2 or min(image.shape) < 1:
        raise DataError(f"a drawing must be a 2-D grayscale image, got shape {image.shape}")
    if not np.isfinite(image).all() or image.min() < 0:
        raise DataError("a drawing's pixels must be finite and not negative")
    if style not in STYLES:
        raise DataError(f"unknown drawing style {style!r}; known: {', '.join(STYLES)}")
    top = float(image.max())
    if not top > 0:
        raise DataError("the drawing is empty: draw a digit first")
    image = image / top
    if style == "digits":
        return np.rint(prepare_digits(image, image_shape) * max_value)
    return np.rint(prepare_mnist(image, image_shape) * max_value)


def ink_from_gray(gray: np.ndarray, alpha: np.ndarray | None = None) -> np.ndarray:
    """Ink (high = ink, 0..255) from an uploaded image's gray levels and optional alpha.

    A transparent background with opaque strokes (a canvas export) is ink = alpha. Otherwise
    the polarity comes from the border: a light border means dark ink on paper, inverted; the
    border's median level is then taken as the paper and subtracted.
    """
    gray = np.asarray(gray, dtype=np.float64)
    if alpha is not None and float(np.min(alpha)) < 255:
        return np.asarray(alpha, dtype=np.float64)
    paper = float(np.median(np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])))
    if paper > 127:
        gray, paper = 255 - gray, 255 - paper
    return np.clip(gray - paper, 0, None)


def ink_from_image(image: Any) -> np.ndarray:
    """Ink (high = ink, 0..255) from a Pillow image of any mode (L, RGB, RGBA, P, 1, ...): its
    gray levels and alpha, as ink_from_gray reads them."""
    if image.mode == "I" or image.mode.startswith("I;16"):  # 16-bit gray: convert() would clip
        return ink_from_gray(np.asarray(image, dtype=np.float64) * (255 / 65535))
    rgba = image.convert("RGBA")
    gray = np.asarray(rgba.convert("L"), dtype=np.float64)
    alpha = np.asarray(rgba.getchannel("A"), dtype=np.float64)
    return ink_from_gray(gray, alpha)
