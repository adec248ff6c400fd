"""build_report on a real run folder: every section, embedded PNGs, escaping, missing and
corrupt files."""

import base64
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from digitlab.cli.report import report as report_command
from digitlab.errors import DataError, DigitlabError, ModelError
from digitlab.report import build_report
from digitlab.report.html import PLOT_FILES, SECTION_IDS

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
DATA_URI = re.compile(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"')


def section(page: str, section_id: str) -> str:
    """The HTML of one <section>."""
    match = re.search(rf'<section id="{section_id}">(.*?)</section>', page, re.S)
    assert match, f"no section {section_id}"
    return match.group(1)


@pytest.fixture(scope="module")
def full_report(trained_run: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The report of an untouched copy of the trained run, built once for this module."""
    folder = shutil.copytree(trained_run, tmp_path_factory.mktemp("full") / "run")
    path = build_report(folder)
    return path, path.read_text(encoding="utf-8")


def test_report_has_every_section_with_embedded_pngs(full_report):
    path, page = full_report
    assert path.name == "report.html" and path.is_file()
    for section_id in SECTION_IDS:
        assert f'id="{section_id}"' in page
    images = DATA_URI.findall(page)
    assert len(images) == len(PLOT_FILES)  # every figure drawn, nothing else
    assert all(base64.b64decode(data).startswith(PNG_MAGIC) for data in images)
    assert page.count("<img") == len(images)  # no image loaded from anywhere else
    for section_id in ("curves", "confusion", "per-class", "hardest", "scatter", "weights"):
        assert "data:image/png;base64," in section(page, section_id)
    assert 'class="note"' not in section(page, "weights")


def test_plots_folder_holds_valid_pngs_matching_the_page(full_report):
    path, page = full_report
    folder = path.parent / "plots"
    assert sorted(p.name for p in folder.iterdir()) == sorted(PLOT_FILES)
    embedded = {base64.b64decode(data) for data in DATA_URI.findall(page)}
    for name in PLOT_FILES:
        png = (folder / name).read_bytes()
        assert png.startswith(PNG_MAGIC), name
        assert png in embedded, name
    assert not list(path.parent.glob(".*.tmp"))  # atomic writes leave no temporary files


def test_accuracy_table_matches_metrics(full_report):
    path, page = full_report
    metrics = json.loads((path.parent / "metrics.json").read_text())
    table = section(page, "accuracy")
    for split, label in (("train", "train"), ("val", "validation"), ("test", "test")):
        low, high = metrics[split]["accuracy_ci95"]
        row = re.search(rf"<td>{label}</td>(.*?)</tr>", table).group(1)
        assert f"{100 * metrics[split]['accuracy']:.2f}%" in row
        assert f"{100 * low:.2f}&ndash;{100 * high:.2f}%" in row
        assert f">{metrics[split]['n']:,}<" in row


def test_per_class_table_lists_every_class(full_report):
    _, page = full_report
    rows = re.findall(r"<tr><td>(\d+)</td>", section(page, "per-class"))
    assert rows == [str(j) for j in range(10)]


def test_text_from_files_is_escaped(run_dir: Path):
    (run_dir / "predictions.npz").unlink()  # fewer figures: this test is about the text
    config = json.loads((run_dir / "config.json").read_text())
    config["activation"] = {"name": "<script>alert(1)</script>", "slope": "a&b"}
    (run_dir / "config.json").write_text(json.dumps(config))
    page = build_report(run_dir).read_text()
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in section(page, "summary")
    assert "a&amp;b" in section(page, "summary")


def test_run_without_predictions_still_reports(run_dir: Path):
    (run_dir / "plots").mkdir()
    (run_dir / "plots" / "hardest.png").write_bytes(b"from an earlier report")
    (run_dir / "predictions.npz").unlink()
    page = build_report(run_dir).read_text()
    for section_id in SECTION_IDS:
        assert f'id="{section_id}"' in page
    for section_id in ("hardest", "misclassified", "scatter"):
        assert "predictions.npz" in section(page, section_id)
        assert "<img" not in section(page, section_id)
    for section_id in ("curves", "confusion", "per-class", "weights"):
        assert "data:image/png;base64," in section(page, section_id)
    # figures the run can no longer make do not linger from the earlier report
    names = {p.name for p in (run_dir / "plots").iterdir()}
    assert names.isdisjoint({"hardest.png", "misclassified.png", "scatter.png"})


def test_inputs_that_are_not_images(run_dir: Path):
    with np.load(run_dir / "predictions.npz", allow_pickle=False) as data:
        arrays = {key: data[key] for key in data.files}
    arrays["image_shape"] = np.array([], dtype=np.int64)
    np.savez(run_dir / "predictions.npz", **arrays)
    page = build_report(run_dir).read_text()
    assert "drawn as a strip" in section(page, "hardest")
    assert "data:image/png;base64," in section(page, "hardest")
    assert "no image layout" in section(page, "weights")
    assert "<img" not in section(page, "weights")


def test_corrupt_metrics_is_one_line_error(run_dir: Path):
    (run_dir / "metrics.json").write_text('{"test": {"accuracy": 0.9,')
    with pytest.raises(DataError) as caught:
        build_report(run_dir)
    message = str(caught.value)
    assert "metrics.json" in message and "not valid JSON" in message
    assert "\n" not in message
    assert not (run_dir / "report.html").exists()


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("history.jsonl", '{"epoch": 1}\n[1, 2]\n', "history.jsonl: line 2"),
        ("config.json", "[]", "config.json: expected a JSON object"),
        ("metrics.json", '{"test": {"loss": 1}}', "metrics.json: split 'test'"),
        ("predictions.npz", "not a zip file", "predictions.npz: not a readable .npz file"),
    ],
)
def test_malformed_files_name_the_file(run_dir: Path, name: str, content: str, expected: str):
    (run_dir / name).write_text(content)
    with pytest.raises(DataError, match=re.escape(expected)) as caught:
        build_report(run_dir)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("name", ["config.json", "history.jsonl", "metrics.json", "model.npz"])
def test_missing_file_names_it(run_dir: Path, name: str):
    (run_dir / name).unlink()
    with pytest.raises(DigitlabError, match=re.escape(name)) as caught:
        build_report(run_dir)
    assert isinstance(caught.value, ModelError if name == "model.npz" else DataError)


def test_missing_run_folder(tmp_path: Path):
    with pytest.raises(DataError, match="no such run folder"):
        build_report(tmp_path / "nowhere")


def test_report_command_prints_the_path(run_dir: Path):
    (run_dir / "predictions.npz").unlink()  # fewer figures: this test is about the command
    result = CliRunner().invoke(report_command, [str(run_dir)])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == str(run_dir / "report.html")
    assert (run_dir / "report.html").is_file()


def test_summary_describes_the_saved_model_not_the_default_hidden(tmp_path: Path):
    from digitlab.lab.config import make_config
    from digitlab.lab.experiment import run

    layers = [
        {"type": "reshape", "shape": [1, 8, 8]},
        {"type": "conv2d", "filters": 4, "kernel_size": 3, "padding": 1},
        {"type": "activation", "name": "relu"},
        {"type": "maxpool2d", "size": 2},
        {"type": "flatten"},
    ]  # the run adds the output dense layer (10 units)
    run(make_config({"epochs": 1, "layers": layers}), tmp_path / "conv")
    (tmp_path / "conv" / "predictions.npz").unlink()  # fewer figures: this test is the summary
    summary = section(build_report(tmp_path / "conv").read_text(), "summary")
    model = re.search(r"<td>model</td><td>(.*?)</td>", summary)
    assert model, "no model row in the summary"
    text = model.group(1)
    assert "conv2d 4 3x3" in text and "padding=1" in text and "maxpool2d" in text
    assert "dense 10" in text and text.startswith("input 64 ")
    # conv: 4 filters x 3 x 3 weights + 4 biases = 40; dense: (4 x 4 x 4) x 10 + 10 = 650
    assert "690 parameters" in text
    assert "100" not in text and "activation relu" not in text
    assert "<td>learning rate</td><td>0.1, schedule constant</td>" in summary
