"""From a validated Config to a trained model, its evaluation and a run folder.

The seed makes a run: it is split by a SeedSequence into independent streams for the data
split, the initial weights, dropout and the shuffling, so changing, say, dropout does not
change the split.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from digitlab.core.activations import ACTIVATIONS
from digitlab.core.evaluation import EVAL_CHUNK, Evaluation, History, evaluate, predict_logits
from digitlab.core.hooks import BatchCallback, EpochCallback, TrainHooks, activation_schedule
from digitlab.core.losses import example_losses
from digitlab.core.model import Sequential, build_model
from digitlab.core.schedules import batch_size_schedule, get_schedule
from digitlab.core.specs import mlp_spec
from digitlab.core.train import TrainOptions, TrainState, fit
from digitlab.data import Split, Splits, build_pipeline, load_dataset, make_splits
from digitlab.data.augment import build_augment
from digitlab.data.splits import repeated_images
from digitlab.data.transforms import LazyRows, Pipeline, PixelSubset, pixel_range, to_float
from digitlab.diagnostics.alarms import find
from digitlab.diagnostics.gradcheck import GradientResult, check_activation, check_model
from digitlab.diagnostics.monitors import default_monitors
from digitlab.errors import ConfigError, DataError, DigitlabError, NumericError, StorageError
from digitlab.lab.checkpoint import Session, read_checkpoint, restore_session, save_checkpoint
from digitlab.lab.config import Config, make_config, make_optimizer, to_dict
from digitlab.lab.modelfile import (
    MODEL_FILE,
    check_model_memory,
    load_model,
    pipeline_record,
    save_model,
)
from digitlab.lab.runs import LiveRun, write_json, write_jsonl, write_npz
from digitlab.memory import ensure_fits
from digitlab.stats import wilson_interval  # re-exported: callers import it from here


class Interrupted(DigitlabError):
    """Training was asked to stop; a checkpoint was written and the message says how to go on."""


@dataclass
class Prepared:
    """The transformed splits and what the model needs to know about them."""

    splits: Splits
    n_classes: int
    image_shape: tuple[int, int] | None
    dataset: str
    pipeline: dict[str, Any] | None = None  # modelfile.pipeline_record, saved with the model
    repeated: dict[str, int] | None = None  # splits.repeated_images, counted on the raw pixels


def parts(splits: Splits) -> dict[str, Split]:
    """The three parts of a split by name: train, val, test."""
    return {"train": splits.train, "val": splits.val, "test": splits.test}


def whole_test_set(config: Config, splits: Splits) -> Split:
    """Every test image of the dataset: the test part, or with the book split both halves of
    MNIST's test set (validation first, as in metrics.json's test_all)."""
    if config.split != "book":
        return splits.test
    val, test = splits.val, splits.test
    return Split(np.concatenate([val.x, test.x]), np.concatenate([val.y, test.y]))


def streams(seed: int) -> dict[str, np.random.Generator]:
    """Independent generators for the parts of a run that draw random numbers."""
    names = ("split", "init", "dropout", "shuffle", "transform", "augment")
    children = np.random.SeedSequence(seed).spawn(len(names))
    return {name: np.random.default_rng(child) for name, child in zip(names, children, strict=True)}


def raw_splits(config: Config) -> tuple[Any, Splits]:
    """The dataset the config names and its split, before any transform."""
    dataset = load_dataset(
        config.data,
        data_dir=config.data_dir,
        cache_dir=config.cache_dir,
        image_size=config.image_size,
    )
    splits = make_splits(
        dataset,
        config.split,
        val_fraction=config.val_fraction,
        train_per_class=config.train_per_class,
        train_first=config.train_first,
        per_class=config.per_class,
        val_per_class=config.val_per_class,
        rng=streams(config.seed)["split"],
    )
    return dataset, splits


def prepare_data(
    config: Config, saved: dict[str, Any] | None = None, *, lazy: bool = False
) -> Prepared:
    """Load the dataset, split it, and fit the transforms on the training part only.

    saved: a model's pipeline record (modelfile.pipeline_record); its pixel subset's columns
    are kept rather than picked again, so a model evaluated on other data reads its own pixels.
    lazy: the test part stays raw pixels (LazyRows), converted a chunk at a time when
    evaluated (as `digitlab train` and `evaluate` use it); validation, evaluated every epoch, is
    converted once. Else all three are float arrays.
    """
    dataset, raw = raw_splits(config)
    max_value = 1.0 if config.raw_pixels else dataset.max_value  # dividing by 1 keeps them raw
    white = dataset.max_value
    pipeline = build_pipeline(
        max_value=max_value,
        image_shape=dataset.image_shape,
        dtype=np.dtype(config.dtype),
        crop=config.crop,
        pixel_subset=config.pixel_subset,
        pixel_pick=config.pixel_pick,
        seed=config.seed,
        invert=config.invert,
        standardize=config.standardize,
        per_pixel=config.per_pixel,
    )
    keep_columns(pipeline, saved)
    n_classes, image_shape = dataset.n_classes, dataset.image_shape
    class_names = dataset.class_names
    # Peak memory: the whole raw dataset is let go once split, and each part's raw pixels while
    # converted (to_float), so the float arrays (with `lazy`, all but the test part's, which
    # stays pixels) are about all that is ever held (MNIST: benchmarks/PERFORMANCE.md).
    repeated = repeated_images(raw)
    raw_parts = parts(raw)
    del dataset, raw
    # the float arrays, and a transform's working copy of the largest part, must fit
    sizes = [part.x.size * np.dtype(config.dtype).itemsize for part in raw_parts.values()]
    ensure_fits(sum(sizes) + max(sizes), f"the {config.data} data as {config.dtype}", DataError)
    converted = {}
    for name in ("train", "val", "test"):
        part = raw_parts.pop(name)
        if len(part.y) == 0:
            raise DataError(f"the {name} set is empty")
        if lazy and name == "test":  # the pipeline is fitted: the training part came first
            converted[name] = Split(LazyRows(part.x, pipeline), part.y)
            continue
        pixels, labels = [part.x], part.y
        del part
        x = to_float(pixels, config.dtype)
        x = pipeline.fit_transform(x, owned=True) if name == "train" else pipeline(x, owned=True)
        converted[name] = Split(x, labels)
    splits = Splits(**converted)
    record = pipeline_record(pipeline, image_shape, max_value)
    # augmentation's fill: what raw black and white become (whatever invert and standardize do)
    record["pixel_range"] = list(pixel_range(pipeline, image_shape[0] * image_shape[1], white))
    if class_names is not None:  # a folder of named classes: `digitlab predict` prints them
        record["class_names"] = list(class_names)
    shape = pipeline.output_shape(image_shape)
    return Prepared(splits, n_classes, shape, config.data, record, repeated)


def keep_columns(pipeline: Pipeline, saved: dict[str, Any] | None) -> None:
    """Give the pipeline's pixel subset the columns a model saved, if it saved any."""
    columns = ((saved or {}).get("fitted") or {}).get("pixel_subset")
    if columns is None:
        return
    for transform in pipeline.transforms:
        if isinstance(transform, PixelSubset):
            try:
                transform.set_columns(columns["columns"], int(columns["n_features"]))
            except (KeyError, TypeError, ValueError) as err:
                raise DataError(f"the model's saved pixel subset is unreadable ({err})") from None


