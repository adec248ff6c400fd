"""Datasets: the bundled 8x8 digits, MNIST (a folder, downloaded, verified, cached), any IDX
folder, a folder of your own images (folder.py) and the CSV form (csvdata.py).

Every loader returns a Dataset holding raw pixels as uint8 rows (n, h*w) and int64 labels;
scaling and other transforms live in transforms.py. Nothing is loaded at import time.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import shutil
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from digitlab.data.idx import read_idx
from digitlab.data.splits import stratified_holdout
from digitlab.errors import ConfigError, DataError

DATASETS = ("digits", "mnist", "idx", "folder", "csv")

# The 8x8 digits (and a folder or CSV file without a test part) have no official test set;
# this seed fixes ours, whatever the run's seed.
DIGITS_TEST_SEED = 0
DIGITS_TEST_FRACTION = 0.2

MIRRORS = [
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
]
# md5 of the official gzip files.
CHECKSUMS = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
DOWNLOAD_TIMEOUT = 60.0  # seconds without data before a mirror counts as failed

# Role -> accepted file names in an IDX folder, in order of preference.
_IDX_NAMES = {
    "train images": ("train-images-idx3-ubyte", "train-images.idx3-ubyte"),
    "train labels": ("train-labels-idx1-ubyte", "train-labels.idx1-ubyte"),
    "test images": ("t10k-images-idx3-ubyte", "t10k-images.idx3-ubyte"),
    "test labels": ("t10k-labels-idx1-ubyte", "t10k-labels.idx1-ubyte"),
}
_MNIST_FILES = {
    "train images": "train-images-idx3-ubyte.gz",
    "train labels": "train-labels-idx1-ubyte.gz",
    "test images": "t10k-images-idx3-ubyte.gz",
    "test labels": "t10k-labels-idx1-ubyte.gz",
}


@dataclass(frozen=True)
class Dataset:
    """Raw images as flattened uint8 rows (n, h*w) and int64 labels (n,)."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    image_shape: tuple[int, int]
    n_classes: int
    max_value: float  # the largest possible pixel value, for scaling to [0, 1]
    class_names: tuple[str, ...] | None = None  # label i's name; None: the labels are digits


def held_out_test(
    name: str,
    x: np.ndarray,
    y: np.ndarray,
    image_shape: tuple[int, int],
    max_value: float,
    n_classes: int,
    class_names: tuple[str, ...] | None = None,
) -> Dataset:
    """A Dataset whose test set is a stratified DIGITS_TEST_FRACTION of (x, y), drawn with
    DIGITS_TEST_SEED: the same test images whatever the run's seed."""
    train_index, test_index = stratified_holdout(
        y, DIGITS_TEST_FRACTION, np.random.default_rng(DIGITS_TEST_SEED)
    )
    return Dataset(
        name=name,
        x_train=x[train_index],
        y_train=y[train_index],
        x_test=x[test_index],
        y_test=y[test_index],
        image_shape=image_shape,
        n_classes=n_classes,
        max_value=max_value,
        class_names=class_names,
    )


def load_digits() -> Dataset:
    """scikit-learn's bundled 8x8 digits (1,797 images, pixels 0..16), 20% held out as test."""
    from sklearn.datasets import load_digits as sklearn_load_digits  # slow import, load lazily

    bunch = sklearn_load_digits()
    x = bunch.data.astype(np.uint8)
    y = bunch.target.astype(np.int64)
    return held_out_test("digits", x, y, (8, 8), 16.0, 10)


# EMNIST (Cohen et al. 2017, https://arxiv.org/abs/1702.05373) names its files
# emnist-<set>-{train,test}-{images-idx3,labels-idx1}-ubyte and stores each image transposed.
_EMNIST = re.compile(r"emnist-(\w+)-train-images-idx3-ubyte(\.gz)?")
_EMNIST_NAMES = {
    "train images": "train-images-idx3-ubyte",
    "train labels": "train-labels-idx1-ubyte",
    "test images": "test-images-idx3-ubyte",
    "test labels": "test-labels-idx1-ubyte",
}


def _find_emnist_files(folder: Path) -> dict[str, Path] | None:
    """The four files of the one EMNIST set in `folder`, or None if it holds none."""
    sets = sorted({m.group(1) for p in folder.iterdir() if (m := _EMNIST.fullmatch(p.name))})
    if not sets:
        return None
    if len(sets) > 1:
        raise DataError(
            f"{folder}: holds several EMNIST sets ({', '.join(sets)}); put the four files of "
            f"the one you want in a folder of their own"
        )
    found, missing = {}, []
    for role, name in _EMNIST_NAMES.items():
        stem = f"emnist-{sets[0]}-{name}"
        present = [folder / (stem + s) for s in (".gz", "") if (folder / (stem + s)).is_file()]
        if present:
            found[role] = present[0]
        else:
            missing.append(f"{stem}[.gz]")
    if missing:
        raise DataError(f"{folder}: missing {', '.join(missing)}")
    return found


