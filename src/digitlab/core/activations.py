"""Activations: a registry of f(z) and f'(z) pairs.

Each entry is written once, as two functions of the pre-activation z (never of the output), plus
the initialiser that suits it. Everything else (the Activation layer, CLI choices, config
validation, the gradient check, the tests, the docs table) reads `ACTIVATIONS`, so a new
activation is one decorated function pair, here or in a user's own file: `@activation(name,
init=...)` on f, `@<f>.derivative` on f' (shifted_relu below is the pattern to copy).

Keyword parameters (leaky_relu's slope, elu's alpha) are keyword arguments of both functions
with defaults; a config names them beside the activation's name. Every function returns an array
of z's dtype. Where f' is cheaper from the output a = f(z), as for sigmoid (a (1 - a)), that form
can be registered too, with `@<f>.derivative_of_output`; training then uses it, while the
monitors and the gradient check still read f'(z), and the check compares the two forms.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from digitlab import fast
from digitlab.errors import ConfigError

ArrayFn = Callable[..., np.ndarray]


@dataclass(frozen=True)
class ActivationEntry:
    """A registered activation: f, its derivative f', the default initialiser, a summary."""

    name: str
    f: ArrayFn
    df: ArrayFn | None
    init: str
    doc: str
    df_of_output: ArrayFn | None = None  # f' as a function of a = f(z), where that is cheaper

    def params(self) -> dict[str, Any]:
        """The keyword parameters of f with their defaults."""
        signature = inspect.signature(self.f)
        return {
            name: p.default
            for name, p in list(signature.parameters.items())[1:]
            if p.default is not inspect.Parameter.empty
        }


ACTIVATIONS: dict[str, ActivationEntry] = {}


class _Registered:
    """What @activation returns: the function itself, plus a `.derivative` decorator."""

    def __init__(self, name: str, f: ArrayFn) -> None:
        self.name = name
        self.f = f
        self.__doc__ = f.__doc__

    def __call__(self, z: np.ndarray, **params: Any) -> np.ndarray:
        return self.f(z, **params)

    def derivative(self, df: ArrayFn) -> ArrayFn:
        ACTIVATIONS[self.name] = replace(ACTIVATIONS[self.name], df=df)
        return df

    def derivative_of_output(self, df: ArrayFn) -> ArrayFn:
        ACTIVATIONS[self.name] = replace(ACTIVATIONS[self.name], df_of_output=df)
        return df


def activation(name: str, *, init: str = "xavier") -> Callable[[ArrayFn], _Registered]:
    """Register f(z) under `name`; decorate its derivative with `@<f>.derivative`."""

    def register(f: ArrayFn) -> _Registered:
        doc = (f.__doc__ or name).strip().splitlines()[0]
        ACTIVATIONS[name] = ActivationEntry(name=name, f=f, df=None, init=init, doc=doc)
        return _Registered(name, f)

    return register


def get_activation(name: str) -> ActivationEntry:
    """The registry entry for `name`, or a ConfigError listing the known names."""
    entry = ACTIVATIONS.get(name)
    if entry is None:
        known = ", ".join(sorted(ACTIVATIONS))
        raise ConfigError(f"unknown activation {name!r}; known: {known}")
    if entry.df is None:
        raise ConfigError(f"activation {name!r} has no derivative registered")
    return entry


def check_params(name: str, params: dict[str, Any]) -> None:
    """Raise ConfigError if `params` names a keyword that activation `name` does not take."""
    allowed = get_activation(name).params()
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        takes = ", ".join(allowed) or "no parameters"
        raise ConfigError(f"activation {name!r} takes {takes}; got {', '.join(unknown)}")


# ---------------------------------------------------------------- the built-in activations


@activation("identity", init="xavier")
def identity(z: np.ndarray) -> np.ndarray:
    """z: no nonlinearity (the network becomes linear)."""
    return z


@identity.derivative
def _identity_derivative(z: np.ndarray) -> np.ndarray:
    return np.ones_like(z)


