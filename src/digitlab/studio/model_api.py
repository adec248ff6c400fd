"""The studio's model views: predict a drawing, look inside the network, compare runs.

Everything reads run folders (model.npz with its saved data pipeline, config.json,
predictions.npz, history.jsonl); nothing trains. A drawing goes through
digitlab.data.drawing (the dataset's own size normalisation) and then through the run's fitted
pipeline, so the network sees it exactly as it saw its training images. Routes (mounted under
/api/ by studio.app) take run ids as query parameters and answer JSON; a DigitlabError becomes
a 400 with its one-line message.

- POST predict?run=ID: {"pixels", "width", "height"} or a PNG -> input, probabilities, answer.
- POST inside?run=ID: the same, or {"test_index": i}; optional {"off": {node: [unit, ...]}},
  {"weights": false} -> every layer's activations, first-layer weights, top units, flags.
- GET testdigit?run=ID&index=i: one test digit as the network sees it, and its answer.
- GET compare?runs=ID,ID[,...]: accuracies with intervals, per-class accuracies, curves and,
  per pair, the digits one gets right and the other wrong with McNemar's exact p-value.
"""

from __future__ import annotations

import functools
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from digitlab.core.layers import Activation, Dense, Reshape
from digitlab.core.losses import softmax
from digitlab.core.model import INPUT, Model
from digitlab.data.drawing import ink_from_image, prepare_drawing
from digitlab.data.transforms import Pipeline
from digitlab.diagnostics.monitors import SATURATED
from digitlab.errors import DataError, DigitlabError, ModelError
from digitlab.lab.config import make_config
from digitlab.lab.experiment import prepare_data, raw_splits
from digitlab.lab.modelfile import MODEL_FILE, load_model, restore_pipeline
from digitlab.report.runfolder import read_run
from digitlab.stats import mcnemar_exact, wilson_interval
from digitlab.studio.paths import resolve_run

MAX_SIDE = 2048  # largest drawing or image side accepted
FLAG_SAMPLE = 1000  # test digits on which dead and saturated units are judged
TOP_UNITS = 10
SHOWN_DIGITS = 24  # discordant test digits per side whose images a comparison sends
DIGITS = 4  # decimals kept in the JSON answers (display only)

# the config keys that decide a run's test set (and its train/val split, which make_splits
# checks); the test set alone is cached, so runs of one dataset share it
TEST_SET_KEYS = (
    "data",
    "data_dir",
    "cache_dir",
    "image_size",
    "split",
    "val_fraction",
    "seed",
    "train_per_class",
    "train_first",
)

# ----------------------------------------------------------------- a run's model and its data


@dataclass
class RunModel:
    """A run's model and everything needed to feed it new images."""

    folder: Path
    model: Model
    config: dict[str, Any]
    pipeline: Pipeline
    raw_shape: tuple[int, int]  # the dataset's images before the pipeline
    max_value: float
    style: str  # drawing.STYLES
    input_shape: tuple[int, int] | None  # the network's input as an image (None: not one)
    class_names: list[str] | None = None  # label i's name (a folder of named classes)


def load_run_model(folder: Path) -> RunModel:
    """The run's model and fitted pipeline (cached until model.npz changes); `folder` may
    also be a model file itself."""
    path = folder if folder.is_file() else folder / MODEL_FILE
    if not path.is_file():
        raise ModelError(f"{folder.name}: no model yet (the run has not finished)")
    return _load_run_model(path, path.stat().st_mtime_ns)


@functools.lru_cache(maxsize=8)
def _load_run_model(path: Path, mtime: int) -> RunModel:
    model, extra = load_model(path)
    config = extra.get("config", {})
    record = extra.get("pipeline")
    if record is None:
        # runs saved before model files kept their pipeline: refit it on the training data
        record = prepare_data(make_config(config)).pipeline
        assert record is not None
    pipeline = restore_pipeline(config, record)
    raw_shape = (int(record["image_shape"][0]), int(record["image_shape"][1]))
    n_features = pipeline(np.zeros((1, raw_shape[0] * raw_shape[1]))).shape[1]
    if n_features != model.input_size:
        raise ModelError(
            f"{path}: the data pipeline gives {n_features} features, the model takes "
            f"{model.input_size}"
        )
    style = "digits" if config.get("data") == "digits" else "mnist"
    return RunModel(
        path.parent,
        model,
        config,
        pipeline,
        raw_shape,
        float(record["max_value"]),
        style,
        pipeline.output_shape(raw_shape),
        record.get("class_names"),
    )


