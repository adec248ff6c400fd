"""Pooling layers for images: maxpool2d and avgpool2d.

x is (n, channels, height, width) over channels-last memory (see core/images.py). Both pools
loop over the kernel offsets only, each offset a strided view of the input; never over samples
or pixels.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from digitlab import fast
from digitlab.core.images import (
    Pair,
    channels_first,
    channels_last,
    check_fits,
    image_shape,
    out_size,
    pair,
    window,
)
from digitlab.core.layers import Shape, layer


class _Pool:
    """What the pools share: a window size and stride, and no parameters."""

    multi_input = False

    def __init__(self, name: str, size: Pair, stride: Pair) -> None:
        self.name = name
        self.size, self.stride = size, stride
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.buffers: dict[str, np.ndarray] = {}
        self.needs_input_grad = True
        self._in_shape: Shape = ()


class MaxPool2D(_Pool):
    """The maximum of each window; backward sends each window's gradient to its maximum."""

    def __init__(self, size: Pair, stride: Pair) -> None:
        super().__init__("maxpool", size, stride)
        self._argmax: np.ndarray | None = None  # (n, oh, ow, c): the window offset of the max

    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        x = channels_last(x)
        if fast.handles(x):  # optional compiled kernel (digitlab.fast): the same numbers
            pooled, offsets = fast.maxpool(x, self.size, self.stride)
            if training:
                self._argmax, self._in_shape = offsets, x.shape
            return channels_first(pooled)
        kh, kw = self.size
        size = out_size(x.shape[1:3], self.size, self.stride)
        out = window(x, 0, 0, self.stride, size).copy()
        argmax = np.zeros(out.shape, np.uint8) if training else None
        for offset in range(1, kh * kw):
            view = window(x, *divmod(offset, kw), self.stride, size)
            if argmax is not None:
                # Ties: only a strictly greater value moves the argmax, so the gradient goes to
                # the first maximum in row-major window order (as in PyTorch), never split.
                # Offsets grow, so max(argmax, offset * greater) is a branch-free update.
                np.maximum(argmax, (view > out) * np.uint8(offset), out=argmax)
            np.maximum(out, view, out=out)
        if training:
            self._argmax, self._in_shape = argmax, x.shape
        return channels_first(out)

    def backward(self, dout: np.ndarray) -> np.ndarray | None:
        assert self._argmax is not None, "backward before a training forward"
        if not self.needs_input_grad:
            return None
        dout = channels_last(dout)
        if fast.handles(dout):  # optional compiled kernel (digitlab.fast): the same numbers
            dx = fast.maxpool_backward(dout, self._argmax, self._in_shape, self.size, self.stride)
            return channels_first(dx)
        kh, kw = self.size
        overlap = self.stride[0] < kh or self.stride[1] < kw
        dx = _gradient_buffer(self._in_shape, self.size, self.stride, dout.dtype)
        for offset in range(kh * kw):
            view = window(dx, *divmod(offset, kw), self.stride, dout.shape[1:3])
            if overlap:
                view += dout * (self._argmax == offset)
            else:  # each input sits in one window at most: write, no need to add
                np.multiply(dout, self._argmax == offset, out=view)
        return channels_first(dx)


class AvgPool2D(_Pool):
    """The mean of each window; backward spreads each window's gradient evenly over it."""

    def __init__(self, size: Pair, stride: Pair) -> None:
        super().__init__("avgpool", size, stride)

    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        x = channels_last(x)
        kh, kw = self.size
        size = out_size(x.shape[1:3], self.size, self.stride)
        out = window(x, 0, 0, self.stride, size).copy()
        for offset in range(1, kh * kw):
            out += window(x, *divmod(offset, kw), self.stride, size)
        out *= x.dtype.type(1 / (kh * kw))
        self._in_shape = x.shape
        return channels_first(out)

    def backward(self, dout: np.ndarray) -> np.ndarray | None:
        if not self.needs_input_grad:
            return None
        kh, kw = self.size
        share = channels_last(dout) * dout.dtype.type(1 / (kh * kw))
        overlap = self.stride[0] < kh or self.stride[1] < kw
        dx = _gradient_buffer(self._in_shape, self.size, self.stride, dout.dtype)
        for offset in range(kh * kw):
            view = window(dx, *divmod(offset, kw), self.stride, share.shape[1:3])
            if overlap:
                view += share
            else:
                view[...] = share
        return channels_first(dx)


def _gradient_buffer(shape: Shape, size: Pair, stride: Pair, dtype: Any) -> np.ndarray:
    """The pool's input gradient (n, h, w, c), zeroed unless the windows tile it exactly, in
    which case every number is about to be written (zeroing would be a wasted pass)."""
    tiled = stride == size and shape[1] % size[0] == 0 and shape[2] % size[1] == 0
    return np.empty(shape, dtype) if tiled else np.zeros(shape, dtype)


def _pool(
    cls: type[MaxPool2D] | type[AvgPool2D], kind: str, spec: dict[str, Any], in_shape: Shape
) -> tuple[Any, Shape]:
    channels, height, width = image_shape(in_shape, kind)
    size = pair(spec["size"], "size")
    stride = pair(spec.get("stride", size), "stride")
    check_fits((height, width), size, "pool size")
    return cls(size, stride), (channels, *out_size((height, width), size, stride))


@layer("maxpool2d")
def _maxpool2d(
    spec: dict[str, Any], in_shape: Shape, rng: np.random.Generator, dtype: Any
) -> tuple[Any, Shape]:
    return _pool(MaxPool2D, "maxpool2d", spec, in_shape)


@layer("avgpool2d")
def _avgpool2d(
    spec: dict[str, Any], in_shape: Shape, rng: np.random.Generator, dtype: Any
) -> tuple[Any, Shape]:
    return _pool(AvgPool2D, "avgpool2d", spec, in_shape)
