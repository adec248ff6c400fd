"""Inside: every layer's activations, units switched off, top units, dead and saturated flags."""

import numpy as np
import pytest

from digitlab.core.model import build_model
from digitlab.data.transforms import build_pipeline
from digitlab.errors import DataError
from digitlab.lab.config import make_config
from digitlab.lab.experiment import run
from digitlab.lab.modelfile import MODEL_FILE, load_model, save_model
from digitlab.studio.model_api import (
    SATURATED,
    RunModel,
    check_off,
    inside,
    load_run_model,
    load_test_set,
)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    configs = {
        "relu": {"epochs": 2, "hidden": [16]},
        "sigmoid": {"epochs": 2, "hidden": [12], "activation": "sigmoid"},
        "cnn": {
            "epochs": 1,
            "layers": [
                {"type": "reshape", "shape": [1, 8, 8]},
                {"type": "conv2d", "filters": 4, "kernel_size": 3},
                {"type": "activation", "name": "relu"},
                {"type": "flatten"},
            ],
        },
    }
    for name, config in configs.items():
        run(make_config(config), root / name)
    return root


def hand_model() -> RunModel:
    """3 inputs -> dense 2 -> relu -> dense 2 logits, with weights chosen by hand."""
    spec = [
        {"type": "dense", "units": 2},
        {"type": "activation", "name": "relu"},
        {"type": "dense", "units": 2},
    ]
    model = build_model(spec, 3, np.random.default_rng(0), np.float64)
    first, _, second = model.layers
    first.params["w"][...] = [[1, 0], [0, 1], [1, 1]]
    first.params["b"][...] = [0, 0]
    second.params["w"][...] = [[2, 0], [0, 1]]
    second.params["b"][...] = [0, 0.5]
    pipeline = build_pipeline(max_value=1.0, image_shape=(1, 3), dtype=np.float64)
    pipeline.fit(np.zeros((1, 3)))
    config = {"data": "idx"}
    return RunModel(None, model, config, pipeline, (1, 3), 1.0, "mnist", (1, 3))  # type: ignore


def test_a_unit_switched_off_changes_the_answer_as_computed_by_hand(monkeypatch):
    model = hand_model()
    monkeypatch.setattr("digitlab.studio.model_api.unit_flags", lambda run: ({}, None))
    raw = np.array([[1.0, 0.5, 0.0]])
    # hidden = relu([1, 0.5]) = [1, 0.5]; logits = [2 * 1, 1 * 0.5 + 0.5] = [2, 1]
    on = inside(model, raw)
    assert on["answer"] == 0
    expected = np.exp([2, 1]) / np.exp([2, 1]).sum()
    np.testing.assert_allclose(on["probabilities"], expected, atol=1e-6)
    assert [layer["values"] for layer in on["layers"]] == [[1, 0.5], [1, 0.5], [2, 1]]
    # unit 0 of the relu off: hidden = [0, 0.5]; logits = [0, 1]: the answer turns to 1
    off = inside(model, raw, {"relu1": [0]})
    assert off["answer"] == 1
    expected = np.exp([0, 1]) / np.exp([0, 1]).sum()
    np.testing.assert_allclose(off["probabilities"], expected, atol=1e-6)
    assert off["baseline"] == {"probabilities": on["probabilities"], "answer": 0}
    assert off["layers"][1]["off"] == [0] and off["layers"][1]["values"] == [0, 0.5]
    # top units toward answer 0: relu unit 0 gives 1 * 2, unit 1 gives 0.5 * 0
    assert [(u["unit"], u["contribution"]) for u in on["top_units"]] == [(0, 2.0), (1, 0.0)]


def test_switching_off_units_of_a_trained_network_matches_numpy(runs):
    model = load_run_model(runs / "relu")
    x_raw, y = load_test_set(model)
    raw = x_raw[:1]
    result = inside(model, raw)
    top = [u["unit"] for u in result["top_units"][:3]]
    off = inside(model, raw, {"relu1": top}, weights=False)
    dense1, _, dense2 = model.model.layers
    x = model.pipeline(raw).astype(np.float64)
    hidden = np.maximum(x @ dense1.params["w"] + dense1.params["b"], 0)
    hidden[:, top] = 0
    logits = hidden @ dense2.params["w"] + dense2.params["b"]
    probs = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    np.testing.assert_allclose(off["probabilities"], probs[0], atol=1e-5)
    answer = result["answer"]
    assert off["probabilities"][answer] < result["probabilities"][answer]
    assert off["weights"] is None
    # the top units are ranked by activation x weight toward the answer
    contributions = [u["contribution"] for u in result["top_units"]]
    assert contributions == sorted(contributions, reverse=True) and len(contributions) == 10
    for unit in result["top_units"]:
        assert unit["contribution"] == pytest.approx(unit["activation"] * unit["weight"], abs=1e-3)


