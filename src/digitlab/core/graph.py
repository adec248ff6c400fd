"""The graph of a model spec: every node named and wired, and the order to run the nodes in.

A spec is a list of layer dicts; `named_nodes` gives each a `name` (a placeholder "#i" for an
unnamed one, renamed after its layer once built) and `inputs` (the previous node's output when
absent, so a list without names is a stack), checking names and references. `topological_order`
orders them so that every node runs after its inputs (Kahn's algorithm). Both raise ConfigErrors
that name the nodes.
"""

from __future__ import annotations

from typing import Any

from digitlab.core.layers import LAYERS
from digitlab.errors import ConfigError

INPUT = "input"  # the name of the data, as a node's input


def topological_order(specs: list[dict[str, Any]]) -> list[int]:
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
        cycle = sorted(
            names[i] if not names[i].startswith("#") else node_label(names[i]) for i in left
        )
        raise ConfigError(f"the graph has a cycle through nodes {', '.join(cycle)}")
    return order


def named_nodes(spec: list[dict[str, Any]]) -> list[dict[str, Any]]:
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


def node_label(name: str) -> str:
    """How a message names a node: layer 3 for an unnamed one, node 'h1' for a named one."""
    return f"layer {name[1:]}" if name.startswith("#") else f"node {name!r}"
