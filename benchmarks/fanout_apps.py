"""The peers of the fan-out benchmark, serving what `broadcast_app.py` serves.

Each has a `/feed` WebSocket route (`socketio`: Socket.IO's, below) whose clients only
listen, and `POST /publish?count=N&rate=R&batch=B`, which publishes N messages
`{"batch": B, "seq": n, "sent": time.time_ns()}` to every client, R a second (0: back
to back), and answers with how long that took and how far it fell behind schedule
(`publish_loop`):

- `raw`: raw ASGI, by hand: a set of the connections' `send` callables; per message,
  the JSON encoded once and each `send` awaited in turn. The floor for an ASGI app.
- `starlette_broadcaster`: Starlette's `WebSocket` with encode/broadcaster's
  `memory://` backend, the usual recipe of the ecosystem: each client subscribes, and
  relays each event's message with `send_text` from a task of its own, while the view
  receives.
- `socketio`: python-socketio's `ASGIApp`: each client joins the room `feed` when it
  connects, and each message is emitted to the room (`AsyncServer.emit(..., room=)`);
  its clients speak Socket.IO (Engine.IO v4) over a WebSocket at
  `/socket.io/?EIO=4&transport=websocket`, and its `/publish` is the raw app's, as
  `other_asgi_app`.

Serve them as `uvicorn benchmarks.fanout_apps:raw`,
`uvicorn benchmarks.fanout_apps:starlette_broadcaster` and
`uvicorn benchmarks.fanout_apps:socketio`. Each calls `freeze_gc_if_asked()` once it
has started up (`BOCWS_BENCH_GC`), as `broadcast_app.py` and
`websockets_broadcast.py` do.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from .apps import ASGIApp, Message, Receive, Send, lifespan

try:
    import orjson
except ImportError:  # pragma: no cover - the bench extra has it
    orjson = None  # type: ignore[assignment]

Publish = Callable[[dict[str, Any]], Awaitable[Any]]

#: What every server of the fan-out benchmark does with Python's garbage collector once
#: started up: "on" (leave it as it is) or "freeze" (`gc.freeze()`).
GC_VARIABLE = "BOCWS_BENCH_GC"
GC_SETTINGS = ("on", "freeze")


def freeze_gc_if_asked() -> None:
    """Call `gc.freeze()` if `BOCWS_BENCH_GC` says "freeze": the objects made at start-up
    are then left out of every later collection.

    Raises:
        ValueError: `BOCWS_BENCH_GC` is neither "on" nor "freeze".
    """
    setting = os.environ.get(GC_VARIABLE, "on")
    if setting not in GC_SETTINGS:
        raise ValueError(f"{GC_VARIABLE}={setting!r}: expected one of {', '.join(GC_SETTINGS)}")
    if setting == "freeze":
        gc.freeze()


def dumps(value: Any) -> str:
    if orjson is None:
        return json.dumps(value, separators=(",", ":"))
    text: str = orjson.dumps(value).decode()
    return text


async def publish_loop(count: int, rate: float, batch: int, publish: Publish) -> dict[str, Any]:
    """Publish `count` messages `{"batch", "seq", "sent"}` with `publish` at `rate` a
    second (0: back to back); the answer every variant's `/publish` sends."""
    started = time.perf_counter()
    behind = 0.0  # the most the publisher fell behind its schedule, seconds
    for seq in range(count):
        if rate:
            delay = started + seq / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                behind = max(behind, -delay)
        await publish({"batch": batch, "seq": seq, "sent": time.time_ns()})
    return {"published": count, "seconds": time.perf_counter() - started, "behind_s": behind}


async def publish_as_asked(arguments: Mapping[str, str], publish: Publish) -> dict[str, Any]:
    """`publish_loop` with `/publish`'s query: `count`, `rate` (0) and `batch` (0)."""
    count, rate = int(arguments["count"]), float(arguments.get("rate", "0"))
    return await publish_loop(count, rate, int(arguments.get("batch", "0")), publish)