@functools.lru_cache(maxsize=4)
def _load_test_set(config_json: str) -> tuple[np.ndarray, np.ndarray]:
    _, splits = raw_splits(make_config(json.loads(config_json)))
    return splits.test.x, splits.test.y


def load_test_set(run: RunModel) -> tuple[np.ndarray, np.ndarray]:
    """The run's raw test images (n, features) and labels, in predictions.npz's order."""
    return _load_test_set(
        json.dumps({k: run.config.get(k) for k in TEST_SET_KEYS if k in run.config})
    )


def pick_test_digit(run: RunModel, index: int) -> tuple[np.ndarray, int]:
    x, y = load_test_set(run)
    if not 0 <= index < len(y):
        raise DataError(f"test digit {index} does not exist (the test set has {len(y)})")
    return x[index], int(y[index])


# ------------------------------------------------------------------------------ predicting


def drawing_to_raw(run: RunModel, image: np.ndarray) -> np.ndarray:
    """A drawing (height, width; ink high) as one raw dataset row (1, features)."""
    raw = prepare_drawing(image, run.raw_shape, run.max_value, run.style)
    return raw.reshape(1, -1)


def display(run: RunModel, x: np.ndarray, raw: np.ndarray) -> list[list[float]]:
    """The network's input row as a 2-D image in 0..1 (standardized inputs are stretched from
    their minimum to maximum; an input that is no image any more shows its raw image)."""
    if run.input_shape is None:
        image = raw.reshape(run.raw_shape) / run.max_value
    else:
        image = x.reshape(run.input_shape).astype(np.float64)
        if run.config.get("standardize"):
            low, high = image.min(), image.max()
            image = (image - low) / (high - low) if high > low else np.zeros_like(image)
    return _rounded(np.clip(image, 0, 1))


def forward_all(
    model: Model, x: np.ndarray, off: dict[str, list[int]] | None = None
) -> dict[str, np.ndarray]:
    """Every node's output for rows x, with the units in `off` (node -> units along axis 1:
    features of flat outputs, channels of images) set to zero before later nodes read them."""
    off = off or {}
    values: dict[str, np.ndarray] = {INPUT: x}
    for node in model.nodes:
        inputs = [values[name] for name in node.inputs]
        multi = getattr(node.layer, "multi_input", False)
        out = node.layer.forward(inputs if multi else inputs[0], False)
        if node.name in off:
            out = np.array(out)
            out[:, off[node.name]] = 0
        values[node.name] = out
    return values


def check_off(model: Model, off: Any) -> dict[str, list[int]]:
    """{node: [unit, ...]} checked against the model's nodes and their widths."""
    if off is None:
        return {}
    if not isinstance(off, dict):
        raise DataError('"off" must map node names to lists of units')
    widths = _widths(model)
    checked: dict[str, list[int]] = {}
    for name, units in off.items():
        if name not in widths:
            raise DataError(f"no node {name!r} to switch units off in; nodes: {', '.join(widths)}")
        if not isinstance(units, list) or not all(
            isinstance(u, int) and not isinstance(u, bool) for u in units
        ):
            raise DataError(f'"off" of {name!r} must be a list of unit numbers')
        bad = [u for u in units if not 0 <= u < widths[name]]
        if bad:
            raise DataError(f"{name} has units 0..{widths[name] - 1}; no unit {bad[0]}")
        checked[name] = sorted(set(units))
    return checked


