"""How a History, an Evaluation and a run folder show in a notebook: `_repr_html_()` parsed back,
its numbers compared with the object's own, its strings escaped."""

import base64
import io
import json
import shutil
from html import unescape
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import numpy as np
from matplotlib.image import imread
from sklearn.datasets import load_digits

import digitlab as dl
from digitlab.core.evaluation import Evaluation, History
from digitlab.report.runfolder import FirstLayer, RunFolder
from digitlab.stats import wilson_interval


class Parsed(HTMLParser):
    """Tables as rows of cell texts, all text, images, links and every start tag."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self.text: list[str] = []
        self.images: list[str] = []
        self.links: list[str] = []
        self.tags: list[str] = []
        self._cell: list[str] | None = None
        self.feed(html)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        attrs = dict(attrs)
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "img":
            self.images.append(attrs["src"])
        elif tag == "a":
            self.links.append(attrs["href"])

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data):
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)

    @property
    def all_text(self) -> str:
        return "".join(self.text)


def png_shape(src: str) -> tuple[int, ...]:
    prefix = "data:image/png;base64,"
    assert src.startswith(prefix)
    return imread(io.BytesIO(base64.b64decode(src[len(prefix) :])), format="png").shape


def trained(epochs: int = 3):
    x, y = load_digits(return_X_y=True)
    rng = np.random.default_rng(0)
    model = dl.build_model(dl.mlp_spec([16], 10, "tanh"), 64, rng)
    options = dl.TrainOptions(
        epochs=epochs,
        batch_size=dl.batch_size_schedule(64),
        learning_rate=dl.get_schedule("constant", 0.1, epochs),
    )
    history = dl.fit(
        model,
        x[:1200] / 16,
        y[:1200],
        dl.get_optimizer("sgd", 0.1),
        options,
        rng=rng,
        validation=(x[1200:] / 16, y[1200:]),
    )
    return model, history, (x[1200:] / 16, y[1200:])


def test_history_shows_its_numbers_and_a_curve():
    _, history, _ = trained(3)
    page = Parsed(history._repr_html_())
    assert "3 epochs" in page.all_text
    (table,) = page.tables
    header, *rows = table
    assert header[:3] == ["epoch", "train loss", "train acc."] and "val. acc." in header
    assert len(rows) == 3
    for row, record in zip(rows, history.records(), strict=True):
        cells = dict(zip(header, row, strict=True))
        assert cells["epoch"] == str(int(record["epoch"]))
        assert cells["train loss"] == f"{record['train_loss']:.4f}"
        assert cells["val. acc."] == f"{100 * record['val_accuracy']:.2f}%"
        assert cells["learning rate"] == "0.1"
    (image,) = page.images
    height, width, _ = png_shape(image)
    assert width > 2 * height  # loss and accuracy side by side


def test_a_long_history_shows_its_first_and_last_epochs():
    history = History([{"epoch": e, "train_loss": 1 / e} for e in range(1, 31)])
    header, *rows = Parsed(history._repr_html_()).tables[0]
    assert header == ["epoch", "train loss"]
    epochs = [row[0] for row in rows]
    assert epochs == ["1", "2", "3", "…"] + [str(e) for e in range(23, 31)]
    assert rows[3][1] == "(19 epochs)"
    assert rows[-1][1] == f"{1 / 30:.4f}"


def test_an_empty_history_has_no_table():
    page = Parsed(History()._repr_html_())
    assert "0 epochs" in page.all_text and page.tables == [] and page.images == []


def test_evaluation_shows_accuracy_interval_per_class_and_confusion():
    labels = np.array([0, 0, 1, 1, 2, 2, 2])
    predictions = np.array([0, 1, 1, 1, 2, 0, 2])
    probabilities = np.eye(3)[predictions]
    evaluation = Evaluation(0.25, 5 / 7, predictions, probabilities, 7, labels)
    page = Parsed(evaluation._repr_html_())
    low, high = wilson_interval(5, 7)
    assert f"accuracy 71.43% (95% interval {100 * low:.2f}%–{100 * high:.2f}%, n = 7)" in (
        page.all_text
    )
    assert "loss 0.2500" in page.all_text
    per_class, confusion = page.tables
    assert per_class[0] == ["class", "n", "precision", "recall"]
    assert per_class[1:] == [
        ["0", "2", "50.00%", "50.00%"],
        ["1", "2", "66.67%", "100.00%"],
        ["2", "3", "100.00%", "66.67%"],
    ]
    assert confusion[0] == ["true \\ predicted", "0", "1", "2"]
    assert [row[1:] for row in confusion[1:]] == [["1", "1", "0"], ["0", "2", "0"], ["1", "0", "2"]]


def test_evaluate_keeps_the_labels_its_html_counts():
    model, _, (x, y) = trained(1)
    evaluation = dl.evaluate(model, x, y)
    np.testing.assert_array_equal(evaluation.labels, y)
    confusion = Parsed(evaluation._repr_html_()).tables[1]
    counts = np.array([[int(c) for c in row[1:]] for row in confusion[1:]])
    assert counts.sum() == len(y)
    assert np.trace(counts) == round(evaluation.accuracy * len(y))
    np.testing.assert_array_equal(counts.sum(axis=1), np.bincount(y, minlength=10))


def test_a_run_folder_shows_settings_metrics_curves_and_its_report(trained_run, tmp_path):
    folder = Path(shutil.copytree(trained_run, tmp_path / 'run <&"x>'))
    config = json.loads((folder / "config.json").read_text())
    config["data"] = "<script>alert(1)</script>"  # any string from a file is text, never markup
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "report.html").write_text("<html></html>")  # `digitlab report` would draw it
    run = dl.read_run(folder)
    html = run._repr_html_()
    page = Parsed(html)
    assert "script" not in page.tags
    assert str(folder) in page.all_text and "(finished)" in page.all_text
    settings, metrics = page.tables
    assert ["data", "<script>alert(1)</script>"] in settings
    assert ["epochs", "2"] in settings
    rows = {row[0]: row for row in metrics[1:]}
    test = run.metrics["test"]
    low, high = test["accuracy_ci95"]
    assert rows["test"][1] == (
        f"{100 * test['accuracy']:.2f}% (95% interval {100 * low:.2f}%–{100 * high:.2f}%, "
        f"n = {test['n']:,})"
    )
    assert rows["test"][2] == f"{test['loss']:.4f}"
    assert set(rows) == {"train", "val", "test"}
    assert [unquote(link) for link in page.links] == [str(folder / "report.html")]
    assert len(page.images) == 1 and png_shape(page.images[0])[1] > 400
    assert json.loads(unescape(html.split("<pre>")[1].split("</pre>")[0])) == config


def test_a_run_folder_lists_its_alarms(tmp_path):
    history = [
        {"epoch": e, "train_loss": 2.3, "top_class_share": 0.9, "top2_class_share": 0.95}
        for e in (1, 2)
    ]
    run = RunFolder(tmp_path, {"epochs": 2}, history, {}, None, FirstLayer("none", 0, None), None)
    page = Parsed(run._repr_html_())
    assert "class collapse" in page.all_text and "90% of validation predictions" in page.all_text
    assert page.links == []  # no report.html here


def test_a_run_still_training_shows_its_state_and_history_so_far(tmp_path):
    history = [{"epoch": 1, "train_loss": 0.9, "val_loss": 0.8, "val_accuracy": 0.7}]
    live = {"state": "running", "epoch": 1, "epochs": 5}
    run = RunFolder(
        tmp_path, {"epochs": 5}, history, {}, None, FirstLayer("none", 0, None), None, live
    )
    page = Parsed(run._repr_html_())
    assert "(running)" in page.all_text
    assert len(page.tables) == 1  # settings only: no metrics yet
    assert len(page.images) == 1  # the curves so far
