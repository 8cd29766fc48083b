"""`make screenshots`: each lesson's trace page as a learner's browser shows it, for the lesson READMEs."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from workshop.errors import WorkshopError

WIDTH = 1280


def find_chromium() -> str | None:
    return os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


def take_screenshot(url: str, path: Path, expand: str | None = None) -> None:
    """`url` in a real Chromium at 1280 px (the whole page), with the span named `expand` opened (each
    lesson's `screenshot_span`: the one its README asks the learner to look at)."""
    chromium = find_chromium()
    if chromium is None:
        raise WorkshopError(
            "screenshots need a Chromium: install it (Debian: apt-get install chromium) or set CHROMIUM"
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise WorkshopError("screenshots need playwright: run `make setup`") from None
    path.parent.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium)
        try:
            page = browser.new_page(viewport={"width": WIDTH, "height": 720})
            page.goto(url)
            if expand:
                page.locator("summary", has_text=expand).first.click()
            page.screenshot(path=str(path), full_page=True)
        finally:
            browser.close()
