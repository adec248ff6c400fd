"""Strict reader and writer for the IDX format MNIST is distributed in.

An IDX file is a 4-byte header (two zero bytes, a dtype code, the number of dimensions), then one
big-endian uint32 per dimension, then exactly prod(dims) big-endian items. Either file may be
gzip-compressed; the reader decides by the gzip magic bytes, never by the extension. Every
problem raises DataError with a one-line message that starts with the file's path.
"""

from __future__ import annotations

import gzip
import io
import math
import os
import tempfile
import zlib
from pathlib import Path

import numpy as np

from digitlab.errors import DataError
from digitlab.memory import ensure_fits, size_text

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


# Deflate never expands more than 1032:1, so a gzip file of n bytes holds at most about 1032 n
# bytes: a header announcing more is a lie (a corrupt or hostile file), whatever the machine has.
_MAX_GZIP_RATIO = 1032
_CHUNK = 1 << 16  # bytes per read while streaming the payload
_MAX_EXTRA = 1 << 20  # bytes read past the announced payload, at most


def _open(path: Path) -> tuple[io.BufferedReader, int, bool]:
    """The file opened for reading, its size, and whether its first bytes say gzip."""
    if not path.exists():
        if path.is_symlink():
            raise DataError(f"{path}: broken symbolic link or symlink loop")
        raise DataError(f"{path}: file does not exist")
    if not path.is_file():
        raise DataError(f"{path}: not a file")
    try:
        handle = open(path, "rb")  # noqa: SIM115  (closed by read_idx)
    except OSError as error:
        raise DataError(f"{path}: cannot read: {error.strerror or error}") from error
    try:
        size = os.fstat(handle.fileno()).st_size
        compressed = handle.read(2) == _GZIP_MAGIC
        handle.seek(0)
    except OSError as error:
        handle.close()
        raise DataError(f"{path}: cannot read: {error.strerror or error}") from error
    return handle, size, compressed


def _read(path: Path, handle: io.BufferedIOBase, buffer: memoryview) -> int:
    """Fill `buffer` from the stream; the number of bytes read (fewer at the end of the file)."""
    done = 0
    try:
        while done < len(buffer):
            count = handle.readinto(buffer[done : done + _CHUNK])
            if not count:
                break
            done += count
    except EOFError as error:
        raise DataError(f"{path}: truncated gzip stream ({error})") from error
    except (zlib.error, gzip.BadGzipFile, OSError) as error:
        raise DataError(f"{path}: corrupt gzip stream ({error})") from error
    return done


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX file (raw or gzip) into a native-endian array shaped as its header says.

    The payload is streamed into an array of the size the header announces, never more: a
    header announcing more than the file could hold (over 1032:1 for gzip) or than memory
    holds is an error before anything is allocated, and a payload longer than announced is
    reported after reading one byte past the end.
    """
    path = Path(path)
    handle, file_size, compressed = _open(path)
    with handle:  # closing a GzipFile leaves the file it reads open: close both
        if not compressed:
            return _read_idx(path, handle, file_size)
        with gzip.GzipFile(fileobj=handle, mode="rb") as stream:
            return _read_idx(path, stream, file_size)


def _read_idx(path: Path, handle: io.BufferedIOBase, file_size: int) -> np.ndarray:
    compressed = isinstance(handle, gzip.GzipFile)
    magic = bytearray(4)
    got = _read(path, handle, memoryview(magic))
    if got == 0:
        raise DataError(f"{path}: empty file")
    if got < 4:
        raise DataError(f"{path}: {got} bytes is too short for the 4-byte IDX header")
    if magic[0] != 0 or magic[1] != 0:
        raise DataError(
            f"{path}: not an IDX file: magic starts with {magic[:2].hex(' ')}, expected 00 00"
        )
    code, ndim = magic[2], magic[3]
    if code not in DTYPE_CODES:
        known = ", ".join(f"0x{known_code:02X}" for known_code in DTYPE_CODES)
        raise DataError(f"{path}: unknown IDX dtype code 0x{code:02X} (known: {known})")
    if not 1 <= ndim <= MAX_DIMS:
        raise DataError(f"{path}: header has {ndim} dimensions, expected 1 to {MAX_DIMS}")
    header_size = 4 + 4 * ndim
    sizes = bytearray(4 * ndim)
    got = _read(path, handle, memoryview(sizes))
    if got < len(sizes):
        raise DataError(
            f"{path}: header cut short: {ndim} dimensions need {header_size} header bytes, "
            f"file has {4 + got}"
        )
    dims = tuple(int(size) for size in np.frombuffer(bytes(sizes), dtype=">u4"))
    dtype = DTYPE_CODES[code]
    expected = math.prod(dims) * dtype.itemsize
    shape = "x".join(str(size) for size in dims)
    if not compressed and expected != file_size - header_size:
        payload = file_size - header_size
        problem = "truncated" if payload < expected else "trailing bytes"
        raise DataError(
            f"{path}: {problem}: header says {shape} = {expected} bytes, payload has {payload}"
        )
    if compressed and expected + header_size > _MAX_GZIP_RATIO * file_size + 1024:
        raise DataError(
            f"{path}: header says {shape} = {size_text(expected)}, more than a "
            f"{size_text(file_size)} gzip file can hold (at most {_MAX_GZIP_RATIO}:1)"
        )
    ensure_fits(expected, f"{path}: the header's {shape} array", DataError)
    array = np.empty(dims, dtype=dtype)
    got = _read(path, handle, array.data.cast("B")) if expected else 0
    if got < expected:
        raise DataError(
            f"{path}: truncated: header says {shape} = {expected} bytes, payload has {got}"
        )
    # Read on a little (into one small buffer, so a bomb after the payload costs nothing) to
    # tell a damaged stream, which is reported as such, from a longer payload.
    extra, spare = 0, memoryview(bytearray(_CHUNK))
    while extra < _MAX_EXTRA and (count := _read(path, handle, spare)):
        extra += count
    if extra:
        more = f"{extra}" if extra < _MAX_EXTRA else f"over {extra}"
        raise DataError(
            f"{path}: trailing bytes: header says {shape} = {expected} bytes, "
            f"the payload has {more} more"
        )
    # native-endian; a copy only where the bytes must be swapped
    return array.astype(dtype.newbyteorder("="), copy=False)


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
