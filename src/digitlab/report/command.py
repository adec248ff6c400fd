"""`digitlab report RUN`: write RUN/report.html (and RUN/plots/*.png) and print its path.

Errors (a missing or corrupt file in the run folder) are DigitlabErrors, which the CLI's main
prints as one line.
"""

from __future__ import annotations

from pathlib import Path

import click


@click.command("report")
@click.argument("run", type=click.Path(path_type=Path))
def report_command(run: Path) -> None:
    """Write RUN/report.html, one self-contained page of a run's results, and RUN/plots/*.png."""
    from digitlab.report.html import build_report  # matplotlib loads only to draw

    click.echo(str(build_report(run)))
