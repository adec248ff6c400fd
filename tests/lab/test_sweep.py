"""Sweeps: the file format, validation up front, parallel runs, resume, failures, dead workers,
Ctrl-C, the summary statistics and (if Ray is installed) Ray tasks."""

import csv
import json
import math
import multiprocessing
import os
import shutil
import signal
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from rich.console import Console

from digitlab.cli.sweep import sweep as sweep_command
from digitlab.errors import ConfigError, NumericError
from digitlab.lab.sweep import (
    LOG_FILE,
    SECTION_KEYS,
    SWEEP_KEYS,
    TrialLog,
    parse_sweep,
    plan,
    read_records,
    read_sweep,
    run_sweep,
    variants,
)
from digitlab.report.sweep import BEST, BETTER, TOO_FEW, WITHIN, summarise
from digitlab.stats import mean_interval, t_quantile, t_two_sided_p, welch_test

RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "sweeps" / "lr_activation.toml"

SWEEP_2X2X2 = """
name = "tiny"
seeds = 2
[base]
data = "digits"
epochs = 2
hidden = [32]
[grid]
lr = [0.1, 0.5]
activation = ["relu", { name = "leaky_relu", slope = 0.1 }]
"""


def quiet() -> Console:
    return Console(file=open(os.devnull, "w"), width=200)  # noqa: SIM115 - lives as long as tests


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


# --- trial functions for the tests (module level, so worker processes can import them) ----------


def fake_trial(config, folder):
    """Instant, deterministic 'training'; lr 0.5 kills its worker, lr 0.7 calls sys.exit,
    lr >= 1e6 diverges, lr 0.3 takes a while."""
    if config.learning_rate >= 1e6:
        raise NumericError(f"non-finite loss at epoch 1 (lr {config.learning_rate:g})")
    if config.learning_rate == 0.5:
        os.kill(os.getpid(), signal.SIGKILL)
    if config.learning_rate == 0.7:
        sys.exit(3)
    if config.learning_rate == 0.3:
        time.sleep(0.25)
    accuracy = 0.5 + config.learning_rate / 10 + config.seed / 1000
    (folder / "history.jsonl").write_text(json.dumps({"epoch": 1, "val_accuracy": accuracy}) + "\n")
    return {
        "val_accuracy": accuracy,
        "test_accuracy": accuracy,
        "val": {"n": 100, "accuracy_ci95": [accuracy - 0.05, accuracy + 0.05]},
        "test": {"n": 100, "accuracy_ci95": [accuracy - 0.05, accuracy + 0.05]},
    }


def fake_spec(lrs, seeds=1, name="fake"):
    return parse_sweep({"name": name, "seeds": seeds, "grid": {"lr": lrs}})


# --- the real 2x2x2 sweep on the 8x8 digits ----------------------------------------------------


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """The 2x2x2 sweep run once through the click command with 2 local workers."""
    root = tmp_path_factory.mktemp("sweep")
    (root / "tiny.toml").write_text(SWEEP_2X2X2)
    result = CliRunner().invoke(
        sweep_command, [str(root / "tiny.toml"), "--out", str(root / "out"), "--workers", "2"]
    )
    assert result.exit_code == 0, result.output
    return root, result.output


def copy_of(finished, tmp_path) -> tuple[Path, Path]:
    root, _ = finished
    shutil.copy(root / "tiny.toml", tmp_path / "tiny.toml")
    shutil.copytree(root / "out", tmp_path / "out")
    return tmp_path / "tiny.toml", tmp_path / "out"


