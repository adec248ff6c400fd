"""Models: any directed acyclic graph of layers; a plain stack is the graph that is a chain.

A model is described by a list of layer dicts (see core/layers.py). A dict may carry a `name`
and `inputs` (node names; "input" is the data): a node without `inputs` takes the previous
node's output, so a list without any names is an ordinary stack:

    [{"type": "dense", "units": 100}, {"type": "activation", "name": "relu"}, ...]

    [{"name": "h1", "type": "dense", "units": 64, "inputs": ["input"]},
     {"name": "a1", "type": "activation", "activation": "relu", "inputs": ["h1"]},
     {"name": "h2", "type": "dense", "units": 64, "inputs": ["a1"]},
     {"name": "skip", "type": "add", "inputs": ["h1", "h2"]}, ...]

(An activation node names its activation with `activation`, since `name` names the node.)
Forward runs the nodes in topological order; backward runs them in reverse and adds up the
gradients of an output that feeds several nodes. The output is the node named "output", else
the last one. Cycles, unknown inputs, unused nodes and shape mismatches are ConfigErrors at
build time that name the nodes.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from digitlab.core.graph import INPUT, named_nodes, node_label, topological_order
from digitlab.core.layers import LAYERS, Layer, Shape
from digitlab.errors import ConfigError


@dataclass
class Node:
    name: str
    layer: Layer
    inputs: list[str]
    spec: dict[str, Any] = field(default_factory=dict)  # the layer dict it was built from
    index: int = -1  # that dict's place in the model's spec list (-1: built by hand)


class Model:
    """Nodes in topological order, each a layer applied to the outputs of its inputs.

    The parameters are one flat vector `theta` and their gradients one flat vector `g`, of the
    model's dtype; every layer's params and grads entries are views into them. `layout` lists
    (qualified name, offset, shape) per parameter; `mask` is 1 on weight-matrix entries (names
    ending '.w') and 0 elsewhere. Optimizers see only (theta, g, mask).
    """

    def __init__(
        self,
        nodes: list[Node],
        input_size: int,
        spec: list[dict[str, Any]],
        dtype: Any,
        output_shape: Shape,
    ) -> None:
        self.nodes = nodes
        self.layers = [node.layer for node in nodes]
        self.input_size = input_size
        self.spec = spec
        self.dtype = np.dtype(dtype)
        self.output_shape = output_shape
        self.output = nodes[-1].name if nodes else INPUT
        # a layer needs the gradient of its input only if some parameter lies upstream:
        # nothing needs the gradient of the data itself, nor of a reshape of it
        trained: set[str] = set()
        for node in nodes:
            node.layer.needs_input_grad = any(name in trained for name in node.inputs)
            if node.layer.needs_input_grad or node.layer.params:
                trained.add(node.name)
        self._trained = trained
        self._flatten()
        self._uses = {node.name: 0 for node in nodes}
        for node in nodes:
            for name in node.inputs:
                if name != INPUT:
                    self._uses[name] += 1

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        output = x
        for _, value in self.walk(x, training):
            output = value
        return output  # the output node comes last

    def walk(self, x: np.ndarray, training: bool = False) -> Iterator[tuple[Node, np.ndarray]]:
        """Each node with its output on x, in topological order (the graph, not the list)."""
        values: dict[str, np.ndarray] = {INPUT: x}
        left = dict(self._uses)
        for node in self.nodes:
            inputs = [values[name] for name in node.inputs]
            values[node.name] = node.layer.forward(
                inputs if getattr(node.layer, "multi_input", False) else inputs[0], training
            )
            yield node, values[node.name]
            for name in node.inputs:  # drop outputs no later node needs
                if name != INPUT:
                    left[name] -= 1
                    if left[name] == 0 and name != self.output:
                        del values[name]

    def backward(self, dout: np.ndarray) -> None:
        grads: dict[str, np.ndarray] = {self.output: dout}
        for node in reversed(self.nodes):
            grad = grads.pop(node.name, None)
            if grad is None or node.name not in self._trained:
                continue
            din = node.layer.backward(grad)
            if din is None:
                continue
            dins = din if getattr(node.layer, "multi_input", False) else [din]
            for name, d in zip(node.inputs, dins, strict=True):
                if name == INPUT:
                    continue
                # an output read by several nodes gets the sum of their gradients
                grads[name] = grads[name] + d if name in grads else d

    def parameters(self) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
        """(qualified name, parameter, gradient) for every parameter array, e.g. 'dense1.w'."""
        for lay in self.layers:
            for key, value in lay.params.items():
                yield f"{lay.name}.{key}", value, lay.grads[key]

    def _flatten(self) -> None:
        """Move every parameter into theta and every gradient into g, leaving views behind."""
        pairs = [(lay, key) for lay in self.layers for key in lay.params]
        _check_owned([lay.params[key] for lay, key in pairs], self.layers)
        self.layout: list[tuple[str, int, Shape]] = []
        offset = 0
        for lay, key in pairs:
            self.layout.append((f"{lay.name}.{key}", offset, lay.params[key].shape))
            offset += lay.params[key].size
        self.theta, self.g, self.mask = (np.zeros(offset, self.dtype) for _ in range(3))
        thetas, gs = self.views(self.theta).values(), self.views(self.g).values()
        for (lay, key), theta, g in zip(pairs, thetas, gs, strict=True):
            theta[...], g[...] = lay.params[key], lay.grads[key]
            lay.params[key], lay.grads[key] = theta, g
        for name, entries in self.views(self.mask).items():
            entries[...] = name.endswith(".w")  # penalties and decay act on weights only

    def views(self, flat: np.ndarray) -> dict[str, np.ndarray]:
        """A flat vector laid out like theta (g, an optimizer's m) as arrays by parameter name."""
        return {
            name: flat[offset : offset + math.prod(shape)].reshape(shape)
            for name, offset, shape in self.layout
        }

    def buffers(self) -> Iterator[tuple[str, np.ndarray]]:
        """(qualified name, array) for every non-trained array a layer keeps in `buffers`
        (e.g. batch norm's running mean): saved with the model, never touched by optimizers."""
        for lay in self.layers:
            for key, value in getattr(lay, "buffers", {}).items():
                yield f"{lay.name}.{key}", value

    def describe(self) -> dict[str, Any]:
        """The JSON-ready description a saved model stores beside its arrays."""
        return {"input_size": self.input_size, "dtype": self.dtype.name, "layers": self.spec}


Sequential = Model  # a stack of layers is the chain-shaped graph: the same engine


def _check_owned(arrays: list[np.ndarray], layers: list[Any]) -> None:
    """A ConfigError if two layers share a parameter array or a layer keeps one outside
    `params`: each becomes a view of theta, which would untie or leave the others behind."""
    held = [value for lay in layers for value in getattr(lay, "__dict__", {}).values()]
    if len({id(array) for array in arrays}) < len(arrays) or any(
        value is array for value in held for array in arrays
    ):
        raise ConfigError(
            "a layer keeps a parameter outside its params dict, or shares one with another "
            "layer: parameters must live only in params (the model makes them views of theta)"
        )


def build_model(
    spec: list[dict[str, Any]],
    input_size: int,
    rng: np.random.Generator,
    dtype: Any = np.float32,
) -> Model:
    """Build a model from layer dicts (a stack, or a graph of named nodes); see the module doc."""
    if input_size <= 0:
        raise ConfigError(f"input size must be > 0, got {input_size}")
    if not spec:
        raise ConfigError("a model needs at least one layer")
    named = named_nodes(spec)
    output = next((n["name"] for n in named if n["name"] == "output"), named[-1]["name"])
    shapes: dict[str, Shape] = {INPUT: (input_size,)}
    nodes: list[Node] = []
    for i in topological_order(named):
        node = named[i]
        kind = node["type"]
        layer_spec = {k: v for k, v in node.items() if k not in ("name", "inputs")}
        if kind == "activation":
            layer_spec["name"] = layer_spec.pop("activation")
        in_shapes = [shapes[name] for name in node["inputs"]]
        factory = LAYERS[kind]
        multi = getattr(factory, "multi_input", False)
        if not multi and len(in_shapes) != 1:
            raise ConfigError(
                f"node {node['name']!r} ({kind}) takes one input, got {len(in_shapes)}"
            )
        given: Any = in_shapes if multi else in_shapes[0]  # merge layers take every shape
        try:
            lay, shape = factory(layer_spec, given, rng, np.dtype(dtype))
        except ConfigError as err:
            raise ConfigError(f"{node_label(node['name'])} ({kind}): {err}") from None
        except (KeyError, TypeError, ValueError) as err:
            raise ConfigError(f"{node_label(node['name'])} ({kind}): bad spec ({err})") from None
        shapes[node["name"]] = shape
        nodes.append(Node(node["name"], lay, node["inputs"], layer_spec, i))
    used = {name for node in named for name in node["inputs"]}
    unused = [node_label(n.name) for n in nodes if n.name not in used and n.name != output]
    if unused:
        raise ConfigError(f"{', '.join(unused)} do not lead to the output {node_label(output)}")
    nodes.sort(key=lambda n: n.name == output)  # the output last; topological order otherwise kept
    final = _final_names(nodes)
    for built in nodes:
        built.name = built.layer.name = final[built.name]
        built.inputs = [final.get(name, name) for name in built.inputs]
    return Model(nodes, input_size, [dict(s) for s in spec], dtype, shapes[output])


def _final_names(nodes: list[Node]) -> dict[str, str]:
    """Placeholder names (#3) become the layer's own name and a count, in spec order."""
    counts: dict[str, int] = {}
    final = {}
    for node in sorted(nodes, key=lambda n: int(n.name[1:]) if n.name.startswith("#") else 0):
        if node.name.startswith("#"):
            base = node.layer.name
            counts[base] = counts.get(base, 0) + 1
            final[node.name] = f"{base}{counts[base]}"
        else:
            final[node.name] = node.name
    return final
