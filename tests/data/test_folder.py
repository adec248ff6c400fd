"""Your own images (data/folder.py): class subfolders of image files of any size, mode and
format, prepared as MNIST's digits were; every bad folder or file is one line naming it."""

from pathlib import Path

import numpy as np
import pytest
from digit_images import IMAGE_VARIANTS, save_digit, write_digit_images
from PIL import Image

from digitlab.data import load_dataset
from digitlab.data.folder import image_row, load_image_folder, read_image
from digitlab.data.sources import DIGITS_TEST_FRACTION
from digitlab.errors import DataError


def shifted_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """The best correlation of a and b over whole-pixel shifts of a by -1..1 rows and columns
    (centring by mass rounds to a whole pixel: a centre of mass near a pixel's edge may go
    either way)."""
    return max(
        float(np.corrcoef(np.roll(a, (dr, dc), (0, 1)).ravel(), b.ravel())[0, 1])
        for dr in (-1, 0, 1)
        for dc in (-1, 0, 1)
    )


def digit_stroke(height: int = 60, width: int = 40) -> np.ndarray:
    """A synthetic 'L' of ink on black, uint8."""
    ink = np.zeros((height, width), np.uint8)
    ink[5:-5, 8:14] = 255
    ink[-12:-5, 8:-6] = 255
    return ink


def test_an_mnist_digit_drawn_large_and_inverted_comes_back_as_it_was(tmp_path, mnist):
    """MNIST's own preprocessing undone and redone: the first 40 test digits, rendered 2x and
    3x as dark ink on white paper, prepared again give back nearly the same 28x28 images."""
    digits = mnist.x_test[:40].reshape(-1, 28, 28)
    nearest, smooth = [], []
    for k, digit in enumerate(digits):
        paper = Image.fromarray(255 - digit)
        paper.resize((56, 56), Image.Resampling.NEAREST).save(tmp_path / f"{k}n.png")
        paper.resize((84, 84), Image.Resampling.BILINEAR).save(tmp_path / f"{k}b.png")
        again = image_row(tmp_path / f"{k}n.png", (28, 28)).reshape(28, 28)
        assert again.shape == (28, 28) and again.min() >= 0 and again.max() <= 255
        nearest.append((np.abs(again - digit).mean(), shifted_correlation(again, digit)))
        again = image_row(tmp_path / f"{k}b.png", (28, 28)).reshape(28, 28)
        smooth.append(shifted_correlation(again, digit))
    nearest_error, nearest_correlation = np.array(nearest).T
    # pixel doubling: the same digit, to a gray level or two
    assert nearest_error.max() < 2 and nearest_correlation.min() > 0.99
    # bilinear 3x blurs the strokes' edges: still the same digit in the same place
    assert np.median(smooth) > 0.95 and min(smooth) > 0.75


def test_every_kind_of_file_gives_the_digit(tmp_path, mnist):
    """PNG (L, RGB, transparent RGBA, P, 1), JPEG, BMP, GIF; white or black paper; any size
    and aspect: each prepared image is the MNIST digit it was drawn from."""
    digit = mnist.x_train[0].reshape(28, 28)
    for suffix, mode, white in IMAGE_VARIANTS:
        for size in [(28, 28), (90, 60), (40, 120)]:
            path = save_digit(tmp_path / f"{mode}{white}{size}.{suffix}", digit, mode, white, size)
            row = image_row(path, (28, 28)).reshape(28, 28)
            assert row.dtype == np.float64 and (row == np.rint(row)).all()
            assert shifted_correlation(row, digit) > 0.8, (path.name, suffix, mode, white)


def test_16_bit_images_keep_their_gray_levels(tmp_path, mnist):
    """16-bit gray PNGs (ink 0..65535) give what the 8-bit file gives: Pillow's own conversion
    to 8 bits would clip every level above 255 to full ink."""
    digit = mnist.x_train[1].reshape(28, 28)
    Image.fromarray(digit).save(tmp_path / "eight_bit.png")
    expected = image_row(tmp_path / "eight_bit.png", (28, 28))
    for white in (False, True):
        deep = (255 - digit if white else digit).astype(np.uint16) * 257
        Image.fromarray(deep).save(tmp_path / "deep.png")
        assert Image.open(tmp_path / "deep.png").mode.startswith("I")
        np.testing.assert_array_equal(image_row(tmp_path / "deep.png", (28, 28)), expected)


def test_a_folder_of_digit_images_loads_with_a_fixed_test_part(mnist_image_folder, mnist):
    dataset = load_image_folder(mnist_image_folder)
    assert dataset.name == mnist_image_folder.name
    assert dataset.image_shape == (28, 28) and dataset.max_value == 255
    assert dataset.n_classes == 10 and dataset.class_names is None
    assert dataset.x_train.dtype == np.uint8 and dataset.y_train.dtype == np.int64
    n = len(dataset.y_train) + len(dataset.y_test)
    assert n == 400 and len(dataset.y_test) == round(400 * DIGITS_TEST_FRACTION)
    # labels are the folder names; each class keeps its count
    labels = np.concatenate([dataset.y_train, dataset.y_test])
    np.testing.assert_array_equal(np.bincount(labels), np.bincount(mnist.y_train[:400]))
    # the same test part every time (it does not depend on a run's seed)
    again = load_dataset("folder", data_dir=mnist_image_folder)
    np.testing.assert_array_equal(again.x_test, dataset.x_test)
    # every file's row is the one image_row makes of it (what `digitlab predict` reads)
    first = sorted((mnist_image_folder / "0").iterdir())[0]
    rows = np.concatenate([dataset.x_train, dataset.x_test])
    assert (rows == image_row(first, (28, 28)).astype(np.uint8)).all(axis=1).any()


