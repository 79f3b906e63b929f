"""Headless Chromium for the browser tests and the review benchmark: the one list of flags, and Selenium with the
system's chromium-driver (nothing is downloaded)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from typing import Any

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
CHROMEDRIVER = shutil.which("chromedriver")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
    "--disable-quic",
]


def missing() -> str | None:
    """Why no browser test can run here, or None."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed"
    if not CHROMIUM or not CHROMEDRIVER:
        return "chromium and chromedriver are not both installed"
    return None


def driver(width: int = 1280, height: int = 900) -> Any:
    """A headless Chromium driven by the installed chromedriver (nothing is downloaded)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = str(CHROMIUM)
    for flag in [*FLAGS, f"--window-size={width},{height}"]:
        opts.add_argument(flag)
    return webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=opts)


def wait(drv: Any, cond: Callable[[Any], Any], timeout: float = 60) -> Any:
    """Wait for ``cond``; on a timeout, fail naming the page's status line and hash."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(drv, timeout, poll_frequency=0.05).until(cond)
    except TimeoutException:
        where = drv.execute_script("return [location.hash, document.querySelector('#status')?.textContent]")
        raise AssertionError(f"timed out after {timeout} s at {where}") from None


def keys(drv: Any, *seq: str) -> None:
    """Type keys to the page (the focused element: the body)."""
    from selenium.webdriver.common.action_chains import ActionChains

    ActionChains(drv).send_keys(*seq).perform()


def status_is(prefix: str) -> Callable[[Any], bool]:
    def check(drv: Any) -> bool:
        return str(drv.execute_script("return document.querySelector('#status').textContent")).startswith(prefix)

    return check
