"""Preparing drawings like the datasets' own images: MNIST's 20x20 box centred by mass in 28x28,
the 8x8 digits' 0..16 block counts."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from digitlab.data.drawing import (
    area_matrix,
    centre_of_mass,
    ink_from_gray,
    prepare_drawing,
    resize,
)
from digitlab.errors import DataError


def stroke(canvas: np.ndarray, points: list[tuple[int, int]], width: int) -> np.ndarray:
    """Draw a polyline of round dots `width` wide (as a pen would) onto canvas, ink 255."""
    rows, columns = np.indices(canvas.shape)
    for (r0, c0), (r1, c1) in zip(points, points[1:], strict=False):
        for t in np.linspace(0, 1, 200):
            r, c = r0 + t * (r1 - r0), c0 + t * (c1 - c0)
            canvas[(rows - r) ** 2 + (columns - c) ** 2 <= (width / 2) ** 2] = 255
    return canvas


def ink_extent(image: np.ndarray) -> tuple[int, int, int, int]:
    rows, columns = np.nonzero(image > 0)
    return rows.min(), rows.max(), columns.min(), columns.max()


def test_a_large_off_centre_stroke_fits_20x20_and_is_centred_by_mass_in_28x28():
    # a big "7" in the canvas's top right corner, running off to its edges
    canvas = stroke(np.zeros((280, 280)), [(10, 120), (10, 270), (270, 170)], width=20)
    image = prepare_drawing(canvas, (28, 28), 255)
    assert image.shape == (28, 28)
    top, bottom, left, right = ink_extent(image)
    height, width = bottom - top + 1, right - left + 1
    assert max(height, width) == 20 and min(height, width) <= 20
    row, column = centre_of_mass(image)
    # where MNIST's own digits have theirs: in [13.5, 14.5] of 0..27 (pixel 14, not 13.5)
    assert abs(row - 14) <= 0.5 and abs(column - 14) <= 0.5
    assert 0 <= image.min() and image.max() <= 255


def test_aspect_ratio_is_kept():
    canvas = np.zeros((300, 300))
    canvas[100:140, 20:260] = 255  # a 40 x 240 bar: 1 to 6
    image = prepare_drawing(canvas, (28, 28), 255)
    top, bottom, left, right = ink_extent(image)
    assert right - left + 1 == 20
    assert bottom - top + 1 in (3, 4)  # 20 / 6 = 3.3 rows
    tall = prepare_drawing(canvas.T, (28, 28), 255)  # the same bar standing up
    np.testing.assert_allclose(tall, image.T)


def test_thin_strokes_are_anti_aliased():
    canvas = stroke(np.zeros((280, 280)), [(20, 20), (260, 200)], width=6)
    image = prepare_drawing(canvas, (28, 28), 255)
    grey = (image > 0) & (image < 255)
    assert grey.sum() > 10  # partial pixels along the edges, not a hard 0/255 copy


def test_an_empty_drawing_is_a_clear_error():
    with pytest.raises(DataError, match="empty: draw a digit"):
        prepare_drawing(np.zeros((50, 60)), (28, 28), 255)


def test_bad_drawings_are_refused():
    with pytest.raises(DataError, match="2-D"):
        prepare_drawing(np.zeros(10), (28, 28), 255)
    with pytest.raises(DataError, match="not negative"):
        prepare_drawing(-np.ones((5, 5)), (28, 28), 255)
    with pytest.raises(DataError, match="style"):
        prepare_drawing(np.ones((5, 5)), (28, 28), 255, style="emnist")


def test_faint_ink_counts_as_full_ink():
    canvas = np.zeros((100, 100))
    canvas[20:80, 45:55] = 40
    image = prepare_drawing(canvas, (28, 28), 255)
    assert image.max() == pytest.approx(255)


def test_digits_style_gives_8x8_counts_0_to_16_filling_the_height():
    canvas = stroke(np.zeros((280, 280)), [(30, 140), (250, 140)], width=60)
    image = prepare_drawing(canvas, (8, 8), 16, style="digits")
    assert image.shape == (8, 8)
    np.testing.assert_array_equal(image, np.rint(image))  # whole counts, as in the dataset
    assert image.min() == 0 and image.max() == 16
    top, bottom, left, right = ink_extent(image)
    assert (top, bottom) == (0, 7)  # the tall stroke fills the 32x32 bitmap's height
    assert right - left <= 3  # and stays narrow, centred
    assert 2 <= left and right <= 5


def test_other_field_sizes_keep_mnists_proportions():
    canvas = stroke(np.zeros((200, 200)), [(10, 100), (190, 100)], width=20)
    image = prepare_drawing(canvas, (14, 14), 1.0)
    top, bottom, _, _ = ink_extent(image)
    assert bottom - top + 1 == 10  # 20/28 of 14
    assert image.max() <= 1.0


@given(st.integers(1, 60), st.integers(1, 60))
def test_area_resampling_keeps_the_mean(n, m):
    weights = area_matrix(n, m)
    np.testing.assert_allclose(weights.sum(axis=1), 1.0)  # each output pixel is an average
    np.testing.assert_allclose(weights.sum(axis=0), m / n)  # each input pixel counted once
    image = np.random.default_rng(n * 61 + m).random((n, n))
    assert resize(image, m, m).mean() == pytest.approx(image.mean())


def test_uploaded_images_become_ink_high():
    paper = np.full((30, 30), 250.0)
    paper[5:25, 12:16] = 10  # dark pen on white paper
    ink = ink_from_gray(paper)
    assert ink[0, 0] == 0 and ink[10, 13] == 240
    dark = 255 - paper  # light ink on a dark background stays as it is
    np.testing.assert_array_equal(ink_from_gray(dark), ink)
    alpha = np.zeros((30, 30))
    alpha[5:25, 12:16] = 255  # a canvas export: black strokes on a transparent background
    np.testing.assert_array_equal(ink_from_gray(np.zeros((30, 30)), alpha), alpha)


def test_mnist_digits_prepared_again_stay_where_they_are(mnist):
    """MNIST's own digits (centred by mass at pixel 14 of 0..27) go through the MNIST style
    unchanged: no half-pixel shift, the same 20x20 box."""
    digits = mnist.x_test[:100].reshape(-1, 28, 28)
    again = np.array([prepare_drawing(digit, (28, 28), 255) for digit in digits])
    unchanged = (np.abs(again - digits) <= 1).all(axis=(1, 2))
    assert unchanged.mean() > 0.75
