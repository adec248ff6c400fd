"""Optimizers, weight penalties and schedules.

An optimizer holds its hyperparameters and per-parameter state (keyed by the parameter's
qualified name, e.g. 'dense1.w'); `step(parameters)` walks (name, param, grad) triples and
updates each param in place. `state_dict` / `load_state_dict` serve checkpoints. Penalties
(L1, L2) are added to the gradients of weight matrices (names ending in '.w'), never of biases.
Schedules map the epoch (0-based) to a learning rate or a batch size.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from digitlab.errors import ConfigError

Parameters = Iterable[tuple[str, np.ndarray, np.ndarray]]


class Optimizer:
    """Shared plumbing: the learning rate, penalties and per-parameter state."""

    def __init__(self, learning_rate: float, l1: float = 0.0, l2: float = 0.0) -> None:
        if learning_rate <= 0:
            raise ConfigError(f"learning rate must be > 0, got {learning_rate}")
        if l1 < 0 or l2 < 0:
            raise ConfigError(f"penalties must be >= 0, got l1={l1}, l2={l2}")
        self.learning_rate = learning_rate
        self.l1, self.l2 = l1, l2
        self.state: dict[str, dict[str, Any]] = {}
        self._scratch: dict[str, np.ndarray] = {}

    def step(self, parameters: Parameters) -> None:
        for name, param, grad in parameters:
            if name.endswith(".w"):
                self.add_penalties(param, grad)
            self.update(name, param, grad)

    def add_penalties(self, w: np.ndarray, dw: np.ndarray) -> None:
        """dw += l2 * w + l1 * sign(w): the gradients of (l2/2) sum w^2 and l1 sum |w|."""
        if self.l2:
            dw += w.dtype.type(self.l2) * w
        if self.l1:
            dw += w.dtype.type(self.l1) * np.sign(w)

    def update(self, name: str, param: np.ndarray, grad: np.ndarray) -> None:
        raise NotImplementedError

    def slot(self, name: str, key: str, like: np.ndarray) -> np.ndarray:
        """A zero-initialised state array (velocity, moments) for one parameter."""
        slots = self.state.setdefault(name, {})
        if key not in slots:
            slots[key] = np.zeros_like(like)
        array: np.ndarray = slots[key]
        return array

    def scratch(self, name: str, like: np.ndarray, key: str = "a") -> np.ndarray:
        """A reusable work buffer (not state): saves allocating a parameter-sized array per step."""
        buffer = self._scratch.get(f"{name}/{key}")
        if buffer is None:
            buffer = self._scratch[f"{name}/{key}"] = np.empty_like(like)
        return buffer

    def state_dict(self) -> dict[str, Any]:
        arrays = {f"{n}/{k}": v for n, s in self.state.items() for k, v in s.items()}
        return {"learning_rate": self.learning_rate, "arrays": arrays}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.learning_rate = state["learning_rate"]
        self.state = {}
        for qualified, value in state["arrays"].items():
            name, key = qualified.rsplit("/", 1)
            self.state.setdefault(name, {})[key] = np.array(value)


OPTIMIZERS: dict[str, type[Optimizer]] = {}


def optimizer(name: str) -> Callable[[type[Optimizer]], type[Optimizer]]:
    """Register an Optimizer subclass under `name`."""

    def register(cls: type[Optimizer]) -> type[Optimizer]:
        OPTIMIZERS[name] = cls
        return cls

    return register


def get_optimizer(name: str, learning_rate: float, **params: Any) -> Optimizer:
    """Build the optimizer registered as `name`; unknown names or keywords are ConfigErrors."""
    if name not in OPTIMIZERS:
        raise ConfigError(f"unknown optimizer {name!r}; known: {', '.join(sorted(OPTIMIZERS))}")
    try:
        return OPTIMIZERS[name](learning_rate, **params)
    except TypeError as err:
        raise ConfigError(f"optimizer {name!r}: {err}") from None


@optimizer("sgd")
class SGD(Optimizer):
    """w -= lr * dw."""

    def update(self, name: str, param: np.ndarray, grad: np.ndarray) -> None:
        step = self.scratch(name, param)
        np.multiply(grad, param.dtype.type(self.learning_rate), out=step)
        param -= step


@optimizer("momentum")
class Momentum(Optimizer):
    """v = momentum * v - lr * dw; w += v (classical momentum)."""

    def __init__(self, learning_rate: float, momentum: float = 0.9, **penalties: float) -> None:
        super().__init__(learning_rate, **penalties)
        self.momentum = momentum

    def update(self, name: str, param: np.ndarray, grad: np.ndarray) -> None:
        v = self.slot(name, "velocity", param)
        v *= param.dtype.type(self.momentum)
        v -= param.dtype.type(self.learning_rate) * grad
        param += v


@optimizer("nesterov")
class Nesterov(Momentum):
    """Nesterov momentum in the form w += momentum * v_new - lr * dw (Sutskever et al. 2013)."""

    def update(self, name: str, param: np.ndarray, grad: np.ndarray) -> None:
        v = self.slot(name, "velocity", param)
        lr_grad = param.dtype.type(self.learning_rate) * grad
        v *= param.dtype.type(self.momentum)
        v -= lr_grad
        param += param.dtype.type(self.momentum) * v - lr_grad


@optimizer("rmsprop")
class RMSprop(Optimizer):
    """s = rho * s + (1 - rho) * dw^2; w -= lr * dw / (sqrt(s) + eps)."""

    def __init__(
        self, learning_rate: float, rho: float = 0.9, eps: float = 1e-8, **penalties: float
    ) -> None:
        super().__init__(learning_rate, **penalties)
        self.rho, self.eps = rho, eps

    def update(self, name: str, param: np.ndarray, grad: np.ndarray) -> None:
        t = param.dtype.type
        s = self.slot(name, "square", param)
        s *= t(self.rho)
        s += t(1 - self.rho) * grad * grad
        param -= t(self.learning_rate) * grad / (np.sqrt(s) + t(self.eps))


@optimizer("adam")
class Adam(Optimizer):
    """Adam with bias correction (Kingma and Ba 2014, https://arxiv.org/abs/1412.6980)."""

    def __init__(
        self,
        learning_rate: float,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        **penalties: float,
    ) -> None:
        super().__init__(learning_rate, **penalties)
        self.beta1, self.beta2, self.eps, self.weight_decay = beta1, beta2, eps, weight_decay

    def update(self, name: str, param: np.ndarray, grad: np.ndarray) -> None:
        t = param.dtype.type
        m = self.slot(name, "m", param)
        v = self.slot(name, "v", param)
        slots = self.state[name]
        slots["t"] = step = int(slots.get("t", 0)) + 1
        # Written with two reusable buffers, a and b, instead of temporaries; the arithmetic is
        # m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;  w -= step_size m / (sqrt(v) + eps).
        a, b = self.scratch(name, param, "a"), self.scratch(name, param, "b")
        m *= t(self.beta1)
        m += np.multiply(grad, t(1 - self.beta1), out=a)
        v *= t(self.beta2)
        np.multiply(grad, t(1 - self.beta2), out=a)
        v += np.multiply(a, grad, out=a)
        # Bias correction folded into the step size, so m and v are not copied.
        step_size = self.learning_rate * math.sqrt(1 - self.beta2**step) / (1 - self.beta1**step)
        if self.weight_decay and name.endswith(".w"):
            param -= np.multiply(param, t(self.learning_rate * self.weight_decay), out=a)
        np.sqrt(v, out=a)
        a += t(self.eps)
        np.multiply(m, t(step_size), out=b)
        b /= a
        param -= b

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["arrays"] = {k: v for k, v in state["arrays"].items() if not k.endswith("/t")}
        state["steps"] = {n: s.get("t", 0) for n, s in self.state.items()}
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        for name, step in state.get("steps", {}).items():
            self.state.setdefault(name, {})["t"] = int(step)


@optimizer("adamw")
class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov and Hutter, https://arxiv.org/abs/1711.05101)."""

    def __init__(self, learning_rate: float, weight_decay: float = 0.01, **params: float) -> None:
        super().__init__(learning_rate, weight_decay=weight_decay, **params)


# ---------------------------------------------------------------------------- schedules

Schedule = Callable[[int], float]
SCHEDULES: dict[str, Callable[..., Schedule]] = {}


def schedule(name: str) -> Callable[[Callable[..., Schedule]], Callable[..., Schedule]]:
    """Register a learning-rate schedule factory under `name`."""

    def register(f: Callable[..., Schedule]) -> Callable[..., Schedule]:
        SCHEDULES[name] = f
        return f

    return register


def get_schedule(name: str, learning_rate: float, epochs: int, **params: Any) -> Schedule:
    """The schedule `name` built for a base learning rate and a run of `epochs` epochs."""
    if name not in SCHEDULES:
        raise ConfigError(f"unknown schedule {name!r}; known: {', '.join(sorted(SCHEDULES))}")
    try:
        return SCHEDULES[name](learning_rate, epochs, **params)
    except TypeError as err:
        raise ConfigError(f"schedule {name!r}: {err}") from None


@schedule("constant")
def constant(learning_rate: float, epochs: int) -> Schedule:
    """The same learning rate every epoch."""
    return lambda epoch: learning_rate


@schedule("piecewise")
def piecewise(learning_rate: float, epochs: int, steps: list[list[float]]) -> Schedule:
    """[[rate, epochs], ...]: e.g. 0.5 for 10 epochs, then 0.1, then 0.02; the last rate stays."""
    if not steps or any(len(s) != 2 or s[0] <= 0 or s[1] <= 0 for s in steps):
        raise ConfigError("piecewise schedule needs steps = [[rate, epochs], ...], all > 0")
    ends = np.cumsum([int(s[1]) for s in steps])
    rates = [float(s[0]) for s in steps]
    return lambda epoch: rates[min(int(np.searchsorted(ends, epoch, side="right")), len(rates) - 1)]


@schedule("exponential")
def exponential(learning_rate: float, epochs: int, decay: float = 0.95) -> Schedule:
    """learning_rate * decay^epoch."""
    if not 0 < decay <= 1:
        raise ConfigError(f"exponential schedule needs 0 < decay <= 1, got {decay}")
    return lambda epoch: learning_rate * decay**epoch


@schedule("cosine")
def cosine(learning_rate: float, epochs: int, min_rate: float = 0.0) -> Schedule:
    """Cosine annealing from learning_rate down to min_rate over the run."""
    span = max(epochs - 1, 1)
    return lambda epoch: (
        min_rate
        + 0.5 * (learning_rate - min_rate) * (1 + math.cos(math.pi * min(epoch, span) / span))
    )


def batch_size_schedule(batch_size: int, ramp_start: int | None = None) -> Callable[[int], int]:
    """Constant batch size, or a ramp: ramp_start in epoch 0, doubling each epoch up to batch_size.

    A ramp from 2-3x the number of classes gives fast early epochs and a final accuracy less
    sensitive to the final batch size (Programming Machine Learning, the batch-size ramp).
    """
    if batch_size <= 0:
        raise ConfigError(f"batch size must be > 0, got {batch_size}")
    if ramp_start is None:
        return lambda epoch: batch_size
    if not 0 < ramp_start <= batch_size:
        raise ConfigError(f"batch ramp start must be in 1..{batch_size}, got {ramp_start}")
    return lambda epoch: min(ramp_start * 2**epoch, batch_size)
