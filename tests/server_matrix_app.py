"""The bocws app that tests/test_server_matrix.py serves under every server.

Each WebSocket route is a bocws view for one behaviour. A client names its connection
with `?key=...`; what the view saw (its notes, and how it ended: returned, raised, or
was cancelled) is kept under that key, and `GET /report/{key}` returns it as JSON once
the view has ended, waiting for it up to `REPORT_WAIT` seconds. Reports are dropped once
read, and at most `KEPT` are kept. `GET /mark/{token}` logs the token, so that the test
knows when it has read all that the server logged before.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import sys
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import Any

import anyio
from granian.utils.proxies import wrap_asgi_with_proxy_headers
from hypercorn.middleware import ProxyFixMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import WebSocketRoute
from starlette.types import Receive, Scope, Send

from bocws import App, WebSocket, WebSocketDisconnect

REPORT_WAIT = 8.0
"""Seconds `GET /report/{key}` waits for the view to end."""
KEPT = 1000
FEED_FOR = 2.0
"""Seconds the feed view sends before it gives up on learning that its client left."""
FEED_EVERY = 0.02

# bocws's own lines on stderr, the same under every server (each configures logging
# its own way, or not at all).
_handler = logging.StreamHandler(sys.stderr)
_handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
for _name in ("bocws", "server_matrix"):
    _logger = logging.getLogger(_name)
    _logger.addHandler(_handler)
    _logger.setLevel(logging.INFO)
    _logger.propagate = False

app = App()


class Reports:
    """What each view saw, under the key its client gave, until the test reads it."""

    def __init__(self) -> None:
        self.notes: dict[str, list[Any]] = {}
        self.ended: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self.waiting: dict[str, anyio.Event] = {}

    def note(self, ws: WebSocket, item: Any) -> None:
        self.notes.setdefault(ws.query_params.get("key", ""), []).append(item)

    def end(self, key: str, outcome: dict[str, Any]) -> None:
        self.ended[key] = {"outcome": outcome, "notes": self.notes.pop(key, [])}
        while len(self.ended) > KEPT:
            self.ended.popitem(last=False)
        waiting = self.waiting.pop(key, None)
        if waiting is not None:
            waiting.set()

    async def read(self, key: str) -> dict[str, Any] | None:
        if key not in self.ended:
            event = self.waiting.setdefault(key, anyio.Event())
            with anyio.move_on_after(REPORT_WAIT):
                await event.wait()
        return self.ended.pop(key, None)


REPORTS = Reports()
note = REPORTS.note


@contextlib.contextmanager
def reporting(ws: WebSocket) -> Iterator[None]:
    """Report how the code inside ends: it returned, raised (what), or was cancelled."""
    key = ws.query_params.get("key", "")
    try:
        yield
    except Exception as error:
        code, reason = getattr(error, "code", None), getattr(error, "reason", None)
        REPORTS.end(key, {"raised": type(error).__name__, "code": code, "reason": reason})
        raise
    except BaseException:  # the idle timeout's cancellation
        REPORTS.end(key, {"cancelled": True})
        raise
    REPORTS.end(key, {"returned": True})


View = Callable[..., Awaitable[None]]


def route(pattern: str, **options: Any) -> Callable[[View], View]:
    """Register a view at `pattern` whose end is reported under its client's key."""

    def register(view: View) -> View:
        @functools.wraps(view)
        async def reported(ws: WebSocket, **params: Any) -> None:
            with reporting(ws):
                await view(ws, **params)

        app.websocket_route(pattern, **options)(reported)
        return view

    return register


@app.route("/report/{key}")
async def report(request: Request) -> Response:
    found = await REPORTS.read(request.path_params["key"])
    return JSONResponse(found, status_code=200 if found is not None else 404)


@app.route("/mark/{token}")
async def mark(request: Request) -> Response:
    """Log `token`: once the test sees it, it has all that was logged before."""
    logging.getLogger("server_matrix").info("mark %s", request.path_params["token"])
    return PlainTextResponse("marked")


# Echoes, one per message type.


@route("/echo/text", value_type="text")
async def echo_text(ws: WebSocket) -> None:
    async for message in ws:
        await ws.send(message)


@route("/echo/bytes", value_type="bytes")
async def echo_bytes(ws: WebSocket) -> None:
    async for message in ws:
        await ws.send(message)


@route("/echo/json", value_type="json")
async def echo_json(ws: WebSocket) -> None:
    async for message in ws:
        await ws.send({"echo": message})


@route("/echo/json-binary")
async def echo_json_binary(ws: WebSocket) -> None:
    while True:
        data = await ws.receive_json(mode="binary")
        await ws.send_json({"echo": data}, mode="binary")


@route("/echo/event", receive_type="event")
async def echo_event(ws: WebSocket) -> None:
    async for event in ws:
        if event["type"] == "websocket.disconnect":
            note(ws, {"code": event.get("code"), "reason": event.get("reason") or ""})
            return
        kind = "text" if event.get("text") is not None else "bytes"
        await ws.send_event({"type": "websocket.send", kind: event[kind]})


