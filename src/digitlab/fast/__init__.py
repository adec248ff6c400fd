"""The optional compiled path: numba kernels for the image layers' passes around the products.

The NumPy code in core/ is the reference and stays the code. Where a kernel pays, a core layer
has one marked branch, `if fast.handles(x): return <kernel>`, above its unchanged NumPy form.
The kernels (fast/kernels.py) do the same arithmetic in the same order, so a run gives the same
numbers, bit for bit, with or without them, in one pass over memory where NumPy makes several.

The path is on when numba is installed (`pip install digitlab[fast]`) and the environment
variable DIGITLAB_COMPILED is not "0"; numba is imported only when a kernel is first used, so
importing digitlab stays as quick as before. A kernel handles float32 and float64 arrays of at
least MIN_SIZE numbers; anything else (other dtypes; small arrays, where the call costs more
than the pass saves) takes the NumPy code.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any

import numpy as np

from digitlab.core.images import conv_chunks

Pair = tuple[int, int]

ENVIRONMENT = "DIGITLAB_COMPILED"
MIN_SIZE = 1 << 18  # numbers; below this NumPy is as quick (measured: benchmarks/PERFORMANCE.md)
FLOATS = (np.dtype(np.float32), np.dtype(np.float64))

_on: bool | None = None  # decided on the first call of enabled()
_kernels: ModuleType | None = None


def enabled() -> bool:
    """Whether the compiled path is on: numba is installed and DIGITLAB_COMPILED is not "0"."""
    global _on
    if _on is None:
        wanted = os.environ.get(ENVIRONMENT, "1").strip() != "0"
        _on = wanted and importlib.util.find_spec("numba") is not None
    return _on


def set_enabled(on: bool | None) -> None:
    """Turn the compiled path on or off in this process (None: as the environment says)."""
    global _on
    _on = None if on is None else bool(on) and importlib.util.find_spec("numba") is not None


@contextmanager
def compiled(on: bool) -> Iterator[None]:
    """The compiled path on or off inside the block (tests and benchmarks compare the two)."""
    before = _on
    set_enabled(on)
    try:
        yield
    finally:
        set_enabled(before)


def handles(*arrays: np.ndarray) -> bool:
    """True when the compiled path is on and takes these arrays: float32 or float64, all of one
    dtype, the first of at least MIN_SIZE numbers. Imports numba the first time it says yes."""
    if arrays[0].size < MIN_SIZE or not enabled():
        return False
    dtype = arrays[0].dtype
    if dtype not in FLOATS or any(a.dtype != dtype for a in arrays):
        return False
    return load_kernels() is not None


def load_kernels() -> Any:
    """The kernels module, imported once; None (and the path off) if numba fails to import."""
    global _kernels, _on
    if _kernels is None:
        try:
            from digitlab.fast import kernels as module
        except ImportError:
            _on = False
            return None
        _kernels = module
    return _kernels


def _out_size(height: int, width: int, kernel: Pair, stride: Pair) -> Pair:
    return (height - kernel[0]) // stride[0] + 1, (width - kernel[1]) // stride[1] + 1


def _flat(a: np.ndarray) -> np.ndarray | None:
    """A 1-D view of `a`'s memory in memory order, or None when `a` does not fill it densely."""
    order = np.argsort(a.strides)[::-1]
    dense = a.transpose(order)
    return dense.reshape(-1) if dense.flags.c_contiguous else None


def _dense_like(a: np.ndarray, like: np.ndarray) -> np.ndarray:
    """The flat memory of `a` laid out as `like` (a dense array): a view, or a copy when `a` is
    laid out otherwise (a rare case: an extra pass, the same numbers)."""
    if a.strides != like.strides:
        a = _copy_like(a, like)
    flat = _flat(a)
    assert flat is not None
    return flat


def _copy_like(a: np.ndarray, like: np.ndarray) -> np.ndarray:
    copy = np.empty_like(like)
    copy[...] = a
    return copy


def relu(z: np.ndarray) -> np.ndarray:
    """max(z, 0) in z's memory order (np.empty_like's), as np.maximum(z, zeros) gives it."""
    a = np.empty_like(z)
    load_kernels().relu_forward(_dense_like(z, a), _flat(a), z.dtype.type(0))
    return a


def relu_backward(z: np.ndarray, dout: np.ndarray) -> np.ndarray:
    """(z > 0) * dout in z's memory order."""
    dz = np.empty_like(z)
    load_kernels().relu_backward(
        _dense_like(z, dz), _dense_like(dout, dz), _flat(dz), z.dtype.type(0)
    )
    return dz


