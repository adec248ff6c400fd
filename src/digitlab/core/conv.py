"""The convolution layer: conv2d, as one matrix product (im2col).

Shapes follow the layer contract and the channels-last memory of core/images.py: x is
(n, channels, height, width) over channels-last memory.

im2col: each output pixel's receptive field, kh x kw pixels of c channels, is copied into one
row of cols (n*oh*ow, kh*kw*c); with the weights w stored as (kh, kw, c, filters), a
(kh*kw*c, filters) matrix, z = cols @ w + b, and backward dw = cols.T @ dz. The input gradient
goes back one kernel offset (i, j) at a time: the pixels under offset (i, j) of every window form
a strided view of x, and receive dz @ w[i, j].T. Python loops run over kernel offsets and over
chunks of a few images (core/images.py's conv_chunks, so that rows are used while in cache),
never over samples or pixels.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from digitlab import fast
from digitlab.core.images import (
    Pair,
    channels_first,
    channels_last,
    check_fits,
    conv_chunks,
    image_shape,
    out_size,
    pair,
    window,
)
from digitlab.core.init import get_initialiser
from digitlab.core.layers import Shape, layer
from digitlab.errors import ConfigError


def im2col(x: np.ndarray, kernel: Pair, stride: Pair, out: Pair) -> np.ndarray:
    """cols (n*oh*ow, kh*kw*c) from x (n, h, w, c): row (b, r, s) is the window under output
    pixel (r, s) of image b, ordered (i, j, channel) like the rows of w (kh*kw*c, filters)."""
    (n, _, _, channels), (kh, kw) = x.shape, kernel
    if channels > 1:
        windows = sliding_window_view(x, kernel, axis=(1, 2))[:, :: stride[0], :: stride[1]]
        return windows.transpose(0, 1, 2, 4, 5, 3).reshape(n * out[0] * out[1], -1)  # copies
    # one channel: copy a kernel offset (rows of ow numbers) at a time, not one number at a
    # time (see benchmarks/PERFORMANCE.md)
    cols = np.empty((n, *out, kh, kw, channels), x.dtype)
    for i in range(kh):
        for j in range(kw):
            cols[:, :, :, i, j] = window(x, i, j, stride, out)
    return cols.reshape(n * out[0] * out[1], -1)


class Conv2D:
    """z = conv(x, w) + b: w (kh, kw, in_channels, filters), b (filters,), x (n, c, h, w).

    Like every deep-learning library's "convolution", this is a cross-correlation: the kernel
    is not flipped. The input gradient is summed per kernel offset, dx[window(i, j)] +=
    dz @ w[i, j].T, rather than through one big dcols matrix, so that each product is added
    while it is still in cache (see benchmarks/PERFORMANCE.md).
    """

    multi_input = False
    init = ""  # the initialiser that drew w, set by the factory (a model summary shows it)

    def __init__(
        self, w: np.ndarray, b: np.ndarray | None, stride: Pair, padding: tuple[Pair, Pair]
    ) -> None:
        self.name = "conv"
        self.params = {"w": w} if b is None else {"w": w, "b": b}
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        self.buffers: dict[str, np.ndarray] = {}
        self.needs_input_grad = True
        self.stride, self.padding = stride, padding
        self._cols: np.ndarray | None = None
        self._padded_shape: Shape = ()

    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        kh, kw, _, filters = self.params["w"].shape
        (top, bottom), (left, right) = self.padding
        x = channels_last(x)
        n, channels = len(x), x.shape[3]
        padded = (n, x.shape[1] + top + bottom, x.shape[2] + left + right, channels)
        out = out_size(padded[1:3], (kh, kw), self.stride)
        w, b = self.params["w"].reshape(-1, filters), self.params.get("b")
        if channels > 1 and fast.handles(x, w):
            # optional compiled path (digitlab.fast): im2col, the product and the bias a few
            # images at a time, the padding read as zeros; the same numbers
            cols, z = fast.conv_forward(x, w, b, (kh, kw), self.stride, self.padding)
        else:
            if top or bottom or left or right:
                x = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))
            cols = im2col(x, (kh, kw), self.stride, out)
            z = np.empty((len(cols), filters), np.result_type(cols, w))  # (n*oh*ow, filters)
            rows = out[0] * out[1]  # cols's rows per image
            for first, last in conv_chunks(n, rows, cols.shape[1], cols.itemsize):  # fast's too
                np.matmul(cols[first * rows : last * rows], w, out=z[first * rows : last * rows])
            if b is not None:
                if fast.handles(z, b):  # optional compiled kernel: the same sums
                    fast.add_bias(z, b)
                else:
                    z += b
        if training:
            self._cols, self._padded_shape = cols, padded
        return channels_first(z.reshape(n, *out, filters))

    def backward(self, dout: np.ndarray) -> np.ndarray | None:
        assert self._cols is not None, "backward before a training forward"
        w = self.params["w"]
        kh, kw, channels, filters = w.shape
        n, oh, ow = dout.shape[0], dout.shape[2], dout.shape[3]
        dz = channels_last(dout).reshape(-1, filters)  # a view when dout is channels-last
        np.matmul(self._cols.T, dz, out=self.grads["w"].reshape(-1, filters))
        if "b" in self.params:
            # db = the sum of dz's rows, as a product with ones (see benchmarks/PERFORMANCE.md)
            np.matmul(np.ones(len(dz), dz.dtype), dz, out=self.grads["b"])
        if not self.needs_input_grad:
            return None
        if fast.handles(dz):  # optional compiled kernel (digitlab.fast): the same numbers
            dx = fast.conv_input_gradient(dz, w, self._input_shape(), self.stride, self.padding)
            return channels_first(dx)
        dx = np.zeros(self._padded_shape, dout.dtype)
        rows = oh * ow  # dz's rows per image
        for first, last in conv_chunks(n, rows, kh * kw * channels, dz.itemsize):
            part, dz_part = dx[first:last], dz[first * rows : last * rows]
            for i in range(kh):
                for j in range(kw):
                    window(part, i, j, self.stride, (oh, ow))[...] += (dz_part @ w[i, j].T).reshape(
                        last - first, oh, ow, channels
                    )
        (top, bottom), (left, right) = self.padding
        dx = dx[:, top : dx.shape[1] - bottom, left : dx.shape[2] - right]
        return channels_first(dx)

    def _input_shape(self) -> Shape:
        """The channels-last input's shape before padding."""
        n, height, width, channels = self._padded_shape
        (top, bottom), (left, right) = self.padding
        return n, height - top - bottom, width - left - right, channels


