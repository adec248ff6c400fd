"""The figure functions on small hand-made arrays: PNG bytes out, numbers where they are
returned."""

import numpy as np
import pytest

from digitlab.report import plots

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_per_class_scores_from_confusion():
    confusion = np.array([[3, 1, 0], [0, 2, 0], [1, 0, 0]])  # class 2 never predicted
    scores = plots.per_class_scores(confusion)
    np.testing.assert_allclose(scores.precision[:2], [3 / 4, 2 / 3])
    np.testing.assert_allclose(scores.recall, [3 / 4, 1.0, 0.0])
    assert np.isnan(scores.precision[2])
    np.testing.assert_array_equal(scores.support, [4, 2, 1])
    np.testing.assert_array_equal(scores.predicted, [4, 3, 0])


def test_per_class_scores_of_an_absent_class_are_nan():
    scores = plots.per_class_scores(np.array([[2, 0], [0, 0]]))
    assert np.isnan(scores.recall[1]) and np.isnan(scores.precision[1])


def test_curves_use_known_keys_and_ignore_others():
    history = [
        {"epoch": 1, "train_loss": 1.0, "val_loss": 1.2, "test_loss": 1.3, "monitor": {"a": 1}},
        {"epoch": 2, "train_loss": 0.5, "val_loss": None, "new_key": "text"},
    ]
    np.testing.assert_array_equal(plots.history_series(history, "val_loss"), [1.2, np.nan])
    assert plots.curves_plot(history, "loss").startswith(PNG_MAGIC)
    assert plots.curves_plot(history, "accuracy") is None


@pytest.mark.parametrize("image_shape", [(4, 3), ()])
def test_examples_grid_with_and_without_image_shape(rng, image_shape):
    n = 10
    images = rng.standard_normal((n, 12)).astype(np.float32)
    y, predictions = rng.integers(0, 3, n), rng.integers(0, 3, n)
    png = plots.examples_plot(images, y, predictions, rng.random(n), image_shape, "title")
    assert png.startswith(PNG_MAGIC)
    assert plots.example_tiles(images, image_shape).shape[0] == n


def test_weights_grid_shows_at_most_grid_max_units(rng):
    tiles_seen = plots.example_tiles(rng.standard_normal((3, 12)), (3, 4))
    assert tiles_seen.shape == (3, 3, 4)
    png = plots.weights_plot(rng.standard_normal((12, plots.GRID_MAX + 5)), (3, 4))
    assert png.startswith(PNG_MAGIC)


def test_confusion_and_scatter_are_pngs(rng):
    y = rng.integers(0, 4, 50)
    predictions = np.where(rng.random(50) < 0.8, y, rng.integers(0, 4, 50))
    confusion = np.bincount(y * 4 + predictions, minlength=16).reshape(4, 4)
    assert plots.confusion_plot(confusion).startswith(PNG_MAGIC)
    assert plots.jitter_scatter_plot(y, predictions, 4).startswith(PNG_MAGIC)
    # the jitter comes from a fixed seed: the same input draws the same figure
    assert plots.jitter_scatter_plot(y, predictions, 4) == plots.jitter_scatter_plot(
        y, predictions, 4
    )
