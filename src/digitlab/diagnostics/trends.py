"""Findings on trends: weights across epochs, scales across layers, updates across steps, and
accuracy against chance; plus the count of exact zeros of z.

Each check reads the per-epoch records, as alarms.py's do, and judges the run as it stands at
its last record. An alarm the CLI printed at an earlier epoch that the end of the run
contradicts is withdrawn: an info finding says which epoch raised it and what changed.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from digitlab.diagnostics.findings import COLLAPSE_SHARE, Finding
from digitlab.diagnostics.monitors import RATIO_HIGH, RATIO_HIGH_ADAPTIVE, RATIO_LOW

Records = list[dict[str, Any]]

GROWTH_EPOCHS = 6  # epochs of growth in a row the weight-growth alarm looks at
GROWTH_MIN = 0.02  # each of them at least 2% up on the epoch before
GROWTH_STEADY = 0.9  # the later half's growth at least 0.9x the earlier half's: not slowing
DEPTH_FACTOR = 1e3  # a scale shrinking or growing 1,000-fold from the first layer to the last
DEPTH_LAYERS = 3  # hidden layers needed to speak of depth
RATIO_RUN = 50  # consecutive sampled steps (2-3 epochs at 20 an epoch) out of the usual range
RATIO_LOWERED = 3.0  # epochs whose rate a schedule cut this much are not judged too slow
RATIO_PROGRESS = 0.5  # ... nor those whose training loss has halved since epoch 1
CHANCE_EPOCHS = 3  # epochs in a row at chance
CHANCE_SIGMAS = 3.0  # accuracy within this many standard errors of 1/k is chance
CHANCE_LOSS = 0.9  # and the loss at least 0.9 ln k


def _withdrawn(
    records: Records, judge: Callable[[Records], Any], kind: str, later: str
) -> list[Finding]:
    """The info finding for an alarm `judge` raised at an earlier epoch, when it no longer
    holds at the last record; `later` says what the run showed since."""
    first = next((i for i in range(1, len(records)) if judge(records[:i])), None)
    if first is None:
        return []
    return [
        Finding(
            f"{kind} withdrawn",
            int(records[-1]["epoch"]),
            f"the {kind} alarm of epoch {int(records[first - 1]['epoch'])} is withdrawn: {later}",
            severity="info",
        )
    ]


def _listed(items: list[str], limit: int = 4) -> str:
    """Items joined with commas, the first `limit` of them and how many more."""
    more = f" and {len(items) - limit} more" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def _keys(record: dict[str, Any], suffix: str) -> list[str]:
    """Names having `<name>.<suffix>` keys in the record, in network order."""
    return [key[: -len(suffix) - 1] for key in record if key.endswith(f".{suffix}")]


def _accuracy_rose(start: dict[str, Any], end: dict[str, Any]) -> bool:
    """Whether accuracy (validation, else training) rose from one record to a later one by more
    than 2 standard errors of one epoch's validation accuracy (at least one point)."""
    split = "val" if "val_accuracy" in end else "train"
    before, after = start.get(f"{split}_accuracy"), end.get(f"{split}_accuracy")
    if before is None or after is None:
        return False
    n = end.get("val_examples")
    noise = 2 * math.sqrt(before * (1 - before) / n) if n and split == "val" else 0.0
    return bool(after - before > max(noise, 0.01))


def _growth(records: Records) -> dict[str, list[float]]:
    """Weights whose norm rose steadily over the last GROWTH_EPOCHS epochs while accuracy did
    not rise: their norms."""
    if len(records) < GROWTH_EPOCHS + 1:
        return {}
    window = records[-GROWTH_EPOCHS - 1 :]
    if _accuracy_rose(window[0], window[-1]):
        return {}  # a net leaving a plateau grows its weights fast while it learns
    found = {}
    for name in _keys(window[-1], "norm"):
        norms = [r.get(f"{name}.norm", 0.0) for r in window]
        if min(norms) <= 0:
            continue
        rates = [b / a - 1 for a, b in zip(norms, norms[1:], strict=False)]
        half = GROWTH_EPOCHS // 2
        early, late = sum(rates[:half]) / half, sum(rates[-half:]) / half
        if min(rates) >= GROWTH_MIN and late >= GROWTH_STEADY * early:
            found[name] = norms
    return found


