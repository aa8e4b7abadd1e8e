"""The behaviour suite under every ASGI server people deploy on, each a real process.

Each configuration of `tests.servers.SERVERS` (uvicorn's three WebSocket
implementations, hypercorn's asyncio and trio workers, granian, daphne) serves
tests/server_matrix_app.py once for this module; the `websockets` client talks to it,
and the app's views report what they saw over HTTP (`GET /report/{key}`).

Servers differ, and `CAPABILITIES` says how, as measured. Where a server cannot do
something, a test asserts what the user gets there instead, including where bocws
adapts to it (an ASGI 2.0 server's close codes and empty messages, a server's own
error from a send while the client closes). docs/servers.md is the table of the same
facts.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import anyio
import httpx
import pytest
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidMessage

from tests.live_server import TIMEOUT, client, close_frame, closed_by_server, recv, refused
from tests.servers import MAX_MESSAGE_SIZE, SERVERS, Running, serving

pytestmark = pytest.mark.anyio

# Served, never imported here: it sets up logging for the server's process.
APP = "tests.server_matrix_app:app"
REPORT_TIMEOUT = 15.0
"""Seconds to wait for a report: the app waits up to 8 s for the view to end."""


def every_code(code: int) -> bool:
    return True


def autobahn_codes(code: int) -> bool:
    """The close codes daphne's WebSocket layer (autobahn) sends: others raise."""
    return code == 1000 or 3000 <= code <= 4999


@dataclass(frozen=True)
class Capabilities:
    """What a server does where servers differ, as measured by the tests below."""

    spec_version: str | None
    """`scope["asgi"]["spec_version"]`; `None` where the scope has none (ASGI 2.0)."""
    extensions: frozenset[str]
    """The keys of `scope["extensions"]`."""
    reset_code: int
    """The code a view waiting in `receive()` gets when the client resets the connection."""
    error_line: str
    """What the server logs, with a traceback, when the application raises."""
    client_close_codes: bool = True
    """The view gets the client's close code; without, every close comes as 1006."""
    client_close_reasons: bool = True
    """The view gets the client's close reason."""
    accept_headers: bool = True
    """The headers given to `accept()` reach the client."""
    close_reasons: bool = True
    """The reason of the application's close reaches the client."""
    sends_close_code: Callable[[int], bool] = every_code
    """Whether the server sends a close with that code (daphne raises for the others)."""
    empty_messages: bool = True
    """An empty text or binary message reaches the client."""
    send_raises_after_reset: bool = False
    """A view's `send()` raises `WebSocketDisconnect` once the client reset the connection."""
    send_raises_while_closing: bool = False
    """A `send()` during the client's closing handshake raises the server's own error."""
    log_delay: float = 0.0
    """Seconds within which the server logs an application's exception."""
    dies_when_closes_cross: bool = False
    """The server exits when the application's close crosses the client's."""
    app: str = APP
    """The app served: wrapped in the server's own proxy-headers middleware where the
    server has no flag for them."""
    forwarded_scheme: str | None = "wss"
    """`scope["scheme"]` behind a proxy that says `X-Forwarded-Proto: https`."""
    message_limit: bool = True
    """The server refuses a message over its limit (1 MiB, set by its command line)."""
    message_limit_close: int | None = 1009
    """The close code it then sends; `None`: it drops the connection without one."""


UVICORN = Capabilities(
    spec_version="2.4",
    extensions=frozenset({"websocket.http.response"}),
    reset_code=1005,
    error_line="Exception in ASGI application",
    send_raises_after_reset=True,
)
HYPERCORN = Capabilities(
    spec_version="2.3",
    extensions=frozenset({"websocket.http.response"}),
    reset_code=1006,
    error_line="Error in ASGI Framework",
    client_close_codes=False,  # hypercorn's issue 127
    client_close_reasons=False,
    app="tests.server_matrix_app:behind_proxy_hypercorn",
    forwarded_scheme="https",
)
CAPABILITIES: dict[str, Capabilities] = {
    "uvicorn-websockets-sansio": UVICORN,
    "uvicorn-wsproto": UVICORN,
    "uvicorn-websockets": replace(UVICORN, reset_code=1006),
    "hypercorn-asyncio": HYPERCORN,
    # Its trio worker sends the end of the TCP stream outside its send lock.
    "hypercorn-trio": replace(HYPERCORN, dies_when_closes_cross=True),
    "granian": Capabilities(
        spec_version="2.3",
        extensions=frozenset({"websocket.http.response", "http.response.pathsend"}),
        reset_code=1005,
        error_line="Application callable raised an exception",
        client_close_reasons=False,
        accept_headers=False,
        app="tests.server_matrix_app:behind_proxy_granian",
        message_limit=False,
    ),
    "daphne": Capabilities(
        spec_version=None,
        extensions=frozenset(),
        reset_code=1006,
        error_line="Exception inside application",
        client_close_reasons=False,
        accept_headers=False,
        close_reasons=False,
        sends_close_code=autobahn_codes,
        empty_messages=False,
        send_raises_while_closing=True,
        log_delay=1.1,  # daphne looks for finished applications once a second
        forwarded_scheme=None,
        message_limit_close=None,
    ),
}


