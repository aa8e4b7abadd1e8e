"""`Broadcast(backend=...)`, and a backend written from `Backend`'s documentation alone.

`DocumentedBackend` talks to `PubSubServer`, a pub/sub server inside the test's process
standing in for a network one. It was written from the docstrings of
`bocws.broadcast.Backend`, not from the built-in backends: that it passes the contract
suite of tests/test_broadcast.py (where it is one of the backends the suite runs on)
is the test that the documentation is enough to write one. The tests here are those of
the `backend=` argument itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Callable
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from bocws import Broadcast, BroadcastUnavailable
from bocws.broadcast import Backend
from bocws.broadcast._backends import SCHEMES, MemoryBackend, RedisBackend, backend_for_url

logger = logging.getLogger("tests.broadcast_contract")

# What the server sends a connection: ("message", channel, payload) or ("subscribed", channel, b"").
Sent = tuple[str, str, bytes]


class PubSubServer:
    """A pub/sub server in this process: each message goes to the connections subscribed
    to its channel, in order, and each subscription is confirmed on its connection.

    `stop()` closes every connection and refuses new ones until `start()`, as a server
    that went away and came back would.
    """

    def __init__(self) -> None:
        self.running = True
        self.connections: set[ServerConnection] = set()

    def __repr__(self) -> str:
        return f"<PubSubServer: {'running' if self.running else 'stopped'}>"

    def connect(self) -> ServerConnection:
        self._check_running()
        connection = ServerConnection(self)
        self.connections.add(connection)
        return connection

    def publish(self, channel: str, payload: bytes) -> None:
        self._check_running()
        for connection in self.connections:
            if channel in connection.channels:
                connection.send(("message", channel, payload))

    def stop(self, *, kill: bool = False) -> None:
        """Go away: every connection breaks (`kill`, as for `RedisServer`, changes nothing)."""
        self.running = False
        for connection in list(self.connections):
            connection.close()

    def start(self) -> None:
        self.running = True

    def _check_running(self) -> None:
        if not self.running:
            raise ConnectionRefusedError("the pub/sub server is not running")


class ServerConnection:
    """One client's connection to a `PubSubServer`: what it subscribes to, and what it is sent."""

    def __init__(self, server: PubSubServer) -> None:
        self.server = server
        self.channels: set[str] = set()
        self._sending, self.received = anyio.create_memory_object_stream[Sent](math.inf)

    def subscribe(self, channel: str) -> None:
        self._check_open()
        self.channels.add(channel)
        self.send(("subscribed", channel, b""))

    def unsubscribe(self, channel: str) -> None:
        self._check_open()
        self.channels.discard(channel)

    def send(self, sent: Sent) -> None:
        self._sending.send_nowait(sent)

    def close(self) -> None:
        """Break the connection: what was sent can still be read, then it ends."""
        self.server.connections.discard(self)
        self._sending.close()

    def release(self) -> None:
        """Close the connection: the client is done with it."""
        self.close()
        self.received.close()

    def _check_open(self) -> None:
        if self not in self.server.connections:
            raise ConnectionResetError("the connection to the pub/sub server is closed")


# The backend, from the documentation: each comment cites the line of the contract it follows.

RETRY_FIRST = 0.01
RETRY_MAX = 0.2
"""Seconds between attempts to reach the server again ("a growing delay")."""
CONFIRMATION_TIMEOUT = 5.0
"""Seconds `subscribe()` waits for a confirmation ("may stop waiting ... that does not come")."""


