"""What watching a run in the studio costs the trainer: MNIST epochs with and without a studio
server streaming that run, interleaved.

    python benchmarks/studio_cost.py [--data-dir DIR] [--reps 3] [--epochs 3]
                                     [--train-first N]

Each repetition trains `digitlab train` (784-100-10 ReLU, batch 32) twice as a child process,
once unwatched and once with a studio server (a separate process, as in real use) serving the
run folder while a client does what the page does: the run's event stream, the runs-list event
stream, and a fetch of the whole run at each new epoch. The epoch time is the trainer's own
`seconds` in history.jsonl (the first epoch dropped); the table gives medians and their ratio.
Target: watched / unwatched <= 1.05. It also prints the CPU time the server and the watching
client took while a run was watched: on a machine with every core busy that is the most the
trainer can lose, and it does not depend on how noisy the machine's load is.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from workers import add_data_dir

from digitlab.studio.command import free_port
from digitlab.studio.runs_api import train_command


def start_server(folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port("127.0.0.1")
    code = "from digitlab.studio.command import studio_command; studio_command()"
    server = subprocess.Popen(
        [sys.executable, "-c", code, str(folder), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    origin = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            httpx.get(f"{origin}/api/runs", timeout=1)
            return server, origin
        except httpx.HTTPError:
            time.sleep(0.1)
    raise SystemExit("the studio server did not start")


def server_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process pid so far (Linux /proc), NaN elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_of_watching(server_pid: int) -> float:
    """CPU seconds so far of the studio server and of this process (the watching client)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return server_cpu_seconds(server_pid) + usage.ru_utime + usage.ru_stime


def watch(origin: str, run_id: str, stop: threading.Event) -> None:
    """What an open run page does: the run's stream, the list's stream, a fetch per epoch."""

    def stream(url: str, on_event: bool) -> None:
        while not stop.is_set():
            try:
                # like EventSource: one long connection (the server pings every 15 s)
                with httpx.stream("GET", url, timeout=httpx.Timeout(5, read=30)) as response:
                    for line in response.iter_lines():
                        if on_event and line.startswith("event: history"):
                            httpx.get(f"{origin}/api/run?run={run_id}", timeout=10)
                        if stop.is_set():
                            return
            except httpx.HTTPError:
                time.sleep(1.0)  # reconnect after a second, as EventSource does

    threads = [
        threading.Thread(target=stream, args=(f"{origin}/api/events?run={run_id}", True)),
        threading.Thread(target=stream, args=(f"{origin}/api/events", False)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def train(
    folder: Path, data_dir: str, epochs: int, train_first: int | None, origin: str | None
) -> list[float]:
    """Epoch seconds (the first dropped) of one `digitlab train`, watched when origin is set."""
    args = ["--data", "idx", "--data-dir", data_dir, "--hidden", "100", "--epochs", str(epochs)]
    if train_first:  # shorter epochs: the watcher's per-epoch work weighs more, not less
        args += ["--train-first", str(train_first)]
    child = subprocess.Popen(
        train_command(*args, "--quiet", "--no-report", "--out", str(folder)),
        stdout=subprocess.DEVNULL,
    )
    stop = threading.Event()
    watcher = None
    if origin is not None:
        while not (folder / "status.json").exists() and child.poll() is None:
            time.sleep(0.05)
        run_id = f"0/{folder.name}"
        watcher = threading.Thread(target=watch, args=(origin, run_id, stop))
        watcher.start()
    if child.wait() != 0:
        raise SystemExit(f"digitlab train failed in {folder}")
    stop.set()
    if watcher is not None:
        watcher.join()
    lines = (folder / "history.jsonl").read_text().splitlines()
    return [json.loads(line)["seconds"] for line in lines][1:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_dir(parser)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--train-first", type=int, help="Train on the first N images only.")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        server, origin = start_server(root)
        times: dict[bool, list[float]] = {False: [], True: []}
        watching_cpu = watching_wall = 0.0
        try:
            for rep in range(options.reps):
                for watched in (False, True) if rep % 2 == 0 else (True, False):
                    folder = root / f"rep{rep}-{'watched' if watched else 'plain'}"
                    watcher = origin if watched else None
                    cpu_before, wall_before = cpu_of_watching(server.pid), time.perf_counter()
                    seconds = train(
                        folder, options.data_dir, options.epochs, options.train_first, watcher
                    )
                    if watched:
                        watching_cpu += cpu_of_watching(server.pid) - cpu_before
                        watching_wall += time.perf_counter() - wall_before
                    times[watched] += seconds
                    print(
                        f"rep {rep} {'watched' if watched else 'plain  '}: "
                        f"{', '.join(f'{s:.2f}' for s in seconds)} s per epoch",
                        flush=True,
                    )
        finally:
            cpu = server_cpu_seconds(server.pid)
            server.terminate()
            server.wait()
        print(f"studio server CPU time over the whole benchmark: {cpu:.1f} s")
    # On a machine whose cores are all busy, the trainer can lose at most the CPU time the
    # server and the watching client take; on one with a core to spare, nothing.
    share = watching_cpu / watching_wall
    print(
        f"server + client CPU while watching: {watching_cpu:.1f} s over {watching_wall:.0f} s "
        f"of watched training ({100 * share:.1f}% of one core)"
    )
    plain, watched = statistics.median(times[False]), statistics.median(times[True])
    print("| epochs | unwatched s (median) | watched s (median) | ratio |")
    print("|---|---|---|---|")
    print(
        f"| {len(times[False])} + {len(times[True])} | {plain:.3f} | {watched:.3f} | "
        f"{watched / plain:.3f} |"
    )


if __name__ == "__main__":
    main()
