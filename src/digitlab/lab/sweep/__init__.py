"""Parameter sweeps: configs times seeds, run in parallel, recorded as they finish, resumable.

    digitlab sweep SWEEP.toml [--out DIR] [--workers N] [--ray ADDRESS|local] [--retry-failed]

The parts, each in its own module:
    sweepfile.py  the sweep file: its keys (SWEEP_KEYS, SECTION_KEYS), parsing, checks, and the
                  plan of variants and trials, every trial's config validated up front
    trials.py     the trial log OUT/trials.jsonl: appended and fsynced, torn lines ignored
    worker.py     running one trial inside a worker: outcome, error.txt, a staging folder renamed
                  into place when done
    executors.py  local worker processes (a dead worker fails only its trial) and Ray tasks
    runner.py     `run_sweep`: skip what is done, run, summarise (the command is cli/sweep.py)
    adaptive.py   mode = "optuna": trials asked from an Optuna study in OUT/study.journal,
                  pruned from inside training, search.json and the page's search section
The summary (statistics, summary.csv, the table, summary.html) is in report/sweep.py and
report/sweep_page.py, which read what the sweep recorded and never train.

From Python: `run_sweep(read_sweep(path), out, workers=2, trial_fn=...)`; `trial_fn(config,
folder) -> metrics` must be importable by name (workers are spawned, not forked), and a script
that calls run_sweep needs `if __name__ == "__main__":`, since spawned workers import it. In
optuna mode the trial function is also given `callbacks=[...]` to pass on to training.
"""

from digitlab.lab.sweep.executors import default_workers, run_local, run_ray
from digitlab.lab.sweep.runner import TRIALS_DIR, SweepResult, run_sweep
from digitlab.lab.sweep.sweepfile import (
    SECTION_KEYS,
    SWEEP_KEYS,
    SweepSpec,
    Trial,
    parse_sweep,
    plan,
    read_sweep,
    trial_id,
    variants,
)
from digitlab.lab.sweep.trials import LOG_FILE, TrialLog, read_records
from digitlab.lab.sweep.worker import TrialFunction, attempt, key_metrics, run_trial

__all__ = [
    "LOG_FILE",
    "SECTION_KEYS",
    "SWEEP_KEYS",
    "TRIALS_DIR",
    "SweepResult",
    "SweepSpec",
    "Trial",
    "TrialFunction",
    "TrialLog",
    "attempt",
    "default_workers",
    "key_metrics",
    "parse_sweep",
    "plan",
    "read_records",
    "read_sweep",
    "run_local",
    "run_ray",
    "run_sweep",
    "run_trial",
    "trial_id",
    "variants",
]
