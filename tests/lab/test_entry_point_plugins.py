"""Plugins from installed packages: an entry point of the group `digitlab.plugins` registers an
activation that `digitlab list`, the train flag's choices, gradcheck, training and model files
then know. A package is installed here the way pip leaves one: a module and a `*.dist-info`
folder with an entry_points.txt on sys.path, which importlib.metadata reads."""

import sys
from pathlib import Path

import pytest

from digitlab.core.activations import ACTIVATIONS
from digitlab.lab import plugins
from digitlab.lab.modelfile import load_model

MODULE = '''
import numpy as np
from digitlab import activation

@activation("{name}", init="xavier")
def cube(z):
    """z^3 / 3 + z, from an installed package."""
    return z**3 / 3 + z

@cube.derivative
def _(z):
    return z**2 + 1
'''


def install(root: Path, dist: str, entry_points: str, modules: dict[str, str]) -> None:
    """Put a package `dist` on sys.path as pip installs one: its modules and its dist-info."""
    info = root / f"{dist}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[digitlab.plugins]\n{entry_points}\n")
    for name, text in modules.items():
        (root / f"{name}.py").write_text(text)


@pytest.fixture
def site(tmp_path, monkeypatch):
    """A fresh site-packages folder on sys.path, nothing loaded from it yet."""
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.setattr(plugins, "_loaded_entry_points", set())
    monkeypatch.setattr(plugins, "_installed", {"loaded": False})
    before = set(sys.modules)
    yield root
    for name in set(sys.modules) - before:
        if name.startswith("dl_ep_"):
            del sys.modules[name]


def test_an_installed_activation_is_listed_offered_checked_and_trained(site, cli, tmp_path):
    module = MODULE.format(name="ep_cube")
    install(site, "digitlab-cube", "cube = dl_ep_cube", {"dl_ep_cube": module})
    code, out, err = cli(["list"])
    assert code == 0, err
    assert "ep_cube" in out and "from an installed package" in out
    code, out, err = cli(["train", "--help"])
    assert code == 0 and "ep_cube" in out  # the --activation flag's choices
    code, out, err = cli(["gradcheck", "--hidden-sizes", "8", "--activation", "ep_cube"])
    assert code == 0, err
    assert "ep_cube" in out
    run = tmp_path / "run"
    args = ["train", "--activation", "ep_cube", "--hidden-sizes", "16", "--epochs", "2"]
    code, out, err = cli([*args, "--out", str(run), "--quiet"])
    assert code == 0, err
    # as in a new process, nothing loaded: loading the model loads the package
    plugins._loaded_entry_points.clear()
    plugins._installed["loaded"] = False
    del sys.modules["dl_ep_cube"], ACTIVATIONS["ep_cube"]
    model, extra = load_model(run)
    assert extra["config"]["activation"]["name"] == "ep_cube"
    assert "ep_cube" in ACTIVATIONS


def test_a_callable_entry_point_is_called_once(site, cli):
    module = MODULE.format(name="ep_called")
    text = "CALLS = []\n\ndef register():\n    CALLS.append(1)\n" + "\n".join(
        "    " + line for line in module.splitlines()
    )
    install(site, "digitlab-called", "reg = dl_ep_called:register", {"dl_ep_called": text})
    for _ in range(2):
        code, out, err = cli(["list"])
        assert code == 0, err
        assert "ep_called" in out
    assert sys.modules["dl_ep_called"].CALLS == [1]


def test_a_broken_installed_plugin_is_one_line_naming_its_package(site, cli):
    module = "import no_such_module_x\n"
    install(site, "digitlab-broken", "broken = dl_ep_broken", {"dl_ep_broken": module})
    code, out, err = cli(["list"])
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "digitlab-broken 0.1" in lines[0] and "dl_ep_broken" in lines[0]
    assert "ModuleNotFoundError" in lines[0] and "Traceback" not in err