def _widths(model: Model) -> dict[str, int]:
    """Units per node: features of a flat output, channels of an image."""
    values = forward_all(model, np.zeros((1, model.input_size), model.dtype))
    return {node.name: values[node.name].shape[1] for node in model.nodes}


def answer(model: Model, values: dict[str, np.ndarray]) -> tuple[list[float], int]:
    """Class probabilities (softmax of the output, as evaluation computes them) and the answer."""
    probs = softmax(values[model.output].astype(np.float64))[0]
    return _rounded(probs, 6), int(probs.argmax())


def predict(run: RunModel, image: np.ndarray) -> dict[str, Any]:
    """What the network makes of a drawing: its input, class probabilities and answer."""
    raw = drawing_to_raw(run, image)
    x = run.pipeline(raw)
    probs, best = answer(run.model, forward_all(run.model, x))
    return {"input": display(run, x, raw), "probabilities": probs, "answer": best}


# ------------------------------------------------------------------------------- inside


def inside(
    run: RunModel,
    raw: np.ndarray,
    off: dict[str, list[int]] | None = None,
    weights: bool = True,
) -> dict[str, Any]:
    """Every layer's activations for one raw input row, with units in `off` switched off.

    layers: per node (reshapes and dropout left out) its kind, shape and either `values` (flat
    outputs) or `maps` (one 2-D map per channel), with the activation layers' dead and
    saturated units (judged on FLAG_SAMPLE test digits) and the units switched off.
    top_units: the units feeding the output layer that push the answer up most, by activation
    x outgoing weight toward it. weights: the first layer's weights as images.
    probabilities/answer are with the units off, baseline without.
    """
    model = run.model
    x = run.pipeline(raw)
    values = forward_all(model, x, off)
    probs, best = answer(model, values)
    base_probs, base_best = answer(model, forward_all(model, x)) if off else (probs, best)
    flags, flags_note = unit_flags(run)
    layers = []
    for node in model.nodes:
        if isinstance(node.layer, Reshape) or type(node.layer).__name__ == "Dropout":
            continue
        out = values[node.name][0]
        entry: dict[str, Any] = {
            "name": node.name,
            "kind": type(node.layer).__name__,
            "activation": getattr(node.layer, "activation", None),
            "shape": list(out.shape),
            "off": (off or {}).get(node.name, []),
            **flags.get(node.name, {"dead": [], "saturated": []}),
        }
        if out.ndim == 3:
            entry["maps"] = _rounded(out)
        else:
            entry["values"] = _rounded(out.reshape(-1))
        layers.append(entry)
    return {
        "input": display(run, x, raw),
        "layers": layers,
        "top_units": top_units(model, values, best),
        "weights": first_weights(run) if weights else None,
        "flags_note": flags_note,
        "probabilities": probs,
        "answer": best,
        "baseline": {"probabilities": base_probs, "answer": base_best},
    }


def _source(model: Model, name: str) -> str:
    """The node whose output `name` passes on unchanged at evaluation (through reshapes and
    dropout), or `name` itself."""
    nodes = {node.name: node for node in model.nodes}
    while name in nodes and (
        isinstance(nodes[name].layer, Reshape) or type(nodes[name].layer).__name__ == "Dropout"
    ):
        name = nodes[name].inputs[0]
    return name


def top_units(model: Model, values: dict[str, np.ndarray], target: int) -> list[dict[str, Any]]:
    """The TOP_UNITS inputs of the output's dense layer with the largest activation x weight
    toward class `target` (its share of that logit); empty when the dense layer reads the data."""
    nodes = {node.name: node for node in model.nodes}
    name = model.output
    if isinstance(nodes[name].layer, Activation):  # an output activation: the dense below it
        name = nodes[name].inputs[0]
    node = nodes.get(name)
    if node is None or not isinstance(node.layer, Dense) or _source(model, node.inputs[0]) == INPUT:
        return []
    a = values[node.inputs[0]][0].astype(np.float64)  # (units,)
    w = node.layer.params["w"][:, target].astype(np.float64)
    contribution = a * w
    order = np.argsort(-contribution, kind="stable")[:TOP_UNITS]
    return [
        {
            "layer": node.inputs[0],
            "unit": int(k),
            "activation": round(float(a[k]), DIGITS),
            "weight": round(float(w[k]), DIGITS),
            "contribution": round(float(contribution[k]), DIGITS),
        }
        for k in order
    ]


