"""Optimizers: each update rule as its formula, applied to the whole model at once.

A model keeps all its parameters in one flat vector `theta` and their gradients in one flat
vector `g` (each layer's arrays are views into them; see core/model.py). An optimizer sees only
that pair: `step(theta, g, mask)` updates theta in place, one NumPy call per operation for the
whole model. `mask` is 1 on the entries of weight matrices and 0 on biases (and batch-norm
scales): the L1/L2 penalties and decoupled weight decay act through it, so they never touch a
bias. The state is flat arrays shaped like theta (velocity, moments) plus the step count;
`state_dict`/`load_state_dict` serve checkpoints (which store it by parameter name).

Two stateless limits on a step live here as plain functions that training calls around it:
`clip_grad_norm` (on g, before) and `limit_unit_norms` (on the weights, after).

To train part of a model, step a slice: the layout orders the parameters layer by layer, so
`step(theta[k:], g[k:], mask[k:])` leaves everything before offset k as it is.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from digitlab.errors import ConfigError


class Optimizer:
    """The learning rate, the L1/L2 penalties on weights, the flat state and the step count."""

    def __init__(self, learning_rate: float, l1: float = 0.0, l2: float = 0.0) -> None:
        if learning_rate <= 0:
            raise ConfigError(f"learning rate must be > 0, got {learning_rate}")
        if l1 < 0 or l2 < 0:
            raise ConfigError(f"penalties must be >= 0, got l1={l1}, l2={l2}")
        self.learning_rate = learning_rate
        self.l1, self.l2 = l1, l2
        self.state: dict[str, np.ndarray] = {}  # flat arrays shaped like theta
        self.steps = 0

    def step(self, theta: np.ndarray, g: np.ndarray, mask: np.ndarray) -> None:
        """Add the penalties' gradients to g on the weights, decay, then update theta."""
        if self.l2:
            g += self.l2 * mask * theta  # the gradient of (l2 / 2) sum w^2
        if self.l1:
            g += self.l1 * mask * np.sign(theta)  # the gradient of l1 sum |w|
        self.decay(theta, mask)
        self.steps += 1
        self.update(theta, g)

    def decay(self, theta: np.ndarray, mask: np.ndarray) -> None:
        """Decoupled weight decay, before the update (none by default)."""

    def update(self, theta: np.ndarray, g: np.ndarray) -> None:
        raise NotImplementedError

    def slot(self, key: str, like: np.ndarray) -> np.ndarray:
        """The state array `key` (velocity, a moment), zero before the first step."""
        if key not in self.state:
            self.state[key] = np.zeros_like(like)
        return self.state[key]

    def state_dict(self) -> dict[str, Any]:
        return {"learning_rate": self.learning_rate, "steps": self.steps, "arrays": self.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.learning_rate = state["learning_rate"]
        self.steps = int(state.get("steps", 0))
        self.state = {key: np.array(value) for key, value in state["arrays"].items()}


def clip_grad_norm(g: np.ndarray, max_norm: float) -> float:
    """Scale g in place so that its L2 norm (one norm over every parameter) is at most max_norm;
    returns the norm before. The direction is kept: g *= max_norm / ||g|| when ||g|| > max_norm.
    """
    norm = float(np.linalg.norm(g))
    if norm > max_norm:
        g *= g.dtype.type(max_norm / norm)
    return norm


def limit_unit_norms(weights: list[np.ndarray], max_norm: float) -> None:
    """Max-norm: rescale in place each unit's incoming weight vector (a column of w, shape
    (n_in, n_out)) whose L2 norm exceeds max_norm down to max_norm; shorter ones are kept.

    Srivastava et al. 2014, section 5.1, https://jmlr.org/papers/v15/srivastava14a.html
    """
    for w in weights:
        norms = np.sqrt(np.einsum("ij,ij->j", w, w))
        w *= max_norm / np.maximum(norms, max_norm)  # 1 for the columns within the limit


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
    """theta -= lr * g."""

    def update(self, theta: np.ndarray, g: np.ndarray) -> None:
        theta -= self.learning_rate * g


@optimizer("momentum")
class Momentum(Optimizer):
    """v = momentum * v - lr * g;  theta += v (classical momentum)."""

    def __init__(self, learning_rate: float, momentum: float = 0.9, **penalties: float) -> None:
        super().__init__(learning_rate, **penalties)
        self.momentum = momentum

    def update(self, theta: np.ndarray, g: np.ndarray) -> None:
        v = self.slot("velocity", theta)
        v *= self.momentum
        v -= self.learning_rate * g
        theta += v


@optimizer("nesterov")
class Nesterov(Momentum):
    """v = momentum * v - lr * g;  theta += momentum * v - lr * g.

    Nesterov momentum with the look-ahead folded into the update (Sutskever et al. 2013).
    """

    def update(self, theta: np.ndarray, g: np.ndarray) -> None:
        v = self.slot("velocity", theta)
        lr_g = self.learning_rate * g
        v *= self.momentum
        v -= lr_g
        theta += self.momentum * v - lr_g


@optimizer("rmsprop")
class RMSprop(Optimizer):
    """s = rho * s + (1 - rho) * g^2;  theta -= lr * g / (sqrt(s) + eps)."""

    def __init__(
        self, learning_rate: float, rho: float = 0.9, eps: float = 1e-8, **penalties: float
    ) -> None:
        super().__init__(learning_rate, **penalties)
        self.rho, self.eps = rho, eps

    def update(self, theta: np.ndarray, g: np.ndarray) -> None:
        s = self.slot("square", theta)
        s *= self.rho
        s += (1 - self.rho) * g * g
        theta -= self.learning_rate * g / (np.sqrt(s) + self.eps)


@optimizer("adam")
class Adam(Optimizer):
    """m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;  at step t,
    theta -= lr * m_hat / (sqrt(v_hat) + eps) with m_hat = m / (1 - b1^t), v_hat = v / (1 - b2^t).

    Kingma and Ba 2014, https://arxiv.org/abs/1412.6980. Numerics: the bias corrections are
    folded into the step size, lr sqrt(1 - b2^t) / (1 - b1^t), so m and v are not copied (eps
    then sits beside sqrt(v), not sqrt(v_hat), as in the paper's section 2).
    """

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

    def update(self, theta: np.ndarray, g: np.ndarray) -> None:
        m, v, t = self.slot("m", theta), self.slot("v", theta), self.steps
        m *= self.beta1
        m += (1 - self.beta1) * g
        v *= self.beta2
        v += (1 - self.beta2) * g * g
        step_size = self.learning_rate * math.sqrt(1 - self.beta2**t) / (1 - self.beta1**t)
        theta -= step_size * m / (np.sqrt(v) + self.eps)

    def decay(self, theta: np.ndarray, mask: np.ndarray) -> None:
        """theta -= lr * weight_decay * theta on the weights: the 'W' of AdamW, apart from m, v."""
        if self.weight_decay:
            theta -= self.learning_rate * self.weight_decay * mask * theta


@optimizer("adamw")
class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov and Hutter, https://arxiv.org/abs/1711.05101)."""

    def __init__(self, learning_rate: float, weight_decay: float = 0.01, **params: float) -> None:
        super().__init__(learning_rate, weight_decay=weight_decay, **params)
