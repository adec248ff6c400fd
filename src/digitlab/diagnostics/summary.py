"""A model's summary: every node with its type, inputs, output shape, parameter count,
activation and initialiser, the total, and the memory the model and one training batch need.

It catches structural slips that train silently (D6: one layer too many; a wrong width) and
answers N13 (784-100-10 has 784*100 + 100 + 100*10 + 10 = 79,510 parameters). The memory of
one batch is measured, not estimated: one training step's forward and backward on a batch of
zeros, with NumPy's allocations traced (tracemalloc), so a layer's caches and im2col buffers
count as they really are.
"""

from __future__ import annotations

import copy
import math
import tracemalloc
from dataclasses import asdict, dataclass, field
from html import escape
from typing import Any

import numpy as np

from digitlab.core.losses import get_loss
from digitlab.core.model import Model
from digitlab.core.optim import Optimizer


@dataclass
class Row:
    """One node of the model."""

    name: str
    kind: str  # the layer type, e.g. 'dense'
    inputs: list[str]
    output_shape: tuple[int, ...]  # per example
    parameters: int
    activation: str = ""  # what an activation (or mixed) node applies
    init: str = ""  # the initialiser that drew a layer's weights


@dataclass
class Memory:
    """Bytes the model keeps and one training step needs."""

    parameters: int  # theta
    gradients: int  # g
    optimizer: int  # the optimizer's state (velocity, moments), measured after one step
    buffers: int  # non-trained arrays, e.g. batch norm's running statistics
    batch_size: int
    batch: int  # the input batch plus the peak of one forward and backward, measured

    @property
    def model(self) -> int:
        return self.parameters + self.gradients + self.optimizer + self.buffers

    @property
    def total(self) -> int:
        return self.model + self.batch


