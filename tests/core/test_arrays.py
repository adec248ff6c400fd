"""fit, evaluate and prediction take any real array once converted, or refuse it in one line."""

import numpy as np
import pytest

from digitlab.core import evaluation
from digitlab.core.arrays import as_inputs, as_labels
from digitlab.core.evaluation import evaluate, predict_logits
from digitlab.core.model import build_model
from digitlab.core.optim import get_optimizer
from digitlab.core.schedules import batch_size_schedule, get_schedule
from digitlab.core.specs import mlp_spec
from digitlab.core.train import TrainOptions, fit
from digitlab.errors import DataError

N, FEATURES, CLASSES = 48, 6, 3
ONE_EPOCH = TrainOptions(1, batch_size_schedule(16), get_schedule("constant", 0.1, 1))


def pixels() -> tuple[np.ndarray, np.ndarray]:
    """Whole-number pixels 0..16 (uint8-representable) and labels that depend on them."""
    rng = np.random.default_rng(5)
    x = rng.integers(0, 17, size=(N, FEATURES)).astype(np.uint8)
    y = (x[:, :3].sum(axis=1) % CLASSES).astype(np.int64)
    return x, y


def spec(batchnorm: bool) -> list[dict]:
    layers = mlp_spec([8], CLASSES, "tanh")
    return [layers[0], {"type": "batchnorm"}, *layers[1:]] if batchnorm else layers


def strided(x: np.ndarray) -> np.ndarray:
    """The same values as a view with row and column strides: x[:, ::1][::2] of a bigger array."""
    bigger = np.zeros((2 * len(x), FEATURES), np.float64)
    bigger[::2] = x
    view = bigger[:, ::1][::2]
    assert not view.flags.c_contiguous
    return view


VARIANTS = {
    "float64": lambda x: x.astype(np.float64),
    "int64": lambda x: x.astype(np.int64),
    "int8": lambda x: x.astype(np.int8),
    "uint8": lambda x: x,
    "strided view": strided,
    "fortran order": lambda x: np.asfortranarray(x.astype(np.float32)),
    "nested list": lambda x: x.tolist(),
}
LABELS = {
    "int64": lambda y: y,
    "uint8": lambda y: y.astype(np.uint8),
    "int16 view": lambda y: np.repeat(y.astype(np.int16), 2)[::2],
    "whole floats": lambda y: y.astype(np.float64),
}


def train(x, y, batchnorm: bool, dtype=np.float32):
    model = build_model(spec(batchnorm), FEATURES, np.random.default_rng(0), dtype)
    history = fit(
        model,
        x,
        y,
        get_optimizer("momentum", 0.05, momentum=0.9),
        TrainOptions(3, batch_size_schedule(16), get_schedule("constant", 0.05, 3)),
        rng=np.random.default_rng(1),
        validation=(x, y),
    )
    return model, history


@pytest.mark.parametrize("batchnorm", [False, True], ids=["plain", "batchnorm"])
@pytest.mark.parametrize("variant", VARIANTS)
def test_any_real_inputs_train_as_their_float32_copy(variant, batchnorm):
    x, y = pixels()
    reference_model, reference = train(np.ascontiguousarray(x, np.float32), y, batchnorm)
    model, history = train(VARIANTS[variant](x), y, batchnorm)
    np.testing.assert_array_equal(model.theta, reference_model.theta)
    assert model.theta.dtype == np.float32
    for key in ("train_loss", "val_loss", "val_accuracy"):
        assert history[key] == reference[key]
    ours = evaluate(model, VARIANTS[variant](x), y)
    theirs = evaluate(reference_model, x.astype(np.float32), y)
    assert (ours.loss, ours.accuracy) == (theirs.loss, theirs.accuracy)
    np.testing.assert_array_equal(ours.probabilities, theirs.probabilities)
    assert ours.probabilities.dtype == np.float32
    logits = predict_logits(model, VARIANTS[variant](x))
    assert logits.dtype == np.float32
    np.testing.assert_array_equal(logits, predict_logits(model, x.astype(np.float32)))


@pytest.mark.parametrize("labels", LABELS)
def test_any_integer_valued_labels(labels):
    x, y = pixels()
    reference_model, reference = train(x.astype(np.float32), y, batchnorm=True)
    model, history = train(x, LABELS[labels](y), batchnorm=True)
    np.testing.assert_array_equal(model.theta, reference_model.theta)
    assert history["val_loss"] == reference["val_loss"]


def test_float64_model_takes_float32_data_as_float64():
    x, y = pixels()
    model, _ = train(x.astype(np.float32), y, batchnorm=True, dtype=np.float64)
    reference, _ = train(x.astype(np.float64), y, batchnorm=True, dtype=np.float64)
    np.testing.assert_array_equal(model.theta, reference.theta)
    assert predict_logits(model, x).dtype == np.float64


def test_c_ordered_data_of_the_model_dtype_are_not_copied():
    x, y = pixels()
    model = build_model(spec(True), FEATURES, np.random.default_rng(0))
    x32 = np.ascontiguousarray(x, np.float32)
    assert as_inputs(model, x32) is x32
    assert as_labels(model, y, N) is y


def bad(x=None, y=None):
    good_x, good_y = pixels()
    return (good_x if x is None else x), (good_y if y is None else y)


def with_nan(dtype):
    x = pixels()[0].astype(dtype)
    x[7, 2] = np.nan
    return x


