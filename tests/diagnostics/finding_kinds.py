"""The alarms' findings of some history records, by kind: what the trend and planted tests read."""

from __future__ import annotations

from digitlab.diagnostics.alarms import find


def warnings(records):
    return {f.kind: f for f in find(records) if f.severity == "warning"}


def infos(records):
    return {f.kind: f for f in find(records) if f.severity == "info"}
