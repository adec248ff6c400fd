"""The IDX reader reads back what the writer wrote and rejects every kind of broken file."""

import gzip
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from digitlab.data import read_idx, write_idx
from digitlab.errors import DataError

IDX_DTYPES = ["u1", "i1", "<i2", ">i2", "<i4", ">i4", "<f4", ">f4", "<f8", ">f8"]


@settings(max_examples=60, deadline=None)
@given(
    array=st.sampled_from(IDX_DTYPES).flatmap(
        lambda dtype: hnp.arrays(
            np.dtype(dtype), hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=5)
        )
    ),
    compressed=st.booleans(),
)
def test_round_trip(array: np.ndarray, compressed: bool) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / ("a.idx.gz" if compressed else "a.idx")
        write_idx(path, array)
        back = read_idx(path)
    assert back.shape == array.shape
    assert back.dtype == array.dtype.newbyteorder("=")
    assert back.dtype.isnative
    np.testing.assert_array_equal(back, array)


@pytest.mark.parametrize(
    "array",
    [
        np.array([0, 255], dtype=np.uint8),
        np.array([-128, 127], dtype=np.int8),
        np.array([-32768, 32767], dtype=np.int16),
        np.array([-(2**31), 2**31 - 1], dtype=np.int32),
        np.array([np.inf, -np.inf, np.nan, -0.0, 1e-45, 3.4e38], dtype=np.float32),
        np.array([np.inf, -np.inf, np.nan, -0.0, 5e-324, 1.7e308], dtype=np.float64),
        np.zeros((2, 3, 4, 5), dtype=np.uint8),
    ],
    ids=lambda array: f"{array.dtype}-{array.ndim}d",
)
def test_round_trip_extremes(tmp_path: Path, array: np.ndarray) -> None:
    write_idx(tmp_path / "a.gz", array)
    back = read_idx(tmp_path / "a.gz")
    assert back.dtype == array.dtype
    np.testing.assert_array_equal(back, array)
    assert np.array_equal(np.signbit(back), np.signbit(array))


def test_known_bytes(tmp_path: Path) -> None:
    write_idx(tmp_path / "a", np.array([[1, 2, 3], [4, 5, 6]], dtype=">i2"))
    expected = bytes([0, 0, 0x0B, 2, 0, 0, 0, 2, 0, 0, 0, 3, 0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6])
    assert (tmp_path / "a").read_bytes() == expected


def test_gzip_detected_by_magic_not_extension(tmp_path: Path) -> None:
    array = np.arange(12, dtype=np.uint8).reshape(3, 4)
    write_idx(tmp_path / "raw", array)
    write_idx(tmp_path / "compressed.gz", array)
    (tmp_path / "raw").rename(tmp_path / "raw-named.gz")
    (tmp_path / "compressed.gz").rename(tmp_path / "compressed-named-raw")
    assert (tmp_path / "compressed-named-raw").read_bytes()[:2] == b"\x1f\x8b"
    np.testing.assert_array_equal(read_idx(tmp_path / "raw-named.gz"), array)
    np.testing.assert_array_equal(read_idx(tmp_path / "compressed-named-raw"), array)


def test_result_is_writable(tmp_path: Path) -> None:
    write_idx(tmp_path / "a", np.arange(4, dtype=np.uint8))
    array = read_idx(tmp_path / "a")
    array[0] = 9
    assert array[0] == 9


def test_write_is_atomic_and_leaves_no_temporary(tmp_path: Path) -> None:
    write_idx(tmp_path / "a.gz", np.arange(4, dtype=np.uint8))
    write_idx(tmp_path / "a.gz", np.arange(6, dtype=np.uint8))
    assert [path.name for path in tmp_path.iterdir()] == ["a.gz"]
    assert read_idx(tmp_path / "a.gz").shape == (6,)


def test_gzip_output_is_deterministic(tmp_path: Path) -> None:
    array = np.arange(100, dtype=np.uint8)
    write_idx(tmp_path / "a.gz", array)
    write_idx(tmp_path / "b.gz", array)
    assert (tmp_path / "a.gz").read_bytes() == (tmp_path / "b.gz").read_bytes()


