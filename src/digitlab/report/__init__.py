"""Reports drawn from run folders: figures (plots.py) and one self-contained HTML page (html.py).

Nothing here trains or evaluates; everything is read from the files a run left behind.
"""

from digitlab.report.html import build_report

__all__ = ["build_report"]
