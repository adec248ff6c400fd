"""Per-layer scales of a recipe's net: activation std, weight-gradient norm, exact zeros (Q9, Q4).

    .venv/bin/python scripts/layer_scales.py RECIPE [--set KEY=VALUE ...] [--trained] [--batch N]

Builds the net a recipe (a train config TOML) describes with its seed, takes the first N
training images (default 500), runs one forward and backward pass and prints per hidden layer:
the std of its activation output, the norm of its weight gradient, and the share of
pre-activations z that are exactly 0 (where ReLU's `>` and `>=` differ). With --trained it
trains the recipe first (into a temporary folder) and measures the trained net. --set
overrides a key (a TOML value: --set 'init={name="normal",std=0.001}' --set hidden=[32,32]).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import tomllib
from pathlib import Path

import numpy as np

from digitlab.core.layers import Activation
from digitlab.core.losses import get_loss
from digitlab.errors import DigitlabError
from digitlab.lab.config import make_config, read_config_file
from digitlab.lab.experiment import build_from_config, prepare_data, run


def scales(model, x: np.ndarray, y: np.ndarray, loss: str) -> list[tuple[str, float, float, float]]:
    """(layer, activation std, the weight-gradient norm of the dense layer before it, share of
    z exactly 0) for every activation layer, from one training forward and backward pass."""
    logits = model.forward(x, training=True)
    _, dlogits = get_loss(loss)(logits, y)
    model.backward(dlogits)
    rows, last_dense = [], None
    for layer in model.layers:
        if "w" in layer.params:
            last_dense = layer
        if isinstance(layer, Activation) and layer.z is not None and layer.a is not None:
            # in float64: squaring float32 values below 1e-19 would underflow to 0
            dw = last_dense.grads["w"].astype(np.float64) if last_dense else np.full(1, np.nan)
            zeros = float((layer.z == 0).mean())
            rows.append(
                (
                    layer.name,
                    float(layer.a.astype(np.float64).std()),
                    float(np.linalg.norm(dw)),
                    zeros,
                )
            )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipe", type=Path)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--trained", action="store_true")
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args(argv)
    try:
        values = read_config_file(args.recipe)
        for item in args.set:
            key, _, text = item.partition("=")
            try:
                values[key] = tomllib.loads(f"v = {text}")["v"]
            except tomllib.TOMLDecodeError:
                values[key] = text
        config = make_config(values)
        if args.trained:
            with tempfile.TemporaryDirectory() as folder:
                result = run(config, Path(folder) / "run")
            model, prepared = result.model, result.prepared
        else:
            prepared = prepare_data(config)
            model = build_from_config(config, prepared.splits.train.x.shape[1], prepared.n_classes)
    except DigitlabError as err:
        print(f"layer_scales: error: {err}", file=sys.stderr)
        return 1
    x, y = prepared.splits.train.x[: args.batch], prepared.splits.train.y[: args.batch]
    print(f"{args.recipe} {' '.join(args.set)} ({'trained' if args.trained else 'at init'})")
    print("layer        activation std   weight-grad norm   z exactly 0")
    for name, std, grad, zeros in scales(model, x, y, config.loss):
        print(f"{name:12} {std:14.3g} {grad:18.3g} {100 * zeros:12.2f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
