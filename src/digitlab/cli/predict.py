"""`digitlab predict MODEL IMAGE...`: a saved model's answer for image files.

Each image is prepared as `--data folder` prepares its images (data/folder.py: ink, the MNIST
box centred by mass, the model's image size; the 8x8 digits' block counts for a model of the
8x8 digits), then goes through the data pipeline saved with the model (crop, invert,
standardize with the training set's statistics), exactly as the training images did.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
import numpy as np

from digitlab.cli.complete import run_folders
from digitlab.cli.output import err_console
from digitlab.core.evaluation import predict_logits
from digitlab.core.losses import softmax
from digitlab.data.folder import image_row
from digitlab.errors import DataError, ModelError


@click.command("predict")
@click.argument("model_path", metavar="MODEL", shell_complete=run_folders)
@click.argument("images", metavar="IMAGE...", nargs=-1, required=True, type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print one JSON list instead of lines.")
def predict(model_path: str, images: tuple[str, ...], as_json: bool) -> None:
    """Classify image files with a saved model (a run folder or model file).

    Prints one line per image: its answer, that answer's probability, then every class's
    probability. An image that cannot be read is one line on stderr naming it; the others are
    still classified, and the exit code is then 1.
    """
    # the studio's loader: model, restored pipeline, raw image shape and style, class names
    from digitlab.studio.model_api import load_run_model

    if not Path(model_path).exists():
        raise ModelError(f"{model_path}: no such run folder or model file")
    run = load_run_model(Path(model_path))
    rows, read, failed = [], [], []
    for image in images:
        try:
            rows.append(image_row(image, run.raw_shape, run.max_value, run.style))
            read.append(image)
        except DataError as err:
            failed.append({"image": image, "error": str(err)})
            err_console.print(f"digitlab: error: {err}", markup=False)
    results: list[dict[str, Any]] = []
    if rows:
        x = run.pipeline(np.stack(rows))
        probs = softmax(predict_logits(run.model, x).astype(np.float64))
        names = run.class_names or [str(k) for k in range(probs.shape[1])]
        for image, p in zip(read, probs, strict=True):
            best = int(p.argmax())
            results.append(
                {
                    "image": image,
                    "answer": names[best],
                    "label": best,
                    "probability": float(p[best]),
                    "probabilities": {name: float(q) for name, q in zip(names, p, strict=True)},
                }
            )
    if as_json:
        order = {image: k for k, image in enumerate(images)}
        merged = sorted(results + failed, key=lambda entry: order[entry["image"]])
        click.echo(json.dumps(merged, indent=1))
    else:
        for entry in results:
            spread = " ".join(f"{name}:{q:.3f}" for name, q in entry["probabilities"].items())
            answer = f"{entry['answer']} ({entry['probability']:.1%})"
            click.echo(f"{entry['image']}: {answer}  {spread}")
    if failed:
        sys.exit(1)
