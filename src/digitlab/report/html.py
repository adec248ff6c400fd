"""The run report: one self-contained HTML page drawn from a run folder, never from training.

`build_report(run)` reads the run folder (see runfolder.py), draws the figures (plots.py) and
writes RUN/report.html, with every image embedded as a base64 PNG data URI, and the same PNGs
under RUN/plots/, each file atomically. Every section has a fixed id (SECTION_IDS); a section
whose inputs are missing (an older run without predictions.npz, inputs that are not images)
keeps its id and says why it is empty. All text read from files is escaped.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any

import numpy as np

from digitlab.data.augment import augment_examples, build_augment
from digitlab.data.transforms import input_pixels
from digitlab.diagnostics.alarms import find
from digitlab.diagnostics.summary import summarize
from digitlab.errors import DigitlabError
from digitlab.lab.config import make_config, make_optimizer
from digitlab.lab.modelfile import MODEL_FILE, load_model, restore_pipeline
from digitlab.lab.runs import write_bytes, write_text
from digitlab.report import plots
from digitlab.report.losschange import loss_change_plot, read_loss_change
from digitlab.report.page import document, embed_png
from digitlab.report.runfolder import REPORT_SPLIT, SPLITS, ModelSummary, RunFolder, read_run

REPORT_FILE = "report.html"
PLOTS_DIR = "plots"
SECTION_IDS = (
    "summary",
    "layers",
    "accuracy",
    "curves",
    "confusion",
    "per-class",
    "hardest",
    "misclassified",
    "scatter",
    "weights",
    "pixels",
    "augmentation",
    "loss-change",
    "diagnostics",
)
PLOT_FILES = (
    "curves_loss.png",
    "curves_accuracy.png",
    "confusion.png",
    "per_class.png",
    "hardest.png",
    "misclassified.png",
    "scatter.png",
    "weights.png",
    "pixels.png",
    "monitors.png",
    "augmentation.png",
    "loss_change.png",
)
SPLIT_NAMES = {
    "train": "train",
    "val": "validation",
    "test": "test",
    "test_all": "validation + test",
}
NO_PREDICTIONS = (
    "This run folder has no predictions.npz (runs written before it existed lack it), so "
    "there are no per-example predictions to draw."
)


@dataclass
class Page:
    """The PNGs drawn so far, by file name, and the HTML sections, in order."""

    pngs: dict[str, bytes] = field(default_factory=dict)
    sections: list[str] = field(default_factory=list)

    def image(self, name: str, png: bytes, alt: str) -> str:
        """Keep `png` as plots/`name` and return an <img> embedding it."""
        self.pngs[name] = png
        return embed_png(png, alt)

    def section(self, section_id: str, title: str, body: str) -> None:
        self.sections.append(
            f'<section id="{section_id}">\n<h2>{escape(title)}</h2>\n{body}\n</section>'
        )


def build_report(run_dir: str | os.PathLike[str]) -> Path:
    """Write `run_dir`/report.html and `run_dir`/plots/*.png; return the report's path."""
    run = read_run(run_dir)
    page = Page()
    for add, section_id in zip(SECTIONS, SECTION_IDS, strict=True):
        if run.live is not None and add not in (_curves, _diagnostics):
            state = f"{run.live['state']} at epoch {run.live['epoch']} of {run.live['epochs']}"
            note = f"A snapshot: the run is {state}; this needs its final evaluation."
            page.section(section_id, section_id.replace("-", " ").capitalize(), _note(note))
        else:
            add(page, run)
    folder = run.path / PLOTS_DIR
    for name, png in page.pngs.items():
        write_bytes(folder / name, png)
    for name in set(PLOT_FILES) - set(page.pngs):  # a figure this run no longer has
        (folder / name).unlink(missing_ok=True)
    name = run.path.resolve().name
    html = document(
        f"digitlab report: {name}",
        f"digitlab run report: {name}",
        "\n".join(page.sections),
        nav=SECTION_IDS,
    )
    return write_text(run.path / REPORT_FILE, html)


def _note(text: str) -> str:
    """Why a section lacks something."""
    return f'<p class="note">{escape(text)}</p>'


def _caption(text: str) -> str:
    """How to read a figure."""
    return f'<p class="caption">{escape(text)}</p>'


def _entry(value: Any) -> str:
    """A registry entry from config.json ('relu' or {name, **params}) as 'name (k=v, ...)'."""
    if isinstance(value, dict):
        params = ", ".join(f"{k}={v}" for k, v in value.items() if k != "name")
        name = str(value.get("name", "?"))
        return f"{name} ({params})" if params else name
    return "default" if value is None else str(value)


def _table(header: list[str], rows: list[list[str]], numeric_from: int = 1) -> str:
    """An HTML table of already-escaped cells; columns from `numeric_from` on are right-aligned."""
    head = "".join(f"<th>{cell}</th>" for cell in header)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="num">{cell}</td>' if i >= numeric_from else f"<td>{cell}</td>"
            for i, cell in enumerate(row)
        )
        + "</tr>\n"
        for row in rows
    )
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}</tbody>\n</table>"


def _layer_text(spec: dict[str, Any]) -> str:
    """One layer dict as 'conv2d 32 3x3 (padding=1)', 'dense 100 (init=he)', 'relu'; a graph
    node as 'h2: dense 64 ← a1'."""
    spec = dict(spec)
    kind = str(spec.pop("type", "?"))
    node, inputs = spec.pop("name", None), spec.pop("inputs", None)
    if kind == "activation":  # a graph node names its activation `activation`, a stack `name`
        if "activation" in spec:
            activation = spec.pop("activation")
        else:
            activation, node = node, None
        kind, spec = _entry({"name": activation, **spec}), {}
    size = [str(spec.pop(key)) for key in ("units", "filters") if key in spec]
    if "kernel_size" in spec:
        kernel = spec.pop("kernel_size")
        size.append("x".join(map(str, kernel if isinstance(kernel, list) else [kernel, kernel])))
    params = ", ".join(f"{k}={v}" for k, v in spec.items())
    text = " ".join([kind, *size]) + (f" ({params})" if params else "")
    if node is not None:
        text = f"{node}: {text}"
    if inputs:
        text += " ← " + ", ".join(map(str, inputs if isinstance(inputs, list) else [inputs]))
    return text


def model_text(model: ModelSummary) -> str:
    """The saved model in one line: input size, each layer, output size, parameter count."""
    layers = " → ".join(_layer_text(layer) for layer in model.layers)
    return (
        f"input {model.input_size} → {layers} → output {model.output_size}; "
        f"{model.parameters:,} parameters, {model.dtype}"
    )


def _summary(page: Page, run: RunFolder) -> None:
    config = run.config
    get = config.get
    # config.json of older runs has the short names (lr), of newer ones the full words
    rate = get("learning_rate", get("lr", "?"))
    schedule = get("learning_rate_schedule", get("lr_schedule"))
    described = model_text(run.model) if run.model is not None else "(not saved yet)"
    model = described + (f", loss {get('loss')}" if get("loss") else "")
    transforms = [
        name if value is True else f"{name} {value}"
        for name in ("standardize", "per_pixel", "invert", "crop", "pixel_subset")
        if (value := get(name)) not in (None, False, 0)
    ]
    dataset = str(get("data", "?"))
    if get("data_dir"):
        dataset += f" from {get('data_dir')}"
    if get("train_per_class"):
        dataset += f", {get('train_per_class')} training examples per class"
    dataset += f"; transforms: {', '.join(transforms) or 'none'}"
    split = str(get("split", "?"))
    if split == "holdout":
        split += f" (validation fraction {get('val_fraction')})"
    penalties = [f"{k} {get(k)}" for k in ("l1", "l2") if get(k)]
    epochs = str(get("epochs", "?"))
    if isinstance(get("epochs"), int) and len(run.history) != get("epochs"):
        epochs += f" (ran {len(run.history)})"
    if get("patience"):
        epochs += f", early stopping patience {get('patience')}"
    batch = str(get("batch_size", "?"))
    if get("batch_ramp"):
        batch += f", ramp from {get('batch_ramp')}"
    rows = [
        ("dataset", dataset),
        ("split", split),
        ("model", model),
        ("optimizer", _entry(get("optimizer")) + "".join(f", {p}" for p in penalties)),
        ("learning rate", f"{rate}, schedule {_entry(schedule)}"),
        ("batch size", batch),
        ("epochs", epochs),
        ("seed", str(get("seed", "?"))),
    ]
    table = _table(["setting", "value"], [[escape(k), escape(v)] for k, v in rows], 2)
    raw = escape(json.dumps(config, indent=2))
    details = f"<details><summary>config.json</summary><pre>{raw}</pre></details>"
    page.section("summary", f"Run {run.path.resolve().name}", table + "\n" + details)


def _layers(page: Page, run: RunFolder) -> None:
    """The model summary: every node, its output shape and parameters, and the memory."""
    model, extra = load_model(run.path / MODEL_FILE)
    config = make_config(extra["config"]) if extra.get("config") else None
    summary = summarize(
        model,
        batch_size=config.batch_size if config else 128,
        optimizer=make_optimizer(config) if config else None,
        loss=config.loss if config else "softmax_cross_entropy",
    )
    page.section("layers", "Layers, parameters, memory", summary.html())


def _accuracy(page: Page, run: RunFolder) -> None:
    rows = []
    for split in SPLITS:
        summary = run.metrics.get(split)
        if not isinstance(summary, dict):
            continue
        low, high = summary["accuracy_ci95"]
        rows.append(
            [
                escape(SPLIT_NAMES[split]),
                f"{int(summary['n']):,}",
                f"{summary['loss']:.4f}",
                f"{100 * summary['accuracy']:.2f}%",
                f"{100 * low:.2f}&ndash;{100 * high:.2f}%",
            ]
        )
    header = ["split", "n", "loss", "accuracy", "95% interval (Wilson)"]
    page.section("accuracy", "Accuracy per split", _table(header, rows))


def _curves(page: Page, run: RunFolder) -> None:
    images = []
    marks = plots.switch_marks(run.history, run.config)
    for metric in ("loss", "accuracy"):
        png = plots.curves_plot(run.history, metric, marks)
        if png is None:
            images.append(_note(f"history.jsonl records no {metric} values."))
        else:
            images.append(page.image(f"curves_{metric}.png", png, f"{metric} per epoch"))
    body = '<div class="pair">' + "".join(f"<div>{image}</div>" for image in images) + "</div>"
    page.section("curves", "Loss and accuracy per epoch", body)


def _confusion(page: Page, run: RunFolder) -> None:
    png = plots.confusion_plot(np.array(run.metrics[REPORT_SPLIT]["confusion"]))
    body = '<div class="narrow">' + page.image("confusion.png", png, "confusion matrix") + "</div>"
    caption = _caption("Rows: true class; columns: predicted class; colour: share of the row.")
    page.section("confusion", "Confusion matrix (test)", body + caption)


def _fraction(value: float) -> str:
    return "&ndash;" if np.isnan(value) else f"{value:.3f}"


def _per_class(page: Page, run: RunFolder) -> None:
    scores = plots.per_class_scores(np.array(run.metrics[REPORT_SPLIT]["confusion"]))
    rows = [
        [
            str(j),
            f"{int(scores.support[j]):,}",
            f"{int(scores.predicted[j]):,}",
            _fraction(scores.precision[j]),
            _fraction(scores.recall[j]),
        ]
        for j in range(len(scores.support))
    ]
    table = _table(["class", "true", "predicted", "precision", "recall"], rows)
    image = page.image("per_class.png", plots.per_class_plot(scores), "precision and recall")
    body = f'<div class="side"><div>{table}</div><div>{image}</div></div>'
    page.section("per-class", "Precision and recall per class (test)", body)


def _examples(page: Page, run: RunFolder, section_id: str) -> None:
    hardest = section_id == "hardest"
    title = (
        "Hardest test examples" if hardest else "Misclassified test examples"
    ) + " (lowest probability on the true class first)"
    arrays = run.predictions
    if arrays is None:
        page.section(section_id, title, _note(NO_PREDICTIONS))
        return
    y, pred, probs, examples = arrays["y"], arrays["pred"], arrays["probs"], arrays["examples"]
    # the file keeps the hardest examples, then more misclassified ones; sorting all of them by
    # the true class's probability puts the hardest first whatever their number
    order = np.argsort(probs[examples, y[examples]], kind="stable")
    if not hardest:
        order = order[pred[examples[order]] != y[examples[order]]]
    order = order[: plots.GRID_MAX]
    if len(order) == 0:
        page.section(section_id, title, _note("No test example is misclassified."))
        return
    chosen = examples[order]
    wrong = int((pred != y).sum())
    shown = (
        f"{len(order)} of {len(y):,} test examples"
        if hardest
        else (f"{len(order)} of the {wrong:,} misclassified test examples")
    )
    text = _caption(f"Showing {shown}; prob is the probability of the predicted class; red: wrong.")
    if arrays["image_shape"].size == 0:
        text += _note("The inputs are not images (e.g. a pixel subset): each is drawn as a strip.")
    png = plots.examples_plot(
        arrays["example_images"][order],
        y[chosen],
        pred[chosen],
        probs[chosen, pred[chosen]],
        arrays["image_shape"].tolist(),
        title,
    )
    body = text + page.image(f"{section_id}.png", png, title)
    page.section(section_id, title, body)


def _hardest(page: Page, run: RunFolder) -> None:
    _examples(page, run, "hardest")


def _misclassified(page: Page, run: RunFolder) -> None:
    _examples(page, run, "misclassified")


def _scatter(page: Page, run: RunFolder) -> None:
    title = "Predicted vs true class (test, jittered)"
    if run.predictions is None:
        page.section("scatter", title, _note(NO_PREDICTIONS))
        return
    k = run.predictions["probs"].shape[1]
    png = plots.jitter_scatter_plot(run.predictions["y"], run.predictions["pred"], k)
    body = '<div class="narrow">' + page.image("scatter.png", png, title) + "</div>"
    page.section("scatter", title, body)


def image_shape_of(run: RunFolder) -> tuple[int, int] | None:
    """The inputs' (height, width): from predictions.npz, else, for a run without it, a square
    shape when the config uses no pixel subset and the input size is a perfect square."""
    if run.predictions is not None:
        shape = run.predictions["image_shape"]
        return (int(shape[0]), int(shape[1])) if shape.size == 2 else None
    side = int(np.sqrt(run.first_layer.input_size))
    if run.config.get("pixel_subset") is None and side * side == run.first_layer.input_size:
        return (side, side)
    return None


def _weights(page: Page, run: RunFolder) -> None:
    title = "First-layer weights"
    layer = run.first_layer
    shape = image_shape_of(run)
    if layer.w is None:
        note = f"The model starts with a {layer.kind} layer, not a dense one: no weight images."
    elif shape is None:
        note = "The inputs are not images (e.g. a pixel subset): the weights have no image layout."
    else:
        body = _caption(
            "One image per hidden unit, the weights from each input pixel; red positive, "
            "blue negative, each on its own scale."
        ) + page.image("weights.png", plots.weights_plot(layer.w, shape), title)
        page.section("weights", title, body)
        return
    page.section("weights", title, _note(note))


def _pixels(page: Page, run: RunFolder) -> None:
    """The raw pixels a run keeps (crop, pixel subset) and how strongly the first layer reads
    each: which pixels matter."""
    title = "Input pixels"
    config, record = run.config, run.pipeline or {}  # {}: a run saved before it was kept
    if not (config.get("crop") or config.get("pixel_subset")):
        page.section("pixels", title, _note("This run reads every pixel."))
        return
    try:
        raw_shape = (int(record["image_shape"][0]), int(record["image_shape"][1]))
        pixels = input_pixels(restore_pipeline(config, record), raw_shape)
    except (DigitlabError, KeyError, TypeError, ValueError, IndexError):
        note = _note("The model file does not say which pixels were kept.")
        page.section("pixels", title, note)
        return
    pick = str(config.get("pixel_pick", "random")) if config.get("pixel_subset") else "crop"
    weights = run.first_layer.w
    if weights is None or len(weights) != len(pixels):
        weights = None
    kept = {
        "crop": "The centre the border crop keeps",
        "random": "The seeded random pixel subset",
        "variance": "The highest-variance pixels of the training images",
    }.get(pick, pick)
    body = _caption(f"{kept} (black), and how strongly the first layer reads each of them.")
    png = plots.pixels_plot(pixels, weights, raw_shape, f"input pixels ({pick})")
    page.section("pixels", title, body + page.image("pixels.png", png, "input pixels"))


def _augmentation(page: Page, run: RunFolder) -> None:
    params = run.config.get("augment")
    if not params:
        page.section(
            "augmentation", "Augmentation", _note("This run trained without augmentation.")
        )
        return
    arrays = run.predictions
    if arrays is None or len(arrays["image_shape"]) != 2:
        page.section("augmentation", "Augmentation", _note("No test images to show it on."))
        return
    shape = arrays["image_shape"].tolist()
    # drawn afresh from the run's settings with a fixed seed: a picture, not the run's stream
    background = "max" if run.config.get("invert") else "min"
    black_white = (run.pipeline or {}).get("pixel_range", (0.0, 1.0))
    augment = build_augment(
        params,
        (shape[0], shape[1]),
        np.random.default_rng(0),
        background=background,
        pixel_range=(float(black_white[0]), float(black_white[1])),
    )
    images = arrays["example_images"]
    grid = augment_examples(images, augment, (shape[0], shape[1]), n=min(6, len(images)))
    settings = ", ".join(f"{k} = {v}" for k, v in params.items())
    body = _caption(f"Settings: {escape(settings)}. Each row: a test image, then variants.")
    body += page.image("augmentation.png", plots.augmentation_plot(grid), "augmented examples")
    page.section("augmentation", "Augmentation", body)


def _diagnostics(page: Page, run: RunFolder) -> None:
    findings = find(run.history)  # the same checks as `digitlab diagnose`, on the same history
    warnings = [f for f in findings if f.severity == "warning"]
    parts = [_note("No alarms: nothing the monitors watch for went wrong.")] if not warnings else []
    for finding in findings:
        if finding.severity == "info":
            parts.append(f"<p>{escape(finding.message)}</p>")
            continue
        causes = "".join(f"<li>{escape(c)}</li>" for c in finding.causes)
        remedies = "".join(f"<li>{escape(r)}</li>" for r in finding.remedies)
        parts.append(
            f'<div class="alarm"><p><b>{escape(finding.kind)}</b>: {escape(finding.message)}'
            f"</p><p>likely causes:</p><ul>{causes}</ul><p>usual remedies:</p><ul>{remedies}</ul>"
            "</div>"
        )
    png = plots.monitors_plot(run.history)
    if png is None:
        parts.append(_note("This run was trained without monitors (--no-monitors)."))
    else:
        parts.append(page.image("monitors.png", png, "monitors per epoch"))
    page.section("diagnostics", "Diagnostics", "\n".join(parts))


def _loss_change(page: Page, run: RunFolder) -> None:
    title = "Where the validation loss changed"
    read = read_loss_change(run.path)
    if read is None:
        note = (
            "Trained with save_best_model (--save-best-model), a run keeps the model of its "
            "lowest validation loss, and this section splits the change in validation loss "
            "from that epoch to the end by example."
        )
        page.section("loss-change", title, _note(note))
        return
    change, epoch = read
    last = len(run.history)
    rows = [
        [
            g.name,
            f"{g.count:,}",
            f"{g.loss_before:.4f}",
            f"{g.loss_after:.4f}",
            f"{g.part:+.4f}",
            f"{100 * g.share:+.0f}%",
        ]
        for g in change.groups
    ]
    header = ["group", "n", f"mean loss, epoch {epoch}", f"epoch {last}", "part", "share"]
    png = loss_change_plot(change, f"epoch {epoch} (lowest)", f"epoch {last} (end)")
    tops = ", ".join(f"{100 * f:g}%: {100 * s:.0f}%" for f, s in change.top_share.items())
    caption = _caption(
        f"Validation examples grouped by whether they were classified right at epoch {epoch} "
        f"(lowest validation loss) and at the end; part: the group's summed change in loss over "
        f"all n, so the parts add up to the change in the mean ({change.change:+.4f}). Of the "
        f"summed rises, the examples that rose most hold: {tops}."
    )
    body = _table(header, rows) + page.image("loss_change.png", png, "loss change by group")
    page.section("loss-change", title, body + caption)


SECTIONS: tuple[Callable[[Page, RunFolder], None], ...] = (
    _summary,
    _layers,
    _accuracy,
    _curves,
    _confusion,
    _per_class,
    _hardest,
    _misclassified,
    _scatter,
    _weights,
    _pixels,
    _augmentation,
    _loss_change,
    _diagnostics,
)
