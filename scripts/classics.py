"""Print the figures behind the README's recipes table from sweep and run folders.

    .venv/bin/python scripts/classics.py FOLDER... [--per-class]

A sweep folder (digitlab sweep --out FOLDER): per variant, the seeds done and failed, the mean
validation and test accuracy with the range over seeds and a 95% t-interval of the test mean,
and what the open questions read off the histories: loss spikes (summed over epochs), the
commonest predicted test class and its share, the epochs of the lowest validation loss and of
the highest validation accuracy, and the seconds and epochs to 97% validation accuracy
(--target 0.96 for another level).
A run folder (digitlab train --out FOLDER): accuracy per split with its Wilson interval.
--per-class adds per-digit accuracy on the validation and test parts (the book's two halves).
--loss-change: for runs trained with save_best_model, the change in validation loss from the
epoch of its lowest value to the end, split into examples right at both, wrong at both, became
right and became wrong (count, mean loss before and after, part of the change); the same table
and its plot are in each run's report.html.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from digitlab.lab.runs import read_history
from digitlab.report.losschange import read_loss_change
from digitlab.stats import t_quantile


def history(folder: Path) -> list[dict[str, Any]]:
    return list(read_history(folder))


def extras(folder: Path, target: float = 0.97) -> dict[str, Any]:
    """What one finished run's history and predictions say beyond its accuracy."""
    rows = history(folder)
    out: dict[str, Any] = {"spikes": sum(r.get("loss_spikes", 0.0) for r in rows)}
    val_loss = [r.get("val_loss", math.inf) for r in rows]
    val_acc = [r.get("val_accuracy", 0.0) for r in rows]
    out["best_loss_epoch"] = int(np.argmin(val_loss)) + 1
    out["best_acc_epoch"] = int(np.argmax(val_acc)) + 1
    seconds = np.cumsum([r.get("seconds", 0.0) for r in rows])
    reached = [i for i, a in enumerate(val_acc) if a >= target]
    out["to97"] = (float(seconds[reached[0]]), reached[0] + 1) if reached else None
    predictions = folder / "predictions.npz"
    if predictions.exists():
        with np.load(predictions) as p:
            counts = np.bincount(p["test_pred"], minlength=10)
            out["top_class"] = (int(counts.argmax()), float(counts.max() / counts.sum()))
            out["classes"] = int((counts > 0).sum())
    return out


def interval(values: list[float]) -> str:
    if len(values) < 2:
        return ""
    mean, std = float(np.mean(values)), float(np.std(values, ddof=1))
    half = t_quantile(0.975, len(values) - 1) * std / math.sqrt(len(values))
    return f" ({100 * (mean - half):.2f}-{100 * (mean + half):.2f})"


def sweep(folder: Path, target: float = 0.97) -> None:
    trials = [json.loads(line) for line in (folder / "trials.jsonl").read_text().splitlines()]
    by_variant: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for trial in trials:
        by_variant[json.dumps(trial["options"], sort_keys=True)].append(trial)
    print(f"== {folder}")
    for variant, group in by_variant.items():
        done = {t["seed"]: t for t in group if t["status"] == "done"}
        failed = sorted(t["seed"] for t in group if t["status"] != "done")
        if not done:
            print(f"{variant}: no seed done (failed: {failed})")
            continue
        val = [t["metrics"]["val_accuracy"] for t in done.values()]
        test = [t["metrics"]["test_accuracy"] for t in done.values()]
        more = [extras(folder / "trials" / t["id"], target) for t in done.values()]
        to97 = [m["to97"] for m in more if m["to97"]]
        print(
            f"{variant}: {len(done)} done{f', failed seeds {failed}' if failed else ''}; "
            f"val {100 * np.mean(val):.2f}% [{100 * min(val):.2f}-{100 * max(val):.2f}]; "
            f"test {100 * np.mean(test):.2f}%{interval(test)} "
            f"[{100 * min(test):.2f}-{100 * max(test):.2f}]"
        )
        print(
            f"    spikes {[m['spikes'] for m in more]}; top test class (class, share) "
            f"{[m.get('top_class') for m in more]}; classes predicted "
            f"{[m.get('classes') for m in more]}; best val loss / accuracy epochs "
            f"{[(m['best_loss_epoch'], m['best_acc_epoch']) for m in more]}; "
            f"to {100 * target:g}% (s, epochs) "
            f"{[(round(s, 1), e) for s, e in to97] if to97 else '-'}"
        )


def run_folder(folder: Path, per_class: bool) -> None:
    metrics = json.loads((folder / "metrics.json").read_text())
    print(f"== {folder}")
    for split, m in metrics.items():
        if isinstance(m, dict) and "accuracy" in m:
            low, high = m["accuracy_ci95"]
            accuracy = f"{100 * m['accuracy']:.2f}% ({100 * low:.2f}-{100 * high:.2f})"
            print(f"{split}: {accuracy}, n={m['n']}")
    if per_class:
        with np.load(folder / "predictions.npz") as p:
            for part in ("val", "test"):
                y, pred = p[f"{part}_y"], p[f"{part}_pred"]
                accuracy = [float((pred[y == k] == k).mean()) for k in range(10)]
                print(f"{part} per digit: " + " ".join(f"{100 * a:.1f}" for a in accuracy))


def print_loss_change(folder: Path) -> None:
    read = read_loss_change(folder)
    if read is None:
        print(f"{folder.name}: no per-example losses (train with save_best_model)")
        return
    change, epoch = read
    print(f"{folder.name}: validation loss from epoch {epoch} (lowest) to the end")
    for line in change.lines():
        print(f"    {line}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path)
    parser.add_argument("--per-class", action="store_true")
    parser.add_argument("--loss-change", action="store_true")
    parser.add_argument("--target", type=float, default=0.97, help="validation accuracy [0.97]")
    args = parser.parse_args(argv)
    for folder in args.folders:
        if (folder / "trials.jsonl").exists():
            sweep(folder, args.target)
            if args.per_class:
                for trial in sorted((folder / "trials").iterdir()):
                    if (trial / "metrics.json").exists():
                        run_folder(trial, True)
            if args.loss_change:
                for trial in sorted((folder / "trials").iterdir()):
                    if (trial / "metrics.json").exists():
                        print_loss_change(trial)
        elif (folder / "metrics.json").exists():
            run_folder(folder, args.per_class)
            if args.loss_change:
                print_loss_change(folder)
        else:
            print(f"classics: error: {folder} is neither a sweep nor a run folder", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
