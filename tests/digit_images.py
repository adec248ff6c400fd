"""Digits saved as image files the way a user's own folders hold them (any size, mode, format,
white or black paper): helpers for the tests of --data folder and `digitlab predict`."""

from pathlib import Path

import numpy as np

# Image files as a user's own folders hold them: (suffix, mode, white background), cycled
# over by write_digit_images; RGBA means ink as alpha on a transparent background.
IMAGE_VARIANTS = [
    ("png", "L", False),
    ("png", "RGB", True),
    ("png", "RGBA", False),
    ("png", "P", True),
    ("png", "1", True),
    ("jpg", "L", True),
    ("jpg", "RGB", False),
    ("bmp", "RGB", True),
    ("bmp", "1", False),
    ("gif", "P", False),
]
IMAGE_SIZES = [(28, 28), (56, 56), (90, 60), (40, 120), (150, 150)]  # (width, height)


def save_digit(
    path: Path, ink: np.ndarray, mode: str = "L", white: bool = False, size=None
) -> Path:
    """Save a digit (2-D uint8, ink high) as an image file: scaled to `size` (width, height;
    the digit keeps its aspect ratio and sits off-centre), in Pillow `mode`, dark ink on white
    paper when `white`; the format comes from the suffix."""
    from PIL import Image

    digit = Image.fromarray(ink)
    if size is not None:
        side = min(size)
        canvas = Image.new("L", size, 0)
        canvas.paste(digit.resize((side, side), Image.Resampling.BILINEAR), (size[0] - side, 0))
        digit = canvas
    if mode == "RGBA":  # black strokes whose alpha is the ink, on a transparent background
        black = Image.new("L", digit.size, 0)
        image = Image.merge("RGBA", (black, black, black, digit))
    else:
        image = Image.eval(digit, lambda v: 255 - v) if white else digit
        image = image.convert(mode, dither=Image.Dither.NONE) if mode != "L" else image
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path


def write_digit_images(root: Path, images: np.ndarray, labels: np.ndarray) -> list[Path]:
    """One file per image in root/<label>/, cycling through IMAGE_VARIANTS and IMAGE_SIZES."""
    paths = []
    for k, (ink, label) in enumerate(zip(images, labels, strict=True)):
        suffix, mode, white = IMAGE_VARIANTS[k % len(IMAGE_VARIANTS)]
        size = IMAGE_SIZES[(k // len(IMAGE_VARIANTS)) % len(IMAGE_SIZES)]
        path = root / str(label) / f"{k:04d}.{suffix}"
        paths.append(save_digit(path, ink, mode, white, size))
    return paths