def unit_flags(run: RunModel) -> tuple[dict[str, dict[str, list[int]]], str | None]:
    """Per activation node, its dead units (output and f'(z) both 0 on every sampled test
    digit, at every position of a channel) and saturated ones (output not 0 yet |f'(z)| <
    SATURATED on 95% or more of them), judged on FLAG_SAMPLE test digits; a note when the test
    set cannot be read."""
    try:
        return _unit_flags(run.folder / MODEL_FILE, (run.folder / MODEL_FILE).stat().st_mtime_ns)
    except DigitlabError as err:
        return {}, f"dead and saturated units not judged: {err}"


@functools.lru_cache(maxsize=8)
def _unit_flags(path: Path, mtime: int) -> tuple[dict[str, dict[str, list[int]]], None]:
    run = _load_run_model(path, mtime)
    x_raw, _ = load_test_set(run)
    x = run.pipeline(x_raw[:FLAG_SAMPLE])
    values = forward_all(run.model, x)
    flags: dict[str, dict[str, list[int]]] = {}
    for node in run.model.nodes:
        lay = node.layer
        if not isinstance(lay, Activation) or lay.df is None:
            continue
        slope = np.abs(lay.df(values[node.inputs[0]], **lay.fparams))
        slope = np.moveaxis(slope, 1, 0).reshape(slope.shape[1], -1)  # (units, examples...)
        a = values[node.name]
        a = np.moveaxis(a, 1, 0).reshape(a.shape[1], -1)
        # dead: no output and no gradient ever (a ReLU below zero); saturated: an output
        # pinned where f' is flat (a sigmoid at 1 has f'(z) = 0 in float32, yet is not dead;
        # a ReLU that is merely off never counts as saturated)
        dead = ((slope == 0) & (a == 0)).all(axis=1)
        saturated = ((slope < SATURATED) & (a != 0)).mean(axis=1) >= 0.95
        flags[node.name] = {
            "dead": np.flatnonzero(dead).tolist(),
            "saturated": np.flatnonzero(saturated & ~dead).tolist(),
        }
    return flags, None


def first_weights(run: RunModel) -> dict[str, Any] | None:
    """The first layer's weights as images: one per dense unit (its weights on the input
    image) or per conv filter (channels averaged), each scaled by its largest magnitude to
    whole numbers -127..127 (`scale` gives that magnitude back)."""
    model = run.model
    for node in model.nodes:
        if not node.layer.params:
            continue
        if _source(model, node.inputs[0]) != INPUT:
            return None
        w = node.layer.params["w"].astype(np.float64)
        if isinstance(node.layer, Dense):
            if run.input_shape is None:
                return None
            images = w.T.reshape(w.shape[1], *run.input_shape)
        elif w.ndim == 4:  # conv: (kh, kw, channels, filters)
            images = w.mean(axis=2).transpose(2, 0, 1)
        else:
            return None
        scale = np.abs(images).reshape(len(images), -1).max(axis=1)
        quantized = np.rint(127 * images / np.where(scale > 0, scale, 1)[:, None, None])
        return {
            "layer": node.name,
            "shape": list(images.shape[1:]),
            "images": quantized.astype(int).reshape(len(images), -1).tolist(),
            "scale": _rounded(scale, 6),
        }
    return None


# ------------------------------------------------------------------------------ comparing


