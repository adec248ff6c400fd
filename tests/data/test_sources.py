"""Dataset loaders: IDX folders, the 8x8 digits, MNIST download and cache (no network)."""

import hashlib
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from digitlab.data import (
    DATASETS,
    load_dataset,
    load_digits,
    load_idx_folder,
    load_mnist,
    read_idx,
    sources,
    write_idx,
)
from digitlab.errors import ConfigError, DataError

IdxFolderWriter = Callable[..., Path]  # the idx_folder_writer fixture from conftest.py


@pytest.fixture(autouse=True)
def no_network_no_home_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Keep every test here away from the real mirrors and from ~/.cache."""
    monkeypatch.setattr(sources, "MIRRORS", [(tmp_path / "no-mirror").as_uri() + "/"])
    monkeypatch.setenv("DIGITLAB_CACHE", str(tmp_path / "default-cache"))
    monkeypatch.delenv("DIGITLAB_DATA_DIR", raising=False)  # CI sets it


# load_idx_folder


def test_real_mnist_folder(mnist_folder: Path) -> None:
    dataset = load_idx_folder(mnist_folder)
    assert dataset.x_train.shape == (60000, 784) and dataset.x_train.dtype == np.uint8
    assert dataset.x_test.shape == (10000, 784) and dataset.x_test.dtype == np.uint8
    assert dataset.y_train.shape == (60000,) and dataset.y_train.dtype == np.int64
    assert dataset.y_test.shape == (10000,) and dataset.y_test.dtype == np.int64
    assert dataset.image_shape == (28, 28)
    assert dataset.n_classes == 10
    assert dataset.max_value == 255
    assert dataset.name == "mnist"


def test_tiny_folder(tiny_idx_folder: Path) -> None:
    dataset = load_idx_folder(tiny_idx_folder)
    assert dataset.x_train.shape == (40, 25) and dataset.x_test.shape == (20, 25)
    assert dataset.x_train.dtype == np.uint8 and dataset.y_train.dtype == np.int64
    assert dataset.image_shape == (5, 5)
    assert dataset.n_classes == 3
    assert dataset.name == "tiny"
    images = read_idx(tiny_idx_folder / "train-images-idx3-ubyte.gz")
    np.testing.assert_array_equal(dataset.x_train.reshape(40, 5, 5), images)


@pytest.mark.parametrize(("suffix", "dotted"), [("", False), ("", True), (".gz", True)])
def test_name_variants(tmp_path: Path, idx_folder_writer: IdxFolderWriter, suffix, dotted) -> None:
    folder = idx_folder_writer(tmp_path / "variant", suffix=suffix, dotted=dotted)
    dataset = load_idx_folder(folder, name="custom")
    assert dataset.x_train.shape == (40, 25)
    assert dataset.name == "custom"


def test_count_mismatch_names_both_files(tiny_idx_folder: Path) -> None:
    write_idx(tiny_idx_folder / "train-labels-idx1-ubyte.gz", np.zeros(39, dtype=np.uint8))
    with pytest.raises(DataError) as error:
        load_idx_folder(tiny_idx_folder)
    message = str(error.value)
    assert "train-images-idx3-ubyte.gz has 40 images" in message
    assert "train-labels-idx1-ubyte.gz has 39 labels" in message


def test_missing_files_are_listed(tiny_idx_folder: Path) -> None:
    (tiny_idx_folder / "t10k-labels-idx1-ubyte.gz").unlink()
    (tiny_idx_folder / "train-images-idx3-ubyte.gz").unlink()
    with pytest.raises(DataError) as error:
        load_idx_folder(tiny_idx_folder)
    message = str(error.value)
    assert message.startswith(str(tiny_idx_folder))
    assert "train-images-idx3-ubyte[.gz]" in message
    assert "t10k-labels-idx1-ubyte[.gz]" in message
    assert "train-labels" not in message


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="nowhere: folder does not exist"):
        load_idx_folder(tmp_path / "nowhere")


@pytest.mark.parametrize(
    ("filename", "array", "problem"),
    [
        ("train-images-idx3-ubyte.gz", np.zeros((40, 25), np.uint8), "3-D uint8 images"),
        ("train-images-idx3-ubyte.gz", np.zeros((40, 5, 5), np.int16), "3-D uint8 images"),
        ("t10k-labels-idx1-ubyte.gz", np.zeros((20, 1), np.uint8), "1-D labels"),
        ("t10k-labels-idx1-ubyte.gz", np.zeros(20, np.float32), "integer labels"),
        ("t10k-labels-idx1-ubyte.gz", np.full(20, -1, np.int8), "negative label -1"),
        ("t10k-images-idx3-ubyte.gz", np.zeros((20, 6, 6), np.uint8), "5x5 images but"),
    ],
)
def test_invalid_contents(tiny_idx_folder: Path, filename, array, problem) -> None:
    write_idx(tiny_idx_folder / filename, array)
    with pytest.raises(DataError, match=problem):
        load_idx_folder(tiny_idx_folder)


def test_empty_set(tmp_path: Path, idx_folder_writer: IdxFolderWriter) -> None:
    folder = idx_folder_writer(tmp_path / "empty")
    write_idx(folder / "t10k-images-idx3-ubyte.gz", np.zeros((0, 5, 5), np.uint8))
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", np.zeros(0, np.uint8))
    with pytest.raises(DataError, match="no images"):
        load_idx_folder(folder)


def test_single_class(tmp_path: Path, idx_folder_writer: IdxFolderWriter) -> None:
    folder = idx_folder_writer(tmp_path / "one", n_classes=1)
    with pytest.raises(DataError, match="at least 2"):
        load_idx_folder(folder)


def test_n_classes_counts_test_labels(tiny_idx_folder: Path) -> None:
    labels = read_idx(tiny_idx_folder / "t10k-labels-idx1-ubyte.gz")
    labels[0] = 4
    write_idx(tiny_idx_folder / "t10k-labels-idx1-ubyte.gz", labels)
    assert load_idx_folder(tiny_idx_folder).n_classes == 5


# load_digits


def test_digits() -> None:
    dataset = load_digits()
    assert dataset.x_train.shape[0] + dataset.x_test.shape[0] == 1797
    assert 355 <= dataset.x_test.shape[0] <= 365
    assert dataset.x_train.dtype == np.uint8 and dataset.x_train.shape[1] == 64
    assert dataset.y_train.dtype == np.int64
    assert dataset.x_train.max() == 16
    assert dataset.image_shape == (8, 8) and dataset.n_classes == 10
    assert dataset.max_value == 16
    # Stratified: every class gives about 20% of its examples to the test set.
    train_counts = np.bincount(dataset.y_train, minlength=10)
    test_counts = np.bincount(dataset.y_test, minlength=10)
    fractions = test_counts / (train_counts + test_counts)
    assert np.all(np.abs(fractions - 0.2) < 0.01)
    again = load_digits()
    np.testing.assert_array_equal(again.x_test, dataset.x_test)
    np.testing.assert_array_equal(again.y_train, dataset.y_train)


# load_dataset


def test_load_dataset_names(tiny_idx_folder: Path) -> None:
    assert DATASETS == ("digits", "mnist", "idx", "folder", "csv")
    assert load_dataset("digits").name == "digits"
    assert load_dataset("idx", data_dir=tiny_idx_folder).name == "tiny"
    assert load_dataset("mnist", data_dir=tiny_idx_folder).name == "mnist"


def test_load_dataset_errors(tiny_idx_folder: Path) -> None:
    with pytest.raises(ConfigError, match="digits, mnist, idx"):
        load_dataset("cifar")
    with pytest.raises(ConfigError, match="data-dir"):
        load_dataset("digits", data_dir=tiny_idx_folder)
    with pytest.raises(ConfigError, match="data-dir"):
        load_dataset("idx")
    for name in ("folder", "csv"):
        with pytest.raises(ConfigError, match=f"the {name} dataset needs --data-dir DIR"):
            load_dataset(name)
    with pytest.raises(ConfigError, match="image_size sizes the images of --data folder"):
        load_dataset("idx", data_dir=tiny_idx_folder, image_size=16)


# load_mnist: download, verify, cache


@pytest.fixture
def mirror(tmp_path: Path, idx_folder_writer: IdxFolderWriter, monkeypatch) -> Path:
    """A file:// mirror holding four tiny files named like MNIST's, declared official."""
    folder = idx_folder_writer(tmp_path / "mirror", n_train=30, n_test=12, image_shape=(4, 4))
    checksums = {
        name: hashlib.md5((folder / name).read_bytes()).hexdigest() for name in sources.CHECKSUMS
    }
    monkeypatch.setattr(sources, "CHECKSUMS", checksums)
    monkeypatch.setattr(sources, "MIRRORS", [folder.as_uri() + "/"])
    return folder


