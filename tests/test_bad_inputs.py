"""Every bad input in scripts/bad_inputs.py: one error line, non-zero exit, nothing left behind."""

import importlib.util
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "bad_inputs.py"
spec = importlib.util.spec_from_file_location("bad_inputs", SCRIPT)
assert spec is not None and spec.loader is not None
bad_inputs = importlib.util.module_from_spec(spec)
sys.modules["bad_inputs"] = bad_inputs  # dataclasses look their module up there
spec.loader.exec_module(bad_inputs)

CASES = bad_inputs.cases(bad_inputs.MNIST.resolve())


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_is_handled_cleanly(case, tmp_path, mnist_dir):
    ok, detail = bad_inputs.check(case, tmp_path)
    assert ok, detail
