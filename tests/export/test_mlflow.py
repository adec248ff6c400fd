"""`digitlab export mlflow`, read back with MLflow's own client (a file store in tmp_path, and
the default sqlite database in the current folder)."""

import json
import shutil
from pathlib import Path

import pytest

from digitlab.diagnostics.alarms import find
from digitlab.export.sources import final_metrics, flat_params, scalar_name
from digitlab.lab.runs import read_history, write_jsonl

RUN_FILES = {"config.json", "history.jsonl", "metrics.json", "model.npz", "predictions.npz"}


@pytest.fixture(autouse=True)
def _track_extra(needs):
    needs("mlflow")
    needs("sqlalchemy")


def client_for(uri: str):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


def runs_of(client, experiment: str = "digitlab") -> dict:
    """The experiment's active runs by name (each name once)."""
    found = client.get_experiment_by_name(experiment)
    runs = client.search_runs([found.experiment_id])
    by_name = {run.info.run_name: run for run in runs}
    assert len(by_name) == len(runs)
    return by_name


def artifacts(client, run_id: str, path: str | None = None) -> set[str]:
    return {item.path for item in client.list_artifacts(run_id, path)}


def check_run(client, run, folder: Path) -> None:
    """Params = the flattened config; a metric history per number, step = epoch; final metrics."""
    config = json.loads((folder / "config.json").read_text())
    assert run.data.params == {k: str(v) for k, v in flat_params(config).items()}
    records = read_history(folder)
    keys = {k for record in records for k in record if k != "epoch"}
    assert len(keys) > 10
    for key in keys:
        metric = client.get_metric_history(run.info.run_id, scalar_name(key))
        logged = sorted((m.step, m.value) for m in metric)
        assert [step for step, _ in logged] == [int(r["epoch"]) for r in records if key in r]
        assert [value for _, value in logged] == pytest.approx(
            [r[key] for r in records if key in r]
        )
    final = final_metrics(json.loads((folder / "metrics.json").read_text()))
    assert final["final/test_accuracy"] > 0.3
    for key, value in final.items():
        (metric,) = client.get_metric_history(run.info.run_id, key)
        assert (metric.step, metric.value) == (int(records[-1]["epoch"]), pytest.approx(value))
    assert len(run.data.metrics) == len(keys) + len(final)
    assert run.info.status == "FINISHED"
    assert run.data.tags["digitlab.run_folder"] == str(folder.resolve())
    warnings = [f.kind for f in find(records) if f.severity == "warning"]
    assert run.data.tags["digitlab.alarms"] == ",".join(warnings)


def test_a_run_and_a_sweep_and_a_rerun_that_adds_nothing(cli, tiny_run, tiny_sweep, tmp_path):
    uri = (tmp_path / "store").as_uri()  # file:///...: MLflow's file store
    args = ["export", "mlflow", str(tiny_run), str(tiny_sweep), "--tracking-uri", uri]
    code, out, err = cli(args)
    assert code == 0, err
    assert out.count("new ") == 3
    client = client_for(uri)
    runs = runs_of(client)
    trials = {"two/learning_rate=0.1_seed3": 0.1, "two/learning_rate=0.5_seed3": 0.5}
    assert set(runs) == {tiny_run.name, "two", *trials}

    run = runs[tiny_run.name]
    check_run(client, run, tiny_run)
    assert artifacts(client, run.info.run_id) >= RUN_FILES | {"plots", "report.html"}
    plots = {f"plots/{p.name}" for p in (tiny_run / "plots").glob("*.png")}
    assert artifacts(client, run.info.run_id, "plots") == plots
    assert "mlflow.parentRunId" not in run.data.tags

    parent = runs["two"]
    assert parent.data.tags["digitlab.kind"] == "sweep"
    assert artifacts(client, parent.info.run_id) >= {"summary.csv", "summary.html", "trials.jsonl"}
    records = {
        r["options"]["learning_rate"]: r
        for r in map(json.loads, (tiny_sweep / "trials.jsonl").read_text().splitlines())
    }
    for name, rate in trials.items():
        run = runs[name]
        folder = tiny_sweep / "trials" / records[rate]["id"]
        check_run(client, run, folder)
        assert run.data.params["learning_rate"] == str(rate)
        tags = run.data.tags
        assert (tags["variant"], tags["seed"], tags["sweep"]) == (
            f"learning_rate={rate}",
            "3",
            "two",
        )
        assert tags["mlflow.parentRunId"] == parent.info.run_id
        assert artifacts(client, run.info.run_id) >= RUN_FILES | {"plots"}
        drawn = artifacts(client, run.info.run_id, "plots")  # drawn for the export
        assert {"plots/confusion.png", "plots/curves_loss.png"} <= drawn

    code, out, err = cli(args)
    assert code == 0, err
    assert out.count("unchanged ") == 3 and "new " not in out
    again = runs_of(client)
    assert {name: run.info.run_id for name, run in again.items()} == {
        name: run.info.run_id for name, run in runs.items()
    }
    metric = client.get_metric_history(again[tiny_run.name].info.run_id, "loss/train")
    assert [m.step for m in metric] == [1, 2]  # not logged twice


def test_a_run_that_changed_replaces_its_mlflow_run(cli, tiny_run, tmp_path):
    folder = tmp_path / "growing"
    shutil.copytree(tiny_run, folder)
    records = read_history(folder)
    write_jsonl(folder / "history.jsonl", records[:1])  # as if exported after epoch 1
    uri = str(tmp_path / "store")  # a plain folder: a file store too
    args = ["export", "mlflow", str(folder), "--tracking-uri", uri, "--experiment", "mine"]
    assert cli(args)[0] == 0
    client = client_for(uri)
    first = runs_of(client, "mine")["growing"].info.run_id
    write_jsonl(folder / "history.jsonl", records)
    code, out, err = cli(args)
    assert code == 0, err
    assert out.startswith("replaced  growing: run ")
    run = runs_of(client, "mine")["growing"]
    assert run.info.run_id != first
    assert client.get_run(first).info.lifecycle_stage == "deleted"
    assert [m.step for m in client.get_metric_history(run.info.run_id, "loss/train")] == [1, 2]
    # an export cut short (no fingerprint yet: it is set last) is logged again, not kept
    client.delete_tag(run.info.run_id, "digitlab.fingerprint")
    code, out, err = cli(args)
    assert out.startswith("replaced  growing: run ")
    assert runs_of(client, "mine")["growing"].info.run_id != run.info.run_id


def test_the_default_store_is_sqlite_in_the_current_folder(cli, tiny_run, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = cli(["export", "mlflow", str(tiny_run)])
    assert code == 0, err
    assert "tracking URI sqlite:///mlflow.db, experiment 'digitlab'" in out
    assert (tmp_path / "mlflow.db").is_file() and (tmp_path / "mlruns").is_dir()
    client = client_for(f"sqlite:///{tmp_path / 'mlflow.db'}")
    check_run(client, runs_of(client)[tiny_run.name], tiny_run)
