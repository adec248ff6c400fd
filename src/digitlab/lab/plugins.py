"""User plugin files: Python files that register activations, layers, losses or optimizers.

A config lists them (`plugins = ["my_activations.py"]`, paths relative to the config file or
the working directory) and the CLI takes `--plugin FILE`; they are imported before the config
is validated, so the names they register are valid everywhere.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
from pathlib import Path

from digitlab.errors import ConfigError


def load_plugin(path: str | os.PathLike[str]) -> None:
    """Import the Python file at `path` once (a second call with the same file does nothing)."""
    file = Path(path).resolve()
    if not file.is_file():
        raise ConfigError(f"plugin {path}: no such file")
    name = "digitlab_plugin_" + hashlib.sha1(str(file).encode()).hexdigest()[:12]
    if name in sys.modules:
        return
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:
        raise ConfigError(f"plugin {path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as err:  # a user's file may fail in any way: report it in one line
        del sys.modules[name]
        raise ConfigError(f"plugin {path}: {type(err).__name__}: {err}") from None
