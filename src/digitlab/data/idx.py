"""Strict reader and writer for the IDX format MNIST is distributed in.

An IDX file is a 4-byte header (two zero bytes, a dtype code, the number of dimensions), then one
big-endian uint32 per dimension, then exactly prod(dims) big-endian items. Either file may be
gzip-compressed; the reader decides by the gzip magic bytes, never by the extension. Every
problem raises DataError with a one-line message that starts with the file's path.
"""

from __future__ import annotations

import gzip
import math
import os
import tempfile
import zlib
from pathlib import Path

import numpy as np

from digitlab.errors import DataError

# IDX dtype code -> big-endian NumPy dtype.
DTYPE_CODES: dict[int, np.dtype] = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
MAX_DIMS = 4
_GZIP_MAGIC = b"\x1f\x8b"


def _read_bytes(path: Path) -> bytes:
    if not path.exists():
        raise DataError(f"{path}: file does not exist")
    if not path.is_file():
        raise DataError(f"{path}: not a file")
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise DataError(f"{path}: cannot read: {error.strerror or error}") from error
    if raw[:2] != _GZIP_MAGIC:
        return raw
    try:
        return gzip.decompress(raw)
    except EOFError as error:
        raise DataError(f"{path}: truncated gzip stream ({error})") from error
    except (zlib.error, gzip.BadGzipFile, OSError) as error:
        raise DataError(f"{path}: corrupt gzip stream ({error})") from error


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX file (raw or gzip) into a native-endian array shaped as its header says."""
    path = Path(path)
    data = _read_bytes(path)
    if len(data) == 0:
        raise DataError(f"{path}: empty file")
    if len(data) < 4:
        raise DataError(f"{path}: {len(data)} bytes is too short for the 4-byte IDX header")
    if data[0] != 0 or data[1] != 0:
        raise DataError(
            f"{path}: not an IDX file: magic starts with {data[:2].hex(' ')}, expected 00 00"
        )
    code, ndim = data[2], data[3]
    if code not in DTYPE_CODES:
        known = ", ".join(f"0x{known_code:02X}" for known_code in DTYPE_CODES)
        raise DataError(f"{path}: unknown IDX dtype code 0x{code:02X} (known: {known})")
    if not 1 <= ndim <= MAX_DIMS:
        raise DataError(f"{path}: header has {ndim} dimensions, expected 1 to {MAX_DIMS}")
    header_size = 4 + 4 * ndim
    if len(data) < header_size:
        raise DataError(
            f"{path}: header cut short: {ndim} dimensions need {header_size} header bytes, "
            f"file has {len(data)}"
        )
    dims = tuple(int(size) for size in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype = DTYPE_CODES[code]
    expected = math.prod(dims) * dtype.itemsize
    payload = len(data) - header_size
    if payload != expected:
        problem = "truncated" if payload < expected else "trailing bytes"
        shape = "x".join(str(size) for size in dims)
        raise DataError(
            f"{path}: {problem}: header says {shape} = {expected} bytes, payload has {payload}"
        )
    array = np.frombuffer(data, dtype=dtype, offset=header_size).reshape(dims)
    # astype copies, so the result is writable and native-endian.
    return array.astype(dtype.newbyteorder("="))


def _dtype_code(path: Path, dtype: np.dtype) -> int:
    for code, idx_dtype in DTYPE_CODES.items():
        if idx_dtype.kind == dtype.kind and idx_dtype.itemsize == dtype.itemsize:
            return code
    known = ", ".join(str(idx_dtype.newbyteorder("=")) for idx_dtype in DTYPE_CODES.values())
    raise DataError(f"{path}: IDX cannot store dtype {dtype}; convert to one of: {known}")


def write_idx(path: str | os.PathLike[str], array: np.ndarray) -> None:
    """Write an array as IDX (gzip if the path ends in .gz), atomically via a temporary file."""
    path = Path(path)
    array = np.asarray(array)
    code = _dtype_code(path, array.dtype)
    if not 1 <= array.ndim <= MAX_DIMS:
        raise DataError(f"{path}: IDX needs 1 to {MAX_DIMS} dimensions, array has {array.ndim}")
    if max(array.shape) >= 2**32:
        raise DataError(f"{path}: dimension too large for IDX: shape {array.shape}")
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    payload = np.ascontiguousarray(array, dtype=DTYPE_CODES[code]).tobytes()
    try:
        descriptor, temporary = tempfile.mkstemp(
            dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"
        )
    except OSError as error:
        raise DataError(f"{path}: cannot write: {error.strerror or error}") from error
    try:
        with os.fdopen(descriptor, "wb") as file:
            if path.name.endswith(".gz"):
                # mtime=0 and no file name keep the output byte-identical across runs.
                with gzip.GzipFile(filename="", mode="wb", fileobj=file, mtime=0) as compressed:
                    compressed.write(header)
                    compressed.write(payload)
            else:
                file.write(header)
                file.write(payload)
        os.replace(temporary, path)
    except BaseException as error:
        Path(temporary).unlink(missing_ok=True)
        if isinstance(error, OSError):
            raise DataError(f"{path}: cannot write: {error.strerror or error}") from error
        raise
