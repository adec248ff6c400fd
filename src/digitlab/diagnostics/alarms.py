"""Findings: what the monitors' numbers in a history say, in plain words, with advice.

`find(records)` reads the per-epoch records (history.jsonl's lines) and returns Findings, each
with the likely causes and the usual remedies. It only reads: nothing here changes a run. The
checks on trends across epochs, layers and steps, and against chance, are in trends.py.
"""

from __future__ import annotations

import math
import re
from typing import Any

from digitlab.diagnostics.findings import COLLAPSE_SHARE, Finding
from digitlab.diagnostics.trends import (
    depth_scale,
    exact_zeros,
    growing_over_epochs,
    near_chance,
    update_ratio,
)

SATURATED_SHARE = 0.5
SATURATION_EPOCHS = 3  # saturation is judged in the first epochs only
DEAD_SHARE = 0.5
DEAD_EPOCHS = 3  # dead units must stay dead this many epochs in a row
SPIKES = 3
SPIKE_SHARE = 0.002  # and more than 0.2% of all batches
GROWTH = 3.0  # last hidden layer's weight norm over the first's, for nets of 3+ hidden layers
NOISE = 2.0  # a validation loss rise within this many standard errors is noise
LOSS_CAP = 10.0  # per-example loss assumed at most this in bounding its spread (p = 5e-5)


def _layers(records: list[dict[str, Any]], suffix: str) -> list[str]:
    """Layer or parameter names having `<name>.<suffix>` keys, in network order."""
    names: list[str] = []
    for key in records[-1] if records else []:
        if key.endswith(f".{suffix}"):
            names.append(key[: -len(suffix) - 1])
    return names


def _depth(name: str) -> int:
    match = re.search(r"(\d+)", name)
    return int(match.group(1)) if match else 0


def collapse(records: list[dict[str, Any]]) -> list[Finding]:
    last = records[-1]
    share = last.get("top_class_share")
    if share is None or share < COLLAPSE_SHARE:
        return []
    return [
        Finding(
            "class collapse",
            int(last["epoch"]),
            f"{100 * share:.0f}% of validation predictions are one class at epoch "
            f"{int(last['epoch'])} (the two commonest: {100 * last['top2_class_share']:.0f}%)",
            causes=[
                "initial weights too large: the logits saturate the softmax and one class wins",
                "learning rate too high, or dead units leaving a constant output",
                "inputs not scaled (raw 0-255 pixels)",
            ],
            remedies=[
                "lower the initial weight scale (--init he or xavier, or --init-param std=0.1)",
                "lower the learning rate 10x",
                "standardise the inputs (--standardize)",
            ],
        )
    ]


def saturation(records: list[dict[str, Any]]) -> list[Finding]:
    """Units saturated in the first SATURATION_EPOCHS epochs, before the net has learned.

    Later, saturation is what learning does to sigmoid units (book_sigmoid_100.toml: 18% at
    epoch 1, 52% at epoch 30 while its training loss fell 40-fold to 98.6%): no alarm then.
    """
    worst: dict[str, tuple[float, int]] = {}
    early = records[:SATURATION_EPOCHS]
    for layer in _layers(records, "saturated"):
        peak = max(early, key=lambda r: r.get(f"{layer}.saturated", 0.0))
        share = peak.get(f"{layer}.saturated", 0.0)
        if share >= SATURATED_SHARE:
            worst[layer] = (share, int(peak["epoch"]))
    if not worst:
        return []
    listed = ", ".join(f"{n} {100 * s:.0f}% at epoch {e}" for n, (s, e) in worst.items())
    return [
        Finding(
            "saturation",
            min(e for _, e in worst.values()),
            f"saturated units (|f'(z)| < 0.01, they barely learn): {listed}",
            causes=[
                "inputs too large or not centred (inverted images: a background of 1s)",
                "a learning rate too high for sigmoid or tanh units",
                "quadratic cost on sigmoid outputs, whose gradient vanishes when wrong",
            ],
            remedies=[
                "standardise the inputs (--standardize)",
                "lower the learning rate about 10x",
                "use softmax cross-entropy (the default loss)",
                "Xavier/LeCun initialisation (N(0, 1/n_in)), not N(0, 1)",
            ],
        )
    ]


