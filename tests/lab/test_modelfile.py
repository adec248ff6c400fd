import pickle

import numpy as np
import pytest

from digitlab.core.model import build_model
from digitlab.core.specs import mlp_spec
from digitlab.errors import ModelError
from digitlab.lab.modelfile import load_model, save_model


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_round_trip(tmp_path, rng, dtype):
    model = build_model(
        mlp_spec([7], 3, "leaky_relu", activation_params={"slope": 0.2}, dropout=0.1), 5, rng, dtype
    )
    path = save_model(model, tmp_path / "m.npz", extra={"note": "hi"})
    loaded, extra = load_model(path)
    assert extra == {"note": "hi"}
    assert loaded.describe() == model.describe()
    x = rng.standard_normal((4, 5)).astype(dtype)
    np.testing.assert_array_equal(loaded.forward(x), model.forward(x))
    assert loaded.forward(x).dtype == dtype


def test_run_folder_is_accepted(tmp_path, tiny_model):
    save_model(tiny_model, tmp_path / "model.npz")
    load_model(tmp_path)


def test_pickle_is_never_unpickled(tmp_path):
    class Boom:
        def __reduce__(self):
            return (exec, ("raise SystemExit('unpickled!')",))

    path = tmp_path / "evil.npz"
    path.write_bytes(pickle.dumps(Boom()))
    with pytest.raises(ModelError, match="not a digitlab model file"):
        load_model(path)
    np.save(tmp_path / "obj.npy", np.array([Boom()], dtype=object), allow_pickle=True)
    with pytest.raises(ModelError, match="not a digitlab model file"):
        load_model(tmp_path / "obj.npy")


def test_foreign_and_corrupt_files(tmp_path, tiny_model):
    np.savez(tmp_path / "other.npz", a=np.ones(3))
    with pytest.raises(ModelError, match="no model.json"):
        load_model(tmp_path / "other.npz")
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(ModelError, match="not a digitlab model file"):
        load_model(tmp_path / "text.npz")
    good = save_model(tiny_model, tmp_path / "good.npz")
    (tmp_path / "cut.npz").write_bytes(good.read_bytes()[:200])
    with pytest.raises(ModelError):
        load_model(tmp_path / "cut.npz")
    with pytest.raises(ModelError, match="no such model file"):
        load_model(tmp_path / "absent.npz")


def test_arrays_must_fit_the_description(tmp_path, tiny_model):
    path = save_model(tiny_model, tmp_path / "m.npz")
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    arrays["dense1.w"] = np.zeros((9, 9))
    np.savez(tmp_path / "wrong.npz", **arrays)
    with pytest.raises(ModelError, match=r"array dense1.w is float64\[9, 9\]"):
        load_model(tmp_path / "wrong.npz")


def test_interrupted_save_leaves_previous_model(tmp_path, tiny_model, monkeypatch):
    path = save_model(tiny_model, tmp_path / "m.npz")
    before = path.read_bytes()

    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(KeyboardInterrupt):
        save_model(tiny_model, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]


def test_bias_init_round_trips(tmp_path, rng):
    model = build_model(mlp_spec([4], 3, "relu", bias_init=1.0), 5, rng, np.float32)
    model.layers[0].params["b"][0] = 2.5  # a trained bias is saved, not the initial constant
    loaded, _ = load_model(save_model(model, tmp_path / "m.npz"))
    assert loaded.describe() == model.describe()
    assert loaded.describe()["layers"][0]["bias_init"] == 1.0
    np.testing.assert_array_equal(loaded.layers[0].params["b"], [2.5, 1, 1, 1])
    assert loaded.layers[0].init == "he, bias 1"
