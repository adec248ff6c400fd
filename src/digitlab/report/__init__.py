"""Reports drawn from run and sweep folders: figures (plots.py), the run page (html.py), the
sweep summary (sweep.py, sweep_page.py) and runs compared (compare.py), every page on one shell
(page.py).

Nothing here trains; everything is read from the files a run or sweep left behind (compare.py
evaluates a model again only for a run saved without predictions.npz).
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
