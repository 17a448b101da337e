"""End to end in headless Chromium (Debian's package, driven by Playwright): describe → candidates → pick →
variations → upload a sketch → faces → send to Stylize → edit. Saves a screenshot of each tab: to docs/images/
when SKETCHFACE_SCREENSHOTS=1 (refreshing the README's pictures), otherwise to a temporary folder.

Install the browser with ``bash scripts/setup_browser.sh`` (never ``playwright install``). Run with
``pytest -m browser tests/test_app_browser.py``. With the starter checkpoints present (or SKETCHFACE_* variables
set) the app serves them; otherwise the tiny random test models.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

CHROMIUM = "/usr/bin/chromium"
# Screenshots refresh the committed README pictures only on request, so a test run leaves the checkout clean.
DOCS = (
    Path(__file__).resolve().parent.parent / "docs" / "images"
    if os.environ.get("SKETCHFACE_SCREENSHOTS") == "1"
    else Path(tempfile.gettempdir()) / "sketchface-screenshots"
)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is missing: run `bash scripts/setup_browser.sh` (root, apt)"
    ),
]
sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright Python package is not installed")


@pytest.fixture(scope="module")
def registry(app_registry):
    from sketchface.registry import Registry

    starters = Registry.discover(env={k: v for k, v in os.environ.items() if k != "SKETCHFACE_INSTRUCT_PIX2PIX"}).load()
    if starters.loaded("attributes") and starters.loaded("sketch"):
        return starters
    return app_registry


@pytest.fixture(scope="module")
def url(registry, free_port):
    import app

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    demo = app.build_demo(registry)
    demo.launch(
        server_name="127.0.0.1", server_port=free_port, prevent_thread_lock=True, quiet=True, **app.launch_kwargs()
    )
    yield f"http://127.0.0.1:{free_port}/"
    demo.close()


@pytest.fixture(scope="module")
def page(url):
    profile = tempfile.mkdtemp(prefix="sketchface-chromium-")
    args = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ]  # the fresh --user-data-dir is passed as Playwright's user_data_dir (it refuses the raw flag)
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, args=args, headless=True, viewport={"width": 1400, "height": 1000}
        )
        page = browser.new_page()
        page.set_default_timeout(30_000)
        page.goto(url)
        page.wait_for_selector("#description textarea")
        yield page
        browser.close()
    shutil.rmtree(profile, ignore_errors=True)


def _shot(page, name: str) -> None:
    DOCS.mkdir(parents=True, exist_ok=True)
    path = DOCS / f"app_{name}.png"
    page.screenshot(path=str(path), full_page=False)
    with Image.open(path) as img:  # keep the committed screenshots small
        small = img.convert("RGB").resize((img.width * 2 // 3, img.height * 2 // 3), Image.Resampling.LANCZOS)
        small.quantize(colors=192, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)


def _tab(page, name: str) -> None:
    page.get_by_role("tab", name=name).click()


def _thumbs(page, gallery: str):
    return page.locator(f"{gallery} .thumbnail-item img, {gallery} .grid-container img")


def test_end_to_end(page, tmp_path):
    try:
        _end_to_end(page, tmp_path)
    except Exception:
        page.screenshot(path=str(tmp_path / "failure.png"), full_page=True)
        print(f"screenshot of the failure: {tmp_path / 'failure.png'}")
        raise


def _end_to_end(page, tmp_path):
    # Describe: text → parsed controls → 8 candidates.
    page.fill("#description textarea", "Chubby young man with glasses and bushy eyebrows")
    page.get_by_role("button", name="Understand the text").click()
    page.get_by_text("Understood:").first.wait_for()
    assert "bushy eyebrows and glasses" in page.inner_text("body")
    page.click("#generate")
    sync_api.expect(_thumbs(page, "#candidates")).to_have_count(8)
    page.get_by_text("8 candidates from").wait_for()
    # Pick one, ask for variations: a second round appears in the history strip.
    _thumbs(page, "#candidates").nth(2).click()
    page.get_by_text("Selected: #3").wait_for()
    page.keyboard.press("Escape")  # close the gallery's preview so the buttons are reachable
    page.click("#more")
    page.get_by_text("variations of #3").wait_for()
    sync_api.expect(page.locator("#history .thumbnail-item")).to_have_count(2)
    page.evaluate("window.scrollTo(0, 0)")
    _shot(page, "describe")

    # Sketch: upload a drawing, generate faces, send one to Stylize.
    sketch = Image.new("RGB", (300, 300), "white")
    d = ImageDraw.Draw(sketch)
    d.ellipse((70, 40, 230, 260), outline="black", width=5)
    d.ellipse((110, 120, 135, 135), outline="black", width=4)
    d.ellipse((165, 120, 190, 135), outline="black", width=4)
    d.line((150, 140, 145, 180, 158, 182), fill="black", width=4)
    d.arc((115, 190, 185, 225), 15, 165, fill="black", width=4)
    sketch.save(tmp_path / "sketch.png")
    _tab(page, "Sketch")
    page.set_input_files("#sketch-upload input[type=file]", str(tmp_path / "sketch.png"))
    page.click("#sketch-generate")
    sync_api.expect(_thumbs(page, "#sketch-gallery")).to_have_count(4)
    page.get_by_text("faces from the uploaded sketch").wait_for()
    _shot(page, "sketch")
    _thumbs(page, "#sketch-gallery").first.click()
    sync_api.expect(page.locator("#sketch-pick input")).to_have_value("1")  # the selection reached the server
    page.keyboard.press("Escape")
    page.click("#send-sketch")

    # Stylize: the face arrived; apply an instruction; the after image and its caption appear.
    page.locator("#before img").wait_for()
    page.fill("#instruction textarea", "add glasses and make the hair gray")
    page.click("#stylize")
    page.locator("#after img").wait_for()
    page.get_by_text("Latent editor").first.wait_for()
    _shot(page, "stylize")

    _tab(page, "Compare")
    page.fill("#compare-candidates input[type=number]", "4")  # the slider's number box
    page.keyboard.press("Enter")
    page.click("#compare")
    page.get_by_text("description(s) × 4 candidates, seed").wait_for()
    page.locator("#compare-grid img").wait_for()
    page.wait_for_timeout(1000)  # let the grid finish fading in before the screenshot
    _shot(page, "compare")
    _tab(page, "Models")
    page.locator("#models-table").wait_for()
    _shot(page, "models")
    for name in ("describe", "sketch", "stylize", "compare", "models"):
        assert (DOCS / f"app_{name}.png").stat().st_size > 10_000