def test_sweep_runs_every_trial_and_writes_the_summary(finished):
    root, output = finished
    out = root / "out"
    records = lines(out / LOG_FILE)
    assert len(records) == 8 and all(r["status"] == "done" for r in records)
    assert len({r["id"] for r in records}) == 8
    assert {(r["options"]["lr"], r["seed"]) for r in records} == {
        (lr, s) for lr in (0.1, 0.5) for s in (0, 1)
    }
    for record in records:
        assert 0.5 < record["metrics"]["val_accuracy"] <= 1
        assert record["metrics"]["test_n"] == 359
        folder = out / "trials" / record["id"]
        assert {"config.json", "history.jsonl", "metrics.json", "model.npz"} <= {
            p.name for p in folder.iterdir()
        }
        assert json.loads((folder / "config.json").read_text())["seed"] == record["seed"]
    rows = list(csv.DictReader((out / "summary.csv").open()))
    assert len(rows) == 4 and [r["rank"] for r in rows] == ["1", "2", "3", "4"]
    means = [float(r["val_accuracy_mean"]) for r in rows]
    assert means == sorted(means, reverse=True)  # ranked by validation, not test
    assert rows[0]["vs_best"] == BEST
    assert {r["activation"] for r in rows} == {"relu", "leaky_relu(slope=0.1)"}
    assert all(r["seeds_done"] == "2" and r["test_interval"] == "seeds+images" for r in rows)
    for row in rows:
        low, high = float(row["test_accuracy_ci95_low"]), float(row["test_accuracy_ci95_high"])
        assert low <= float(row["test_accuracy_mean"]) <= high
    html = (out / "summary.html").read_text()
    assert html.count("data:image/png;base64,") == 2 and "McNemar" in html
    assert "McNemar" in output and "ranked by mean validation accuracy" in output
    # two seeds: the paired tests ran on each trial's predictions.npz
    assert all(r["mcnemar_p"] and r["paired_t_p"] and r["shared_seeds"] == "2" for r in rows[1:])


def test_the_summary_draws_the_pixels_each_variant_keeps_and_its_augmented_images(tmp_path):
    from digitlab.lab.modelfile import load_model
    from digitlab.report.sweep_page import kept_pixels

    spec = parse_sweep(
        {"name": "pixels", "seeds": 1, "base": {"data": "digits", "epochs": 1, "hidden": [8]},
         "variants": [{"crop": 1}, {"pixel_subset": 10, "pixel_pick": "variance"}, {"crop": 0},
                      {"augment": {"shift": 2, "fill": 1.0}}]}
    )  # fmt: skip
    run_sweep(spec, tmp_path, workers=1, console=quiet())
    html = (tmp_path / "summary.html").read_text()
    assert "Input pixels per variant" in html and "Augmented images per variant" in html
    assert html.count("data:image/png;base64,") == 4
    records, _ = read_records(tmp_path / LOG_FILE)
    rows = summarise([(r["options"], [r]) for r in records])
    masks, labels = kept_pixels(rows, tmp_path / "trials")
    assert sorted(labels) == ["crop=1", "pixel_subset=10 pixel_pick=variance"]
    by_label = dict(zip(labels, masks, strict=True))
    centre = np.zeros((8, 8), dtype=bool)
    centre[1:-1, 1:-1] = True
    np.testing.assert_array_equal(by_label["crop=1"], centre)
    variance = by_label["pixel_subset=10 pixel_pick=variance"]
    record = next(r for r in records if "pixel_pick" in r["options"])
    _, extra = load_model(tmp_path / "trials" / record["id"] / "model.npz")
    saved = extra["pipeline"]["fitted"]["pixel_subset"]["columns"]
    assert np.flatnonzero(variance).tolist() == saved


def test_rerun_runs_nothing(finished, tmp_path):
    sweep_file, out = copy_of(finished, tmp_path)
    before = (out / LOG_FILE).read_bytes()
    result = run_sweep(read_sweep(sweep_file), out, workers=2, console=quiet())
    assert result.ran == 0 and result.skipped == 8
    assert (out / LOG_FILE).read_bytes() == before


def test_deleting_one_record_reruns_only_that_trial(finished, tmp_path):
    sweep_file, out = copy_of(finished, tmp_path)
    kept = (out / LOG_FILE).read_text().splitlines(keepends=True)
    dropped = json.loads(kept.pop(3))
    (out / LOG_FILE).write_text("".join(kept))
    result = run_sweep(read_sweep(sweep_file), out, workers=2, console=quiet())
    assert result.ran == 1
    records = lines(out / LOG_FILE)
    assert len(records) == 8 and records[-1]["id"] == dropped["id"]
    # same seed, same config: the same numbers again
    assert records[-1]["metrics"]["val_accuracy"] == dropped["metrics"]["val_accuracy"]


