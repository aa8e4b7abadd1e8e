"""ASGI servers in child processes: every server bocws is tested under, one table.

`SERVERS` maps a configuration's name (a server, and its WebSocket implementation or
worker where it has several) to the command line that serves an ASGI `module:app`,
with the flags docs/servers.md recommends. `serving(name, app)` starts one on a free
127.0.0.1 port, returns once it accepts connections, collects its log (stdout and
stderr, line by line) and stops it, every wait bounded.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.processes import ROOT, TIMEOUT, free_port, stop

HOST = "127.0.0.1"
MAX_MESSAGE_SIZE = 1024 * 1024
"""The servers' own message limit: 1 MiB, the default `max_message_size` of `App` routes."""
PING_INTERVAL = 20
"""Seconds between the servers' keepalive pings, where they send any."""


@dataclass(frozen=True)
class Server:
    """How to serve an ASGI app with one server: its command line, and a config file.

    `arguments` follow `python -m`, with `{app}`, `{host}`, `{port}` and `{config}` (the
    path of a file holding `config`, for settings the server has no flag for) filled in.
    """

    arguments: tuple[str, ...]
    config: str = ""

    def command(self, app: str, host: str, port: int, config: Path) -> list[str]:
        values = {"app": app, "host": host, "port": str(port), "config": str(config)}
        return [sys.executable, "-m", *(part.format(**values) for part in self.arguments)]


def _uvicorn(implementation: str) -> Server:
    return Server(
        (
            "uvicorn",
            "{app}",
            "--host={host}",
            "--port={port}",
            f"--ws={implementation}",
            f"--ws-max-size={MAX_MESSAGE_SIZE}",
            f"--ws-ping-interval={PING_INTERVAL}",
            f"--ws-ping-timeout={PING_INTERVAL}",
            "--proxy-headers",
        )
    )


def _hypercorn(worker: str) -> Server:
    # The message limit has no flag: it is set in a TOML file given with --config.
    return Server(
        (
            "hypercorn",
            "{app}",
            "--bind={host}:{port}",
            f"--worker-class={worker}",
            f"--websocket-ping-interval={PING_INTERVAL}",
            "--config={config}",
        ),
        config=f"websocket_max_message_size = {MAX_MESSAGE_SIZE}\n",
    )


SERVERS: dict[str, Server] = {
    "uvicorn-websockets-sansio": _uvicorn("websockets-sansio"),
    "uvicorn-wsproto": _uvicorn("wsproto"),
    "uvicorn-websockets": _uvicorn("websockets"),
    "hypercorn-asyncio": _hypercorn("asyncio"),
    "hypercorn-trio": _hypercorn("trio"),
    # granian has no flag for a message limit or keepalive pings over HTTP/1.
    "granian": Server(
        ("granian", "--interface=asgi", "--host={host}", "--port={port}", "--workers=1", "{app}")
    ),
    "daphne": Server(
        (
            "daphne",
            "--bind={host}",
            "--port={port}",
            f"--websocket-max-message-size={MAX_MESSAGE_SIZE}",
            f"--ping-interval={PING_INTERVAL}",
            f"--ping-timeout={PING_INTERVAL}",
            "--proxy-headers",
            "{app}",
        )
    ),
}


class Running:
    """A server serving: its configuration's name, its port, and its log, line by line."""

    def __init__(self, name: str, port: int, process: subprocess.Popen[str]) -> None:
        self.name = name
        self.port = port
        self.process = process
        self.lines: list[str] = []
        self._seen = threading.Condition()
        self._ended = False  # the server closed its output: it exited

    @property
    def http(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://{HOST}:{self.port}"

    def log(self, since: int = 0) -> str:
        return "\n".join(self.lines[since:])

    def wait_for(self, text: str, since: int = 0) -> int:
        """The index of the first line from `since` on that holds `text`; wait, bounded."""
        deadline = time.monotonic() + TIMEOUT
        with self._seen:
            while True:
                for index in range(since, len(self.lines)):
                    if text in self.lines[index]:
                        return index
                since = len(self.lines)
                left = deadline - time.monotonic()
                if left <= 0 or self._ended:
                    break
                self._seen.wait(left)
        pytest.fail(f"{self.name} did not log {text!r} in time; its log:\n{self.log()}")

    def collect(self) -> None:
        """Read the server's output until it exits (in a thread of its own)."""
        assert self.process.stdout is not None
        with self.process.stdout:
            for line in self.process.stdout:
                with self._seen:
                    self.lines.append(line.rstrip("\n"))
                    self._seen.notify_all()
        with self._seen:
            self._ended = True
            self._seen.notify_all()


@contextlib.contextmanager
def serving(name: str, app: str) -> Iterator[Running]:
    """Serve `app` (`module:app`) with the configuration `name` of `SERVERS`; stop it after.

    Fails the test, with the server's log, if it does not accept connections within
    `TIMEOUT` seconds; a server that does not exit within `TIMEOUT` of its SIGTERM is
    killed, and the test fails.
    """
    port = free_port()
    with tempfile.TemporaryDirectory() as directory:
        config = Path(directory, "server.toml")
        config.write_text(SERVERS[name].config)
        process = subprocess.Popen(
            SERVERS[name].command(app, HOST, port, config),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        running = Running(name, port, process)
        collector = threading.Thread(target=running.collect, daemon=True)
        collector.start()
        try:
            _wait_until_listening(running)
            yield running
        finally:
            if process.poll() is None:
                stop(process, signal.SIGTERM)
            collector.join(TIMEOUT)


def _wait_until_listening(running: Running) -> None:
    """Return once the server accepts a TCP connection; fail after `TIMEOUT` seconds."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        if running.process.poll() is not None:
            break
        with socket.socket() as probe:
            probe.settimeout(1)
            if probe.connect_ex((HOST, running.port)) == 0:
                return
        time.sleep(0.05)  # polling the port, bounded by the deadline
    pytest.fail(f"{running.name} did not start within {TIMEOUT} s; its log:\n{running.log()}")
