"""Debian's Chromium for the browser tests, through Playwright for Python."""

import os
import shutil

import pytest

CHROMIUM = "/usr/bin/chromium"
# Headless, and no calls home: this machine reaches nothing but its package registries.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def require_chromium() -> None:
    """Skip on a machine without Chromium or Playwright; in CI (REQUIRE_BROWSER=1) fail."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing = "Playwright for Python is not installed (pip install -r requirements-dev.txt)"
    else:
        missing = None if shutil.which(CHROMIUM) else f"Chromium not found at {CHROMIUM}"
    if missing is None:
        return
    reason = f"{missing}; the browser tests need it (apt-get install -y chromium)."
    if os.environ.get("REQUIRE_BROWSER") == "1":
        pytest.fail(reason)
    pytest.skip(reason)
