"""Plugins: Python files and installed packages that register activations, layers, losses or
optimizers.

A config lists files (`plugins = ["my_activations.py"]`, paths relative to the config file or
the working directory) and the CLI takes `--plugin FILE`. An installed package registers through
the entry-point group `digitlab.plugins`: each entry point names a module (imported) or a
callable taking no arguments (called), which registers with the usual decorators. `load_plugins`
loads the installed ones once and then the files; it runs before a config is validated, a model
file is rebuilt or a registry is listed, so the names they register are valid everywhere.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import os
import sys
from collections.abc import Iterable
from pathlib import Path

from digitlab.errors import ConfigError

ENTRY_POINT_GROUP = "digitlab.plugins"
_loaded_entry_points: set[tuple[str, str]] = set()  # (distribution, entry point name) done
_installed = {"loaded": False}  # every entry point loaded: later calls need not scan sys.path


def load_plugins(paths: Iterable[str | os.PathLike[str]] = ()) -> None:
    """The installed packages' plugins (once per process), then each plugin file in `paths`."""
    load_installed_plugins()
    for path in paths:
        load_plugin(path)


def load_installed_plugins() -> None:
    """Load every entry point of the group `digitlab.plugins` not loaded yet.

    A plugin that fails to import or to register is a one-line ConfigError naming its
    distribution and entry point; it is tried again on the next call. Once all have loaded,
    later calls return at once (scanning the installed packages takes some 10 ms).
    """
    if _installed["loaded"]:
        return
    for entry in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = entry.dist.name if entry.dist is not None else "?"
        key = (dist, entry.name)
        if key in _loaded_entry_points:
            continue
        try:
            target = entry.load()
            if callable(target):
                target()
        except Exception as err:  # an installed package may fail in any way: one line
            version = f" {entry.dist.version}" if entry.dist is not None else ""
            raise ConfigError(
                f"plugin {entry.name} ({entry.value}) from the installed package {dist}{version}: "
                f"{type(err).__name__}: {_first_line(err)}"
            ) from None
        _loaded_entry_points.add(key)
    _installed["loaded"] = True


def _first_line(err: BaseException) -> str:
    return str(err).splitlines()[0] if str(err) else "(no message)"


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
