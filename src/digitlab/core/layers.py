"""The layer contract, the registry that builds layers from plain dicts, and the basic layers.

`Layer` below states the contract every layer keeps. Arrays are batch-first: x is (n, *shape);
the model's input is always flat rows (n, features), and a layer such as a reshape or a
convolution works on other per-sample shapes.

A layer is described by a plain dict (`{"type": "dense", "units": 100}`,
`{"type": "activation", "name": "sigmoid"}`, `{"type": "dropout", "rate": 0.5}`); the
`LAYERS` registry maps each type to a factory, registered with `@layer(type)`, that builds the
layer for a given input shape and returns it with its output shape. Importing `digitlab.core`
registers every built-in type: dense, activation, reshape, flatten (here), dropout
(dropout.py), add and concat (merge.py), conv2d (conv.py), maxpool2d and avgpool2d (pooling.py),
batchnorm (batchnorm.py), mixed (mixed.py). The model engine that wires layers into a graph (a
stack is the chain) is core/model.py; the description is what a saved model stores beside its
arrays.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from digitlab import fast
from digitlab.core.activations import check_params, get_activation
from digitlab.core.init import get_initialiser
from digitlab.errors import ConfigError


class Layer(Protocol):
    """What every layer is: the one statement of the contract.

    - `params` and `grads`: dicts of arrays with the same keys. A layer writes both in place
      (`out=`, `+=`) and keeps them nowhere else: the model may replace them with views into
      flat arrays.
    - `buffers`: arrays saved with the model but not trained (batch norm's running statistics);
      an optimizer never sees them.
    - `forward(x, training)`: the output; in training it caches only what backward needs.
    - `backward(dout)`: fills `grads` from the last training forward and returns the gradient
      for the input, or None when `needs_input_grad` is False (the model sets that flag on
      every layer with no trained layer upstream: nothing needs the gradient of the data).
    - `multi_input`: True for a merge (add, concat): forward takes a list of inputs and
      backward returns one gradient per input.
    """

    name: str
    params: dict[str, np.ndarray]
    grads: dict[str, np.ndarray]
    buffers: dict[str, np.ndarray]
    needs_input_grad: bool
    multi_input: bool

    def forward(self, x: Any, training: bool) -> np.ndarray: ...

    def backward(self, dout: np.ndarray) -> Any: ...


Shape = tuple[int, ...]  # per-sample shape, without the batch axis
LayerFactory = Callable[[dict[str, Any], Shape, np.random.Generator, Any], tuple[Layer, Shape]]
LAYERS: dict[str, LayerFactory] = {}


def layer(type_name: str) -> Callable[[LayerFactory], LayerFactory]:
    """Register a factory (spec, in_shape, rng, dtype) -> (layer, out_shape) under `type_name`.

    Shapes are per sample: (features,) for flat rows, (channels, height, width) for images.
    """

    def register(factory: LayerFactory) -> LayerFactory:
        LAYERS[type_name] = factory
        return factory

    return register


class Dense:
    """z = x @ w + b, with w (n_in, n_out) and b (n_out,), or b (1,): one bias shared by every
    unit, whose gradient is then summed over the units as well as the batch."""

    multi_input = False
    init = ""  # the initialiser that drew w, set by the factory (a model summary shows it)

    def __init__(self, w: np.ndarray, b: np.ndarray, name: str = "dense") -> None:
        self.name = name
        self.params = {"w": w, "b": b}
        self.grads = {"w": np.zeros_like(w), "b": np.zeros_like(b)}
        self.buffers: dict[str, np.ndarray] = {}
        self.needs_input_grad = True
        self._x: np.ndarray | None = None

    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        if training:
            self._x = x
        z = x @ self.params["w"]
        z += self.params["b"]
        return z

    def backward(self, dout: np.ndarray) -> np.ndarray | None:
        assert self._x is not None, "backward before a training forward"
        np.matmul(self._x.T, dout, out=self.grads["w"])
        if self.grads["b"].size == 1:
            self.grads["b"][0] = dout.sum()
        else:
            dout.sum(axis=0, out=self.grads["b"])
        return dout @ self.params["w"].T if self.needs_input_grad else None


@layer("dense")
def _dense(
    spec: dict[str, Any], in_shape: Shape, rng: np.random.Generator, dtype: Any
) -> tuple[Any, Shape]:
    if len(in_shape) != 1:
        raise ConfigError(f"dense layer needs flat inputs, got shape {in_shape}: add a flatten")
    n_in = in_shape[0]
    units = int(spec["units"])
    if units <= 0:
        raise ConfigError(f"dense layer needs units > 0, got {units}")
    init_name = spec.get("init", "xavier")
    w = get_initialiser(init_name)(rng, n_in, units, dtype, **spec.get("init_params", {}))
    bias_std = float(spec.get("bias_std", 0.0))
    bias_init = float(spec.get("bias_init", 0.0))
    if not (math.isfinite(bias_std) and bias_std >= 0):
        raise ConfigError(f"bias_std must be a number >= 0, got {bias_std}")
    if not math.isfinite(bias_init):
        raise ConfigError(f"bias_init must be a finite number, got {bias_init}")
    if bias_std and bias_init:
        raise ConfigError("give bias_init (a constant) or bias_std (random biases), not both")
    n_bias = 1 if spec.get("shared_bias", False) else units
    if bias_std:
        b = (rng.standard_normal(n_bias) * bias_std).astype(dtype)
    else:
        b = np.full(n_bias, bias_init, dtype)
    dense = Dense(w, b)
    dense.init = f"{init_name}, bias {bias_init:g}" if bias_init else init_name
    return dense, (units,)


class Activation:
    """a = f(z) for a registered activation; backward multiplies by f'(z)."""

    multi_input = False

    def __init__(self, name: str, **params: Any) -> None:
        check_params(name, params)
        entry = get_activation(name)
        self.name = name
        self.activation = name
        self.f, self.df, self.fparams = entry.f, entry.df, params
        self.df_of_output = entry.df_of_output
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.buffers: dict[str, np.ndarray] = {}
        self.needs_input_grad = True
        # kept after a training forward, for backward and for the monitors (references only:
        # the next layer keeps a as its input anyway)
        self.z: np.ndarray | None = None
        self.a: np.ndarray | None = None

    def forward(self, z: np.ndarray, training: bool) -> np.ndarray:
        a = self.f(z, **self.fparams)
        if training:
            self.z, self.a = z, a
        return a

    def slope(self) -> np.ndarray:
        """f'(z) of the last training batch, read off the output where that is cheaper."""
        assert self.z is not None and self.df is not None, "no training forward yet"
        if self.a is not None and self.df_of_output is not None:
            return self.df_of_output(self.a, **self.fparams)
        return self.df(self.z, **self.fparams)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        if self.activation == "relu" and dout.ndim == 4 and fast.handles(dout):
            # optional compiled kernel (digitlab.fast), images only as in relu(): the same numbers
            assert self.z is not None, "no training forward yet"
            return fast.relu_backward(self.z, dout)
        dz = self.slope()
        dz *= dout
        return dz


@layer("activation")
def _activation(
    spec: dict[str, Any], in_shape: Shape, rng: np.random.Generator, dtype: Any
) -> tuple[Any, Shape]:
    params = {k: v for k, v in spec.items() if k not in ("type", "name")}
    return Activation(spec["name"], **params), in_shape


class Reshape:
    """Per-sample reshape, e.g. flat rows (n, 784) -> images (n, 1, 28, 28), and back."""

    multi_input = False

    def __init__(self, in_shape: Shape, out_shape: Shape, name: str = "reshape") -> None:
        self.name = name
        self.in_shape, self.out_shape = in_shape, out_shape
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.buffers: dict[str, np.ndarray] = {}
        self.needs_input_grad = True

    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        return x.reshape(x.shape[0], *self.out_shape)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return dout.reshape(dout.shape[0], *self.in_shape)


@layer("reshape")
def _reshape(
    spec: dict[str, Any], in_shape: Shape, rng: np.random.Generator, dtype: Any
) -> tuple[Any, Shape]:
    out_shape = tuple(int(s) for s in spec["shape"])
    if int(np.prod(out_shape)) != int(np.prod(in_shape)) or min(out_shape) <= 0:
        raise ConfigError(f"cannot reshape {in_shape} into {out_shape}")
    return Reshape(in_shape, out_shape), out_shape


@layer("flatten")
def _flatten(
    spec: dict[str, Any], in_shape: Shape, rng: np.random.Generator, dtype: Any
) -> tuple[Any, Shape]:
    out_shape = (int(np.prod(in_shape)),)
    return Reshape(in_shape, out_shape, name="flatten"), out_shape
