"""Fuzz the model, checkpoint and config loaders: every mutated file loads or raises one of
digitlab's own one-line errors, never anything else.

    python scripts/fuzz_files.py [--cases 6000] [--seed 0] [--kinds model,checkpoint,config]

Starts from valid files written by digitlab itself (a small dense model, a small CNN with batch
norm, a checkpoint of an Adam run with monitors, the recipes' TOML configs) and mutates them:
flipped, cut and appended bytes; the JSON header with values of the wrong type or shape, keys
dropped or added; arrays of another shape or dtype, dropped, renamed or added, a pickled object
array; a member's sizes in the zip directory made to lie; a zip bomb (a member inflating far past
its size); random TOML (values of random types, deleted and inserted characters). A model is
loaded with load_model, a checkpoint as `train --resume` does (read_checkpoint, make_config,
restore_session), a config with load_config. Prints the outcome counts per kind; exits 1 at the
first other exception. tests/test_fuzz_files.py runs a fixed-seed slice.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import struct
import sys
import tempfile
import zipfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from digitlab.errors import DigitlabError

RECIPES = Path(__file__).resolve().parents[1] / "recipes"


# --- the valid files the mutations start from ---------------------------------------------------


def seed_files(folder: Path) -> dict[str, list[bytes]]:
    """Valid model files, checkpoints and configs, written by digitlab."""
    from digitlab.core.model import build_model
    from digitlab.core.specs import mlp_spec
    from digitlab.lab.config import make_config
    from digitlab.lab.experiment import run
    from digitlab.lab.modelfile import save_model

    rng = np.random.default_rng(0)
    models = [
        build_model(mlp_spec([6], 3, "relu"), 5, rng),
        build_model(
            [{"type": "reshape", "shape": [1, 4, 4]},
             {"type": "conv2d", "filters": 2, "kernel_size": 3, "bias": False},
             {"type": "batchnorm"}, {"type": "activation", "name": "relu"},
             {"type": "flatten"}, {"type": "dense", "units": 3}],
            16, rng,
        ),
    ]  # fmt: skip
    files: dict[str, list[bytes]] = {"model": [], "checkpoint": [], "config": []}
    for i, model in enumerate(models):
        path = save_model(model, folder / f"model{i}.npz", extra={"config": {"hidden": [6]}})
        files["model"].append(path.read_bytes())
    config = make_config({"epochs": 2, "hidden_sizes": [4], "optimizer": "adam",
                          "train_first": 60, "patience": 3})  # fmt: skip
    run(config, folder / "run", checkpoint_every=1)
    files["checkpoint"].append((folder / "run" / "checkpoint.npz").read_bytes())
    files["model"].append((folder / "run" / "model.npz").read_bytes())
    files["config"] = [p.read_bytes() for p in sorted(RECIPES.glob("*.toml"))]
    return files


# --- mutations -----------------------------------------------------------------------------------


WEIRD: list[Any] = [
    None, True, -1, 0, 2**63, 10**30, -(10**12), 1.5, math.nan, math.inf, "", "x" * 300,
    "sigmoid", [], [1, 2], [[1]], {}, {"a": 1}, {"name": "relu"}, [None], ["x"], [-5, 10**9],
]  # fmt: skip


def random_value(rng: np.random.Generator, depth: int = 0) -> Any:
    if depth < 2 and rng.random() < 0.2:
        return [random_value(rng, depth + 1) for _ in range(rng.integers(0, 4))]
    if depth < 2 and rng.random() < 0.1:
        return {f"k{i}": random_value(rng, depth + 1) for i in range(rng.integers(0, 3))}
    return WEIRD[rng.integers(len(WEIRD))]


def paths(tree: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path (keys and indices) into a JSON tree."""
    found = [prefix]
    if isinstance(tree, dict):
        for key, value in tree.items():
            found += paths(value, (*prefix, key))
    elif isinstance(tree, list):
        for index, value in enumerate(tree[:20]):
            found += paths(value, (*prefix, index))
    return found