@dataclass
class Server:
    """A running server and what it can do."""

    running: Running
    can: Capabilities

    @property
    def ws(self) -> str:
        return self.running.ws

    def mark(self) -> int:
        """Where the server's log stands now, for `log_since()`."""
        return len(self.running.lines)


@pytest.fixture(scope="module", params=list(SERVERS))
def server(request: pytest.FixtureRequest) -> Iterator[Server]:
    name: str = request.param
    with serving(name, CAPABILITIES[name].app) as running:
        yield Server(running, CAPABILITIES[name])
        exited = running.process.poll()
        assert exited is None, f"{name} exited ({exited}) while serving:\n{running.log()}"


@pytest.fixture(autouse=True)
def show_the_log(server: Server) -> Iterator[None]:
    """Print the server's log of the test, which pytest shows when the test fails."""
    start = server.mark()
    yield
    print(f"{server.running.name}'s log during the test:\n{server.running.log(start)}")  # noqa: T201


def new_key() -> str:
    return uuid.uuid4().hex


@contextlib.asynccontextmanager
async def http_client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=REPORT_TIMEOUT, trust_env=False) as http:
        yield http


async def report(server: Server, key: str) -> dict[str, Any]:
    """What the view of the connection `key` saw, once it has ended."""
    async with http_client() as http:
        response = await http.get(f"{server.running.http}/report/{key}")
    assert response.status_code == 200, (
        f"the view did not end in time; the server's log:\n{server.running.log()}"
    )
    found: dict[str, Any] = response.json()
    return found


async def log_since(server: Server, start: int) -> list[str]:
    """The server's log from line `start` on, once all it logged until now is read."""
    # daphne logs an application's exception up to a second after it ended.
    await anyio.sleep(server.can.log_delay)
    token = new_key()
    async with http_client() as http:
        (await http.get(f"{server.running.http}/mark/{token}")).raise_for_status()
    end = await anyio.to_thread.run_sync(server.running.wait_for, f"mark {token}", start)
    return server.running.lines[start:end]


def errors(lines: list[str]) -> list[str]:
    return [line for line in lines if "ERROR" in line or "Traceback" in line]


def client_close_seen(server: Server, code: int, reason: str) -> dict[str, Any]:
    """The code and reason a view gets when its client closes with `code` and `reason`."""
    if not server.can.client_close_codes:
        return {"code": 1006, "reason": ""}
    return {"code": code, "reason": reason if server.can.client_close_reasons else ""}


def loop_ending(server: Server, code: int, reason: str = "") -> dict[str, Any]:
    """How a view's `async for` (default `caught_close_codes`) ends for the client's close:
    it returns for 1000 and 1001, and raises the departure out of the view otherwise."""
    seen = client_close_seen(server, code, reason)
    if seen["code"] in (1000, 1001):
        return {"returned": True}
    return {"raised": "WebSocketDisconnect", **seen}


# What the server tells the application.


async def test_the_scope_gives_the_spec_version_and_extensions(server: Server) -> None:
    async with client(server.ws + "/scope") as ws:
        scope = json.loads(await recv(ws))
        assert await close_frame(ws) == (1000, "")  # the view returned
    assert scope["asgi"].get("spec_version") == server.can.spec_version, scope
    assert set(scope["extensions"] or {}) == server.can.extensions, scope


async def test_proxy_headers_give_the_clients_address_and_scheme(server: Server) -> None:
    forwarded = {"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"}
    async with client(server.ws + "/scope", additional_headers=forwarded) as ws:
        scope = json.loads(await recv(ws))
        assert await close_frame(ws) == (1000, "")
    assert scope["client"][0] == "203.0.113.7"
    assert scope["scheme"] == server.can.forwarded_scheme


