"""The example notebooks run top to bottom in a Jupyter kernel of this interpreter (the venv's
python, so the checkout's digitlab), in a fresh folder, as a learner would run them; a cell
that raises fails the test. Also: the notebooks are kept without outputs, and LiveCurves in a
real kernel shows one figure that each epoch replaces."""

import json
import os
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
NOTEBOOKS = sorted(EXAMPLES.glob("*.ipynb"))
KERNEL = "digitlab-tests"


def _require(module: str):
    """The notebook extra is installed in CI (.ci/run); elsewhere its absence skips."""
    if os.environ.get("CI", "").lower() == "true":
        return __import__(module)
    return pytest.importorskip(module, reason="pip install -e '.[notebook]'")


@pytest.fixture(scope="module")
def kernels(tmp_path_factory) -> Path:
    """A kernel spec folder whose one kernel is this interpreter with ipykernel."""
    _require("ipykernel")
    root = tmp_path_factory.mktemp("kernels")
    (root / KERNEL).mkdir()
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "digitlab tests",
        "language": "python",
    }
    (root / KERNEL / "kernel.json").write_text(json.dumps(spec))
    return root


def execute(notebook, kernels: Path, workdir: Path):
    """Run every cell of `notebook` (a NotebookNode) in a new kernel, cwd `workdir`."""
    nbclient = _require("nbclient")
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager

    specs = KernelSpecManager(kernel_dirs=[str(kernels)])
    manager = KernelManager(kernel_name=KERNEL, kernel_spec_manager=specs)
    client = nbclient.NotebookClient(
        notebook, km=manager, timeout=600, resources={"metadata": {"path": str(workdir)}}
    )
    client.execute()
    return notebook


def outputs(notebook, kind: str) -> list[dict]:
    return [o for cell in notebook.cells for o in cell.get("outputs", []) if o.output_type == kind]


def html_outputs(notebook) -> str:
    return "".join(o.data.get("text/html", "") for o in outputs(notebook, "execute_result"))


def test_the_examples_are_there_and_kept_without_outputs():
    assert [path.name for path in NOTEBOOKS] == list(CHECKS)
    for path in NOTEBOOKS:
        notebook = json.loads(path.read_text())
        for cell in notebook["cells"]:
            if cell["cell_type"] == "code":
                assert cell["outputs"] == [] and cell["execution_count"] is None, path.name


def check_tour(notebook, workdir: Path) -> None:
    # LiveCurves: one figure, replaced each epoch, so the one output shows the last epoch
    (live,) = [o for o in outputs(notebook, "display_data") if "epoch" in o.data["text/plain"]]
    assert "image/png" in live.data
    assert live.data["text/plain"].startswith("epoch 15: train_loss ")
    html = html_outputs(notebook)
    assert "<b>History</b>: 15 epochs" in html
    assert "<b>Evaluation</b>: accuracy" in html
    assert "<b>Run</b> <code>runs/tour</code> (finished)" in html
    assert (workdir / "runs" / "tour" / "metrics.json").is_file()
    assert len(outputs(notebook, "display_data")) >= 3  # the matplotlib figures


def check_activation(notebook, workdir: Path) -> None:
    text = "".join(o.get("text", "") for o in outputs(notebook, "stream"))
    assert "beta 2.0: relative error" in text and "passed: False" in text
    assert "<b>Evaluation</b>: accuracy" in html_outputs(notebook)


def check_comparison(notebook, workdir: Path) -> None:
    text = "".join(o.get("text", "") for o in outputs(notebook, "stream"))
    assert "sigmoid " in text and "relu " in text and "95% interval" in text
    assert "exact McNemar p =" in text or "exactly the same digits" in text


CHECKS = {
    "01_tour.ipynb": check_tour,
    "02_own_activation.ipynb": check_activation,
    "03_compare_runs.ipynb": check_comparison,
}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[path.stem for path in NOTEBOOKS])
def test_every_example_runs_top_to_bottom(path, kernels, tmp_path):
    nbformat = _require("nbformat")
    notebook = execute(nbformat.read(path, as_version=4), kernels, tmp_path)
    assert all(cell.get("execution_count") for cell in notebook.cells if cell.cell_type == "code")
    CHECKS.get(path.name, lambda notebook, workdir: None)(notebook, tmp_path)


def test_a_failing_cell_fails_the_run(kernels, tmp_path):
    _require("nbformat")
    from nbformat.v4 import new_code_cell, new_notebook

    cells = ["x = 1", "raise ValueError('a planted failure')", "print('never reached')"]
    notebook = new_notebook(cells=[new_code_cell(source) for source in cells])
    nbclient = _require("nbclient")
    with pytest.raises(nbclient.exceptions.CellExecutionError, match="a planted failure"):
        execute(notebook, kernels, tmp_path)
    assert notebook.cells[2].get("outputs", []) == []  # execution stopped at the failure