def mutate_json(tree: Any, rng: np.random.Generator) -> Any:
    """The tree with one value replaced, one key dropped or one key added."""
    tree = json.loads(json.dumps(tree))
    for _ in range(rng.integers(1, 3)):
        chosen = paths(tree)
        where = chosen[rng.integers(len(chosen))]
        if not where:
            return random_value(rng)
        parent = tree
        for step in where[:-1]:
            parent = parent[step]
        last = where[-1]
        action = rng.integers(3)
        if action == 0 and isinstance(parent, dict):
            del parent[last]
        elif action == 1 and isinstance(parent, dict):
            parent[f"extra{rng.integers(9)}"] = random_value(rng)
        else:
            parent[last] = random_value(rng)
    return tree


def npy(array: np.ndarray, allow_pickle: bool = False) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=allow_pickle)
    return buffer.getvalue()


def members(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def archive(entries: dict[str, bytes], compress: bool) -> bytes:
    buffer = io.BytesIO()
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(buffer, "w", method) as out:
        for name, data in entries.items():
            out.writestr(name, data)
    return buffer.getvalue()


def other_array(array: np.ndarray, rng: np.random.Generator) -> bytes:
    choice = rng.integers(7)
    if choice == 0:
        return npy(array.astype(rng.choice(["float64", "int32", "bool", "uint8", "complex64"])))
    if choice == 1:
        return npy(np.zeros(tuple(int(s) + int(rng.integers(-1, 2)) for s in array.shape)))
    if choice == 2:
        return npy(array.reshape(-1) if array.ndim > 1 else array.reshape(1, -1))
    if choice == 3:
        return npy(np.array([{"evil": 1}], dtype=object), allow_pickle=True)
    if choice == 4:
        return npy(np.full(array.shape, np.nan, array.dtype) if array.dtype.kind == "f" else array)
    if choice == 5:  # a header announcing a huge shape
        return npy(np.zeros(1, np.float32)).replace(b"(1,)", b"(10000000000,)")
    return npy(np.array(7.0))


def mutate_npz(data: bytes, header: str, rng: np.random.Generator) -> bytes:
    kind = rng.integers(8)
    if kind == 0:  # flip bytes
        raw = bytearray(data)
        for _ in range(rng.integers(1, 6)):
            raw[rng.integers(len(raw))] ^= int(rng.integers(1, 256))
        return bytes(raw)
    if kind == 1:  # cut
        return data[: rng.integers(len(data))]
    entries = members(data)
    compress = bool(rng.integers(2))
    if kind in (2, 3):  # the JSON header, mutated
        tree = json.loads(np.load(io.BytesIO(entries[f"{header}.npy"])).tobytes())
        text = json.dumps(mutate_json(tree, rng)).encode()
        if kind == 3 and rng.random() < 0.3:
            text = text[: rng.integers(len(text) + 1)]  # cut JSON
        entries[f"{header}.npy"] = npy(np.frombuffer(text, np.uint8))
    elif kind == 4:  # one array replaced
        names = [n for n in entries if n != f"{header}.npy"]
        name = names[rng.integers(len(names))]
        entries[name] = other_array(np.load(io.BytesIO(entries[name])), rng)
    elif kind == 5:  # arrays dropped, renamed or added
        names = list(entries)
        name = names[rng.integers(len(names))]
        action = rng.integers(3)
        if action == 0:
            del entries[name]
        elif action == 1:
            entries[name.replace(".", "_", 1)] = entries.pop(name)
        else:
            entries[f"extra{rng.integers(9)}.npy"] = npy(np.zeros(3))
    elif kind == 6:  # a zip bomb: a member inflating to far more than its compressed size
        entries[f"bomb{rng.integers(3)}.npy"] = npy(np.zeros(int(rng.integers(1, 4)) << 21, "u1"))
        compress = True
    else:  # a member's sizes in the central directory lie
        raw = bytearray(archive(entries, compress))
        start = raw.find(b"PK\x01\x02", int(rng.integers(len(raw) // 2)))
        if start >= 0:
            field = int(rng.choice([20, 24]))  # compressed or uncompressed size
            struct.pack_into("<I", raw, start + field, int(rng.integers(0, 2**32)))
        return bytes(raw)
    return archive(entries, compress)


def mutate_toml(data: bytes, rng: np.random.Generator) -> bytes:
    from digitlab.lab.config import Config

    text = data.decode()
    kind = rng.integers(4)
    if kind == 0:  # cut, delete or insert characters
        for _ in range(rng.integers(1, 5)):
            at = int(rng.integers(len(text) + 1))
            if rng.random() < 0.5:
                text = text[:at] + text[at + int(rng.integers(1, 8)) :]
            else:
                text = text[:at] + str(rng.choice(list("[]{}=\"'#,.\n \\x0-9e+"))) + text[at:]
        return text.encode(errors="replace")
    if kind == 1:  # random bytes
        return rng.integers(0, 256, int(rng.integers(0, 200)), dtype=np.uint8).tobytes()
    # a random table of config keys with values of random types
    keys = list(Config.model_fields) + ["lr", "hidden", "nonsense"]
    lines = [line for line in text.splitlines() if rng.random() < 0.7 or not line.strip()]
    for _ in range(rng.integers(1, 5)):
        key = keys[rng.integers(len(keys))]
        lines.insert(0, f"{key} = {toml_value(random_value(rng))}")
    return "\n".join(lines).encode()


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return '"none"'
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if math.isinf(value) else repr(value))
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return "{" + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + "}"


# --- the loaders, as digitlab's commands call them ----------------------------------------------


def load_model_file(path: Path) -> None:
    from digitlab.lab.modelfile import load_model

    load_model(path)


def load_checkpoint_file(path: Path) -> None:
    from digitlab.lab.checkpoint import read_checkpoint, restore_session
    from digitlab.lab.config import make_config
    from digitlab.lab.experiment import make_monitors, make_optimizer

    header, arrays = read_checkpoint(path)
    config = make_config(header["config"])
    restore_session(header, arrays, make_optimizer(config), make_monitors(config))


def load_config_file(path: Path) -> None:
    from digitlab.lab.config import load_config

    load_config(path, {})


LOADERS: dict[str, tuple[str, Callable[[Path], None]]] = {
    "model": ("model.npz", load_model_file),
    "checkpoint": ("checkpoint.npz", load_checkpoint_file),
    "config": ("run.toml", load_config_file),
}


def mutate(kind: str, data: bytes, rng: np.random.Generator) -> bytes:
    if kind == "config":
        return mutate_toml(data, rng)
    return mutate_npz(data, "model.json" if kind == "model" else "checkpoint.json", rng)


def fuzz(
    cases: int, seed: int, kinds: list[str], folder: Path, stop_at_crash: bool = True
) -> tuple[Counter[str], list[str]]:
    """Run `cases` mutated files per kind; the outcome counts and the crashes found."""
    rng = np.random.default_rng(seed)
    originals = seed_files(folder)
    outcomes: Counter[str] = Counter()
    crashes: list[str] = []
    for kind in kinds:
        name, load = LOADERS[kind]
        target = folder / "case" / name
        target.parent.mkdir(exist_ok=True)
        for case in range(cases):
            original = originals[kind][rng.integers(len(originals[kind]))]
            data = mutate(kind, original, rng)
            target.write_bytes(data)
            try:
                load(target)
                outcomes[f"{kind} loaded"] += 1
            except DigitlabError as err:
                message = str(err)
                if "\n" in message or not message:
                    crashes.append(f"{kind} case {case}: a message of several lines: {message!r}")
                outcomes[f"{kind} {type(err).__name__}"] += 1
            except Exception as crash:  # what the fuzzer is looking for
                (folder / f"crash-{kind}-{case}.bin").write_bytes(data)
                crashes.append(f"{kind} case {case}: {type(crash).__name__}: {crash}"[:300])
            if crashes and stop_at_crash:
                return outcomes, crashes
    return outcomes, crashes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=6000, help="mutated files per kind")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--kinds", default="model,checkpoint,config")
    parser.add_argument("--keep-going", action="store_true", help="list every crash")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        outcomes, crashes = fuzz(options.cases, options.seed, options.kinds.split(","),
                                 Path(tmp), stop_at_crash=not options.keep_going)  # fmt: skip
    for key, count in sorted(outcomes.items()):
        print(f"{key}: {count}")
    for crash in crashes:
        print(f"CRASH {crash}")
    total = sum(outcomes.values())
    print(f"{total} mutated files, {len(crashes)} exceptions other than digitlab's own")
    sys.exit(1 if crashes else 0)


if __name__ == "__main__":
    main()
