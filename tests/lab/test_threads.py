"""`threads` limits BLAS while a run trains and evaluates; a busy machine gets a hint."""

from __future__ import annotations

import os

import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from digitlab.cli import train as train_cli
from digitlab.errors import ConfigError
from digitlab.lab import experiment
from digitlab.lab.config import make_config


def blas_threads() -> int:
    return max(p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas")


def test_training_and_evaluation_run_with_the_configured_blas_threads(tmp_path, monkeypatch):
    seen: list[int] = []
    evaluate = experiment.evaluate

    def watched_evaluate(*args, **kwargs):
        seen.append(blas_threads())
        return evaluate(*args, **kwargs)

    monkeypatch.setattr(experiment, "evaluate", watched_evaluate)
    config = make_config({"data": "digits", "hidden_sizes": [8], "epochs": 2, "threads": 1})
    with threadpool_limits(limits=2, user_api="blas"):  # two, whatever the environment says
        assert blas_threads() == 2
        experiment.run(
            config, tmp_path / "run", callbacks=[lambda r, m: seen.append(blas_threads())]
        )
        assert blas_threads() == 2  # put back afterwards
    assert seen == [1, 1, 1, 1, 1]  # two epochs, then train, validation and test evaluated


def test_threads_must_be_positive():
    with pytest.raises(ConfigError, match="threads: Input should be greater than or equal to 1"):
        make_config({"threads": 0})


@pytest.mark.skipif(not hasattr(os, "getloadavg"), reason="no load average here")
def test_a_busy_machine_gets_a_hint_unless_threads_are_set(monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    monkeypatch.setattr(
        "threadpoolctl.threadpool_info", lambda: [{"user_api": "blas", "num_threads": 2}]
    )
    monkeypatch.setattr(os, "getloadavg", lambda: (6.9, 5.0, 3.0))
    note = train_cli.busy_machine_note(None)
    assert note is not None and "load 6.9 on 2 cores" in note and "--threads 1" in note
    assert train_cli.busy_machine_note(1) is None  # the user chose
    monkeypatch.setattr(os, "getloadavg", lambda: (2.4, 2.0, 2.0))  # this run alone
    assert train_cli.busy_machine_note(None) is None
    monkeypatch.setattr(
        "threadpoolctl.threadpool_info", lambda: [{"user_api": "blas", "num_threads": 1}]
    )
    monkeypatch.setattr(os, "getloadavg", lambda: (6.9, 5.0, 3.0))
    assert train_cli.busy_machine_note(None) is None  # one thread waits for no other
