"""Run recipes to the end and print the alarms each raises: a check that none cries wolf.

    .venv/bin/python scripts/recipe_alarms.py [RECIPE ...] [--epochs N] [--train-first N]
        [--data-dir DIR]

Without RECIPE, every recipes/*.toml (the MNIST ones take minutes to an hour each: name the
ones you want). Run from the repository root, as the recipes name their data folder relative
to it. --epochs and --train-first shorten a run (the alarms then speak of that shorter run);
--data-dir names the MNIST folder for the MNIST recipes.
Each recipe trains into a temporary folder; per recipe it prints the warnings (kind and
message) the run's whole history raises, the alarms withdrawn at the end, and the best epochs.
tests/test_recipe_alarms.py does the same for the 8x8 digits recipes, which are fast.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from digitlab.diagnostics.alarms import Finding, find
from digitlab.errors import DigitlabError
from digitlab.lab.config import make_config, read_config_file
from digitlab.lab.experiment import run

ROOT = Path(__file__).resolve().parents[1]


def recipe_findings(
    recipe: Path,
    epochs: int | None = None,
    train_first: int | None = None,
    data_dir: str | None = None,
) -> tuple[int, list[Finding]]:
    """Train one recipe (shortened if asked) and return its epochs and every finding."""
    values = read_config_file(recipe)
    if data_dir is not None and values.get("data") == "mnist":
        values["data_dir"] = data_dir
    if epochs is not None:
        values["epochs"] = epochs
    if train_first is not None:
        values["train_first"] = train_first
    with tempfile.TemporaryDirectory() as folder:
        result = run(make_config(values), Path(folder) / "run")
    return result.history.epochs, find(result.history.records())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipes", nargs="*", type=Path)
    parser.add_argument("--epochs", type=int, help="train this many epochs instead")
    parser.add_argument("--train-first", type=int, help="keep the first N training images")
    parser.add_argument("--data-dir", help="the folder of the MNIST files")
    args = parser.parse_args(argv)
    recipes = args.recipes or sorted((ROOT / "recipes").glob("*.toml"))
    failed = 0
    for recipe in recipes:
        started = time.perf_counter()
        try:
            epochs, findings = recipe_findings(recipe, args.epochs, args.train_first, args.data_dir)
        except DigitlabError as error:
            print(f"{recipe.name}: error: {error}")
            failed += 1
            continue
        warnings = [f for f in findings if f.severity == "warning"]
        minutes = (time.perf_counter() - started) / 60
        print(f"{recipe.name}: {epochs} epochs, {len(warnings)} alarm(s), {minutes:.1f} min")
        for finding in findings:
            label = finding.kind if finding.severity == "warning" else "info"
            print(f"  {label}: {finding.message}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