def _dead(records: list[dict[str, Any]]) -> dict[str, float]:
    """Layers whose dead share was at least DEAD_SHARE in each of the last DEAD_EPOCHS
    records, with the smallest of those shares."""
    if len(records) < DEAD_EPOCHS:
        return {}
    recent = records[-DEAD_EPOCHS:]
    dead = {}
    for layer in _layers(records, "dead"):
        share = min(r.get(f"{layer}.dead", 0.0) for r in recent)
        if share >= DEAD_SHARE:
            dead[layer] = share
    return dead


def dead_units(records: list[dict[str, Any]]) -> list[Finding]:
    """Units silent on whole batches for DEAD_EPOCHS epochs in a row.

    One epoch is not enough: early large steps (Adam's, say) silence units that the changing
    inputs of the layers below bring back later. The alarm the CLI printed while training is
    withdrawn at the end if the units came back.
    """
    last = records[-1]
    dead = _dead(records)
    if not dead:
        first = next((i for i in range(DEAD_EPOCHS, len(records)) if _dead(records[:i])), None)
        if first is None:
            return []
        then = _dead(records[:first])
        listed = ", ".join(
            f"{n} {100 * s:.0f}% -> {100 * last.get(f'{n}.dead', 0.0):.0f}%"
            for n, s in then.items()
        )
        return [
            Finding(
                "dead units withdrawn",
                int(last["epoch"]),
                f"the dead units alarm of epoch {int(records[first - 1]['epoch'])} is "
                f"withdrawn: the units came back ({listed} at epoch {int(last['epoch'])})",
                severity="info",
            )
        ]
    listed = ", ".join(f"{n} {100 * s:.0f}%" for n, s in dead.items())
    return [
        Finding(
            "dead units",
            int(last["epoch"]),
            f"units that never fire on a batch, epochs {int(records[-DEAD_EPOCHS]['epoch'])}-"
            f"{int(last['epoch'])}: {listed}",
            causes=["learning rate too high", "large negative biases after a big step"],
            remedies=[
                "lower the learning rate",
                "He initialisation (--init he)",
                "leaky_relu or shifted_relu, which keep a gradient below zero",
            ],
        )
    ]


def growing_weights(records: list[dict[str, Any]]) -> list[Finding]:
    last = records[-1]
    hidden = sorted(_layers(records, "norm"), key=_depth)[:-1]  # without the output layer
    if len(hidden) < 3:
        return []
    norms = [last[f"{name}.norm"] for name in hidden]
    ratio = norms[-1] / max(norms[0], 1e-12)
    rising = all(b >= a for a, b in zip(norms, norms[1:], strict=False))
    if not (rising and ratio >= GROWTH):
        return []
    listed = ", ".join(f"{n}: {v:.3g}" for n, v in zip(hidden, norms, strict=True))
    return [
        Finding(
            "weights grow with depth",
            int(last["epoch"]),
            f"weight norms grow layer by layer ({listed}; x{ratio:.1f})",
            causes=["ReLU outputs have a positive mean that each layer amplifies"],
            remedies=[
                "He initialisation (--init he)",
                "a shifted ReLU, max(z, -1) (--activation shifted_relu)",
                "weight decay (--l2) or dropout",
            ],
        )
    ]


def spikes(records: list[dict[str, Any]]) -> list[Finding]:
    total = int(sum(r.get("loss_spikes", 0) for r in records))
    batches = sum(r.get("loss_spike_batches", 0) for r in records)
    if total < SPIKES or total < SPIKE_SHARE * batches:  # a few in thousands of batches is noise
        return []
    worst = max(records, key=lambda r: r.get("loss_spikes", 0))
    return [
        Finding(
            "loss spikes",
            int(worst["epoch"]),
            f"{total} batches had a loss far above its recent trend "
            f"(most in epoch {int(worst['epoch'])}: {int(worst['loss_spikes'])})",
            causes=["learning rate too high", "batches too small or unshuffled"],
            remedies=["lower the learning rate", "a larger batch", "a decaying --lr-schedule"],
        )
    ]