class DocumentedBackend:
    """A `bocws.broadcast.Backend` for a `PubSubServer`, from the documentation alone."""

    def __init__(self, server: PubSubServer) -> None:
        self.server = server
        self._deliver: Callable[[str, bytes], None] | None = None
        self._channels: set[str] = set()  # "keep the channels in a set"
        self._connection: ServerConnection | None = None  # while connected to the server
        self._confirming: dict[str, list[anyio.Event]] = {}  # subscribes waiting, per channel
        self._reader: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"<DocumentedBackend {self.server!r}>"

    async def connect(self, deliver: Callable[[str, bytes], None]) -> None:
        await anyio.lowlevel.checkpoint()  # as a network call would
        try:
            connection = self.server.connect()
        except OSError as error:
            # "raise BroadcastUnavailable (chaining the client's error)"; nothing is running yet.
            raise BroadcastUnavailable(f"cannot reach the pub/sub server: {error}") from error
        self._deliver = deliver
        self._connection = connection
        # "start it as a task of its own (... loop.create_task()), not in a task group"
        self._reader = asyncio.get_running_loop().create_task(self._read(connection))

    async def disconnect(self) -> None:
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.cancel()
            await asyncio.wait([reader])  # it ends at once: "return promptly"
        if self._connection is not None:
            self._connection.release()
        self._lost()
        self._deliver = None  # "deliver nothing more"
        self._channels.clear()  # "the next connect() starts with none"

    async def subscribe(self, channel: str) -> None:
        self._channels.add(channel)
        connection = self._connection
        if connection is None:
            return  # "return at once without raising, and subscribe once the connection is back"
        confirmed = anyio.Event()
        self._confirming.setdefault(channel, []).append(confirmed)
        try:
            connection.subscribe(channel)
        except OSError:
            return  # lost: the reader subscribes again once it is back
        # "Return once the subscription is in place (the server has confirmed it)"
        with anyio.move_on_after(CONFIRMATION_TIMEOUT):
            await confirmed.wait()

    async def unsubscribe(self, channel: str) -> None:
        self._channels.discard(channel)
        connection = self._connection
        if connection is not None:
            with contextlib.suppress(OSError):  # "Do not raise when the server cannot be reached"
                connection.unsubscribe(channel)

    async def publish(self, channel: str, payload: bytes) -> None:
        await anyio.lowlevel.checkpoint()  # "Let other tasks run at least once"
        try:
            self.server.publish(channel, payload)
        except OSError as error:
            raise BroadcastUnavailable(
                f"cannot publish to {channel!r}: the pub/sub server is unreachable ({error})"
            ) from error

    async def _read(self, connection: ServerConnection | None) -> None:
        """Deliver what the server sends; when the connection breaks, make it again."""
        delay = RETRY_FIRST
        while True:
            if connection is None:
                await anyio.sleep(delay)
                delay = min(RETRY_MAX, delay * 2)
                try:
                    connection = self.server.connect()
                    # "subscribes again to the channels subscribed to and not unsubscribed from"
                    for channel in self._channels:
                        connection.subscribe(channel)
                except OSError:
                    connection = None
                    continue
                self._connection = connection
                delay = RETRY_FIRST
                logger.warning("connected to the pub/sub server again")
            async for kind, channel, payload in connection.received:
                if kind == "message" and self._deliver is not None:
                    self._deliver(channel, payload)
                elif kind == "subscribed" and (waiting := self._confirming.get(channel)):
                    waiting.pop(0).set()  # the oldest subscribe() of the channel: in order
                    if not waiting:
                        del self._confirming[channel]
                # "Between messages that come in a burst, let the subscribers' tasks run"
                await anyio.lowlevel.checkpoint()
            connection.release()
            logger.warning("lost the connection to the pub/sub server; reconnecting")
            self._lost()
            connection = None

    def _lost(self) -> None:
        self._connection = None
        for waiting in self._confirming.values():
            for confirmed in waiting:
                confirmed.set()  # no confirmation comes on a broken connection
        self._confirming.clear()


# Broadcast(backend=...).


def test_a_backend_object_is_used_as_it_is() -> None:
    backend = DocumentedBackend(PubSubServer())
    broadcast = Broadcast(backend=backend, queue_size=5, overflow="drop_oldest")
    assert broadcast.url is None
    assert (broadcast.queue_size, broadcast.overflow) == (5, "drop_oldest")
    assert repr(broadcast) == f"<Broadcast backend={backend!r}: not connected>"


def test_the_built_in_backends_follow_the_protocol() -> None:
    server = PubSubServer()
    for backend in (
        MemoryBackend(),
        RedisBackend("redis://127.0.0.1:1/0"),
        DocumentedBackend(server),
    ):
        assert isinstance(backend, Backend)


def test_a_url_and_a_backend_together_are_a_type_error() -> None:
    with pytest.raises(TypeError, match="a URL or a backend, not both"):
        Broadcast("memory://", backend=MemoryBackend())


def test_backend_options_with_a_backend_object_are_a_type_error() -> None:
    with pytest.raises(TypeError, match=r"takes no backend options, got \['socket_timeout'\]"):
        Broadcast(backend=MemoryBackend(), socket_timeout=1)


@pytest.mark.parametrize(
    "not_a_backend",
    [MemoryBackend, "redis://127.0.0.1:6379/0", object()],
    ids=["a-class", "a-url", "an-object"],
)
def test_a_backend_without_the_protocols_methods_is_a_type_error(not_a_backend: Any) -> None:
    with pytest.raises(TypeError, match=r"methods of bocws\.broadcast\.Backend"):
        Broadcast(backend=not_a_backend)


def test_a_backend_object_passed_as_the_url_is_a_type_error() -> None:
    with pytest.raises(TypeError, match=r"a broadcast URL is a str, got MemoryBackend.*backend="):
        Broadcast(MemoryBackend())  # type: ignore[arg-type]


@pytest.mark.parametrize("backend", [MemoryBackend(), DocumentedBackend(PubSubServer())])
def test_a_backend_object_is_invalid_with_a_bad_queue_too(backend: Backend) -> None:
    with pytest.raises(ValueError, match="queue_size"):
        Broadcast(backend=backend, queue_size=0)


# The scheme table.


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("memory://", MemoryBackend),
        ("redis://127.0.0.1:6379/0", RedisBackend),
        ("rediss://127.0.0.1:6380/0", RedisBackend),
        ("unix:///run/redis.sock", RedisBackend),
    ],
)
def test_each_scheme_makes_its_backend(url: str, kind: type) -> None:
    assert isinstance(backend_for_url(url, {}), kind)
    assert url.partition("://")[0] in SCHEMES


def test_broadcast_without_a_url_or_a_backend_is_in_memory() -> None:
    broadcast = Broadcast()
    assert broadcast.url == "memory://"
    assert repr(broadcast) == "<Broadcast 'memory://': not connected>"


def test_an_unsupported_url_names_every_scheme_and_the_backend_argument() -> None:
    with pytest.raises(ValueError, match="unsupported broadcast URL 'nats://x'") as info:
        Broadcast("nats://x")
    for scheme in SCHEMES:
        assert f"{scheme}://" in str(info.value)
    assert "Broadcast(backend=...)" in str(info.value)
