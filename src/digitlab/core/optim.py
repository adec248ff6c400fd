"""Optimizers, weight penalties and schedules.

An optimizer holds its hyperparameters and per-parameter state (keyed by the parameter's
qualified name, e.g. 'dense1.w'); `step(parameters)` walks (name, param, grad) triples and
updates each param in place. `state_dict` / `load_state_dict` serve checkpoints. Penalties
(L1, L2) are added to the gradients of weight matrices (names ending in '.w'), never of biases.
Schedules map the epoch (0-based) to a learning rate or a batch size.

An optimizer whose update treats every number on its own (`elementwise = True`, as all the
built-in ones) is handed the whole model at once when the parameters and gradients are
back-to-back views of one flat array each, as a Model packs them: one `update(ALL, ...)` call
on the flat arrays does the same arithmetic as one call per array, in far fewer NumPy calls.
Its state is then kept flat under ALL, and `state_dict` still gives it per parameter name.
An optimizer that looks at a whole array (a per-layer norm, say) leaves `elementwise` False.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from digitlab.errors import ConfigError

Parameters = Iterable[tuple[str, np.ndarray, np.ndarray]]
ALL = "*"  # the state key of a whole packed model


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
        # the arrays of the last step and, if they were packed, (flat param, flat grad)
        self._packing: tuple[list[np.ndarray], tuple[np.ndarray, np.ndarray] | None] = ([], None)
        self._layout: list[tuple[str, tuple[int, ...]]] = []  # (name, shape) of the ALL state

    elementwise = False  # True: update(ALL, flat param, flat grad) is right for a packed model

    def step(self, parameters: Parameters) -> None:
        params = list(parameters)
        for name, param, grad in params:
            if name.endswith(".w"):
                self.add_penalties(param, grad)
                self.decay(param)
        packed = self._packed(params) if self.elementwise else None
        if packed is not None:
            self.update(ALL, *packed)
            return
        self._unpack_state()
        for name, param, grad in params:
            self.update(name, param, grad)

    def _packed(
        self, params: list[tuple[str, np.ndarray, np.ndarray]]
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """(flat param, flat grad) if the params and grads are packed, else None; the state
        is moved to the matching form (flat under ALL, or per name)."""
        arrays = [array for _, param, grad in params for array in (param, grad)]
        last, packed = self._packing
        if len(arrays) == len(last) and all(a is b for a, b in zip(arrays, last, strict=True)):
            return packed
        flat_param = _flat_base([param for _, param, _ in params])
        flat_grad = _flat_base([grad for _, _, grad in params])
        packed = None if flat_param is None or flat_grad is None else (flat_param, flat_grad)
        layout = [(name, param.shape) for name, param, _ in params]
        if packed is not None and layout != self._layout:
            self._unpack_state()
            joined = _join(self.state, layout)
            if joined is None:  # per-array state that cannot be joined: stay per array
                packed = None
            else:
                for name, _ in layout:
                    self.state.pop(name, None)
                self.state[ALL], self._layout = joined, layout
        self._packing = (arrays, packed)
        return packed

    def _unpack_state(self) -> None:
        """Flat state under ALL back to per-name arrays (when the arrays are no longer packed)."""
        if ALL in self.state:
            self.state.update(_split(self.state.pop(ALL), self._layout))
        self._layout = []

    def decay(self, w: np.ndarray) -> None:
        """Decoupled weight decay of a weight matrix, before the update (none by default)."""

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
        if buffer is None or buffer.shape != like.shape or buffer.dtype != like.dtype:
            buffer = self._scratch[f"{name}/{key}"] = np.empty_like(like)
        return buffer

    def per_parameter_state(self) -> dict[str, dict[str, Any]]:
        """The state by parameter name, the flat state of a packed model split up (as views)."""
        state = {n: s for n, s in self.state.items() if n != ALL}
        if ALL in self.state:
            state.update(_split(self.state[ALL], self._layout))
        return state

    def state_dict(self) -> dict[str, Any]:
        state = self.per_parameter_state()
        arrays = {f"{n}/{k}": v for n, s in state.items() for k, v in s.items()}
        return {"learning_rate": self.learning_rate, "arrays": arrays}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.learning_rate = state["learning_rate"]
        self.state = {}
        # the next step joins the loaded state if the model is packed
        self._packing, self._layout = ([], None), []
        for qualified, value in state["arrays"].items():
            name, key = qualified.rsplit("/", 1)
            self.state.setdefault(name, {})[key] = np.array(value)


def _flat_base(arrays: list[np.ndarray]) -> np.ndarray | None:
    """The flat array that `arrays` fill back to back, in order and exactly, or None."""
    base = arrays[0].base if arrays else None
    if base is None or base.ndim != 1 or not base.flags.c_contiguous:
        return None
    address = base.__array_interface__["data"][0]
    for array in arrays:
        if array.base is not base or array.__array_interface__["data"][0] != address:
            return None
        if not array.flags.c_contiguous or array.dtype != base.dtype:
            return None
        address += array.nbytes
    return base if address == base.__array_interface__["data"][0] + base.nbytes else None


def _split(flat: dict[str, Any], layout: list[tuple[str, tuple[int, ...]]]) -> dict[str, Any]:
    """Flat state (arrays and numbers such as a step count) as per-name state, arrays as views."""
    state: dict[str, dict[str, Any]] = {name: {} for name, _ in layout}
    for key, value in flat.items():
        offset = 0
        for name, shape in layout:
            if isinstance(value, np.ndarray):
                size = math.prod(shape)
                state[name][key] = value[offset : offset + size].reshape(shape)
                offset += size
            else:
                state[name][key] = value
    return state


def _join(
    state: dict[str, dict[str, Any]], layout: list[tuple[str, tuple[int, ...]]]
) -> dict[str, Any] | None:
    """Per-name state of the names in `layout` as one flat state ({} if there is none), or None
    if it cannot be joined (some names have state and some not, or their counts differ)."""
    if not any(name in state for name, _ in layout):
        return {}
    if any(name not in state for name, _ in layout):
        return None
    parts = [state[name] for name, _ in layout]
    if any(part.keys() != parts[0].keys() for part in parts):
        return None
    joined: dict[str, Any] = {}
    for key, value in parts[0].items():
        values = [part[key] for part in parts]
        if isinstance(value, np.ndarray):
            joined[key] = np.concatenate([v.ravel() for v in values])
        elif all(v == value for v in values):
            joined[key] = value
        else:
            return None
    return joined


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

    elementwise = True

    def update(self, name: str, param: np.ndarray, grad: np.ndarray) -> None:
        step = self.scratch(name, param)
        np.multiply(grad, param.dtype.type(self.learning_rate), out=step)
        param -= step


@optimizer("momentum")
class Momentum(Optimizer):
    """v = momentum * v - lr * dw; w += v (classical momentum)."""

    elementwise = True

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

    elementwise = True

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

    elementwise = True

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
        np.sqrt(v, out=a)
        a += t(self.eps)
        np.multiply(m, t(step_size), out=b)
        b /= a
        param -= b

    def decay(self, w: np.ndarray) -> None:
        """w -= lr * weight_decay * w (the 'W' of AdamW), independent of the moments."""
        if self.weight_decay:
            w -= w * w.dtype.type(self.learning_rate * self.weight_decay)

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["arrays"] = {k: v for k, v in state["arrays"].items() if not k.endswith("/t")}
        state["steps"] = {n: s.get("t", 0) for n, s in self.per_parameter_state().items()}
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
