"""A Finding: one thing the alarms say about a run, with its likely causes and usual remedies."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Finding:
    kind: str
    epoch: int
    message: str
    causes: list[str] = field(default_factory=list)
    remedies: list[str] = field(default_factory=list)
    severity: str = "warning"  # or "info"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


COLLAPSE_SHARE = 0.5  # half of all predictions in one class (of 10 or so) is not learning
