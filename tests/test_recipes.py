"""Every recipe in recipes/ runs: one short epoch each (the full runs are in the README)."""

from pathlib import Path

import pytest

from digitlab.lab.config import make_config, read_config_file
from digitlab.lab.experiment import run

ROOT = Path(__file__).resolve().parents[1]
RECIPES = sorted((ROOT / "recipes").glob("*.toml"))


def test_there_are_recipes():
    assert len(RECIPES) >= 10


@pytest.mark.parametrize("recipe", RECIPES, ids=[r.stem for r in RECIPES])
def test_recipe_runs_one_short_epoch(recipe, tmp_path, monkeypatch, mnist_dir):
    monkeypatch.chdir(ROOT)  # recipes name ../shared/data/mnist from the repository root
    values = read_config_file(recipe)
    assert "Run: digitlab train --config recipes/" in recipe.read_text()
    values["epochs"] = 1
    if values.get("data") == "mnist":  # a short epoch: the first 2,000 training images
        values["train_first"] = min(values.get("train_first") or 2000, 2000)
    result = run(make_config(values), tmp_path)
    assert result.history.epochs == 1
    assert 0 <= result.metrics["test_accuracy"] <= 1