def compare(runs: dict[str, Path], images: bool = True) -> dict[str, Any]:
    """Two or more runs on their common test set: accuracies with 95% Wilson intervals,
    per-class accuracies, training curves and, per pair, the discordant test digits with
    McNemar's exact p-value. Runs tested on different test sets are a DataError."""
    if len(runs) < 2:
        raise DataError("compare needs two or more runs")
    read = {run_id: read_run(folder) for run_id, folder in runs.items()}
    summaries, test_sets = [], {}
    for run_id, folder in read.items():
        if folder.predictions is None:
            raise DataError(f"{run_id}: no predictions.npz (rerun it to compare)")
        y, pred = folder.predictions["y"], folder.predictions["pred"]
        test_sets[run_id] = (_test_set_name(folder.config), y)
        correct = int((pred == y).sum())
        low, high = wilson_interval(correct, len(y))
        per_class = [
            float((pred[y == k] == k).mean()) if (y == k).any() else None
            for k in range(int(y.max()) + 1)
        ]
        curve_keys = ("train_loss", "val_loss", "train_accuracy", "val_accuracy")
        summaries.append(
            {
                "id": run_id,
                "name": folder.path.name,
                "config": {
                    "data": folder.config.get("data"),
                    "hidden_sizes": folder.config.get("hidden_sizes", folder.config.get("hidden")),
                    "activation": folder.config.get("activation"),
                },
                "n": len(y),
                "correct": correct,
                "accuracy": correct / len(y),
                "interval": [low, high],
                "per_class": per_class,
                "curves": {
                    key: [row.get(key) for row in folder.history]
                    for key in curve_keys
                    if any(key in row for row in folder.history)
                },
            }
        )
    ids = list(read)
    first_name, first_y = test_sets[ids[0]]
    for run_id in ids[1:]:
        name, y = test_sets[run_id]
        if name != first_name or len(y) != len(first_y) or not np.array_equal(y, first_y):
            raise DataError(
                f"{ids[0]} and {run_id} were tested on different test sets ({first_name}, "
                f"{len(first_y)} digits vs {name}, {len(y)}): compare runs of one test set"
            )
    pairs: list[dict[str, Any]] = []
    for i, a in enumerate(ids):
        for b in ids[i + 1 :]:
            right_a = read[a].predictions["pred"] == first_y  # type: ignore[index]
            right_b = read[b].predictions["pred"] == first_y  # type: ignore[index]
            a_only, b_only = np.flatnonzero(right_a & ~right_b), np.flatnonzero(~right_a & right_b)
            pairs.append(
                {
                    "a": a,
                    "b": b,
                    "a_only": a_only.tolist(),
                    "b_only": b_only.tolist(),
                    "p_value": mcnemar_exact(len(a_only), len(b_only)),
                }
            )
    result: dict[str, Any] = {"runs": summaries, "pairs": pairs, "labels": None, "images": None}
    if images:
        shown = sorted(
            {int(k) for p in pairs for k in p["a_only"][:SHOWN_DIGITS]}
            | {int(k) for p in pairs for k in p["b_only"][:SHOWN_DIGITS]}
        )
        result["labels"] = {str(k): int(first_y[k]) for k in shown}
        try:
            run = load_run_model(runs[ids[0]])
            x, _ = load_test_set(run)
            result["images"] = {str(k): (x[k] / run.max_value).round(3).tolist() for k in shown}
            result["image_shape"] = list(run.raw_shape)
        except DigitlabError:
            pass  # the test images cannot be read here: the page lists indices only
    return result


def _test_set_name(config: dict[str, Any]) -> str:
    """The run's test set as words: the dataset and, for the book split, its second half."""
    name = str(config.get("data"))
    return f"{name} (book split: second half)" if config.get("split") == "book" else name


def _rounded(a: np.ndarray, digits: int = DIGITS) -> Any:
    return np.round(np.asarray(a, dtype=np.float64), digits).tolist()


# ------------------------------------------------------------------------------ requests


def image_from_png(data: bytes) -> np.ndarray:
    """An uploaded PNG as ink (high = ink, 0..255)."""
    from PIL import Image, UnidentifiedImageError  # Pillow comes with matplotlib

    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.width > MAX_SIDE or image.height > MAX_SIDE:
                raise DataError(f"the image is larger than {MAX_SIDE}x{MAX_SIDE} pixels")
            return ink_from_image(image)
    except (UnidentifiedImageError, OSError, ValueError) as err:
        raise DataError(f"not a readable PNG image ({err})") from None


