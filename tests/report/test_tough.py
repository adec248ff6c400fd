"""`digitlab tough`: the first run's tough test digits, classified by each run (Nielsen's N11)."""

import numpy as np
import pytest

from digitlab.cli import main
from digitlab.report.tough import tough_examples


def test_tough_examples_are_below_the_threshold_hardest_first():
    y = np.array([0, 1, 2, 0, 1])
    probs = np.full((5, 3), 0.0)
    probs[np.arange(5), y] = [0.9, 0.2, 0.69, 0.7, 0.05]
    assert tough_examples(probs, y, 0.7, 10).tolist() == [4, 1, 2]
    assert tough_examples(probs, y, 0.7, 2).tolist() == [4, 1]
    assert tough_examples(probs, y, 0.01, 10).tolist() == []


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """A weak and a stronger net on the 8x8 digits, tested on the same 359 images."""
    root = tmp_path_factory.mktemp("tough")
    for name, epochs in (("weak", "1"), ("strong", "20")):
        main(["train", "--data", "digits", "--epochs", epochs, "--quiet", "--no-report",
              "--out", str(root / name)])  # fmt: skip
    return root / "weak", root / "strong"


def test_tough_counts_and_draws_each_runs_answers(two_runs, tmp_path, capsys):
    weak, strong = two_runs
    png = tmp_path / "tough.png"
    main(["tough", str(weak), str(strong), "--out", str(png)])
    header, first, second, path = capsys.readouterr().out.strip().splitlines()
    n = int(header.split()[0])
    assert 0 < n <= 200
    assert first.strip().startswith("1.") and f"0 of {n} right" not in second
    right = [int(line.split(": ")[1].split()[0]) for line in (first, second)]
    assert right[0] < right[1]  # the stronger net gets more of the weak one's tough digits
    assert path == str(png) and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_runs_on_different_test_sets_are_one_line_error(two_runs, tmp_path, capsys):
    weak, strong = two_runs
    other = tmp_path / "other"
    other.mkdir()
    for item in strong.iterdir():
        (other / item.name).write_bytes(item.read_bytes())
    arrays = dict(np.load(other / "predictions.npz"))
    arrays["test_y"] = np.roll(arrays["test_y"], 1)
    np.savez(other / "predictions.npz", **arrays)
    with pytest.raises(SystemExit) as done:
        main(["tough", str(weak), str(other), "--out", str(tmp_path / "t.png")])
    err = capsys.readouterr().err
    assert done.value.code != 0
    assert "tested on other examples" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "t.png").exists()


def test_bad_threshold_is_one_line_error(two_runs, capsys):
    with pytest.raises(SystemExit) as done:
        main(["tough", str(two_runs[0]), "--threshold", "0"])
    err = capsys.readouterr().err
    assert done.value.code != 0 and "threshold" in err and len(err.strip().splitlines()) == 1
