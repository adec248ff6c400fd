"""What the default training monitors cost: epochs with and without them, interleaved.

    python benchmarks/monitor_cost.py [--data-dir DIR] [--reps 5]

Target: under 10% of training time for every case.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from workers import add_data_dir, load_mnist

import digitlab as dl
from digitlab.diagnostics.monitors import default_monitors

CASES = [
    ("784-100-10 sigmoid sgd b32", [100], "sigmoid", "sgd", 0.1, 32),
    ("784-100-10 sigmoid sgd b128", [100], "sigmoid", "sgd", 0.1, 128),
    ("784-100-10 sigmoid sgd b1000", [100], "sigmoid", "sgd", 1.0, 1000),
    ("784-1200-10 sigmoid sgd b600", [1200], "sigmoid", "sgd", 0.8, 600),
    ("784-256-128-64-10 relu adam b128", [256, 128, 64], "relu", "adam", 0.001, 128),
]


def epoch_seconds(model, optimizer, x, y, x_val, y_val, batch, lr, monitors) -> float:
    started = time.perf_counter()
    options = dl.TrainOptions(1, dl.batch_size_schedule(batch), dl.get_schedule("constant", lr, 1))
    dl.fit(
        model, x, y, optimizer, options, rng=np.random.default_rng(0),
        validation=(x_val, y_val), hooks=dl.TrainHooks(monitors=monitors),
    )  # fmt: skip
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_dir(parser)
    parser.add_argument("--reps", type=int, default=5)
    options = parser.parse_args()
    x, y, x_val, y_val = load_mnist(options.data_dir)
    print("| case | without monitors s (median) | with monitors s (median) | overhead |")
    print("|---|---|---|---|")
    for name, hidden, activation, optimizer_name, lr, batch in CASES:
        times: dict[bool, list[float]] = {False: [], True: []}
        models = {}
        for monitored in (False, True):
            rng = np.random.default_rng(0)
            model = dl.build_model(dl.mlp_spec(hidden, 10, activation), 784, rng)
            models[monitored] = (model, dl.get_optimizer(optimizer_name, lr))
        for rep in range(options.reps + 1):
            for monitored in (False, True):
                model, optimizer = models[monitored]
                monitors = default_monitors() if monitored else []
                seconds = epoch_seconds(model, optimizer, x, y, x_val, y_val, batch, lr, monitors)
                if rep:  # the first round warms up
                    times[monitored].append(seconds)
        plain, watched = statistics.median(times[False]), statistics.median(times[True])
        print(f"| {name} | {plain:.3f} | {watched:.3f} | {100 * (watched / plain - 1):+.1f}% |")


if __name__ == "__main__":
    main()
