"""Where a 784-100-10 training step goes, piece by piece, in the VM's fast and slow phases.

    python benchmarks/mlp_step.py --data-dir DIR [--seconds 240] [--batch 128]

Trains 784-100-10 sigmoid with SGD on standardised MNIST through `fit`, one epoch per call,
epoch after epoch for `--seconds`, with each phase timed while fit runs (workers.PhaseTimer):
each layer's forward and backward, the loss, the monitors and the optimizer; the rest of the
step (the batch gather, the guards, the accuracy count, the loop) is the epoch's time, as fit
records it, less those. Then it prints the median microseconds per step of each phase over the
fastest third of the epochs and over the slowest third, and their ratio. On this 2-core VM
epochs flip between about 0.22 s and 0.44 s within one process (README, Performance); the
table shows which phases slow down.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from workers import PhaseTimer, add_data_dir, blas_kernel, load_mnist

REST = "rest (batch gather, guards, accuracy, loop)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_data_dir(parser)
    parser.add_argument("--seconds", type=float, default=240.0)
    parser.add_argument("--batch", type=int, default=128)
    args = parser.parse_args()
    import digitlab as dl

    x, y, _, _ = load_mnist(args.data_dir)
    rng = np.random.default_rng(0)
    model = dl.build_model(dl.mlp_spec([100], 10, "sigmoid"), 784, rng)
    optimizer = dl.get_optimizer("sgd", 0.1)
    monitors = dl.default_monitors()
    timer = PhaseTimer(model, optimizer, monitors)
    options = dl.TrainOptions(
        1, dl.batch_size_schedule(args.batch), dl.get_schedule("constant", 0.1, 1)
    )
    hooks = dl.TrainHooks(monitors=monitors)
    batches = -(-len(x) // args.batch)
    epochs: list[dict[str, float]] = []
    end = time.perf_counter() + args.seconds
    while time.perf_counter() < end or len(epochs) < 3:
        timer.spent.clear()
        seconds = dl.fit(model, x, y, optimizer, options, rng=rng, hooks=hooks)["seconds"][-1]
        pieces = {key: value / batches for key, value in timer.spent.items()}
        pieces[REST] = seconds / batches - sum(pieces.values())
        pieces["step"] = seconds / batches
        epochs.append(pieces)
    timer.restore()
    epochs.sort(key=lambda pieces: pieces["step"])
    third = max(1, len(epochs) // 3)
    fast, slow = epochs[:third], epochs[-third:]
    print(
        f"784-100-10 sigmoid SGD, batch {args.batch}, {len(epochs)} epochs of 60,000 images; "
        f"BLAS: {blas_kernel()}\n"
    )
    for name, part in (("fastest", fast), ("slowest", slow)):
        seconds = statistics.median(e["step"] for e in part) * batches
        print(f"epoch, median of the {name} third: {seconds:.3f} s")
    print()
    print("| phase | us per step, fastest third | slowest third | ratio |\n|---|---|---|---|")
    for key in fast[0]:
        a = statistics.median(e[key] for e in fast) * 1e6
        b = statistics.median(e[key] for e in slow) * 1e6
        print(f"| {key} | {a:.0f} | {b:.0f} | {b / a:.2f}x |")


if __name__ == "__main__":
    main()
