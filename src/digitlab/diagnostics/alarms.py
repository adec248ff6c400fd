"""Findings: what the monitors' numbers in a history say, in plain words, with advice.

`find(records)` reads the per-epoch records (history.jsonl's lines) and returns Findings, each
with the likely causes and the usual remedies. It only reads: nothing here changes a run.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

COLLAPSE_SHARE = 0.5  # half of all predictions in one class (of 10 or so) is not learning
SATURATED_SHARE = 0.5
DEAD_SHARE = 0.5
SPIKES = 3
SPIKE_SHARE = 0.002  # and more than 0.2% of all batches
GROWTH = 3.0  # last hidden layer's weight norm over the first's, for nets of 3+ hidden layers


@dataclass
class Finding:
    kind: str
    epoch: int
    message: str
    causes: list[str] = field(default_factory=list)
    remedies: list[str] = field(default_factory=list)
    severity: str = "warning"  # or "info"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


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
    worst: dict[str, tuple[float, int]] = {}
    for layer in _layers(records, "saturated"):
        peak = max(records, key=lambda r: r.get(f"{layer}.saturated", 0.0))
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


def dead_units(records: list[dict[str, Any]]) -> list[Finding]:
    last = records[-1]
    dead = {
        layer: last[f"{layer}.dead"]
        for layer in _layers(records, "dead")
        if last.get(f"{layer}.dead", 0.0) >= DEAD_SHARE
    }
    if not dead:
        return []
    listed = ", ".join(f"{n} {100 * s:.0f}%" for n, s in dead.items())
    return [
        Finding(
            "dead units",
            int(last["epoch"]),
            f"units that never fire on a batch at epoch {int(last['epoch'])}: {listed}",
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
    tail = records[best_loss:]
    # a few noisy epochs are not overfitting: 5 or more epochs past the best, 10% above it
    rising = len(tail) >= 6 and val_loss[-1] > 1.1 * val_loss[best_loss]
    train_falling = tail[-1]["train_loss"] < tail[0]["train_loss"]
    if rising and train_falling:
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
    return findings


CHECKS = (collapse, saturation, dead_units, growing_weights, spikes, overfitting)


def find(records: list[dict[str, Any]]) -> list[Finding]:
    """Every finding the checks make on a run's per-epoch records (empty for no records)."""
    if not records:
        return []
    return [finding for check in CHECKS for finding in check(records)]
