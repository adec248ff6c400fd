"""Adaptive search: a sweep with mode = "optuna" asks an Optuna study for each trial's options.

The study lives in OUT/study.journal (Optuna's journal file storage, file-locked), named after
the sweep and a hash of its [base], [space] and seeds, so that a rerun of the same file
continues it and a changed file starts a new one beside it. The parent process asks the study
for a trial whenever a worker comes free (a `Feed` for the sweep's executors: local worker
processes or Ray tasks), so each trial learns from every trial finished before it; the sampler is
TPE, seeded by `sample_seed` and the number of trials already in the study.

A trial is one set of options run with every seed of the sweep, one run folder per seed
(OUT/trials/t0007-<id>/). Its value, which the study minimises, is the final validation loss,
averaged over the seeds: on small validation sets the accuracy moves in coarse steps, the loss
separates close settings, and it is what the pruner watches. The first seed's run reports its
validation loss after every epoch; when the pruner (median or successive halving) finds it lags
the other trials' at the same epoch, training stops there, the run folder's status.json says
"pruned", and the other seeds are not run. A trial whose training diverges (a NumericError)
gets the worst value, infinity, so the sampler learns to avoid it.

The budget, `trials`, counts finished and pruned trials. Trials that were running when an
earlier run stopped (Ctrl-C, a crash) are marked failed at the start of the next and asked again
with the same options; failed trials do not count. The search ends with OUT/search.json (every
trial, the best and its config, the parameters' importance) and the summary page's search
section (report/search.py).
"""

from __future__ import annotations

import hashlib
import json
import math
import warnings
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from digitlab.core.hooks import EpochCallback
from digitlab.errors import ConfigError
from digitlab.lab.runs import write_json
from digitlab.lab.sweep.sweepfile import SweepSpec, Trial, resolved_base, trial_id
from digitlab.lab.sweep.trials import LOG_FILE, TrialLog
from digitlab.lab.sweep.worker import Pruned, TrialFunction, first_line
from digitlab.report.sweep import option_label, summarise, variant_label, write_summary

JOURNAL_FILE = "study.journal"
SEARCH_FILE = "search.json"
INSTALL = "pip install 'digitlab[optuna]'"
OBJECTIVE = "val_loss"
WARMUP_EPOCHS = 2  # the median pruner's first epoch (steps are epochs, 1-based)


def require_optuna() -> Any:
    """The optuna module, quiet; one-line ConfigError saying how to install it."""
    try:
        import optuna
    except ImportError:
        raise ConfigError(
            f"mode = 'optuna' needs Optuna, which is not installed: {INSTALL}"
        ) from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    return optuna


def journal_storage(path: Path) -> Any:
    """Optuna's journal storage in one file (the backend's name changed in Optuna 4)."""
    optuna = require_optuna()
    try:
        from optuna.storages.journal import JournalFileBackend as Backend
    except ImportError:  # Optuna 3
        from optuna.storages import JournalFileStorage as Backend
    return optuna.storages.JournalStorage(Backend(str(path)))


def make_pruner(name: str, startup_trials: int) -> Any:
    """The pruner the sweep names. Median: from epoch WARMUP_EPOCHS on, once `startup_trials`
    have finished (an epoch-1 loss says more about speed than about where a trial ends up)."""
    optuna = require_optuna()
    if name == "median":
        return optuna.pruners.MedianPruner(
            n_startup_trials=startup_trials, n_warmup_steps=WARMUP_EPOCHS
        )
    if name == "halving":
        return optuna.pruners.SuccessiveHalvingPruner()
    return optuna.pruners.NopPruner()


def study_name(spec: SweepSpec) -> str:
    """`<name>-<hash of base, space and seeds>`: the budget, sampler and pruner may change
    between reruns without starting over; what a trial's value means may not."""
    canonical = json.dumps(
        {"base": spec.base, "space": spec.space, "seeds": spec.seeds}, sort_keys=True
    )
    return f"{spec.name}-{hashlib.sha256(canonical.encode()).hexdigest()[:10]}"


