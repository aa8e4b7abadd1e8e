"""A throwaway `redis-server` in a child process, and the `redis_server` fixture.

`RedisServer` runs Debian's `redis-server` on a fixed 127.0.0.1 port with no
persistence, so that a test can kill it (SIGKILL, or SIGTERM as a supervisor would)
and start it again where its clients expect it, or freeze it (SIGSTOP). Without
`redis-server` on `PATH` the tests that need it skip, except under CI (`$CI` set),
where they fail.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.processes import TIMEOUT, free_port, stop

__all__ = ["RedisServer", "redis_server", "require_redis_server"]


def _answers_ping(port: int) -> bool:
    """Whether a Redis server on 127.0.0.1:`port` answers PING now."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0) as connection:
            connection.sendall(b"PING\r\n")
            reply = b""
            while not reply.endswith(b"\r\n"):
                chunk = connection.recv(64)
                if not chunk:
                    return False
                reply += chunk
            return reply == b"+PONG\r\n"
    except OSError:
        return False


class RedisServer:
    """`redis-server` in a child process on a fixed port, so that it can be restarted.

    Args:
        directory: its working directory (`--dir`); its log goes to `redis.log` there.
        port: the port on 127.0.0.1; a free one by default.
        executable: the `redis-server` to run.
    """

    def __init__(
        self, directory: Path, *, port: int | None = None, executable: str = "redis-server"
    ) -> None:
        self.directory = directory
        self.port = port if port is not None else free_port()
        self.executable = executable
        self.log = directory / "redis.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        return self._process is not None

    def __repr__(self) -> str:
        return f"<RedisServer {self.url}: {'running' if self.running else 'stopped'}>"

    def start(self) -> None:
        """Start the server; return once it answers PING (within `TIMEOUT`)."""
        assert self._process is None, "already running"
        command = [
            self.executable,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.directory),
            "--daemonize", "no",
            "--loglevel", "warning",
            "--logfile", "",  # standard output: the log file below
        ]  # fmt: skip
        with self.log.open("ab") as log:
            self._process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        deadline = time.monotonic() + TIMEOUT
        while not _answers_ping(self.port):
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop(kill=True)
                pytest.fail(
                    f"redis-server did not answer PING on port {self.port} within "
                    f"{TIMEOUT:g} s; its log:\n{self.log.read_text(errors='replace')}"
                )
            time.sleep(0.005)  # polling, bounded by the deadline

    def stop(self, *, kill: bool = False) -> None:
        """Stop the server: SIGTERM (as a supervisor would), or SIGKILL (a crash) if `kill`.

        Returns once the process has exited; does nothing if it is not running.
        """
        process, self._process = self._process, None
        if process is None:
            return
        process.send_signal(signal.SIGCONT)  # were it paused, SIGTERM would wait for this
        if kill:
            process.kill()
            process.wait(TIMEOUT)
        else:
            stop(process)

    def pause(self) -> None:
        """Freeze the server (SIGSTOP): its connections stay open, and nothing answers."""
        assert self._process is not None, "not running"
        self._process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """Let a paused server go on (SIGCONT)."""
        assert self._process is not None, "not running"
        self._process.send_signal(signal.SIGCONT)

    def restart(self, *, kill: bool = False) -> None:
        """Stop the server and start it again on the same port."""
        self.stop(kill=kill)
        self.start()


def require_redis_server() -> str:
    """The path of `redis-server`; skip the test without it (fail under CI)."""
    executable = shutil.which("redis-server")
    if executable is None:
        message = "no redis-server on PATH: install Debian's redis-server package (CI does)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return executable


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A fresh, empty `redis-server` for one test, killed after it.

    Starting one takes about 20 ms; SIGTERM would take 100 ms more (Redis shuts down at
    its next cron tick), and there is nothing to save.
    """
    server = RedisServer(tmp_path, executable=require_redis_server())
    server.start()
    try:
        yield server
    finally:
        server.stop(kill=True)