# Echoes, one per message type.


async def test_a_text_echo_ends_quietly_on_a_normal_close(server: Server) -> None:
    key, start = new_key(), server.mark()
    async with client(f"{server.ws}/echo/text?key={key}") as ws:
        for message in ["hello", "héllo ✓", "x" * 70_000]:
            await ws.send(message)
            assert await recv(ws) == message
    assert (await report(server, key))["outcome"] == loop_ending(server, 1000)
    assert errors(await log_since(server, start)) == []


async def test_a_bytes_echo(server: Server) -> None:
    async with client(server.ws + "/echo/bytes") as ws:
        for message in [b"\x00\xff", b"x" * 70_000]:
            await ws.send(message)
            assert await recv(ws) == message


async def test_a_json_echo(server: Server) -> None:
    async with client(server.ws + "/echo/json") as ws:
        await ws.send(json.dumps({"a": [1, 2.5, None, "é"]}))
        assert json.loads(await recv(ws)) == {"echo": {"a": [1, 2.5, None, "é"]}}


async def test_a_json_echo_in_binary_frames(server: Server) -> None:
    async with client(server.ws + "/echo/json-binary") as ws:
        await ws.send(json.dumps([1, "é"]).encode())
        echo = await recv(ws)
        assert isinstance(echo, bytes)
        assert json.loads(echo) == {"echo": [1, "é"]}


async def test_an_event_echo_gets_the_disconnect_event(server: Server) -> None:
    key = new_key()
    async with client(f"{server.ws}/echo/event?key={key}") as ws:
        for message in ["text", b"bytes"]:
            await ws.send(message)
            assert await recv(ws) == message
        await ws.close(4000, "bye")
    assert (await report(server, key))["notes"] == [client_close_seen(server, 4000, "bye")]


async def test_empty_messages_reach_the_client_or_are_refused(server: Server) -> None:
    """Where the server would drop them unsaid (ASGI 2.0), bocws refuses them."""
    key = new_key()
    received: list[str | bytes] = []
    async with client(f"{server.ws}/empty?key={key}") as ws:
        while (message := await recv(ws)) != "end":
            received.append(message)
    notes = (await report(server, key))["notes"]
    if server.can.empty_messages:
        assert received == ["", b""]
        assert notes == []
    else:
        assert received == []
        assert notes == [{"refused": repr(empty), "error": "ValueError"} for empty in ["", b""]]


# The handshake.


async def test_reject_answers_403(server: Server) -> None:
    assert (await refused(server.ws + "/reject")).response.status_code == 403


async def test_a_path_without_a_route_answers_403(server: Server) -> None:
    assert (await refused(server.ws + "/nowhere")).response.status_code == 403


async def test_a_denial_response_or_a_403_where_the_server_has_none(server: Server) -> None:
    start = server.mark()
    response = (await refused(server.ws + "/denial")).response
    if "websocket.http.response" in server.can.extensions:
        assert response.status_code == 418
        assert response.headers["x-why"] == "teapot"
        assert response.body == b"short and stout"
        return
    assert response.status_code == 403
    log = await log_since(server, start)
    assert any("does not support WebSocket denial responses" in line for line in log), log


async def test_the_accepted_subprotocol_reaches_the_client(server: Server) -> None:
    async with client(server.ws + "/subprotocol", subprotocols=["chat.v1", "chat.v2"]) as ws:
        assert ws.subprotocol == "chat.v1"
        assert json.loads(await recv(ws)) == ["chat.v1", "chat.v2"]
        assert await close_frame(ws) == (1000, "")


async def test_accept_headers_reach_the_client_where_the_server_sends_them(
    server: Server,
) -> None:
    async with client(server.ws + "/accept/headers") as ws:
        assert await recv(ws) == "accepted"
        assert await close_frame(ws) == (1000, "")
        assert ws.response is not None
        greeting = ws.response.headers.get("x-greeting")
    assert greeting == ("hello" if server.can.accept_headers else None)


async def test_allowed_origins_refuse_a_foreign_origin(server: Server) -> None:
    refusal = await refused(server.ws + "/origin", origin="https://evil.example")
    assert refusal.response.status_code == 403
    for origin in ["https://good.example", None]:
        async with client(server.ws + "/origin", origin=origin) as ws:
            assert await recv(ws) == "welcome"
            assert await close_frame(ws) == (1000, "")


