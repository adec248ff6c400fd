"""The CLI prints an alarm once, when it first appears, before the later epochs' lines."""

from digitlab.cli import main


def test_an_alarm_is_printed_once_when_it_first_appears(tmp_path, capsys):
    # sigmoid units with N(0, 10^2) weights: 68% of them saturated from epoch 1 on
    args = [
        "train", "--data", "digits", "--hidden", "32", "--activation", "sigmoid", "--init",
        "normal", "--init-param", "std=10", "--dtype", "float64", "--epochs", "4",
        "--no-report", "--out", str(tmp_path / "run"),
    ]  # fmt: skip
    main(args)
    lines = capsys.readouterr().out.splitlines()
    epoch = {n: next(i for i, line in enumerate(lines) if line.startswith(f"epoch   {n}:"))
             for n in (1, 2, 4)}  # fmt: skip
    alarms = [i for i, line in enumerate(lines) if line.startswith("alarm: saturated units")]
    assert len(alarms) == 1, lines  # said once, though it holds in every epoch
    assert epoch[1] < alarms[0] < epoch[2]
    assert "sigmoid1 68% at epoch 1" in lines[alarms[0]]
    # and at the end, with causes and remedies
    final = [i for i, line in enumerate(lines) if line.startswith("saturation: ")]
    assert final and final[0] > epoch[4]
    assert lines[final[0] + 1].startswith("  likely causes:")
