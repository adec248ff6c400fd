"""The MNIST tests skip on a developer's machine without the files, but fail in CI (CI=true)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MNIST_TEST = "tests/data/test_sources.py::test_real_mnist_folder"


def pytest_with(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k not in ("CI", "DIGITLAB_DATA_DIR")}
    environment.update(env, DIGITLAB_DATA_DIR=str(tmp_path / "no-mnist-here"))
    command = [sys.executable, "-m", "pytest", "-q", "-rsE", "-p", "no:cacheprovider", MNIST_TEST]
    return subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, text=True,
                          timeout=120, check=False)  # fmt: skip


@pytest.mark.parametrize("ci", ["true", None], ids=["ci", "developer"])
def test_missing_mnist_fails_in_ci_and_skips_elsewhere(tmp_path, ci):
    result = pytest_with(tmp_path, **({"CI": ci} if ci else {}))
    assert f"MNIST files not found in {tmp_path / 'no-mnist-here'}" in result.stdout
    if ci:
        assert result.returncode == 1, result.stdout
        assert f"ERROR {MNIST_TEST} - Failed: MNIST files not found" in result.stdout
    else:
        assert result.returncode == 0, result.stdout
        assert "SKIPPED [1] " in result.stdout