async def test_the_servers_own_message_limit(server: Server) -> None:
    """A route without a limit of its own: 1 MiB passes, a byte more meets the server's."""
    start = server.mark()
    async with client(server.ws + "/unlimited", max_size=None) as ws:
        await ws.send(b"x" * MAX_MESSAGE_SIZE)
        assert await recv(ws) == str(MAX_MESSAGE_SIZE)
        await ws.send(b"x" * (MAX_MESSAGE_SIZE + 1))
        if not server.can.message_limit:
            assert await recv(ws) == str(MAX_MESSAGE_SIZE + 1)
            return
        closed = await closed_by_server(ws)
    code = closed.rcvd.code if closed.rcvd is not None else None
    assert code == server.can.message_limit_close
    assert errors(await log_since(server, start)) == []


# Closes the application chooses, or bocws chooses for it.

CLOSES = {
    # case: (path, what the client sends first, the close code and reason bocws sends)
    "app-1000": ("/close/app?code=1000&reason=done", None, 1000, "done"),
    "app-1001": ("/close/app?code=1001&reason=going+away", None, 1001, "going away"),
    "app-1008": ("/close/app?code=1008&reason=policy", None, 1008, "policy"),
    "app-3000": ("/close/app?code=3000", None, 3000, ""),
    "app-4001": ("/close/app?code=4001&reason=bye", None, 4001, "bye"),
    "binary-on-text-1003": ("/echo/text", b"\x00", 1003, "unsupported frame type"),
    "invalid-json-1007": ("/echo/json", "{nope", 1007, "invalid JSON"),
    "too-big-1009": ("/small", "x" * 2000, 1009, "message too big"),
    "view-error-1011": ("/error", "go", 1011, "internal error"),
    "idle-timeout": ("/idle", None, 1000, "idle timeout"),
}


@pytest.mark.parametrize("case", list(CLOSES))
async def test_the_client_gets_the_close_bocws_chose(server: Server, case: str) -> None:
    path, message, code, reason = CLOSES[case]
    sendable = server.can.sends_close_code(code)
    start = server.mark()
    async with client(server.ws + path) as ws:
        if message is not None:
            await ws.send(message)
        got = await close_frame(ws)
    log = await log_since(server, start)
    if sendable:
        assert got == (code, reason if server.can.close_reasons else "")
    else:  # ASGI 2.0: its private-use twin (1001: 1000), and why in bocws's log
        instead = 1000 if code == 1001 else 4000 + code % 1000
        assert got == (instead, ""), f"the client got {got}"
        assert any(f"closing with {instead}" in line and str(code) in line for line in log), log
    if code == 1011:  # the view's error, logged by the server with its traceback
        assert any(server.can.error_line in line for line in log), log
    else:
        assert errors(log) == []


# Closes and resets by the client.


@pytest.mark.parametrize(
    ("code", "reason"), [(1000, "bye"), (1001, "going away"), (4000, "custom"), (3000, "")]
)
async def test_a_client_close_reaches_the_view(server: Server, code: int, reason: str) -> None:
    key, start = new_key(), server.mark()
    async with client(f"{server.ws}/close/client?key={key}") as ws:
        await ws.send("hello")
        assert await recv(ws) == "hello"
        await ws.close(code, reason)
    assert (await report(server, key))["notes"] == [client_close_seen(server, code, reason)]
    assert errors(await log_since(server, start)) == []


async def test_the_usual_loop_ends_by_the_clients_code(server: Server) -> None:
    key, start = new_key(), server.mark()
    async with client(f"{server.ws}/loop?key={key}") as ws:
        await ws.send("one")
        assert await recv(ws) == "one"
        await ws.close(4000, "custom")
    ended = await report(server, key)
    assert ended == {"outcome": loop_ending(server, 4000, "custom"), "notes": ["one"]}
    assert errors(await log_since(server, start)) == []


@pytest.mark.parametrize("path", ["/async-with", "/async-with/1006"])
async def test_a_normal_close_under_async_with_logs_no_error(server: Server, path: str) -> None:
    """Outside a view too, with the default `caught_close_codes` and with 1006 added."""
    key, start = new_key(), server.mark()
    async with client(f"{server.ws}{path}?key={key}") as ws:
        await ws.send("hello")
        assert await recv(ws) == "hello"
    await report(server, key)
    log = await log_since(server, start)
    if not server.can.client_close_codes and path == "/async-with":
        # Every close comes as 1006, which the default caught_close_codes let out of
        # `async with` (views end quietly): docs/servers.md says to catch 1006 there.
        assert any(server.can.error_line in line for line in log), log
    else:
        assert errors(log) == []


