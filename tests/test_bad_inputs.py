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

NAMES = [case.name for case in bad_inputs.cases(Path("MNIST"))]  # the cases' names only


@pytest.mark.parametrize("name", NAMES)
def test_bad_input_is_handled_cleanly(name, tmp_path, mnist_dir):
    case = {c.name: c for c in bad_inputs.cases(mnist_dir)}[name]  # on the tests' MNIST folder
    ok, detail = bad_inputs.check(case, tmp_path)
    assert ok, detail