def test_a_torn_last_line_is_ignored_and_cut_before_the_next_append(finished, tmp_path):
    sweep_file, out = copy_of(finished, tmp_path)
    text = (out / LOG_FILE).read_text()
    last = text.splitlines()[-1]
    torn = text[: len(text) - len(last) - 1] + last[: len(last) // 2]  # crash mid-write
    (out / LOG_FILE).write_text(torn)
    records, ignored = read_records(out / LOG_FILE)
    assert len(records) == 7 and ignored == 1
    result = run_sweep(read_sweep(sweep_file), out, workers=1, console=quiet())
    assert result.ran == 1  # only the trial whose record was torn
    records = lines(out / LOG_FILE)  # every line parses again
    assert len(records) == 8 and records[-1]["id"] == json.loads(last)["id"]


def test_a_bad_option_fails_validation_before_anything_runs(tmp_path):
    spec = parse_sweep({"name": "bad", "grid": {"lr": [0.1, -1.0], "activation": ["relu"]}})
    with pytest.raises(ConfigError, match=r"variant lr=-1 activation=relu \(seed 0\): lr: "):
        run_sweep(spec, tmp_path / "out", console=quiet())
    assert not (tmp_path / "out").exists()
    spec = parse_sweep({"name": "bad", "grid": {"activation": ["relu", "nope"]}})
    with pytest.raises(ConfigError, match=r"variant activation=nope .*unknown activation 'nope'"):
        plan(spec)


def test_a_trial_that_fails_at_runtime_is_recorded_and_the_others_finish(tmp_path):
    spec = parse_sweep(
        {"name": "diverge", "base": {"epochs": 2, "hidden": [32]}, "grid": {"lr": [0.1, 1e8]}}
    )
    result = run_sweep(spec, tmp_path, workers=1, console=quiet())
    records = {r["options"]["lr"]: r for r in lines(tmp_path / LOG_FILE)}
    assert records[0.1]["status"] == "done"
    failed = records[1e8]
    assert failed["status"] == "failed" and failed["metrics"] == {}
    assert "\n" not in failed["reason"] and "learning rate" in failed["reason"]
    assert (tmp_path / "trials" / failed["id"] / "error.txt").exists()
    assert [r["id"] for r in result.failed] == [failed["id"]]
    console = Console(record=True, width=200)
    assert run_sweep(spec, tmp_path, console=console).ran == 0
    assert "rerun with --retry-failed" in console.export_text()
    assert run_sweep(spec, tmp_path, workers=1, retry_failed=True, console=quiet()).ran == 1


def test_a_killed_worker_fails_its_trial_and_the_rest_finish(tmp_path):
    spec = fake_spec([0.1, 0.5, 0.2, 0.7], seeds=2)
    run_sweep(spec, tmp_path, workers=2, trial_fn=fake_trial, console=quiet())
    records = lines(tmp_path / LOG_FILE)
    assert len(records) == 8
    for record in records:
        if record["options"]["lr"] == 0.5:
            assert record["status"] == "failed"
            assert record["reason"].startswith("worker died: killed by SIGKILL")
            assert (tmp_path / "trials" / record["id"] / "error.txt").exists()
        elif record["options"]["lr"] == 0.7:  # sys.exit fails the trial, not the worker
            assert record["status"] == "failed" and record["reason"] == "SystemExit: 3"
        else:
            assert record["status"] == "done", record["reason"]
    assert not multiprocessing.active_children()


@pytest.fixture
def ctrl_c_raises():
    """Ctrl-C raises KeyboardInterrupt as in a terminal, even when pytest was started in the
    background (`command &` in a script starts Python with SIGINT ignored)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_ctrl_c_stops_cleanly_and_a_rerun_resumes(tmp_path, ctrl_c_raises):
    # lr 0.3: every trial sleeps 0.25 s; 20 of them on 2 workers leave the interrupt 2.5 s to
    # land after the first record, even on a loaded machine
    spec = fake_spec([0.3], seeds=20, name="slow")
    log = tmp_path / LOG_FILE

    def interrupt_after_first_record() -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not (log.exists() and log.read_text()):
            time.sleep(0.02)
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=interrupt_after_first_record, daemon=True).start()
    with pytest.raises(KeyboardInterrupt):
        run_sweep(spec, tmp_path, workers=2, trial_fn=fake_trial, console=quiet())
    assert not multiprocessing.active_children()
    recorded = lines(log)
    assert 1 <= len(recorded) < 20 and all(r["status"] == "done" for r in recorded)
    result = run_sweep(spec, tmp_path, workers=2, trial_fn=fake_trial, console=quiet())
    assert result.ran == 20 - len(recorded)
    assert len(lines(log)) == 20
    assert not [p for p in (tmp_path / "trials").iterdir() if p.name.startswith(".")]


def test_trial_log_appends_whole_lines(tmp_path):
    path = tmp_path / LOG_FILE
    path.write_bytes(b'{"id": "a", "status": "done"}\n{"id": "b", "sta')
    log = TrialLog(path)
    assert list(log.latest()) == ["a"] and log.ignored == 1
    log.append({"id": "c", "status": "failed"})
    assert [r["id"] for r in lines(path)] == ["a", "c"]


# --- the sweep file -----------------------------------------------------------------------------


def test_the_recipe_parses_into_nine_variants_times_three_seeds():
    spec = read_sweep(RECIPE)
    options, trials = plan(spec)
    assert len(options) == 9 and len(trials) == 27 and spec.seeds == [0, 1, 2]
    assert len({t.id for t in trials}) == 27


def test_ids_are_stable_and_follow_options_seed_and_base():
    table = {"seeds": 2, "base": {"epochs": 3}, "grid": {"lr": [0.1, 0.2]}}
    ids = [t.id for t in plan(parse_sweep(table))[1]]
    assert ids == [t.id for t in plan(parse_sweep(table))[1]]
    assert ids[0].startswith("lr=0.1_s0_")
    changed = {**table, "base": {"epochs": 4}}
    assert not set(ids) & {t.id for t in plan(parse_sweep(changed))[1]}


def test_random_mode_draws_distinct_variants_reproducibly():
    table = {
        "mode": "random",
        "samples": 5,
        "sample_seed": 3,
        "grid": {"lr": [0.01, 0.1, 1.0], "hidden": [[16], [32], [64]], "l2": [0.0, 1e-4]},
    }
    drawn = variants(parse_sweep(table))
    assert len(drawn) == 5 and len({json.dumps(d) for d in drawn}) == 5
    assert drawn == variants(parse_sweep(table))
    assert drawn != variants(parse_sweep({**table, "sample_seed": 4}))
    assert len(variants(parse_sweep({**table, "samples": 100}))) == 18


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"seeds": 0}, "seeds: expected"),
        ({"seeds": [1, 1]}, "seeds: expected"),
        ({"grid": {"lr": 0.1}}, "grid.lr: expected a non-empty list"),
        ({"grid": {"lr": [0.1, 0.1]}}, "grid.lr: value 0.1 appears twice"),
        ({"base": {"lr": 0.1}, "grid": {"lr": [0.2]}}, "grid.lr: also set in"),
        ({"base": {"seed": 3}}, "base.seed: set the seeds"),
        ({"mode": "random"}, "samples: random mode needs"),
        ({"grids": {}}, "grids: unknown sweep key"),
        ({"name": "a/b"}, "name: 'a/b'"),
    ],
)
def test_malformed_sweep_files_are_one_line_errors(table, message):
    with pytest.raises(ConfigError, match=message):
        parse_sweep(table, source="s.toml")


def test_the_declared_keys_are_the_accepted_ones():
    assert all(isinstance(doc, str) and doc for doc in SWEEP_KEYS.values())
    for key in SWEEP_KEYS:  # each is known (the value may still be malformed for it)
        try:
            parse_sweep({key: object()}, source="s.toml")
        except ConfigError as err:
            assert "unknown sweep key" not in str(err)
    with pytest.raises(ConfigError, match="unknown sweep key"):
        parse_sweep({"seed": 1}, source="s.toml")
    for section, keys in SECTION_KEYS.items():
        assert "seed" not in keys and {"lr", "layers", "epochs"} <= keys, section
    with pytest.raises(ConfigError, match="nope"):  # outside SECTION_KEYS: the config rejects it
        plan(parse_sweep({"base": {"nope": 1}}))
    for recipe in RECIPE.parent.glob("*.toml"):  # every shipped sweep file stays within them
        spec = read_sweep(recipe)
        used = set(spec.base) | set(spec.grid) | {k for v in spec.listed or [] for k in v}
        assert used <= SECTION_KEYS["base"], recipe.name


def test_ray_missing_is_a_one_line_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # makes `import ray` fail
    spec = fake_spec([0.1])
    with pytest.raises(ConfigError, match=r"--ray needs Ray.*pip install"):
        run_sweep(spec, tmp_path, ray_address="local", trial_fn=fake_trial, console=quiet())


def test_sweep_via_local_ray(tmp_path):
    if os.environ.get("CI", "").lower() != "true":  # CI installs the ray extra: it must run
        pytest.importorskip("ray")
    (tmp_path / "s.toml").write_text(
        'name = "ray"\n[base]\nepochs = 1\nhidden = [16]\n[grid]\nlr = [0.1, 1e8]\n'
    )
    args = [str(tmp_path / "s.toml"), "--out", str(tmp_path / "out"), "--ray", "local"]
    result = CliRunner().invoke(sweep_command, [*args, "--workers", "2"])
    assert result.exit_code == 0, result.output
    records = {r["options"]["lr"]: r for r in lines(tmp_path / "out" / LOG_FILE)}
    assert records[0.1]["status"] == "done" and records[1e8]["status"] == "failed"
    assert (tmp_path / "out" / "trials" / records[0.1]["id"] / "metrics.json").exists()


# --- statistics ---------------------------------------------------------------------------------


def test_t_distribution_matches_tables():
    for df, quantile in ((1, 12.7062), (2, 4.3027), (5, 2.5706), (10, 2.2281), (100, 1.9840)):
        assert t_quantile(0.975, df) == pytest.approx(quantile, abs=1e-4)
        assert t_two_sided_p(quantile, df) == pytest.approx(0.05, abs=1e-5)
    assert t_two_sided_p(0.0, 3.5) == pytest.approx(1.0)


def test_welch_and_interval_match_scipy():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    for n_a, n_b in ((2, 2), (3, 5), (10, 4)):
        a, b = rng.normal(0.9, 0.01, n_a), rng.normal(0.91, 0.03, n_b)
        t, df, p = welch_test(a, b)
        expected = stats.ttest_ind(a, b, equal_var=False)
        assert t == pytest.approx(expected.statistic, rel=1e-9)
        assert p == pytest.approx(expected.pvalue, rel=1e-7)
        low, high = mean_interval(a)
        half = stats.t.ppf(0.975, n_a - 1) * a.std(ddof=1) / math.sqrt(n_a)
        assert (low, high) == pytest.approx((a.mean() - half, a.mean() + half), rel=1e-9)


# Welch's t-test, examples 1 and 2 of its Wikipedia article; the expected values are those of
# digitlab's former NumPy-only t distribution (incomplete beta by a continued fraction), which
# agree with the article's rounded ones (t -2.46, p 0.021; t -1.57, p 0.149)
WELCH_CASES = [
    (
        [27.5, 21.0, 19.0, 23.6, 17.0, 17.9, 16.9, 20.1, 21.9, 22.6, 23.1, 19.6, 19.0, 21.7, 21.4],
        [27.1, 22.0, 20.8, 23.4, 23.4, 23.5, 25.8, 22.0, 24.8, 20.2, 21.9, 22.1, 22.9, 20.5, 24.4],
        (-2.455356398286006, 24.988529290231416, 0.02137800146286687),
    ),
    (
        [17.2, 20.9, 22.6, 18.1, 21.7, 21.4, 23.5, 24.2, 14.7, 21.8],
        [21.5, 22.8, 21.0, 23.0, 21.6, 23.6, 22.5, 20.7, 23.4, 21.8]
        + [20.7, 21.7, 21.5, 22.5, 23.6, 21.5, 22.5, 23.5, 21.5, 21.8],
        (-1.5654335235985037, 9.904741248650831, 0.14884169660532998),
    ),
]


@pytest.mark.parametrize(("a", "b", "expected"), WELCH_CASES)
def test_welch_matches_published_and_former_values(a, b, expected):
    t, df, p = welch_test(a, b)
    assert (t, df, p) == pytest.approx(expected, rel=1e-9)
    assert f"{p:.3g}" == f"{expected[2]:.3g}"  # as summary.html prints it


def test_interval_and_edge_cases_match_former_values():
    # former implementation: t(0.975, 2) by bisection on its own tail, and the interval built on it
    assert t_quantile(0.975, 2) == pytest.approx(4.302652729749459, rel=1e-9)
    assert t_quantile(0.975, 2.5) == pytest.approx(3.57465484200368, rel=1e-9)
    assert t_two_sided_p(2.0, 7.3) == pytest.approx(0.08394103933410307, rel=1e-9)
    low, high = mean_interval([0.91, 0.93, 0.92])
    assert (low, high) == pytest.approx((0.8951586228824967, 0.9448413771175034), rel=1e-12)
    assert welch_test([0.9, 0.9], [0.9, 0.9]) == (0.0, math.inf, 1.0)  # SciPy alone: NaN
    assert welch_test([0.9, 0.9], [0.8, 0.8]) == (math.inf, math.inf, 0.0)


def record(val, test=None, seed=0):
    return {
        "id": f"x{val}-{seed}",
        "seed": seed,
        "status": "done",
        "seconds": 1.0,
        "metrics": {
            "val_accuracy": val,
            "test_accuracy": val if test is None else test,
            "val_n": 200,
            "test_n": 200,
        },
    }


def paired_p_by_formula(differences):
    """The paired t-test's two-sided p from the differences, by the formula."""
    d = np.array(differences)
    t = d.mean() / (d.std(ddof=1) / math.sqrt(len(d)))
    return t_two_sided_p(t, len(d) - 1)


def test_variants_are_ranked_by_validation_and_marked_against_the_best():
    # no per-image results (no trial folders): the paired t-test over seeds alone decides
    groups = [
        ({"lr": 1}, [record(0.90, 0.99 - s / 100, s) for s in range(3)]),  # best test, not picked
        ({"lr": 2}, [record(v, 0.5 + s / 100, s) for s, v in enumerate((0.95, 0.951, 0.952))]),
        ({"lr": 3}, [record(v, 0.5 + s / 99, s) for s, v in enumerate((0.93, 0.96, 0.949))]),
        ({"lr": 4}, [record(0.94)]),  # one seed: no paired test
        ({"lr": 5}, [record(0.5, seed=s) for s in range(2)]),  # two seeds: too few to tell
        ({"lr": 6}, [None, {"id": "f", "status": "failed", "reason": "boom"}]),
    ]
    rows = summarise(groups)
    assert [r.options["lr"] for r in rows] == [2, 3, 4, 1, 5, 6]
    assert [r.verdict for r in rows] == [BEST, WITHIN, TOO_FEW, BETTER, TOO_FEW, "no results"]
    assert [r.compared_by for r in rows] == ["", "paired t", "", "paired t", "paired t", ""]
    # lr 1 scores 0.98-0.99 on test against 0.50-0.52: the same large gap every seed
    p = rows[3].comparison.paired_t_p
    assert p == pytest.approx(paired_p_by_formula([0.49, 0.47, 0.45]), rel=1e-9)
    assert rows[3].p_value == pytest.approx(3 * p)  # Holm: the smallest of 3 p-values, times 3
    assert rows[-1].planned == 2 and len(rows[-1].failed) == 1


def test_listed_variants_override_the_base_and_are_summarised(tmp_path):
    spec = parse_sweep(
        {
            "name": "listed",
            "base": {"epochs": 2, "hidden": [16], "lr": 1.0},
            "variants": [{"activation": "sigmoid"}, {"activation": "relu", "lr": 0.1}],
        }
    )
    assert variants(spec) == [{"activation": "sigmoid"}, {"activation": "relu", "lr": 0.1}]
    _, trials = plan(spec)
    assert [t.values["lr"] for t in trials] == [1.0, 0.1]
    run_sweep(spec, tmp_path, workers=1, console=quiet())
    rows = list(csv.DictReader((tmp_path / "summary.csv").open()))
    assert {r["activation"] for r in rows} == {"sigmoid", "relu"}
    with pytest.raises(ConfigError, match="no \\[grid\\]"):
        parse_sweep({"grid": {"lr": [1]}, "variants": [{"lr": 2}]})
