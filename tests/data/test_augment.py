"""Augmentation: exact identities, direction conventions, bounds, seeding, validation, training."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from digitlab.data.augment import (
    AUGMENT_KEYS,
    Augment,
    affine_coordinates,
    augment_examples,
    bilinear,
    build_augment,
    gaussian_matrix,
)
from digitlab.errors import ConfigError, DataError

DTYPES = [np.float32, np.float64]
SIMARD = {"shift": 2.0, "rotate": 10.0, "scale": 0.1, "elastic_alpha": 34.0, "elastic_sigma": 4.0}


def digit_like(rng: np.random.Generator, n: int = 16, shape=(28, 28), dtype=np.float64):
    """Rows (n, h*w) in [0, 1]: random strokes inside a zero border, like scaled MNIST."""
    height, width = shape
    top, left = height // 4, width // 4
    images = np.zeros((n, height, width), dtype=dtype)
    images[:, top : height - top, left : width - left] = rng.random(
        (n, height - 2 * top, width - 2 * left)
    )
    return images.reshape(n, -1)


def warp(images: np.ndarray, angle: float = 0.0, scale: float = 1.0, shift=(0.0, 0.0)):
    """The deterministic core of Augment: one affine map for every image, outside reads 0."""
    n = len(images)
    dtype = images.dtype
    rows, cols = affine_coordinates(
        images.shape[1:],
        np.full(n, angle, dtype),
        np.full(n, scale, dtype),
        np.tile(np.asarray(shift, dtype), (n, 1)),
    )
    return bilinear(images, rows, cols, np.zeros(n, dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_zero_magnitudes_are_the_identity(rng, dtype) -> None:
    x = digit_like(rng, dtype=dtype)
    for augment in (Augment((28, 28), rng), Augment((28, 28), rng, elastic_sigma=2.0)):
        out = augment(x)
        assert out is not x
        np.testing.assert_array_equal(out, x)


@pytest.mark.parametrize("dtype", DTYPES)
def test_dtype_kept_and_input_untouched(rng, dtype) -> None:
    x = digit_like(rng, dtype=dtype)
    before = x.copy()
    out = Augment((28, 28), rng, **SIMARD)(x)
    assert out.dtype == dtype and out.shape == x.shape
    assert not np.shares_memory(out, x)
    np.testing.assert_array_equal(x, before)


def test_same_seed_same_output_other_seed_other_output(rng) -> None:
    x = digit_like(rng)
    outputs = [Augment((28, 28), np.random.default_rng(seed), **SIMARD)(x) for seed in (5, 5, 6)]
    np.testing.assert_array_equal(outputs[0], outputs[1])
    assert not np.array_equal(outputs[0], outputs[2])


def test_each_call_draws_new_variants(rng) -> None:
    x = digit_like(rng, n=4)
    augment = Augment((28, 28), rng, shift=2)
    assert not np.array_equal(augment(x), augment(x))
    # ...and each image of a batch its own: copies of one image come out different.
    out = augment(np.repeat(x[:1], 3, axis=0))
    assert not np.array_equal(out[0], out[1]) and not np.array_equal(out[1], out[2])


@pytest.mark.parametrize("dtype", DTYPES)
def test_whole_pixel_shift_is_np_roll(rng, dtype) -> None:
    """A positive shift moves the image down (rows) and right (columns), exactly."""
    images = digit_like(rng, n=3, shape=(9, 11), dtype=dtype).reshape(3, 9, 11)
    images += 0.5  # a nonzero border, so any leak of the outside fill would show
    right = warp(images, shift=(0.0, 1.0))
    np.testing.assert_array_equal(right[:, :, 1:], np.roll(images, 1, axis=2)[:, :, 1:])
    np.testing.assert_array_equal(right[:, :, 0], 0)  # entered from outside: the fill
    down = warp(images, shift=(1.0, 0.0))
    np.testing.assert_array_equal(down[:, 1:], np.roll(images, 1, axis=1)[:, 1:])
    up_left = warp(images, shift=(-2.0, -3.0))
    np.testing.assert_array_equal(up_left[:, :-2, :-3], images[:, 2:, 3:])


@pytest.mark.parametrize("size", [8, 9])
@pytest.mark.parametrize("dtype", DTYPES)
def test_plus_90_degrees_is_np_rot90_counterclockwise(rng, size, dtype) -> None:
    images = rng.random((2, size, size)).astype(dtype)
    turned = warp(images, angle=np.pi / 2)
    expected = np.rot90(images, k=1, axes=(1, 2))  # counterclockwise as shown
    tolerance = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(turned[:, 1:-1, 1:-1], expected[:, 1:-1, 1:-1], atol=tolerance)
    np.testing.assert_allclose(
        warp(images, angle=-np.pi / 2)[:, 1:-1, 1:-1],
        np.rot90(images, k=-1, axes=(1, 2))[:, 1:-1, 1:-1],
        atol=tolerance,
    )


def test_scale_one_keeps_the_image_and_scale_two_doubles_distances(rng) -> None:
    images = rng.random((2, 9, 9))
    np.testing.assert_array_equal(warp(images, scale=1.0), images)
    dot = np.zeros((1, 9, 9))
    dot[0, 4, 5] = 1.0  # one pixel right of the centre (4, 4)
    np.testing.assert_allclose(warp(dot, scale=2.0)[0, 4, 6], 1.0)


def test_outside_reads_each_images_minimum_for_standardised_data(rng) -> None:
    """Standardised MNIST has a constant negative background; shifted-in pixels get it."""
    x = digit_like(rng, n=8)
    x = (x - 0.13) / 0.3  # background (0 - 0.13) / 0.3, per image its minimum
    out = Augment((28, 28), rng, shift=3, rotate=10)(x).reshape(8, 28, 28)
    background = x.min()
    np.testing.assert_allclose(out[:, 0, :], background, rtol=1e-12)
    np.testing.assert_allclose(out[:, :, 0], background, rtol=1e-12)


def test_background_max_for_inverted_data(rng) -> None:
    """Dark digits on a light background: shifted-in pixels take the maximum, not the ink."""
    x = 1 - digit_like(rng, n=8)
    out = Augment((28, 28), rng, shift=3, rotate=10, background="max")(x).reshape(8, 28, 28)
    np.testing.assert_array_equal(out[:, 0, :], 1)
    np.testing.assert_array_equal(out[:, :, -1], 1)
    with pytest.raises(ConfigError, match="background must be 'min' or 'max'"):
        Augment((28, 28), rng, background="median")
    assert build_augment({"shift": 1}, (28, 28), rng, background="max").background == "max"


class Highest:
    """A stand-in generator whose draws are all 1: every shift is +shift, every angle +rotate."""

    def random(self, size, dtype=np.float64):
        return np.ones(size, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    ("fill", "expected"),
    [("zero", -0.5), (0, -0.5), (1.0, 3.0), (1, 3.0), (0.5, 1.25), (0.25, 0.375)],
)
def test_fill_puts_exactly_its_value_in_the_uncovered_border(dtype, fill, expected) -> None:
    """fill v is black + v (white - black) on the rows' scale: here black -0.5, white 3.0,
    as after a standardisation; a 3-pixel shift down and right uncovers 3 rows and columns."""
    images = np.random.default_rng(0).random((4, 9, 9)).astype(dtype)
    augment = build_augment({"shift": 3, "fill": fill}, (9, 9), Highest(), pixel_range=(-0.5, 3.0))
    out = augment(images.reshape(4, -1)).reshape(4, 9, 9)
    assert out.dtype == dtype
    value = dtype(expected)
    assert (out[:, :3, :] == value).all() and (out[:, :, :3] == value).all()
    np.testing.assert_array_equal(out[:, 3:, 3:], images[:, :-3, :-3])
    # rotations (and elastic fields) read outside through the same fill: a 45 degree turn
    # leaves the corners uncovered
    turned = build_augment({"rotate": 45, "fill": fill}, (9, 9), Highest(), pixel_range=(-0.5, 3.0))
    corners = turned(images.reshape(4, -1)).reshape(4, 9, 9)[:, [0, 0, -1, -1], [0, -1, 0, -1]]
    assert (corners == value).all()


def test_fill_background_is_the_default_and_each_images_own(rng) -> None:
    x = digit_like(rng, n=6, shape=(9, 9)) + rng.random((6, 1))  # a different minimum per image
    default = build_augment({"shift": 3}, (9, 9), Highest())(x).reshape(6, 9, 9)
    named = build_augment({"shift": 3, "fill": "background"}, (9, 9), Highest())
    np.testing.assert_array_equal(named(x).reshape(6, 9, 9), default)
    np.testing.assert_array_equal(
        default[:, :3, :], np.broadcast_to(x.min(axis=1)[:, None, None], (6, 3, 9))
    )
    assert named.fill is None
    inverted = build_augment({"shift": 3}, (9, 9), Highest(), background="max")(x)
    np.testing.assert_array_equal(
        inverted.reshape(6, 9, 9)[:, :3, 0], np.repeat(x.max(axis=1)[:, None], 3, axis=1)
    )


@pytest.mark.parametrize(
    ("fill", "message"),
    [
        ("grey", "fill must be background, zero or a number"),
        (1.5, "fill must be at least 0 and at most 1"),
        (-0.1, "fill must be at least 0"),
        (float("nan"), "fill must be at least 0"),
        (True, "fill must be a number"),
    ],
)
def test_bad_fills_are_config_errors(rng, fill, message) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        build_augment({"shift": 1, "fill": fill}, (28, 28), rng)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("dtype", DTYPES)
def test_elastic_changes_pixels_keeps_mean_and_range(rng, dtype) -> None:
    x = digit_like(rng, n=32, dtype=dtype)
    out = Augment((28, 28), rng, elastic_alpha=34.0, elastic_sigma=4.0)(x)
    assert np.mean(out != x) > 0.2
    # Ink moves around; the field is not area-preserving, so single images may gain or lose some
    # (up to about 40% here), but not the batch as a whole.
    np.testing.assert_allclose(out.mean(), x.mean(), rtol=0.1)
    ratio = out.mean(axis=1) / x.mean(axis=1)
    assert np.all((ratio > 0.5) & (ratio < 2))
    assert out.min() >= x.min() and out.max() <= x.max()


def test_elastic_field_is_smooth_and_matches_simards_scale(rng) -> None:
    """alpha 34, sigma 4 moves MNIST pixels by about a pixel or two, neighbours alike."""
    augment = Augment((28, 28), rng, elastic_alpha=34.0, elastic_sigma=4.0)
    noise = augment._uniform(1.0, (200, 28, 28), np.dtype(np.float64))
    field = augment.kernels[0] @ noise @ augment.kernels[1]
    assert 0.5 < np.abs(field[:, 8:20, 8:20]).mean() < 3.0
    assert np.abs(np.diff(field, axis=2)).mean() < 0.2 * np.abs(field).mean()


def test_probability_zero_changes_nothing_and_half_changes_about_half(rng) -> None:
    x = digit_like(rng, n=200)
    np.testing.assert_array_equal(Augment((28, 28), rng, shift=2, probability=0.0)(x), x)
    out = Augment((28, 28), rng, shift=2, rotate=10, probability=0.5)(x)
    changed = np.any(out != x, axis=1)
    assert 60 < changed.sum() < 140


def test_empty_batch(rng) -> None:
    x = np.zeros((0, 64), np.float32)
    out = Augment((8, 8), rng, **SIMARD)(x)
    assert out.shape == (0, 64) and out.dtype == np.float32


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"shift": -1}, "shift must be at least 0"),
        ({"shift": float("nan")}, "shift must be at least 0"),
        ({"shift": float("inf")}, "shift must be at least 0"),
        ({"shift": "2"}, "shift must be a number"),
        ({"shift": True}, "shift must be a number"),
        ({"rotate": -5}, "rotate must be at least 0"),
        ({"rotate": 200}, "at most 180"),
        ({"scale": -0.1}, "scale must be at least 0"),
        ({"scale": 1.0}, "below 1"),
        ({"elastic_alpha": -1}, "elastic_alpha must be at least 0"),
        ({"elastic_sigma": 0}, "elastic_sigma must be positive"),
        ({"probability": 1.5}, "probability must be at least 0 and at most 1"),
        ({"probability": -0.1}, "probability must be at least 0"),
    ],
)
def test_bad_parameters_are_config_errors(rng, params, message) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        Augment((28, 28), rng, **params)
    assert "\n" not in str(info.value)


def test_bad_shapes_and_inputs(rng) -> None:
    with pytest.raises(ConfigError, match="two positive sizes"):
        Augment((0, 28), rng)
    with pytest.raises(ConfigError, match="two positive sizes"):
        Augment((28,), rng)
    assert Augment((np.int64(28), np.int64(28)), rng).image_shape == (28, 28)
    augment = Augment((28, 28), rng, shift=1)
    with pytest.raises(ConfigError, match="28x28 = 784 features, got 64"):
        augment(np.zeros((2, 64)))
    with pytest.raises(DataError, match="float rows"):
        augment(np.zeros((2, 784), np.uint8))
    with pytest.raises(DataError, match="float rows"):
        augment(np.zeros(784))


def test_build_augment(rng) -> None:
    augment = build_augment({"shift": 2, "rotate": 10}, (28, 28), rng)
    assert (augment.shift, augment.rotate, augment.scale, augment.probability) == (2, 10, 0, 1)
    assert augment.rng is rng
    with pytest.raises(ConfigError, match="unknown augment key.*shfit.*known: shift, rotate"):
        build_augment({"shfit": 2}, (28, 28), rng)
    with pytest.raises(ConfigError, match="cannot follow a pixel subset"):
        build_augment({"shift": 2}, None, rng)
    with pytest.raises(ConfigError, match="scale"):
        build_augment({"scale": 2}, (28, 28), rng)
    assert AUGMENT_KEYS == (
        "shift",
        "rotate",
        "scale",
        "elastic_alpha",
        "elastic_sigma",
        "probability",
        "fill",
    )


def test_augment_examples(rng) -> None:
    x = digit_like(rng, n=10, shape=(8, 8), dtype=np.float32)
    grid = augment_examples(x, Augment((8, 8), rng, shift=1, rotate=10), (8, 8), n=4, variants=3)
    assert grid.shape == (4, 4, 8, 8) and grid.dtype == np.float32
    np.testing.assert_array_equal(grid[:, 0], x[:4].reshape(4, 8, 8))
    assert not np.array_equal(grid[:, 1], grid[:, 0])
    with pytest.raises(ConfigError, match="set up for"):
        augment_examples(x, Augment((8, 8), rng), (4, 16))
    with pytest.raises(ConfigError, match="n <= 10"):
        augment_examples(x, Augment((8, 8), rng), (8, 8), n=11)


def test_bilinear_and_gaussian_match_scipy(rng) -> None:
    ndimage = pytest.importorskip("scipy.ndimage")
    images = rng.random((3, 7, 9))
    rows = rng.uniform(-3, 10, (3, 7, 9))
    cols = rng.uniform(-3, 12, (3, 7, 9))
    fill = rng.standard_normal(3)
    expected = [
        ndimage.map_coordinates(image, [r, c], order=1, mode="grid-constant", cval=value)
        for image, r, c, value in zip(images, rows, cols, fill, strict=True)
    ]
    np.testing.assert_allclose(bilinear(images, rows, cols, fill), expected, atol=1e-12)
    field = rng.random((7, 9))
    for sigma in (0.7, 2.0, 4.0):
        smoothed = gaussian_matrix(7, sigma) @ field @ gaussian_matrix(9, sigma)
        reference = ndimage.gaussian_filter(field, sigma, mode="constant")
        np.testing.assert_allclose(smoothed, reference, atol=1e-12)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    shape=st.tuples(st.integers(2, 9), st.integers(2, 9)),
    n=st.integers(1, 4),
    offset=st.floats(-100, 100),
    spread=st.floats(1e-3, 1e3),
    dtype=st.sampled_from(DTYPES),
    shift=st.floats(0, 3),
    rotate=st.floats(0, 45),
    scale=st.floats(0, 0.5),
    elastic_alpha=st.sampled_from([0.0, 1.0, 34.0]),
    elastic_sigma=st.floats(0.5, 6),
    probability=st.floats(0, 1),
)
def test_output_finite_and_within_each_images_range(
    seed, shape, n, offset, spread, dtype, **params
) -> None:
    rng = np.random.default_rng(seed)
    x = (offset + spread * rng.random((n, shape[0] * shape[1]))).astype(dtype)
    out = Augment(shape, rng, **params)(x)
    assert out.dtype == dtype and np.all(np.isfinite(out))
    # Bilinear weights are convex; rounding may leave the range by about one ulp.
    slack = 2 * np.finfo(dtype).eps * np.abs(x).max()
    assert np.all(out >= x.min(axis=1, keepdims=True) - slack)
    assert np.all(out <= x.max(axis=1, keepdims=True) + slack)


def test_trains_on_8x8_digits_with_augmentation() -> None:
    from digitlab import (
        TrainOptions,
        batch_size_schedule,
        build_model,
        evaluate,
        fit,
        get_optimizer,
        get_schedule,
        mlp_spec,
    )
    from digitlab.data import load_digits

    digits = load_digits()
    x_train = (digits.x_train / digits.max_value).astype(np.float32)
    x_test = (digits.x_test / digits.max_value).astype(np.float32)
    rng = np.random.default_rng(0)
    model = build_model(mlp_spec([64], 10, "relu"), 64, rng)
    augment = Augment(digits.image_shape, np.random.default_rng(1), shift=1, rotate=10, scale=0.1)
    fit(
        model,
        x_train,
        digits.y_train,
        get_optimizer("momentum", 0.05),
        TrainOptions(
            10, batch_size_schedule(32), get_schedule("constant", 0.05, 10), augment=augment
        ),
        rng=rng,
    )
    assert evaluate(model, x_test, digits.y_test).accuracy > 0.85