@pytest.fixture
def bad_mirror(tmp_path: Path, idx_folder_writer: IdxFolderWriter) -> Path:
    """A mirror whose files differ from the declared checksums."""
    return idx_folder_writer(tmp_path / "bad-mirror", n_train=30, n_test=12, seed=7)


def _cache_contents(cache: Path) -> list[str]:
    return sorted(path.name for path in cache.iterdir()) if cache.exists() else []


def test_download_into_empty_cache(tmp_path: Path, mirror: Path) -> None:
    cache = tmp_path / "cache"
    dataset = load_mnist(cache)
    assert dataset.name == "mnist" and dataset.x_train.shape == (30, 16)
    assert dataset.max_value == 255
    assert _cache_contents(cache) == sorted(sources.CHECKSUMS)


def test_second_load_uses_the_cache(tmp_path: Path, mirror: Path, monkeypatch) -> None:
    cache = tmp_path / "cache"
    load_mnist(cache)

    def no_fetch(url: str, dest: Path, timeout: float) -> None:
        raise AssertionError(f"fetched {url} although the cache is complete")

    monkeypatch.setattr(sources, "_fetch", no_fetch)
    assert load_mnist(cache, download=False).x_test.shape == (12, 16)
    assert load_mnist(cache).x_test.shape == (12, 16)