def _find_idx_files(folder: Path) -> dict[str, Path]:
    if not folder.is_dir():
        problem = "is not a folder" if folder.exists() else "folder does not exist"
        raise DataError(f"{folder}: {problem}")
    found: dict[str, Path] = {}
    missing = []
    for role, names in _IDX_NAMES.items():
        candidates = [folder / (name + suffix) for name in names for suffix in (".gz", "")]
        present = [path for path in candidates if path.is_file()]
        if present:
            found[role] = present[0]
        else:
            missing.append(f"{names[0]}[.gz]")
    if missing:
        raise DataError(f"{folder}: missing {', '.join(missing)}")
    return found


def _load_idx_files(name: str, files: dict[str, Path], transposed: bool = False) -> Dataset:
    arrays = {role: read_idx(path) for role, path in files.items()}
    for part in ("train", "test"):
        images_file, labels_file = files[f"{part} images"], files[f"{part} labels"]
        images, labels = arrays[f"{part} images"], arrays[f"{part} labels"]
        if images.ndim != 3 or images.dtype != np.uint8:
            raise DataError(
                f"{images_file}: expected 3-D uint8 images, got {images.ndim}-D {images.dtype}"
            )
        if labels.ndim != 1:
            raise DataError(f"{labels_file}: expected 1-D labels, got shape {labels.shape}")
        if not np.issubdtype(labels.dtype, np.integer):
            raise DataError(f"{labels_file}: expected integer labels, got {labels.dtype}")
        if images.shape[0] != labels.shape[0]:
            raise DataError(
                f"{images_file} has {images.shape[0]} images but {labels_file} has "
                f"{labels.shape[0]} labels"
            )
        if images.shape[0] == 0:
            raise DataError(f"{images_file}: no images")
        if labels.min() < 0:
            raise DataError(f"{labels_file}: negative label {labels.min()}")
    train_images, test_images = arrays["train images"], arrays["test images"]
    if transposed:  # EMNIST: each image is stored column by column
        train_images = np.ascontiguousarray(train_images.transpose(0, 2, 1))
        test_images = np.ascontiguousarray(test_images.transpose(0, 2, 1))
    if train_images.shape[1:] != test_images.shape[1:]:
        raise DataError(
            f"{files['train images']} holds {train_images.shape[1]}x{train_images.shape[2]} "
            f"images but {files['test images']} holds "
            f"{test_images.shape[1]}x{test_images.shape[2]}"
        )
    y_train = arrays["train labels"].astype(np.int64)
    y_test = arrays["test labels"].astype(np.int64)
    n_classes = int(max(y_train.max(), y_test.max())) + 1
    if n_classes < 2:
        raise DataError(f"{files['train labels']}: labels hold only class 0, need at least 2")
    height, width = int(train_images.shape[1]), int(train_images.shape[2])
    return Dataset(
        name=name,
        x_train=train_images.reshape(train_images.shape[0], height * width),
        y_train=y_train,
        x_test=test_images.reshape(test_images.shape[0], height * width),
        y_test=y_test,
        image_shape=(height, width),
        n_classes=n_classes,
        max_value=255.0,
    )


def load_idx_folder(folder: str | os.PathLike[str], *, name: str | None = None) -> Dataset:
    """Any folder holding the four MNIST-style IDX files (raw or gzip); no checksums.

    Accepts train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and
    t10k-labels-idx1-ubyte, each optionally ending in .gz and with '.idx' instead of '-idx';
    or the four files of one EMNIST set as EMNIST names them (emnist-digits-train-images-idx3-
    ubyte.gz, ...), whose images are transposed back. The dataset is named after the folder
    unless `name` is given.
    """
    folder = Path(folder).expanduser()
    name = name or folder.resolve().name
    emnist = _find_emnist_files(folder) if folder.is_dir() else None
    if emnist is not None:
        return _load_idx_files(name, emnist, transposed=True)
    return _load_idx_files(name, _find_idx_files(folder))


def default_cache_dir() -> Path:
    """$DIGITLAB_CACHE/mnist if that variable is set, else ~/.cache/digitlab/mnist."""
    root = os.environ.get("DIGITLAB_CACHE")
    if root:
        return Path(root).expanduser() / "mnist"
    return Path.home() / ".cache" / "digitlab" / "mnist"


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _fetch(url: str, dest: Path, timeout: float) -> None:
    """Stream `url` into the file `dest`; raise on any network or file problem."""
    with urllib.request.urlopen(url, timeout=timeout) as response, dest.open("wb") as file:
        shutil.copyfileobj(response, file, 1 << 20)


