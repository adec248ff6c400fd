"""Sweeps with mode = "optuna": the [space], the search on the digits against a grid, pruning,
resuming a study, workers sharing one study, diverged trials, the summary's search section, and
the one-line errors (a bad space, Optuna missing)."""

import json
import math
import os
import sys
from pathlib import Path

import pytest
from rich.console import Console

from digitlab.errors import ConfigError, NumericError
from digitlab.lab.config import make_config
from digitlab.lab.sweep import LOG_FILE, parse_sweep, read_sweep, run_sweep, run_trial

optuna = pytest.importorskip("optuna")

from digitlab.lab.sweep.adaptive import (  # noqa: E402 - needs optuna
    JOURNAL_FILE,
    SEARCH_FILE,
    distributions,
    journal_storage,
    study_name,
)

RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "sweeps" / "lr_search.toml"
BASE = {"data": "digits", "hidden": [32], "batch_size": 32, "epochs": 8}
LR_SPACE = {"lr": {"low": 1e-4, "high": 10.0, "log": True}}
STATES = optuna.trial.TrialState


def quiet() -> Console:
    return Console(file=open(os.devnull, "w"), width=200)  # noqa: SIM115 - lives as long as tests


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def search_spec(trials: int, space=None, name="search", **keys):
    space = space or LR_SPACE
    base = {k: v for k, v in BASE.items() if k not in space}
    table = {"name": name, "mode": "optuna", "trials": trials, "base": base, "space": space}
    return parse_sweep({**table, **keys})


def the_study(spec, out: Path):
    return optuna.load_study(
        study_name=study_name(spec), storage=journal_storage(out / JOURNAL_FILE)
    )


def counted(study) -> list:
    return study.get_trials(states=(STATES.COMPLETE, STATES.PRUNED))


# --- trial functions (module level, so worker processes can import them) ----------------------


def landscape_trial(config, folder, callbacks=()):
    """Instant: the validation loss is a bowl in log10(lr) around 0.3, plus a little from the
    hidden size; it reports one epoch to the callbacks."""
    loss = (math.log10(config.learning_rate) - math.log10(0.3)) ** 2 + config.hidden_sizes[0] / 1e4
    for callback in callbacks:
        callback({"epoch": 1, "val_loss": loss, "val_accuracy": 0.5}, None)
    return {"val_accuracy": 1 / (1 + loss), "test_accuracy": 1 / (1 + loss), "val_loss": loss}


def slow_landscape_trial(config, folder, callbacks=()):
    """The landscape over `epochs` reported epochs, each loss above the final one."""
    final = landscape_trial(config, folder)
    for epoch in range(1, config.epochs + 1):
        for callback in callbacks:
            loss = final["val_loss"] * (1 + 1 / epoch)
            callback({"epoch": epoch, "val_loss": loss, "val_accuracy": 0.5}, None)
    return final


def diverging_trial(config, folder, callbacks=()):
    """Diverges above lr 1, else the landscape."""
    if config.learning_rate > 1:
        raise NumericError(f"non-finite loss at epoch 1 (lr {config.learning_rate:g})")
    return landscape_trial(config, folder, callbacks)


# --- the sweep file ------------------------------------------------------------------------------


