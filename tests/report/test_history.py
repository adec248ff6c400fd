"""The one history.jsonl reader (lab/runs.py read_history) and its torn-line policy, as the
report, `digitlab diagnose` and the sweep summary all see it."""

import re
from pathlib import Path

import pytest

from digitlab.errors import DataError
from digitlab.lab.runs import read_history
from digitlab.report.runfolder import read_run

WHOLE = '{"epoch": 1, "loss": 0.5}\n{"epoch": 2, "loss": 0.4}\n'


def history(tmp_path: Path, text: str) -> Path:
    (tmp_path / "history.jsonl").write_text(text)
    return tmp_path


def test_whole_lines_are_read_and_blank_lines_skipped(tmp_path):
    records = read_history(history(tmp_path, WHOLE.replace("\n", "\n\n", 1) + "\n"))
    assert [r["epoch"] for r in records] == [1, 2]


@pytest.mark.parametrize("torn", ['{"epoch": 3, "lo', "{", '{"epoch": 3}x'])
def test_a_torn_last_line_is_skipped_silently(tmp_path, torn):
    # a run still writing (or killed mid-write) leaves a partial last line, with no newline
    assert [r["epoch"] for r in read_history(history(tmp_path, WHOLE + torn))] == [1, 2]


def test_a_torn_line_in_the_middle_is_an_error_naming_file_and_line(tmp_path):
    lines = WHOLE.splitlines()
    text = f'{lines[0]}\n{{"epoch": 2, "lo\n{lines[1]}\n'
    with pytest.raises(DataError, match=r"history\.jsonl: line 2 is not JSON") as caught:
        read_history(history(tmp_path, text))
    assert "\n" not in str(caught.value)


def test_a_last_line_that_is_json_but_not_a_record_is_an_error(tmp_path):
    with pytest.raises(DataError, match=re.escape("history.jsonl: line 3: expected a JSON object")):
        read_history(history(tmp_path, WHOLE + "[1, 2]\n"))


def test_missing_history_names_the_file(tmp_path):
    with pytest.raises(DataError, match=r"history\.jsonl: no such file"):
        read_history(tmp_path)


def test_the_report_reads_a_run_still_writing_its_history(run_dir: Path):
    whole = read_run(run_dir).history
    with (run_dir / "history.jsonl").open("a") as handle:
        handle.write('{"epoch": 3, "train_lo')
    assert read_run(run_dir).history == whole
