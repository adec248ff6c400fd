"""The README's reference section is what scripts/reference.py generates from the code now."""

import subprocess
import sys
from pathlib import Path

import pytest

from digitlab.cli.options import CONFIG_FIELDS
from digitlab.cli.reference import (
    COMMAND,
    END,
    START,
    config_keys,
    reference_markdown,
    train_flags,
    with_reference,
)
from digitlab.cli.registries import layer_keys, layer_table_keys
from digitlab.core.layers import LAYERS
from digitlab.errors import ConfigError
from digitlab.lab.config import Config
from digitlab.lab.runs import RUN_FILES
from digitlab.lab.sweep import SWEEP_KEYS, parse_sweep

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_reference_is_up_to_date():
    """Checked in a fresh interpreter: entries other tests' plugins registered must not count."""
    text = README.read_text()
    assert text.count(START) == 1 and text.count(END) == 1
    check = [sys.executable, str(README.parent / "scripts" / "reference.py"), "--check"]
    result = subprocess.run(check, capture_output=True, text=True)
    assert result.returncode == 0, f"README's reference is out of date: run {COMMAND}\n" + (
        result.stdout + result.stderr
    )


def test_every_flag_config_key_layer_type_sweep_key_and_run_file_is_in_it():
    markdown = reference_markdown()
    flags = " ".join(row[0] for row in train_flags())
    for name in CONFIG_FIELDS:
        assert f"`--{name.replace('_', '-')}`" in flags
    for flag in ("--lr", "--hidden", "--out", "--resume", "--checkpoint-every", "--config"):
        assert f"`{flag}`" in flags
    assert [row[0].split("`")[1] for row in config_keys()] == list(Config.model_fields)
    for name in LAYERS:
        assert f"| `{name}` |" in markdown
    for key in (*SWEEP_KEYS, *RUN_FILES):
        assert f"| `{key}` |" in markdown


def test_the_documented_sweep_keys_are_the_keys_the_parser_accepts():
    with pytest.raises(ConfigError, match="unknown sweep key"):
        parse_sweep({"grid": {"epochs": [1]}, "bogus_key": 1})
    for key in SWEEP_KEYS:  # no key the docs name is rejected as unknown
        try:
            parse_sweep({key: None})
        except Exception as err:  # noqa: BLE001  (any complaint but "unknown key" will do)
            assert "unknown sweep key" not in str(err)


def test_layer_keys_are_read_from_the_factories():
    dense = layer_keys(LAYERS["dense"])
    assert dense["units"] == "required" and dense["init"] == "default 'xavier'"
    conv = layer_keys(LAYERS["conv2d"])
    assert conv["filters"] == conv["kernel_size"] == "required" and "stride" in conv
    assert layer_keys(LAYERS["maxpool2d"])["size"] == "required"  # read in a helper, _pool
    assert "activation" in layer_table_keys("activation")
    assert layer_table_keys("add") == {}


def test_the_generator_replaces_only_the_marked_section():
    text = f"intro\n{START}\nstale text\n{END}\nafter\n"
    new = with_reference(text)
    assert new.startswith(f"intro\n{START}\n") and new.endswith(f"\n{END}\nafter\n")
    assert "stale text" not in new
    with pytest.raises(ValueError, match="markers"):
        with_reference("no markers")