def test_every_kind_of_space_parses():
    spec = search_spec(
        4,
        {
            "lr": {"low": 1e-3, "high": 1.0, "log": True},
            "dropout": {"low": 0.0, "high": 0.5},
            "batch_size": {"low": 16, "high": 128, "step": 16},
            "activation": ["relu", {"name": "leaky_relu", "slope": 0.1}],
        },
        pruner="halving",
        startup_trials=2,
        sample_seed=3,
    )
    assert spec.space == {
        "lr": {"type": "float", "low": 1e-3, "high": 1.0, "log": True, "step": None},
        "dropout": {"type": "float", "low": 0.0, "high": 0.5, "log": False, "step": None},
        "batch_size": {"type": "int", "low": 16, "high": 128, "log": False, "step": 16},
        "activation": {"type": "choice", "choices": ["relu", {"name": "leaky_relu", "slope": 0.1}]},
    }
    assert (spec.trials, spec.pruner, spec.startup_trials, spec.sample_seed) == (4, "halving", 2, 3)
    dist = distributions(spec.space)
    assert dist["lr"].log and dist["batch_size"].step == 16
    assert dist["activation"].choices == ("relu", "leaky_relu(slope=0.1)")
    assert read_sweep(RECIPE).mode == "optuna"


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"space": {"lr": {"low": 1.0, "high": 0.1}}}, r"space\.lr: low \(1\.0\) must be below"),
        ({"space": {"lr": {"low": 0.0, "high": 1.0, "log": True}}}, r"space\.lr: a log range"),
        ({"space": {"lr": {"low": 0.1, "hi": 1.0}}}, r"space\.lr: unknown key 'hi'"),
        ({"space": {"lr": 0.1}}, r"space\.lr: expected \{low"),
        ({"space": {"lr": []}}, r"space\.lr: expected a non-empty list"),
        (
            {"space": {"batch_size": {"low": 1, "high": 10, "step": 4}}},
            r"space\.batch_size: high - low",
        ),
        ({"space": {"activation": ["relu", "relu"]}}, r"space\.activation: choice relu appears"),
        ({"space": {"nope": [1, 2]}}, r"space\.nope: not a config key"),
        ({"space": {"epochs": [1, 2]}}, r"space\.epochs: also set in \[base\]"),
        ({"space": {}}, r"space: optuna mode needs a \[space\]"),
        ({"trials": 0}, r"trials: optuna mode needs trials = N >= 1"),
        ({"pruner": "hyperband"}, r"pruner: expected one of median, halving, none"),
        ({"grid": {"lr": [0.1]}}, r"mode: an optuna search takes a \[space\]"),
    ],
)
def test_a_bad_space_is_a_one_line_error_naming_the_key(table, message):
    full = {"mode": "optuna", "trials": 3, "base": {"epochs": 2}, "space": LR_SPACE, **table}
    with pytest.raises(ConfigError, match=message) as raised:
        parse_sweep(full, source="s.toml")
    assert "\n" not in str(raised.value) and str(raised.value).startswith("s.toml: ")


def test_optuna_keys_need_the_optuna_mode():
    with pytest.raises(ConfigError, match="trials: only used with mode = 'optuna'"):
        parse_sweep({"trials": 3, "grid": {"lr": [0.1]}})


def test_a_bad_space_from_the_cli_is_one_line_and_runs_nothing(cli, tmp_path):
    (tmp_path / "s.toml").write_text(
        'mode = "optuna"\ntrials = 3\n[space]\nactivation = ["relu", "nope"]\n'
    )
    code, _, err = cli(["sweep", str(tmp_path / "s.toml"), "--out", str(tmp_path / "out")])
    assert code != 0 and len(err.strip().splitlines()) == 1
    assert "space.activation = nope" in err and "nope" in err
    assert not (tmp_path / "out").exists()
    (tmp_path / "s.toml").write_text('mode = "optuna"\ntrials = 3\n[space]\nlr = {low = 1}\n')
    code, _, err = cli(["sweep", str(tmp_path / "s.toml")])
    assert code != 0 and len(err.strip().splitlines()) == 1 and "space.lr: low and high" in err


def test_without_optuna_the_sweep_says_how_to_install_it(cli, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "optuna", None)  # makes `import optuna` fail
    code, _, err = cli(["sweep", str(RECIPE), "--out", str(tmp_path / "out")])
    assert code != 0 and len(err.strip().splitlines()) == 1
    assert "pip install 'digitlab[optuna]'" in err
    assert not (tmp_path / "out").exists()


# --- on the digits: the search against a grid, and pruning ---------------------------------------


@pytest.fixture(scope="module")
def grid_and_search(tmp_path_factory):
    """An lr grid in half decades over 1e-4..10 (11 trials) and a 7-trial search of the same
    range, on the same net, one worker each."""
    root = tmp_path_factory.mktemp("search")
    lrs = [round(10**k, 6) for k in (-4, -3.5, -3, -2.5, -2, -1.5, -1, -0.5, 0, 0.5, 1)]
    grid = parse_sweep({"name": "grid", "base": dict(BASE), "grid": {"lr": lrs}})
    run_sweep(grid, root / "grid", workers=1, console=quiet())
    spec = search_spec(7, startup_trials=3)
    result = run_sweep(spec, root / "search", workers=1, console=quiet())
    return root, lines(root / "grid" / LOG_FILE), spec, result


