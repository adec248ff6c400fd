"""digitlab against PyTorch (CPU, float32, 2 threads) on the same MNIST data, in one run.

    pip install -e '.[bench]'
    python benchmarks/train_speed.py --data-dir DIR [--reps 5] [--quick]
        [--cases b1000]

digitlab trains through its public API (`build_model`, `fit`) with its default monitors on, as
`digitlab train` runs, timed as `fit` times an epoch (a run checks its data once, not every
epoch); PyTorch is the usual nn.Sequential and optimizer loop over tensors in memory. For each
case the two frameworks train one epoch in turn, `reps` times (interleaved, so drift in machine
load hits both alike); the table gives median and min seconds per epoch, the ratio digitlab /
PyTorch of the medians, the matrix-multiply GFLOP/s actually achieved (forward, weight
gradients and input gradients except for the first layer), the machine's float32 matmul peak
measured in the same run and the share of it.

This VM has slow phases of tens of seconds in which an epoch takes up to twice as long, for
both frameworks but not alike. So each attempt at a case is bracketed by a quick matmul probe,
and a case is measured again (after a pause, up to ATTEMPTS times in all) when its epochs
spread by more than STEADY (see spread()) or the probe ran under CALM of the run's fastest;
the calmest attempt is shown, with its spread, probe speed and number of attempts.

Every case runs twice: with the BLAS environment as it is, and with OPENBLAS_CORETYPE and
OPENBLAS_L2_SIZE unset (this command only), each in its own child process, with the BLAS
kernel in use reported by threadpoolctl. Peak resident memory of training is measured in
separate child processes, one per framework, and of a one-epoch `digitlab train` run (the
CLI, with its report) as a user runs it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
from workers import Worker, add_data_dir, blas_kernel, load_mnist, serve

BLAS_VARIABLES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")

# name, hidden sizes, activation, optimizer, learning rate, batch size
CASES = [
    ("784-100-10 sigmoid sgd b32", [100], "sigmoid", "sgd", 0.1, 32),
    ("784-100-10 sigmoid sgd b128", [100], "sigmoid", "sgd", 0.1, 128),
    ("784-100-10 sigmoid sgd b256", [100], "sigmoid", "sgd", 1.0, 256),
    ("784-100-10 sigmoid sgd b1000", [100], "sigmoid", "sgd", 1.0, 1000),
    ("784-1200-10 sigmoid sgd b600", [1200], "sigmoid", "sgd", 0.8, 600),
    ("784-256-128-64-10 relu adam b128", [256, 128, 64], "relu", "adam", 0.001, 128),
]
INFERENCE = ("inference 10,000 test images (784-100-10)", [100], "sigmoid")
FRAMEWORKS = ("digitlab", "torch")
STEADY = 1.2  # spread (see spread()) above which a case is measured again
CALM = 0.85  # ... and the share of the run's fastest matmul probe below which it is
ATTEMPTS = 3
PAUSE = 5.0  # seconds before another attempt, for a slow phase to pass


def matmul_flops(sizes: list[int], n: int, training: bool) -> float:
    """Multiply-add work of the Dense layers: 2*in*out per sample for each product done."""
    flops = 0.0
    for position, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        products = 1 if not training else (2 if position == 0 else 3)
        flops += products * 2.0 * n * n_in * n_out
    return flops


def matmul_peak(reps: int = 10, size: int = 2048) -> float:
    """Best float32 GFLOP/s of a size^3 NumPy matmul."""
    a = np.random.default_rng(0).standard_normal((size, size)).astype(np.float32)
    out = np.empty_like(a)
    best = np.inf
    for _ in range(reps):
        started = time.perf_counter()
        np.matmul(a, a, out=out)
        best = min(best, time.perf_counter() - started)
    return 2 * size**3 / best / 1e9


class DigitlabCase:
    def __init__(
        self,
        hidden: list[int],
        activation: str,
        optimizer: str,
        lr: float,
        batch: int,
        rows: int = 60_000,
    ):
        import digitlab as dl

        self.dl = dl
        self.rng = np.random.default_rng(0)
        self.model = dl.build_model(dl.mlp_spec(hidden, 10, activation), 784, self.rng)
        self.optimizer = dl.get_optimizer(optimizer, lr)
        # on, as in `digitlab train`. They sample 20 batches an epoch whatever its length: a
        # --quick epoch (a fifth of MNIST) samples its share, or their cost counts five times.
        self.monitors = dl.default_monitors(max(1, round(20 * rows / 60_000)))
        self.batch, self.lr = batch, lr

    def epoch(self, x: np.ndarray, y: np.ndarray) -> float:
        """One epoch's seconds as `fit` records them: from its shuffle to its end-of-epoch
        monitors. Not the whole call, which also checks the data once (a pass over x for NaN
        and inf), as a run of many epochs does once and not every epoch."""
        dl = self.dl
        options = dl.TrainOptions(
            1, dl.batch_size_schedule(self.batch), dl.get_schedule("constant", self.lr, 1)
        )
        hooks = dl.TrainHooks(monitors=self.monitors)
        history = dl.fit(self.model, x, y, self.optimizer, options, rng=self.rng, hooks=hooks)
        return history["seconds"][-1]

    def infer(self, x: np.ndarray, y: np.ndarray) -> float:
        started = time.perf_counter()
        self.dl.evaluate(self.model, x, y)
        return time.perf_counter() - started


class TorchCase:
    def __init__(self, hidden: list[int], activation: str, optimizer: str, lr: float, batch: int):
        import torch

        torch.set_num_threads(2)
        torch.manual_seed(0)
        self.torch = torch
        layers: list[Any] = []
        n_in = 784
        for units in hidden:
            act = torch.nn.Sigmoid() if activation == "sigmoid" else torch.nn.ReLU()
            layers += [torch.nn.Linear(n_in, units), act]
            n_in = units
        layers.append(torch.nn.Linear(n_in, 10))
        self.model = torch.nn.Sequential(*layers)
        parameters = self.model.parameters()
        self.optimizer = (
            torch.optim.SGD(parameters, lr=lr)
            if optimizer == "sgd"
            else torch.optim.Adam(parameters, lr=lr)
        )
        self.loss = torch.nn.CrossEntropyLoss()
        self.batch = batch

    def epoch(self, x: Any, y: Any) -> float:
        torch = self.torch
        started = time.perf_counter()
        order = torch.randperm(len(x))
        for start in range(0, len(x), self.batch):
            idx = order[start : start + self.batch]
            self.optimizer.zero_grad()
            loss = self.loss(self.model(x[idx]), y[idx])
            loss.backward()
            self.optimizer.step()
        return time.perf_counter() - started

    def infer(self, x: Any, y: Any) -> float:
        torch = self.torch
        started = time.perf_counter()
        with torch.no_grad():
            logits = self.model(x)
            self.loss(logits, y)
            torch.softmax(logits, dim=1)
            (logits.argmax(dim=1) == y).float().mean()
        return time.perf_counter() - started


def worker(framework: str, data_dir: str, quick: bool) -> None:
    """A process that holds the data for one framework and times what the parent asks for."""
    arrays: tuple[Any, ...] = load_mnist(data_dir)
    if quick:
        arrays = (arrays[0][:12000], arrays[1][:12000], *arrays[2:])
    x, y, x_test, y_test = arrays  # Any: NumPy arrays, or PyTorch tensors below
    if framework == "torch":
        import torch

        x, y, x_test, y_test = (torch.from_numpy(a) for a in arrays)
    case: Any = None

    def setup(args: list[Any]) -> None:
        nonlocal case
        hidden, activation, optimizer, lr, batch = args
        if framework == "digitlab":
            case = DigitlabCase(hidden, activation, optimizer, lr, batch, rows=len(x))
        else:
            case = TorchCase(hidden, activation, optimizer, lr, batch)

    handlers = {
        "setup": setup,
        "epoch": lambda _: case.epoch(x, y),
        "infer": lambda _: case.infer(x_test, y_test),
        "peak": lambda _: matmul_peak(),
        "probe": lambda _: matmul_peak(reps=5, size=1024),
    }
    serve(handlers, {"n_train": len(x), "kernel": blas_kernel()})


def speed_run(args: list[str], env: dict[str, str], reps: int, only: str) -> dict[str, Any]:
    """Every case (whose name contains `only`), the two frameworks' epochs alternating, in one
    BLAS environment."""
    ours, theirs = (Worker(__file__, [f"worker-{name}", *args], env) for name in FRAMEWORKS)
    peak = ours.ask("peak")
    fastest_probe = ours.ask("probe")

    def measure(setup: list[Any], do: str, n: int) -> dict[str, Any]:
        """`n` interleaved repetitions of `do`, again while the machine was not calm."""
        nonlocal fastest_probe
        for worker in (ours, theirs):
            worker.ask("setup", setup)
            worker.ask(do)  # warm-up: allocations, thread start
        attempts: list[dict[str, Any]] = []
        for attempt in range(ATTEMPTS):
            if attempt:
                time.sleep(PAUSE)
            probes = [ours.ask("probe")]
            times: dict[str, Any] = {"digitlab": [], "torch": []}
            for _ in range(n):
                times["digitlab"].append(ours.ask(do))
                times["torch"].append(theirs.ask(do))
            probes.append(ours.ask("probe"))
            fastest_probe = max(fastest_probe, *probes)
            attempts.append({**times, "probe": min(probes)})
            if spread(times) <= STEADY and min(probes) >= CALM * fastest_probe:
                break
        # the calmest: the least spread, weighed by how far the probe fell
        calmest = min(attempts, key=lambda a: spread(a) * fastest_probe / a["probe"])
        return {**calmest, "probe": calmest["probe"] / fastest_probe, "attempts": len(attempts)}

    rows = []
    for name, hidden, activation, optimizer, lr, batch in CASES:
        if only in name:
            flops = matmul_flops([784, *hidden, 10], ours.hello["n_train"], training=True)
            times = measure([hidden, activation, optimizer, lr, batch], "epoch", reps)
            rows.append({"case": name, "flops": flops, **times})
    name, hidden, activation = INFERENCE
    if only in name:
        flops = matmul_flops([784, *hidden, 10], 10000, training=False)
        times = measure([hidden, activation, "sgd", 0.1, 128], "infer", reps * 4)
        rows.append({"case": name, "flops": flops, **times})
    result = {
        "rows": rows,
        "peak": peak,
        "kernel": ours.hello["kernel"],
        "env": {v: env.get(v) for v in BLAS_VARIABLES},
        "n_train": ours.hello["n_train"],
    }
    ours.close()
    theirs.close()
    return result


def memory_child(data_dir: str, framework: str) -> dict[str, Any]:
    """Peak RSS of loading MNIST and training one epoch of 784-100-10 at batch 128."""
    x, y, _, _ = load_mnist(data_dir)
    if framework == "digitlab":
        DigitlabCase([100], "sigmoid", "sgd", 0.1, 128).epoch(x, y)
    else:
        import torch

        TorchCase([100], "sigmoid", "sgd", 0.1, 128).epoch(torch.from_numpy(x), torch.from_numpy(y))
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"peak_bytes": peak_kb * 1024, "train_bytes": x.nbytes}


def memory_cli(data_dir: str, out: str) -> dict[str, Any]:
    """Peak RSS of `digitlab train` on MNIST, one epoch, report included (a child process)."""
    command = [sys.executable, "-c", "from digitlab.cli import main; main()", "train"]
    command += ["--data", "mnist", "--data-dir", data_dir, "--epochs", "1", "--quiet"]
    subprocess.run([*command, "--out", out], check=True, capture_output=True)
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {"peak_bytes": peak_kb * 1024, "train_bytes": 60_000 * 784 * 4}


def run_child(args: list[str], env: dict[str, str]) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, __file__, *args], env=env, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        sys.exit(f"benchmark child {args} failed:\n{result.stderr}")
    parsed: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return parsed


def spread(times: Mapping[str, Any]) -> float:
    """Slowest / fastest repetition once the slowest and fastest fifth are dropped (a lone
    outlier, which the median ignores anyway, does not count), the larger of the two frameworks'."""

    def inner(t: list[float]) -> float:
        t, k = sorted(t), len(t) // 5
        return t[-1 - k] / t[k]

    return max(inner(times[f]) for f in FRAMEWORKS)