async def test_a_reset_wakes_a_receiving_view(server: Server) -> None:
    key, start = new_key(), server.mark()
    async with client(f"{server.ws}/close/client?key={key}") as ws:
        await ws.send("hello")
        assert await recv(ws) == "hello"
        ws.transport.abort()  # drop the TCP connection: no close frame
    assert (await report(server, key))["notes"] == [{"code": server.can.reset_code, "reason": ""}]
    assert errors(await log_since(server, start)) == []


async def test_a_reset_reaches_a_sending_view_only_where_send_raises(server: Server) -> None:
    key, start = new_key(), server.mark()
    async with client(f"{server.ws}/feed?key={key}") as ws:
        assert await recv(ws) == "tick 0"
        ws.transport.abort()
    [seen] = (await report(server, key))["notes"]
    if server.can.send_raises_after_reset:
        assert seen["code"] == server.can.reset_code
        assert seen["sent"] < 10, seen
    else:  # the view sent for two seconds and never learnt that its client had gone
        assert seen["seconds"] == 2.0
        assert "code" not in seen
    assert errors(await log_since(server, start)) == []


async def test_a_feed_beside_wait_closed_learns_of_a_reset_on_every_server(
    server: Server,
) -> None:
    key, start = new_key(), server.mark()
    async with client(f"{server.ws}/feed/watched?key={key}") as ws:
        assert await recv(ws) == "tick 0"
        ws.transport.abort()
    [seen] = (await report(server, key))["notes"]
    assert seen["code"] == server.can.reset_code, seen
    assert seen["sent"] < 10, seen  # well before FEED_FOR: at once
    assert errors(await log_since(server, start)) == []


async def test_a_send_during_the_clients_close_is_a_departure(server: Server) -> None:
    """Twenty clients send a message and close at once: the views' echoes go out during
    the closing handshake, and none of them is an application error."""
    keys, start = [new_key() for _ in range(20)], server.mark()

    async def leave(key: str) -> None:
        async with client(f"{server.ws}/loop?key={key}") as ws:
            await ws.send("bye")  # and close without waiting for the echo

    async with anyio.create_task_group() as clients:
        for key in keys:
            clients.start_soon(leave, key)
    outcomes = [(await report(server, key))["outcome"] for key in keys]
    log = await log_since(server, start)
    for outcome in outcomes:
        assert outcome.get("raised", "WebSocketDisconnect") == "WebSocketDisconnect", outcome
    assert errors(log) == []


# Many at once.


async def test_200_concurrent_connections(server: Server) -> None:
    start = server.mark()
    async with contextlib.AsyncExitStack() as stack:
        connections: list[ClientConnection] = [None] * 200  # type: ignore[list-item]

        async def open_one(index: int) -> None:
            connections[index] = await stack.enter_async_context(client(server.ws + "/echo/text"))

        async with anyio.create_task_group() as opening:
            for index in range(200):
                opening.start_soon(open_one, index)

        async def echo(index: int) -> None:
            await connections[index].send(f"n{index}")
            assert await recv(connections[index]) == f"n{index}"

        async with anyio.create_task_group() as echoing:
            for index in range(200):
                echoing.start_soon(echo, index)
    assert errors(await log_since(server, start)) == []


async def test_closes_crossing_each_other_leave_the_server_serving(server: Server) -> None:
    """400 views close as their clients close (20 at a time), in a server of the test's own.

    hypercorn's trio worker dies of it (`trio.BusyResourceError`), and the server with it.
    """
    with serving(server.running.name, server.can.app) as own:

        async def cross() -> None:
            with contextlib.suppress(OSError, ConnectionClosed, InvalidMessage, TimeoutError):
                async with client(own.ws + "/origin") as ws:
                    await recv(ws)  # then close, as the view closes after its "welcome"

        for _ in range(20):
            async with anyio.create_task_group() as clients:
                for _ in range(20):
                    clients.start_soon(cross)
            if own.process.poll() is not None:
                break
        if server.can.dies_when_closes_cross:  # (with exit status 0)
            await anyio.to_thread.run_sync(own.process.wait, TIMEOUT)
            own.wait_for("trio.BusyResourceError")
            return
        async with client(own.ws + "/echo/text") as ws:
            await ws.send("still here")
            assert await recv(ws) == "still here"
        assert errors(own.lines) == [], own.log()
