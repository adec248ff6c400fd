"""The README's code blocks run: its Python examples, its TOML (configs and sweep files parse and
validate), and every `digitlab` command that works on the bundled digits (RUN stands for a run
folder trained here; train commands get --epochs 2 to stay short)."""

import re
import shlex
import tomllib
from pathlib import Path

import pytest

from digitlab.cli import main
from digitlab.lab.config import make_config
from digitlab.lab.plugins import ENTRY_POINT_GROUP
from digitlab.lab.sweep import parse_sweep

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = [
    (m.group(1), README.read_text()[: m.start()].count("\n") + 1, m.group(2))
    for m in re.finditer(r"```(\w+)\n(.*?)```", README.read_text(), re.S)
]
# commands that need what a test has not got: MNIST through the network or a folder of the
# user's, a plugin file of theirs, a server, a cluster, a long sweep, or a shell around them
NEEDS_MORE = ("mnist", "recipes/", "mine.py", "DIR", "studio", "sweep", "--ray", "_COMPLETE")


def blocks(lang):
    return [pytest.param(body, id=f"line{line}") for kind, line, body in BLOCKS if kind == lang]


def digits_commands():
    commands = []
    for kind, line, body in BLOCKS:
        if kind != "bash":
            continue
        for text in body.replace("\\\n", " ").splitlines():
            text = text.split("#")[0].split("&&")[-1].strip()
            if text.startswith(".venv/bin/digitlab") and not any(n in text for n in NEEDS_MORE):
                commands.append(pytest.param(text, id=f"line{line}:{text.split()[1]}"))
    return commands


@pytest.mark.parametrize("body", blocks("python"))
def test_python_blocks_run(body, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    exec(compile(body, str(README), "exec"), {})


@pytest.mark.parametrize("body", blocks("toml"))
def test_toml_blocks_are_valid(body):
    table = tomllib.loads(body)
    if "project" in table:  # a package's pyproject.toml registering plugins
        assert set(table["project"]["entry-points"]) == {ENTRY_POINT_GROUP}
    elif "base" in table or "variants" in table or "grid" in table:
        parse_sweep(table)
    elif set(table) != {"layers"}:  # a [[layers]] fragment names nodes defined around it
        make_config(table)


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("readme") / "run"
    main(["train", "--epochs", "2", "--out", str(folder), "--quiet"])  # returns on success
    return folder


def test_the_readme_has_digits_commands_to_run():
    names = {p.values[0].split()[1] for p in digits_commands()}
    assert {"train", "report", "diagnose", "eval", "tough", "gradcheck", "list"} <= names


@pytest.mark.parametrize("command", digits_commands())
def test_digits_commands_run(command, run_folder, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    args = shlex.split(command)[1:]
    args = [str(run_folder) if re.fullmatch(r"RUN\d?", a) else a for a in args if a != "..."]
    if args[0] == "train":
        args += ["--epochs", "2", "--quiet", "--out", str(tmp_path / "run")]
    try:
        main(args)
        code = 0
    except SystemExit as done:
        code = done.code or 0
    out = capsys.readouterr()
    assert code == 0, out.out + out.err
