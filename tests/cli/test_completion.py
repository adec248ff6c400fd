"""Shell completion through click's own mechanism: commands, options, registry names, runs."""

import os
import subprocess
import sys

import pytest
from click.shell_completion import BashComplete

from digitlab.cli import app


def complete(line: str) -> list[str]:
    """What `digitlab LINE<TAB>` offers (the last word is the one being completed)."""
    words = line.split(" ")
    shell = BashComplete(app, {}, "digitlab", "_DIGITLAB_COMPLETE")
    return [item.value for item in shell.get_completions(words[:-1], words[-1])]


@pytest.fixture
def run_tree(tmp_path, monkeypatch):
    """runs/ with two run folders, one empty folder and a loose file; cwd there."""
    for name in ("20261129-101500", "20261129-111500"):
        (tmp_path / "runs" / name).mkdir(parents=True)
        (tmp_path / "runs" / name / "config.json").write_text("{}")
    (tmp_path / "runs" / "empty").mkdir()
    (tmp_path / "notes").mkdir()
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "history.jsonl").write_text("")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_commands_and_options_complete():
    assert complete("tr") == ["train"]
    assert set(complete("")) >= {"train", "eval", "list", "sweep", "report", "tough", "diagnose"}
    assert "--learning-rate" in complete("train --learn")
    assert {"--lr", "--lr-schedule", "--lr-schedule-param"} <= set(complete("train --lr"))


def test_registry_names_complete_from_the_registries():
    assert complete("train --activation s") == ["shifted_relu", "sigmoid", "sin", "softplus"]
    assert complete("train --optimizer ad") == ["adam", "adamw"]
    assert "piecewise" in complete("gradcheck --lr-schedule p")


def test_a_plugin_on_the_line_adds_its_names(tmp_path):
    plugin = tmp_path / "cube.py"
    plugin.write_text(
        "from digitlab import activation\n"
        "@activation('cube_completion_test')\n"
        "def cube(z):\n    return z ** 3\n"
        "@cube.derivative\n"
        "def _(z):\n    return 3 * z ** 2\n"
    )
    try:
        assert complete(f"train --plugin {plugin} --activation cube") == ["cube_completion_test"]
    finally:
        from digitlab.core.activations import ACTIVATIONS

        ACTIVATIONS.pop("cube_completion_test", None)


def test_run_folders_complete_for_report_eval_diagnose_and_resume(run_tree):
    runs = ["mine", "runs/20261129-101500", "runs/20261129-111500"]
    assert complete("report ") == runs
    assert complete("eval ") == runs
    assert complete("diagnose runs/2026112") == runs[1:]
    assert complete("train --resume runs/20261129-11") == ["runs/20261129-111500"]
    assert complete("tough mi") == ["mine"]


def test_the_environment_variable_protocol_in_a_subprocess(run_tree):
    """What bash itself runs: `_DIGITLAB_COMPLETE=bash_complete` with COMP_WORDS/COMP_CWORD."""

    def offered(words: str, cword: int) -> list[str]:
        env = {**os.environ, "_DIGITLAB_COMPLETE": "bash_complete"}
        env.update(COMP_WORDS=words, COMP_CWORD=str(cword))
        code = "from digitlab.cli import main; main()"
        result = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        )
        return result.stdout.split()

    assert offered("digitlab train --activation s", 3) == [
        "plain,shifted_relu", "plain,sigmoid", "plain,sin", "plain,softplus"
    ]  # fmt: skip
    assert offered("digitlab report ", 2) == [
        "plain,mine", "plain,runs/20261129-101500", "plain,runs/20261129-111500"
    ]  # fmt: skip
    env = {**os.environ, "_DIGITLAB_COMPLETE": "bash_source"}
    script = subprocess.run(
        [sys.executable, "-m", "digitlab"], env=env, capture_output=True, text=True, check=True
    ).stdout
    assert "_DIGITLAB_COMPLETE=bash_complete" in script and "complete -o nosort" in script
