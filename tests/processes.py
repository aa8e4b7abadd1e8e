"""Servers in child processes for the tests: free ports, uvicorn, its log.

`Uvicorn` runs `uvicorn APP` on a fixed 127.0.0.1 port, so that a test can stop it and
start it again where its clients expect it, and collects its log for `wait_for`.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 10.0
"""Seconds for any one thing to happen: a server to start, a page to show a message."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def stop(process: subprocess.Popen[Any], how: signal.Signals = signal.SIGTERM) -> None:
    """Stop `process` with the signal `how` and wait for it; kill it if it hangs, and fail."""
    process.send_signal(how)
    try:
        process.wait(TIMEOUT)
    except subprocess.TimeoutExpired:  # pragma: no cover - a hung server
        process.kill()
        process.wait(TIMEOUT)
        raise


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

    def __init__(
        self, app: str, *options: str, port: int | None = None, env: dict[str, str] | None = None
    ) -> None:
        self.app = app
        self.options = options
        self.env = env or {}
        self.port = port if port is not None else free_port()
        self.lines: list[str] = []
        self._seen = threading.Condition()
        self._process: subprocess.Popen[str] | None = None
        self._newest: subprocess.Popen[str] | None = None  # the last one started
        self._ended = False  # the newest process closed its stderr: it exited

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        """The running server's process id."""
        assert self._process is not None, "not running"
        return self._process.pid

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        """Start the server; return once it listens."""
        assert self._process is None, "already running"
        with self._seen:
            self._newest = None  # the end of the one before no longer counts
            self._ended = False
        since = len(self.lines)
        command = [sys.executable, "-m", "uvicorn", self.app, "--host", "127.0.0.1"]
        command += ["--port", str(self.port), *self.options]
        self._process = subprocess.Popen(
            command,
            cwd=ROOT,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **self.env},
        )
        self._newest = self._process
        threading.Thread(target=self._collect, args=(self._process,), daemon=True).start()
        self.wait_for(rf"Uvicorn running on http://127\.0\.0\.1:{self.port}", since=since)

    def stop(self) -> None:
        """Stop the server as a supervisor would (SIGTERM), and wait for it to exit."""
        process, self._process = self._process, None
        if process is not None:
            stop(process)

    def kill(self) -> None:
        """Kill the server (SIGKILL), as a crash would: no socket is closed cleanly."""
        process, self._process = self._process, None
        assert process is not None, "not running"
        process.kill()
        process.wait(TIMEOUT)

    def interrupt(self) -> float:
        """Press Ctrl+C (SIGINT) and wait for the server to exit; the seconds it took."""
        process, self._process = self._process, None
        assert process is not None, "not running"
        started = time.monotonic()
        stop(process, signal.SIGINT)
        with self._seen:  # the rest of its log
            while not self._ended:
                self._seen.wait(TIMEOUT)
        return time.monotonic() - started

    def _collect(self, process: subprocess.Popen[str]) -> None:
        assert process.stderr is not None
        for line in process.stderr:
            with self._seen:
                self.lines.append(line.rstrip("\n"))
                self._seen.notify_all()
        process.stderr.close()
        with self._seen:
            # A process stopped before a restart may close its stderr after the new one
            # started: only the newest one's end counts (else wait_for gives up at once).
            if process is self._newest:
                self._ended = True
            self._seen.notify_all()

    def wait_for(self, pattern: str, *, since: int = 0, times: int = 1) -> re.Match[str]:
        """The `times`th line from index `since` on that matches `pattern`; wait, bounded."""
        deadline = time.monotonic() + TIMEOUT
        with self._seen:
            while True:
                for line in self.lines[since:]:
                    found = re.search(pattern, line)
                    if found:
                        times -= 1
                        if not times:
                            return found
                since = len(self.lines)
                left = deadline - time.monotonic()
                if left <= 0 or self._ended:
                    break
                self._seen.wait(left)
        log = "\n".join(self.lines)
        pytest.fail(f"the server did not log {pattern!r} (or not often enough); its log:\n{log}")
