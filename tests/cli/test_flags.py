"""Config flags are generated from the Config model: names, aliases, defaults, help, choices."""

import pytest

from digitlab.cli.options import CONFIG_FIELDS, ENTRY_FIELDS, NOT_FLAGS, config_from_flags
from digitlab.cli.train import gradcheck, train
from digitlab.errors import ConfigError
from digitlab.lab.config import Config, make_config


def config_of(*args, command=train):
    """The Config that `digitlab train ARGS` would run with (parsed, not run)."""
    params = command.make_context(command.name, list(args)).params
    keys = [*CONFIG_FIELDS, *(f"{name}_param" for name in ENTRY_FIELDS)]
    flags = {key: params[key] for key in keys}
    return config_from_flags(params["config_file"], params["plugin"], flags)


@pytest.mark.parametrize("command", [train, gradcheck])
def test_every_config_field_has_a_flag_with_its_description_and_default(command):
    options = {p.name: p for p in command.params}
    not_given = command.make_context(command.name, []).params
    assert set(Config.model_fields) - set(NOT_FLAGS) <= set(options)
    for name, field in Config.model_fields.items():
        if name in NOT_FLAGS:
            continue
        option = options[name]
        assert f"--{name.replace('_', '-')}" in option.opts
        assert not_given[name] is None  # only flags that were given override a file
        assert option.help.startswith(field.description)
    assert "[default: 0.1]" in options["learning_rate"].help
    assert "[default: relu]" in options["activation"].help
    assert "[default: 100]" in options["hidden_sizes"].help
    assert "[default: on]" in options["monitors"].help


def test_defaults_come_from_the_config_so_no_flags_give_the_default_config():
    assert config_of() == make_config({})


def test_old_flag_names_are_aliases():
    assert config_of("--lr", "0.5", "--hidden", "8,4") == config_of(
        "--learning-rate", "0.5", "--hidden-sizes", "8,4"
    )
    config = config_of("--lr-schedule", "exponential", "--lr-schedule-param", "decay=0.5")
    assert config.learning_rate_schedule.params == {"decay": 0.5}


def test_a_flag_overrides_the_files_key_under_either_name(tmp_path):
    path = tmp_path / "old.toml"
    path.write_text('lr = 0.5\nhidden = [16]\nactivation = { name = "leaky_relu", slope = 0.2 }\n')
    config = config_of("--config", str(path), "--learning-rate", "0.02", "--hidden", "8")
    assert config.learning_rate == 0.02 and config.hidden_sizes == [8]
    assert config.activation.params == {"slope": 0.2}
    config = config_of("--config", str(path), "--activation-param", "slope=0.3")
    assert config.activation.name == "leaky_relu" and config.activation.params == {"slope": 0.3}


def test_registry_names_are_checked_by_the_config_so_plugins_count(tmp_path):
    with pytest.raises(ConfigError, match="unknown activation 'cube_flag_test'; known: abs"):
        config_of("--activation", "cube_flag_test")
    plugin = tmp_path / "cube.py"
    plugin.write_text(
        "from digitlab import activation\n"
        "@activation('cube_flag_test')\n"
        "def cube(z):\n    return z ** 3\n"
        "@cube.derivative\n"
        "def _(z):\n    return 3 * z ** 2\n"
    )
    try:
        config = config_of("--plugin", str(plugin), "--activation", "cube_flag_test")
        assert config.activation.name == "cube_flag_test"
    finally:
        from digitlab.core.activations import ACTIVATIONS

        ACTIVATIONS.pop("cube_flag_test", None)


def test_a_param_without_its_entry_is_an_error():
    with pytest.raises(ConfigError, match="--init-param given without --init"):
        config_of("--init-param", "std=0.1")
    assert config_of("--augment", "shift=2", "--augment", "rotate=10").augment == {
        "shift": 2,
        "rotate": 10,
    }
