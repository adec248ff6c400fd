"""Q5's highest-variance pixels and Q12's fill, end to end: picked on the training part only,
saved with the model, reused by predict, the studio and eval, shown in the report."""

import json

import numpy as np
import pytest

from digitlab.core.evaluation import evaluate
from digitlab.data.idx import read_idx, write_idx
from digitlab.errors import ModelError
from digitlab.lab.config import make_config
from digitlab.lab.experiment import prepare_data, raw_splits, run, summarise
from digitlab.lab.modelfile import MODEL_FILE, load_model, restore_pipeline, save_model
from digitlab.report.html import build_report
from digitlab.studio.model_api import forward_all, load_run_model, load_test_set

VARIANCE = {"epochs": 3, "hidden": [16], "crop": 1, "pixel_subset": 20, "pixel_pick": "variance",
            "standardize": True}  # fmt: skip


def top_variance(x: np.ndarray, n: int) -> list[int]:
    return sorted(np.argsort(-x.astype(np.float64).var(axis=0), kind="stable")[:n].tolist())


@pytest.fixture
def two_kinds_folder(tmp_path):
    """6x6 IDX files whose training images vary in the left half and test images in the
    right half: the pixels a pick over the test file would choose are not the training ones."""
    rng = np.random.default_rng(0)
    for prefix, count, noisy in (("train", 300, slice(0, 3)), ("t10k", 200, slice(3, 6))):
        images = np.full((count, 6, 6), 100, dtype=np.uint8)
        images[:, :, noisy] = rng.integers(0, 256, size=(count, 6, 3), dtype=np.uint8)
        labels = np.resize(np.arange(3, dtype=np.uint8), count)
        write_idx(tmp_path / f"{prefix}-images-idx3-ubyte", images)
        write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte", labels)
    return tmp_path


@pytest.mark.parametrize("split", ["book", "holdout"])
def test_variance_pick_sees_the_training_part_only(two_kinds_folder, split):
    config = make_config(
        {"data": "idx", "data_dir": str(two_kinds_folder), "split": split, "val_fraction": 0.5,
         "pixel_subset": 9, "pixel_pick": "variance", "dtype": "float64"}
    )  # fmt: skip
    prepared = prepare_data(config)
    columns = prepared.pipeline["fitted"]["pixel_subset"]["columns"]
    _, raw = raw_splits(config)
    assert columns == top_variance(raw.train.x, 9)
    assert all(column % 6 < 3 for column in columns)  # the training file's noisy half
    if split == "book":  # validation and test come from the other file: its pick differs
        others = np.concatenate([raw.val.x, raw.test.x])
        assert top_variance(others, 9) != columns
    test_file = read_idx(two_kinds_folder / "t10k-images-idx3-ubyte").reshape(-1, 36)
    if split == "book":
        np.testing.assert_array_equal(prepared.splits.test.x, test_file[100:, columns] / 255)


@pytest.fixture(scope="module")
def variance_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("runs") / "variance"
    run(make_config(VARIANCE), folder)
    return folder


