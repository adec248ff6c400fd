"""End to end in a real headless browser: Debian's chromium driven by Playwright.

A small MNIST network (784-100-10, 2 epochs) is trained once; the studio serves it on a free
loopback port; the browser draws digits with mouse strokes on the Draw view's canvas and
reads the answers, looks inside, compares two runs, and starts a short run from the Train
page. Screenshots go to test-artifacts/ (gitignored); docs/studio.png is refreshed when
DIGITLAB_DOCS_SCREENSHOT=1.

Without /usr/bin/chromium (or the playwright package) these tests skip, except under CI=true,
where they fail: CI installs chromium.
"""

from __future__ import annotations

import math
import os
import socket
import threading
import time
from pathlib import Path

import pytest

from digitlab.lab.config import make_config
from digitlab.lab.experiment import run

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
DOCS_CLIP = {"x": 0, "y": 0, "width": 1020, "height": 500}  # the Draw view, header included


def _missing() -> str | None:
    if not CHROMIUM.exists():
        return f"{CHROMIUM} not found (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -e '.[dev]')"
    return None


MISSING = _missing()
if MISSING and os.environ.get("CI") == "true":
    pytest.fail(f"browser tests cannot run under CI: {MISSING}", pytrace=False)
pytestmark = pytest.mark.skipif(MISSING is not None, reason=MISSING or "")


# ------------------------------------------------------------------------------ digit strokes


def arc(cx, cy, rx, ry, start, end, steps=24):
    """Points along an ellipse from angle `start` to `end` (degrees, 0 = right, 90 = down)."""
    return [
        (cx + rx * math.cos(math.radians(a)), cy + ry * math.sin(math.radians(a)))
        for a in (start + (end - start) * k / steps for k in range(steps + 1))
    ]


# each digit: strokes (polylines) in the 280x280 canvas's coordinates
DIGITS = {
    0: [arc(140, 140, 55, 90, -90, 275)],
    1: [[(150, 40), (140, 240)]],
    2: [arc(140, 95, 55, 50, 190, 360) + [(185, 140), (85, 240), (205, 240)]],
    3: [arc(135, 90, 50, 45, 200, 450) + arc(135, 185, 60, 50, 270, 520)],
    4: [[(165, 40), (75, 170), (210, 170)], [(170, 95), (170, 245)]],
    5: [[(195, 45), (105, 45), (95, 125)] + arc(140, 175, 60, 55, 220, 480)],
    6: [[(185, 50), (120, 100)] + arc(140, 180, 55, 60, 195, 555)],
    7: [[(80, 50), (200, 50), (120, 240)]],
    8: [arc(140, 90, 45, 45, 90, 450), arc(140, 190, 55, 50, -90, 270)],
    9: [arc(140, 90, 50, 45, 0, 360), [(190, 90), (175, 245)]],
}


# ------------------------------------------------------------------------------ fixtures


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