def test_bad_checksum_then_good_mirror(tmp_path: Path, mirror: Path, bad_mirror: Path) -> None:
    sources.MIRRORS[:] = [bad_mirror.as_uri() + "/", mirror.as_uri() + "/"]
    cache = tmp_path / "cache"
    load_mnist(cache)
    for name in sources.CHECKSUMS:
        assert (cache / name).read_bytes() == (mirror / name).read_bytes()
    assert _cache_contents(cache) == sorted(sources.CHECKSUMS)


def test_only_missing_files_are_downloaded(tmp_path: Path, mirror: Path, monkeypatch) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    shutil.copy(mirror / "train-images-idx3-ubyte.gz", cache)
    fetched = []
    real_fetch = sources._fetch

    def counting_fetch(url: str, dest: Path, timeout: float) -> None:
        fetched.append(url.rsplit("/", 1)[1])
        real_fetch(url, dest, timeout)

    monkeypatch.setattr(sources, "_fetch", counting_fetch)
    load_mnist(cache)
    assert sorted(fetched) == sorted(set(sources.CHECKSUMS) - {"train-images-idx3-ubyte.gz"})


def test_every_mirror_fails(tmp_path: Path, mirror: Path, bad_mirror: Path) -> None:
    sources.MIRRORS[:] = [bad_mirror.as_uri() + "/", (tmp_path / "absent").as_uri() + "/"]
    cache = tmp_path / "cache"
    with pytest.raises(DataError) as error:
        load_mnist(cache)
    message = str(error.value)
    assert message.startswith("could not download train-images-idx3-ubyte.gz from any mirror")
    assert "last error" in message and "absent" in message
    assert "--data-dir" in message and str(cache) in message
    assert "\n" not in message
    assert _cache_contents(cache) == []


