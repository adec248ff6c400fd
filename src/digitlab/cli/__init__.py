"""The command line: flags and TOML -> Config -> library calls -> printed results.

One click group, `app`, holds every command: train, gradcheck and diagnose (train.py), summary
(summary.py), eval (evaluate.py), predict (predict.py), list (registries.py), sweep (sweep.py),
report and tough (report.py), compare (compare.py), export (export.py: TensorBoard and MLflow), and
studio (studio/command.py, beside the web app it serves). Config flags are generated from the Config
model (options.py); shell completion is click's own (complete.py). Errors we raise on purpose
(DigitlabError) and bad flags are printed as one line on stderr with a non-zero exit code (1 for a
run that failed, 2 for a usage error), never as a traceback.
"""

from __future__ import annotations

import importlib
import signal
import sys
import threading

import click
from rich.console import Console

from digitlab.errors import DigitlabError
from digitlab.lab.plugins import load_installed_plugins

# Each command, as "module:attribute", imported only when it runs (or when help lists it), so
# that `digitlab train` does not load the studio's web server, the sweep's process pools or the
# exporters: less start-up time, and less memory held beside the data (benchmarks/PERFORMANCE.md).
COMMANDS = {
    "train": "digitlab.cli.train:train",
    "gradcheck": "digitlab.cli.train:gradcheck",
    "diagnose": "digitlab.cli.train:diagnose",
    "summary": "digitlab.cli.summary:summary_command",
    "eval": "digitlab.cli.evaluate:eval_command",
    "predict": "digitlab.cli.predict:predict",
    "list": "digitlab.cli.registries:list_command",
    "sweep": "digitlab.cli.sweep:sweep",
    "report": "digitlab.cli.report:report",
    "tough": "digitlab.cli.report:tough",
    "compare": "digitlab.cli.compare:compare",
    "studio": "digitlab.studio.command:studio_command",
    "export": "digitlab.cli.export:export",
}


class LazyGroup(click.Group):
    """A click group whose commands (COMMANDS) are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            module, attribute = COMMANDS[cmd_name].split(":")
            self.add_command(getattr(importlib.import_module(module), attribute), cmd_name)
        return self.commands.get(cmd_name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="digitlab")
def app() -> None:
    """digitlab: a from-scratch NumPy neural-network workbench for handwritten digits."""
    load_installed_plugins()  # before any command, so help lists what installed packages register


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the click app, turning our errors into one line and an exit code."""
    err = Console(stderr=True, highlight=False)
    if hasattr(signal, "SIGXFSZ") and threading.current_thread() is threading.main_thread():
        # over a file-size limit (ulimit -f), a write then fails with one line instead of the
        # signal ending the process with a core dump
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    try:
        app.main(args=argv, prog_name="digitlab", standalone_mode=False)
    except click.exceptions.Exit as done:
        sys.exit(done.exit_code)
    except click.ClickException as bad:
        err.print(f"digitlab: error: {bad.format_message()}", markup=False, soft_wrap=True)
        sys.exit(bad.exit_code)
    except click.Abort:
        err.print("digitlab: aborted", markup=False)
        sys.exit(130)
    except DigitlabError as failure:
        err.print(f"digitlab: error: {failure}", markup=False, soft_wrap=True)
        sys.exit(1)
    except MemoryError as full:  # what no size check foresaw: still one line, not a traceback
        reason = str(full).splitlines()[0] if str(full) else "no detail"
        err.print(f"digitlab: error: out of memory ({reason})", markup=False, soft_wrap=True)
        sys.exit(1)
    except KeyboardInterrupt:
        err.print("digitlab: interrupted", markup=False)
        sys.exit(130)


__all__ = ["app", "main"]
