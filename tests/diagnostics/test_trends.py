"""The trend alarms on planted records: each fires at its threshold and stays silent just short
of it, and each is withdrawn when the end of the run contradicts it."""

import math

import numpy as np
import pytest
from finding_kinds import infos, warnings

from digitlab.diagnostics.alarms import find


def quiet(epochs=10, **extra):
    """A healthy run's records: losses falling, accuracy well above chance."""
    return [
        {
            "epoch": float(e),
            "learning_rate": 0.1,
            "train_loss": 1 / e,
            "val_loss": 1 / e,
            "val_accuracy": 0.9,
            "top_class_share": 0.12,
            "top2_class_share": 0.22,
            "val_examples": 1000.0,
            "classes": 10.0,
            **extra,
        }
        for e in range(1, epochs + 1)
    ]


def with_norms(rates, start=10.0, name="dense2.w"):
    """Records whose weight norm grows by each of `rates` an epoch."""
    norms = start * np.cumprod([1.0, *(1 + r for r in rates)])
    records = quiet(len(norms))
    for record, norm in zip(records, norms, strict=True):
        record[f"{name}.norm"] = float(norm)
    return records


@pytest.mark.parametrize(
    ("rates", "fires"),
    [
        ([0.0201] * 6, True),  # 2% every epoch for six epochs
        ([0.0201] * 5 + [0.0199], False),  # one epoch just under 2%
        ([0.02, 0.03, 0.05, 0.08, 0.13, 0.2], True),  # quickening: M14's blow-up
        ([0.04, 0.04, 0.04, 0.036, 0.036, 0.036], True),  # 0.9x the earlier growth: steady
        ([0.04, 0.04, 0.04, 0.035, 0.035, 0.035], False),  # slowing
        ([0.0201] * 5, False),  # five epochs are not enough
    ],
)
def test_weights_growing_across_epochs(rates, fires):
    found = warnings(with_norms(rates))
    assert ("weights grow across epochs" in found) is fires
    if fires:
        message = found["weights grow across epochs"].message
        assert "from epoch 1 to 7" in message and "dense2.w 10 -> " in message


def test_a_healthy_net_growing_ever_slower_is_no_alarm():
    """recipes/book_sigmoid_100.toml's output layer (98.6%): +18.6% in epoch 2, +0.9% in 30."""
    rates = [0.186, 0.119, 0.087, 0.070, 0.058, 0.049, 0.043, 0.038, 0.034, 0.031, 0.028]
    rates += [0.026, 0.024, 0.022, 0.020, 0.019, 0.018, 0.016, 0.015, 0.014, 0.014, 0.013]
    records = with_norms(rates, start=9.5)
    for epoch in range(1, len(records) + 1):
        assert "weights grow across epochs" not in warnings(records[:epoch]), epoch
        assert "weights grow across epochs withdrawn" not in infos(records[:epoch]), epoch


def test_growth_while_accuracy_climbs_is_a_net_leaving_a_plateau():
    """recipes/sweeps/digits_funnel.toml's funnel at std 0.1: stuck near chance for 5 epochs,
    then its weights grow faster for a while as accuracy climbs from 58% to 92%."""
    records = with_norms([0.05] * 6)
    for record, accuracy in zip(records, np.linspace(0.58, 0.92, 7), strict=True):
        record["val_accuracy"] = float(accuracy)
    assert "weights grow across epochs" not in warnings(records)
    records[-1]["val_accuracy"] = 0.58 + 0.031  # within 2 standard errors (0.0312 on 1,000)
    assert "weights grow across epochs" in warnings(records)


def test_growth_that_stops_withdraws_the_alarm():
    records = with_norms([0.05] * 6 + [0.001] * 6)
    assert "weights grow across epochs" in warnings(records[:7])
    assert "weights grow across epochs" not in warnings(records)
    withdrawn = infos(records)["weights grow across epochs withdrawn"]
    assert "alarm of epoch 7 is withdrawn" in withdrawn.message


def scales(stds, biases, at_init=True):
    """One record's activation stds and bias-gradient rms values (the output bias last)."""
    tail = "_at_init" if at_init else ""
    record = {f"relu{i + 1}.std{tail}": s for i, s in enumerate(stds)}
    record |= {f"dense{i + 1}.b.grad_rms{tail}": g for i, g in enumerate(biases)}
    return record


@pytest.mark.parametrize(
    ("stds", "biases", "fires", "says"),
    [
        ((1.0, 0.1, 1e-3), (1, 1, 1, 1), True, "activations vanish with depth"),
        ((1.0, 0.1, 1.001e-3), (1, 1, 1, 1), False, ""),
        ((1.0, 30.0, 1e3), (1, 1, 1, 1), True, "activations explode with depth"),
        ((0.0018, 1e-8, 0.0), (1, 1, 1, 1), True, "std relu1 0.0018 -> relu3 0"),
        ((1.0, 1.0, 1.0), (0.0, 1e-5, 1e-4, 0.05), True, "gradients vanish towards the input"),
        # the output bias (last) is left out: the hidden ones differ 999-fold
        ((1.0, 1.0, 1.0), (1e-4, 1e-3, 0.0999, 1e-9), False, ""),
        ((1.0, 1.0, 1.0), (100.0, 1.0, 0.1, 0.05), True, "gradients explode towards the input"),
        ((1.0, 1e-6), (0.0, 1.0, 1.0), False, ""),  # two hidden layers: too shallow to judge
    ],
)
def test_scale_with_depth_at_initialisation(stds, biases, fires, says):
    records = quiet(1)
    records[0] |= scales(stds, biases)
    found = warnings(records)
    assert ("scale with depth" in found) is fires
    if fires:
        message = found["scale with depth"].message
        assert message.startswith("at initialisation, ") and says in message