def table(result: dict[str, Any], title: str) -> str:
    peak = result["peak"]
    lines = [
        f"### {title}",
        "",
        f"BLAS: {result['kernel']}; env {result['env']}; float32 matmul peak {peak:.0f} GFLOP/s; "
        f"{result['n_train']} training images",
        "",
        "| case | digitlab s (median / min) | PyTorch s (median / min) | ratio | "
        "digitlab GFLOP/s | % of peak | PyTorch GFLOP/s | spread, probe (attempts) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in result["rows"]:
        ours, theirs = statistics.median(row["digitlab"]), statistics.median(row["torch"])
        ours_gflops, theirs_gflops = row["flops"] / ours / 1e9, row["flops"] / theirs / 1e9
        lines.append(
            f"| {row['case']} | {ours:.3f} / {min(row['digitlab']):.3f} | "
            f"{theirs:.3f} / {min(row['torch']):.3f} | **{ours / theirs:.2f}x** | "
            f"{ours_gflops:.0f} | {100 * ours_gflops / peak:.0f}% | {theirs_gflops:.0f} | "
            f"{spread(row):.2f}, {100 * row['probe']:.0f}% ({row['attempts']}) |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_dir(parser)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="12,000 training images, 2 reps")
    parser.add_argument("--cases", default="", help="only the cases whose name contains this")
    children = ["worker-digitlab", "worker-torch", "memory-digitlab", "memory-torch", "memory-cli"]
    parser.add_argument("--child", choices=children)
    args = parser.parse_args()
    if args.child and args.child.startswith("worker"):
        worker(args.child.split("-")[1], args.data_dir, args.quick)
        return
    if args.child == "memory-cli":
        with tempfile.TemporaryDirectory() as out:
            print(json.dumps(memory_cli(args.data_dir, str(Path(out) / "run"))))
        return
    if args.child:
        print(json.dumps(memory_child(args.data_dir, args.child.split("-")[1])))
        return
    reps = 2 if args.quick else args.reps
    common = ["--data-dir", args.data_dir, *(["--quick"] if args.quick else [])]
    as_is = dict(os.environ)
    unset = {k: v for k, v in os.environ.items() if k not in BLAS_VARIABLES}
    import torch

    print(
        f"## digitlab vs PyTorch, {date.today()}\n\n{platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}, NumPy {np.__version__}, "
        f"PyTorch {torch.__version__}; {reps} interleaved repetitions per case\n"
    )
    print(table(speed_run(common, as_is, reps, args.cases), "BLAS environment as it is"))
    print()
    print(table(speed_run(common, unset, reps, args.cases), "OPENBLAS_CORETYPE/L2_SIZE unset"))
    print("\n### Peak resident memory (load MNIST + one training epoch, 784-100-10, batch 128)\n")
    print("| framework | peak RSS | float32 training set | ratio |\n|---|---|---|---|")
    for framework in ("digitlab", "torch", "cli"):
        m = run_child(["--child", f"memory-{framework}", "--data-dir", args.data_dir], unset)
        peak, train = m["peak_bytes"], m["train_bytes"]
        sizes = f"{peak / 2**20:.0f} MiB | {train / 2**20:.0f} MiB"
        label = "`digitlab train` (the CLI, 1 epoch, report)" if framework == "cli" else framework
        print(f"| {label} | {sizes} | {peak / train:.2f}x |")


if __name__ == "__main__":
    main()
