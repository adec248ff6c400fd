"""`digitlab export tensorboard`, read back with TensorBoard's own event reader."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from digitlab.diagnostics.alarms import find
from digitlab.export.sources import flat_params, scalar_name
from digitlab.lab.runs import read_history as history


@pytest.fixture(autouse=True)
def _track_extra(needs):
    needs("tensorboardX")
    needs("tensorboard")


@pytest.fixture
def tensor_util():
    from tensorboard.util import tensor_util

    return tensor_util


def read_events(folder: Path):
    """TensorBoard's own reader over the run folder, every event kept."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    every = {"scalars": 0, "images": 0, "tensors": 0}  # 0: keep every event, not a sample
    accumulator = EventAccumulator(str(folder), size_guidance=every)
    accumulator.Reload()
    return accumulator


def session_hparams(accumulator) -> dict:
    from tensorboard.plugins.hparams import plugin_data_pb2

    content = accumulator.PluginTagToContent("hparams")
    start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"])
    experiment = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/experiment"])
    values = {}
    for key, value in start.session_start_info.hparams.items():
        values[key] = getattr(value, value.WhichOneof("kind"))
    metrics = [info.name.tag for info in experiment.experiment.metric_infos]
    return {"hparams": values, "metrics": metrics}


def check_scalars(accumulator, run_folder: Path) -> None:
    """Every number of every epoch in history.jsonl is a scalar at step = epoch (float32)."""
    records = history(run_folder)
    tags = set(accumulator.Tags()["scalars"])
    keys = {k for record in records for k in record if k != "epoch"}
    assert len(keys) > 10  # losses, accuracies, learning rate and the monitors' numbers
    for key in keys:
        events = accumulator.Scalars(scalar_name(key))
        assert [e.step for e in events] == [int(r["epoch"]) for r in records if key in r], key
        expected = np.array([r[key] for r in records if key in r], dtype=np.float32)
        np.testing.assert_array_equal(np.array([e.value for e in events], np.float32), expected)
        tags.discard(scalar_name(key))
    metrics = json.loads((run_folder / "metrics.json").read_text())
    last = int(records[-1]["epoch"])
    for split in ("train", "val", "test"):
        for quantity in ("accuracy", "loss"):
            (event,) = accumulator.Scalars(f"final/{split}_{quantity}")
            assert event.step == last
            assert event.value == pytest.approx(metrics[split][quantity], rel=1e-6)
            tags.discard(f"final/{split}_{quantity}")
    assert all(tag.startswith("final/") for tag in tags)  # nothing else, nothing invented


def test_a_run_exports_its_history_hparams_alarms_and_figures(cli, tiny_run, tmp_path, tensor_util):
    code, out, err = cli(["export", "tensorboard", str(tiny_run), "--to", str(tmp_path / "tb")])
    assert code == 0, err
    exported = tmp_path / "tb" / tiny_run.name
    assert f"wrote {exported}" in out
    accumulator = read_events(exported)
    check_scalars(accumulator, tiny_run)
    assert accumulator.Scalars("loss/validation")[0].value == pytest.approx(
        history(tiny_run)[0]["val_loss"], rel=1e-6
    )
    config = json.loads((tiny_run / "config.json").read_text())
    session = session_hparams(accumulator)
    assert session["hparams"]["learning_rate"] == pytest.approx(config["learning_rate"])
    assert session["hparams"]["hidden_sizes"] == "[16]"
    assert session["hparams"]["activation.name"] == "relu"
    assert session["hparams"]["epochs"] == 2
    assert set(session["hparams"]) == set(flat_params(config))
    assert "final/test_accuracy" in session["metrics"]
    (text,) = accumulator.Tensors("diagnostics/text_summary")
    alarms = tensor_util.make_ndarray(text.tensor_proto).item().decode()
    findings = find(history(tiny_run))  # as `digitlab diagnose` and the report see them
    assert findings and all(f"{f.kind} (epoch {f.epoch}): {f.message}" in alarms for f in findings)
    plots = {f"figures/{png.stem}": png.read_bytes() for png in (tiny_run / "plots").glob("*.png")}
    assert set(accumulator.Tags()["images"]) == set(plots)
    for tag, png in plots.items():
        (image,) = accumulator.Images(tag)
        assert image.encoded_image_string == png  # the report's PNG file, byte for byte
        assert image.step == 2 and image.width > 100 and image.height > 100


def test_a_sweep_exports_every_trial_named_by_variant_and_seed(cli, tiny_sweep, tmp_path):
    code, out, err = cli(["export", "tensorboard", str(tiny_sweep), "--to", str(tmp_path)])
    assert code == 0, err
    records = [json.loads(line) for line in (tiny_sweep / "trials.jsonl").read_text().splitlines()]
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == [
        "learning_rate=0.1_seed3",
        "learning_rate=0.5_seed3",
    ]
    for record in records:
        rate = record["options"]["learning_rate"]
        accumulator = read_events(tmp_path / "two" / f"learning_rate={rate}_seed3")
        check_scalars(accumulator, tiny_sweep / "trials" / record["id"])
        hparams = session_hparams(accumulator)["hparams"]
        assert hparams["variant"] == f"learning_rate={rate}"
        assert hparams["learning_rate"] == pytest.approx(rate) and hparams["seed"] == 3
        # a trial folder has no plots/: the report's figures are drawn for the export
        images = set(accumulator.Tags()["images"])
        assert {"figures/curves_loss", "figures/confusion", "figures/weights"} <= images
        assert accumulator.Images("figures/confusion")[0].encoded_image_string[:4] == b"\x89PNG"
    assert not (tiny_sweep / "trials" / records[0]["id"] / "plots").exists()  # source untouched


def test_exporting_again_replaces_each_run(cli, tiny_run, tmp_path):
    for _ in range(2):
        code, _, err = cli(["export", "tensorboard", str(tiny_run), "--to", str(tmp_path)])
        assert code == 0, err
    exported = tmp_path / tiny_run.name
    assert len(list(exported.glob("events.out.tfevents.*"))) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [tiny_run.name]  # no staging left
    accumulator = read_events(exported)
    assert [e.step for e in accumulator.Scalars("loss/train")] == [1, 2]
    assert len(accumulator.Images("figures/confusion")) == 1


def test_two_runs_with_one_folder_name_get_two_names(cli, tiny_run, tmp_path):
    other = tmp_path / "elsewhere" / tiny_run.name
    shutil.copytree(tiny_run, other)
    code, out, err = cli(
        ["export", "tensorboard", str(tiny_run), str(other), "--to", str(tmp_path)]
    )
    assert code == 0, err
    assert (tmp_path / tiny_run.name).is_dir() and (tmp_path / f"{tiny_run.name}-2").is_dir()


def test_a_folder_it_did_not_write_is_left_alone(cli, tiny_run, tmp_path):
    mine = tmp_path / tiny_run.name
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    code, out, err = cli(["export", "tensorboard", str(tiny_run), "--to", str(tmp_path)])
    assert code == 1
    assert err.strip() == f"digitlab: error: {mine}: exists and was not written by digitlab export"
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]
