"""`digitlab train` as a whole process against a plain PyTorch script doing the same job.

    pip install -e '.[bench]'
    python benchmarks/cli_speed.py --data-dir DIR [--reps 3] [--epochs 5]
        [--batches 32,128,1000] [--forms raw,standardized] [--profile]

What users run, measured from outside: the CLI (`digitlab train --data mnist --split book
--hidden-sizes 100 --activation sigmoid --optimizer sgd --learning-rate 0.1 --batch-size B`,
monitors on as by default, no report) and a PyTorch script that reads the same IDX files, scales
x/255 (or standardises with the training set's mean and std), trains nn.Sequential(Linear,
Sigmoid, Linear) with SGD and evaluates the 10,000 test images every epoch. Each process runs 1
epoch and then E epochs; the cost of an epoch is (t[E] - t[1]) / (E - 1), which leaves out
start-up, loading and the final evaluation. Repetitions are interleaved (digitlab, PyTorch,
digitlab, ...) so that the machine's slow phases hit both alike; the table gives medians with
the spread (max / min), the BLAS kernel and a matmul probe (GFLOP/s of a 2048^3 sgemm) taken
before each repetition, so that a slow phase shows.

--profile runs the CLI once in-process under cProfile (the first form, batch 128 when listed)
and prints where its epochs go, phase by phase (forward, backward, optimizer, monitors,
validation, gather, progress bar, files).
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from workers import add_data_dir, blas_kernel

TORCH_SCRIPT = r"""
import gzip, sys, time
import numpy as np
import torch
from torch import nn

data_dir, epochs, batch, form = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
torch.set_num_threads(2)
torch.manual_seed(0)

def read(name):
    raw = gzip.open(f"{data_dir}/{name}", "rb").read()
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(raw[3])]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * len(dims)).reshape(dims)

x = read("train-images-idx3-ubyte.gz").reshape(60000, 784).astype(np.float32) / 255
y = read("train-labels-idx1-ubyte.gz").astype(np.int64)
xt = read("t10k-images-idx3-ubyte.gz").reshape(10000, 784).astype(np.float32) / 255
yt = read("t10k-labels-idx1-ubyte.gz").astype(np.int64)
if form == "standardized":
    mean, std = x.mean(), x.std()
    x, xt = (x - mean) / std, (xt - mean) / std
x, y, xt, yt = map(torch.from_numpy, (x, y, xt, yt))
model = nn.Sequential(nn.Linear(784, 100), nn.Sigmoid(), nn.Linear(100, 10))
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
loss_fn = nn.CrossEntropyLoss()
for epoch in range(epochs):
    order = torch.randperm(len(x))
    for start in range(0, len(x), batch):
        idx = order[start:start + batch]
        optimizer.zero_grad()
        loss = loss_fn(model(x[idx]), y[idx])
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        accuracy = (model(xt).argmax(1) == yt).float().mean().item()
    print(f"epoch {epoch + 1}: test accuracy {accuracy:.4f}", flush=True)
