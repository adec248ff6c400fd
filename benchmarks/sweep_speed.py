"""Sweep throughput: the same 27 trials on 1 local worker, on 2, and as Ray tasks.

    python benchmarks/sweep_speed.py [--epochs 200] [--workers 2] [--reps 1] [--no-ray]

The sweep is recipes/sweeps/lr_activation.toml (3 learning rates x 3 activations x 3 seeds on
the 8x8 digits) with `epochs` raised so one trial takes about a second. Each executor runs the
whole sweep into a fresh folder; the table gives the wall-clock seconds, the work (the sum of
the trials' own seconds; it grows when workers contend for cores or memory bandwidth), seconds
per trial, the speed-up over one worker and the 1-minute load average when the run began.
Every worker limits BLAS to one thread, so the one-worker row is a single core. Ray's start-up
(ray.init, a local instance) is timed apart from its sweep. With --reps R the executors take
turns R times (so drift in the machine's load hits all alike) and each row shows its fastest
repetition.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from digitlab.lab.sweep import LOG_FILE, default_workers, read_sweep, run_sweep

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "sweeps" / "lr_activation.toml"


def timed_sweep(
    epochs: int, out: Path, workers: int, ray_address: str | None = None
) -> tuple[float, float, int]:
    """(wall seconds, summed trial seconds, trials done) of the recipe sweep run into `out`."""
    spec = read_sweep(RECIPE)
    spec.base["epochs"] = epochs
    quiet = Console(file=open(os.devnull, "w"))  # noqa: SIM115 - closed with the process
    start = time.perf_counter()
    run_sweep(spec, out, workers=workers, ray_address=ray_address, console=quiet)
    wall = time.perf_counter() - start
    records = [json.loads(line) for line in (out / LOG_FILE).read_text().splitlines()]
    done = [r for r in records if r["status"] == "done"]
    return wall, sum(r["seconds"] for r in done), len(done)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=200, help="epochs per trial [200]")
    parser.add_argument("--workers", type=int, default=2, help="the parallel case [2]")
    parser.add_argument("--reps", type=int, default=1, help="repetitions, interleaved [1]")
    parser.add_argument("--no-ray", action="store_true", help="skip the Ray case")
    args = parser.parse_args()

    use_ray = not args.no_ray and importlib.util.find_spec("ray") is not None
    names = {1: "local, 1 worker", args.workers: f"local, {args.workers} workers"}
    if use_ray:
        names[0] = f"Ray local, {args.workers} CPUs"
    best: dict[int, tuple[float, float, int, float]] = {}  # key -> wall, work, done, load
    ray_start: list[float] = []
    with tempfile.TemporaryDirectory(prefix="sweep-speed-") as tmp:
        for rep in range(args.reps):
            for key in names:
                out = Path(tmp) / f"{key}-{rep}"
                load = os.getloadavg()[0]
                if key:
                    result = timed_sweep(args.epochs, out, key)
                else:
                    import ray

                    start = time.perf_counter()
                    ray.init(num_cpus=args.workers, include_dashboard=False, log_to_driver=False)
                    ray_start.append(time.perf_counter() - start)
                    try:
                        result = timed_sweep(args.epochs, out, args.workers, ray_address="local")
                    finally:
                        ray.shutdown()
                if key not in best or result[0] < best[key][0]:
                    best[key] = (*result, load)

    console = Console(highlight=False)
    console.print(
        f"{platform.machine()}, {default_workers()} usable CPUs, epochs per trial "
        f"{args.epochs}, best of {args.reps}"
    )
    table = Table(title="recipes/sweeps/lr_activation.toml: 3 lr x 3 activations x 3 seeds")
    columns = ("executor", "trials", "wall s", "work s", "s/trial", "speed-up", "load")
    for column in columns:
        table.add_column(column, justify="left" if column == "executor" else "right", no_wrap=True)
    base = best[1][0]
    for key, name in names.items():
        wall, work, done, load = best[key]
        table.add_row(
            name,
            str(done),
            f"{wall:.1f}",
            f"{work:.1f}",
            f"{work / max(done, 1):.2f}",
            f"{base / wall:.2f}x",
            f"{load:.2f}",
        )
    console.print(table)
    if ray_start:
        console.print(
            f"Ray start-up (ray.init, local instance): {min(ray_start):.1f} s, not in wall s"
        )
    elif not args.no_ray:
        console.print("Ray is not installed: pip install 'ray[default]' for the Ray case")


if __name__ == "__main__":  # worker processes are spawned: they import this file, not run it
    main()
