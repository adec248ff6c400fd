"""The README's recipes table: every experiment ID of the catalogue, each with a command that
exists (a recipe or sweep file, a test, a script, or a digitlab command).

The ID list is copied from the catalogue (EXPERIMENTS.md, kept outside this repository).
"""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
IDS = (
    [f"M{i}" for i in range(1, 17)]
    + [f"N{i}" for i in range(1, 14)]
    + [f"D{i}" for i in range(1, 8)]
    + [f"S{i}" for i in range(1, 8)]
    + [f"Q{i}" for i in range(1, 14)]
    + ["B1"]
)


def recipe_rows() -> dict[str, list[str]]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Recipes: the classic experiments", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, list[str]] = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("| ") and re.fullmatch(r"[MNDSQB]\d+", cells[0]):
            assert cells[0] not in rows, f"{cells[0]} has two rows"
            rows[cells[0]] = cells
    return rows


def commands(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


def command_exists(command: str) -> bool:
    """A command names something real: each recipes/... or scripts/... file in it exists, a
    pytest node's test function exists, a digitlab subcommand is registered."""
    import click

    from digitlab.cli import app

    words = command.split()
    found = False
    for word in words:
        if re.match(r"(recipes|scripts)/\S+\.(toml|py)$", word):
            if not (ROOT / word).exists():
                return False
            found = True
        if re.match(r"tests/\S+\.py::\w+$", word):
            path, name = word.split("::")
            if f"def {name}(" not in (ROOT / path).read_text():
                return False
            found = True
    if words[0] == "digitlab":
        if app.get_command(click.Context(app), words[1]) is None:
            return False
        found = True
    return found


def test_every_experiment_id_has_a_row():
    rows = recipe_rows()
    missing = [i for i in IDS if i not in rows]
    assert not missing, f"no README row for {missing}"
    assert set(rows) == set(IDS), f"rows for unknown IDs {sorted(set(rows) - set(IDS))}"


@pytest.mark.parametrize("experiment", IDS)
def test_each_row_has_a_command_that_exists(experiment):
    cells = recipe_rows()[experiment]
    assert len(cells) == 5, f"{experiment}: expected 5 cells, got {len(cells)}"
    real = [c for c in commands(cells[1]) if command_exists(c)]
    assert real, f"{experiment}: no existing command among {commands(cells[1])}"
    assert cells[3] and cells[4], f"{experiment}: figure or finding missing"
    assert "«" not in "".join(cells), f"{experiment}: a placeholder is left"


def test_recipe_paths_in_the_table_exist():
    section = (ROOT / "README.md").read_text().split("## Recipes: the classic experiments")[1]
    rows = [line for line in section.split("\n## ")[0].splitlines() if line.startswith("|")]
    for path in re.findall(r"recipes/[\w/]+\.toml", "\n".join(rows)):
        assert (ROOT / path).exists(), path