def test_checksum_mismatch_on_only_mirror(tmp_path: Path, mirror: Path, bad_mirror: Path) -> None:
    sources.MIRRORS[:] = [bad_mirror.as_uri() + "/"]
    with pytest.raises(DataError, match="has md5 .*, expected"):
        load_mnist(tmp_path / "cache")
    assert _cache_contents(tmp_path / "cache") == []


def test_failure_mid_download_leaves_nothing(tmp_path: Path, mirror: Path, monkeypatch) -> None:
    def broken_fetch(url: str, dest: Path, timeout: float) -> None:
        dest.write_bytes(b"\x1f\x8b partial")
        raise TimeoutError("timed out")

    monkeypatch.setattr(sources, "_fetch", broken_fetch)
    cache = tmp_path / "cache"
    with pytest.raises(DataError, match="TimeoutError: timed out"):
        load_mnist(cache)
    assert _cache_contents(cache) == []


def test_no_download_and_missing_files(tmp_path: Path, mirror: Path, monkeypatch) -> None:
    monkeypatch.setattr(sources, "_fetch", lambda *args: pytest.fail("must not fetch"))
    cache = tmp_path / "cache"
    with pytest.raises(DataError) as error:
        load_mnist(cache, download=False)
    message = str(error.value)
    assert "train-images-idx3-ubyte.gz" in message and "--data-dir" in message
    assert str(cache) in message
    assert not cache.exists()


def test_corrupt_cached_file(tmp_path: Path, mirror: Path, monkeypatch) -> None:
    cache = tmp_path / "cache"
    load_mnist(cache)
    (cache / "t10k-labels-idx1-ubyte.gz").write_bytes(b"not mnist")
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.gz: "):
        load_mnist(cache)
    # with another file missing, the bad one is found before anything is downloaded
    (cache / "train-images-idx3-ubyte.gz").unlink()
    monkeypatch.setattr(sources, "_fetch", lambda *args: pytest.fail("must not fetch"))
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.gz: "):
        load_mnist(cache)


def test_a_copy_put_into_the_cache_is_read_as_it_is(tmp_path: Path, mirror: Path, monkeypatch):
    """Not byte-identical to the official files (another gzip, or rebuilt images): still read."""
    monkeypatch.setattr(sources, "_fetch", lambda *args: pytest.fail("must not fetch"))
    cache = tmp_path / "cache"
    cache.mkdir()
    for name in sources.CHECKSUMS:
        shutil.copy(mirror / name, cache)
    images = read_idx(mirror / "train-images-idx3-ubyte.gz")
    images[0, 0, 0] ^= 1  # one grey level off, as in a copy rebuilt from PNG files
    write_idx(cache / "train-images-idx3-ubyte.gz", images)
    dataset = load_mnist(cache)
    np.testing.assert_array_equal(dataset.x_train.reshape(images.shape), images)


def test_cache_env_var(tmp_path: Path, mirror: Path, monkeypatch) -> None:
    monkeypatch.setenv("DIGITLAB_CACHE", str(tmp_path / "env-cache"))
    assert load_mnist().x_train.shape == (30, 16)
    assert _cache_contents(tmp_path / "env-cache" / "mnist") == sorted(sources.CHECKSUMS)
    assert load_dataset("mnist").name == "mnist"


