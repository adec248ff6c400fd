"""Image-shape helpers the image layers share (conv.py, pooling.py, batchnorm.py).

An image batch is (n, channels, height, width) by the layer contract. Inside, the image layers
compute channels-last (n, height, width, channels), where a pixel's channels are adjacent in
memory, and hand back a transposed view: the shape is (n, c, h, w) as the contract says, the
memory stays channels-last, and the next image layer transposes it back for free.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from digitlab.errors import ConfigError

Pair = tuple[int, int]


def pair(value: Any, what: str) -> Pair:
    """An int or a [height, width] pair, both > 0."""
    both = [value, value] if isinstance(value, int) else value
    if not (
        isinstance(both, list | tuple)
        and len(both) == 2
        and all(isinstance(v, int) and v > 0 for v in both)
    ):
        raise ConfigError(f"{what} must be a positive int or a pair of them, got {value!r}")
    return both[0], both[1]


def image_shape(in_shape: tuple[int, ...], kind: str) -> tuple[int, int, int]:
    """(channels, height, width), or a ConfigError saying a reshape is missing."""
    if len(in_shape) != 3:
        raise ConfigError(
            f"{kind} needs images (channels, height, width), got shape {in_shape}: add a reshape"
        )
    return in_shape[0], in_shape[1], in_shape[2]


def out_size(size: tuple[int, ...], kernel: Pair, stride: Pair) -> Pair:
    """Output (height, width) of windows `kernel` moved by `stride` over (height, width) `size`."""
    return (size[0] - kernel[0]) // stride[0] + 1, (size[1] - kernel[1]) // stride[1] + 1


def check_fits(size: tuple[int, int], kernel: Pair, what: str) -> None:
    if kernel[0] > size[0] or kernel[1] > size[1]:
        raise ConfigError(f"{what} {kernel} is larger than the (padded) input {size}")


def channels_last(x: np.ndarray) -> np.ndarray:
    return x.transpose(0, 2, 3, 1)


def channels_first(x: np.ndarray) -> np.ndarray:
    return x.transpose(0, 3, 1, 2)


def window(x: np.ndarray, i: int, j: int, stride: Pair, out: Pair) -> np.ndarray:
    """The strided view x[:, i + stride*r, j + stride*s, :] for every output pixel (r, s)."""
    (sh, sw), (oh, ow) = stride, out
    return x[:, i : i + sh * (oh - 1) + 1 : sh, j : j + sw * (ow - 1) + 1 : sw, :]


# A convolution makes its products (z = cols @ w; the input gradient's dz @ w[i, j].T) for this
# many bytes of rows at a time, so that what im2col has just written, or what a product has just
# made, is still in cache when it is used (benchmarks/PERFORMANCE.md). The NumPy code and the
# compiled path (digitlab.fast) cut at the same images, so they call BLAS with the same shapes.
CHUNK_BYTES = 1 << 21


def conv_chunks(n: int, rows: int, width: int, itemsize: int) -> Iterator[tuple[int, int]]:
    """(first, last) ranges over a convolution's n images, about CHUNK_BYTES each (one image at
    least) of the (rows, width) numbers an image has: its im2col rows (width kh*kw*c), or its
    input gradient's kh*kw per-offset products (rows, c), which are as many."""
    step = max(1, CHUNK_BYTES // max(1, rows * width * itemsize))
    for first in range(0, n, step):
        yield first, min(n, first + step)
