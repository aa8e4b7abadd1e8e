"""The peers of the fan-out benchmark, serving what `broadcast_app.py` serves.

Each has a `/feed` WebSocket route whose clients only listen, and `POST
/publish?count=N&rate=R&batch=B`, which publishes N messages `{"batch": B, "seq": n,
"sent": time.time_ns()}` to every client, R a second (0: back to back), and answers
with how long that took and how far it fell behind schedule (`publish_loop`):

- `raw`: raw ASGI, by hand: a set of the connections' `send` callables; per message,
  the JSON encoded once and each `send` awaited in turn. The floor for an ASGI app.
- `starlette_broadcaster`: Starlette's `WebSocket` with encode/broadcaster's
  `memory://` backend, the usual recipe of the ecosystem: each client subscribes, and
  relays each event's message with `send_text` from a task of its own, while the view
  receives.

Serve them as `uvicorn benchmarks.fanout_apps:raw` and
`uvicorn benchmarks.fanout_apps:starlette_broadcaster`.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from .apps import lifespan

try:
    import orjson
except ImportError:  # pragma: no cover - the bench extra has it
    orjson = None  # type: ignore[assignment]

Message = dict[str, Any]
Send = Callable[[Message], Awaitable[None]]
Receive = Callable[[], Awaitable[Message]]


def dumps(value: Any) -> str:
    if orjson is None:
        return json.dumps(value, separators=(",", ":"))
    text: str = orjson.dumps(value).decode()
    return text


async def publish_loop(
    count: int, rate: float, batch: int, publish: Callable[[dict[str, Any]], Awaitable[Any]]
) -> dict[str, Any]:
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


async def publish_as_asked(
    arguments: Mapping[str, str], publish: Callable[[dict[str, Any]], Awaitable[Any]]
) -> dict[str, Any]:
    """`publish_loop` with `/publish`'s query: `count`, `rate` (0) and `batch` (0)."""
    count, rate = int(arguments["count"]), float(arguments.get("rate", "0"))
    return await publish_loop(count, rate, int(arguments.get("batch", "0")), publish)


def query(scope: dict[str, Any]) -> dict[str, str]:
    items = scope["query_string"].decode().split("&")
    return dict(item.split("=", 1) for item in items if "=" in item)


async def answer(send: Send, body: dict[str, Any]) -> None:
    payload = dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(payload))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


# raw

_sends: set[Send] = set()


async def _publish_raw(event: dict[str, Any]) -> None:
    message = {"type": "websocket.send", "text": dumps(event)}  # encoded once, for all
    for send in list(_sends):
        try:
            await send(message)
        except Exception:
            _sends.discard(send)


async def raw(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    """The fan-out by hand (see the module's docstring)."""
    if scope["type"] == "lifespan":
        await lifespan(receive, send)
    elif scope["type"] == "websocket":
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        _sends.add(send)
        try:
            while (await receive())["type"] != "websocket.disconnect":
                pass
        finally:
            _sends.discard(send)
    else:
        while (await receive()).get("more_body"):
            pass
        await answer(send, await publish_as_asked(query(scope), _publish_raw))


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
            yield

    return Starlette(
        routes=[WebSocketRoute("/feed", feed), Route("/publish", publish, methods=["POST"])],
        lifespan=lifespan,
    )


_made: dict[str, Any] = {}


def __getattr__(name: str) -> Any:
    """`starlette_broadcaster`, made on first use: only its variant needs broadcaster."""
    if name != "starlette_broadcaster":
        raise AttributeError(name)
    if name not in _made:
        _made[name] = _starlette_broadcaster()
    return _made[name]
