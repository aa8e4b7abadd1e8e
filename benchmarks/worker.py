"""The fake server and baselines every interpreter shares, and the worker serving them.

The harness measures bocws, Starlette and Litestar in its own interpreter, but
Bocadillo 0.18.3 needs a virtualenv of its own (see `environments.py`). So that both
sides run the very same fake server and raw baseline, they live here, importing only
the standard library, orjson when there, and the raw echo the server benchmarks also
serve (`apps.py`); Bocadillo is imported inside its factories, which only run in its
interpreter.

In that interpreter this module runs as a long-lived worker (`python -m
benchmarks.worker`): it reads one JSON request per line on stdin and answers one JSON
line on stdout, for example

    {"op": "run", "suite": "echo", "variant": "raw", "key": "text", "count": 1000}
    {"ns": 412.7}

`Worker` (in `harness.py`) is the harness's side of that conversation.
"""

from __future__ import annotations

import asyncio
import gc
import json
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from importlib.metadata import PackageNotFoundError, version
from typing import Any, TextIO

from .apps import echo

try:  # the raw baseline does its JSON work the fastest way the interpreter offers
    import orjson
except ImportError:  # pragma: no cover - both benchmark interpreters have it
    orjson = None  # type: ignore[assignment]

#: The library the raw baseline parses and writes JSON with: "orjson" or "json".
JSON_BACKEND = "json" if orjson is None else "orjson"

Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
#: Any ASGI app: loosely typed, since each framework spells the scope type its own way.
App = Callable[..., Awaitable[None]]

SCOPE: dict[str, Any] = {
    "type": "websocket",
    "asgi": {"version": "3.0", "spec_version": "2.4"},
    "scheme": "ws",
    "path": "/",
    "raw_path": b"/",
    "root_path": "",
    "query_string": b"",
    "headers": [(b"host", b"127.0.0.1")],
    "client": ("127.0.0.1", 50000),
    "server": ("127.0.0.1", 8000),
    "subprotocols": [],
}

PAYLOADS: dict[str, Message] = {
    "text": {"type": "websocket.receive", "text": "x" * 32},
    "bytes": {"type": "websocket.receive", "bytes": b"x" * 32},
    "json": {"type": "websocket.receive", "text": json.dumps({"user": "ada", "text": "x" * 8})},
}
# A typed message (`typed.py`): five fields, one of them nested; one payload for each
# library that reads it.
TYPED_PAYLOAD: Message = {
    "type": "websocket.receive",
    "text": json.dumps(
        {
            "id": 42,
            "user": "ada",
            "text": "hello there",
            "score": 0.5,
            "place": {"room": "lobby", "seat": 7},
        }
    ),
}
PAYLOADS.update(pydantic=TYPED_PAYLOAD, msgspec=TYPED_PAYLOAD)
# A JSON-RPC call (`rpc.py`): add two numbers.
PAYLOADS["rpc"] = {
    "type": "websocket.receive",
    "text": json.dumps({"jsonrpc": "2.0", "method": "add", "params": [20, 22], "id": 1}),
}

CONNECT: Message = {"type": "websocket.connect"}
DISCONNECT: Message = {"type": "websocket.disconnect", "code": 1000}


# The echo suite (in process): the cost of one message.


class FakeServer:
    """`count` messages of one kind between a connect and a disconnect; sends counted."""

    def __init__(self, kind: str, count: int) -> None:
        events = [CONNECT]
        events += [PAYLOADS[kind]] * count
        events.append(DISCONNECT)
        self._next: Callable[[], Message] = iter(events).__next__
        self.sent = 0

    async def receive(self) -> Message:
        return self._next()

    async def send(self, message: Message) -> None:
        self.sent += 1