def build_from_config(
    config: Config,
    input_size: int,
    n_classes: int,
    rngs: dict[str, np.random.Generator] | None = None,
    examples: int = 0,
) -> Sequential:
    """The model a config describes, with weights drawn from the run's 'init' stream; refused
    with one line, before anything is allocated, when it (and a batch of up to `examples`
    rows, or an evaluation chunk) would not fit in memory."""
    rngs = rngs or streams(config.seed)
    if config.layers is not None:
        spec = [dict(layer) for layer in config.layers]
        if not any(layer.get("name") == "output" for layer in spec):
            spec.append({"type": "dense", "units": n_classes, "init": "xavier"})
            if config.shared_bias:
                spec[-1]["shared_bias"] = True
    else:
        spec = mlp_spec(
            config.hidden_sizes,
            n_classes,
            config.activation.name,
            activation_params=config.activation.params,
            init=config.init.name if config.init else None,
            init_params=config.init.params if config.init else None,
            bias_std=config.bias_std,
            bias_init=config.bias_init,
            dropout=config.dropout,
            output_activation=config.output_activation,
            shared_bias=config.shared_bias,
        )
    rows = min(max(config.batch_size, EVAL_CHUNK), examples) if examples else EVAL_CHUNK
    check_model_memory(spec, input_size, config.dtype, rows, ConfigError)
    model = build_model(spec, input_size, rngs["init"], np.dtype(config.dtype))
    for lay in model.layers:
        if hasattr(lay, "rng"):  # dropout draws from the run's own stream
            lay.rng = rngs["dropout"]
    return model


