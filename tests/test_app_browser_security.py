"""Issue 22's security flows in headless Chromium: the Compare tab shows the shipped results by name; a drawing on
the canvas still reaches the models (the canvas is decoded by our bounded decoder); error toasts show user text as
text and bad files in plain words. Screenshots go to a temporary folder (printed); run with
``pytest -m browser tests/test_app_browser_security.py``."""

from __future__ import annotations

import math
import os
import re
import shutil
import socket
import tempfile
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

CHROMIUM = "/usr/bin/chromium"
SHOTS = Path(tempfile.gettempdir()) / "sketchface-screenshots"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is missing: run scripts/setup_browser.sh"),
]
sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright Python package is not installed")


@pytest.fixture(scope="module")
def url(app_registry):
    import app

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    demo = app.build_demo(app_registry)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, **app.launch_kwargs())
    yield f"http://127.0.0.1:{port}/"
    demo.close()


@pytest.fixture(scope="module")
def page(url):
    profile = tempfile.mkdtemp(prefix="sketchface-chromium-")
    args = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, args=args, headless=True, viewport={"width": 1300, "height": 1000}
        )
        page = browser.new_page()
        page.set_default_timeout(30_000)
        page.goto(url)
        page.wait_for_selector("#description textarea")
        yield page
        browser.close()
    shutil.rmtree(profile, ignore_errors=True)


def _shot(page, name: str, locator=None) -> Path:
    """A screenshot of the page's viewport (or of one element) to look at."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"security_{name}.png"
    (locator or page).screenshot(path=str(path))
    print(f"screenshot: {path}")
    return path


def _toast(page) -> str:
    toast = page.locator("[data-testid='toast-body']").last
    toast.wait_for()
    page.wait_for_timeout(600)  # let it slide in before a screenshot
    return toast.inner_text()


def _close_toasts(page) -> None:
    for button in page.locator("[data-testid='toast-close']").all():
        button.click()


def test_compare_results_by_name(page):
    page.get_by_role("tab", name="Compare").click()
    metrics = page.locator("#metrics")
    metrics.get_by_text("From eval-procedural/results.md").wait_for()  # the shipped set, shown at once
    assert "Attribute → face" in metrics.inner_text()
    page.locator("#results-set input").click()
    page.get_by_role("option", name="eval-sketch-attributes-hand").click()
    metrics.get_by_text("From eval-sketch-attributes-hand/").wait_for()
    page.locator("#results-set").scroll_into_view_if_needed()
    _shot(page, "compare_results", page.locator("#metrics"))
    assert "/work/" not in metrics.inner_text() and "/tmp/" not in metrics.inner_text()


def test_user_text_in_a_toast_is_text(page):
    page.get_by_role("tab", name="Compare").click()
    box = page.get_by_role("textbox", name=re.compile("Extra descriptions"))
    box.fill("<b>bold</b> <img src=x onerror=alert(1)> qwertyuiop")
    page.click("#compare")
    text = _toast(page)
    assert "<b>bold</b>" in text and "was understood" in text  # shown as typed, not rendered as markup
    assert page.locator("[data-testid='toast-body'] b, [data-testid='toast-body'] img").count() == 0
    _shot(page, "escaped_toast", page.locator("[data-testid='toast-body']").last)
    _close_toasts(page)


def test_canvas_drawing_still_reaches_the_model_and_bad_uploads_are_plain(page, tmp_path):
    page.get_by_role("tab", name="Sketch").click()
    page.get_by_role("button", name="Brush").first.click()
    canvas = page.locator("#canvas canvas").first
    canvas.wait_for()
    box = canvas.bounding_box()
    cx, cy, r = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2, min(box["width"], box["height"]) / 3
    page.mouse.move(cx - r, cy)
    page.mouse.down()
    for i in range(1, 21):  # an oval face
        t = 2 * math.pi * i / 20
        page.mouse.move(cx - r * math.cos(t), cy + 1.25 * r * math.sin(t))
    page.mouse.up()
    for dx in (-0.35, 0.35):  # eyes
        page.mouse.move(cx + dx * r - 12, cy - 0.2 * r)
        page.mouse.down()
        page.mouse.move(cx + dx * r + 12, cy - 0.2 * r, steps=2)
        page.mouse.up()
    page.get_by_role("button", name="Preview what the model sees").click()
    page.get_by_text("What the model sees (drawn sketch, 256×256)").wait_for()
    page.locator("#canvas").scroll_into_view_if_needed()
    _shot(page, "canvas_preview")
    whole = tmp_path / "whole.png"
    img = Image.new("RGB", (300, 300), "white")
    ImageDraw.Draw(img).ellipse((40, 30, 260, 280), outline="black", width=5)
    img.save(whole)
    (tmp_path / "broken.png").write_bytes(whole.read_bytes()[:600])
    page.set_input_files("#sketch-upload input[type=file]", str(tmp_path / "broken.png"))
    page.get_by_role("button", name="Preview what the model sees").click()
    text = _toast(page)
    assert "not an image that can be read: the file is damaged or incomplete" in text
    assert "/tmp" not in text and "gradio" not in text.lower()
    _shot(page, "bad_upload_toast", page.locator("[data-testid='toast-body']").last)
    _close_toasts(page)
