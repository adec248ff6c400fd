import pytest

from digitlab.core.schedules import SCHEDULES, batch_size_schedule, get_schedule
from digitlab.errors import ConfigError


def test_schedules():
    assert [get_schedule("constant", 0.3, 5)(e) for e in range(3)] == [0.3] * 3
    piece = get_schedule("piecewise", 1, 30, steps=[[0.5, 10], [0.1, 10], [0.02, 10]])
    assert [piece(e) for e in (0, 9, 10, 19, 20, 29, 40)] == [0.5, 0.5, 0.1, 0.1, 0.02, 0.02, 0.02]
    assert get_schedule("exponential", 1.0, 5, decay=0.5)(2) == 0.25
    cos = get_schedule("cosine", 1.0, 11)
    assert cos(0) == 1.0 and cos(10) == pytest.approx(0.0) and cos(5) == pytest.approx(0.5)
    assert set(SCHEDULES) == {"constant", "piecewise", "exponential", "cosine"}


def test_batch_ramp_doubles_to_the_cap():
    ramp = batch_size_schedule(256, 20)
    assert [ramp(e) for e in range(6)] == [20, 40, 80, 160, 256, 256]
    assert batch_size_schedule(32)(5) == 32


def test_bad_values_are_config_errors():
    with pytest.raises(ConfigError, match="unknown schedule 'linear'"):
        get_schedule("linear", 0.1, 5)
    with pytest.raises(ConfigError, match="batch size must be > 0"):
        batch_size_schedule(0)
