"""What data augmentation costs next to a training step, on MNIST-sized images (float32).

    pip install -e '.[bench]'   # threadpoolctl, for --threads
    python benchmarks/augment_speed.py [--reps 5] [--batches 300] [--threads 1]

Two settings of `digitlab.data.augment.Augment` on batches of 128 28x28 images: affine only
(shift 2, rotate 10, scale 0.1) and affine plus Simard's elastic distortion (alpha 34, sigma 4,
his MNIST settings). For each the table gives microseconds per image of the augmentation alone
(median and min over `reps` x `batches` calls) and its share of one training step of a
784-800-10 ReLU network with SGD at batch 128, timed batch by batch (through `on_batch`) with
digitlab's own `fit` on random data of that shape, `batches` batches per epoch. The last two
columns are the step measured inside `fit` with the augmentation on, and what it adds. Medians
of single calls and batches keep other jobs' preemptions out of the numbers. Runs take
turns, so drift in machine load hits all alike. `--threads` caps BLAS threads: on a machine
shared with other jobs, multithreaded BLAS can make the training step ten times slower and
the shares meaningless; the augmentation itself uses BLAS only for tiny products.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable

import numpy as np

from digitlab.core.model import build_model
from digitlab.core.optim import batch_size_schedule, get_optimizer, get_schedule
from digitlab.core.specs import mlp_spec
from digitlab.core.train import TrainHooks, TrainOptions, fit
from digitlab.data.augment import Augment

BATCH = 128
IMAGE_SHAPE = (28, 28)
AFFINE = {"shift": 2.0, "rotate": 10.0, "scale": 0.1}
SETTINGS = {
    "affine (shift 2, rotate 10, scale 0.1)": AFFINE,
    "affine + elastic (alpha 34, sigma 4)": {**AFFINE, "elastic_alpha": 34.0, "elastic_sigma": 4.0},
}


def random_images(rng: np.random.Generator, n: int) -> np.ndarray:
    """Rows (n, 784) in [0, 1] with a zero border, like scaled MNIST."""
    images = np.zeros((n, *IMAGE_SHAPE), dtype=np.float32)
    images[:, 4:-4, 4:-4] = rng.random((n, 20, 20), dtype=np.float32)
    return images.reshape(n, -1)


def time_augment(augment: Augment, batch: np.ndarray, calls: int) -> list[float]:
    """Seconds of each call."""
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        augment(batch)
        times.append(time.perf_counter() - started)
    return times


def time_batches(
    x: np.ndarray, y: np.ndarray, augment: Callable[[np.ndarray], np.ndarray] | None
) -> list[float]:
    """Seconds of each batch (after the first) of one epoch of fit on a fresh 784-800-10 net."""
    rng = np.random.default_rng(0)
    model = build_model(mlp_spec([800], 10, "relu"), x.shape[1], rng, np.float32)
    ends: list[float] = []
    fit(
        model,
        x,
        y,
        get_optimizer("sgd", 0.05),
        TrainOptions(
            1, batch_size_schedule(BATCH), get_schedule("constant", 0.05, 1), augment=augment
        ),
        rng=rng,
        hooks=TrainHooks(on_batch=lambda epoch, number, size: ends.append(time.perf_counter())),
    )
    return list(np.diff(ends))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--batches", type=int, default=300)
    parser.add_argument("--threads", type=int, default=None, help="BLAS threads (default: as is)")
    args = parser.parse_args()
    if args.threads is not None:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=args.threads, user_api="blas")

    rng = np.random.default_rng(0)
    x = random_images(rng, BATCH * args.batches)
    y = rng.integers(0, 10, len(x))
    batch = x[:BATCH]
    augments = {
        name: Augment(IMAGE_SHAPE, np.random.default_rng(1), **params)
        for name, params in SETTINGS.items()
    }
    # Warm-up. Training first matters: glibc hands freed memory back to the OS until a large
    # free (here the weight gradient) raises its thresholds, and until then every fresh array
    # costs page faults, which on a VM can make the augmentation alone two to three times slower.
    time_batches(x[: BATCH * 10], y[: BATCH * 10], None)
    for augment in augments.values():
        time_augment(augment, batch, 5)

    alone: dict[str, list[float]] = {name: [] for name in SETTINGS}
    in_fit: dict[str | None, list[float]] = {name: [] for name in [None, *SETTINGS]}
    for _ in range(args.reps):
        for name, augment in augments.items():
            alone[name] += time_augment(augment, batch, args.batches)
        for key in in_fit:
            in_fit[key] += time_batches(x, y, augments[key] if key else None)

    step = statistics.median(in_fit[None])
    threads = "as is" if args.threads is None else args.threads
    print(
        f"numpy {np.__version__}, {platform.processor() or platform.machine()}, "
        f"BLAS threads {threads}, batch {BATCH}, {args.batches} batches x {args.reps} reps"
    )
    print(
        f"784-800-10 training step (fit, no augmentation): {step * 1e3:.2f} ms per batch "
        f"(median; min {min(in_fit[None]) * 1e3:.2f})"
    )
    print()
    header = (
        f"{'augmentation':40} {'us/image med':>12} {'min':>6} {'ms/batch':>9} "
        f"{'share of step':>13} {'step in fit':>11} {'added':>6}"
    )
    print(header)
    print("-" * len(header))
    for name in SETTINGS:
        median, best = statistics.median(alone[name]), min(alone[name])
        with_augment = statistics.median(in_fit[name])
        print(
            f"{name:40} {median / BATCH * 1e6:12.1f} {best / BATCH * 1e6:6.1f} "
            f"{median * 1e3:9.2f} {median / step:13.0%} {with_augment * 1e3:8.2f} ms "
            f"{with_augment / step - 1:6.0%}"
        )


if __name__ == "__main__":
    main()
