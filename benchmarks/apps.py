"""The echo apps of the server benchmarks, served by uvicorn from the project's interpreter.

Each one echoes every text message back as text until the client closes:
`uvicorn benchmarks.apps:raw`, `benchmarks.apps:bocws`, `benchmarks.apps:starlette`,
`benchmarks.apps:litestar`; `benchmarks.apps:bocws_view` and
`benchmarks.apps:bocws_metrics` are bocws's echo as a view, without and with Prometheus
metrics. Bocadillo has its own interpreter and module (`benchmarks/bocadillo_app.py`).
The echo of `raw` is also the in-process suites' baseline (`worker.raw`, in both their
interpreters).

Only `raw` is built at import time; the others are built on first access (PEP 562
`__getattr__`), so that each server process imports its own framework and nothing
else, and the memory baselines are not inflated by frameworks a server never runs.

No `from __future__ import annotations` here: Litestar reads the handler's annotations
at run time, and its `WebSocket` is imported inside the factory, out of the module's
globals.
"""

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[MutableMapping[str, Any], Receive, Send], Awaitable[None]]


def echo(key: str) -> ASGIApp:
    """A bare ASGI echo of the messages carrying `key` ("text" or "bytes"), until the
    disconnect: the raw baseline of every suite (`worker.raw` times it in process)."""

    async def app(scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            await send({"type": "websocket.send", key: message[key]})

    return app


_echo_text = echo("text")


async def raw(scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
    """A bare ASGI app, nothing in between: the baseline of every ratio."""
    if scope["type"] == "lifespan":
        await lifespan(receive, send)
        return
    await _echo_text(scope, receive, send)


async def lifespan(receive: Receive, send: Send) -> None:
    """The ASGI lifespan protocol, with nothing to start or stop."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def _bocws() -> ASGIApp:
    from bocws import WebSocket

    async def app(scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
        """bocws: a text WebSocket, `async with`, `async for`, `send`."""
        ws = WebSocket(scope, receive, send, value_type="text")
        async with ws:
            async for message in ws:
                await ws.send(message)

    return app


def _bocws_view(metrics: bool = False) -> ASGIApp:
    from bocws import websocket_view

    options = {"metrics": True} if metrics else {}

    @websocket_view(value_type="text", **options)
    async def echo(ws: Any) -> None:
        """bocws as a view (the lifecycle `App` routes run), with or without metrics."""
        async for message in ws:
            await ws.send(message)

    return echo


def _starlette() -> ASGIApp:
    from starlette.websockets import WebSocket

    async def app(scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
        """Starlette's WebSocket: `iter_text()` and `send_text()`."""
        ws = WebSocket(scope, receive, send)
        await ws.accept()
        async for text in ws.iter_text():
            await ws.send_text(text)

    return app


def _litestar() -> ASGIApp:
    from litestar import Litestar, WebSocket, websocket
    from litestar.exceptions import WebSocketDisconnect

    @websocket("/")
    async def echo(socket: WebSocket) -> None:  # type: ignore[type-arg]
        """Litestar's plain handler: `receive_text()` and `send_text()` in a loop."""
        await socket.accept()
        try:
            while True:
                await socket.send_text(await socket.receive_text())
        except WebSocketDisconnect:
            return  # the client closed: the end of the echo, not an error

    app: ASGIApp = Litestar([echo])  # type: ignore[assignment]
    return app


_FACTORIES: dict[str, Callable[[], ASGIApp]] = {
    "bocws": _bocws,
    "bocws_view": _bocws_view,
    "bocws_metrics": lambda: _bocws_view(metrics=True),
    "starlette": _starlette,
    "litestar": _litestar,
}


def __getattr__(name: str) -> ASGIApp:
    """Build the app named `name` on first access, importing its framework then."""
    factory = _FACTORIES.get(name)
    if factory is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    app = globals()[name] = factory()
    return app