def maxpool(x: np.ndarray, size: Pair, stride: Pair) -> tuple[np.ndarray, np.ndarray]:
    """Channels-last x (n, h, w, c): the windows' maxima (n, oh, ow, c) and their offsets."""
    oh, ow = _out_size(x.shape[1], x.shape[2], size, stride)
    out = np.empty((len(x), oh, ow, x.shape[3]), x.dtype)
    argmax = np.empty(out.shape, np.uint8)
    load_kernels().maxpool_forward(x, *size, *stride, out, argmax)
    return out, argmax


def maxpool_backward(
    dout: np.ndarray, argmax: np.ndarray, in_shape: tuple[int, ...], size: Pair, stride: Pair
) -> np.ndarray:
    """The input gradient (n, h, w, c) from channels-last dout and the forward's argmax."""
    overlap = stride[0] < size[0] or stride[1] < size[1]
    tiled = stride == size and in_shape[1] % size[0] == 0 and in_shape[2] % size[1] == 0
    dx = np.empty(in_shape, dout.dtype)
    zero = dout.dtype.type(0)
    load_kernels().maxpool_backward(dout, argmax, *size, *stride, dx, overlap, not tiled, zero)
    return dx


def im2col(
    x: np.ndarray,
    kernel: Pair,
    stride: Pair,
    padding: tuple[Pair, Pair],
    out: np.ndarray | None = None,
) -> np.ndarray:
    """cols (n*oh*ow, kh*kw*c) of unpadded channels-last x, the padding read as zeros; written
    into `out` (n, oh, ow, kh, kw, c) when given."""
    (top, bottom), (left, right) = padding
    oh, ow = _out_size(x.shape[1] + top + bottom, x.shape[2] + left + right, kernel, stride)
    cols = np.empty((len(x), oh, ow, *kernel, x.shape[3]), x.dtype) if out is None else out
    load_kernels().im2col(x, *kernel, *stride, top, left, cols, x.dtype.type(0))
    return cols.reshape(len(x) * oh * ow, -1)


def conv_forward(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None,
    kernel: Pair,
    stride: Pair,
    padding: tuple[Pair, Pair],
) -> tuple[np.ndarray, np.ndarray]:
    """(cols, z) of a convolution of unpadded channels-last x, w (kh*kw*c, filters): im2col,
    z = cols @ w and z += b, a few images at a time (the NumPy code's chunks, core/images.py),
    so that the product reads the rows im2col has just written from cache (cnn_augment's second
    layer, batch 128: 8.4-8.7 -> 7.1 ms)."""
    (top, bottom), (left, right) = padding
    oh, ow = _out_size(x.shape[1] + top + bottom, x.shape[2] + left + right, kernel, stride)
    n, rows = len(x), oh * ow
    cols = np.empty((n, oh, ow, *kernel, x.shape[3]), x.dtype)
    z = np.empty((n * rows, w.shape[1]), x.dtype)
    for first, last in conv_chunks(n, rows, w.shape[0], x.itemsize):  # the NumPy code's chunks
        part = z[first * rows : last * rows]
        np.matmul(im2col(x[first:last], kernel, stride, padding, cols[first:last]), w, out=part)
        if b is not None:
            load_kernels().add_bias(part, b)
    return cols.reshape(n * rows, -1), z


def add_bias(z: np.ndarray, b: np.ndarray) -> None:
    """z += b in place, z (rows, filters) C-ordered (a product's result)."""
    load_kernels().add_bias(z, b)


def conv_input_gradient(
    dz: np.ndarray,
    w: np.ndarray,
    in_shape: tuple[int, ...],
    stride: Pair,
    padding: tuple[Pair, Pair],
) -> np.ndarray:
    """dx (n, h, w, c), unpadded, of a convolution: dz (n*oh*ow, filters) @ w[i, j].T for each
    kernel offset, the products NumPy makes, then added onto their pixels in one pass (in the
    NumPy code's order). A few images at a time (the NumPy code's chunks), so that the
    pass reads them from cache (cnn_augment's second layer, batch 128: 9.6 -> 7.3 ms)."""
    kh, kw, channels, _ = w.shape
    n = in_shape[0]
    (top, bottom), (left, right) = padding
    out = _out_size(in_shape[1] + top + bottom, in_shape[2] + left + right, (kh, kw), stride)
    rows = out[0] * out[1]  # dz's rows per image
    dx = np.empty(in_shape, dz.dtype)
    for first, last in conv_chunks(n, rows, kh * kw * channels, dz.itemsize):
        dz_part = dz[first * rows : last * rows]
        products = np.empty((kh * kw, len(dz_part), channels), dz.dtype)
        for offset in range(kh * kw):
            np.matmul(dz_part, w[divmod(offset, kw)].T, out=products[offset])
        windows = products.reshape(kh * kw, last - first, *out, channels)
        load_kernels().col2im(windows, kh, kw, *stride, top, left, dx[first:last], dz.dtype.type(0))
    return dx