def growing_over_epochs(records: Records) -> list[Finding]:
    """A weight norm rising by 2% or more every epoch for six epochs, not slowing down, while
    accuracy does not rise.

    A freshly initialised net's weights grow fast at first and ever slower (the healthy
    recipes: +5-50% in epoch 2, under 2% an epoch by epoch 10-20), and a net leaving a plateau
    grows them faster for a while as its accuracy climbs; steady or quickening growth with no
    gain is the loss pushing the logits outward without end (M14).
    """
    growing = _growth(records)
    last = records[-1]
    if not growing:
        return _withdrawn(
            records, _growth, "weights grow across epochs", "the weight norms stopped rising "
            f"steadily (by epoch {int(last['epoch'])})",
        )  # fmt: skip
    start = int(records[-GROWTH_EPOCHS - 1]["epoch"])
    listed = _listed(
        [
            f"{name} {norms[0]:.3g} -> {norms[-1]:.3g} "
            f"(+{100 * ((norms[-1] / norms[0]) ** (1 / GROWTH_EPOCHS) - 1):.1f}% an epoch)"
            for name, norms in growing.items()
        ]
    )
    accuracy = ""
    if "val_accuracy" in last:
        accuracy = (
            f"; validation accuracy {100 * records[-GROWTH_EPOCHS - 1]['val_accuracy']:.2f}% -> "
            f"{100 * last['val_accuracy']:.2f}%"
        )
    return [
        Finding(
            "weights grow across epochs",
            int(last["epoch"]),
            f"weight norms rose every epoch from epoch {start} to {int(last['epoch'])}, "
            f"not slowing: {listed}{accuracy}",
            causes=[
                "a learning rate too high with no weight decay: the loss keeps pushing the "
                "logits outward",
                "a loss or softmax wrong for some rows (M14: the batch-wide maximum; rows that "
                "underflow get a gradient that never shrinks)",
                "labels the net can only memorise (shuffled or noisy labels)",
            ],
            remedies=[
                "lower the learning rate",
                "weight decay (--l2 1e-4) or dropout",
                "early stopping (--patience 5)",
                "check the loss and softmax (digitlab gradcheck; a row-wise maximum)",
            ],
        )
    ]


def _factor(first: float, last: float) -> float:
    """last / first, with a vanished value (0) as an infinite factor either way."""
    if first == 0:
        return math.inf if last > 0 else 1.0
    return last / first


def _scales(record: dict[str, Any], at_init: bool) -> dict[str, tuple[str, str, float, float]]:
    """What shrinks or grows DEPTH_FACTOR-fold across the hidden layers in one record:
    'activations' (std of each activation layer's output, first to last) and 'gradients'
    (rms of each hidden bias's gradient, nearest the output to nearest the input; the output
    layer's bias is left out, its gradient is the loss's own)."""
    tail = "_at_init" if at_init else ""
    found = {}
    layers = _keys(record, f"std{tail}")
    if len(layers) >= DEPTH_LAYERS:
        first, last = (record[f"{n}.std{tail}"] for n in (layers[0], layers[-1]))
        found["activations"] = (layers[0], layers[-1], first, last)
    biases = _keys(record, f"grad_rms{tail}")[:-1]
    if len(biases) >= DEPTH_LAYERS:
        first, last = (record[f"{n}.grad_rms{tail}"] for n in (biases[-1], biases[0]))
        found["gradients"] = (biases[-1], biases[0], first, last)
    return {
        part: values
        for part, values in found.items()
        if not 1 / DEPTH_FACTOR < _factor(values[2], values[3]) < DEPTH_FACTOR
    }


def _describe(part: str, values: tuple[str, str, float, float]) -> str:
    start, end, first, last = values
    factor = _factor(first, last)
    if part == "activations":
        way = "vanish" if factor < 1 else "explode"
        return f"activations {way} with depth (std {start} {first:.2g} -> {end} {last:.2g})"
    way = "vanish" if factor < 1 else "explode"
    return (
        f"gradients {way} towards the input (bias gradient rms {start} {first:.2g} -> "
        f"{end} {last:.2g})"
    )


def _depth_now(records: Records) -> dict[str, tuple[str, str, float, float]]:
    return _scales(records[-1], at_init=False)