MNIST_DIR = ROOT / ".." / "shared" / "data" / "mnist"  # as tests/conftest.py's mnist_dir
HAS_MNIST = (MNIST_DIR / "train-images-idx3-ubyte.gz").exists()
needs_mnist = pytest.mark.skipif(not HAS_MNIST, reason=f"MNIST files not found at {MNIST_DIR}")


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """Runs in a served folder and the studio serving it: yields (root folder, base URL).

    Two 8x8-digits runs (30 and 5 hidden units); with the MNIST files, also two MNIST runs
    (784-100-10 for 2 epochs, a weak 784-20-10 for 1 epoch on 5,000 images).
    """
    root = tmp_path_factory.mktemp("served")
    run(make_config({"hidden": [30], "epochs": 3}), root / "digits-30")
    run(make_config({"hidden": [5], "epochs": 1, "lr": 0.02}), root / "digits-5")
    if HAS_MNIST:
        data = {"data": "mnist", "data_dir": str(MNIST_DIR), "seed": 0, "monitors": False}
        run(make_config({**data, "hidden": [100], "epochs": 2}), root / "mnist-100")
        small = {**data, "hidden": [20], "epochs": 1, "train_first": 5000}
        run(make_config(small), root / "mnist-20")

    import uvicorn

    from digitlab.studio.app import create_app

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app([root]), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "the studio server did not start"
    yield root, f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    yield page
    page.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def shot(page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


# ------------------------------------------------------------------------------ helpers


def draw(page, strokes) -> None:
    canvas = page.get_by_test_id("draw-canvas")
    box = canvas.bounding_box()
    assert box is not None
    scale = box["width"] / 280

    def to_page(point):
        return box["x"] + point[0] * scale, box["y"] + point[1] * scale

    for points in strokes:
        page.mouse.move(*to_page(points[0]))
        page.mouse.down()
        for (x0, y0), (x1, y1) in zip(points, points[1:], strict=False):
            steps = max(1, int(math.hypot(x1 - x0, y1 - y0) / 12))
            page.mouse.move(*to_page((x1, y1)), steps=steps)
        page.mouse.up()


def settled(page, timeout: float = 20) -> tuple[str, list[float]]:
    """The answer and probabilities once they stop changing (the last request returned)."""
    bars = page.get_by_test_id("probability")
    last = None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        page.wait_for_timeout(400)
        values = [bars.nth(k).get_attribute("data-value") for k in range(10)]
        now = (page.get_by_test_id("answer").inner_text(), values)
        if now == last and all(values):
            return now[0], [float(v) for v in values]
        last = now
    raise AssertionError(f"the answer did not settle: {last}")


# ------------------------------------------------------------------------------ tests


def test_drawing_on_an_8x8_digits_model(served, page):
    _, url = served
    page.goto(f"{url}/#/draw?run=0/digits-30")
    draw(page, DIGITS[1])
    answer, probs = settled(page)
    assert answer in "0123456789" and abs(sum(probs) - 1) < 1e-3
    assert page.get_by_test_id("model-input").get_attribute("width") == "8"
    shot(page, "draw-digits-model")


@needs_mnist
def test_drawn_digits_are_recognised(served, page):
    root, url = served
    page.goto(f"{url}/#/draw?run=0/mnist-100")
    page.get_by_test_id("draw-canvas").wait_for()
    answers = {}
    for digit, strokes in DIGITS.items():
        page.get_by_test_id("clear-drawing").click()
        draw(page, strokes)
        answer, probs = settled(page)
        assert len(probs) == 10 and abs(sum(probs) - 1) < 1e-3
        assert answer == str(probs.index(max(probs)))
        answers[digit] = int(answer)
        shot(page, f"draw-{digit}")
        model_input = page.get_by_test_id("model-input")
        assert model_input.get_attribute("width") == "28"
    right = [d for d, a in answers.items() if a == d]
    print(f"drawn digits: {answers}; right: {len(right)} of {len(answers)}")
    assert {0, 1, 7} <= set(right), answers
    assert len(right) >= 7, answers

    # undo takes the last stroke away: the 7's one stroke gone, nothing is left to answer
    page.get_by_test_id("clear-drawing").click()
    draw(page, DIGITS[7])
    assert settled(page)[0] == "7"
    page.get_by_test_id("undo-drawing").click()
    page.wait_for_timeout(300)
    assert page.get_by_test_id("answer").inner_text() == ""  # nothing left: no answer
    assert page.get_by_test_id("probability").first.get_attribute("data-value") == ""

    # the Draw view with a digit for the README
    page.get_by_test_id("clear-drawing").click()
    draw(page, DIGITS[7])
    settled(page)
    if os.environ.get("DIGITLAB_DOCS_SCREENSHOT") == "1":
        (ROOT / "docs").mkdir(exist_ok=True)
        page.screenshot(path=str(ROOT / "docs" / "studio.png"), clip=DOCS_CLIP)


@needs_mnist
def test_a_png_upload_is_answered(served, page, tmp_path):
    from PIL import Image, ImageDraw

    image = Image.new("L", (200, 200), 255)  # dark ink on white paper
    ImageDraw.Draw(image).line([(100, 20), (100, 180)], fill=0, width=16)
    path = tmp_path / "one.png"
    image.save(path)
    _, url = served
    page.goto(f"{url}/#/draw?run=0/mnist-100")
    page.get_by_test_id("upload-png").set_input_files(str(path))
    answer, _ = settled(page)
    assert answer == "1"


@needs_mnist
def test_inside_shows_layers_and_switching_units_off(served, page):
    _, url = served
    page.goto(f"{url}/#/draw?run=0/mnist-100")
    draw(page, DIGITS[7])
    assert settled(page)[0] == "7"
    page.goto(f"{url}/#/inside?run=0/mnist-100&source=drawing")
    layers = page.get_by_test_id("inside-layer")
    layers.first.wait_for()
    assert layers.count() == 3  # dense1, relu1, dense2
    assert page.get_by_test_id("answer").inner_text() == "7"
    before = float(page.get_by_test_id("probability").nth(7).get_attribute("data-value"))
    buttons = page.get_by_test_id("top-units").get_by_role("button")
    for _ in range(5):  # switch off the five units that push the 7 up most
        buttons.first.click()
        page.wait_for_timeout(600)
    after = float(page.get_by_test_id("probability").nth(7).get_attribute("data-value"))
    assert after < before
    shot(page, "inside")
    page.goto(f"{url}/#/inside?run=0/mnist-100&index=0")
    page.wait_for_timeout(1500)
    assert page.get_by_test_id("answer").inner_text() == "7"  # MNIST's first test digit
    shot(page, "inside-test-digit")


def test_compare_two_digits_runs(served, page):
    _, url = served
    page.goto(f"{url}/#/compare?runs=0/digits-30,0/digits-5")
    page.get_by_test_id("compare-table").wait_for()
    p = float(page.get_by_test_id("mcnemar-p").get_attribute("data-value"))
    assert 0 <= p <= 1
    assert page.get_by_test_id("compare-table").locator("tr").count() == 3
    shot(page, "compare-digits")


@needs_mnist
def test_compare_two_mnist_runs(served, page):
    _, url = served
    page.goto(f"{url}/#/compare?runs=0/mnist-100,0/mnist-20")
    page.get_by_test_id("compare-table").wait_for()
    p = float(page.get_by_test_id("mcnemar-p").get_attribute("data-value"))
    assert 0 <= p < 0.05  # 2 epochs of 60,000 against 1 epoch of 5,000: a real difference
    assert page.get_by_test_id("compare-table").locator("tr").count() == 3
    shot(page, "compare")
    page.goto(f"{url}/#/compare?runs=0/mnist-100,0/digits-30")
    error = page.get_by_test_id("error")
    error.wait_for()
    assert "were tested on different test sets" in error.inner_text()
    assert "\n" not in error.inner_text()


def test_a_run_started_from_the_train_page_shows_its_loss(served, page):
    root, url = served
    page.goto(f"{url}/#/train")
    page.locator("input[name=epochs]").wait_for()
    page.wait_for_timeout(500)  # the form's defaults arrive
    page.locator("input[name=epochs]").fill("30")
    page.get_by_test_id("start-run").click()
    chart = page.get_by_test_id("loss-chart")
    deadline = time.monotonic() + 120
    points = 0
    while time.monotonic() < deadline:
        if chart.count():
            points = int(chart.first.get_attribute("data-points") or 0)
            if points >= 2:
                break
        page.wait_for_timeout(500)
    assert points >= 2, "the loss chart gained no points"
    shot(page, "train-run")
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:  # stop it unless it has finished meanwhile (then the button hides)
        page.get_by_test_id("stop-run").click(timeout=3000)
    except PlaywrightTimeout:
        pass
    status = page.get_by_test_id("run-status").first
    deadline = time.monotonic() + 60
    while status.inner_text() not in ("stopped", "finished") and time.monotonic() < deadline:
        page.wait_for_timeout(500)
    assert status.inner_text() in ("stopped", "finished")
    # the run folder was made under the served folder
    assert any((root / name).is_dir() for name in os.listdir(root) if name not in {".studio"})
