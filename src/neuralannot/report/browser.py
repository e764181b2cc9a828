"""Headless Chromium through selenium, to check and screenshot reports (used by tests and scripts).

Needs the system ``chromium`` + ``chromedriver`` (``bash scripts/install_system_deps.sh --browser``)
and the ``selenium`` package; nothing is downloaded (the driver path is always given explicitly).
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def unavailable_reason() -> str | None:
    """Why a headless browser cannot run here (None when it can)."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install selenium)"
    if not any(shutil.which(b) for b in BROWSERS):
        return "no chromium binary on PATH (bash scripts/install_system_deps.sh --browser)"
    if not shutil.which("chromedriver"):
        return "no chromedriver on PATH (bash scripts/install_system_deps.sh --browser)"
    return None


@contextlib.contextmanager
def headless_chrome(width: int = 1280, height: int = 1000) -> Iterator[Any]:
    """A selenium Chrome driver on headless Chromium that records the browser console."""
    from selenium import webdriver

    reason = unavailable_reason()
    if reason:
        raise RuntimeError(f"cannot start a headless browser: {reason}")
    opts = webdriver.ChromeOptions()
    opts.binary_location = next(shutil.which(b) for b in BROWSERS if shutil.which(b))
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                f"--window-size={width},{height}", "--hide-scrollbars"):  # fmt: skip
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=opts, service=webdriver.ChromeService(shutil.which("chromedriver")))
    try:
        yield driver
    finally:
        driver.quit()


def page_problems(driver: Any, page: str | Path) -> list[str]:
    """Open a local page and list its problems: SEVERE console messages and images that did not load."""
    driver.get(Path(page).resolve().as_uri())
    problems = [f"console: {e['message']}" for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
    images = driver.execute_script(
        "return Array.from(document.images).map(i => [i.getAttribute('src'), i.complete, i.naturalWidth]);"
    )
    problems += [f"image not loaded: {src}" for src, done, width in images if not (done and width > 0)]
    if not images:
        problems.append("the page has no images")
    return problems


def screenshot(driver: Any, page: str | Path, max_height: int = 2400) -> bytes:
    """PNG of a local page, the window stretched to the page height (at most ``max_height`` px)."""
    driver.get(Path(page).resolve().as_uri())
    width = driver.get_window_size()["width"]
    height = driver.execute_script("return document.documentElement.scrollHeight;")
    driver.set_window_size(width, min(int(height), max_height))
    return driver.get_screenshot_as_png()
