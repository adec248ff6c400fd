"""Training's numeric guards: is a batch's loss usable, and if not, where did it go wrong.

A loss is unusable when it is NaN or inf, or over `divergence` times the reference
max(first batch's loss, 1) (a trained model's first loss can be near 0, and an ordinary batch
10,000 times it). The problem is described in words that name where it arose: the first
non-finite input, parameter, gradient or node output, walking the model's graph in topological
order; or, for a divergence, the weights that grew fastest since the last good ones.

`spec_size` sizes a model spec before it is built (and its weights allocated), so that a model
too big for the machine is refused with what it would need.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from digitlab.core.graph import INPUT, named_nodes, topological_order
from digitlab.core.layers import LAYERS
from digitlab.errors import DigitlabError


def loss_problem(
    value: float,
    where: str,
    reference: float,
    divergence: float | None,
    model: Any,
    x: np.ndarray,
    last_good: list[np.ndarray],
) -> str | None:
    """None for a usable loss; else what is wrong with it, `where` (say "at epoch 2, batch 7")
    and where in the model it arose (the model run on batch x)."""
    if not np.isfinite(value):
        return (
            f"non-finite loss {where}: first non-finite value in the {locate_non_finite(model, x)}"
        )
    if divergence and value > divergence * reference:
        return (
            f"loss {value:.3g} {where} is over {divergence:g} x {reference:.3g} (the first "
            f"batch's loss, at least 1): training diverged; {fastest_growing(model, last_good)}"
        )
    return None


def locate_non_finite(model: Any, x: np.ndarray) -> str:
    """The first input, parameter, gradient or node output (on batch x) holding a NaN or inf."""
    if not np.isfinite(x).all():
        return "input batch itself (the data hold NaN or inf)"
    for name, param, grad in model.parameters():
        if not np.isfinite(param).all():
            return f"parameter {name}"
        if not np.isfinite(grad).all():
            return f"gradient of {name}"
    with np.errstate(all="ignore"):  # we are looking for the overflow, so it may happen here
        for node, output in model.walk(x, training=False):
            if not np.isfinite(output).all():
                return f"output of layer {node.name}"
    return "loss"


def fastest_growing(model: Any, before: list[np.ndarray]) -> str:
    """Which weight matrix grew most (by norm) since `before`: where a divergence shows."""
    growth = [
        (float(np.linalg.norm(param)) / max(float(np.linalg.norm(old)), 1e-12), name)
        for (name, param, _), old in zip(model.parameters(), before, strict=True)
        if name.endswith(".w")  # biases start at zero: any change would look infinite
    ]
    factor, name = max(growth)
    return f"the fastest-growing weights are {name} (x{factor:.3g} since the last good ones)"


def spec_size(spec: list[dict[str, Any]], input_size: int) -> tuple[int, int] | None:
    """(parameters, numbers in all node outputs per example) of a model spec, from the shapes
    alone: dense and conv2d layers by formula, the others (without weights of any size) by
    building them. None when the spec is invalid: building it then says what is wrong."""
    try:
        named = named_nodes(spec)
        shapes: dict[str, tuple[int, ...]] = {INPUT: (int(input_size),)}
        parameters = width = 0
        for i in topological_order(named):
            node = dict(named[i])
            kind, inputs = node.pop("type"), [shapes[name] for name in node.pop("inputs")]
            name = node.pop("name")
            if kind == "activation":
                node["name"] = node.pop("activation")
            if kind == "dense" and len(inputs[0]) == 1:
                units = int(node["units"])
                if units <= 0:
                    return None
                parameters += (inputs[0][0] + 1) * units
                shape: tuple[int, ...] = (units,)
            else:
                factory = LAYERS[kind]
                filters = int(node["filters"]) if kind == "conv2d" else 1
                if kind == "conv2d":  # built with one filter: its weights are 1/filters of them
                    node["filters"] = 1
                given: Any = inputs if getattr(factory, "multi_input", False) else inputs[0]
                built, shape = factory(node, given, np.random.default_rng(0), np.dtype("float32"))
                size = sum(p.size for p in getattr(built, "params", {}).values())
                parameters += size * filters
                shape = (filters, *shape[1:]) if kind == "conv2d" else tuple(shape)
            shapes[name] = shape
            width += math.prod(shape)
    except (DigitlabError, KeyError, TypeError, ValueError, AttributeError, IndexError):
        return None
    return parameters, width