def depth_scale(records: Records) -> list[Finding]:
    """Activation or gradient scales that change 1,000-fold from the first hidden layer to the
    last, before the first step (the first batch's forward and backward) or in the last epoch.

    A healthy deep net keeps them within a few times (He-initialised ReLU: flat; the funnel of
    recipes/sweeps/digits_funnel.toml at std 0.1: activations 4x, gradients 60x).
    """
    last = records[-1]
    init = _scales(records[0], at_init=True)
    now = _depth_now(records)
    measured = (
        len(_keys(last, "std")) >= DEPTH_LAYERS or len(_keys(last, "grad_rms")) > DEPTH_LAYERS
    )
    if not now and (measured or not init):
        if init:
            return [
                Finding(
                    "scale with depth withdrawn",
                    int(last["epoch"]),
                    f"at initialisation the {'; '.join(_describe(*i) for i in init.items())}; "
                    f"by epoch {int(last['epoch'])} the scales are within "
                    f"{DEPTH_FACTOR:g}x across the layers",
                    severity="info",
                )
            ]
        return _withdrawn(
            records, _depth_now, "scale with depth",
            f"the scales are within {DEPTH_FACTOR:g}x across the layers by epoch "
            f"{int(last['epoch'])}",
        )  # fmt: skip
    parts = [f"at initialisation, {_describe(*item)}" for item in init.items()]
    parts += [f"at epoch {int(last['epoch'])}, {_describe(*item)}" for item in now.items()]
    return [
        Finding(
            "scale with depth",
            int(records[0]["epoch"]) if init else int(last["epoch"]),
            "; ".join(parts),
            causes=[
                "initial weights far too small or too large for the depth: each layer "
                "multiplies the scale by about std * sqrt(n_in) (S6: std 0.001)",
                "sigmoid or tanh layers stacked deep: f'(z) <= 1/4 shrinks the gradient at "
                "each layer",
                "no normalisation between the layers",
            ],
            remedies=[
                "He initialisation for ReLU (--init he), Xavier or LeCun for tanh and sigmoid",
                "fewer layers, or batch norm between them (a batchnorm layer in `layers`)",
                "ReLU-family activations in deep nets",
            ],
        )
    ]


def _ratio_runs(records: Records) -> dict[str, dict[str, tuple[float, float]]]:
    """Weights whose update/weight ratio stayed out of the usual range for RATIO_RUN sampled
    steps in a row, reaching into the last epoch: 'high' and 'low', each weight's run and mean
    ratio. Too small an update is judged only while the learning rate is near its first value
    and the training loss has not halved since epoch 1 (a converged or annealed run is slow on
    purpose)."""
    last, first = records[-1], records[0]
    rate_kept = last.get("learning_rate", 0.0) * RATIO_LOWERED >= first.get("learning_rate", 0.0)
    stuck = last.get("train_loss", 0.0) > RATIO_PROGRESS * first.get("train_loss", 0.0)
    slow_ok = rate_kept and stuck
    found: dict[str, dict[str, tuple[float, float]]] = {"high": {}, "low": {}}
    for name in _keys(last, "ratio_high_run"):
        ratio = last.get(f"{name}.update_ratio", 0.0)
        if last[f"{name}.ratio_high_run"] >= RATIO_RUN:
            found["high"][name] = (last[f"{name}.ratio_high_run"], ratio)
        if slow_ok and last.get(f"{name}.ratio_low_run", 0) >= RATIO_RUN:
            found["low"][name] = (last[f"{name}.ratio_low_run"], ratio)
    return {side: names for side, names in found.items() if names}


def _ratio_side(side: str) -> Callable[[Records], bool]:
    return lambda records: side in _ratio_runs(records)


def update_ratio(records: Records) -> list[Finding]:
    """The update/weight ratio |delta w| / |w| out of its usual range for RATIO_RUN sampled steps
    in a row: above RATIO_HIGH (Adam, RMSprop: RATIO_HIGH_ADAPTIVE) or below RATIO_LOW."""
    runs = _ratio_runs(records)
    last = records[-1]
    findings = []
    for side in ("high", "low"):
        if side not in runs:
            later = (
                f"the update/weight ratio came back into range, or the run slowed on purpose, "
                f"by epoch {int(last['epoch'])}"
            )
            findings += _withdrawn(records, _ratio_side(side), f"update ratio too {side}", later)
            continue
        listed = _listed(
            [
                f"{name} {int(run)} steps, mean {ratio:.2g}"
                for name, (run, ratio) in runs[side].items()
            ]
        )
        if side == "high":
            message = (
                f"update/weight ratio above {RATIO_HIGH:g} ({RATIO_HIGH_ADAPTIVE:g} for Adam "
                f"and RMSprop) for {RATIO_RUN}+ sampled steps in a row, to epoch "
                f"{int(last['epoch'])}: {listed}; each step rewrites much of the weights"
            )
            causes = [
                "a learning rate far too high (10-100x)",
                "a loss summed over the batch instead of averaged: its gradient is batch_size "
                "times too large (D4)",
            ]
            remedies = [
                "lower the learning rate 10x at a time (a sweep over 0.01, 0.1, 1 finds the range)",
                "average the loss over the batch",
                "a decaying --lr-schedule, or Adam with its usual rate 1e-3",
            ]
        else:
            message = (
                f"update/weight ratio below {RATIO_LOW:g} for {RATIO_RUN}+ sampled steps in a row "
                f"while the training loss is still high, to epoch {int(last['epoch'])}: "
                f"{listed}; the weights barely move"
            )
            causes = [
                "a learning rate far too low (10-100x)",
                "a loss divided twice, e.g. a mean over classes as well as examples (D4)",
                "vanishing gradients or dead units: no gradient reaches the weights",
            ]
            remedies = [
                "raise the learning rate 10x at a time",
                "average the loss over the examples only",
                "look at the scale-with-depth and dead-units alarms",
            ]
        findings.append(
            Finding(f"update ratio too {side}", int(last["epoch"]), message, causes, remedies)
        )
    return findings


