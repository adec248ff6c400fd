import json

import pytest

from digitlab.errors import ConfigError
from digitlab.lab.config import load_config, make_config, read_config_file, to_dict


def test_defaults_validate():
    config = make_config({})
    assert config.data == "digits" and config.activation.name == "relu"


def test_entries_take_names_or_tables():
    config = make_config({"activation": {"name": "leaky_relu", "slope": 0.2}, "optimizer": "adam"})
    assert config.activation.params == {"slope": 0.2}
    assert to_dict(config)["activation"] == {"name": "leaky_relu", "slope": 0.2}
    assert make_config(to_dict(config)) == config


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"activation": "swishy"}, "unknown activation 'swishy'"),
        ({"activation": {"name": "relu", "slope": 1}}, "takes no parameters; got slope"),
        ({"optimizer": "adamm"}, "unknown optimizer 'adamm'"),
        ({"lr": 0}, "lr: Input should be greater than 0"),
        ({"lr": -1.0}, "lr: Input should be greater than 0"),
        ({"hidden": [100, 0]}, "hidden sizes must all be > 0"),
        ({"learning_rate": 0}, "learning_rate: Input should be greater than 0"),
        ({"output_activation": "swishy"}, "unknown activation 'swishy'"),
        ({"init": "zeros"}, "unknown initialiser 'zeros'"),
        ({"lr_schedule": "linear"}, "unknown schedule 'linear'"),
        ({"batch_size": 0}, "batch_size"),
        ({"epochs": -3}, "epochs"),
        ({"data": "cifar"}, "data: Input should be 'digits', 'mnist', 'idx', 'folder' or 'csv'"),
        ({"data": "idx"}, "--data idx needs --data-dir"),
        ({"data": "folder"}, "--data folder needs --data-dir"),
        ({"data": "csv"}, "--data csv needs --data-dir"),
        ({"image_size": 16}, "--image-size sizes the images of --data folder"),
        ({"data": "folder", "data_dir": "d", "image_size": 4}, "image_size: Input should be"),
        ({"spilt": "book"}, "spilt: Extra inputs are not permitted"),
        ({"dropout": 1.0}, "dropout"),
        ({"loss": "hinge"}, "unknown loss 'hinge'"),
        ({"bias_init": 1.0, "bias_std": 0.1}, "give bias_init .* or bias_std .*, not both"),
        ({"bias_init": float("inf")}, "bias_init: Input should be a finite number"),
        ({"bias_init": "one"}, "bias_init: Input should be a valid number"),
        ({"clip_grad_norm": 0}, "clip_grad_norm: Input should be greater than 0"),
        ({"max_norm": -1.0}, "max_norm: Input should be greater than 0"),
        ({"max_norm": float("nan")}, "max_norm: Input should be a finite number"),
    ],
)
def test_bad_values_are_one_line_config_errors(values, message):
    with pytest.raises(ConfigError, match=message) as caught:
        make_config(values)
    assert "\n" not in str(caught.value)


def test_toml_file_and_overrides(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text(
        'hidden = [32, 16]\nactivation = { name = "leaky_relu", slope = 0.1 }\nlr = 0.5\n'
    )
    config = load_config(path, {"lr": 0.05, "epochs": None})
    assert config.hidden_sizes == [32, 16] and config.learning_rate == 0.05 and config.epochs == 50
    # an override under the full name replaces the file's value under the old one
    assert load_config(path, {"learning_rate": 0.02}).learning_rate == 0.02


def test_old_key_names_load_as_aliases_and_save_as_full_words():
    old = make_config({"lr": 0.5, "hidden": [8], "lr_schedule": {"name": "exponential"}})
    new = make_config(
        {"learning_rate": 0.5, "hidden_sizes": [8], "learning_rate_schedule": "exponential"}
    )
    assert old == new
    saved = to_dict(old)
    assert saved["learning_rate"] == 0.5 and saved["hidden_sizes"] == [8]
    assert not {"lr", "hidden", "lr_schedule"} & set(saved)
    with pytest.raises(ConfigError, match="name the same key"):
        make_config({"lr": 0.5, "learning_rate": 0.1})


def test_a_config_json_saved_before_the_rename_still_loads(tmp_path):
    old = {**to_dict(make_config({})), "lr": 0.3, "hidden": [12]}
    for key in ("learning_rate", "hidden_sizes"):
        old.pop(key)
    old["lr_schedule"] = old.pop("learning_rate_schedule")
    path = tmp_path / "config.json"
    path.write_text(json.dumps(old))
    config = load_config(path, {})
    assert config.learning_rate == 0.3 and config.hidden_sizes == [12]


def test_malformed_toml(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("hidden = [32, \n")
    with pytest.raises(ConfigError, match="bad.toml: malformed config"):
        read_config_file(path)
    with pytest.raises(ConfigError, match="cannot read config"):
        read_config_file(tmp_path / "missing.toml")


def test_plugin_file_registers_before_validation(tmp_path):
    plugin = tmp_path / "acts.py"
    plugin.write_text(
        "import numpy as np\n"
        "from digitlab import activation\n"
        "@activation('cube_test', init='xavier')\n"
        "def cube(z):\n    return z ** 3\n"
        "@cube.derivative\n"
        "def _(z):\n    return 3 * z ** 2\n"
    )
    config_file = tmp_path / "run.toml"
    config_file.write_text('plugins = ["acts.py"]\nactivation = "cube_test"\n')
    try:
        assert load_config(config_file, {}).activation.name == "cube_test"
    finally:
        from digitlab.core.activations import ACTIVATIONS

        ACTIVATIONS.pop("cube_test", None)
    with pytest.raises(ConfigError, match="no such file"):
        make_config({"plugins": [str(tmp_path / "nope.py")]})


def test_a_saved_config_with_a_relative_plugin_trains_again_from_elsewhere(tmp_path):
    import json
    import subprocess
    import sys

    first, elsewhere = tmp_path / "first", tmp_path / "elsewhere"
    first.mkdir()
    elsewhere.mkdir()
    (first / "acts.py").write_text(
        "import numpy as np\n"
        "from digitlab import activation\n"
        "@activation('cube_saved_test', init='xavier')\n"
        "def cube(z):\n    return np.tanh(z) ** 3\n"
        "@cube.derivative\n"
        "def _(z):\n    t = np.tanh(z)\n    return 3 * t ** 2 * (1 - t ** 2)\n"
    )

    def train(cwd, *args):
        command = [sys.executable, "-m", "digitlab.cli", "train", "--epochs", "1", "--quiet",
                   "--no-report", *args]  # fmt: skip
        return subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)

    done = train(first, "--plugin", "acts.py", "--activation", "cube_saved_test", "--out", "run")
    assert done.returncode == 0, done.stderr
    saved = json.loads((first / "run" / "config.json").read_text())
    assert saved["plugins"] == [str((first / "acts.py").resolve())]
    again = train(elsewhere, "--config", "../first/run/config.json", "--out", "again")
    assert again.returncode == 0, again.stderr
    assert json.loads((elsewhere / "again" / "config.json").read_text()) == saved
