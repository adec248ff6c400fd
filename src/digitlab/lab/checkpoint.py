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


def save_checkpoint(folder: Path, config: dict[str, Any], session: Session) -> Path:
    """Write RUN/checkpoint.npz atomically and return its path."""
    state, history, optimizer = session.state, session.history, session.optimizer
    arrays: dict[str, np.ndarray] = {}
    for name, param, _ in session.model.parameters():
        arrays[f"model/{name}"] = param
    for name, buffer in session.model.buffers():
        arrays[f"model/{name}"] = buffer
    optimizer_state = optimizer.state_dict()
    for key, value in optimizer_state.pop("arrays").items():
        arrays[f"optimizer/{key}"] = value
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
    return header, arrays


def restore_session(
    header: dict[str, Any], arrays: dict[str, np.ndarray], optimizer: Optimizer
) -> Session:
    """Rebuild the Session a checkpoint holds; `optimizer` is a fresh one of the right kind."""
    model = rebuild(header["model"], arrays, "checkpoint", prefix="model/")
    optimizer_state = dict(header["optimizer"])
    optimizer_state["arrays"] = {
        key.removeprefix("optimizer/"): value
        for key, value in arrays.items()
        if key.startswith("optimizer/")
    }
    optimizer.load_state_dict(optimizer_state)
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
    return Session(model, optimizer, shuffle_rng, dropout_rng, state, history, augment_rng)
