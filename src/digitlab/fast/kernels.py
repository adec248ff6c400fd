"""The compiled kernels (numba); imported only by digitlab.fast, on first use.

Each kernel is the NumPy code of core/ as one loop nest over the batch, reading and writing
channels-last arrays (n, height, width, channels) in place, in one pass where NumPy makes
several. They run on one thread: parallel=True with prange over the batch gave the small CNN
the same step on this 2-core machine (the passes are bound by memory, and OpenBLAS's threads
hold the second core), and was slower when other jobs held the cores (see
benchmarks/PERFORMANCE.md).
Every one does the same arithmetic in the same order as the NumPy code it replaces (comparisons
written as NumPy's maximum decides them, sums over kernel offsets in the same order), so the
numbers are the same, bit for bit. Scalars such as `zero` come in with the arrays' dtype, so
that float32 stays float32 inside.
"""

from __future__ import annotations

from typing import Any

import numba

jit: Any = numba.njit(cache=True)  # compiled on first use, then cached beside this file


@jit
def maxpool_forward(x, kh, kw, sh, sw, out, argmax):
    """out[b, r, s, c] = the max of x's window under (r, s); argmax its offset i * kw + j.

    As np.maximum(out, v) = out if out > v or out is NaN, else v (so of -0 and +0 the second,
    and a NaN spreads). Only a strictly greater v moves the argmax: the first maximum in
    row-major window order. Window offset by offset as the NumPy code goes, each over a row of
    outputs, so that x is read along its rows and the loops over channels vectorise.
    """
    n, oh, ow, channels = out.shape
    for b in range(n):
        for r in range(oh):
            y = r * sh
            out_row, argmax_row = out[b, r], argmax[b, r]
            for s in range(ow):
                for c in range(channels):
                    out_row[s, c] = x[b, y, s * sw, c]
                    argmax_row[s, c] = 0
            for offset in range(1, kh * kw):
                i, j = offset // kw, offset % kw
                x_row, index = x[b, y + i], argmax.dtype.type(offset)
                for s in range(ow):
                    v_s, m_s, a_s = x_row[s * sw + j], out_row[s], argmax_row[s]
                    for c in range(channels):
                        v, m = v_s[c], m_s[c]
                        a_s[c] = index if v > m else a_s[c]
                        m_s[c] = m if (m > v or m != m) else v


@jit
def maxpool_backward(dout, argmax, kh, kw, sh, sw, dx, overlap, clear, zero):
    """dx[window(offset)] (+)= dout * (argmax == offset). Overlapping windows add offset by
    offset, as the NumPy code does (the same sums in the same order); windows that do not
    overlap write each window whole, row by row."""
    n, oh, ow, channels = dout.shape
    one = zero + 1
    for b in range(n):
        if clear:
            dx[b] = zero
        if overlap:
            for offset in range(kh * kw):
                i, j = offset // kw, offset % kw
                for r in range(oh):
                    for s in range(ow):
                        y, x0 = r * sh + i, s * sw + j
                        for c in range(channels):
                            g = dout[b, r, s, c] * (one if argmax[b, r, s, c] == offset else zero)
                            dx[b, y, x0, c] += g
            continue
        for r in range(oh):
            for i in range(kh):
                dx_row = dx[b, r * sh + i]
                for s in range(ow):
                    g_s, a_s = dout[b, r, s], argmax[b, r, s]
                    for j in range(kw):
                        offset, d = i * kw + j, dx_row[s * sw + j]
                        for c in range(channels):
                            d[c] = g_s[c] * (one if a_s[c] == offset else zero)


@jit
def relu_forward(z, out, zero):
    """out = np.maximum(z, zeros) over flat arrays: z where z > 0 or z is NaN, else +0."""
    for k in range(z.size):
        v = z[k]
        out[k] = v if (v > zero or v != v) else zero


@jit
def relu_backward(z, dout, dz, zero):
    """dz = (z > 0) * dout over flat arrays, the multiplication NumPy does (0 * dout kept)."""
    one = zero + 1
    for k in range(z.size):
        dz[k] = (one if z[k] > zero else zero) * dout[k]


@jit
def im2col(x, kh, kw, sh, sw, top, left, cols, zero):
    """cols[b, r, s, i, j, c] = x[b, r*sh + i - top, s*sw + j - left, c], zero in the padding."""
    n, oh, ow = cols.shape[0], cols.shape[1], cols.shape[2]
    height, width, channels = x.shape[1], x.shape[2], x.shape[3]
    for b in range(n):
        for r in range(oh):
            for s in range(ow):
                for i in range(kh):
                    y = r * sh + i - top
                    for j in range(kw):
                        x0 = s * sw + j - left
                        if 0 <= y < height and 0 <= x0 < width:
                            for c in range(channels):
                                cols[b, r, s, i, j, c] = x[b, y, x0, c]
                        else:
                            for c in range(channels):
                                cols[b, r, s, i, j, c] = zero


@jit
def col2im(products, kh, kw, sh, sw, top, left, dx, zero):
    """dx[b, r*sh + i - top, s*sw + j - left, c] += products[i * kw + j, b, r, s, c] from dx = 0,
    kernel offset by offset (the NumPy code's order); what falls in the padding is dropped."""
    n, oh, ow = products.shape[1], products.shape[2], products.shape[3]
    height, width, channels = dx.shape[1], dx.shape[2], dx.shape[3]
    for b in range(n):
        dx[b] = zero
        for i in range(kh):
            for j in range(kw):
                for r in range(oh):
                    y = r * sh + i - top
                    if y < 0 or y >= height:
                        continue
                    for s in range(ow):
                        x0 = s * sw + j - left
                        if 0 <= x0 < width:
                            for c in range(channels):
                                dx[b, y, x0, c] += products[i * kw + j, b, r, s, c]


@jit
def add_bias(z, b):
    """z[row] += b for every row of z (rows, filters), in place."""
    for row in range(z.shape[0]):
        for c in range(z.shape[1]):
            z[row, c] += b[c]
