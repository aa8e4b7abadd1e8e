"""A real uvicorn in the test's own event loop, and a bounded `websockets` client for it.

`running_server(app, implementation)` serves any ASGI app on 127.0.0.1 (an ephemeral
port) with one of uvicorn's WebSocket implementations; `client()`, `recv()`,
`close_frame()` and `refused()` talk to it with every wait bounded by `TIMEOUT`. A
`Probe` carries what views saw back to the test. Used by the tests of the WebSocket,
views, routing, limits, origins, the examples and the docs.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
import uvicorn
from starlette.types import ASGIApp
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

IMPLEMENTATIONS = ["websockets-sansio", "wsproto", "websockets"]
TIMEOUT = 5.0
"""The bound on every single wait: server start, handshake, a message, a view's note."""

ABNORMAL_CODES = {1005, 1006}


class ViewRaised:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


class Probe:
    """What the views report to the test, in-process.

    `notes` carries whatever a view chose to record; `outcomes` gets one item per view
    run: `None` when the view returned, or the exception it raised.
    """

    def __init__(self) -> None:
        self.notes: asyncio.Queue[Any] = asyncio.Queue()
        self.outcomes: asyncio.Queue[BaseException | None] = asyncio.Queue()

    def note(self, item: Any) -> None:
        self.notes.put_nowait(item)

    def view_raised(self, exc: BaseException) -> None:
        self.outcomes.put_nowait(exc)
        self.notes.put_nowait(ViewRaised(exc))  # wakes a test waiting for a note

    async def next_note(self, timeout: float = TIMEOUT) -> Any:
        item = await asyncio.wait_for(self.notes.get(), timeout)
        if not isinstance(item, ViewRaised):
            return item
        raise AssertionError(f"the view raised {item.exc!r}") from item.exc

    async def outcome(self, timeout: float = TIMEOUT) -> BaseException | None:
        return await asyncio.wait_for(self.outcomes.get(), timeout)


@contextlib.asynccontextmanager
async def running_server(app: ASGIApp, implementation: str) -> AsyncIterator[str]:
    """Run uvicorn with `app` in this event loop; yield its `ws://127.0.0.1:<port>` base URL."""
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        ws=implementation,  # type: ignore[arg-type]
        log_level="warning",
        log_config=None,
        lifespan="off",
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + TIMEOUT
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError("uvicorn stopped before it started")
            if loop.time() > deadline:
                raise TimeoutError(f"uvicorn did not start within {TIMEOUT} s")
            await asyncio.sleep(0.01)  # polling the start flag, bounded by the deadline
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"ws://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


def client(url: str, **kwargs: Any) -> Any:
    """The `websockets` client, with bounded timeouts, no keepalive pings and no proxy."""
    return connect(
        url,
        open_timeout=TIMEOUT,
        close_timeout=2,
        ping_interval=None,
        proxy=None,
        **kwargs,
    )


async def recv(connection: ClientConnection) -> str | bytes:
    return await asyncio.wait_for(connection.recv(), TIMEOUT)


async def closed_by_server(connection: ClientConnection) -> ConnectionClosed:
    """Wait for the server's close; return the client's `ConnectionClosed`."""
    with pytest.raises(ConnectionClosed) as info:
        await asyncio.wait_for(connection.recv(), TIMEOUT)
    return info.value


async def close_frame(connection: ClientConnection) -> tuple[int, str]:
    """Wait for the server's close; return the code and reason of its close frame."""
    closed = await closed_by_server(connection)
    assert closed.rcvd is not None
    return closed.rcvd.code, closed.rcvd.reason


async def refused(url: str, **kwargs: Any) -> InvalidStatus:
    """Open a connection the server must refuse with an HTTP response; return the error."""
    with pytest.raises(InvalidStatus) as info:
        async with client(url, **kwargs):
            pass
    return info.value