@route("/empty")
async def empty(ws: WebSocket) -> None:
    """Send an empty text and an empty binary message, then `end`."""
    for send, message in [(ws.send_text, ""), (ws.send_bytes, b"")]:
        try:
            await send(message)
        except Exception as error:  # a clear refusal, which the client cannot see
            note(ws, {"refused": repr(message), "error": type(error).__name__})
    await ws.send("end")
    async for _ in ws:
        pass


@route("/scope")
async def scope(ws: WebSocket) -> None:
    """Send what the server put in the scope: `asgi`, `extensions`, the HTTP version, the
    client's address and the scheme."""
    keys = ("asgi", "extensions", "http_version", "client", "scheme")
    found = {key: ws.scope.get(key) for key in keys}
    await ws.send_json(json.loads(json.dumps(found, default=repr)))


# The handshake.


@route("/reject")
async def reject(ws: WebSocket) -> None:
    await ws.reject()


@route("/denial")
async def denial(ws: WebSocket) -> None:
    await ws.reject(Response(b"short and stout", status_code=418, headers={"x-why": "teapot"}))


@route("/subprotocol", auto_accept=False)
async def subprotocol(ws: WebSocket) -> None:
    offered = ws.subprotocols
    await ws.accept(subprotocol="chat.v1" if "chat.v1" in offered else None)
    await ws.send_json(offered)


@route("/accept/headers", auto_accept=False)
async def accept_headers(ws: WebSocket) -> None:
    await ws.accept(headers=[(b"x-greeting", b"hello")])
    await ws.send("accepted")


@route("/origin", allowed_origins=["https://good.example"])
async def origin(ws: WebSocket) -> None:
    await ws.send("welcome")


# Closes, both ways.


@route("/close/app")
async def close_app(ws: WebSocket, code: int, reason: str = "") -> None:
    await ws.accept()
    await ws.close(code, reason)


@route("/close/client")
async def close_client(ws: WebSocket) -> None:
    """Receive until the client leaves (a close or a reset); note its code and reason."""
    try:
        while True:
            await ws.send(await ws.receive_text())
    except WebSocketDisconnect as disconnect:
        note(ws, {"code": disconnect.code, "reason": disconnect.reason})


@route("/loop")
async def loop(ws: WebSocket) -> None:
    """The usual loop with the default `caught_close_codes`, noting each message."""
    async for message in ws:
        note(ws, message)
        await ws.send(message)


class AsyncWith:
    """The usual loop in a plain ASGI endpoint: `async with ws`, no view around it."""

    def __init__(self, caught_close_codes: Iterable[int] | None = None) -> None:
        self.caught_close_codes = caught_close_codes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        ws = WebSocket(scope, receive, send, caught_close_codes=self.caught_close_codes)
        with reporting(ws):
            async with ws:
                async for message in ws:
                    await ws.send(message)


app.router.routes.append(WebSocketRoute("/async-with", AsyncWith()))
app.router.routes.append(WebSocketRoute("/async-with/1006", AsyncWith((1000, 1001, 1006))))


@route("/feed")
async def feed(ws: WebSocket) -> None:
    """Send every `FEED_EVERY` seconds without receiving, until a send raises or
    `FEED_FOR` seconds have passed; note how many sends went out."""
    sent = 0
    deadline = anyio.current_time() + FEED_FOR
    try:
        while anyio.current_time() < deadline:
            await ws.send(f"tick {sent}")
            sent += 1
            await anyio.sleep(FEED_EVERY)
    except WebSocketDisconnect as disconnect:
        note(ws, {"code": disconnect.code, "reason": disconnect.reason, "sent": sent})
        return
    note(ws, {"sent": sent, "seconds": FEED_FOR})


@route("/feed/watched")
async def watched_feed(ws: WebSocket) -> None:
    """The feed beside `wait_closed()`: note the code it returned and the sends made."""
    sent = 0

    async def tick() -> None:
        nonlocal sent
        while True:
            await ws.send(f"tick {sent}")
            sent += 1
            await anyio.sleep(FEED_EVERY)

    with anyio.move_on_after(FEED_FOR) as waited:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(tick)
            code = await ws.wait_closed()
            tasks.cancel_scope.cancel()
    note(ws, {"sent": sent} if waited.cancelled_caught else {"code": code, "sent": sent})


# Bad input, errors and limits.


@route("/small", max_message_size=1024)
async def small(ws: WebSocket) -> None:
    async for message in ws:
        await ws.send(message)


@route("/unlimited", value_type="bytes", max_message_size=None)
async def unlimited(ws: WebSocket) -> None:
    """Echo sizes: bocws sets no limit here, and only the server's own applies."""
    async for message in ws:
        await ws.send_text(str(len(message)))


@route("/error")
async def error(ws: WebSocket) -> None:
    await ws.receive_text()
    raise RuntimeError("the view failed")


@route("/idle", idle_timeout=0.5)
async def idle(ws: WebSocket) -> None:
    async for message in ws:
        await ws.send(message)


# The same app behind a proxy, for the servers that read its headers only in code:
# hypercorn's middleware and granian's wrapper (uvicorn and daphne have a flag).
behind_proxy_hypercorn = ProxyFixMiddleware(app, mode="legacy", trusted_hops=1)
behind_proxy_granian = wrap_asgi_with_proxy_headers(app, trusted_hosts="127.0.0.1")
