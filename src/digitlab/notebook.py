"""Live training curves for notebooks: an epoch callback that redraws one figure in place.

    history = dl.fit(..., hooks=dl.TrainHooks(callbacks=[dl.LiveCurves("curves.png")]))

After every epoch (never inside one, so the batches run as fast as without it) `LiveCurves`
draws loss and accuracy so far. In a Jupyter kernel it shows them in the running cell and
replaces that one output each epoch (IPython's display handle), so the saved notebook keeps the
last figure. Given a path, it also writes the figure there (atomically, PNG or SVG by the
suffix), for a notebook reopened later or another process to look at. Outside a notebook it
only writes that file, if any: it prints nothing and needs no IPython.
"""

from __future__ import annotations

import base64
import io
import os
from pathlib import Path
from typing import Any

from digitlab.errors import ConfigError

FORMATS = (".png", ".svg")
SHOWN_KEYS = ("train_loss", "val_loss", "train_accuracy", "val_accuracy")


def in_notebook() -> bool:
    """True inside a Jupyter kernel (IPython with a kernel attached), not in a terminal IPython."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


class LiveCurves:
    """Epoch callback (record, model) that redraws the loss and accuracy curves each epoch."""

    def __init__(self, path: str | os.PathLike[str] | None = None, width: float = 8.0) -> None:
        self.path = Path(path) if path is not None else None
        if self.path is not None and self.path.suffix.lower() not in FORMATS:
            raise ConfigError(f"LiveCurves {self.path}: the file must end in .png or .svg")
        self.width = width
        self.records: list[dict[str, Any]] = []
        self.notebook = in_notebook()
        self._handle: Any = None

    def __call__(self, record: dict[str, float], model: Any) -> None:
        self.records.append(dict(record))
        if not self.notebook and self.path is None:
            return
        from digitlab.report.reprs import curves_figure  # matplotlib only when drawing

        fig = curves_figure(self.records, self.width)
        if self.path is not None:
            self._write(fig)
        if self.notebook:
            self._show(fig)
        fig.clear()

    def caption(self) -> str:
        """One line on the latest epoch: 'epoch 3: train_loss 0.1234, val_accuracy 0.9650'."""
        last = self.records[-1]
        numbers = ", ".join(f"{key} {last[key]:.4f}" for key in SHOWN_KEYS if key in last)
        return f"epoch {last.get('epoch', len(self.records)):.0f}: {numbers}"

    def _write(self, fig: Any) -> None:
        from digitlab.lab.runs import atomic_write

        assert self.path is not None
        form = self.path.suffix.lower().lstrip(".")
        atomic_write(self.path, lambda handle: fig.savefig(handle, format=form))

    def _show(self, fig: Any) -> None:
        from IPython.display import display

        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
        bundle = {
            "image/png": base64.b64encode(buffer.getvalue()).decode("ascii"),
            "text/plain": self.caption(),
        }
        if self._handle is None:
            self._handle = display(bundle, raw=True, display_id=True)
        else:
            self._handle.update(bundle, raw=True)
