"""A small soak (scripts/soak.py): 8 trials under 3 random SIGKILLs of workers and of the sweep,
rerun until done: each trial done exactly once, no torn record, the summary bit-equal to an
undisturbed run's."""

import importlib.util
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "soak.py"
spec = importlib.util.spec_from_file_location("soak", SCRIPT)
assert spec is not None and spec.loader is not None
soak = importlib.util.module_from_spec(spec)
sys.modules["soak"] = soak
spec.loader.exec_module(soak)


def test_a_small_soak_ends_as_an_undisturbed_sweep(tmp_path: Path) -> None:
    file = soak.sweep_file(tmp_path, 8)
    reference = tmp_path / "reference"
    done = subprocess.run([sys.executable, "-m", "digitlab", "sweep", str(file), "--out",
                           str(reference), "--workers", "2"], capture_output=True, text=True,
                          timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = soak.soak(file, tmp_path / "soaked", kills=3, workers=2, seed=0, pause=(0.1, 1.0))
    assert sum(result["killed"].values()) == 3
    assert result["runs"] >= 1 + result["killed"]["sweep"]
    assert soak.check(tmp_path / "soaked", reference, 8, result["killed"]["worker"]) == []
