"""Layer dicts for common architectures, built from the registries (what a config's `hidden`
and `activation` keys turn into)."""

from __future__ import annotations

from typing import Any

from digitlab.core.activations import check_params, get_activation


def mlp_spec(
    hidden_sizes: list[int],
    n_classes: int,
    activation: str = "relu",
    *,
    activation_params: dict[str, Any] | None = None,
    init: str | None = None,
    init_params: dict[str, Any] | None = None,
    bias_std: float = 0.0,
    bias_init: float = 0.0,
    dropout: float = 0.0,
    output_activation: str | None = None,
    shared_bias: bool = False,
) -> list[dict[str, Any]]:
    """Layer dicts for a multi-layer perceptron: (dense, activation[, dropout]) per hidden layer.

    The initialiser defaults to the one the activation registers (He for the ReLU family,
    Xavier for sigmoid and tanh); the output layer uses Xavier unless `init` is given.
    `shared_bias` gives the output layer one scalar bias shared by all classes. `bias_init`
    starts the hidden layers' biases at that constant (Perrotta's ReLU with biases at +1); the
    output layer's biases start at zero whatever it is.
    """
    entry = get_activation(activation)
    check_params(activation, activation_params or {})
    hidden_init = init or entry.init
    spec: list[dict[str, Any]] = []

    def dense(units: int, init_name: str, bias: float = 0.0) -> dict[str, Any]:
        d: dict[str, Any] = {"type": "dense", "units": units, "init": init_name}
        if init_params:
            d["init_params"] = dict(init_params)
        if bias_std:
            d["bias_std"] = bias_std
        if bias:
            d["bias_init"] = bias
        return d

    for units in hidden_sizes:
        spec.append(dense(units, hidden_init, bias_init))
        spec.append({"type": "activation", "name": activation, **(activation_params or {})})
        if dropout:
            spec.append({"type": "dropout", "rate": dropout})
    spec.append(dense(n_classes, init or "xavier"))
    if shared_bias:
        spec[-1]["shared_bias"] = True
    if output_activation:
        get_activation(output_activation)
        spec.append({"type": "activation", "name": output_activation})
    return spec