@pytest.mark.parametrize(
    ("x", "y", "message"),
    [
        (*bad(x=pixels()[0] + 1j), r"training x: expected real numbers, got an array of complex"),
        (*bad(x=pixels()[0].astype(object)), r"training x: expected real numbers, .* object"),
        (*bad(x=pixels()[0].astype(str)), r"training x: expected real numbers, .* <U"),
        (
            *bad(x=pixels()[0].reshape(N, 2, 3)),
            r"training x: must be non-empty rows .*\(48, 2",
        ),
        (*bad(x=pixels()[0][:, :5]), r"training x: the data have 5 features but the model takes 6"),
        (*bad(x=with_nan(np.float64)), r"training x: holds NaN or inf \(as float32\), .* row 7"),
        (*bad(x=np.full((N, FEATURES), 1e300)), r"training x: holds NaN or inf \(as float32\)"),
        (*bad(y=np.full(N, 0.5)), r"training y: labels must be 48 integers .* float64\[48\]"),
        (*bad(y=np.zeros(N, complex)), r"training y: labels must be 48 integers"),
        (*bad(y=np.array(["0"] * N)), r"training y: labels must be 48 integers"),
        (*bad(y=np.zeros((N, 1), int)), r"training y: labels must be 48 integers .*\[48, 1\]"),
        (*bad(y=np.full(N, np.nan)), r"training y: labels must be 48 integers"),
        (*bad(y=np.full(N, 3.0)), r"training y: labels must lie in 0..2 .* found 3..3"),
        (*bad(y=np.full(N, -1, np.int8)), r"training y: labels must lie in 0..2 .* found -1..-1"),
    ],
)
def test_bad_arrays_are_one_line_data_errors_naming_the_argument(x, y, message):
    model = build_model(spec(True), FEATURES, np.random.default_rng(0))
    with pytest.raises(DataError, match=message) as error:
        fit(model, x, y, get_optimizer("sgd", 0.1), ONE_EPOCH, rng=np.random.default_rng(0))
    assert "\n" not in str(error.value)
    with pytest.raises(DataError, match=message.replace("training", "evaluation")):
        evaluate(model, x, y)


def test_bad_validation_data_are_named_as_such():
    x, y = pixels()
    model = build_model(spec(False), FEATURES, np.random.default_rng(0))
    with pytest.raises(DataError, match="validation x: holds NaN"):
        fit(model, x, y, get_optimizer("sgd", 0.1), ONE_EPOCH, rng=np.random.default_rng(0),
            validation=(with_nan(np.float32), y))  # fmt: skip
    with pytest.raises(DataError, match="prediction x: must be non-empty rows"):
        predict_logits(model, np.zeros((0, FEATURES)))


class RowSource:
    """Rows made when read (like data.transforms.LazyRows); records every read."""

    makes_rows = True

    def __init__(self, x: np.ndarray) -> None:
        self.x, self.shape, self.reads = x, x.shape, []

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, index):
        self.reads.append(index)
        return self.x[index]


def test_a_row_source_is_evaluated_a_chunk_at_a_time_exactly_as_its_array(monkeypatch):
    monkeypatch.setattr(evaluation, "EVAL_CHUNK", 16)
    x, y = pixels()
    model, _ = train(x, y, batchnorm=True)
    source = RowSource(x)
    lazy, whole = evaluate(model, source, y), evaluate(model, x, y)
    assert [(s.start, s.stop) for s in source.reads] == [(0, 16), (16, 32), (32, 48)]
    assert lazy.loss == whole.loss and lazy.accuracy == whole.accuracy
    np.testing.assert_array_equal(lazy.probabilities, whole.probabilities)
    np.testing.assert_array_equal(lazy.predictions, whole.predictions)
    np.testing.assert_array_equal(predict_logits(model, RowSource(x)), predict_logits(model, x))


def test_fit_validates_on_a_row_source_as_on_its_array():
    x, y = pixels()
    histories = []
    for validation in (x, RowSource(x)):
        model = build_model(spec(False), FEATURES, np.random.default_rng(0))
        history = fit(
            model, x, y, get_optimizer("sgd", 0.1), ONE_EPOCH, rng=np.random.default_rng(0),
            validation=(validation, y),
        )  # fmt: skip
        histories.append(history)
    assert histories[0]["val_loss"] == histories[1]["val_loss"]
    assert histories[0]["val_accuracy"] == histories[1]["val_accuracy"]


def test_a_row_source_is_checked_as_it_is_read(monkeypatch):
    monkeypatch.setattr(evaluation, "EVAL_CHUNK", 16)
    x, y = pixels()
    model = build_model(spec(False), FEATURES, np.random.default_rng(0))
    sgd, rng = get_optimizer("sgd", 0.1), np.random.default_rng(0)
    narrow = RowSource(x[:, :5].astype(np.float32))
    with pytest.raises(DataError, match="validation x: the data have 5 features but the model"):
        fit(model, x, y, sgd, ONE_EPOCH, rng=rng, validation=(narrow, y))
    assert narrow.reads == []  # refused before training, without reading a row
    late_nan = x.astype(np.float32)
    late_nan[37, 1] = np.inf
    with pytest.raises(DataError, match=r"validation x: holds NaN or inf .* first in row 37$"):
        fit(model, x, y, sgd, ONE_EPOCH, rng=rng, validation=(RowSource(late_nan), y))
    with pytest.raises(DataError, match="evaluation x: must be non-empty rows"):
        evaluate(model, RowSource(x[:0]), y[:0])
