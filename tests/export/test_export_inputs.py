"""What the export reads and its one-line errors; none of it needs the extra installed."""

import json
import shutil
import sys

import pytest

from digitlab.export.sources import find_runs, flat_params, scalar_name


@pytest.mark.parametrize(
    ("key", "name"),
    [
        ("train_loss", "loss/train"),
        ("val_loss", "loss/validation"),
        ("val_accuracy", "accuracy/validation"),
        ("learning_rate", "training/learning_rate"),
        ("dense1.w.grad_norm", "gradient_norm/dense1.w"),
        ("dense2.w.norm", "weight_norm/dense2.w"),
        ("relu1.dead", "dead_share/relu1"),
        ("conv1.w.update_ratio", "update_ratio/conv1.w"),
        ("top_class_share", "monitors/top_class_share"),
    ],
)
def test_history_keys_are_grouped(key, name):
    assert scalar_name(key) == name


def test_the_config_is_flattened():
    config = {"hidden_sizes": [100, 30], "activation": {"name": "leaky_relu", "slope": 0.1}}
    config |= {"init": None, "learning_rate": 0.5, "standardize": True, "optimizer": {}}
    assert flat_params(config) == {
        "hidden_sizes": "[100,30]",
        "activation.name": "leaky_relu",
        "activation.slope": 0.1,
        "init": "null",
        "learning_rate": 0.5,
        "standardize": True,
        "optimizer": "{}",
    }


def test_a_sweep_gives_its_done_trials_and_notes_the_failed(tiny_sweep, tmp_path):
    sweep = tmp_path / "sweep"
    shutil.copytree(tiny_sweep, sweep)
    failed = {"id": "learning_rate=9.0_s3_0123456789", "options": {"learning_rate": 9.0}}
    with open(sweep / "trials.jsonl", "a") as log:
        log.write(json.dumps({**failed, "seed": 3, "status": "failed", "reason": "diverged"}))
        log.write("\n")
    sources, notes = find_runs([sweep])
    assert [s.name for s in sources] == [
        "two/learning_rate=0.1_seed3",
        "two/learning_rate=0.5_seed3",
    ]
    assert [s.tags["variant"] for s in sources] == ["learning_rate=0.1", "learning_rate=0.5"]
    assert notes == [f"{sweep / 'trials' / failed['id']}: skipped (trial failed)"]
    assert len(sources[0].run.history) == 2


def test_a_folder_given_twice_counts_once(tiny_run, tiny_sweep):
    trial = next((tiny_sweep / "trials").iterdir())
    sources, _ = find_runs([tiny_run, tiny_sweep, tiny_run, trial])
    assert [s.path for s in sources] == [
        tiny_run.resolve(),
        *sorted(p.resolve() for p in (tiny_sweep / "trials").iterdir()),
    ]


@pytest.mark.parametrize("command", [["tensorboard", "--to", "tb"], ["mlflow"]])
def test_not_a_run_folder_is_one_line(cli, command, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty").mkdir()
    code, out, err = cli(["export", command[0], "empty", *command[1:]])
    assert code == 1
    assert err == (
        "digitlab: error: empty: not a run folder (no config.json or history.jsonl) "
        "nor a sweep folder (no trials.jsonl)\n"
    )
    code, out, err = cli(["export", command[0], "missing", *command[1:]])
    assert (code, err) == (1, "digitlab: error: missing: no such folder\n")
    assert not (tmp_path / "tb").exists() and not (tmp_path / "mlflow.db").exists()


@pytest.mark.parametrize(
    ("command", "module"),
    [(["tensorboard", "--to", "tb"], "tensorboardX"), (["mlflow"], "mlflow")],
)
def test_without_the_extra_it_says_what_to_install(cli, tiny_run, command, module, monkeypatch):
    monkeypatch.setitem(sys.modules, module, None)  # import fails as if it were not installed
    monkeypatch.chdir(tiny_run.parent)
    code, out, err = cli(["export", command[0], tiny_run.name, *command[1:]])
    assert code == 1
    assert err == (
        f"digitlab: error: digitlab export {command[0]} needs {module}, which is not installed: "
        "pip install 'digitlab[track]'\n"
    )
