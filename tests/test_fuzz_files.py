"""A fixed-seed slice of scripts/fuzz_files.py: mutated model files, checkpoints and configs
load or raise digitlab's own one-line errors, in-process and through the CLI."""

import importlib.util
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "fuzz_files.py"
spec = importlib.util.spec_from_file_location("fuzz_files", SCRIPT)
assert spec is not None and spec.loader is not None
fuzz_files = importlib.util.module_from_spec(spec)
sys.modules["fuzz_files"] = fuzz_files
spec.loader.exec_module(fuzz_files)


def test_a_fixed_slice_raises_nothing_but_our_errors(tmp_path: Path) -> None:
    outcomes, crashes = fuzz_files.fuzz(100, 0, ["model", "checkpoint", "config"], tmp_path,
                                        stop_at_crash=False)  # fmt: skip
    assert crashes == []
    assert sum(outcomes.values()) == 300
    for kind in ("model", "checkpoint", "config"):  # the mutations both break and keep files
        assert outcomes[f"{kind} loaded"] > 0
        assert (
            sum(n for key, n in outcomes.items() if key.startswith(kind))
            > outcomes[f"{kind} loaded"]
        )


@pytest.fixture(scope="module")
def originals(tmp_path_factory) -> tuple[dict[str, list[bytes]], Path]:
    folder = tmp_path_factory.mktemp("fuzz-seeds")
    return fuzz_files.seed_files(folder), folder


@pytest.mark.parametrize("seed", range(4))
def test_cli_on_mutated_files(cli, tmp_path: Path, originals, seed: int) -> None:
    files, folder = originals
    rng = np.random.default_rng(seed)
    model = tmp_path / "model.npz"
    model.write_bytes(fuzz_files.mutate_npz(files["model"][seed % 3], "model.json", rng))
    run = tmp_path / "run"
    shutil.copytree(folder / "run", run)
    checkpoint = fuzz_files.mutate_npz(files["checkpoint"][0], "checkpoint.json", rng)
    (run / "checkpoint.npz").write_bytes(checkpoint)
    config = tmp_path / "run.toml"
    config.write_bytes(fuzz_files.mutate_toml(files["config"][seed], rng))
    out = str(tmp_path / "out")
    train = ["train", "--config", str(config), "--data", "digits", "--epochs", "1", "--out", out]
    for args in (["eval", str(model)], ["train", "--resume", str(run)], train):
        code, _, err = cli([*args, "--quiet"] if args[0] == "train" else args)
        lines = err.strip().splitlines()
        assert "Traceback" not in err
        assert code == 0 or (len(lines) == 1 and lines[0].startswith("digitlab: error:")), err