def query(scope: Mapping[str, Any]) -> dict[str, str]:
    items = scope["query_string"].decode().split("&")
    return dict(item.split("=", 1) for item in items if "=" in item)


async def answer(send: Send, body: dict[str, Any]) -> None:
    payload = dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(payload))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


def publisher(publish: Publish) -> ASGIApp:
    """A bare ASGI app: the lifespan (`freeze_gc_if_asked()` once started up), and every
    HTTP request answered as `/publish`, publishing with `publish`."""

    async def app(scope: Message, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, _freezing_gc_once_started(send))
        else:
            while (await receive()).get("more_body"):
                pass
            await answer(send, await publish_as_asked(query(scope), publish))

    return app


def _freezing_gc_once_started(send: Send) -> Send:
    """`send`, calling `freeze_gc_if_asked()` just before the lifespan's startup is
    reported complete (`apps.lifespan` has no hook of its own)."""

    async def reply(message: Message) -> None:
        if message["type"] == "lifespan.startup.complete":
            freeze_gc_if_asked()
        await send(message)

    return reply


# raw

_sends: set[Send] = set()


async def _publish_raw(event: dict[str, Any]) -> None:
    message = {"type": "websocket.send", "text": dumps(event)}  # encoded once, for all
    for send in list(_sends):
        try:
            await send(message)
        except Exception:
            _sends.discard(send)


_raw_publisher = publisher(_publish_raw)


async def raw(scope: Message, receive: Receive, send: Send) -> None:
    """The fan-out by hand (see the module's docstring)."""
    if scope["type"] == "websocket":
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        _sends.add(send)
        try:
            while (await receive())["type"] != "websocket.disconnect":
                pass
        finally:
            _sends.discard(send)
    else:
        await _raw_publisher(scope, receive, send)


# starlette_broadcaster


def _starlette_broadcaster() -> Any:
    from contextlib import asynccontextmanager

    import anyio
    from broadcaster import Broadcast
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route, WebSocketRoute
    from starlette.websockets import WebSocket

    channel = "feed"
    broadcast = Broadcast("memory://")

    async def feed(websocket: WebSocket) -> None:
        await websocket.accept()

        async def relay() -> None:
            async with broadcast.subscribe(channel=channel) as subscriber:
                async for event in subscriber:  # type: ignore[union-attr]
                    await websocket.send_text(event.message)

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(relay)
            try:
                while (await websocket.receive())["type"] != "websocket.disconnect":
                    pass
            finally:
                tasks.cancel_scope.cancel()

    async def publish(request: Request) -> JSONResponse:
        async def one(event: dict[str, Any]) -> None:
            await broadcast.publish(channel=channel, message=dumps(event))

        return JSONResponse(await publish_as_asked(request.query_params, one))

    @asynccontextmanager
    async def lifespan(app: Starlette) -> Any:
        async with broadcast:
            freeze_gc_if_asked()
            yield

    return Starlette(
        routes=[WebSocketRoute("/feed", feed), Route("/publish", publish, methods=["POST"])],
        lifespan=lifespan,
    )


# socketio


def _socketio() -> Any:
    import socketio  # type: ignore[import-untyped]

    room = "feed"
    server = socketio.AsyncServer(async_mode="asgi")

    async def join(sid: str, environ: dict[str, Any]) -> None:
        # Before the connection is acknowledged (`40`): a client that has its ack is in.
        await server.enter_room(sid, room)

    async def emit(event: dict[str, Any]) -> None:
        await server.emit("feed", event, room=room)

    server.on("connect", join)
    return socketio.ASGIApp(server, other_asgi_app=publisher(emit))


_FACTORIES: dict[str, Callable[[], Any]] = {
    "starlette_broadcaster": _starlette_broadcaster,
    "socketio": _socketio,
}


def __getattr__(name: str) -> Any:
    """`starlette_broadcaster` and `socketio`, made on first use: only their variants need
    broadcaster and python-socketio."""
    factory = _FACTORIES.get(name)
    if factory is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    app = globals()[name] = factory()
    return app