def distributions(space: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Optuna's distribution per [space] key; a choice is offered by its label (Optuna's
    categorical values are scalars, ours may be tables)."""
    dist = require_optuna().distributions
    out: dict[str, Any] = {}
    for key, entry in space.items():
        if entry["type"] == "choice":
            out[key] = dist.CategoricalDistribution([option_label(v) for v in entry["choices"]])
        elif entry["type"] == "int":
            out[key] = dist.IntDistribution(
                entry["low"], entry["high"], log=entry["log"], step=entry["step"] or 1
            )
        else:
            out[key] = dist.FloatDistribution(
                entry["low"], entry["high"], log=entry["log"], step=entry["step"]
            )
    return out


def options_of(params: dict[str, Any], space: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """A trial's parameters as config options: a choice's label back to its value, a float
    rounded to 4 significant digits (kept within its range), so that folder names, tables and
    configs read 0.06916 rather than 0.06915514312150907."""
    options = {}
    for key, entry in space.items():
        if key not in params:
            continue
        value = params[key]
        if entry["type"] == "choice":
            labels = [option_label(v) for v in entry["choices"]]
            value = entry["choices"][labels.index(value)]
        elif entry["type"] == "float":
            value = min(max(float(f"{value:.4g}"), entry["low"]), entry["high"])
        options[key] = value
    return options


# --- in the worker ------------------------------------------------------------------------------


def pruning_callbacks(ref: dict[str, Any]) -> list[EpochCallback]:
    """The epoch callback that reports a trial's validation loss to its study and raises Pruned
    when the pruner says it lags (none for a trial's later seeds, which only run)."""
    if not ref.get("report"):
        return []
    optuna = require_optuna()
    study = optuna.load_study(
        study_name=ref["study"],
        storage=journal_storage(Path(ref["journal"])),
        pruner=make_pruner(ref["pruner"], ref["startup_trials"]),
        sampler=optuna.samplers.RandomSampler(),  # never samples here: the parent asks
    )
    trial = optuna.trial.Trial(study, ref["trial_id"])

    def report(record: dict[str, Any], model: Any) -> None:
        epoch, loss = int(record["epoch"]), float(record.get(OBJECTIVE, math.nan))
        if not math.isfinite(loss):
            return
        trial.report(loss, epoch)
        if trial.should_prune():
            raise Pruned(
                f"pruned after epoch {epoch}: validation loss {loss:.4g} lags the other trials'",
                record,
                {
                    OBJECTIVE: loss,
                    "val_accuracy": float(record.get("val_accuracy", math.nan)),
                    "epochs": epoch,
                },
            )

    return [report]


# --- in the parent ------------------------------------------------------------------------------


@dataclass
class _Open:
    """A trial asked from the study and not yet told: its options and its seeds' outcomes."""

    trial: Any
    options: dict[str, Any]
    outcomes: dict[int, dict[str, Any]] = field(default_factory=dict)


class StudyFeed:
    """Hands out (trial, seed) runs to the executors: a new trial is asked from the study only
    when a worker is free and the budget allows; a trial's later seeds run once its first seed
    has finished unpruned. `finished` tells the study each trial's result."""

    def __init__(self, spec: SweepSpec, study: Any, journal: Path, console: Console) -> None:
        optuna = require_optuna()
        self.spec, self.study, self.journal, self.console = spec, study, journal, console
        self.states = optuna.trial.TrialState
        self.space = spec.space or {}
        self.distributions = distributions(self.space)
        self.base = resolved_base(spec)
        self.budget = spec.trials or 0
        self.counted = self.before = count_trials(study)
        self.open: dict[int, _Open] = {}
        self.pending: deque[Trial] = deque()
        self.failures = 0  # failed trials in this run: as many as the budget ends the search
        self.asked = 0

    def remaining(self) -> int:
        return max(0, self.budget - self.counted)

    def _can_ask(self) -> bool:
        return self.counted + len(self.open) < self.budget and self.failures < self.budget

    def more(self) -> bool:
        return bool(self.pending) or self._can_ask()

    def take(self) -> Trial | None:
        if self.pending:
            return self.pending.popleft()
        if not self._can_ask():
            return None
        trial = self.study.ask(self.distributions)
        self.asked += 1
        options = options_of(trial.params, self.space)
        self.open[trial.number] = _Open(trial, options)
        return self._run(trial, options, self.spec.seeds[0])

    def give_back(self, trial: Trial) -> None:
        self.pending.appendleft(trial)

    def _run(self, trial: Any, options: dict[str, Any], seed: int) -> Trial:
        ref = {
            "journal": str(self.journal.resolve()),
            "study": self.study.study_name,
            "trial_id": trial._trial_id,
            "number": trial.number,
            "pruner": self.spec.pruner,
            "startup_trials": self.spec.startup_trials,
            "report": seed == self.spec.seeds[0],
        }
        ident = f"t{trial.number:04d}-{trial_id(self.spec.base, options, seed)}"
        values = {**self.base, **options, "seed": seed}
        return Trial(ident, trial.number, options, seed, values, study=ref)

    def finished(self, run: Trial, outcome: dict[str, Any]) -> None:
        """One seed's outcome: tell the study when it decides the trial."""
        entry = self.open.get(run.variant)
        if entry is None:  # the trial was decided already (a sibling seed failed)
            return
        entry.outcomes[run.seed] = outcome
        status, seeds = outcome["status"], self.spec.seeds
        if status == "pruned":
            self._tell(run.variant, state=self.states.PRUNED)
        elif status == "failed" and outcome.get("error") == "NumericError":
            self._tell(run.variant, value=math.inf)  # diverged: the worst value, not a failure
        elif status == "failed":
            self._tell(run.variant, state=self.states.FAIL)
        elif run.seed == seeds[0] and len(seeds) > 1:
            self.pending.extendleft(
                reversed([self._run(entry.trial, entry.options, s) for s in seeds[1:]])
            )
        elif len(entry.outcomes) == len(seeds):
            losses = [o["metrics"].get(OBJECTIVE) for o in entry.outcomes.values()]
            if any(not isinstance(v, int | float) for v in losses):
                self.console.print(f"[red]the trial's metrics have no {OBJECTIVE}[/]")
                self._tell(run.variant, state=self.states.FAIL)
            else:
                self._tell(run.variant, value=float(np.mean(losses)))

    def _tell(self, number: int, value: float | None = None, state: Any = None) -> None:
        if state is None:
            self.study.tell(number, value)
        else:
            self.study.tell(number, state=state)
        if state == self.states.FAIL:
            self.failures += 1
        else:
            self.counted += 1
        del self.open[number]
        self.pending = deque(r for r in self.pending if r.variant != number)


def count_trials(study: Any) -> int:
    """The trials the budget counts: finished and pruned."""
    states = require_optuna().trial.TrialState
    return len(study.get_trials(deepcopy=False, states=(states.COMPLETE, states.PRUNED)))


def open_study(spec: SweepSpec, journal: Path, console: Console) -> Any:
    """Create or load the sweep's study; trials left running by an earlier, interrupted run are
    failed and queued again with the same options."""
    optuna = require_optuna()
    storage = journal_storage(journal)
    name = study_name(spec)
    try:
        done = len(optuna.load_study(study_name=name, storage=storage).trials)
    except KeyError:  # no such study yet
        done = 0
    seed = int(np.random.SeedSequence([spec.sample_seed, done]).generate_state(1)[0])
    study = optuna.create_study(
        study_name=name,
        storage=storage,
        direction="minimize",
        # constant liar: running trials count as bad ones, so parallel workers spread out
        sampler=optuna.samplers.TPESampler(
            seed=seed, n_startup_trials=spec.startup_trials, constant_liar=True
        ),
        pruner=make_pruner(spec.pruner, spec.startup_trials),
        load_if_exists=True,
    )
    stale = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
    for trial in stale:
        study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
        study.enqueue_trial(trial.params)
    if stale:
        numbers = ", ".join(str(t.number) for t in stale)
        console.print(f"trials {numbers} were interrupted: marked failed, to be asked again")
    return study


def search_record(
    spec: SweepSpec, study: Any, records: list[dict[str, Any]], journal: Path
) -> dict[str, Any]:
    """What search.json holds: the study, every trial (state, value, options, last epoch
    reported, run folders), the best trial with its config, and the parameters' importance."""
    optuna = require_optuna()
    states = optuna.trial.TrialState
    runs: dict[int, list[str]] = {}
    for record in records:
        if "number" in record and record.get("study") == study.study_name:
            runs.setdefault(int(record["number"]), []).append(record["id"])
    trials = []
    for t in study.get_trials(deepcopy=False):
        if t.state == states.WAITING:
            continue
        # a pruned trial's value is its last reported one: the trial has no result
        finite = t.state == states.COMPLETE and t.value is not None and math.isfinite(t.value)
        steps = sorted(t.intermediate_values)
        trials.append(
            {
                "number": t.number,
                "state": t.state.name.lower(),
                "value": t.value if finite else None,
                "diverged": t.state == states.COMPLETE and not finite,
                "options": options_of(t.params, spec.space or {}),
                "epochs": steps[-1] if steps else None,
                "last": t.intermediate_values[steps[-1]] if steps else None,
                "runs": sorted(dict.fromkeys(runs.get(t.number, []))),
            }
        )
    scored = [t for t in trials if t["value"] is not None]
    best = min(scored, key=lambda t: t["value"]) if scored else None
    if best is not None:
        best = {**best, "config": {**spec.base, **best["options"]}}
    importance, note = parameter_importance(study, scored)
    return {
        "study": study.study_name,
        "journal": journal.name,
        "objective": f"{OBJECTIVE}, mean over seeds (minimised)",
        "budget": spec.trials,
        "counted": count_trials(study),
        "pruner": spec.pruner,
        "sampler": f"TPE, {spec.startup_trials} random startup trials, sample_seed "
        f"{spec.sample_seed}",
        "space": spec.space,
        "best": best,
        "importance": importance,
        "importance_note": note,
        "trials": trials,
    }


def parameter_importance(
    study: Any, scored: list[dict[str, Any]]
) -> tuple[dict[str, float], str | None]:
    """Optuna's parameter importance over the finished trials (diverged ones at the worst
    finite value), or a one-line note saying why there is none."""
    optuna = require_optuna()
    if len({key for t in scored for key in t["options"]}) < 2:
        return {}, "parameter importance compares parameters: this search has one"
    if len(scored) < 3:
        return {}, f"parameter importance needs 3 finished trials; this study has {len(scored)}"
    worst = max(t["value"] for t in scored)
    try:
        with warnings.catch_warnings():  # a note that it ranks low values as good: they are
            warnings.simplefilter("ignore")
            values = optuna.importance.get_param_importances(
                study, target=lambda t: min(t.value, worst)
            )
    except (RuntimeError, ValueError) as err:
        return {}, f"parameter importance: {first_line(str(err))}"
    return {k: float(v) for k, v in values.items()}, None


def run_study(
    spec: SweepSpec,
    folder: Path,
    log: TrialLog,
    workers: int | None,
    ray_address: str | None,
    trial_fn: TrialFunction,
    console: Console,
) -> Any:
    """Continue the sweep's study up to its budget, then write search.json and the summary."""
    from digitlab.lab.sweep.runner import TRIALS_DIR, SweepResult, _execute, sweep_details

    journal = folder / JOURNAL_FILE
    study = open_study(spec, journal, console)
    feed = StudyFeed(spec, study, journal, console)
    write_json(folder / "sweep.json", _sweep_json(spec, study, log))
    console.print(
        f"[bold]sweep {spec.name}[/]: optuna search of {', '.join(spec.space or {})}, "
        f"{spec.trials} trials x {len(spec.seeds)} seeds -> {folder} (study {study.study_name} "
        f"in {JOURNAL_FILE})"
    )
    if log.ignored:
        console.print(f"{LOG_FILE}: ignored {log.ignored} unreadable line(s) (a torn write)")
    if feed.counted:
        console.print(f"{feed.counted} trials already finished or pruned")
    if feed.remaining():
        _execute(
            feed,
            folder / TRIALS_DIR,
            log,
            workers,
            ray_address,
            trial_fn,
            console,
            count=feed.remaining(),
            after=feed.finished,
        )
    else:
        console.print("nothing to run: the budget is reached (raise `trials` to search on)")
    if feed.failures >= feed.budget:
        console.print(f"[red]stopped: {feed.failures} trials failed in this run[/]")
    search = search_record(spec, study, log.records, journal)
    write_json(folder / SEARCH_FILE, _json_safe(search))
    write_json(folder / "sweep.json", _sweep_json(spec, study, log))
    latest = log.latest()
    groups = [
        (t["options"], [latest.get(i) for i in t["runs"]])
        for t in search["trials"]
        if t["state"] == "complete"
    ]
    rows = summarise(groups, folder / TRIALS_DIR)  # per-image results: the paired tests
    details = sweep_details(
        spec,
        space=spec.space,
        trials=spec.trials,
        pruner=spec.pruner,
        startup_trials=spec.startup_trials,
        sample_seed=spec.sample_seed,
        study=f"{study.study_name} in {JOURNAL_FILE}",
    )
    from digitlab.report.search import search_html

    csv_path, html_path = write_summary(
        folder,
        f"sweep {spec.name}",
        rows,
        list(spec.space or {}),
        details,
        extra_html=search_html(_json_safe(search)),
    )
    from digitlab.report.sweep import print_table

    print_table(console, rows, list(spec.space or {}))
    best = search["best"]
    if best is not None:
        console.print(
            f"best trial {best['number']}: {variant_label(best['options'])}, validation loss "
            f"{best['value']:.4g} (search.json has its config)",
            soft_wrap=True,
        )
    failures = [r for row in rows for r in row.failed]
    console.print(f"wrote {csv_path}, {html_path} and {folder / SEARCH_FILE}")
    return SweepResult(folder, feed.asked, feed.before, failures, rows)


def _sweep_json(spec: SweepSpec, study: Any, log: TrialLog) -> dict[str, Any]:
    """sweep.json, as the grid writes it (the studio reads it): the trials are the runs so far."""
    name = study.study_name
    ids = [r["id"] for r in log.records if r.get("study") == name]
    return {
        "name": spec.name,
        "description": spec.description,
        "source": spec.source,
        "seeds": spec.seeds,
        "mode": spec.mode,
        "sample_seed": spec.sample_seed,
        "base": spec.base,
        "space": spec.space,
        "trials": list(dict.fromkeys(ids)),
        "budget": spec.trials,
        "study": name,
    }


def _json_safe(value: Any) -> Any:
    """Non-finite floats as None (JSON has no infinity)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value