def test_default_cache_without_env_var(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.delenv("DIGITLAB_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert sources.default_cache_dir() == tmp_path / ".cache" / "digitlab" / "mnist"


# where load_dataset("mnist") finds MNIST: --data-dir, $DIGITLAB_DATA_DIR, the cache, download


def test_mnist_order_data_dir_then_env_then_cache_then_download(
    tmp_path: Path, mirror: Path, idx_folder_writer: IdxFolderWriter, monkeypatch
) -> None:
    given = idx_folder_writer(tmp_path / "given", n_train=21, n_test=11)
    env = idx_folder_writer(tmp_path / "env", n_train=22, n_test=11)
    monkeypatch.setenv("DIGITLAB_DATA_DIR", str(env))
    assert len(load_dataset("mnist", data_dir=given).y_train) == 21
    assert len(load_dataset("mnist").y_train) == 22
    monkeypatch.delenv("DIGITLAB_DATA_DIR")
    fetched = []
    real_fetch = sources._fetch

    def counting_fetch(url: str, dest: Path, timeout: float) -> None:
        fetched.append(url)
        real_fetch(url, dest, timeout)

    monkeypatch.setattr(sources, "_fetch", counting_fetch)
    assert len(load_dataset("mnist").y_train) == 30  # downloaded into the default cache
    assert len(fetched) == 4
    assert len(load_dataset("mnist").y_train) == 30  # from the cache now
    assert len(fetched) == 4


def test_mnist_env_var_naming_a_bad_folder_says_so(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("DIGITLAB_DATA_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(DataError) as error:
        load_dataset("mnist")
    assert str(error.value).startswith(f"DIGITLAB_DATA_DIR={tmp_path / 'nowhere'}: ")


def test_real_mnist_through_the_env_var_alone(mnist_folder: Path, monkeypatch) -> None:
    monkeypatch.setenv("DIGITLAB_DATA_DIR", str(mnist_folder))
    dataset = load_dataset("mnist")
    assert dataset.name == "mnist" and dataset.x_train.shape == (60000, 784)


def test_real_mnist_through_the_cache_alone(mnist_folder: Path, tmp_path: Path) -> None:
    cache = tmp_path / "default-cache" / "mnist"  # $DIGITLAB_CACHE/mnist, set above
    cache.mkdir(parents=True)
    for name in sources.CHECKSUMS:  # the real files pass the official checksums
        (cache / name).symlink_to(mnist_folder / name)
    dataset = load_dataset("mnist")
    assert dataset.name == "mnist" and dataset.x_test.shape == (10000, 784)


# EMNIST's own file names, and its transposed images


def write_emnist(folder: Path, split: str = "digits", seed: int = 0) -> np.ndarray:
    """EMNIST-named files whose images are stored transposed; returns the train images upright."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    upright = {}
    for part, count in (("train", 30), ("test", 12)):
        images = rng.integers(0, 256, size=(count, 4, 6), dtype=np.uint8)  # 4 rows, 6 columns
        labels = (np.arange(count) % 10).astype(np.uint8)
        write_idx(folder / f"emnist-{split}-{part}-images-idx3-ubyte.gz", images.transpose(0, 2, 1))
        write_idx(folder / f"emnist-{split}-{part}-labels-idx1-ubyte.gz", labels)
        upright[part] = images
    return upright["train"]


def test_emnist_files_as_they_are(tmp_path: Path) -> None:
    upright = write_emnist(tmp_path / "emnist")
    dataset = load_dataset("idx", data_dir=tmp_path / "emnist")
    assert dataset.image_shape == (4, 6) and dataset.n_classes == 10
    np.testing.assert_array_equal(dataset.x_train, upright.reshape(30, 24))
    assert dataset.x_test.shape == (12, 24) and dataset.x_train.flags.c_contiguous


def test_emnist_folder_with_several_sets_or_a_missing_file(tmp_path: Path) -> None:
    write_emnist(tmp_path / "all", "digits")
    write_emnist(tmp_path / "all", "letters")
    with pytest.raises(DataError, match=r"several EMNIST sets \(digits, letters\); put the four"):
        load_idx_folder(tmp_path / "all")
    write_emnist(tmp_path / "one")
    (tmp_path / "one" / "emnist-digits-test-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match="missing emnist-digits-test-labels-idx1-ubyte"):
        load_idx_folder(tmp_path / "one")