def test_the_search_finds_a_working_rate_in_fewer_trials_than_the_grid(grid_and_search):
    root, grid, spec, result = grid_and_search
    accuracy = {r["options"]["lr"]: r["metrics"]["val_accuracy"] for r in grid}
    best_grid = max(accuracy.values())
    working = [lr for lr, acc in accuracy.items() if acc >= best_grid - 0.03]
    assert best_grid > 0.95 and 1e-4 not in working and 10.0 not in working  # a real range
    search = json.loads((root / "search" / SEARCH_FILE).read_text())
    best = search["best"]
    assert len(search["trials"]) == spec.trials < len(accuracy)
    assert min(working) / 2 <= best["options"]["lr"] <= max(working) * 2, (best, working)
    (run,) = best["runs"]
    metrics = json.loads((root / "search" / "trials" / run / "metrics.json").read_text())
    assert metrics["val_accuracy"] >= best_grid - 0.03
    assert math.isclose(metrics["val_loss"], best["value"])  # the value is the run's val loss
    assert best["config"] == {**BASE, "lr": best["options"]["lr"]}
    assert result.ran == spec.trials and result.skipped == 0


def test_a_lagging_trial_is_pruned_and_stops_training(grid_and_search):
    root, _, spec, _ = grid_and_search
    records = lines(root / "search" / LOG_FILE)
    pruned = [r for r in records if r["status"] == "pruned"]
    assert pruned, [(r["options"], r["status"]) for r in records]
    study = the_study(spec, root / "search")
    for record in pruned:
        folder = root / "search" / "trials" / record["id"]
        status = json.loads((folder / "status.json").read_text())
        history = lines(folder / "history.jsonl")
        assert status["state"] == "pruned" and "pruned after epoch" in status["error"]
        assert status["epoch"] == len(history) == record["metrics"]["epochs"] < BASE["epochs"]
        assert not (folder / "metrics.json").exists()
        trial = study.trials[record["number"]]
        assert trial.state == STATES.PRUNED
        assert trial.intermediate_values[len(history)] == history[-1]["val_loss"]


def test_the_summary_page_shows_the_search(grid_and_search):
    root, _, spec, _ = grid_and_search
    html = (root / "search" / "summary.html").read_text()
    search = json.loads((root / "search" / SEARCH_FILE).read_text())
    assert "<h2>Search</h2>" in html and f"Best trial: <b>{search['best']['number']}</b>" in html
    assert 'alt="Search history"' in html and 'alt="Validation loss against each parameter"' in html
    assert "this search has one" in html  # importance needs two parameters: one line says so
    assert html.count("<td>pruned</td>") == sum(t["state"] == "pruned" for t in search["trials"])
    summary = (root / "search" / "summary.csv").read_text().splitlines()
    finished = [t for t in search["trials"] if t["state"] == "complete"]
    assert len(summary) == 1 + len(finished)


# --- the study: resuming, workers, seeds, divergence, importance --------------------------------


def test_a_rerun_continues_the_study_to_its_budget_without_repeating(tmp_path):
    out = tmp_path / "out"
    space = {**LR_SPACE, "hidden": [[16], [32]]}
    first = search_spec(3, space, startup_trials=2)
    run_sweep(first, out, workers=1, trial_fn=landscape_trial, console=quiet())
    study = the_study(first, out)
    assert len(counted(study)) == 3
    # an interrupted run leaves a trial running in the journal
    stale = study.ask(distributions(first.space))
    second = search_spec(6, space, startup_trials=2)  # a larger budget: the same study
    result = run_sweep(second, out, workers=1, trial_fn=landscape_trial, console=quiet())
    study = the_study(second, out)
    numbers = [t.number for t in study.trials]
    assert len(counted(study)) == 6 and len(numbers) == len(set(numbers)) == 7
    assert study.trials[stale.number].state == STATES.FAIL  # failed, not counted
    retried = [t for t in counted(study) if t.params == stale.params]
    assert len(retried) == 1 and retried[0].number > stale.number  # asked again, once
    assert len({json.dumps(t.params) for t in counted(study)}) == 6  # nothing ran twice
    records = lines(out / LOG_FILE)
    assert sorted(r["number"] for r in records) == sorted(t.number for t in counted(study))
    assert result.ran == 3 and result.skipped == 3
    third = run_sweep(second, out, workers=1, trial_fn=landscape_trial, console=quiet())
    assert third.ran == 0 and len(lines(out / LOG_FILE)) == 6


