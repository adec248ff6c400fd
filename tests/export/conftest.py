"""A tiny finished run (8x8 digits, 2 epochs) and a tiny 2-trial sweep, made once per session."""

import os
from pathlib import Path

import pytest
from rich.console import Console

from digitlab.cli import main
from digitlab.lab.sweep import parse_sweep, run_sweep


@pytest.fixture
def needs():
    """needs(module): skip without the optional extra `track`; in CI (CI=true), which installs
    it, fail instead."""

    def check(module: str) -> None:
        try:
            __import__(module)
        except ImportError:
            message = f"{module} is not installed (pip install -e '.[track]')"
            if os.environ.get("CI", "").lower() == "true":
                pytest.fail(message)
            pytest.skip(message)

    return check


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """`digitlab train` on the 8x8 digits, 16 hidden units, 2 epochs: a folder with plots/."""
    folder = tmp_path_factory.mktemp("run") / "tiny-run"
    args = ["train", "--hidden-sizes", "16", "--epochs", "2", "--out", str(folder)]
    try:
        main(args)
    except SystemExit as done:
        assert done.code in (0, None)
    assert (folder / "plots" / "confusion.png").is_file()
    return folder


@pytest.fixture(scope="session")
def tiny_sweep(tmp_path_factory) -> Path:
    """Two trials (lr 0.1 and 0.5, seed 3) of 2 epochs on the digits; trials have no plots/."""
    out = tmp_path_factory.mktemp("sweep") / "out"
    spec = parse_sweep(
        {
            "name": "two",
            "seeds": [3],
            "base": {"data": "digits", "hidden_sizes": [8], "epochs": 2},
            "grid": {"learning_rate": [0.1, 0.5]},
        }
    )
    quiet = Console(file=open(os.devnull, "w"))  # noqa: SIM115 - lives as long as the tests
    result = run_sweep(spec, out, workers=1, console=quiet)
    assert result.ran == 2 and not result.failed
    return out