def test_first_layer_weights_are_images(runs):
    result = inside(load_run_model(runs / "relu"), np.zeros((1, 64)))
    weights = result["weights"]
    assert weights["layer"] == "dense1" and weights["shape"] == [8, 8]
    images = np.array(weights["images"])
    assert images.shape == (16, 64)
    np.testing.assert_array_equal(np.abs(images).max(axis=1), 127)
    w = load_model(runs / "relu")[0].layers[0].params["w"]
    np.testing.assert_allclose(weights["scale"], np.abs(w).max(axis=0), rtol=1e-5)


def test_dead_and_saturated_units_are_marked(runs, tmp_path):
    for name, unit, bias, flag in (("relu", 3, -1e3, "dead"), ("sigmoid", 5, 50.0, "saturated")):
        model, extra = load_model(runs / name)
        before = inside(load_run_model(runs / name), np.zeros((1, 64)))["layers"][1]
        assert unit not in before[flag]
        model.layers[0].params["b"][unit] = bias
        folder = tmp_path / name
        folder.mkdir()
        save_model(model, folder / MODEL_FILE, extra=extra)
        layers = inside(load_run_model(folder), np.zeros((1, 64)))["layers"]
        activation = layers[1]
        assert activation["kind"] == "Activation" and activation["activation"] == name
        assert unit in activation[flag]
        other = "saturated" if flag == "dead" else "dead"
        assert unit not in activation[other]
    assert SATURATED == 0.01


def test_convolutions_show_feature_maps_and_filters(runs):
    model = load_run_model(runs / "cnn")
    x_raw, _ = load_test_set(model)
    result = inside(model, x_raw[:1])
    conv = result["layers"][0]
    assert conv["kind"] == "Conv2D" and np.array(conv["maps"]).shape == (4, 6, 6)
    assert result["weights"]["shape"] == [3, 3] and len(result["weights"]["images"]) == 4
    assert [layer["name"] for layer in result["layers"]] == ["conv1", "relu1", "dense1"]
    off = inside(model, x_raw[:1], check_off(model.model, {"relu1": [0, 1, 2, 3]}))
    assert np.array(off["layers"][1]["maps"]).max() == 0  # every channel off
    logits_bias = load_model(runs / "cnn")[0].layers[-1].params["b"]
    probs = np.exp(logits_bias - logits_bias.max()) / np.exp(logits_bias - logits_bias.max()).sum()
    np.testing.assert_allclose(off["probabilities"], probs, atol=1e-5)


def test_bad_unit_lists_are_one_line_errors(runs):
    model = load_run_model(runs / "relu").model
    with pytest.raises(DataError, match="no node 'relu9'"):
        check_off(model, {"relu9": [0]})
    with pytest.raises(DataError, match="relu1 has units 0..15; no unit 16"):
        check_off(model, {"relu1": [16]})
    with pytest.raises(DataError, match="list of unit numbers"):
        check_off(model, {"relu1": "0"})
    assert check_off(model, {"relu1": [3, 1, 3]}) == {"relu1": [1, 3]}


def studio_client(folders):
    from starlette.testclient import TestClient

    from digitlab.studio.app import create_app

    app = create_app(folders)
    client = TestClient(app, base_url="http://127.0.0.1")
    client.headers.update({"X-Digitlab-Token": app.state.page_token, "Origin": "http://127.0.0.1"})
    return client


def test_inside_and_testdigit_api(runs):
    client = studio_client([runs])
    model = load_run_model(runs / "relu")
    x_raw, y = load_test_set(model)
    digit = client.get("/api/testdigit?run=0/relu&index=3")
    assert digit.status_code == 200, digit.text
    digit = digit.json()
    assert digit["index"] == 3 and digit["label"] == int(y[3]) and digit["count"] == len(y)
    assert np.array(digit["input"]).shape == (8, 8)
    response = client.post("/api/inside?run=0/relu", json={"test_index": 3, "off": {"relu1": [2]}})
    assert response.status_code == 200, response.text
    result = response.json()
    assert result == inside(model, x_raw[3:4], {"relu1": [2]})
    assert result["baseline"]["probabilities"] == digit["probabilities"]
    canvas = np.zeros((100, 100), int)
    canvas[10:90, 45:55] = 255
    body = {"pixels": canvas.ravel().tolist(), "width": 100, "height": 100, "weights": False}
    response = client.post("/api/inside?run=0/relu", json=body)
    assert response.status_code == 200 and response.json()["weights"] is None
    errors = [
        ({"test_index": 10**6}, f"test digit 1000000 does not exist (the test set has {len(y)})"),
        ({"test_index": "x"}, "a test digit's index must be a whole number"),
        ({"test_index": 0, "off": {"relu1": [99]}}, "relu1 has units 0..15; no unit 99"),
        ({}, "send a drawing"),
    ]
    for body, message in errors:
        response = client.post("/api/inside?run=0/relu", json=body)
        assert response.status_code == 400 and response.json()["error"].startswith(message)
    assert client.get("/api/testdigit?run=0/relu&index=-1").status_code == 400
    assert client.get("/api/testdigit?run=0/nothing&index=1").status_code == 404