def raw(kind: str) -> App:
    """A bare ASGI app doing the same work, with nothing in between: the baseline."""
    if kind != "json":
        return echo("bytes" if kind == "bytes" else "text")

    # Two loops, not one taking the library: the baseline pays no extra call per message.
    async def echo_json(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            reply = json.dumps(json.loads(message["text"]), separators=(",", ":"))
            await send({"type": "websocket.send", "text": reply})

    async def echo_orjson(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        loads, dumps = orjson.loads, orjson.dumps
        await receive()
        await send({"type": "websocket.accept"})
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            reply = dumps(loads(message["text"])).decode()
            await send({"type": "websocket.send", "text": reply})

    return echo_json if orjson is None else echo_orjson


def timed(start: Callable[[], Awaitable[None]]) -> int:
    """Nanoseconds `start()` takes to run to its end on a fresh event loop, after a
    garbage collection."""
    loop = asyncio.new_event_loop()
    try:
        gc.collect()
        started = time.perf_counter_ns()
        loop.run_until_complete(start())
        return time.perf_counter_ns() - started
    finally:
        loop.close()


def run_once(app: App, kind: str, count: int) -> float:
    """Nanoseconds per message for one run of `app` over `count` messages."""
    server = FakeServer(kind, count)
    elapsed = timed(lambda: app(dict(SCOPE), server.receive, server.send))
    if server.sent < count:  # every message echoed, plus the accept (and maybe a close)
        raise AssertionError(f"{app} sent {server.sent} messages for {count}")
    return elapsed / count


# The connect suite (routing): the cost of one connection through 50 routes.


def route_table(count: int = 50) -> list[tuple[str, tuple[str, ...]]]:
    """`count` WebSocket routes `(pattern, path parameters)`, static and parametrised.

    The shapes repeat every four routes so that the router meets both kinds all along
    the list, as in a real application; every framework gets the same patterns.
    """
    table: list[tuple[str, tuple[str, ...]]] = []
    for index in range(count):
        shape = index % 4
        if shape == 0:
            table.append((f"/api/v{index}/events", ()))
        elif shape == 1:
            table.append((f"/room/{index}/{{name}}", ("name",)))
        elif shape == 2:
            table.append((f"/feed/{index}", ()))
        else:
            table.append((f"/users/{index}/{{user}}/chat/{{room}}", ("user", "room")))
    return table


ROUTES = route_table()
#: The paths a connection asks for: the last route (every pattern tried before it
#: matches, the worst case) and one in the middle.
TARGETS: dict[str, str] = {"last": "/room/49/ada", "middle": "/room/25/ada"}


class Handshake:
    """A client that connects, then is gone; counts the accepts and closes it gets."""

    def __init__(self) -> None:
        self.connected = False
        self.accepted = 0
        self.closed = 0

    async def receive(self) -> Message:
        if self.connected:
            return DISCONNECT
        self.connected = True
        return CONNECT

    async def send(self, message: Message) -> None:
        if message["type"] == "websocket.accept":
            self.accepted += 1
        elif message["type"] == "websocket.close":
            self.closed += 1


async def raw_connect(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    """A bare ASGI app that accepts and closes, no routing: the baseline."""
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.close", "code": 1000})


def scope_for(path: str) -> dict[str, Any]:
    """The handshake scope of a connection to `path`."""
    return {**SCOPE, "path": path, "raw_path": path.encode()}


def run_connections(app: App, path: str, count: int) -> float:
    """Nanoseconds per connection for `count` connect-accept-close cycles to `path`."""
    scope = scope_for(path)
    client = Handshake()

    async def connect_all() -> None:
        for _ in range(count):
            client.connected = False
            # A copy each time: routers write the matched route's details into it.
            await app(dict(scope), client.receive, client.send)

    elapsed = timed(connect_all)
    if client.accepted != count or client.closed != count:  # a refusal would skip the accept
        raise AssertionError(
            f"{app}: {client.accepted} accepts, {client.closed} closes for {count} connections"
        )
    return elapsed / count


# Bocadillo 0.18.3, in its own interpreter only.


def _configured(app: Any) -> Any:
    """`configure(app)`, as Bocadillo requires before serving, for one app of several."""
    from bocadillo import configure, settings  # type: ignore[import-not-found,unused-ignore]

    # Settings are process-wide and refuse a second configure(); Bocadillo's own test
    # suite clears them the same way between apps.
    if settings.configured:
        settings._clear()
    # No static files: the default `static/` directory does not exist here, and the
    # mount it would add comes after the WebSocket routes anyway.
    return configure(app, static_dir=None)


def bocadillo_echo(kind: str) -> App:
    """Bocadillo's echo as its guide writes it: a typed route, `async for`, `send()`."""
    from bocadillo import App as BocadilloApp  # type: ignore[import-not-found,unused-ignore]

    app = BocadilloApp()

    @app.websocket_route("/", value_type=kind)  # type: ignore[untyped-decorator,unused-ignore]
    async def echo(ws: Any) -> None:
        async for message in ws:
            await ws.send(message)

    return _configured(app)  # type: ignore[no-any-return]


def bocadillo_routes() -> App:
    """A Bocadillo app with the `ROUTES`, each view doing nothing (the lifecycle
    accepts, then closes)."""
    from bocadillo import App as BocadilloApp  # type: ignore[import-not-found,unused-ignore]

    app = BocadilloApp()
    for pattern, parameters in ROUTES:
        app.websocket_route(pattern)(idle_view(parameters))
    return _configured(app)  # type: ignore[no-any-return]


def idle_view(parameters: tuple[str, ...]) -> Callable[..., Awaitable[None]]:
    """A view that does nothing, taking exactly the route's path parameters by name, as
    both bocws and Bocadillo pass them."""
    if parameters == ("name",):

        async def room(ws: Any, name: str) -> None:
            pass

        return room
    if parameters == ("user", "room"):

        async def chat(ws: Any, user: str, room: str) -> None:
            pass

        return chat

    async def feed(ws: Any) -> None:
        pass

    return feed


#: What a worker can run, by suite: echo variants take a message kind, connect
#: variants none (the target path is given with each run).
ECHO_VARIANTS: dict[str, Callable[[str], App]] = {"raw": raw, "bocadillo": bocadillo_echo}
CONNECT_VARIANTS: dict[str, Callable[[], App]] = {
    "raw": lambda: raw_connect,
    "bocadillo": bocadillo_routes,
}
SUITES: dict[str, Mapping[str, Callable[..., App]]] = {
    "echo": ECHO_VARIANTS,
    "connect": CONNECT_VARIANTS,
}


def build(factory: Callable[..., App], suite: str, key: str) -> App:
    """The app `factory` makes for runs of `suite` on `key`: an echo app is made for
    its message kind, a connect app for any target."""
    return factory(key) if suite == "echo" else factory()


def time_run(app: App, suite: str, key: str, count: int) -> float:
    """Ns per message (`echo`, `key` a kind) or per connection (`connect`, `key` a
    target) for one run of `app`."""
    if suite == "echo":
        return run_once(app, key, count)
    return run_connections(app, TARGETS[key], count)


def _app(apps: dict[tuple[str, str, str], App], suite: str, variant: str, key: str) -> App:
    """The app of a request, built once per worker and reused by every later run."""
    cache_key = (suite, variant, key if suite == "echo" else "")
    if cache_key not in apps:
        if suite not in SUITES:
            raise ValueError(f"unknown suite {suite!r}: expected 'echo' or 'connect'")
        factories = SUITES[suite]
        if variant not in factories:
            raise ValueError(
                f"no {suite} variant {variant!r} here: expected one of {list(factories)}"
            )
        apps[cache_key] = build(factories[variant], suite, key)
    return apps[cache_key]


def transcript(app: App, suite: str, key: str, count: int) -> list[Message]:
    """Every message `app` sends for one run (`count` messages or connections)."""
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    async def run() -> None:
        if suite == "echo":
            server = FakeServer(key, count)
            await app(dict(SCOPE), server.receive, send)
            return
        for _ in range(count):
            client = Handshake()
            await app(scope_for(TARGETS[key]), client.receive, send)

    asyncio.run(run())
    return sent


def _json_safe(message: Message) -> Message:
    """`message` with its bytes as `{"hex": ...}`, for the JSON line back."""
    return {
        name: {"hex": value.hex()} if isinstance(value, bytes) else value
        for name, value in message.items()
    }


def installed_version(package: str) -> str | None:
    """The installed version of `package` in this interpreter (`None`: absent)."""
    try:
        return version(package)
    except PackageNotFoundError:
        return None


def handle(request: dict[str, Any], apps: dict[tuple[str, str, str], App]) -> dict[str, Any]:
    """The answer to one request of the harness."""
    op = request["op"]
    if op == "versions":
        return {
            "python": sys.version.split()[0],
            "executable": sys.executable,
            "json_backend": JSON_BACKEND,
            "packages": {name: installed_version(name) for name in request["packages"]},
        }
    suite, key, count = request["suite"], request["key"], request["count"]
    app = _app(apps, suite, request["variant"], key)
    if op == "run":
        return {"ns": time_run(app, suite, key, count)}
    if op == "transcript":
        return {"sent": [_json_safe(message) for message in transcript(app, suite, key, count)]}
    raise ValueError(f"unknown op {op!r}: expected 'run', 'transcript' or 'versions'")


def serve(requests: TextIO, replies: TextIO) -> None:
    """Answer each JSON line of `requests` with one on `replies`, until end of input."""
    apps: dict[tuple[str, str, str], App] = {}
    for line in requests:
        try:
            reply = handle(json.loads(line), apps)
        except Exception as error:  # reported to the harness, which raises it there
            reply = {"error": f"{type(error).__name__}: {error}"}
        replies.write(json.dumps(reply) + "\n")
        replies.flush()


if __name__ == "__main__":
    protocol = sys.stdout
    # Whatever a framework prints must not corrupt the replies: it goes to stderr.
    sys.stdout = sys.stderr
    serve(sys.stdin, protocol)
