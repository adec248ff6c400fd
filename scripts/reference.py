"""Regenerate the README's reference section from the code (flags, config keys, layer keys,
sweep-file keys, run-folder files): `python scripts/reference.py`; `--check` only compares
and exits 1 when the README is out of date."""

from __future__ import annotations

import sys
from pathlib import Path

from digitlab.cli.reference import COMMAND, with_reference

README = Path(__file__).resolve().parents[1] / "README.md"


def main(argv: list[str]) -> int:
    text = README.read_text()
    new = with_reference(text)
    if "--check" in argv:
        if new != text:
            print(f"{README.name}: the reference section is out of date; run {COMMAND}")
            return 1
        return 0
    if new != text:
        README.write_text(new)
        print(f"{README.name}: reference section updated")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
