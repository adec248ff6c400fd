"""Checkpoints: everything needed to continue a run bit-identically, in one atomic file.

A Session is what changes while training: the model, the optimizer's state, the two random
generators that training draws from (shuffling and dropout), the loop's TrainState and the
History. `save_checkpoint` writes it as RUN/checkpoint.npz (arrays plus a JSON header, never
pickle), through a temporary file and a rename, so a kill at any moment leaves the previous
checkpoint whole; `load_checkpoint` rebuilds it, validated like a model file.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from digitlab.core.evaluation import History
from digitlab.core.model import Sequential
from digitlab.core.optim import Optimizer
from digitlab.core.train import TrainState
from digitlab.errors import ModelError
from digitlab.lab.modelfile import read_npz, rebuild
from digitlab.lab.runs import write_npz

CHECKPOINT_FILE = "checkpoint.npz"
FORMAT, VERSION = "digitlab-checkpoint", 1


@dataclass
class Session:
    """The state of a run that training changes."""

    model: Sequential
    optimizer: Optimizer
    shuffle_rng: np.random.Generator
    dropout_rng: np.random.Generator
    state: TrainState
    history: History
    augment_rng: np.random.Generator = field(default_factory=np.random.default_rng)
    monitors: list[Any] = field(default_factory=list)  # their running numbers are saved too


def save_checkpoint(folder: Path, config: dict[str, Any], session: Session) -> Path:
    """Write RUN/checkpoint.npz atomically and return its path."""
    state, history, optimizer = session.state, session.history, session.optimizer
    arrays: dict[str, np.ndarray] = {}
    for name, param, _ in session.model.parameters():
        arrays[f"model/{name}"] = param
    for name, buffer in session.model.buffers():
        arrays[f"model/{name}"] = buffer
    # the optimizer's flat state is stored by parameter name ('optimizer/dense1.w/m'), and its
    # step count once per name, as when each array had its own state
    optimizer_state = optimizer.state_dict()
    for key, flat in optimizer_state.pop("arrays").items():
        for name, view in session.model.views(flat).items():
            arrays[f"optimizer/{name}/{key}"] = view
    steps = optimizer_state.pop("steps")
    optimizer_state["steps"] = {name: steps for name, _, _ in session.model.layout} if steps else {}
    if state.order is not None:
        arrays["state/order"] = state.order
    for i, weights in enumerate(state.best_weights or []):
        arrays[f"state/best/{i}"] = weights
    header = {
        "format": FORMAT,
        "version": VERSION,
        "config": config,
        "model": session.model.describe(),
        "optimizer": optimizer_state,
        "rng": {
            "shuffle": session.shuffle_rng.bit_generator.state,
            "dropout": session.dropout_rng.bit_generator.state,
            "augment": session.augment_rng.bit_generator.state,
        },
        "state": {
            "epoch": state.epoch,
            "batch": state.batch,
            "total_loss": state.total_loss,
            "correct": state.correct,
            "first_loss": state.first_loss,
            "best_loss": state.best_loss,
            "since_best": state.since_best,
            "best_count": len(state.best_weights or []),
        },
        "history": {
            "records": history.records(),
            "best_epoch": history.best_epoch,
            "stopped_early": history.stopped_early,
        },
        "monitors": [
            {"kind": type(monitor).__name__, "state": monitor.state_dict()}
            for monitor in session.monitors
        ],
    }
    arrays["checkpoint.json"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    return write_npz(folder / CHECKPOINT_FILE, arrays)


def read_checkpoint(folder: str | os.PathLike[str]) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The header and arrays of RUN/checkpoint.npz (or of that file given directly)."""
    path = Path(folder)
    if path.is_dir():
        path = path / CHECKPOINT_FILE
    if not path.is_file():
        raise ModelError(f"{path}: no checkpoint here (train with --checkpoint-every N)")
    header, arrays = read_npz(path, "checkpoint.json", "a digitlab checkpoint")
    if header.get("format") != FORMAT or header.get("version") != VERSION:
        raise ModelError(f"{path}: not a digitlab checkpoint (format {header.get('format')!r})")
    problem = _header_problem(header, arrays)
    if problem:
        raise ModelError(f"{path}: damaged checkpoint: {problem}")
    return header, arrays


def _number(value: Any, whole: bool = False, optional: bool = False) -> bool:
    if value is None:
        return optional
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return not whole or (isinstance(value, int) and value >= 0)


# the header's tables and the loop state's fields, with what each must hold
_TABLES = ("config", "model", "optimizer", "rng", "state", "history")
_STATE_FIELDS = {
    "epoch": {"whole": True},
    "batch": {"whole": True},
    "total_loss": {},
    "correct": {"whole": True},
    "first_loss": {"optional": True},
    "best_loss": {"optional": True},
    "since_best": {"whole": True},
    "best_count": {"whole": True},
}


def _header_problem(header: dict[str, Any], arrays: dict[str, np.ndarray]) -> str | None:
    """What is wrong with a checkpoint header's structure (each part the type the writer
    writes), or None; so that a damaged header is refused on loading, not mid-training."""
    for key in _TABLES:
        if not isinstance(header.get(key), dict):
            return f"{key} is not a table"
    state, history, optimizer = header["state"], header["history"], header["optimizer"]
    for key, kinds in _STATE_FIELDS.items():
        if not _number(state.get(key), **kinds):
            return f"state.{key} is {state.get(key)!r}"
    missing = [i for i in range(state["best_count"]) if f"state/best/{i}" not in arrays]
    if missing:
        return f"state/best/{missing[0]} is missing"
    if not all(isinstance(header["rng"].get(k), dict) for k in ("shuffle", "dropout", "augment")):
        return "rng needs the shuffle, dropout and augment states"
    records = history.get("records")
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        return "history.records is not a list of tables"
    if not _number(history.get("best_epoch"), whole=True, optional=True):
        return f"history.best_epoch is {history.get('best_epoch')!r}"
    if not isinstance(history.get("stopped_early"), bool):
        return "history.stopped_early is not true or false"
    steps = optimizer.get("steps", {})
    if not _number(optimizer.get("learning_rate")) or not (
        isinstance(steps, dict) and all(_number(v, whole=True) for v in steps.values())
    ):
        return "optimizer needs a learning_rate and whole step counts"
    monitors = header.get("monitors", [])
    if not isinstance(monitors, list) or not all(
        isinstance(m, dict) and isinstance(m.get("kind"), str) and isinstance(m.get("state"), dict)
        for m in monitors
    ):
        return "monitors is not a list of {kind, state} tables"
    return None


