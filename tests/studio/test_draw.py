"""Draw: a drawing goes through the dataset's preparation and the run's own fitted pipeline."""

import numpy as np
import pytest

from digitlab.lab.config import make_config
from digitlab.lab.experiment import prepare_data, run
from digitlab.lab.modelfile import MODEL_FILE, load_model, restore_pipeline, save_model
from digitlab.studio.model_api import (
    answer,
    forward_all,
    load_run_model,
    load_test_set,
    predict,
)

CONFIG = {"epochs": 3, "hidden": [32], "standardize": True, "per_pixel": True, "crop": 1}


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("runs") / "digits"
    run(make_config(CONFIG), folder)
    return folder


def canvas_one() -> np.ndarray:
    canvas = np.zeros((280, 280))
    canvas[30:250, 120:165] = 255
    return canvas


def test_the_saved_pipeline_transforms_exactly_as_in_training(digits_run):
    prepared = prepare_data(make_config(CONFIG))
    _, extra = load_model(digits_run / MODEL_FILE)
    pipeline = restore_pipeline(extra["config"], extra["pipeline"])
    x_raw, _ = load_test_set(load_run_model(digits_run))
    np.testing.assert_array_equal(pipeline(x_raw), prepared.splits.test.x)
    assert extra["pipeline"]["image_shape"] == [8, 8] and extra["pipeline"]["max_value"] == 16


def test_test_digits_get_the_probabilities_saved_at_evaluation(digits_run):
    model = load_run_model(digits_run)
    x_raw, y = load_test_set(model)
    values = forward_all(model.model, model.pipeline(x_raw))
    with np.load(digits_run / "predictions.npz") as saved:
        np.testing.assert_array_equal(y, saved["test_y"])
        expected = saved["test_probs"]
    probs = np.exp(values[model.model.output] - values[model.model.output].max(axis=1)[:, None])
    probs /= probs.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(probs, expected, rtol=1e-4, atol=1e-6)


def test_predict_shows_the_exact_input_and_ten_probabilities(digits_run):
    model = load_run_model(digits_run)
    result = predict(model, canvas_one())
    image = np.array(result["input"])
    assert image.shape == (6, 6)  # 8x8 cropped by 1: what the network takes
    assert image.min() >= 0 and image.max() <= 1
    probs = np.array(result["probabilities"])
    assert probs.shape == (10,) and probs.sum() == pytest.approx(1, abs=1e-5)
    assert result["answer"] == int(probs.argmax())
    raw = np.zeros((1, 64))
    from digitlab.data.drawing import prepare_drawing

    raw[0] = prepare_drawing(canvas_one(), (8, 8), 16, "digits").ravel()
    x = model.pipeline(raw)
    expected, best = answer(model.model, forward_all(model.model, x))
    assert result["probabilities"] == expected and result["answer"] == best
    stretched = (x - x.min()) / (x.max() - x.min())  # standardized: shown min..max as 0..1
    np.testing.assert_allclose(image.ravel(), stretched.ravel(), atol=1e-4)


def test_a_model_file_without_its_pipeline_refits_it_from_the_data(digits_run, tmp_path):
    old = tmp_path / "old"
    old.mkdir()
    model, extra = load_model(digits_run / MODEL_FILE)
    save_model(model, old / MODEL_FILE, extra={"config": extra["config"]})
    before, after = load_run_model(digits_run), load_run_model(old)
    x_raw, _ = load_test_set(before)
    np.testing.assert_array_equal(before.pipeline(x_raw), after.pipeline(x_raw))
    assert predict(after, canvas_one()) == predict(before, canvas_one())


def studio_client(folders):
    """A TestClient on the studio serving `folders`, sending the page token and origin POSTs
    need (as the page does)."""
    from starlette.testclient import TestClient

    from digitlab.studio.app import create_app

    app = create_app(folders)
    client = TestClient(app, base_url="http://127.0.0.1")
    client.headers.update({"X-Digitlab-Token": app.state.page_token, "Origin": "http://127.0.0.1"})
    return client


def png_bytes(image: np.ndarray, mode: str = "L") -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image.astype(np.uint8), mode=mode).save(buffer, format="PNG")
    return buffer.getvalue()


def test_predict_api_answers_json_pixels_and_png_uploads(digits_run):
    client = studio_client([digits_run.parent])
    url = "/api/predict?run=0/digits"
    canvas = canvas_one()
    body = {"pixels": canvas.astype(int).ravel().tolist(), "width": 280, "height": 280}
    response = client.post(url, json=body)
    assert response.status_code == 200, response.text
    result = response.json()
    assert result == predict(load_run_model(digits_run), canvas)
    # the same digit as a PNG, dark ink on white paper: inverted to ink-high, same answer
    paper = png_bytes(255 - canvas)
    response = client.post(url, content=paper, headers={"Content-Type": "image/png"})
    assert response.status_code == 200, response.text
    assert response.json() == result


def test_predict_api_errors_are_one_line(digits_run):
    client = studio_client([digits_run.parent])
    url = "/api/predict?run=0/digits"
    empty = {"pixels": [0] * 100, "width": 10, "height": 10}
    cases = [
        (empty, 400, "the drawing is empty: draw a digit first"),
        ({"pixels": [0] * 99, "width": 10, "height": 10}, 400, "pixels must be a list"),
        ({"pixels": [300] * 100, "width": 10, "height": 10}, 400, "pixels must be numbers 0..255"),
        ({"width": 10}, 400, 'send {"pixels"'),
    ]
    for body, status, message in cases:
        response = client.post(url, json=body)
        assert response.status_code == status
        assert response.json()["error"].startswith(message)
    response = client.post(url, content=b"not a png", headers={"Content-Type": "image/png"})
    assert response.status_code == 400 and "not a readable PNG" in response.json()["error"]
    for run_id in ("0/missing", "0/../digits", "5/digits"):
        response = client.post(f"/api/predict?run={run_id}", json=empty)
        assert response.status_code == 404
    assert client.get(url).status_code == 405  # predictions are POSTs


def test_predict_api_needs_the_page_token(digits_run):
    client = studio_client([digits_run.parent])
    del client.headers["X-Digitlab-Token"]
    body = {"pixels": canvas_one().astype(int).ravel().tolist(), "width": 280, "height": 280}
    assert client.post("/api/predict?run=0/digits", json=body).status_code == 403