def test_the_model_file_keeps_the_chosen_pixels_and_reproduces_predictions(variance_run):
    _, extra = load_model(variance_run / MODEL_FILE)
    saved = extra["pipeline"]["fitted"]["pixel_subset"]
    _, raw = raw_splits(make_config(VARIANCE))
    cropped = raw.train.x.reshape(-1, 8, 8)[:, 1:-1, 1:-1].reshape(-1, 36)
    assert saved == {"columns": top_variance(cropped, 20), "n_features": 36}
    # the restored pipeline reads those columns on full-size images, without the training data
    pipeline = restore_pipeline(extra["config"], extra["pipeline"])
    prepared = prepare_data(make_config(VARIANCE))
    np.testing.assert_array_equal(pipeline(raw.test.x), prepared.splits.test.x)
    # the studio's and `digitlab predict`'s loader gives the probabilities saved at evaluation
    model = load_run_model(variance_run)
    x_raw, _ = load_test_set(model)
    values = forward_all(model.model, model.pipeline(x_raw))[model.model.output]
    with np.load(variance_run / "predictions.npz") as arrays:
        expected = arrays["test_probs"]
    probs = np.exp(values - values.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(probs, expected, rtol=1e-4, atol=1e-6)


def test_eval_reads_the_pixels_saved_with_the_model(variance_run, cli, tmp_path):
    metrics = json.loads((variance_run / "metrics.json").read_text())
    code, out, err = cli(["eval", str(variance_run)])
    assert code == 0, err
    assert f"accuracy {100 * metrics['test']['accuracy']:.2f}%" in out
    # a model that saved other columns than a fresh pick would choose is evaluated on its own
    model, extra = load_model(variance_run / MODEL_FILE)
    extra["pipeline"]["fitted"]["pixel_subset"]["columns"] = list(range(20))
    save_model(model, tmp_path / MODEL_FILE, extra=extra)
    prepared = prepare_data(make_config(VARIANCE), saved=extra["pipeline"])
    _, raw = raw_splits(make_config(VARIANCE))
    cropped = raw.test.x.reshape(-1, 8, 8)[:, 1:-1, 1:-1].reshape(-1, 36)[:, :20] / 16
    mean, std = prepared.pipeline["fitted"]["standardize"].values()
    np.testing.assert_allclose(prepared.splits.test.x, (cropped - mean) / std, rtol=1e-5)
    test = prepared.splits.test
    m = summarise(evaluate(model, test.x, test.y, "softmax_cross_entropy"), test.y, 10)
    code, out, err = cli(["eval", str(tmp_path / MODEL_FILE)])
    assert code == 0, err
    assert f"accuracy {100 * m['accuracy']:.2f}%" in out


def test_a_variance_model_without_its_columns_is_refused_in_one_line(variance_run, tmp_path):
    model, extra = load_model(variance_run / MODEL_FILE)
    del extra["pipeline"]["fitted"]["pixel_subset"]
    save_model(model, tmp_path / MODEL_FILE, extra=extra)
    with pytest.raises(ModelError, match="saved data pipeline is incomplete") as info:
        load_run_model(tmp_path)
    assert "\n" not in str(info.value)


def test_the_report_draws_the_kept_pixels(variance_run, tmp_path):
    page = build_report(variance_run).read_text()
    pixels = page.split('id="pixels"')[1].split("</section>")[0]
    assert "highest-variance pixels of the training images" in pixels
    assert "data:image/png;base64," in pixels
    assert (variance_run / "plots" / "pixels.png").read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize(
    ("options", "fill", "expected"),
    [
        ({}, "zero", 0.0),
        ({}, 1.0, 1.0),
        ({"invert": True}, "zero", 1.0),  # raw black is white once inverted
        ({"raw_pixels": True}, 1.0, 16.0),  # the 8x8 digits' raw maximum
    ],
)
def test_fill_is_put_on_the_scale_augmentation_sees(options, fill, expected):
    prepared = prepare_data(make_config({"augment": {"shift": 1, "fill": fill}, **options}))
    black, white = prepared.pipeline["pixel_range"]
    value = black + (0.0 if fill == "zero" else fill) * (white - black)
    assert value == pytest.approx(expected)
    standardized = prepare_data(make_config({"standardize": True, **options}))
    mean, std = (np.array(v) for v in standardized.pipeline["fitted"]["standardize"].values())
    black, white = standardized.pipeline["pixel_range"]
    value = black + (0.0 if fill == "zero" else fill) * (white - black)
    assert value == pytest.approx((expected - mean) / std, rel=1e-5)


def test_a_run_with_an_ink_fill_trains_and_shows_it(tmp_path):
    folder = tmp_path / "fill"
    run(make_config({"epochs": 2, "standardize": True, "augment": {"shift": 2, "fill": 1.0}}),
        folder)  # fmt: skip
    page = build_report(folder).read_text()
    assert "fill = 1.0" in page.split('id="augmentation"')[1].split("</section>")[0]
    assert json.loads((folder / "config.json").read_text())["augment"] == {"shift": 2, "fill": 1}