def _like(saved: Any, fresh: Any) -> bool:
    """Whether a monitor's saved state has the form of a fresh one's: the same keys, numbers
    where it has numbers, tables of numbers (or of lists of numbers) where it has tables."""
    if isinstance(fresh, dict):
        if not isinstance(saved, dict):
            return False
        if not fresh:  # a table filled while training: its values are numbers or number lists
            return all(
                _number(v) or (isinstance(v, list) and all(_number(x) for x in v))
                for v in saved.values()
            )
        return saved.keys() == fresh.keys() and all(_like(saved[k], fresh[k]) for k in fresh)
    if fresh is None or _number(fresh):
        return _number(saved, optional=True) and (fresh is None or not isinstance(fresh, bool))
    if isinstance(fresh, bool):
        return isinstance(saved, bool)
    return isinstance(saved, type(fresh))


def restore_session(
    header: dict[str, Any],
    arrays: dict[str, np.ndarray],
    optimizer: Optimizer,
    monitors: list[Any] | None = None,
) -> Session:
    """Rebuild the Session a checkpoint holds (as `read_checkpoint` returns it); `optimizer`
    and `monitors` are fresh ones of the kinds the run used, given their saved state here.
    Anything that does not fit is a one-line ModelError."""
    try:
        return _restore(header, arrays, optimizer, monitors)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, OverflowError) as err:
        # a field the header checks do not cover (a random generator's inner state, ...)
        name = f"{type(err).__name__}: {err}" if isinstance(err, KeyError) else str(err)
        raise ModelError(f"checkpoint: damaged header ({name.splitlines()[0]})") from None


def _restore(
    header: dict[str, Any],
    arrays: dict[str, np.ndarray],
    optimizer: Optimizer,
    monitors: list[Any] | None = None,
) -> Session:
    model = rebuild(header["model"], arrays, "checkpoint", prefix="model/")
    optimizer.load_state_dict(_flat_optimizer_state(header["optimizer"], arrays, model))
    shuffle_rng, dropout_rng, augment_rng = (np.random.default_rng() for _ in range(3))
    shuffle_rng.bit_generator.state = header["rng"]["shuffle"]
    dropout_rng.bit_generator.state = header["rng"]["dropout"]
    augment_rng.bit_generator.state = header["rng"]["augment"]
    for lay in model.layers:
        if hasattr(lay, "rng"):
            lay.rng = dropout_rng
    saved = header["state"]
    state = TrainState(
        epoch=saved["epoch"],
        batch=saved["batch"],
        order=arrays.get("state/order"),
        total_loss=saved["total_loss"],
        correct=saved["correct"],
        first_loss=saved["first_loss"],
        best_loss=saved["best_loss"],
        since_best=saved["since_best"],
        best_weights=[arrays[f"state/best/{i}"] for i in range(saved["best_count"])] or None,
    )
    history = History()
    for record in header["history"]["records"]:
        history.append(record)
    history.best_epoch = header["history"]["best_epoch"]
    history.stopped_early = header["history"]["stopped_early"]
    monitors = list(monitors or [])
    saved_monitors = header.get("monitors", [])  # none in checkpoints written before them
    if saved_monitors and [m["kind"] for m in saved_monitors] != [
        type(m).__name__ for m in monitors
    ]:
        raise ModelError(
            f"the checkpoint's monitors {[m['kind'] for m in saved_monitors]} are not the run's "
            f"{[type(m).__name__ for m in monitors]}"
        )
    for monitor, saved_monitor in zip(monitors, saved_monitors, strict=False):
        if not _like(saved_monitor["state"], monitor.state_dict()):
            raise ModelError(f"checkpoint: the {saved_monitor['kind']} monitor's state is damaged")
        monitor.load_state_dict(saved_monitor["state"])
    return Session(
        model, optimizer, shuffle_rng, dropout_rng, state, history, augment_rng, monitors
    )


def _flat_optimizer_state(
    saved: dict[str, Any], arrays: dict[str, np.ndarray], model: Sequential
) -> dict[str, Any]:
    """The optimizer's state as it keeps it (flat arrays laid out like theta, one step count)
    from the checkpoint's arrays by parameter name, 'optimizer/dense1.w/m'."""
    keys = {key.rsplit("/", 1)[1] for key in arrays if key.startswith("optimizer/")}
    flat: dict[str, np.ndarray] = {}
    for key in sorted(keys):
        flat[key] = np.zeros_like(model.theta)
        for name, view in model.views(flat[key]).items():
            value = arrays.get(f"optimizer/{name}/{key}")
            if value is None or value.shape != view.shape or value.dtype != view.dtype:
                raise ModelError(f"checkpoint: optimizer state {name}/{key} missing or misshapen")
            view[...] = value
    # Adam's checkpoints counted the steps per parameter (all equal); the others had no count
    steps = max(saved.get("steps", {}).values(), default=0)
    return {"learning_rate": saved["learning_rate"], "steps": steps, "arrays": flat}
