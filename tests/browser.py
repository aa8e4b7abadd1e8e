"""Fixtures: headless Chromium for the browser tests, and `uvicorn` processes to talk to.

The browser is Debian's `chromium` (`/usr/bin/chromium`, or `$BOCWS_CHROMIUM`),
driven by Playwright; Playwright's own browser downloads are never used. Without
Chromium the browser tests skip, except under CI (`$CI` set), where they fail.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.processes import TIMEOUT, Uvicorn

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext

CHROMIUM = Path(os.environ.get("BOCWS_CHROMIUM", "/usr/bin/chromium"))

# Chromium as root in a container, on a machine with no internet: no sandbox, no GPU,
# and none of the background connections to Google's services it would try.
CHROMIUM_ARGS = [
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture
def serve() -> Iterator[type[Uvicorn]]:
    """Start `Uvicorn(...)` servers with `serve(app, ...).start()`; stop them all at the end."""
    started: list[Uvicorn] = []

    class Tracked(Uvicorn):
        def start(self) -> None:
            started.append(self)
            super().start()

    yield Tracked
    for server in started:
        server.stop()


# Per module, not per session: Playwright's sync API keeps an event loop of its own
# running while it is open, and later asyncio tests could not start theirs.
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless, driven by Playwright."""
    in_ci = bool(os.environ.get("CI"))
    if not CHROMIUM.exists():
        message = f"no Chromium at {CHROMIUM}: install Debian's chromium package (CI does)"
        if in_ci:
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=TIMEOUT * 1000)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    """A fresh browser profile (no cookies, no storage) for one test."""
    fresh = browser.new_context(viewport={"width": 1000, "height": 700})
    fresh.set_default_timeout(TIMEOUT * 1000)
    yield fresh
    fresh.close()
