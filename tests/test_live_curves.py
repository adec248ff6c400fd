"""LiveCurves outside a notebook: it prints nothing, and with a path it rewrites one image file
after every epoch (PNG or SVG), which another process can read while training goes on."""

import io

import numpy as np
import pytest
from matplotlib.image import imread
from sklearn.datasets import load_digits

import digitlab as dl
from digitlab.notebook import LiveCurves, in_notebook


def train(callbacks, epochs=3):
    x, y = load_digits(return_X_y=True)
    rng = np.random.default_rng(0)
    model = dl.build_model(dl.mlp_spec([16], 10, "tanh"), 64, rng)
    options = dl.TrainOptions(
        epochs=epochs,
        batch_size=dl.batch_size_schedule(64),
        learning_rate=dl.get_schedule("constant", 0.1, epochs),
    )
    hooks = dl.TrainHooks(callbacks=callbacks)
    return dl.fit(
        model,
        x[:1000] / 16,
        y[:1000],
        dl.get_optimizer("sgd", 0.1),
        options,
        rng=rng,
        validation=(x[1000:] / 16, y[1000:]),
        hooks=hooks,
    )


def test_outside_a_notebook_it_draws_nothing_and_prints_nothing(capsys):
    assert not in_notebook()
    live = LiveCurves()
    history = train([live])
    assert live.records == history.records()
    assert capsys.readouterr().out == ""
    assert live.caption().startswith("epoch 3: train_loss ")


def test_with_a_path_it_rewrites_the_figure_every_epoch(tmp_path):
    path = tmp_path / "live" / "curves.png"
    live = LiveCurves(path)
    seen = []

    def look(record, model):  # runs after LiveCurves, as another process reading the file would
        seen.append(path.read_bytes())

    history = train([live, look], epochs=3)
    assert len(seen) == 3 and len(set(seen)) == 3  # a new figure each epoch
    assert seen[-1] == path.read_bytes()
    height, width, _ = imread(io.BytesIO(seen[-1]), format="png").shape
    assert width > 2 * height
    assert [p.name for p in path.parent.iterdir()] == ["curves.png"]  # no temporary file left
    assert history.epochs == 3


def test_svg_and_a_bad_suffix(tmp_path):
    live = LiveCurves(tmp_path / "curves.svg")
    live({"epoch": 1, "train_loss": 0.5, "train_accuracy": 0.8}, None)
    text = (tmp_path / "curves.svg").read_text()
    assert text.lstrip().startswith("<?xml") and "<svg" in text
    with pytest.raises(dl.ConfigError, match=r"curves\.txt: the file must end in \.png or \.svg"):
        LiveCurves(tmp_path / "curves.txt")
