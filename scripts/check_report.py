"""Check a run report in a real browser: build it, load it in headless Chromium, look at the DOM.

    .venv/bin/python scripts/check_report.py [RUN] [--screenshot PNG] [--height PIXELS]

Without RUN, trains a small run (2 epochs on the 8x8 digits) in a new temporary folder. Builds
RUN/report.html, has Chromium dump the DOM it rendered, checks that every section id is there and
that every <img> is a PNG data URI that decodes, then takes a screenshot and prints its path.
Exits 1 with one line per problem when a check fails, 2 when Chromium cannot be run.
"""

from __future__ import annotations

import argparse
import base64
import subprocess
import sys
import tempfile
from html.parser import HTMLParser
from pathlib import Path

from digitlab.errors import DigitlabError
from digitlab.report import build_report
from digitlab.report.html import SECTION_IDS

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT = 120  # seconds per Chromium call
DATA_URI = "data:image/png;base64,"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class DomSummary(HTMLParser):
    """Collects every element id and every <img>'s src from a DOM dump."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.images: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if values.get("id"):
            self.ids.add(str(values["id"]))
        if tag == "img":
            self.images.append(values.get("src") or "")


def chromium(args: list[str]) -> subprocess.CompletedProcess[str]:
    """Run Chromium with FLAGS and a fresh profile folder, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="check-report-profile-") as profile:
        command = [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args]
        try:
            return subprocess.run(
                command, capture_output=True, text=True, timeout=TIMEOUT, check=False
            )
        except FileNotFoundError:
            sys.exit(f"check_report: {CHROMIUM} not found (apt-get install -y chromium)")
        except subprocess.TimeoutExpired:
            sys.exit(f"check_report: Chromium took more than {TIMEOUT} s: {' '.join(args)}")


def dom_problems(summary: DomSummary) -> list[str]:
    """What is wrong with the rendered page: missing section ids, images not embedded PNGs."""
    problems = [f"section id {s!r} missing" for s in SECTION_IDS if s not in summary.ids]
    if not summary.images:
        problems.append("the page has no <img> at all")
    for i, src in enumerate(summary.images, start=1):
        if not src.startswith(DATA_URI):
            problems.append(f"<img> {i} is not a PNG data URI: {src[:60]!r}")
            continue
        try:
            png = base64.b64decode(src.removeprefix(DATA_URI), validate=True)
        except ValueError:
            png = b""
        if not png.startswith(PNG_MAGIC):
            problems.append(f"<img> {i}: its data URI does not decode to a PNG")
    return problems


def scratch() -> Path:
    """A new temporary folder, kept afterwards: it holds the screenshot (and the small run)."""
    return Path(tempfile.mkdtemp(prefix="check-report-"))


def small_run(folder: Path) -> Path:
    """Train 2 epochs on the 8x8 digits into folder/run."""
    from digitlab.lab.config import make_config
    from digitlab.lab.experiment import run

    run(make_config({"epochs": 2}), folder / "run")
    return folder / "run"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", nargs="?", type=Path, help="run folder (default: train one)")
    parser.add_argument("--screenshot", type=Path, help="where to write the screenshot PNG")
    parser.add_argument("--height", type=int, default=4000, help="window height in pixels")
    args = parser.parse_args()

    run_dir = args.run if args.run is not None else small_run(scratch())
    try:
        report = build_report(run_dir).resolve()
    except DigitlabError as error:
        sys.exit(f"check_report: FAIL: {error}")
    print(f"report: {report}")

    dumped = chromium(["--dump-dom", report.as_uri()])
    if dumped.returncode != 0 or "<html" not in dumped.stdout:
        tail = " | ".join(dumped.stderr.strip().splitlines()[-3:])
        message = f"check_report: Chromium could not dump the DOM (exit {dumped.returncode})"
        print(f"{message}: {tail}", file=sys.stderr)
        sys.exit(2)
    dom = DomSummary()
    dom.feed(dumped.stdout)
    problems = dom_problems(dom)

    folder = run_dir.parent if args.run is None else scratch()
    screenshot = (args.screenshot or folder / "report.png").resolve()
    shot = chromium(
        [f"--screenshot={screenshot}", f"--window-size=1200,{args.height}", report.as_uri()]
    )
    if shot.returncode != 0 or not screenshot.is_file():
        problems.append(f"no screenshot written (Chromium exit {shot.returncode})")
    elif not screenshot.read_bytes().startswith(PNG_MAGIC):
        problems.append(f"{screenshot} is not a PNG")
    else:
        print(f"screenshot: {screenshot}")

    if problems:
        for problem in problems:
            print(f"check_report: FAIL: {problem}", file=sys.stderr)
        sys.exit(1)
    print(
        f"check_report: OK: {len(SECTION_IDS)} section ids, {len(dom.images)} images, "
        "all embedded PNGs"
    )


if __name__ == "__main__":
    main()
