"""Soak a sweep: run it with random SIGKILLs of its workers and of the sweep itself, rerun it
until it finishes, and check the result against an uninterrupted run of the same sweep.

    python scripts/soak.py [--trials 100] [--kills 30] [--workers 2] [--seed 0] [--out DIR]

The sweep is `--trials` short trials on the 8x8 digits (4 learning rates x trials/4 seeds,
1 epoch, a 16-unit hidden layer). First it runs once undisturbed (the reference); then again in
a fresh folder while this script SIGKILLs, at random moments, a worker (its trial is recorded
as failed, "worker died", and retried on the next rerun with --retry-failed) or the sweep
process itself (its workers die with it), and reruns the sweep after each kill until one run
ends on its own with every trial done. Then it checks:

- trials.jsonl: every line whole JSON ending in a newline (no torn record); every trial has
  exactly one `done` record, and it is the trial's last; the only `failed` records are workers
  this script killed;
- trials/: one folder per trial, no staging or stale folders left, each metrics.json equal to
  its record;
- the summary: summary.csv equal to the reference's (but for the timing column), and every
  trial's validation and test accuracy bit-equal to the reference's.

Prints a table of what was done and exits 1 if a check fails. tests/test_soak.py runs a small
one (12 trials, 3 kills).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def sweep_file(folder: Path, trials: int) -> Path:
    seeds = max(1, trials // 4)
    path = folder / "soak.toml"
    path.write_text(
        f'name = "soak"\nseeds = {seeds}\n[base]\ndata = "digits"\nepochs = 1\n'
        f"hidden_sizes = [16]\nmonitors = false\n[grid]\nlearning_rate = [0.05, 0.1, 0.2, 0.4]\n"
    )
    return path


def start_sweep(file: Path, out: Path, workers: int) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "digitlab", "sweep", str(file), "--out", str(out),
               "--workers", str(workers), "--retry-failed"]  # fmt: skip
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def children(pid: int) -> list[int]:
    """The live child processes of `pid` (the sweep's workers)."""
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(child) for child in text.split()]


def records(out: Path) -> tuple[list[dict], list[str]]:
    """The records of OUT/trials.jsonl and the problems with its lines (torn, unterminated)."""
    data = (out / "trials.jsonl").read_bytes()
    problems = [] if data.endswith(b"\n") else ["the last line has no newline"]
    rows = []
    for number, line in enumerate(data.splitlines(), 1):
        try:
            rows.append(json.loads(line))
        except ValueError:
            problems.append(f"line {number} is not JSON (a torn record)")
    return rows, problems


def summary(out: Path) -> list[dict[str, str]]:
    rows = list(csv.DictReader(io.StringIO((out / "summary.csv").read_text())))
    for row in rows:
        row.pop("seconds_mean", None)  # wall-clock time differs from run to run
    return rows


def soak(
    file: Path, out: Path, kills: int, workers: int, seed: int, pause: tuple = (0.2, 2.5)
) -> dict:
    """Run the sweep into `out` until it finishes, with `kills` random SIGKILLs on the way,
    each a random `pause` (seconds) after trials started running."""
    rng = np.random.default_rng(seed)
    killed = {"worker": 0, "sweep": 0}
    runs = 0
    start = time.monotonic()
    while True:
        runs += 1
        process = start_sweep(file, out, workers)
        while process.poll() is None:
            if sum(killed.values()) >= kills:
                time.sleep(0.2)
                continue
            while process.poll() is None and not children(process.pid):
                time.sleep(0.05)  # the sweep is starting: kill it only once trials run
            time.sleep(float(rng.uniform(*pause)))
            workers_now = children(process.pid)
            if process.poll() is not None or not workers_now:
                continue
            if rng.random() < 0.6:
                os.kill(int(rng.choice(workers_now)), signal.SIGKILL)
                killed["worker"] += 1
            else:
                os.kill(process.pid, signal.SIGKILL)
                killed["sweep"] += 1
        code = process.wait()
        error = process.stderr.read().decode() if process.stderr else ""
        if code == 0 and sum(killed.values()) >= kills:
            latest = {r["id"]: r for r in records(out)[0]}
            if all(r["status"] == "done" for r in latest.values()):
                break
        elif code not in (0, -signal.SIGKILL):
            raise SystemExit(f"the sweep failed (exit {code}): {error.strip()}")
    return {"runs": runs, "killed": killed, "minutes": (time.monotonic() - start) / 60}


