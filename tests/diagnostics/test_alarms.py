from digitlab.diagnostics.alarms import find


def kinds(records):
    return {f.kind for f in find(records) if f.severity == "warning"}


def test_quiet_run_has_no_alarms():
    records = [
        {"epoch": float(e), "train_loss": 1 / e, "val_loss": 1 / e, "val_accuracy": 0.9,
         "top_class_share": 0.12, "top2_class_share": 0.22, "relu1.dead": 0.05,
         "sigmoid1.saturated": 0.1, "loss_spikes": 0.0}
        for e in range(1, 6)
    ]  # fmt: skip
    assert kinds(records) == set()
    assert "best validation loss at epoch 5" in find(records)[0].message


def test_each_alarm_fires_with_advice():
    records = [
        {"epoch": float(e), "train_loss": 1 / e, "val_loss": 0.5 + 0.1 * max(0, e - 2),
         "val_accuracy": 0.9, "top_class_share": 0.9, "top2_class_share": 0.95,
         "relu1.dead": 0.8, "sigmoid1.saturated": 0.7, "loss_spikes": 2.0,
         "dense1.w.norm": 1.0, "dense2.w.norm": 2.0, "dense3.w.norm": 4.0, "dense4.w.norm": 1.0}
        for e in range(1, 9)
    ]  # fmt: skip
    found = kinds(records)
    assert found == {
        "class collapse", "dead units", "saturation", "loss spikes", "overfitting",
        "weights grow with depth",
    }  # fmt: skip
    for finding in find(records):
        if finding.severity == "warning":
            assert finding.causes and finding.remedies, finding.kind