def loss_noise(record: dict[str, Any]) -> float | None:
    """The standard error of a record's mean validation loss, or None when n is not recorded.

    The per-example losses' spread is not recorded, so it is bounded: losses in [0, LOSS_CAP]
    with mean L have a variance of at most L * LOSS_CAP. That overstates the noise of a
    trained classifier (most examples near 0, a few wrong ones near 2-5) by about 2x, which
    errs towards silence.
    """
    n = record.get("val_examples")
    if not n:
        return None
    return math.sqrt(max(record["val_loss"], 0.0) * LOSS_CAP / n)


def _overfit(records: list[dict[str, Any]], best: int, now: int) -> bool:
    """Whether epoch `now` shows overfitting against the best validation loss, at `best`.

    Five or more epochs past the best, the validation loss is 10% above it and more than
    NOISE standard errors of the difference of the two means, and training loss fell.
    """
    low, high = records[best], records[now]
    rise = high["val_loss"] - low["val_loss"]
    noise_low, noise_high = loss_noise(low), loss_noise(high)
    noisy = (
        noise_low is not None
        and noise_high is not None
        and rise <= NOISE * math.hypot(noise_low, noise_high)
    )
    return (
        now - best >= 5
        and high["val_loss"] > 1.1 * low["val_loss"]
        and not noisy
        and high["train_loss"] < low["train_loss"]
    )


def overfitting(records: list[dict[str, Any]]) -> list[Finding]:
    if not records or "val_loss" not in records[-1]:
        return []
    val_loss = [r["val_loss"] for r in records]
    best_loss = min(range(len(records)), key=lambda i: val_loss[i])
    best_acc = max(range(len(records)), key=lambda i: records[i]["val_accuracy"])
    best_loss_epoch, best_acc_epoch = (
        int(records[best_loss]["epoch"]),
        int(records[best_acc]["epoch"]),
    )
    findings = [
        Finding(
            "best epochs",
            int(records[-1]["epoch"]),
            f"best validation loss at epoch {best_loss_epoch} ({val_loss[best_loss]:.4f}), "
            f"best validation accuracy at epoch {best_acc_epoch} "
            f"({100 * records[best_acc]['val_accuracy']:.2f}%)",
            severity="info",
        )
    ]
    # Replay the run: the first epoch whose records alone would raise the alarm (the CLI
    # prints it then), and the best epoch it was measured against.
    first, best = None, 0
    for now in range(len(records)):
        if val_loss[now] < val_loss[best]:
            best = now
        elif first is None and _overfit(records, best, now):
            first = (now, best)
    if _overfit(records, best_loss, len(records) - 1):
        findings.append(
            Finding(
                "overfitting",
                int(records[-1]["epoch"]),
                f"validation loss has risen since epoch {best_loss_epoch} "
                f"({val_loss[best_loss]:.4f} -> {val_loss[-1]:.4f}) while training loss kept "
                f"falling; accuracy can still look fine for a while",
                causes=["a model large for the training set", "training too long"],
                remedies=[
                    "early stopping (--patience 5)",
                    "L2 weight decay (--l2) or dropout (--dropout)",
                    "more data or augmentation",
                ],
            )
        )
    elif first is not None:
        now, then_best = first
        later = (
            f"a new best validation loss at epoch {best_loss_epoch} ({val_loss[best_loss]:.4f})"
            if val_loss[best_loss] < val_loss[then_best]
            else f"no rise beyond noise at the end ({val_loss[-1]:.4f})"
        )
        findings.append(
            Finding(
                "overfitting withdrawn",
                int(records[-1]["epoch"]),
                f"the overfitting alarm of epoch {int(records[now]['epoch'])} (validation loss "
                f"{val_loss[then_best]:.4f} -> {val_loss[now]:.4f}) is withdrawn: the run "
                f"contradicts it with {later}",
                severity="info",
            )
        )
    return findings


CHECKS = (
    collapse,
    near_chance,
    saturation,
    dead_units,
    depth_scale,
    growing_weights,
    growing_over_epochs,
    update_ratio,
    spikes,
    overfitting,
    exact_zeros,
)


def find(records: list[dict[str, Any]]) -> list[Finding]:
    """Every finding the checks make on a run's per-epoch records (empty for no records)."""
    if not records:
        return []
    return [finding for check in CHECKS for finding in check(records)]