def new_session(config: Config, prepared: Prepared) -> Session:
    """A fresh model, optimizer and random streams for the config: training at epoch 0."""
    rngs = streams(config.seed)
    train = prepared.splits.train.x
    model = build_from_config(config, train.shape[1], prepared.n_classes, rngs, len(train))
    return Session(
        model,
        make_optimizer(config),
        rngs["shuffle"],
        rngs["dropout"],
        TrainState(),
        History(),
        augment_rng=rngs["augment"],
        monitors=make_monitors(config),
    )


@contextmanager
def blas_threads(threads: int | None) -> Iterator[None]:
    """BLAS limited to `threads` threads inside the block (None: as it is).

    Why one thread can be faster: at every matrix product OpenBLAS's threads wait for each other,
    and when other jobs hold the cores the wait is a time slice per product; the small CNN's
    epoch took 29 s on an idle 2-core machine and 677 s with 2 threads at a load of 7
    (benchmarks/PERFORMANCE.md).
    """
    if threads is None:
        yield
        return
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=threads, user_api="blas"):
        yield


def make_monitors(config: Config) -> list[Any]:
    return default_monitors(config.monitor_samples) if config.monitors else []


def train_session(
    config: Config,
    prepared: Prepared,
    session: Session,
    *,
    callbacks: Sequence[EpochCallback] = (),
    on_batch: BatchCallback | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> History:
    """Train a session (fresh or restored from a checkpoint) up to the config's epochs."""
    train, val = prepared.splits.train, prepared.splits.val
    options = TrainOptions(
        epochs=config.epochs,
        batch_size=batch_size_schedule(config.batch_size, config.batch_ramp),
        learning_rate=get_schedule(
            config.learning_rate_schedule.name,
            config.learning_rate,
            config.epochs,
            **config.learning_rate_schedule.params,
        ),
        loss=config.loss,
        patience=config.patience,
        divergence=config.divergence or None,
        clip_grad_norm=config.clip_grad_norm,
        max_norm=config.max_norm,
        augment=(
            build_augment(
                config.augment,
                prepared.image_shape,
                session.augment_rng,
                background="max" if config.invert else "min",  # inverted: the paper is white
                pixel_range=(prepared.pipeline or {}).get("pixel_range", (0.0, 1.0)),
            )
            if config.augment
            else None
        ),
    )
    switches = [(epoch, e.name, e.params) for epoch, e in config.activation_schedule or []]
    hooks = TrainHooks(
        callbacks=callbacks,
        epoch_start=[activation_schedule(switches)] if switches else [],
        on_batch=on_batch,
        monitors=session.monitors,
        should_stop=should_stop,
    )
    with blas_threads(config.threads):
        return fit(
            session.model,
            train.x,
            train.y,
            session.optimizer,
            options,
            rng=session.shuffle_rng,
            validation=(val.x, val.y),
            hooks=hooks,
            history=session.history,
            state=session.state,
        )


def train_config(
    config: Config,
    prepared: Prepared,
    *,
    callbacks: Sequence[EpochCallback] = (),
    on_batch: BatchCallback | None = None,
) -> tuple[Sequential, History]:
    """Build the model and optimizer the config names and train them on the prepared data."""
    session = new_session(config, prepared)
    history = train_session(config, prepared, session, callbacks=callbacks, on_batch=on_batch)
    return session.model, history


def confusion_matrix(y: np.ndarray, predictions: np.ndarray, n_classes: int) -> np.ndarray:
    """counts[true, predicted]."""
    return np.bincount(y * n_classes + predictions, minlength=n_classes * n_classes).reshape(
        n_classes, n_classes
    )


def summarise(result: Evaluation, y: np.ndarray, n_classes: int) -> dict[str, Any]:
    """Loss, accuracy with its 95% interval, n and confusion matrix of one split."""
    correct = int(round(result.accuracy * result.n))
    low, high = wilson_interval(correct, result.n)
    return {
        "loss": result.loss,
        "accuracy": result.accuracy,
        "accuracy_ci95": [low, high],
        "n": result.n,
        "confusion": confusion_matrix(y, result.predictions, n_classes).tolist(),
    }


def evaluate_splits(
    config: Config, model: Sequential, prepared: Prepared
) -> tuple[dict[str, Any], dict[str, Evaluation]]:
    """metrics.json's content (every split's summary plus flat val_/test_ keys) and the
    evaluations behind it."""
    metrics: dict[str, Any] = {}
    evaluations: dict[str, Evaluation] = {}
    for name, part in parts(prepared.splits).items():
        with blas_threads(config.threads):
            evaluations[name] = result = evaluate(model, part.x, part.y, config.loss)
        summary = summarise(result, part.y, prepared.n_classes)
        metrics[name] = summary
        metrics[f"{name}_loss"] = summary["loss"]
        metrics[f"{name}_accuracy"] = summary["accuracy"]
    if config.split == "book":
        # The book's two halves together are MNIST's whole test set: report it too (M2).
        val, test = evaluations["val"], evaluations["test"]
        y = np.concatenate([prepared.splits.val.y, prepared.splits.test.y])
        whole = Evaluation(
            loss=(val.loss * val.n + test.loss * test.n) / (val.n + test.n),
            accuracy=(val.accuracy * val.n + test.accuracy * test.n) / (val.n + test.n),
            predictions=np.concatenate([val.predictions, test.predictions]),
            probabilities=np.concatenate([val.probabilities, test.probabilities]),
            n=val.n + test.n,
            labels=y,
        )
        metrics["test_all"] = summarise(whole, y, prepared.n_classes)
    for key, count in (prepared.repeated or {}).items():  # D7: the same pixels in two splits
        metrics[f"repeated_{key}"] = count
    return metrics, evaluations


EXAMPLES = 64  # hardest and misclassified examples kept per split for the report's grids


def predictions_arrays(prepared: Prepared, evaluations: dict[str, Evaluation]) -> dict[str, Any]:
    """What predictions.npz holds, for reports that never rerun the model.

    Per split s in (val, test): s_y, s_pred, s_probs (n, k); s_examples, the indices of the
    EXAMPLES hardest (lowest probability on the true class) then of up to EXAMPLES more
    misclassified ones; s_example_images, those inputs as the network saw them (n, features);
    and image_shape, (height, width) or empty when the inputs are no longer images.
    """
    arrays: dict[str, Any] = {"image_shape": np.array(prepared.image_shape or (), dtype=np.int64)}
    for name in ("val", "test"):
        part, result = getattr(prepared.splits, name), evaluations[name]
        true_probs = result.probabilities[np.arange(result.n), part.y]
        hardest = np.argsort(true_probs, kind="stable")[:EXAMPLES]
        wrong = np.flatnonzero(result.predictions != part.y)
        wrong = wrong[~np.isin(wrong, hardest)][:EXAMPLES]
        examples = np.concatenate([hardest, wrong])
        arrays[f"{name}_y"] = part.y
        arrays[f"{name}_pred"] = result.predictions
        arrays[f"{name}_probs"] = result.probabilities.astype(np.float32)
        arrays[f"{name}_examples"] = examples
        arrays[f"{name}_example_images"] = part.x[examples]
    return arrays


BEST_MODEL_FILE = "model_best.npz"


def best_model_losses(
    config: Config, model: Sequential, folder: Path, prepared: Prepared
) -> dict[str, Any]:
    """What predictions.npz adds with save_best_model: val_losses, each validation example's
    loss under the final model; val_best_losses and val_best_pred, under the model of the lowest
    validation loss (model_best.npz); best_loss_epoch, its epoch (1-based)."""
    best, extra = load_model(folder / BEST_MODEL_FILE)
    val = prepared.splits.val
    final_logits, best_logits = predict_logits(model, val.x), predict_logits(best, val.x)
    return {
        "val_losses": example_losses(config.loss, final_logits, val.y),
        "val_best_losses": example_losses(config.loss, best_logits, val.y),
        "val_best_pred": best_logits.argmax(axis=1),
        "best_loss_epoch": np.array(int(extra["epoch"])),
    }


def save_run(
    folder: Path,
    config: Config,
    model: Sequential,
    history: History,
    metrics: dict[str, Any],
    predictions: dict[str, Any] | None = None,
    pipeline: dict[str, Any] | None = None,
) -> None:
    """Write metrics.json, predictions.npz, then what save_partial_run writes (model.npz with
    the fitted data pipeline's record, when given, for inputs that come without the dataset)."""
    write_json(folder / "metrics.json", metrics)
    if predictions is not None:
        write_npz(folder / "predictions.npz", predictions)
    save_partial_run(folder, config, model, history, pipeline)


def save_partial_run(
    folder: Path,
    config: Config,
    model: Sequential,
    history: History,
    pipeline: dict[str, Any] | None = None,
) -> None:
    """config.json, history.jsonl, diagnostics.json and model.npz: all that a run that stopped
    with an error (a divergence) keeps."""
    write_json(folder / "config.json", to_dict(config))
    write_jsonl(folder / "history.jsonl", history.records())
    write_json(folder / "diagnostics.json", [f.as_dict() for f in find(history.records())])
    extra: dict[str, Any] = {"config": to_dict(config)}
    if pipeline is not None:
        extra["pipeline"] = pipeline
    save_model(model, folder / MODEL_FILE, extra=extra)


@dataclass
class RunResult:
    model: Sequential
    history: History
    metrics: dict[str, Any]
    prepared: Prepared


def run(
    config: Config,
    folder: Path,
    *,
    callbacks: Sequence[EpochCallback] = (),
    on_batch: BatchCallback | None = None,
    on_data: Callable[[Prepared], None] | None = None,
    checkpoint_every: int | None = None,
    should_stop: Callable[[], bool] | None = None,
    resume: bool = False,
) -> RunResult:
    """Prepare the data, train, evaluate every split and write the run folder.

    With `checkpoint_every`, RUN/checkpoint.npz is rewritten every that many epochs; when
    `should_stop` turns true, the current batch finishes, a checkpoint is written and
    Interrupted is raised. `resume` continues the run from its checkpoint instead, with the
    config saved there, ending exactly where an uninterrupted run would. If training diverges,
    the folder keeps the last good weights (model.npz), the config and the history so far, and
    the NumericError says where they are.
    """
    if resume:
        header, arrays = read_checkpoint(folder)
        config = make_config(header["config"])
    saved = to_dict(config)
    live = LiveRun(folder, config.epochs)  # history.jsonl and status.json as it trains
    kept = False  # a diverged run keeps its last good weights, even before its first epoch ends
    session: Session | None = None
    prepared: Prepared | None = None
    try:
        if resume:
            live.mark("running")
        else:  # readers see what is training, and an empty history, at once
            write_json(folder / "config.json", saved)
            live.start([])
        prepared = prepare_data(config, lazy=True)
        if on_data is not None:
            on_data(prepared)
        if resume:
            session = restore_session(header, arrays, make_optimizer(config), make_monitors(config))
        else:
            session = new_session(config, prepared)
        live.start(session.history.records())

        def checkpoint(record: dict[str, float], model: Any) -> None:
            if checkpoint_every and int(record["epoch"]) % checkpoint_every == 0:
                save_checkpoint(folder, saved, session)

        losses = [r["val_loss"] for r in session.history.records() if "val_loss" in r]
        best = [min(losses, default=float("inf"))]  # a resumed run's best so far

        def keep_best(record: dict[str, float], model: Any) -> None:
            if config.save_best_model and record.get("val_loss", float("inf")) < best[0]:
                best[0] = record["val_loss"]
                extra = {"config": saved, "pipeline": prepared.pipeline, "epoch": record["epoch"]}
                save_model(model, folder / BEST_MODEL_FILE, extra=extra)

        try:
            history = train_session(
                config,
                prepared,
                session,
                callbacks=[*callbacks, keep_best, checkpoint, live.epoch],
                on_batch=on_batch,
                should_stop=should_stop,
            )
        except NumericError as diverged:
            # fit has put the last good weights back: keep them, with what led there
            save_partial_run(folder, config, session.model, session.history, prepared.pipeline)
            kept = True
            raise NumericError(f"{diverged}; they are saved in {folder / MODEL_FILE}") from None
        if history.interrupted:
            save_checkpoint(folder, saved, session)
            state = session.state
            raise Interrupted(
                f"stopped at epoch {state.epoch + 1}, batch {state.batch}; checkpoint saved in "
                f"{folder}; continue with: digitlab train --resume {folder}"
            )
        model = session.model
        metrics, evaluations = evaluate_splits(config, model, prepared)
        predictions = predictions_arrays(prepared, evaluations)
        if config.save_best_model and (folder / BEST_MODEL_FILE).exists():
            predictions.update(best_model_losses(config, model, folder, prepared))
        save_run(folder, config, model, history, metrics, predictions, pipeline=prepared.pipeline)
    except Interrupted as stopped:
        live.mark("stopped", stopped)
        raise
    except StorageError as lost:  # the disk filled, or the folder went: keep the work elsewhere
        live.mark("failed", lost)
        if session is None or not session.history.epochs or prepared is None:
            raise
        rescue = Path(tempfile.mkdtemp(prefix="digitlab-rescued-"))
        try:
            save_partial_run(rescue, config, session.model, session.history, prepared.pipeline)
        except StorageError:
            shutil.rmtree(rescue, ignore_errors=True)
            raise lost from None
        raise StorageError(f"{lost}; the run so far is saved in {rescue}") from None
    except BaseException as failure:
        if resume or kept or live.status["epoch"] > 0:  # keep what was done, say why it ended
            live.mark("failed", failure)
        else:  # bad input, found before any epoch ended: leave nothing behind
            live.remove()
        raise
    live.mark("finished")
    return RunResult(model, history, metrics, prepared)


def config_of_model(extra: dict[str, Any]) -> Config:
    """The Config a saved model was trained with (stored in its file)."""
    return make_config(extra.get("config", {}))


@dataclass
class GradcheckReport:
    """Per-activation and per-layer results of a gradient check, and where the fault is."""

    activations: list[GradientResult]
    layers: dict[str, GradientResult]  # layer name -> its worst parameter array
    order: list[str]  # every layer of the model, parameter-free ones too

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.activations) and all(
            r.passed for r in self.layers.values()
        )

    def verdict(self) -> list[str]:
        lines = [
            f"FAIL: {r.name}: f'(z) disagrees with finite differences of f (relative "
            f"error {r.error:.2g})"
            for r in self.activations
            if not r.passed
        ]
        failing = [
            name for name in self.order if name in self.layers and not self.layers[name].passed
        ]
        if failing:
            deepest = failing[-1]
            position = self.order.index(deepest)
            above = []
            for name in self.order[position + 1 :]:
                if name in self.layers:
                    break
                above.append(name)
            suspects = ", ".join(above) if above else deepest
            lines.append(
                f"FAIL: gradients are wrong from {deepest} down ({', '.join(failing)}); the "
                f"layers above pass, so the error enters at: {suspects}"
            )
        if not lines:
            lines.append("PASS: every gradient matches central finite differences")
        return lines


def run_gradcheck(config: Config, examples: int = 8) -> GradcheckReport:
    """Check the config's model (in float64, in training mode: batch statistics, one fixed
    dropout mask) on a few real training examples, and every registered activation (plugins
    included), against finite differences."""
    if examples <= 0:
        raise ConfigError(f"--examples must be > 0, got {examples}")
    config = make_config({**to_dict(config), "dtype": "float64"})
    prepared = prepare_data(config)
    train = prepared.splits.train
    model = build_from_config(config, train.x.shape[1], prepared.n_classes)
    results = check_model(model, train.x[:examples], train.y[:examples], config.loss)
    layers: dict[str, GradientResult] = {}
    for result in results:
        layer = result.name.rsplit(".", 1)[0]
        if layer not in layers or result.error > layers[layer].error:
            layers[layer] = result
    z = np.random.default_rng(0).uniform(-3, 3, 200)
    activations = [check_activation(name, z) for name in sorted(ACTIVATIONS)]
    return GradcheckReport(activations, layers, [lay.name for lay in model.layers])
