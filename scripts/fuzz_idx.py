"""Fuzz the IDX reader: mutated files must read back or raise DataError, never anything else.

    python scripts/fuzz_idx.py [--runs 20000] [--seed 0]

Starts from small valid files (uint8 images and labels, int16/float32 arrays, raw and gzip) and
applies random mutations: flipped bytes, truncation, appended bytes, edited header fields,
corrupted gzip streams. Prints the outcome counts; exits 1 on any other exception.
"""

from __future__ import annotations

import argparse
import gzip
import sys
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np

from digitlab.data import read_idx, write_idx
from digitlab.errors import DataError


def seeds(folder: Path, rng: np.random.Generator) -> list[bytes]:
    arrays = [
        rng.integers(0, 256, (6, 4, 4), dtype=np.uint8),
        rng.integers(0, 10, 9, dtype=np.uint8),
        rng.integers(-300, 300, (3, 5), dtype=np.int16),
        rng.standard_normal((2, 3)).astype(np.float32),
    ]
    out = []
    for i, array in enumerate(arrays):
        for suffix in ("", ".gz"):
            path = folder / f"seed{i}{suffix}"
            write_idx(path, array)
            out.append(path.read_bytes())
    return out


def mutate(data: bytes, rng: np.random.Generator) -> bytes:
    raw = bytearray(data)
    kind = rng.integers(6)
    if kind == 0 and raw:  # flip some bytes anywhere
        for _ in range(rng.integers(1, 4)):
            raw[rng.integers(len(raw))] ^= int(rng.integers(1, 256))
    elif kind == 1:  # truncate
        raw = raw[: rng.integers(len(raw) + 1)]
    elif kind == 2:  # append junk
        raw += rng.integers(0, 256, rng.integers(1, 16), dtype=np.uint8).tobytes()
    elif kind == 3 and raw[:2] != b"\x1f\x8b" and len(raw) >= 8:  # edit a header field
        position = int(rng.choice([2, 3, 4, 5, 6, 7]))
        raw[position] = int(rng.integers(256))
    elif kind == 4 and raw[:2] == b"\x1f\x8b":  # mutate inside, then re-wrap in gzip
        inner = bytearray(gzip.decompress(bytes(raw)))
        if inner:
            inner[rng.integers(len(inner))] ^= 0xFF
        raw = bytearray(gzip.compress(bytes(inner)))
    else:  # a random short file
        raw = bytearray(rng.integers(0, 256, rng.integers(0, 24), dtype=np.uint8).tobytes())
    return bytes(raw)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=0)
    options = parser.parse_args()
    rng = np.random.default_rng(options.seed)
    outcomes: Counter[str] = Counter()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        originals = seeds(folder, rng)
        target = folder / "case"
        for run in range(options.runs):
            data = mutate(originals[rng.integers(len(originals))], rng)
            target.write_bytes(data)
            try:
                array = read_idx(target)
                outcomes["read"] += 1
                assert isinstance(array, np.ndarray)
            except DataError as err:
                message = str(err)
                assert "\n" not in message and str(target) in message, message
                outcomes["DataError"] += 1
            except Exception as crash:  # what the fuzzer is looking for
                (folder / "crash.bin").write_bytes(data)
                print(f"run {run}: {type(crash).__name__}: {crash}")
                print(f"input: {data[:64]!r}...")
                sys.exit(1)
    total = sum(outcomes.values())
    print(
        f"{total} mutated files: {outcomes['read']} read back, {outcomes['DataError']} DataError, "
        "0 other exceptions"
    )


if __name__ == "__main__":
    main()
