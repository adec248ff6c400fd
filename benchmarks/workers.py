"""What the speed benchmarks share: MNIST through digitlab's own loader, the BLAS kernel in
use, a timer of training's phases, and worker processes.

Each framework lives in its own persistent worker process (the benchmark script run again with
`--child ...`), which holds the data and one model and answers JSON commands on stdin, one line
each, so that neither framework's idle BLAS or OpenMP threads spin on the cores while the other
one runs; the parent alternates between the workers.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import numpy as np

DATA_VARIABLE = "DIGITLAB_DATA_DIR"


def add_data_dir(parser: argparse.ArgumentParser) -> None:
    """--data-dir DIR: the four MNIST files, by default $DIGITLAB_DATA_DIR (required if unset)."""
    default = os.environ.get(DATA_VARIABLE)
    parser.add_argument(
        "--data-dir",
        type=_folder,
        default=default,
        required=default is None,
        help=f"folder of the four MNIST IDX files [${DATA_VARIABLE}]",
    )


def _folder(value: str) -> str:
    if not os.path.isdir(value):
        raise argparse.ArgumentTypeError(f"{value}: no such folder")
    return value


def load_mnist(data_dir: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Standardised float32 MNIST (train images, labels, test images, labels)."""
    from digitlab.data import build_pipeline, load_idx_folder
    from digitlab.errors import DigitlabError

    try:
        dataset = load_idx_folder(data_dir)
    except DigitlabError as err:  # a missing folder or file, a corrupt one: one line, no traceback
        raise SystemExit(f"{os.path.basename(sys.argv[0])}: {err}") from None
    pipeline = build_pipeline(
        max_value=dataset.max_value, image_shape=dataset.image_shape, standardize=True
    )
    x_train = pipeline.fit_transform(dataset.x_train)
    return x_train, dataset.y_train, pipeline(dataset.x_test), dataset.y_test


def blas_kernel() -> str:
    """The BLAS library, version, kernel and thread count NumPy uses, per threadpoolctl."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "unknown (pip install threadpoolctl)"
    infos = [i for i in threadpool_info() if i.get("user_api") == "blas"]
    return ", ".join(
        f"{i.get('internal_api')} {i.get('version')} {i.get('architecture')} "
        f"{i.get('num_threads')} threads"
        for i in infos
    )


class PhaseTimer:
    """Seconds spent in each phase of digitlab's training, while `fit` itself runs: each layer's
    forward and backward ("dense1 forward"), the loss ("loss"), the optimizer's step
    ("optimizer") and the monitors ("monitors"), by wrapping them. `patch` times a function of a
    module too (an im2col); `restore` puts back what was patched in modules and registries."""

    def __init__(
        self, model: Any, optimizer: Any, monitors: list[Any], loss: str = "softmax_cross_entropy"
    ) -> None:
        from digitlab.core import losses

        self.spent: dict[str, float] = defaultdict(float)
        self._undo: list[Callable[[], None]] = []
        for node in model.nodes:
            for method in ("forward", "backward"):
                self._wrap(node.layer, method, f"{node.name} {method}")
        self._wrap(optimizer, "step", "optimizer")
        for monitor in monitors:
            for method in ("before_update", "after_update", "end_epoch"):
                self._wrap(monitor, method, "monitors")
        plain = losses.LOSSES[loss]
        losses.LOSSES[loss] = self.timed("loss", plain)
        self._undo.append(lambda: losses.LOSSES.__setitem__(loss, plain))

    def timed(self, key: str, f: Callable[..., Any]) -> Callable[..., Any]:
        def run(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return f(*args, **kwargs)
            finally:
                self.spent[key] += time.perf_counter() - started

        return run

    def _wrap(self, owner: Any, name: str, key: str) -> None:
        setattr(owner, name, self.timed(key, getattr(owner, name)))

    def patch(self, module: Any, name: str, key: str) -> None:
        plain = getattr(module, name)
        setattr(module, name, self.timed(key, plain))
        self._undo.append(lambda: setattr(module, name, plain))

    def restore(self) -> None:
        for undo in reversed(self._undo):
            undo()
        self._undo.clear()


def serve(handlers: dict[str, Callable[[Any], Any]], hello: dict[str, Any]) -> None:
    """The worker's side: say hello, then answer {"do": name, "args": ...} lines until EOF."""
    print(json.dumps({"ready": True, **hello}), flush=True)
    for line in sys.stdin:
        command = json.loads(line)
        print(json.dumps(handlers[command["do"]](command["args"])), flush=True)


class Worker:
    """The parent's side: a child process running `script --child ...` under `env`."""

    def __init__(self, script: str, args: list[str], env: dict[str, str] | None = None) -> None:
        self.process = subprocess.Popen(
            [sys.executable, script, "--child", *args],
            env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        self.hello = self._read()

    def _read(self) -> Any:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            sys.exit(f"benchmark worker {self.process.args!r} died")
        return json.loads(line)

    def ask(self, do: str, args: Any = None) -> Any:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps({"do": do, "args": args}) + "\n")
        self.process.stdin.flush()
        return self._read()

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait()