@pytest.mark.parametrize(
    ("array", "problem"),
    [
        (np.arange(3, dtype=np.int64), "cannot store dtype int64"),
        (np.array([True]), "cannot store dtype bool"),
        (np.array(3, dtype=np.uint8), "array has 0"),
        (np.zeros((1, 1, 1, 1, 1), dtype=np.uint8), "array has 5"),
    ],
)
def test_write_rejects(tmp_path: Path, array: np.ndarray, problem: str) -> None:
    with pytest.raises(DataError, match=problem) as error:
        write_idx(tmp_path / "out.idx", array)
    assert "out.idx" in str(error.value)
    assert list(tmp_path.iterdir()) == []


def test_write_into_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="cannot write"):
        write_idx(tmp_path / "missing" / "a.idx", np.arange(3, dtype=np.uint8))


def _header(code: int, dims: tuple[int, ...]) -> bytes:
    return bytes([0, 0, code, len(dims)]) + np.asarray(dims, dtype=">u4").tobytes()


VALID = _header(0x08, (3, 2, 2)) + bytes(range(12))

BROKEN_FILES = {
    "empty": (b"", "empty file"),
    "short-header": (b"\x00\x00", "too short for the 4-byte IDX header"),
    "wrong-magic": (b"\x12\x34" + VALID[2:], "not an IDX file"),
    "bad-dtype": (b"\x00\x00\x07\x01" + VALID[4:], "unknown IDX dtype code 0x07"),
    "zero-dims": (b"\x00\x00\x08\x00", "0 dimensions"),
    "too-many-dims": (_header(0x08, (1,) * 5) + b"\x00", "5 dimensions"),
    "header-cut": (b"\x00\x00\x08\x03\x00\x00\x00\x03\x00\x00", "header cut short"),
    "truncated": (VALID[:-5], "truncated: header says 3x2x2 = 12 bytes, payload has 7"),
    "trailing": (
        VALID + b"\x00\x00",
        "trailing bytes: header says 3x2x2 = 12 bytes, payload has 14",
    ),
    "dims-disagree": (_header(0x0C, (60000, 28, 28)) + bytes(1000), "= 188160000 bytes"),
    "truncated-gzip": (gzip.compress(VALID * 50)[:40], "truncated gzip stream"),
    "corrupt-gzip": (b"\x1f\x8b" + bytes(30), "corrupt gzip stream"),
    "gzip-of-truncated": (gzip.compress(VALID[:-1]), "truncated"),
}


@pytest.mark.parametrize("case", BROKEN_FILES)
def test_broken_files_raise_data_error_naming_the_file(tmp_path: Path, case: str) -> None:
    content, problem = BROKEN_FILES[case]
    path = tmp_path / f"broken-{case}-idx3-ubyte"
    path.write_bytes(content)
    with pytest.raises(DataError) as error:
        read_idx(path)
    message = str(error.value)
    assert message.startswith(f"{path}: ")
    assert problem in message
    assert "\n" not in message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="nothing-here.*does not exist"):
        read_idx(tmp_path / "nothing-here")


def test_folder_is_not_a_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not a file"):
        read_idx(tmp_path)


def test_real_mnist_files(mnist_folder: Path) -> None:
    train_images = read_idx(mnist_folder / "train-images-idx3-ubyte.gz")
    train_labels = read_idx(mnist_folder / "train-labels-idx1-ubyte.gz")
    test_images = read_idx(mnist_folder / "t10k-images-idx3-ubyte.gz")
    test_labels = read_idx(mnist_folder / "t10k-labels-idx1-ubyte.gz")
    assert train_images.shape == (60000, 28, 28) and train_images.dtype == np.uint8
    assert test_images.shape == (10000, 28, 28) and test_images.dtype == np.uint8
    assert train_labels.shape == (60000,) and test_labels.shape == (10000,)
    assert set(np.unique(train_labels)) == set(range(10))
    assert set(np.unique(test_labels)) == set(range(10))
    assert train_images.max() == 255
