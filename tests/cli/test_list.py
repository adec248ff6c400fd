"""`digitlab list`: every registry, layer types with their keys, docstrings printed literally."""

from digitlab.cli import main
from digitlab.core.layers import LAYERS
from digitlab.core.optim import SCHEDULES


def test_list_prints_layer_types_with_their_keys_and_brackets_literally(capsys):
    try:
        main(["list"])
    except SystemExit as done:
        assert done.code in (0, None)
    out = capsys.readouterr().out
    for title in ("activations", "layer types", "initialisers", "losses", "optimizers"):
        assert title in out
    for name in LAYERS:
        assert name in out
    assert "units" in out and "kernel_size" in out
    assert "piecewise" in SCHEDULES
    assert "[[rate, epochs], ...]" in out  # rich markup would eat the brackets