def test_train_and_test_subfolders_and_named_classes_in_sorted_order(tmp_path, mnist):
    digits, labels = mnist.x_train[:30].reshape(-1, 28, 28), mnist.y_train[:30]
    names = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight"])
    keep = labels < 9
    named = names[labels[keep]]
    write_digit_images(tmp_path / "own" / "training", digits[keep][:20], named[:20])
    write_digit_images(tmp_path / "own" / "testing", digits[keep][20:], named[20:])
    dataset = load_image_folder(tmp_path / "own", side=16)
    assert dataset.class_names == tuple(sorted(set(named[:20])))
    assert dataset.image_shape == (16, 16) and dataset.x_train.shape[1] == 256
    assert len(dataset.y_train) == 20 and len(dataset.y_test) == len(named) - 20
    # label i is the i-th name in sorted order
    got = [dataset.class_names[k] for k in dataset.y_test]
    assert sorted(got) == sorted(named[20:])


def test_digit_folders_may_leave_out_classes(tmp_path):
    for label in ("0", "2"):
        for k in range(5):
            save_digit(tmp_path / label / f"{k}.png", digit_stroke(60 + k, 40))
    dataset = load_image_folder(tmp_path)
    assert dataset.n_classes == 3 and set(dataset.y_train) | set(dataset.y_test) == {0, 2}


def message_of(folder: Path, **kwargs) -> str:
    with pytest.raises(DataError) as caught:
        load_image_folder(folder, **kwargs)
    message = str(caught.value)
    assert "\n" not in message
    return message


def two_classes(root: Path) -> Path:
    for label in ("0", "1"):
        for k in range(3):
            save_digit(root / label / f"{k}.png", digit_stroke())
    return root


def test_a_file_that_is_not_an_image_is_named(tmp_path):
    root = two_classes(tmp_path / "own")
    (root / "1" / "notes.txt").write_text("a 1, drawn by me")
    assert message_of(root) == f"{root / '1' / 'notes.txt'}: not an image (Pillow cannot read it)"


def test_a_truncated_image_is_named(tmp_path):
    root = two_classes(tmp_path / "own")
    whole = (root / "0" / "0.png").read_bytes()
    (root / "0" / "0.png").write_bytes(whole[: len(whole) // 2])
    message = message_of(root)
    assert message.startswith(f"{root / '0' / '0.png'}: a damaged image (")
    with pytest.raises(DataError, match="0.png: a damaged image"):
        read_image(root / "0" / "0.png")


def test_a_blank_image_is_named(tmp_path):
    root = two_classes(tmp_path / "own")
    Image.new("RGB", (30, 30), "white").save(root / "1" / "blank.png")
    assert (
        message_of(root) == f"{root / '1' / 'blank.png'}: a blank image (no ink on its background)"
    )


def test_an_empty_class_folder_is_named(tmp_path):
    root = two_classes(tmp_path / "own")
    (root / "7").mkdir()
    assert message_of(root) == f"{root / '7'}: an empty class folder (no images)"


def test_a_name_that_is_not_a_digit_class_is_named(tmp_path):
    root = two_classes(tmp_path / "own")
    save_digit(root / "seven" / "0.png", digit_stroke())
    assert message_of(root).startswith(f"{root / 'seven'}: not a class; with digit classes")
    (root / "seven" / "0.png").rename(root / "seven" / "x.png")
    (root / "seven").rename(root / "12")
    assert message_of(root).startswith(f"{root / '12'}: not a class")


def test_no_images_at_all_is_one_line(tmp_path):
    (tmp_path / "own" / "0").mkdir(parents=True)
    (tmp_path / "own" / "1").mkdir()
    assert message_of(tmp_path / "own") == f"{tmp_path / 'own'}: no images at all " + (
        "(every class subfolder is empty)"
    )
    empty = tmp_path / "empty"
    empty.mkdir()
    assert message_of(empty).startswith(f"{empty}: no images and no class subfolders")
    save_digit(empty / "3.png", digit_stroke())
    assert message_of(empty).startswith(f"{empty}: files but no class subfolders")
    assert message_of(tmp_path / "nowhere") == f"{tmp_path / 'nowhere'}: no such folder"


def test_split_folders_are_checked(tmp_path):
    root = tmp_path / "own"
    two_classes(root / "train")
    assert message_of(root) == f"{root / 'train'}: found, but no test/ folder beside it"
    two_classes(root / "test")
    save_digit(root / "test" / "5" / "0.png", digit_stroke())
    assert message_of(root).startswith(f"{root / 'test' / '5'}: not a class of the training")
    (root / "test" / "5" / "0.png").unlink()
    (root / "test" / "5").rmdir()
    two_classes(root / "3")
    assert message_of(root).startswith(f"{root / '3'}: not a class; with train/ and test/")


def test_one_class_is_not_enough(tmp_path):
    for k in range(3):
        save_digit(tmp_path / "own" / "4" / f"{k}.png", digit_stroke())
    assert message_of(tmp_path / "own").endswith("only one class folder (4); need two or more")
