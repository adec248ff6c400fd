"""Fixtures for the report tests: one real run folder (2 epochs on the 8x8 digits), trained once
per session, and a fresh copy of it for each test to change."""

import shutil
from pathlib import Path

import pytest

from digitlab.lab.config import make_config
from digitlab.lab.experiment import run


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("report") / "run"
    # every figure (the crop: the picture of the pixels kept; the best model: the loss change)
    config = {"epochs": 2, "crop": 1, "augment": {"shift": 1, "rotate": 5}, "save_best_model": True}
    run(make_config(config), folder)
    return folder


@pytest.fixture
def run_dir(trained_run: Path, tmp_path: Path) -> Path:
    """A copy of the trained run folder that the test may change."""
    return Path(shutil.copytree(trained_run, tmp_path / "run"))
