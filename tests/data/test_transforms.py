"""Transforms: exact dtypes, shapes, seeded subsets, standardization, fitting on train only."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from digitlab.data import Dataset, Pipeline, build_pipeline, make_splits
from digitlab.data.transforms import (
    Crop,
    Invert,
    PixelSubset,
    ScaleTo01,
    Standardize,
    input_pixels,
    pixel_range,
)
from digitlab.errors import ConfigError, DataError

DTYPES = [np.float32, np.float64]


def raw_images(rng: np.random.Generator, n: int = 50, shape=(28, 28)) -> np.ndarray:
    """uint8 rows (n, h*w) with a constant zero border, like MNIST."""
    images = np.zeros((n, *shape), dtype=np.uint8)
    images[:, 4:-4, 4:-4] = rng.integers(0, 256, size=(n, shape[0] - 8, shape[1] - 8))
    return images.reshape(n, -1)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "options",
    [
        {},
        {"crop": 2, "invert": True},
        {"pixel_subset": 100, "standardize": True},
        {"crop": 3, "pixel_subset": 50, "invert": True, "standardize": True, "per_pixel": True},
    ],
)
def test_output_dtype_is_exact(rng: np.random.Generator, dtype, options: dict) -> None:
    x = raw_images(rng)
    pipeline = build_pipeline(max_value=255, image_shape=(28, 28), dtype=dtype, **options)
    pipeline.fit(x)
    assert pipeline(x).dtype == dtype
    # rows stay contiguous: fit gathers a batch's rows, which is slow on any other layout
    assert pipeline(x).flags.c_contiguous and pipeline.fit_transform(x).flags.c_contiguous
    # Other input dtypes are converted, never promoted.
    assert pipeline(x.astype(np.float64)).dtype == dtype
    assert pipeline(x.astype(np.int32)).dtype == dtype


def test_scale_to_01(rng: np.random.Generator) -> None:
    x = raw_images(rng)
    out = build_pipeline(max_value=255, image_shape=(28, 28), dtype=np.float64).fit(x)(x)
    np.testing.assert_allclose(out, x / 255.0)
    assert out.min() == 0.0 and out.max() == 1.0


def test_invert(rng: np.random.Generator) -> None:
    x = raw_images(rng)
    plain = build_pipeline(max_value=255, image_shape=(28, 28)).fit(x)(x)
    inverted = build_pipeline(max_value=255, image_shape=(28, 28), invert=True).fit(x)(x)
    np.testing.assert_allclose(inverted, 1 - plain)
    assert inverted[0, 0] == 1.0  # the black border turns white


def test_crop_shape_and_content(rng: np.random.Generator) -> None:
    x = raw_images(rng)
    pipeline = build_pipeline(max_value=255, image_shape=(28, 28), crop=3).fit(x)
    out = pipeline(x)
    assert out.shape == (50, 484)
    assert pipeline.output_shape((28, 28)) == (22, 22)
    expected = x.reshape(50, 28, 28)[:, 3:25, 3:25].reshape(50, 484) / np.float32(255)
    np.testing.assert_array_equal(out, expected)


def test_crop_that_leaves_nothing() -> None:
    with pytest.raises(ConfigError, match="leaves nothing"):
        Crop(14, (28, 28))
    assert Crop(13, (28, 28)).output_shape((28, 28)) == (2, 2)
    with pytest.raises(ConfigError):
        build_pipeline(max_value=255, image_shape=(28, 28), crop=-1)


def test_crop_rejects_wrong_width() -> None:
    with pytest.raises(DataError, match="784 features, got 64"):
        Crop(1, (28, 28))(np.zeros((2, 64), dtype=np.float32))


def test_pixel_subset_is_fixed_by_seed(rng: np.random.Generator) -> None:
    x = raw_images(rng).astype(np.float32)
    first = PixelSubset(30, seed=4).fit(x)
    same = PixelSubset(30, seed=4).fit(x[:5])
    other = PixelSubset(30, seed=5).fit(x)
    assert first.columns is not None and other.columns is not None
    np.testing.assert_array_equal(first.columns, same.columns)
    assert not np.array_equal(first.columns, other.columns)
    assert np.all(np.diff(first.columns) > 0)
    np.testing.assert_array_equal(first(x), x[:, first.columns])
    assert first.output_shape((28, 28)) is None
    assert PixelSubset(784, seed=0).fit(x).output_shape((28, 28)) == (28, 28)


@pytest.mark.parametrize("dtype", DTYPES)
def test_pixel_subset_variance_keeps_the_highest_variance_columns(rng, dtype) -> None:
    x = rng.random((40, 30)).astype(dtype)
    x[:, [3, 17, 25]] *= 10  # three columns of far larger variance than all others
    x[:, [8, 11]] *= 5  # then these two
    subset = PixelSubset(5, seed=0, pick="variance").fit(x)
    np.testing.assert_array_equal(subset.columns, [3, 8, 11, 17, 25])  # in their own order
    np.testing.assert_array_equal(subset(x), x[:, [3, 8, 11, 17, 25]])
    assert subset(x).dtype == dtype
    # the seed plays no part; the pick is the data's, checked against a plain variance
    np.testing.assert_array_equal(
        PixelSubset(5, seed=9, pick="variance").fit(x).columns, subset.columns
    )
    n = 12
    expected = np.sort(np.argsort(-x.astype(np.float64).var(axis=0), kind="stable")[:n])
    np.testing.assert_array_equal(PixelSubset(n, seed=0, pick="variance").fit(x).columns, expected)


def test_pixel_subset_variance_ties_go_to_the_lower_column(rng) -> None:
    x = np.zeros((10, 8))
    x[:, [1, 4, 6]] = rng.random((10, 1))  # three equal columns, the rest constant
    assert PixelSubset(2, seed=0, pick="variance").fit(x).columns.tolist() == [1, 4]


def test_pixel_subset_columns_can_be_set_and_are_checked() -> None:
    subset = PixelSubset(3, seed=0, pick="variance").set_columns([5, 1, 3], 6)
    assert subset.columns.tolist() == [1, 3, 5] and subset.n_features == 6
    for columns, message in (([1, 1, 2], "distinct"), ([1, 2], "distinct"), ([1, 2, 6], "0..5")):
        with pytest.raises(DataError, match=message):
            PixelSubset(3, seed=0).set_columns(columns, 6)
    with pytest.raises(ConfigError, match="pixel pick must be one of random, variance"):
        PixelSubset(3, seed=0, pick="central")
    with pytest.raises(ConfigError, match="pixel_pick only applies with pixel_subset"):
        build_pipeline(max_value=255, image_shape=(28, 28), pixel_pick="variance")


def test_input_pixels_names_the_raw_pixel_of_each_feature(rng) -> None:
    x = (rng.random((200, 64)) * np.linspace(1, 255, 64)).astype(np.uint8)  # variance grows
    pipeline = build_pipeline(
        max_value=255, image_shape=(8, 8), crop=1, pixel_subset=10, pixel_pick="variance",
        standardize=True,
    )  # fmt: skip
    out = pipeline.fit_transform(x)
    pixels = input_pixels(pipeline, (8, 8))
    assert pixels.shape == (10,) and pixels.dtype == np.intp
    # feature j is raw pixel pixels[j], inside the crop, scaled and standardised
    rows, cols = np.divmod(pixels, 8)
    assert rows.min() >= 1 and rows.max() <= 6 and cols.min() >= 1 and cols.max() <= 6
    assert rows.min() >= 4  # the wildest pixels lie in the crop's lower rows
    scaled = x[:, pixels] / 255
    np.testing.assert_allclose(out, (scaled - scaled.mean()) / scaled.std(), rtol=1e-5, atol=1e-5)
    plain = build_pipeline(max_value=255, image_shape=(8, 8)).fit(x)
    np.testing.assert_array_equal(input_pixels(plain, (8, 8)), np.arange(64))


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({}, (0.0, 1.0)),
        ({"invert": True}, (1.0, 0.0)),
        ({"crop": 2}, (0.0, 1.0)),
    ],
)
def test_pixel_range_is_what_black_and_white_become(rng, options, expected) -> None:
    x = raw_images(rng, n=20, shape=(8, 8))
    pipeline = build_pipeline(max_value=255, image_shape=(8, 8), dtype=np.float64, **options)
    pipeline.fit(x)
    assert pixel_range(pipeline, 64, 255) == expected
    standardized = build_pipeline(
        max_value=255, image_shape=(8, 8), dtype=np.float64, standardize=True, **options
    ).fit(x)
    mean, std = standardized.transforms[-1].mean, standardized.transforms[-1].std
    black, white = pixel_range(standardized, 64, 255)
    assert black == pytest.approx((expected[0] - mean) / std)
    assert white == pytest.approx((expected[1] - mean) / std)


@pytest.mark.parametrize("n_pixels", [0, 785])
def test_pixel_subset_size_checked(rng: np.random.Generator, n_pixels: int) -> None:
    with pytest.raises(ConfigError):
        PixelSubset(n_pixels, seed=0).fit(raw_images(rng).astype(np.float32))


def test_pipeline_output_shape_after_subset_is_not_an_image() -> None:
    pipeline = build_pipeline(max_value=255, image_shape=(28, 28), crop=2, pixel_subset=10)
    assert pipeline.output_shape((28, 28)) is None


@pytest.mark.parametrize("dtype", DTYPES)
def test_standardize_scalar_gives_mean_0_std_1(rng: np.random.Generator, dtype) -> None:
    x = raw_images(rng)
    pipeline = build_pipeline(max_value=255, image_shape=(28, 28), dtype=dtype, standardize=True)
    out = pipeline.fit(x)(x)
    assert abs(float(out.mean(dtype=np.float64))) < 1e-5
    assert abs(float(out.std(dtype=np.float64)) - 1) < 1e-5
    standardize = pipeline.transforms[-1]
    assert isinstance(standardize, Standardize)
    assert standardize.mean is not None and standardize.mean.shape == ()


@pytest.mark.parametrize("dtype", DTYPES)
def test_standardize_per_pixel_with_constant_columns(rng: np.random.Generator, dtype) -> None:
    x = raw_images(rng)
    x[:, 300] = 77  # a constant non-zero column as well as the zero border
    pipeline = build_pipeline(
        max_value=255, image_shape=(28, 28), dtype=dtype, standardize=True, per_pixel=True
    )
    out = pipeline.fit(x)(x)
    assert np.all(np.isfinite(out))
    assert np.all(out[:, 0] == 0) and np.all(out[:, 300] == 0)
    varying = x.std(axis=0) > 0
    np.testing.assert_allclose(out[:, varying].mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(out[:, varying].std(axis=0), 1, rtol=1e-4)
    # Unseen data in a constant column stays finite too.
    assert np.all(np.isfinite(pipeline(np.full((2, 784), 255, dtype=np.uint8))))


def test_standardize_matches_the_plain_formula_in_float64(rng: np.random.Generator) -> None:
    x = rng.random((9000, 7))  # more than one block of rows
    out = Standardize(per_pixel=True).fit(x)(x)
    np.testing.assert_allclose(out, (x - x.mean(axis=0)) / x.std(axis=0), rtol=1e-12, atol=1e-12)
    out = Standardize().fit(x)(x)
    np.testing.assert_allclose(out, (x - x.mean()) / x.std(), rtol=1e-12, atol=1e-12)


def test_transforms_return_the_input_dtype() -> None:
    x = np.linspace(0, 1, 12, dtype=np.float32).reshape(3, 4)
    for transform in (ScaleTo01(16), Invert(), Standardize(), Standardize(per_pixel=True)):
        assert transform.fit(x)(x).dtype == np.float32


def test_pipeline_checks() -> None:
    with pytest.raises(ConfigError, match="float32 or float64"):
        Pipeline([], dtype=np.int32)
    with pytest.raises(ConfigError, match="per_pixel"):
        build_pipeline(max_value=255, image_shape=(28, 28), per_pixel=True)
    with pytest.raises(ConfigError, match="max_value"):
        ScaleTo01(0)
    with pytest.raises(RuntimeError, match="before fit"):
        Pipeline([Invert()])(np.zeros((2, 3)))
    with pytest.raises(DataError, match="shape"):
        Pipeline([Invert()]).fit(np.zeros((2, 3, 4)))


class Promoting:
    """A faulty transform that multiplies by a float64 array."""

    def fit(self, x: np.ndarray) -> "Promoting":
        return self

    def __call__(self, x: np.ndarray, inplace: bool = False) -> np.ndarray:
        return x * np.ones(x.shape[1])

    def output_shape(self, image_shape):
        return image_shape


def test_pipeline_catches_silent_promotion() -> None:
    with pytest.raises(TypeError, match="Promoting turned float32 into float64"):
        Pipeline([Promoting()], dtype=np.float32).fit(np.zeros((2, 3)))


def _fitted_parameters(pipeline: Pipeline) -> list[np.ndarray]:
    parameters = []
    for transform in pipeline.transforms:
        for name in ("columns", "mean", "std"):
            value = getattr(transform, name, None)
            if value is not None:
                parameters.append(np.array(value, copy=True))
    return parameters


def _dataset(x_train, y_train, x_test, y_test) -> Dataset:
    return Dataset("fit-check", x_train, y_train, x_test, y_test, (6, 6), 3, 255.0)


FIT_OPTIONS = {"crop": 1, "pixel_subset": 12, "standardize": True, "per_pixel": True, "seed": 3}


@settings(max_examples=25, deadline=None)
@given(
    other_data=hnp.arrays(np.uint8, (60, 36)),
    split=st.sampled_from(["holdout", "book"]),
    pick=st.sampled_from(["random", "variance"]),
)
def test_fit_never_sees_validation_or_test_data(
    other_data: np.ndarray, split: str, pick: str
) -> None:
    """Replacing everything except the training rows leaves the fitted pipeline unchanged."""
    rng = np.random.default_rng(0)
    x_train = rng.integers(0, 256, size=(90, 36), dtype=np.uint8)
    y_train = np.tile(np.arange(3), 30)
    x_test = rng.integers(0, 256, size=(60, 36), dtype=np.uint8)
    y_test = np.tile(np.arange(3), 20)
    if split == "holdout":
        # Change the rows the holdout will put into validation (and the test set).
        probe = make_splits(
            _dataset(x_train, y_train, x_test, y_test), rng=np.random.default_rng(1)
        )
        val_rows = np.isin(x_train.view("V36").ravel(), probe.val.x.view("V36").ravel())
        changed_train = x_train.copy()
        changed_train[val_rows] = other_data[: val_rows.sum()]
        changed = _dataset(changed_train, y_train, other_data, y_test)
    else:
        changed = _dataset(x_train, y_train, other_data, y_test)
    original = _dataset(x_train, y_train, x_test, y_test)
    parameters = []
    for dataset in (original, changed):
        splits = make_splits(dataset, split, rng=np.random.default_rng(1))
        pipeline = build_pipeline(max_value=255, image_shape=(6, 6), pixel_pick=pick, **FIT_OPTIONS)
        pipeline.fit(splits.train.x)
        before = _fitted_parameters(pipeline)
        # Applying the pipeline must not refit it.
        pipeline(splits.val.x)
        pipeline(splits.test.x)
        after = _fitted_parameters(pipeline)
        for a, b in zip(before, after, strict=True):
            np.testing.assert_array_equal(a, b)
        parameters.append(after)
    assert len(parameters[0]) == 3
    for a, b in zip(*parameters, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1, 1), (7, 13), (300, 64), (1000, 784)])
@pytest.mark.parametrize("chunk", [1, 5, 1 << 20])
def test_to_float_widens_in_place_exactly(rng, monkeypatch, dtype, shape, chunk) -> None:
    """The in-place widening (input at the end of the output) gives astype's numbers, for any
    chunk size, including chunks that overlap the bytes they read."""
    from digitlab.data import transforms

    monkeypatch.setattr(transforms, "_CHUNK_PIXELS", chunk)
    pixels = rng.integers(0, 256, size=shape, dtype=np.uint8)
    holder = [pixels.copy()]
    out = transforms.to_float(holder, dtype)
    assert holder == []  # taken: the caller holds no reference to the raw pixels any more
    assert out.dtype == dtype and out.flags.c_contiguous and out.shape == shape
    np.testing.assert_array_equal(out, pixels.astype(dtype))


def test_to_float_of_other_dtypes_converts_plainly(rng) -> None:
    from digitlab.data.transforms import to_float

    x = rng.uniform(0, 16, size=(20, 64))  # the 8x8 digits: float64 0..16
    np.testing.assert_array_equal(to_float([x], np.float32), x.astype(np.float32))
    strided = rng.integers(0, 256, size=(20, 64), dtype=np.uint8)[:, ::2]
    np.testing.assert_array_equal(to_float([strided], np.float32), strided.astype(np.float32))


def test_owned_rows_are_transformed_without_a_copy(rng) -> None:
    x = rng.integers(0, 256, size=(50, 64)).astype(np.float32)
    mine = x.copy()
    pipeline = build_pipeline(max_value=255, image_shape=(8, 8), standardize=True)
    out = pipeline.fit_transform(mine, owned=True)
    assert out is mine  # transformed in place
    fresh = build_pipeline(max_value=255, image_shape=(8, 8), standardize=True)
    np.testing.assert_array_equal(fresh.fit_transform(x), out)  # the same numbers as a copy
    assert not np.shares_memory(fresh(x), x)  # not owned: the caller's array is left alone
