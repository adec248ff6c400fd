"""The command group imports a command's module only when that command is used."""

from __future__ import annotations

import subprocess
import sys

import click

from digitlab.cli import COMMANDS, app


def test_every_listed_command_resolves_to_its_click_command() -> None:
    ctx = click.Context(app)
    for name in COMMANDS:
        command = app.get_command(ctx, name)
        assert isinstance(command, click.Command)
        assert command.name == name
    assert set(app.list_commands(ctx)) >= set(COMMANDS)
    assert app.get_command(ctx, "no-such-command") is None


def test_importing_the_cli_loads_no_web_server_or_process_pool() -> None:
    code = (
        "import sys, digitlab.cli; "
        "print(sorted(m for m in ('starlette', 'multiprocessing', 'digitlab.lab.sweep', "
        "'digitlab.export', 'webbrowser') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