def _one_line(error: BaseException) -> str:
    return " ".join(f"{type(error).__name__}: {error}".split())


def _download(filename: str, cache: Path, timeout: float) -> None:
    """Fetch one file from the first mirror that serves it with the right md5, then move it in.

    Only a verified file ever reaches its final name; the temporary file is always removed.
    """
    last_error = "no mirrors configured"
    for mirror in MIRRORS:
        url = mirror + filename
        try:
            descriptor, temporary_name = tempfile.mkstemp(
                dir=cache, prefix=f".{filename}.", suffix=".part"
            )
        except OSError as error:
            raise DataError(f"{cache}: cannot write to the cache folder: {error}") from error
        os.close(descriptor)
        temporary = Path(temporary_name)
        try:
            _fetch(url, temporary, timeout)
            checksum = _md5(temporary)
            if checksum == CHECKSUMS[filename]:
                os.replace(temporary, cache / filename)
                return
            last_error = f"{url} has md5 {checksum}, expected {CHECKSUMS[filename]}"
        except (OSError, ValueError, http.client.HTTPException) as error:
            last_error = f"{url}: {_one_line(error)}"
        finally:
            temporary.unlink(missing_ok=True)
    raise DataError(
        f"could not download {filename} from any mirror (last error: {last_error}). "
        f"If this machine is offline, download the four MNIST files elsewhere and set "
        f"DIGITLAB_DATA_DIR to their folder (or pass --data-dir DIR), or put them in {cache}"
    )


def load_mnist(
    cache_dir: str | os.PathLike[str] | None = None, *, download: bool = True
) -> Dataset:
    """MNIST from the cache folder, downloading and md5-verifying whatever is missing.

    The cache folder is `cache_dir`, else $DIGITLAB_CACHE/mnist, else ~/.cache/digitlab/mnist.
    Only verified downloads ever reach their final name there; files a user put there (a copy
    made elsewhere, perhaps not byte-identical to the official ones) are read as they are, by
    the strict IDX reader (gzip's CRC catches a damaged file).
    """
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    files = {role: cache / filename for role, filename in _MNIST_FILES.items()}
    missing = [path.name for path in files.values() if not path.is_file()]
    if missing and not download:
        raise DataError(
            f"{cache}: missing {', '.join(missing)} and downloading is off. Download the four "
            f"MNIST files elsewhere and set DIGITLAB_DATA_DIR to their folder (or pass "
            f"--data-dir DIR), or put them in {cache}"
        )
    if missing:
        for path in files.values():  # read what is cached first, so a bad file fails fast
            if path.name not in missing:
                read_idx(path)
        try:
            cache.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise DataError(f"{cache}: cannot create the cache folder: {error}") from error
    for filename in missing:
        _download(filename, cache, DOWNLOAD_TIMEOUT)
    return _load_idx_files("mnist", files)


DATA_DIR_VARIABLE = "DIGITLAB_DATA_DIR"


def load_dataset(
    name: str,
    data_dir: str | os.PathLike[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    image_size: int | None = None,
) -> Dataset:
    """Load a dataset by name: 'digits', 'mnist', or from data_dir 'idx', 'folder' (images
    made image_size x image_size, 28 by default) or 'csv'.

    MNIST comes from the first of: `data_dir`, the folder $DIGITLAB_DATA_DIR names, the cache
    (downloading what is missing into it).
    """
    if image_size is not None and name != "folder":
        raise ConfigError("image_size sizes the images of --data folder; drop it here")
    if name in ("folder", "csv"):
        if data_dir is None:
            raise ConfigError(f"the {name} dataset needs --data-dir DIR")
        if name == "csv":
            from digitlab.data.csvdata import load_csv

            return load_csv(data_dir)
        from digitlab.data.folder import IMAGE_SIDE, load_image_folder

        return load_image_folder(data_dir, side=image_size or IMAGE_SIDE)
    if name == "digits":
        if data_dir is not None:
            raise ConfigError("the digits dataset is bundled with scikit-learn; drop --data-dir")
        return load_digits()
    if name == "mnist":
        if data_dir is not None:
            return load_idx_folder(data_dir, name="mnist")
        from_environment = os.environ.get(DATA_DIR_VARIABLE)
        if from_environment:
            try:
                return load_idx_folder(from_environment, name="mnist")
            except DataError as error:
                raise DataError(f"{DATA_DIR_VARIABLE}={from_environment}: {error}") from None
        return load_mnist(cache_dir)
    if name == "idx":
        if data_dir is None:
            raise ConfigError("the idx dataset needs --data-dir, a folder with the four IDX files")
        return load_idx_folder(data_dir)
    raise ConfigError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}")
