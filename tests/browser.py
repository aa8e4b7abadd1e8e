"""Headless Chromium for the browser tests, and `uvicorn` processes for it to talk to.

The browser is Debian's `chromium` (`/usr/bin/chromium`, or `$BOCWS_CHROMIUM`),
driven by Playwright; Playwright's own browser downloads are never used. Without
Chromium the browser tests skip, except under CI (`$CI` set), where they fail.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path(os.environ.get("BOCWS_CHROMIUM", "/usr/bin/chromium"))
TIMEOUT = 10.0
"""Seconds for any one thing to happen: a server to start, a page to show a message."""

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


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def log_config(path: Path, *loggers: str) -> Path:
    """A `--log-config` file: uvicorn's own logging, plus `loggers` at INFO on stderr."""
    from uvicorn.config import LOGGING_CONFIG

    config = json.loads(json.dumps(LOGGING_CONFIG))
    for name in loggers:
        config["loggers"][name] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    path.write_text(json.dumps(config))
    return path


class Uvicorn:
    """`uvicorn APP` in a child process on a fixed port, so that it can be restarted.

    Its stderr (uvicorn's log and the app's) is collected line by line for `wait_for`.
    """

    def __init__(self, app: str, *options: str, port: int | None = None) -> None:
        self.app = app
        self.options = options
        self.port = port if port is not None else free_port()
        self.lines: list[str] = []
        self._seen = threading.Condition()
        self._process: subprocess.Popen[str] | None = None
        self._ended = False  # the running process closed its stderr: it exited

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start the server; return once it listens."""
        assert self._process is None, "already running"
        self._ended = False
        since = len(self.lines)
        command = [sys.executable, "-m", "uvicorn", self.app, "--host", "127.0.0.1"]
        command += ["--port", str(self.port), *self.options]
        self._process = subprocess.Popen(
            command,
            cwd=ROOT,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        threading.Thread(target=self._collect, args=(self._process,), daemon=True).start()
        self.wait_for(rf"Uvicorn running on http://127\.0\.0\.1:{self.port}", since=since)

    def stop(self) -> None:
        """Stop the server as a supervisor would (SIGTERM), and wait for it to exit."""
        process, self._process = self._process, None
        if process is not None:
            process.terminate()
            try:
                process.wait(TIMEOUT)
            except subprocess.TimeoutExpired:  # pragma: no cover - a hung server
                process.kill()
                process.wait(TIMEOUT)
                raise

    def _collect(self, process: subprocess.Popen[str]) -> None:
        assert process.stderr is not None
        for line in process.stderr:
            with self._seen:
                self.lines.append(line.rstrip("\n"))
                self._seen.notify_all()
        process.stderr.close()
        with self._seen:
            self._ended = True
            self._seen.notify_all()

    def wait_for(self, pattern: str, *, since: int = 0) -> re.Match[str]:
        """The first line from index `since` on that matches `pattern`; wait for it, bounded."""
        deadline = time.monotonic() + TIMEOUT
        with self._seen:
            while True:
                for line in self.lines[since:]:
                    found = re.search(pattern, line)
                    if found:
                        return found
                since = len(self.lines)
                left = deadline - time.monotonic()
                if left <= 0 or self._ended:
                    break
                self._seen.wait(left)
        log = "\n".join(self.lines)
        pytest.fail(f"the server never logged {pattern!r}; its log:\n{log}")


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


@pytest.fixture(scope="session")
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