@dataclass
class Summary:
    """The table of a model's nodes, its totals and its memory."""

    input_size: int
    dtype: str
    rows: list[Row]
    memory: Memory
    graph: bool = field(default=False)  # some node takes another input than the previous one

    @property
    def parameters(self) -> int:
        return sum(row.parameters for row in self.rows)

    def header(self) -> list[str]:
        columns = ["node", "type", "output shape", "parameters", "activation", "initialiser"]
        return columns[:2] + ["inputs"] + columns[2:] if self.graph else columns

    def table(self) -> list[list[str]]:
        """The rows as text, in the order of header()."""
        lines = []
        for row in self.rows:
            cells = [row.name, row.kind, shape_text(row.output_shape), f"{row.parameters:,}"]
            cells += [row.activation, row.init]
            if self.graph:
                cells.insert(2, ", ".join(row.inputs))
            lines.append(cells)
        return lines

    def totals(self) -> list[str]:
        """The lines under the table: parameter total and memory."""
        m = self.memory
        return [
            f"input {self.input_size}, {self.parameters:,} parameters ({self.dtype})",
            f"model: {size_text(m.model)} (parameters {size_text(m.parameters)}, gradients "
            f"{size_text(m.gradients)}, optimizer state {size_text(m.optimizer)}, buffers "
            f"{size_text(m.buffers)})",
            f"one training batch of {m.batch_size}: {size_text(m.batch)} (input, outputs kept "
            f"for backward, gradients; measured)",
        ]

    def text(self) -> str:
        """A plain-text table with the totals below."""
        grid = [self.header(), *self.table()]
        widths = [max(len(line[i]) for line in grid) for i in range(len(grid[0]))]
        lines = [
            "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True))
            for line in grid
        ]
        lines.insert(1, "  ".join("-" * width for width in widths))
        return "\n".join([*(line.rstrip() for line in lines), *self.totals()])

    def html(self) -> str:
        """The same table as an HTML fragment (the report and notebooks show it)."""
        head = "".join(f"<th>{escape(c)}</th>" for c in self.header())
        body = "".join(
            "<tr>" + "".join(f"<td>{escape(c)}</td>" for c in line) + "</tr>"
            for line in self.table()
        )
        notes = "".join(f"<p>{escape(line)}</p>" for line in self.totals())
        return f'<table class="summary"><tr>{head}</tr>{body}</table>{notes}'

    def _repr_html_(self) -> str:
        return self.html()

    def __str__(self) -> str:
        return self.text()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the rows, the totals and every memory figure in bytes."""
        memory = {**asdict(self.memory), "model": self.memory.model, "total": self.memory.total}
        return {
            "input_size": self.input_size,
            "dtype": self.dtype,
            "parameters": self.parameters,
            "layers": [asdict(row) for row in self.rows],
            "memory_bytes": memory,
        }


def summarize(
    model: Model,
    batch_size: int = 128,
    optimizer: Optimizer | None = None,
    loss: str = "softmax_cross_entropy",
) -> Summary:
    """The summary of `model`: its nodes, and memory for `optimizer`'s state and one batch.

    The batch is measured by one training step on zeros; the model is left as it was (its
    gradients, buffers and dropout generators are put back).
    """
    shapes = {node.name: out.shape[1:] for node, out in model.walk(_zeros(model, 1))}
    rows = []
    for node in model.nodes:
        count = sum(int(value.size) for value in node.layer.params.values())
        rows.append(
            Row(
                name=node.name,
                kind=str(node.spec.get("type", type(node.layer).__name__.lower())),
                inputs=list(node.inputs),
                output_shape=tuple(int(s) for s in shapes[node.name]),
                parameters=count,
                activation=_activation_text(node.spec),
                init=str(getattr(node.layer, "init", "")) if count else "",
            )
        )
    previous = ["input", *(node.name for node in model.nodes)]
    graph = any(node.inputs != [previous[i]] for i, node in enumerate(model.nodes))
    memory = Memory(
        parameters=model.theta.nbytes,
        gradients=model.g.nbytes,
        optimizer=_optimizer_bytes(model, optimizer),
        buffers=sum(value.nbytes for _, value in model.buffers()),
        batch_size=batch_size,
        batch=_batch_bytes(model, batch_size, loss),
    )
    return Summary(model.input_size, model.dtype.name, rows, memory, graph)


def shape_text(shape: tuple[int, ...]) -> str:
    return "x".join(str(s) for s in shape) or "scalar"


def size_text(n_bytes: int) -> str:
    """1,536 -> '1.5 KiB'."""
    if n_bytes < 1024:
        return f"{n_bytes} B"
    exponent = min(int(math.log(n_bytes, 1024)), 4)
    return f"{n_bytes / 1024**exponent:.1f} {['B', 'KiB', 'MiB', 'GiB', 'TiB'][exponent]}"


def _activation_text(spec: dict[str, Any]) -> str:
    kind = spec.get("type")
    if kind == "activation":
        params = {k: v for k, v in spec.items() if k not in ("type", "name", "activation")}
        extra = ", ".join(f"{k}={v}" for k, v in params.items())
        return str(spec.get("name", spec.get("activation", ""))) + (f"({extra})" if extra else "")
    if kind == "mixed":
        shares = spec.get("activations") or {}
        if shares:
            return ", ".join(f"{name} {share:.0%}" for name, share in shares.items())
        return "pattern " + ", ".join(map(str, spec.get("pattern", [])))
    return ""


def _zeros(model: Model, n: int) -> np.ndarray:
    return np.zeros((n, model.input_size), model.dtype)


def _optimizer_bytes(model: Model, optimizer: Optimizer | None) -> int:
    """The state `optimizer` keeps, from one step of a copy of it on copies of theta and g."""
    if optimizer is None:
        return 0
    probe = copy.copy(optimizer)
    probe.state, probe.steps = {}, 0
    probe.step(model.theta.copy(), np.zeros_like(model.g), model.mask)
    return sum(int(value.nbytes) for value in probe.state.values())


def _batch_bytes(model: Model, batch_size: int, loss: str) -> int:
    """The input batch plus the traced peak of one forward and backward on it."""
    x = _zeros(model, batch_size)
    y = np.zeros(batch_size, np.int64)
    saved_g = model.g.copy()
    saved_buffers = {name: value.copy() for name, value in model.buffers()}
    dropouts: list[Any] = [lay for lay in model.layers if hasattr(lay, "rng")]
    generators = [lay.rng for lay in dropouts]
    for lay in dropouts:  # draw dropout masks from a throwaway generator
        lay.rng = np.random.default_rng(0)
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        logits = model.forward(x, training=True)
        _, dlogits = get_loss(loss)(logits, y)
        model.backward(dlogits)
        peak = tracemalloc.get_traced_memory()[1] - before
        del logits, dlogits
    finally:
        if started:
            tracemalloc.stop()
        model.g[...] = saved_g
        for name, value in model.buffers():
            value[...] = saved_buffers[name]
        for lay, rng in zip(dropouts, generators, strict=True):
            lay.rng = rng
    return int(x.nbytes + peak)