@activation("sigmoid", init="xavier")
def sigmoid(z: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-z)), overflow-safe."""
    # Numerics: with e = exp(-|z|) <= 1, which never overflows, sigmoid is 1/(1+e) where
    # z >= 0 and e/(1+e) elsewhere. That numerator is max(e, [z >= 0]), since 0 < e <= 1:
    # np.where's numbers, without its branch (see benchmarks/PERFORMANCE.md).
    e = np.abs(z)
    np.negative(e, out=e)
    np.exp(e, out=e)
    s = (z >= 0).astype(z.dtype)
    np.maximum(s, e, out=s)
    e += 1
    s /= e
    return s


@sigmoid.derivative
def _sigmoid_derivative(z: np.ndarray) -> np.ndarray:
    return _sigmoid_derivative_of_output(sigmoid(z))


@sigmoid.derivative_of_output
def _sigmoid_derivative_of_output(s: np.ndarray) -> np.ndarray:
    ds = 1 - s  # training takes this form: it saves computing sigmoid(z) a second time
    ds *= s
    return ds


@activation("tanh", init="xavier")
def tanh(z: np.ndarray) -> np.ndarray:
    """tanh(z)."""
    return np.tanh(z)


@tanh.derivative
def _tanh_derivative(z: np.ndarray) -> np.ndarray:
    return _tanh_derivative_of_output(np.tanh(z))


@tanh.derivative_of_output
def _tanh_derivative_of_output(t: np.ndarray) -> np.ndarray:
    dt = t * t
    np.subtract(1, dt, out=dt)
    return dt


@activation("relu", init="he")
def relu(z: np.ndarray) -> np.ndarray:
    """max(z, 0); the derivative at 0 is taken as 0."""
    if z.ndim == 4 and fast.handles(z):  # optional compiled kernel (digitlab.fast), images
        return fast.relu(z)  # only: an MLP's rows do not pay for loading numba. Same numbers
    # against an array of zeros in z's memory order, not the scalar 0: the same numbers (NaN and
    # -0 included) by NumPy's fast loop (see benchmarks/PERFORMANCE.md)
    zeros = np.zeros_like(z)
    return np.maximum(z, zeros, out=zeros)


@relu.derivative
def _relu_derivative(z: np.ndarray) -> np.ndarray:
    return (z > 0).astype(z.dtype)


@activation("leaky_relu", init="he")
def leaky_relu(z: np.ndarray, slope: float = 0.01) -> np.ndarray:
    """z for z > 0, slope * z otherwise."""
    return np.where(z > 0, z, z * z.dtype.type(slope))


@leaky_relu.derivative
def _leaky_relu_derivative(z: np.ndarray, slope: float = 0.01) -> np.ndarray:
    return np.where(z > 0, 1, z.dtype.type(slope)).astype(z.dtype)


@activation("shifted_relu", init="he")
def shifted_relu(z: np.ndarray, shift: float = -1.0) -> np.ndarray:
    """max(z, shift), shift -1 by default: keeps deep ReLU nets' weights from growing."""
    return np.maximum(z, z.dtype.type(shift))


@shifted_relu.derivative
def _shifted_relu_derivative(z: np.ndarray, shift: float = -1.0) -> np.ndarray:
    return (z > shift).astype(z.dtype)


@activation("elu", init="he")
def elu(z: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """z for z > 0, alpha * (exp(z) - 1) otherwise."""
    # Numerics: expm1 of min(z, 0) never overflows and is exact near 0.
    return np.where(z > 0, z, z.dtype.type(alpha) * np.expm1(np.minimum(z, 0)))


@elu.derivative
def _elu_derivative(z: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    return np.where(z > 0, 1, z.dtype.type(alpha) * np.exp(np.minimum(z, 0))).astype(z.dtype)


@activation("softplus", init="he")
def softplus(z: np.ndarray) -> np.ndarray:
    """log(1 + exp(z)), computed as logaddexp(0, z) so it never overflows."""
    return np.logaddexp(z.dtype.type(0), z)


@softplus.derivative
def _softplus_derivative(z: np.ndarray) -> np.ndarray:
    return sigmoid(z)


@activation("abs", init="he")
def absolute(z: np.ndarray) -> np.ndarray:
    """|z|; the derivative at 0 is taken as 0."""
    return np.abs(z)


@absolute.derivative
def _abs_derivative(z: np.ndarray) -> np.ndarray:
    return np.sign(z)


@activation("sin", init="xavier")
def sin(z: np.ndarray) -> np.ndarray:
    """sin(z): periodic, works with one hidden layer."""
    return np.sin(z)


@sin.derivative
def _sin_derivative(z: np.ndarray) -> np.ndarray:
    return np.cos(z)


@activation("cos", init="xavier")
def cos(z: np.ndarray) -> np.ndarray:
    """cos(z): periodic and even."""
    return np.cos(z)


@cos.derivative
def _cos_derivative(z: np.ndarray) -> np.ndarray:
    return -np.sin(z)
