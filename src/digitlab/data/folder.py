"""Your own images: a folder with one subfolder of images per class, made into a Dataset.

    DIR/0/*.png, DIR/1/*.png, ...                      a fixed 20% of each class is the test set
    DIR/train/0/*.png, ..., DIR/test/0/*.png, ...      (or training/ and testing/)

Subfolders named 0..9 are those digits (label = the number); with any other names the classes
are the names in sorted order (label i = the i-th name; the Dataset keeps them as
class_names). Every file in a class folder must be an image Pillow reads (PNG, JPEG, BMP, GIF,
...; any size and mode; hidden files are skipped). Each becomes ink (`drawing.ink_from_image`:
alpha for a transparent background, else gray levels with a light background inverted) and
then one side x side image as MNIST's were made (`drawing.prepare_drawing`: the ink's bounding
box scaled into a 20/28 box keeping its aspect ratio, anti-aliased, centred by mass), uint8
0..255. `digitlab predict` prepares a single image with the same `image_row`.

Problems are one-line DataErrors naming the file or folder: a file that is not an image or is
damaged, a blank image, an empty class folder, a name that is not a class, no images at all.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from digitlab.data.drawing import ink_from_image, prepare_drawing
from digitlab.data.sources import Dataset, held_out_test
from digitlab.errors import DataError

IMAGE_SIDE = 28
DIGIT_CLASSES = tuple("0123456789")
PART_NAMES = {"train": ("train", "training"), "test": ("test", "testing")}


def read_image(path: str | os.PathLike[str]) -> np.ndarray:
    """The ink of the image file at `path` (height, width; high = ink, 0..255)."""
    from PIL import Image, UnidentifiedImageError  # Pillow: imported when images are read

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: {'not a file' if path.exists() else 'no such file'}")
    try:
        with Image.open(path) as image:
            image.load()  # decode now: a truncated or damaged file fails here, not later
            return ink_from_image(image)
    except UnidentifiedImageError:
        raise DataError(f"{path}: not an image (Pillow cannot read it)") from None
    except Image.DecompressionBombError as err:
        raise DataError(f"{path}: too large an image ({err})") from None
    except Exception as err:  # Pillow's decoders raise many types on a damaged file
        message = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise DataError(f"{path}: a damaged image ({message})") from None


def image_row(
    path: str | os.PathLike[str],
    image_shape: tuple[int, int],
    max_value: float = 255.0,
    style: str = "mnist",
) -> np.ndarray:
    """The image file at `path` as one raw dataset row (height * width,), prepared like the
    dataset's images (`drawing.prepare_drawing`): whole numbers on 0..max_value."""
    ink = read_image(path)
    if not ink.max() > 0:
        raise DataError(f"{path}: a blank image (no ink on its background)")
    return prepare_drawing(ink, image_shape, max_value, style).reshape(-1)


def _visible(folder: Path) -> list[Path]:
    return sorted(entry for entry in folder.iterdir() if not entry.name.startswith("."))


def class_files(folder: Path) -> dict[str, list[Path]]:
    """Class folder name -> its image files (sorted), checked: some images, none empty."""
    entries = _visible(folder)
    classes = {entry.name: entry for entry in entries if entry.is_dir()}
    if not classes:
        what = "files but no" if any(e.is_file() for e in entries) else "no images and no"
        raise DataError(
            f"{folder}: {what} class subfolders; put each class's images in a subfolder "
            f"named by its label (0, 1, ..., 9)"
        )
    files = {name: _visible(sub) for name, sub in classes.items()}
    if not any(files.values()):
        raise DataError(f"{folder}: no images at all (every class subfolder is empty)")
    for name, paths in files.items():
        if not paths:
            raise DataError(f"{classes[name]}: an empty class folder (no images)")
        nested = [path for path in paths if path.is_dir()]
        if nested:
            raise DataError(f"{nested[0]}: a folder inside a class folder; it holds images only")
    return files


def class_names(names: list[str], folder: Path) -> tuple[list[str], bool]:
    """The classes in label order and whether they are the digits 0..9 (label = the digit).

    Names that are numbers make them digits, and then every name must be one of 0..9.
    """
    if len(names) < 2:
        raise DataError(f"{folder}: only one class folder ({names[0]}); need two or more")
    if any(name.isdigit() for name in names):
        bad = [name for name in names if name not in DIGIT_CLASSES]
        if bad:
            raise DataError(
                f"{folder / bad[0]}: not a class; with digit classes the class folders are "
                f"named 0..9"
            )
        return list(DIGIT_CLASSES[: max(int(name) for name in names) + 1]), True
    return sorted(names), False


def _read_part(
    folder: Path, files: dict[str, list[Path]], classes: list[str], side: int
) -> tuple[np.ndarray, np.ndarray]:
    label_of = {name: label for label, name in enumerate(classes)}
    paths = [(path, label_of[name]) for name in sorted(files) for path in files[name]]
    x = np.empty((len(paths), side * side), np.uint8)
    for row, (path, _) in enumerate(paths):  # one file at a time: decoding is per file anyway
        x[row] = image_row(path, (side, side))
    y = np.array([label for _, label in paths], dtype=np.int64)
    return x, y


def _part_folders(folder: Path) -> dict[str, Path]:
    """DIR/train and DIR/test (or training, testing) when DIR is split so; else {}."""
    found = {
        part: folder / name
        for part, names in PART_NAMES.items()
        for name in names
        if (folder / name).is_dir()
    }
    if not found:
        return {}
    for part, names in PART_NAMES.items():
        if part not in found:
            other = next(iter(found.values()))
            raise DataError(f"{other}: found, but no {names[0]}/ folder beside it")
    for entry in _visible(folder):
        if entry.is_dir() and entry not in found.values():
            raise DataError(
                f"{entry}: not a class; with train/ and test/ the class folders go inside them"
            )
    return found


def load_image_folder(folder: str | os.PathLike[str], *, side: int = IMAGE_SIDE) -> Dataset:
    """A folder of class subfolders of images (split into train/ and test/, or not) as a
    Dataset of side x side images; the dataset is named after the folder."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise DataError(f"{folder}: {'is not a folder' if folder.exists() else 'no such folder'}")
    name = folder.resolve().name
    parts = _part_folders(folder)
    if not parts:
        files = class_files(folder)
        classes, digits = class_names(list(files), folder)
        x, y = _read_part(folder, files, classes, side)
        return held_out_test(
            name, x, y, (side, side), 255.0, len(classes), None if digits else tuple(classes)
        )
    train_files, test_files = class_files(parts["train"]), class_files(parts["test"])
    classes, digits = class_names(list(train_files), parts["train"])
    for test_class in test_files:
        if test_class not in train_files:
            raise DataError(
                f"{parts['test'] / test_class}: not a class of the training images "
                f"({', '.join(sorted(train_files))})"
            )
    x_train, y_train = _read_part(parts["train"], train_files, classes, side)
    x_test, y_test = _read_part(parts["test"], test_files, classes, side)
    return Dataset(
        name=name,
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        image_shape=(side, side),
        n_classes=len(classes),
        max_value=255.0,
        class_names=None if digits else tuple(classes),
    )
