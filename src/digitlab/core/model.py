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

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from digitlab.core.layers import LAYERS, Layer, Shape
from digitlab.errors import ConfigError

INPUT = "input"


@dataclass
class Node:
    name: str
    layer: Layer
    inputs: list[str]


class Model:
    """Nodes in topological order, each a layer applied to the outputs of its inputs."""

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
        # every parameter and every gradient becomes a view into one flat array (see _pack)
        self.flat_params, self.flat_grads = _pack(self.layers)
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


def _pack(layers: list[Any]) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Move all parameters into one flat array and all gradients into another, in the order of
    `parameters()`, leaving each layer's `params` and `grads` entries as views of them.

    Layers update their arrays in place (`out=`, `-=`), so nothing else changes; what it buys is
    that an elementwise optimizer updates the whole model with one NumPy call per operation
    instead of one per array (Optimizer.step): for a four-layer MLP with Adam, 12 calls a step
    instead of 96, about 4% of an MNIST epoch. Nothing is packed (None, None) if the arrays'
    dtypes differ, two of them share memory (tied weights would come apart), or a layer also
    keeps a parameter in an attribute of its own, which a view would leave behind; the
    optimizers then update array by array, as before.
    """
    arrays = [(lay, key) for lay in layers for key in lay.params]
    if not arrays or any(
        key not in lay.grads or lay.grads[key].shape != lay.params[key].shape for lay, key in arrays
    ):
        return None, None
    originals = [lay.params[key] for lay, key in arrays] + [lay.grads[key] for lay, key in arrays]
    held_elsewhere = any(
        any(value is array for array in originals)
        for lay in layers
        for value in getattr(lay, "__dict__", {}).values()
        if isinstance(value, np.ndarray)
    )
    shared = any(
        np.may_share_memory(a, b) for i, a in enumerate(originals) for b in originals[i + 1 :]
    )
    if held_elsewhere or shared or len({array.dtype for array in originals}) != 1:
        return None, None
    total = sum(lay.params[key].size for lay, key in arrays)
    params, grads = np.empty(total, originals[0].dtype), np.empty(total, originals[0].dtype)
    offset = 0
    for lay, key in arrays:
        shape, end = lay.params[key].shape, offset + lay.params[key].size
        params[offset:end] = lay.params[key].ravel()
        grads[offset:end] = lay.grads[key].ravel()
        lay.params[key] = params[offset:end].reshape(shape)
        lay.grads[key] = grads[offset:end].reshape(shape)
        offset = end
    return params, grads


def _order(specs: list[dict[str, Any]]) -> list[int]:
    """Topological order of the node specs (Kahn), or a ConfigError naming a cycle."""
    names = [s["name"] for s in specs]
    position = {name: i for i, name in enumerate(names)}
    waiting = {i: {position[n] for n in s["inputs"] if n != INPUT} for i, s in enumerate(specs)}
    order: list[int] = []
    ready = [i for i, deps in waiting.items() if not deps]
    while ready:
        i = ready.pop(0)
        order.append(i)
        for j, deps in waiting.items():
            if i in deps:
                deps.discard(i)
                if not deps and j not in order and j not in ready:
                    ready.append(j)
    if len(order) < len(specs):
        # the nodes left wait on a cycle; peel off those only downstream of it (nothing left
        # reads them), so that the message names the nodes on the cycle itself
        left = {i for i in range(len(specs)) if i not in order}
        while True:
            read = {j for i in left for j in waiting[i]}
            downstream = left - read
            if not downstream:
                break
            left -= downstream
        cycle = sorted(names[i] if not names[i].startswith("#") else _label(names[i]) for i in left)
        raise ConfigError(f"the graph has a cycle through nodes {', '.join(cycle)}")
    return order


def _named(spec: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Give every node a name and inputs (a stack's defaults), checking names and references."""
    named: list[dict[str, Any]] = []
    for i, layer_spec in enumerate(spec):
        node = dict(layer_spec)
        kind = node.get("type")
        if kind not in LAYERS:
            known = ", ".join(sorted(LAYERS))
            raise ConfigError(f"layer {i + 1}: unknown type {kind!r}; known: {known}")
        if kind == "activation" and "activation" not in node:
            # a stack's activation dict names its activation with `name`: move it
            node["activation"] = node.pop("name", None)
        if "name" not in node:  # named once built, after the layer: dense1, relu1, conv1
            node["name"] = f"#{i + 1}"
        inputs = node.get("inputs", [named[-1]["name"]] if named else [INPUT])
        node["inputs"] = [inputs] if isinstance(inputs, str) else list(inputs)
        named.append(node)
    names = [node["name"] for node in named]
    for node in named:
        placeholder = node["name"].startswith("#") and node["name"][1:].isdigit()
        user_named_badly = node["name"] in (INPUT, "") or node["name"].startswith("#")
        if names.count(node["name"]) > 1 or (user_named_badly and not placeholder):
            raise ConfigError(f"node name {node['name']!r} is used twice, empty or reserved")
        for name in node["inputs"]:
            if name != INPUT and name not in names:
                raise ConfigError(
                    f"node {node['name']!r} takes input {name!r}, which is not a node "
                    f"(nodes: {', '.join(names)})"
                )
    return named


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
    named = _named(spec)
    output = next((n["name"] for n in named if n["name"] == "output"), named[-1]["name"])
    shapes: dict[str, Shape] = {INPUT: (input_size,)}
    nodes: list[Node] = []
    for i in _order(named):
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
            raise ConfigError(f"{_label(node['name'])} ({kind}): {err}") from None
        except (KeyError, TypeError, ValueError) as err:
            raise ConfigError(f"{_label(node['name'])} ({kind}): bad spec ({err})") from None
        shapes[node["name"]] = shape
        nodes.append(Node(node["name"], lay, node["inputs"]))
    used = {name for node in named for name in node["inputs"]}
    unused = [_label(n.name) for n in nodes if n.name not in used and n.name != output]
    if unused:
        raise ConfigError(f"{', '.join(unused)} do not lead to the output {_label(output)}")
    nodes.sort(key=lambda n: n.name == output)  # the output last; topological order otherwise kept
    final = _final_names(nodes)
    for built in nodes:
        built.name = built.layer.name = final[built.name]
        built.inputs = [final.get(name, name) for name in built.inputs]
    return Model(nodes, input_size, [dict(s) for s in spec], dtype, shapes[output])


def _label(name: str) -> str:
    return f"layer {name[1:]}" if name.startswith("#") else f"node {name!r}"


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