@layer("conv2d")
def _conv2d(
    spec: dict[str, Any], in_shape: Shape, rng: np.random.Generator, dtype: Any
) -> tuple[Any, Shape]:
    channels, height, width = image_shape(in_shape, "conv2d")
    filters = int(spec["filters"])
    if filters <= 0:
        raise ConfigError(f"conv2d needs filters > 0, got {filters}")
    kh, kw = pair(spec["kernel_size"], "kernel_size")
    stride = pair(spec.get("stride", 1), "stride")
    padding = spec.get("padding", 0)
    if padding == "same":
        if stride != (1, 1):
            raise ConfigError(f'padding "same" needs stride 1, got {stride}')
        # an even kernel puts the extra row and column at the bottom and right
        pads = ((kh - 1) // 2, kh // 2), ((kw - 1) // 2, kw // 2)
    elif isinstance(padding, int) and padding >= 0:
        pads = (padding, padding), (padding, padding)
    else:
        raise ConfigError(f'padding must be an int >= 0 or "same", got {padding!r}')
    padded = (height + sum(pads[0]), width + sum(pads[1]))
    check_fits(padded, (kh, kw), "kernel_size")
    init_name = spec.get("init", "he")
    w = get_initialiser(init_name)(rng, kh * kw * channels, filters, dtype)
    w = w.reshape(kh, kw, channels, filters)
    b = np.zeros(filters, dtype) if spec.get("bias", True) else None
    conv = Conv2D(w, b, stride, pads)
    conv.init = init_name
    return conv, (filters, *out_size(padded, (kh, kw), stride))