def _chance(records: Records) -> dict[str, float] | None:
    """The last CHANCE_EPOCHS records' mean accuracy and lowest loss, if they are at chance: the
    mean accuracy within CHANCE_SIGMAS standard errors of one epoch's accuracy (the epochs'
    results are not independent) of 1/k, each loss at least CHANCE_LOSS ln k, and no class
    taking half of the predictions (that is a collapse)."""
    if len(records) < CHANCE_EPOCHS:
        return None
    window = records[-CHANCE_EPOCHS:]
    split = "val" if "val_accuracy" in window[-1] else "train"
    k, n = window[-1].get("classes"), window[-1].get("val_examples")
    if not k or any(f"{split}_accuracy" not in r or f"{split}_loss" not in r for r in window):
        return None
    if any(r.get("top_class_share", 0.0) >= COLLAPSE_SHARE for r in window):
        return None
    loss = min(r[f"{split}_loss"] for r in window)
    accuracy = sum(r[f"{split}_accuracy"] for r in window) / CHANCE_EPOCHS
    chance = 1 / k
    noise = CHANCE_SIGMAS * math.sqrt(chance * (1 - chance) / n) if n else 0.03
    if abs(accuracy - chance) > noise or loss < CHANCE_LOSS * math.log(k):
        return None
    return {"k": k, "accuracy": accuracy, "loss": loss}


def near_chance(records: Records) -> list[Finding]:
    """Validation accuracy within noise of 1/k and its loss near or above ln k for three
    epochs, with the predictions spread over the classes (one class winning is a collapse)."""
    at = _chance(records)
    last = records[-1]
    if at is None:
        split = "val" if "val_accuracy" in last else "train"
        later = f"accuracy {100 * last.get(f'{split}_accuracy', 0.0):.2f}% at epoch " + str(
            int(last["epoch"])
        )
        return _withdrawn(records, _chance, "near chance", later)
    k = int(at["k"])
    return [
        Finding(
            "near chance",
            int(last["epoch"]),
            f"accuracy at chance for {k} classes ({100 / k:.1f}%) in epochs "
            f"{int(records[-CHANCE_EPOCHS]['epoch'])}-{int(last['epoch'])}: mean "
            f"{100 * at['accuracy']:.2f}%, loss at least {at['loss']:.4f} (ln {k} = "
            f"{math.log(k):.4f}), predictions spread over the classes",
            causes=[
                "labels that do not belong to the images (shuffled, or sorted apart from them)",
                "a dead output: no gradient reaches the logits (S7)",
                "a learning rate far too low",
                "a net too deep or too small-initialised to pass a signal (S6)",
            ],
            remedies=[
                "show a few images with their labels (digitlab report's grids)",
                "raise the learning rate 10x",
                "He or Xavier initialisation, or fewer layers",
            ],
        )
    ]


def exact_zeros(records: Records) -> list[Finding]:
    """Pre-activations z exactly 0, where f'(z) is whatever the kink's value was chosen to be
    (ReLU: 0); an info finding, only when there are any (M5, Q4)."""
    listed = []
    for name in _keys(records[-1], "zeros"):
        counts = [r.get(f"{name}.zeros", 0.0) for r in records]
        if not any(counts):
            continue
        worst = max(records, key=lambda r: r.get(f"{name}.zero_share", 0.0))
        listed.append(
            f"{name} {int(sum(counts)):,} in {sum(1 for c in counts if c)} of {len(records)} "
            f"epochs, at most {100 * worst[f'{name}.zero_share']:.3g}% of z (epoch "
            f"{int(worst['epoch'])})"
        )
    if not listed:
        return []
    return [
        Finding(
            "exact zeros",
            int(records[-1]["epoch"]),
            "pre-activations z exactly 0 on the sampled batches, where f'(z) is the value "
            f"chosen at the kink (ReLU: 0): {'; '.join(listed)}",
            severity="info",
        )
    ]