"""


def cli_command(data_dir: str, epochs: int, batch: int, form: str, out: str) -> list[str]:
    command = [sys.executable, "-m", "digitlab", "train", "--data", "mnist", "--data-dir"]
    command += [data_dir, "--split", "book", "--hidden-sizes", "100", "--activation", "sigmoid"]
    command += ["--optimizer", "sgd", "--learning-rate", "0.1", "--batch-size", str(batch)]
    command += ["--epochs", str(epochs), "--quiet", "--no-report", "--out", out]
    return command + (["--standardize"] if form == "standardized" else [])


def timed(command: list[str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"cli_speed: {' '.join(command)} failed:\n{done.stderr[-2000:]}")
    return time.perf_counter() - started


def matmul_probe(size: int = 2048, reps: int = 3) -> float:
    """GFLOP/s of the best of a few size^3 float32 products (the machine's state right now)."""
    a = np.ones((size, size), np.float32)
    best = float("inf")
    for _ in range(reps):
        started = time.perf_counter()
        a @ a
        best = min(best, time.perf_counter() - started)
    return 2 * size**3 / best / 1e9


def epoch_cost(commands: dict[int, list[str]], epochs: int) -> float:
    """(t[epochs] - t[1]) / (epochs - 1) for one framework, one repetition."""
    return (timed(commands[epochs]) - timed(commands[1])) / (epochs - 1)


def measure(args: argparse.Namespace) -> list[dict[str, Any]]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "torch_mnist.py"
        script.write_text(TORCH_SCRIPT)
        for form in args.forms.split(","):
            for batch in (int(b) for b in args.batches.split(",")):
                ours: list[float] = []
                theirs: list[float] = []
                probes: list[float] = []
                for rep in range(args.reps):
                    probes.append(matmul_probe())
                    out = f"{tmp}/{form}-{batch}-{rep}"
                    commands = {
                        n: cli_command(args.data_dir, n, batch, form, f"{out}-{n}")
                        for n in (1, args.epochs)
                    }
                    torch_commands = {
                        n: [sys.executable, str(script), args.data_dir, str(n), str(batch), form]
                        for n in (1, args.epochs)
                    }
                    ours.append(epoch_cost(commands, args.epochs))
                    theirs.append(epoch_cost(torch_commands, args.epochs))
                rows.append(
                    {
                        "form": form,
                        "batch": batch,
                        "digitlab": ours,
                        "torch": theirs,
                        "probe": probes,
                    }
                )
                print(row_text(rows[-1]), flush=True)
    return rows


def row_text(row: dict[str, Any]) -> str:
    ours, theirs = statistics.median(row["digitlab"]), statistics.median(row["torch"])

    def spread(values: list[float]) -> str:
        return f"{max(values) / min(values):.2f}" if min(values) > 0 else "n/a"

    return (
        f"| {row['form']} | {row['batch']} | {ours:.3f} ({spread(row['digitlab'])}) | "
        f"{theirs:.3f} ({spread(row['torch'])}) | **{ours / theirs:.2f}x** | "
        f"{min(row['probe']):.0f}-{max(row['probe']):.0f} |"
    )


# phase -> (file suffix, function name, calling function or None): cProfile's cumulative time
# of that function, when called from that caller
PHASES = {
    "data (read, split, convert)": ("lab/experiment.py", "prepare_data", None),
    "fit (all of training)": ("core/train.py", "fit", None),
    "  forward (training batches)": ("core/model.py", "forward", "_train_batch"),
    "  loss": ("core/losses.py", "softmax_cross_entropy", "_train_batch"),
    "  backward": ("core/model.py", "backward", "_train_batch"),
    "  optimizer": ("core/optim.py", "step", "_train_batch"),
    "  end of epoch (validation, monitors' epoch numbers)": ("core/train.py", "_end_epoch", None),
    "files (history, status, run folder)": ("lab/runs.py", "atomic_write", None),
}


def profile(args: argparse.Namespace) -> None:
    """Where `digitlab train`'s time goes, by phase (cProfile's cumulative times)."""
    from digitlab.cli import main

    with tempfile.TemporaryDirectory() as tmp:
        form = args.forms.split(",")[0]
        batches = [int(b) for b in args.batches.split(",")]
        batch = 128 if 128 in batches else batches[0]  # the target's batch, when it is listed
        argv = cli_command(args.data_dir, args.epochs, batch, form, f"{tmp}/run")[3:]
        profiler = cProfile.Profile()
        started = time.perf_counter()
        profiler.enable()
        try:
            main(argv)
        except SystemExit:
            pass
        profiler.disable()
        total = time.perf_counter() - started
    raw: dict[Any, Any] = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    seconds: dict[str, float] = {}
    for phase, (suffix, function, caller) in PHASES.items():
        for (filename, _, name), (_, _, _, cumulative, callers) in raw.items():
            if not (filename.endswith(suffix) and name == function):
                continue
            if caller is None:
                seconds[phase] = seconds.get(phase, 0.0) + cumulative
            else:
                seconds[phase] = seconds.get(phase, 0.0) + sum(
                    timing[3] for (_, _, name2), timing in callers.items() if name2 == caller
                )
    monitors = sum(
        cumulative
        for (filename, _, name), (_, _, _, cumulative, _) in raw.items()
        if filename.endswith("diagnostics/monitors.py")
        and name in ("before_update", "after_update")
    )
    seconds["  monitors, per batch"] = monitors
    fit = seconds["fit (all of training)"]
    inside = sum(value for phase, value in seconds.items() if phase.startswith("  "))
    seconds["  rest of fit (batch gather, guards, callbacks, progress)"] = fit - inside
    seconds["outside fit and data (start-up, final evaluation, printing)"] = (
        total - fit - seconds["data (read, split, convert)"]
    )
    print(f"\n{form}, batch {batch}, {args.epochs} epochs: {total:.2f} s in all (profiled)")
    if args.verbose:
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
    print("| phase | seconds | share |\n|---|---|---|")
    for phase, value in seconds.items():
        name = phase.replace("  ", "&nbsp;&nbsp;", 1) if phase.startswith("  ") else phase
        print(f"| {name} | {value:.2f} | {100 * value / total:.0f}% |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_dir(parser)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batches", default="32,128,1000")
    parser.add_argument("--forms", default="raw,standardized")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--verbose", action="store_true", help="with --profile: the top functions")
    args = parser.parse_args()
    if args.epochs < 2:
        sys.exit("cli_speed: --epochs must be 2 or more")
    if args.profile:
        profile(args)
        return
    import torch

    print(
        f"## digitlab train vs a PyTorch script, whole process, per epoch\n\nBLAS: "
        f"{blas_kernel()}; PyTorch {torch.__version__} ({torch.get_num_threads()} threads); "
        f"{args.reps} interleaved repetitions of 1 and {args.epochs} epochs\n"
    )
    print(
        "| data | batch | digitlab s/epoch (spread) | PyTorch s/epoch (spread) | ratio | "
        "matmul probe GFLOP/s |\n|---|---|---|---|---|---|"
    )
    measure(args)


if __name__ == "__main__":
    main()