def image_from_json(body: dict[str, Any]) -> np.ndarray:
    """{"pixels": [...], "width": W, "height": H}: grayscale 0..255, row-major, ink high."""
    width, height, pixels = body.get("width"), body.get("height"), body.get("pixels")
    if not all(isinstance(v, int) and 0 < v <= MAX_SIDE for v in (width, height)):
        raise DataError(f"width and height must be whole numbers 1..{MAX_SIDE}")
    assert isinstance(width, int) and isinstance(height, int)
    if not isinstance(pixels, list) or len(pixels) != width * height:
        raise DataError(f"pixels must be a list of width x height = {width * height} numbers")
    try:
        image = np.asarray(pixels, dtype=np.float64).reshape(height, width)
    except (TypeError, ValueError):
        raise DataError("pixels must be numbers 0..255") from None
    if not np.isfinite(image).all() or image.min() < 0 or image.max() > 255:
        raise DataError("pixels must be numbers 0..255")
    return image


async def _body(request: Request) -> tuple[np.ndarray | None, dict[str, Any]]:
    """The request's drawing (a PNG body, or JSON pixels) and the rest of its JSON body."""
    if request.headers.get("content-type", "").split(";")[0].strip() == "image/png":
        return image_from_png(await request.body()), {}
    try:
        body = json.loads(await request.body() or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise DataError("the request body is not JSON (or a PNG image)") from None
    if not isinstance(body, dict):
        raise DataError("the request body must be a JSON object")
    return (image_from_json(body) if "pixels" in body else None), body


def _run(request: Request) -> RunModel:
    folders = request.app.state.studio.folders
    return load_run_model(resolve_run(folders, request.query_params.get("run")))


def _index(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise DataError(f"a test digit's index must be a whole number, got {value!r}") from None


async def predict_route(request: Request) -> Response:
    run = _run(request)
    image, _ = await _body(request)
    if image is None:
        raise DataError('send {"pixels": [...], "width": W, "height": H} or a PNG image')
    return JSONResponse(await run_in_threadpool(predict, run, image))


async def inside_route(request: Request) -> Response:
    run = _run(request)
    image, body = await _body(request)
    if image is not None:
        raw = drawing_to_raw(run, image)
    elif "test_index" in body:
        raw = pick_test_digit(run, _index(body["test_index"]))[0][None, :]
    else:
        raise DataError('send a drawing ({"pixels", "width", "height"} or a PNG) or "test_index"')
    off = check_off(run.model, body.get("off"))
    weights = bool(body.get("weights", True))
    return JSONResponse(await run_in_threadpool(inside, run, raw, off, weights))


async def testdigit_route(request: Request) -> Response:
    run = _run(request)
    index = _index(request.query_params.get("index"))

    def work() -> dict[str, Any]:
        image, label = pick_test_digit(run, index)
        raw = image[None, :]
        x = run.pipeline(raw)
        probs, best = answer(run.model, forward_all(run.model, x))
        return {
            "index": index,
            "label": label,
            "count": len(load_test_set(run)[1]),
            "input": display(run, x, raw),
            "probabilities": probs,
            "answer": best,
        }

    return JSONResponse(await run_in_threadpool(work))


async def compare_route(request: Request) -> Response:
    folders = request.app.state.studio.folders
    ids = [i for i in request.query_params.get("runs", "").split(",") if i]
    runs = {run_id: resolve_run(folders, run_id) for run_id in dict.fromkeys(ids)}
    return JSONResponse(await run_in_threadpool(compare, runs))


def routes() -> list[Route]:
    """The model API's routes, mounted under /api/ by studio.app."""
    return [
        Route("/predict", predict_route, methods=["POST"]),
        Route("/inside", inside_route, methods=["POST"]),
        Route("/testdigit", testdigit_route),
        Route("/compare", compare_route),
    ]