def test_scales_that_even_out_withdraw_the_alarm_of_initialisation():
    records = quiet(3)
    records[0] |= scales((1.0, 0.1, 1e-4), (1, 1, 1, 1))
    for record in records:
        record |= scales(
            (1.0, 0.1, 1e-4) if record is records[0] else (1.0, 0.5, 0.2), (1,) * 4, False
        )
    assert "scale with depth" in warnings(records[:1])
    assert "at epoch 1, activations vanish" in warnings(records[:1])["scale with depth"].message
    assert "scale with depth" not in warnings(records)
    assert "at initialisation the activations vanish" in (
        infos(records)["scale with depth withdrawn"].message
    )


def ratio_runs(low=0.0, high=0.0, epochs=4, **extra):
    records = quiet(epochs)
    for record in records:
        record |= {
            "dense1.w.ratio_low_run": low,
            "dense1.w.ratio_high_run": high,
            "dense1.w.update_ratio": 0.5 if high else 5e-5,
            "train_loss": 2.3,
            **extra,
        }
    return records


@pytest.mark.parametrize(
    ("low", "high", "kind"),
    [(50, 0, "update ratio too low"), (0, 50, "update ratio too high"), (49, 49, None)],
)
def test_update_ratio_out_of_range_for_fifty_sampled_steps(low, high, kind):
    found = {k for k in warnings(ratio_runs(low, high)) if k.startswith("update ratio")}
    assert found == ({kind} if kind else set())


def test_a_slow_update_is_no_alarm_once_the_rate_is_cut_or_the_loss_has_halved():
    records = ratio_runs(low=80)
    records[-1]["learning_rate"] = 0.1 / 3.01  # a schedule cut the rate
    assert "update ratio too low" not in warnings(records)
    records = ratio_runs(low=80)
    records[-1]["train_loss"] = 2.3 / 2  # the run has learned: converging, not stuck
    assert "update ratio too low" not in warnings(records)


def test_an_update_ratio_back_in_range_withdraws_the_alarm():
    records = ratio_runs(high=1, epochs=4)
    for record, run in zip(records, (20, 40, 60, 3), strict=True):
        record["dense1.w.ratio_high_run"] = float(run)  # 60 reached in epoch 3, then broken
    assert "update ratio too high" not in warnings(records[:2])
    assert "update ratio too high" in warnings(records[:3])
    assert "update ratio too high" not in warnings(records)
    withdrawn = infos(records)["update ratio too high withdrawn"]
    assert "alarm of epoch 3 is withdrawn" in withdrawn.message


def at_chance(accuracies, losses=None, n=1000.0, top=0.15):
    records = quiet(len(accuracies))
    for i, record in enumerate(records):
        record |= {
            "val_accuracy": accuracies[i],
            "val_loss": math.log(10) if losses is None else losses[i],
            "val_examples": n,
            "top_class_share": top,
        }
    return records


# three standard errors of 10% on 1,000 examples: 0.0285
@pytest.mark.parametrize(
    ("accuracies", "losses", "top", "fires"),
    [
        ((0.1, 0.1, 0.1), None, 0.15, True),
        ((0.1, 0.15, 0.135), None, 0.15, True),  # the mean within noise: 12.83%
        ((0.1, 0.15, 0.137), None, 0.15, False),  # beyond it: 12.90%
        ((0.09, 0.05, 0.075), None, 0.15, True),  # below chance: 7.17%
        ((0.1, 0.1), None, 0.15, False),  # two epochs
        ((0.1, 0.1, 0.1), None, 0.5, False),  # one class wins: the collapse alarm's
        ((0.1, 0.1, 0.1), (2.3, 2.3, 0.89 * math.log(10)), 0.15, False),  # loss well under ln 10
        ((0.1, 0.1, 0.1), (2.3, 2.3, 5.0), 0.15, True),  # above ln 10: memorised labels
    ],
)
def test_accuracy_near_chance(accuracies, losses, top, fires):
    found = warnings(at_chance(accuracies, losses, top=top))
    assert ("near chance" in found) is fires
    if fires:
        assert "chance for 10 classes (10.0%) in epochs 1-3" in found["near chance"].message


def test_leaving_chance_withdraws_the_alarm():
    records = at_chance((0.1, 0.1, 0.1, 0.5, 0.8))
    assert "near chance" in warnings(records[:3])
    assert "near chance" not in warnings(records)
    withdrawn = infos(records)["near chance withdrawn"]
    assert "alarm of epoch 3 is withdrawn: accuracy 80.00% at epoch 5" in withdrawn.message


def test_exact_zeros_are_an_info_line_only_when_present():
    records = quiet(3)
    for record in records:
        record |= {"relu1.zeros": 0.0, "relu1.zero_share": 0.0}
    assert "exact zeros" not in infos(records)
    records[1] |= {"relu1.zeros": 12.0, "relu1.zero_share": 0.003}
    (finding,) = [f for f in find(records) if f.kind == "exact zeros"]
    assert finding.severity == "info"
    assert "relu1 12 in 1 of 3 epochs, at most 0.3% of z (epoch 2)" in finding.message


def test_every_new_alarm_has_causes_and_remedies():
    kinds = {
        "weights grow across epochs": with_norms([0.05] * 6),
        "update ratio too high": ratio_runs(high=60),
        "update ratio too low": ratio_runs(low=60),
        "near chance": at_chance((0.1, 0.1, 0.1)),
    }
    records = quiet(1)
    records[0] |= scales((1.0, 0.1, 1e-4), (1, 1, 1, 1))
    kinds["scale with depth"] = records
    for kind, records in kinds.items():
        finding = warnings(records)[kind]
        assert finding.causes and finding.remedies, kind
