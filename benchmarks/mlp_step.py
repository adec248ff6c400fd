"""Where a 784-100-10 training step goes, piece by piece, in the VM's fast and slow phases.

    python benchmarks/mlp_step.py --data-dir DIR [--seconds 240] [--batch 128]

Trains 784-100-10 sigmoid with SGD on standardised MNIST, epoch after epoch for `--seconds`,
running fit's step by hand so that each piece is timed: the batch gather, each layer's forward
and backward, the loss, the accuracy count, the monitors and the optimizer. Then it prints the
median microseconds per step of each piece over the fastest third of the epochs and over the
slowest third, and their ratio. On this 2-core VM epochs flip between about 0.22 s and 0.44 s
within one process (README, Performance); the table shows which pieces slow down.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import defaultdict
from typing import Any

import numpy as np
from workers import add_data_dir, blas_kernel, load_mnist


def epoch_pieces(
    model: Any,
    optimizer: Any,
    monitors: list[Any],
    x: np.ndarray,
    y: np.ndarray,
    batch: int,
    rng: np.random.Generator,
    epoch: int,
) -> dict[str, float]:
    """Seconds per step spent in each piece of one epoch of fit's steps (core/train.py), and
    in all ("step")."""
    from digitlab.core.hooks import Step
    from digitlab.core.losses import get_loss

    loss = get_loss("softmax_cross_entropy")
    spent: dict[str, float] = defaultdict(float)
    clock = time.perf_counter
    started = clock()
    order = rng.permutation(len(x))
    batches = -(-len(x) // batch)
    for number, start in enumerate(range(0, len(x), batch), 1):
        t = clock()
        idx = order[start : start + batch]
        xb, yb = x.take(idx, axis=0), y[idx]
        spent["batch gather"] += clock() - t
        out = xb
        for layer in model.layers:
            t = clock()
            out = layer.forward(out, True)
            spent[f"{layer.name} forward"] += clock() - t
        t = clock()
        value, grad = loss(out, yb)
        spent["loss"] += clock() - t
        t = clock()
        np.isfinite(value)
        int(np.count_nonzero(out.argmax(axis=1) == yb))
        spent["guard and accuracy"] += clock() - t
        for layer in reversed(model.layers):
            t = clock()
            grad = layer.backward(grad)
            spent[f"{layer.name} backward"] += clock() - t
        step = Step(epoch, number, batches, value, out, yb, model, optimizer)
        t = clock()
        for monitor in monitors:
            monitor.before_update(step)
        spent["monitors"] += clock() - t
        t = clock()
        optimizer.step(model.theta, model.g, model.mask)
        spent["optimizer (SGD)"] += clock() - t
        t = clock()
        for monitor in monitors:
            monitor.after_update(step)
        spent["monitors"] += clock() - t
    spent["step"] = clock() - started
    return {key: value / batches for key, value in spent.items()}


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
    epochs: list[dict[str, float]] = []
    end = time.perf_counter() + args.seconds
    while time.perf_counter() < end or len(epochs) < 3:
        epochs.append(epoch_pieces(model, optimizer, monitors, x, y, args.batch, rng, len(epochs)))
    epochs.sort(key=lambda pieces: pieces["step"])
    third = max(1, len(epochs) // 3)
    fast, slow = epochs[:third], epochs[-third:]
    print(
        f"784-100-10 sigmoid SGD, batch {args.batch}, {len(epochs)} epochs of 60,000 images; "
        f"BLAS: {blas_kernel()}\n"
    )
    batches = -(-len(x) // args.batch)
    for name, part in (("fastest", fast), ("slowest", slow)):
        seconds = statistics.median(e["step"] for e in part) * batches
        print(f"epoch, median of the {name} third: {seconds:.3f} s")
    print()
    print("| piece | us per step, fastest third | slowest third | ratio |\n|---|---|---|---|")
    for key in fast[0]:
        a = statistics.median(e[key] for e in fast) * 1e6
        b = statistics.median(e[key] for e in slow) * 1e6
        print(f"| {key} | {a:.0f} | {b:.0f} | {b / a:.2f}x |")


if __name__ == "__main__":
    main()
