"""The trial log, OUT/trials.jsonl: one JSON line per finished trial, appended and fsynced.

Each record holds id, options, seed, status (done|failed), reason, key metrics, seconds and
when it finished. A trial's latest record counts (a retried trial has several). A torn last
line (a crash during a write) is ignored, and cut off before the next append.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from digitlab.lab.runs import append_line

LOG_FILE = "trials.jsonl"


def read_records(path: Path) -> tuple[list[dict[str, Any]], int]:
    """The complete records in a trials.jsonl, and how many lines were unreadable (a torn last
    line from a crash mid-write, or damage) and so ignored."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return [], 0
    records, bad = [], 0
    lines = data.split(b"\n")
    for k, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError):
            bad += 1
            continue
        if k == len(lines) - 1 or not isinstance(record, dict) or "id" not in record:
            bad += 1  # no newline yet: the write may not have finished
            continue
        records.append(record)
    return records, bad


class TrialLog:
    """OUT/trials.jsonl: one complete JSON line per finished trial, appended and fsynced.

    On opening, an unterminated last line (a write cut short) is cut off, so the next append
    starts on a fresh line and never glues itself onto the fragment.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.records, self.ignored = read_records(path)
        if path.exists():
            data = path.read_bytes()
            if data and not data.endswith(b"\n"):
                with open(path, "r+b") as handle:
                    handle.truncate(data.rfind(b"\n") + 1)
                    handle.flush()
                    os.fsync(handle.fileno())

    def latest(self) -> dict[str, dict[str, Any]]:
        """Trial id -> its last record (a retried trial has several)."""
        return {r["id"]: r for r in self.records}

    def append(self, record: dict[str, Any]) -> None:
        append_line(self.path, (json.dumps(record) + "\n").encode())  # whole, or not at all
        self.records.append(record)
