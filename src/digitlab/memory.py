"""How much memory this machine has, and one check that a planned allocation fits in it.

Big allocations (a data file's payload, a model's weights, a batch, an evaluation chunk, the
arrays of a model file) are sized before they are made, and `ensure_fits` turns "too big" into
a one-line error that says what it would need and what the machine has, instead of NumPy's
"Unable to allocate" traceback or the out-of-memory killer. The limit is the smallest of the
memory available now (/proc/meminfo's MemAvailable, else os.sysconf), a cgroup's memory.max
and the process's address-space limit (RLIMIT_AS).
"""

from __future__ import annotations

import os
from pathlib import Path

from digitlab.errors import DigitlabError

_CGROUP_MAX = Path("/sys/fs/cgroup/memory.max")


def _meminfo() -> dict[str, int]:
    """/proc/meminfo in bytes (empty where there is none)."""
    try:
        lines = Path("/proc/meminfo").read_text().splitlines()
    except OSError:
        return {}
    values = {}
    for line in lines:
        key, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            values[key] = int(parts[0]) * (1024 if parts[1:] == ["kB"] else 1)
    return values


def _sysconf(name: str) -> int | None:
    try:
        value = os.sysconf(name) * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None
    return value if value > 0 else None


def memory() -> tuple[int | None, int | None]:
    """(bytes this process may still allocate, bytes the machine has), None where unknown."""
    info = _meminfo()
    total = info.get("MemTotal") or _sysconf("SC_PHYS_PAGES")
    limits = [info.get("MemAvailable") or _sysconf("SC_AVPHYS_PAGES")]
    try:
        text = _CGROUP_MAX.read_text().strip()
        limits.append(int(text) if text.isdigit() else None)
    except OSError:
        pass
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        limits.append(soft if soft != resource.RLIM_INFINITY else None)
    except (ImportError, ValueError, OSError):
        pass
    known = [limit for limit in limits if limit]
    return (min(known) if known else None), total


def size_text(n: float) -> str:
    """Bytes as a short human size: 477 GiB, 3.2 MiB, 512 bytes."""
    for unit, power in (("TiB", 40), ("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 2**power:
            value = n / 2**power
            return f"{value:.3g} {unit}" if value < 100 else f"{value:,.0f} {unit}"
    return f"{int(n)} bytes"


def ensure_fits(needed: int, what: str, error: type[DigitlabError]) -> None:
    """Raise `error` ("WHAT needs 477 GiB; this machine has 22 GiB free of 24 GiB") when
    `needed` bytes exceed what this process may allocate; nothing when that is unknown."""
    available, total = memory()
    if available is None or needed <= available:
        return
    has = size_text(available) + (f" free of {size_text(total)}" if total else "")
    raise error(f"{what} needs {size_text(needed)}; this machine has {has}")