def test_two_workers_share_one_study(tmp_path):
    out = tmp_path / "out"
    spec = search_spec(4, {**LR_SPACE}, seeds=2, startup_trials=2, pruner="none")
    spec.base["epochs"] = 1
    run_sweep(spec, out, workers=2, console=quiet())
    study = the_study(spec, out)
    assert sorted(t.number for t in study.trials) == [0, 1, 2, 3]
    assert all(t.state == STATES.COMPLETE for t in study.trials)
    records = lines(out / LOG_FILE)
    assert sorted((r["number"], r["seed"]) for r in records) == [
        (n, s) for n in range(4) for s in (0, 1)
    ]
    for trial in study.trials:  # the value is the mean validation loss over both seeds
        losses = [r["metrics"]["val_loss"] for r in records if r["number"] == trial.number]
        assert math.isclose(trial.value, sum(losses) / 2)
    pids = set()
    for record in records:
        status = json.loads((out / "trials" / record["id"] / "status.json").read_text())
        assert status["state"] == "finished"
        pids.add(status["pid"])
    assert len(pids) == 2  # both workers ran trials


def test_successive_halving_prunes_at_its_rungs(tmp_path):
    out = tmp_path / "out"
    spec = search_spec(8, pruner="halving", startup_trials=2)
    spec.base["epochs"] = 8
    run_sweep(spec, out, workers=1, trial_fn=slow_landscape_trial, console=quiet())
    study = the_study(spec, out)
    pruned = [t for t in study.trials if t.state == STATES.PRUNED]
    assert pruned and all(max(t.intermediate_values) < 8 for t in pruned)
    assert len(counted(study)) == 8
    records = {r["number"]: r for r in lines(out / LOG_FILE)}
    assert all(records[t.number]["status"] == "pruned" for t in pruned)


def test_a_diverged_trial_counts_as_the_worst(tmp_path):
    out = tmp_path / "out"
    spec = search_spec(6, {"lr": {"low": 0.01, "high": 100.0, "log": True}}, startup_trials=6)
    run_sweep(spec, out, workers=1, trial_fn=diverging_trial, console=quiet())
    study = the_study(spec, out)
    diverged = [t for t in study.trials if t.params["lr"] > 1]
    assert diverged and all(t.state == STATES.COMPLETE and t.value == math.inf for t in diverged)
    assert len(study.trials) == 6  # counted in the budget, not retried
    search = json.loads((out / SEARCH_FILE).read_text())
    assert {t["number"] for t in search["trials"] if t["diverged"]} == {t.number for t in diverged}
    assert search["best"]["options"]["lr"] <= 1


def test_parameter_importance_ranks_the_parameter_that_matters(tmp_path):
    out = tmp_path / "out"
    space = {**LR_SPACE, "hidden": [[16], [32], [64]]}
    spec = search_spec(8, space, startup_trials=4, pruner="none")
    run_sweep(spec, out, workers=1, trial_fn=landscape_trial, console=quiet())
    search = json.loads((out / SEARCH_FILE).read_text())
    assert set(search["importance"]) == {"lr", "hidden"}
    assert search["importance"]["lr"] > search["importance"]["hidden"]
    assert 'alt="Parameter importance"' in (out / "summary.html").read_text()


def test_too_few_trials_for_importance_is_one_line(tmp_path):
    out = tmp_path / "out"
    spec = search_spec(2, {**LR_SPACE, "hidden": [[16], [32]]}, pruner="none")
    run_sweep(spec, out, workers=1, trial_fn=landscape_trial, console=quiet())
    search = json.loads((out / SEARCH_FILE).read_text())
    assert search["importance"] == {}
    assert search["importance_note"] == (
        "parameter importance needs 3 finished trials; this study has 2"
    )


def test_the_default_trial_takes_callbacks(tmp_path):
    seen = []
    config = make_config({"data": "digits", "epochs": 2, "hidden": [8]})
    run_trial(config, tmp_path, callbacks=[lambda r, m: seen.append(r["epoch"])])
    assert seen == [1, 2]


def test_search_via_local_ray(tmp_path):
    if os.environ.get("CI", "").lower() != "true":  # CI installs the ray extra: it must run
        pytest.importorskip("ray")
    spec = search_spec(3, startup_trials=2)
    spec.base["epochs"] = 1
    run_sweep(spec, tmp_path / "out", workers=2, ray_address="local", console=quiet())
    study = the_study(spec, tmp_path / "out")
    assert len(counted(study)) == 3 and len(study.trials) == 3
    assert all(t.intermediate_values == {1: t.value} for t in study.trials)  # the tasks reported
    for record in lines(tmp_path / "out" / LOG_FILE):
        assert (tmp_path / "out" / "trials" / record["id"] / "history.jsonl").exists()
