"""A small CNN in digitlab against PyTorch (CPU, float32, 2 threads) on the same MNIST data.

    pip install -e '.[bench]'
    python benchmarks/cnn_speed.py --data-dir DIR [--reps 5] [--images 12800]
        [--threads 2] [--compiled on|off|both] [--pool-first] [--profile]

`--compiled` runs digitlab with its optional compiled kernels (digitlab.fast, `pip install -e
'.[fast]'`), without them (the NumPy code), or both (the default when numba is installed), each
in its own worker beside PyTorch's. With --profile, digitlab alone trains `reps` slices in this
process, and its time per step is split by phase: each layer's forward and backward (a
convolution's im2col copy apart from its products), the loss, the optimizer, the monitors and
the rest of the loop; with `--compiled both`, side by side.

The network: Conv 32@3x3 - ReLU - MaxPool 2 - Conv 64@3x3 - ReLU - MaxPool 2 - Flatten -
Dense 128 - ReLU - Dense 10 (no padding), trained with plain SGD at batch 128 on standardised
MNIST. `--pool-first` puts each max-pool before its ReLU, in both frameworks: max and ReLU
commute, so it is the same function with the same gradients (tests/core/test_conv.py checks
digitlab's exactly equal), and the ReLU runs on a quarter of the numbers. digitlab goes
through its public API (`build_model`, `fit`), with its default monitors on as `digitlab train`
runs (sampling their 20 batches per epoch pro rata: 4 in a 12,800-image slice); PyTorch is the
usual nn.Sequential and optimizer loop over tensors in memory. A full epoch of this model takes ten
seconds or more, so each repetition trains on `--images` training images (12,800 = 100 batches
by default; repetition k takes the k-th such slice) and the time is scaled to a 60,000-image
epoch. As in train_speed.py, each framework lives in its own persistent worker process and the
two take turns, `reps` times after one warm-up round, so that drift in machine load hits both
alike; the table gives the median and the min.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import statistics
import time
from datetime import date
from typing import Any

import numpy as np
from workers import PhaseTimer, Worker, add_data_dir, blas_kernel, load_mnist, serve

FRAMEWORKS = ("digitlab", "torch")
COMPILED = {"on": [True], "off": [False], "both": [False, True]}
EPOCH = 60_000
BATCH = 128
LEARNING_RATE = 0.05

RELU: dict[str, Any] = {"type": "activation", "name": "relu"}
POOL: dict[str, Any] = {"type": "maxpool2d", "size": 2}


def spec(pool_first: bool) -> list[dict[str, Any]]:
    """The network; with pool_first each max-pool comes before its ReLU (the same function)."""
    block = [POOL, RELU] if pool_first else [RELU, POOL]
    return [
        {"type": "reshape", "shape": [1, 28, 28]},
        {"type": "conv2d", "filters": 32, "kernel_size": 3},
        *block,
        {"type": "conv2d", "filters": 64, "kernel_size": 3},
        *block,
        {"type": "flatten"},
        {"type": "dense", "units": 128, "init": "he"},
        RELU,
        {"type": "dense", "units": 10},
    ]


class DigitlabCase:
    def __init__(self, threads: int, images: int, compiled: bool, pool_first: bool) -> None:
        from threadpoolctl import threadpool_limits

        threadpool_limits(threads, user_api="blas")
        import digitlab as dl
        from digitlab import fast

        fast.set_enabled(compiled)
        if compiled and not fast.enabled():
            raise SystemExit("--compiled on needs numba: pip install -e '.[fast]'")
        self.compiled = compiled

        self.dl = dl
        self.rng = np.random.default_rng(0)
        self.model = dl.build_model(spec(pool_first), 784, self.rng)
        self.optimizer = dl.get_optimizer("sgd", LEARNING_RATE)
        # The monitors sample 20 batches per epoch, whatever its length; a slice of `images`
        # scaled up to an epoch must sample its share of them, or their cost is counted
        # EPOCH / images times over.
        self.monitors = dl.default_monitors(max(1, round(20 * images / EPOCH)))

    def train(self, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        dl = self.dl
        started = time.perf_counter()
        options = dl.TrainOptions(
            1, dl.batch_size_schedule(BATCH), dl.get_schedule("constant", LEARNING_RATE, 1)
        )
        hooks = dl.TrainHooks(monitors=self.monitors)
        history = dl.fit(self.model, x, y, self.optimizer, options, rng=self.rng, hooks=hooks)
        return time.perf_counter() - started, history["train_loss"][-1]


class TorchCase:
    def __init__(self, threads: int, pool_first: bool) -> None:
        import torch
        from torch import nn

        torch.set_num_threads(threads)
        torch.manual_seed(0)
        self.torch = torch

        def block() -> list[Any]:
            return [nn.MaxPool2d(2), nn.ReLU()] if pool_first else [nn.ReLU(), nn.MaxPool2d(2)]

        self.model = nn.Sequential(
            nn.Conv2d(1, 32, 3), *block(), nn.Conv2d(32, 64, 3), *block(),
            nn.Flatten(), nn.Linear(1600, 128), nn.ReLU(), nn.Linear(128, 10),
        )  # fmt: skip
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=LEARNING_RATE)
        self.loss = nn.CrossEntropyLoss()

    def train(self, x: Any, y: Any) -> tuple[float, float]:
        torch = self.torch
        started = time.perf_counter()
        order = torch.randperm(len(x))
        total = 0.0
        for start in range(0, len(x), BATCH):
            idx = order[start : start + BATCH]
            self.optimizer.zero_grad()
            loss = self.loss(self.model(x[idx]), y[idx])
            loss.backward()
            self.optimizer.step()
            total += loss.item() * len(idx)
        return time.perf_counter() - started, total / len(x)


def worker(
    framework: str, data_dir: str, images: int, threads: int, compiled: bool, pool_first: bool
) -> None:
    """A process that holds the data and one model, and trains on the next slice when asked."""
    images_array, labels, _, _ = load_mnist(data_dir)
    x: Any = images_array
    y: Any = labels
    if framework == "torch":
        import torch

        x = torch.from_numpy(images_array).reshape(-1, 1, 28, 28)
        y = torch.from_numpy(labels.astype(np.int64))
    case: Any = (
        DigitlabCase(threads, images, compiled, pool_first)
        if framework == "digitlab"
        else TorchCase(threads, pool_first)
    )
    slices = len(x) // images
    done = 0

    def train(_: Any) -> tuple[float, float]:
        nonlocal done
        start = (done % slices) * images
        done += 1
        return case.train(x[start : start + images], y[start : start + images])

    serve({"train": train, "compiled": lambda _: compiled_info()}, {"kernel": blas_kernel()})


def compiled_info() -> str:
    """Whether digitlab's compiled kernels are on in this process, and numba's version."""
    from digitlab import fast

    if not fast.enabled() or fast.load_kernels() is None:
        return "off"
    return f"on (numba {fast.load_kernels().numba.__version__}, one thread)"


def profile(
    data_dir: str, images: int, threads: int, reps: int, compiled: str, pool_first: bool
) -> None:
    """digitlab's time per step by phase (see the module's docstring), as a table: one column
    per setting of the compiled path."""
    from digitlab import fast
    from digitlab.core import conv

    x, y, _, _ = load_mnist(data_dir)
    inside = "conv im2col (inside the conv forwards)"
    step = "**step**"
    columns: dict[str, dict[str, float]] = {}
    for on in COMPILED[compiled]:
        case = DigitlabCase(threads, images, on, pool_first)
        timer = PhaseTimer(case.model, case.optimizer, case.monitors)
        timer.patch(conv, "im2col", inside)
        timer.patch(fast, "im2col", inside)
        spent = timer.spent
        case.train(x[:images], y[:images])  # warm-up (and numba's compilation, or its cache)
        spent.clear()
        total = 0.0
        for k in range(reps):
            start = (k + 1) * images % (len(x) - images)
            total += case.train(x[start : start + images], y[start : start + images])[0]
        timer.restore()
        steps = reps * -(-images // BATCH)
        spent["rest of the loop (batches, bookkeeping)"] = total - sum(
            v for key, v in spent.items() if key != inside
        )
        spent[step] = total
        name = "compiled" if on else "NumPy"
        columns[name] = {key: 1e3 * seconds / steps for key, seconds in spent.items()}
    print(f"digitlab, {threads} BLAS threads, {reps} x {images:,} images ({blas_kernel()})")
    print(f"compiled kernels: {compiled_info()}\n")
    names = list(columns)
    first = columns[names[0]]
    print("| phase | " + " | ".join(f"{name} ms per step" for name in names) + " | share |")
    print("|---" * (len(names) + 2) + "|")
    last = columns[names[-1]]
    for key in sorted(first, key=lambda k: (k == step, -first[k])):
        cells = " | ".join(f"{columns[name].get(key, 0.0):.2f}" for name in names)
        share = last.get(key, 0.0) / last[step]
        print(f"| {key} | {cells} | {share:.0%} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_dir(parser)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--images", type=int, default=12_800, help="training images per rep")
    parser.add_argument("--threads", type=int, default=2, help="BLAS / PyTorch threads")
    parser.add_argument("--profile", action="store_true", help="digitlab's step by phase")
    parser.add_argument(
        "--compiled",
        choices=sorted(COMPILED),
        default="both" if importlib.util.find_spec("numba") else "off",
        help="digitlab with its compiled kernels, without, or both [both if numba is installed]",
    )
    parser.add_argument(
        "--pool-first",
        action="store_true",
        help="each max-pool before its ReLU, in both frameworks (the same function, cheaper)",
    )
    parser.add_argument("--child", choices=FRAMEWORKS)
    args = parser.parse_args()
    if args.profile:
        profile(args.data_dir, args.images, args.threads, args.reps, args.compiled, args.pool_first)
        return
    if args.child:
        on = args.compiled == "on"
        worker(args.child, args.data_dir, args.images, args.threads, on, args.pool_first)
        return
    common = ["--data-dir", args.data_dir, "--images", str(args.images)]
    common += ["--threads", str(args.threads)] + (["--pool-first"] if args.pool_first else [])
    workers: dict[str, Worker] = {}
    for on in COMPILED[args.compiled]:
        name = "digitlab, compiled" if on else "digitlab"
        setting = ["--compiled", "on" if on else "off"]
        workers[name] = Worker(__file__, ["digitlab", *common, *setting])
    workers["torch"] = Worker(__file__, ["torch", *common])
    for w in workers.values():
        w.ask("train")  # warm-up: allocations, thread start, first-touch page faults
    times: dict[str, list[float]] = {name: [] for name in workers}
    losses: dict[str, float] = {}
    for _ in range(args.reps):
        for name, w in workers.items():
            seconds, losses[name] = w.ask("train")
            times[name].append(seconds)
    compiled = [w.ask("compiled") for name, w in workers.items() if "compiled" in name]
    for w in workers.values():
        w.close()

    import torch

    steps = -(-args.images // BATCH)
    block = "MaxPool 2 - ReLU" if args.pool_first else "ReLU - MaxPool 2"
    scale = EPOCH / args.images
    print(
        f"## Small CNN, digitlab vs PyTorch, {date.today()}\n\n"
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, NumPy {np.__version__}, PyTorch {torch.__version__}; "
        f"digitlab BLAS: {next(iter(workers.values())).hello['kernel']}"
        f"{'; compiled kernels: ' + compiled[0] if compiled else ''}\n\n"
        f"Conv 32@3x3 - {block} - Conv 64@3x3 - {block} - Dense 128 - ReLU - Dense 10, "
        f"float32, SGD, batch {BATCH}, {args.threads} threads each. Each repetition "
        f"trains on {args.images:,} images ({steps} steps); seconds are scaled to a "
        f"{EPOCH:,}-image epoch. {args.reps} interleaved repetitions after a warm-up.\n"
    )
    print("| framework | s per epoch (median / min) | ms per step (median / min) | ratio | loss |")
    print("|---|---|---|---|---|")
    reference = statistics.median(times["torch"])
    for name, measured in times.items():
        median, best = statistics.median(measured), min(measured)
        print(
            f"| {name} | {median * scale:.1f} / {best * scale:.1f} | "
            f"{1e3 * median / steps:.1f} / {1e3 * best / steps:.1f} | "
            f"**{median / reference:.2f}x** | {losses[name]:.3f} |"
        )


if __name__ == "__main__":
    main()
