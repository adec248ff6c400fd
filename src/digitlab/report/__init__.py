"""Reports drawn from run and sweep folders: figures (plots.py), the run page (html.py) and the
sweep summary (sweep.py, sweep_page.py), both pages on one shell (page.py).

Nothing here trains or evaluates; everything is read from the files a run or sweep left behind.
`build_report` is imported on first use, so that matplotlib (about 30 MB and 0.15 s) loads
only when a report is drawn, not with the CLI.
"""

from typing import Any

__all__ = ["build_report"]


def __getattr__(name: str) -> Any:
    if name == "build_report":
        from digitlab.report.html import build_report

        return build_report
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