def check(out: Path, reference: Path, trials: int, killed_workers: int) -> list[str]:
    """Every problem with the soaked sweep folder, compared with the undisturbed one."""
    problems = []
    rows, torn = records(out)
    problems += torn
    ids = json.loads((out / "sweep.json").read_text())["trials"]
    if len(ids) != trials:
        problems.append(f"{len(ids)} trials planned, expected {trials}")
    for trial in ids:
        mine = [r for r in rows if r["id"] == trial]
        done = [r for r in mine if r["status"] == "done"]
        if len(done) != 1 or mine[-1] is not done[-1]:
            problems.append(f"{trial}: {len(done)} done records (last: {mine[-1]['status']})")
    failed = [r for r in rows if r["status"] == "failed"]
    strays = [r for r in failed if not r["reason"].startswith("worker died: killed by SIGKILL")]
    problems += [f"{r['id']}: failed for another reason: {r['reason']}" for r in strays]
    if len(failed) > killed_workers:
        problems.append(f"{len(failed)} failed records for {killed_workers} killed workers")
    folders = sorted(p.name for p in (out / "trials").iterdir())
    if folders != sorted(ids):
        problems.append(f"trials/ holds {len(folders)} entries: {folders[:5]}...")
    expected = {r["id"]: r for r in records(reference)[0]}
    for record in (r for r in rows if r["status"] == "done"):
        metrics = json.loads((out / "trials" / record["id"] / "metrics.json").read_text())
        theirs = expected[record["id"]]["metrics"]
        for key in ("val_accuracy", "test_accuracy"):
            if not record["metrics"][key] == metrics[key] == theirs[key]:
                problems.append(f"{record['id']}: {key} {record['metrics'][key]!r} differs")
    if summary(out) != summary(reference):
        problems.append("summary.csv differs from the undisturbed run's")
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--kills", type=int, default=30)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="work folder [a temporary one]")
    options = parser.parse_args()
    root = Path(options.out or tempfile.mkdtemp(prefix="soak-"))
    root.mkdir(parents=True, exist_ok=True)
    file = sweep_file(root, options.trials)
    trials = 4 * max(1, options.trials // 4)
    started = time.monotonic()
    reference = root / "reference"
    done = subprocess.run([sys.executable, "-m", "digitlab", "sweep", str(file), "--out",
                           str(reference), "--workers", str(options.workers)],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"the reference sweep failed: {done.stderr.decode().strip()}")
    reference_minutes = (time.monotonic() - started) / 60
    result = soak(file, root / "soaked", options.kills, options.workers, options.seed)
    problems = check(root / "soaked", reference, trials, result["killed"]["worker"])
    killed = result["killed"]
    print("| soak | value |\n|---|---|")
    print(f"| trials | {trials} (digits, 1 epoch, 64-16-10, {options.workers} workers) |")
    print(f"| SIGKILLs | {killed['worker'] + killed['sweep']} ({killed['worker']} workers, "
          f"{killed['sweep']} the sweep itself) |")  # fmt: skip
    print(f"| sweep runs until finished | {result['runs']} |")
    print(f"| minutes | {result['minutes']:.1f} (undisturbed: {reference_minutes:.1f}) |")
    verdict = "pass" if not problems else f"**FAIL** ({len(problems)} problems)"
    print(f"| every trial done once, no torn record, summary bit-equal | {verdict} |")
    for problem in problems[:20]:
        print(f"- {problem}")
    print(f"\nfolders: {root}")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
