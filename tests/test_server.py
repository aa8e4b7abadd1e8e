"""The WebSocket object against a real uvicorn, over each of its WebSocket implementations.

Every test starts uvicorn on 127.0.0.1 (ephemeral port) inside the test's own event loop,
talks to it with the `websockets` asyncio client, and checks what the view saw through a
`Probe` shared in-process. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
from starlette.responses import PlainTextResponse, Response
from starlette.types import Receive, Scope, Send

from bocws import WebSocket, WebSocketDisconnect, WebSocketState

from .live_server import (
    ABNORMAL_CODES,
    IMPLEMENTATIONS,
    Probe,
    client,
    close_frame,
    closed_by_server,
    recv,
    refused,
    running_server,
)

pytestmark = pytest.mark.anyio

# The harness: the live server and its client come from tests/live_server.py.


View = Callable[[Scope, Receive, Send, Probe], Awaitable[None]]
VIEWS: dict[str, View] = {}


def route(path: str) -> Callable[[View], View]:
    def register(view: View) -> View:
        VIEWS[path] = view
        return view

    return register


class App:
    """A small ASGI dispatcher: `scope["path"]` picks the view; its outcome goes to the probe."""

    def __init__(self, probe: Probe) -> None:
        self.probe = probe

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "websocket", scope["type"]
        view = VIEWS.get(scope["path"])
        if view is None:
            await send({"type": "websocket.close", "code": 1000})
            return
        try:
            await view(scope, receive, send, self.probe)
        except BaseException as exc:
            self.probe.view_raised(exc)
            raise
        self.probe.outcomes.put_nowait(None)


@pytest.fixture(params=IMPLEMENTATIONS)
def implementation(request: pytest.FixtureRequest) -> str:
    implementation: str = request.param
    return implementation


@pytest.fixture
def probe() -> Probe:
    return Probe()


@pytest.fixture
def uvicorn_errors() -> Iterator[list[logging.LogRecord]]:
    """ERROR records of uvicorn's "uvicorn.error" logger (e.g. "Exception in ASGI application")."""
    records: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Collect(level=logging.ERROR)
    logger = logging.getLogger("uvicorn.error")
    logger.addHandler(handler)
    try:
        yield records
    finally:
        logger.removeHandler(handler)


def messages(records: list[logging.LogRecord]) -> list[str]:
    return [record.getMessage() for record in records]


# Views.


@route("/echo/text")
async def echo_text(scope: Scope, receive: Receive, send: Send, probe: Probe) -> None:
    ws = WebSocket(scope, receive, send, value_type="text")
    async with ws:
        async for message in ws:
            probe.note(message)
            await ws.send(message)
        probe.note(("after loop", ws.client_state, ws.application_state))


@route("/echo/bytes")
async def echo_bytes(scope: Scope, receive: Receive, send: Send, probe: Probe) -> None:
    ws = WebSocket(scope, receive, send, value_type="bytes")
    async with ws:
        async for message in ws:
            probe.note(message)
            await ws.send(message)
        probe.note("after loop")


@route("/echo/json")
async def echo_json(scope: Scope, receive: Receive, send: Send, probe: Probe) -> None:
    ws = WebSocket(scope, receive, send, value_type="json")
    async with ws:
        async for message in ws:
            probe.note(message)
            await ws.send({"echo": message})
        probe.note("after loop")


@route("/echo/json-binary")
async def echo_json_binary(scope: Scope, receive: Receive, send: Send, probe: Probe) -> None:
    ws = WebSocket(scope, receive, send)
    async with ws:
        data = await ws.receive_json(mode="binary")
        probe.note(data)
        await ws.send_json({"echo": data}, mode="binary")
        with contextlib.suppress(WebSocketDisconnect):
            await ws.receive_text()  # until the client closes


@route("/reject")
async def reject(scope: Scope, receive: Receive, send: Send, probe: Probe) -> None:
    ws = WebSocket(scope, receive, send)
    await ws.reject()
    probe.note(ws.application_state)


@route("/reject/response")
async def reject_with_response(scope: Scope, receive: Receive, send: Send, probe: Probe) -> None:
    ws = WebSocket(scope, receive, send)
    await ws.reject(PlainTextResponse("go away", status_code=401))
    probe.note(ws.application_state)


@route("/denial")
async def denial(scope: Scope, receive: Receive, send: Send, probe: Probe) -> None:
    ws = WebSocket(scope, receive, send)
    await ws.send_denial_response(
        Response(b"short and stout", status_code=418, headers={"x-why": "teapot"})
    )
    probe.note(ws.application_state)


@route("/subprotocol")
async def subprotocol(scope: Scope, receive: Receive, send: Send, probe: Probe) -> None:
    ws = WebSocket(scope, receive, send)
    probe.note(ws.subprotocols)
    await ws.accept(subprotocol="chat.v1")
    await ws.close()


@route("/subprotocol/unoffered")
async def subprotocol_unoffered(scope: Scope, receive: Receive, send: Send, probe: Probe) -> None:
    ws = WebSocket(scope, receive, send)
    try:
        await ws.accept(subprotocol="chat.v3")
    except ValueError as exc:
        probe.note((exc, ws.application_state))
        await ws.reject()
    else:
        probe.note(("accepted", ws.application_state))
        await ws.close()


@route("/close/4001")
async def close_with_reason(scope: Scope, receive: Receive, send: Send, probe: Probe) -> None:
    ws = WebSocket(scope, receive, send)
    await ws.accept()
    await ws.close(4001, "bye")


@route("/close/lazy")
async def close_lazily(scope: Scope, receive: Receive, send: Send, probe: Probe) -> None:
    ws = WebSocket(scope, receive, send)
    await ws.close(4002)  # the pending auto-accept happens first
    probe.note(ws.application_state)


@route("/async-with")
async def async_with_only(scope: Scope, receive: Receive, send: Send, probe: Probe) -> None:
    async with WebSocket(scope, receive, send):
        pass


@route("/accept/headers")
async def accept_headers(scope: Scope, receive: Receive, send: Send, probe: Probe) -> None:
    ws = WebSocket(scope, receive, send)
    await ws.accept(headers=[(b"x-bocws", b"yes")])
    await ws.close()


@route("/vanish/receive")
async def vanish_receive(scope: Scope, receive: Receive, send: Send, probe: Probe) -> None:
    ws = WebSocket(scope, receive, send)
    probe.note(("received", await ws.receive_text()))
    try:
        await ws.receive_text()
    except WebSocketDisconnect as exc:
        probe.note(("disconnect", exc.code, ws.client_state))
    except OSError as exc:
        probe.note(("oserror", exc, ws.client_state))
    else:
        probe.note(("message", None, ws.client_state))


@route("/vanish/send")
async def vanish_send(scope: Scope, receive: Receive, send: Send, probe: Probe) -> None:
    ws = WebSocket(scope, receive, send)
    sent = 0
    try:
        for sent in range(500):  # bounded: 500 x 10 ms at most
            await ws.send_text(f"tick {sent}")
            await asyncio.sleep(0.01)  # pacing of the feed, not synchronisation
    except WebSocketDisconnect as exc:
        probe.note(("disconnect", exc.code, ws.client_state, sent))
    except OSError as exc:
        probe.note(("oserror", exc, ws.client_state, sent))
    else:
        probe.note(("exhausted", None, ws.client_state, sent))


@route("/loop/default")
async def loop_default(scope: Scope, receive: Receive, send: Send, probe: Probe) -> None:
    ws = WebSocket(scope, receive, send)
    received = []
    try:
        async for message in ws:
            received.append(message)
            await ws.send_text(message)
    except WebSocketDisconnect as exc:
        probe.note(("raised", exc.code, exc.reason, received))
        return
    probe.note(("after loop", ws.client_state, received))


# 1. Echo.


async def test_text_echo_with_async_for(
    implementation: str, probe: Probe, uvicorn_errors: list[logging.LogRecord]
) -> None:
    sent = ["hello", "", "ünïcödé ✓", "x" * 10_000]
    async with running_server(App(probe), implementation) as base:
        async with client(base + "/echo/text") as ws:
            for message in sent:
                await ws.send(message)
                assert await recv(ws) == message
        assert [await probe.next_note() for _ in sent] == sent
        assert await probe.next_note() == (
            "after loop",
            WebSocketState.DISCONNECTED,
            WebSocketState.CONNECTED,
        )
        assert await probe.outcome() is None
    assert messages(uvicorn_errors) == []


async def test_bytes_echo(
    implementation: str, probe: Probe, uvicorn_errors: list[logging.LogRecord]
) -> None:
    sent = [b"\x00\xff\xfe", b"", bytes(range(256)) * 40]
    async with running_server(App(probe), implementation) as base:
        async with client(base + "/echo/bytes") as ws:
            for message in sent:
                await ws.send(message)
                echoed = await recv(ws)
                assert isinstance(echoed, bytes)
                assert echoed == message
        assert [await probe.next_note() for _ in sent] == sent
        assert await probe.next_note() == "after loop"
        assert await probe.outcome() is None
    assert messages(uvicorn_errors) == []


async def test_json_echo_with_value_type_json(
    implementation: str, probe: Probe, uvicorn_errors: list[logging.LogRecord]
) -> None:
    sent: list[Any] = [{"n": 1}, [1, 2.5, None, True], "é", {"nested": {"list": []}}]
    async with running_server(App(probe), implementation) as base:
        async with client(base + "/echo/json") as ws:
            for message in sent:
                await ws.send(json.dumps(message))
                echoed = await recv(ws)
                assert isinstance(echoed, str)  # a text frame
                assert json.loads(echoed) == {"echo": message}
        assert [await probe.next_note() for _ in sent] == sent
        assert await probe.next_note() == "after loop"
        assert await probe.outcome() is None
    assert messages(uvicorn_errors) == []


async def test_json_binary_mode_round_trip(
    implementation: str, probe: Probe, uvicorn_errors: list[logging.LogRecord]
) -> None:
    payload = {"name": "café", "values": [1, 2, 3]}
    async with running_server(App(probe), implementation) as base:
        async with client(base + "/echo/json-binary") as ws:
            await ws.send(json.dumps(payload, ensure_ascii=False).encode("utf-8"))
            echoed = await recv(ws)
            assert isinstance(echoed, bytes)  # a binary frame
            assert json.loads(echoed.decode("utf-8")) == {"echo": payload}
        assert await probe.next_note() == payload
        assert await probe.outcome() is None
    assert messages(uvicorn_errors) == []


# 2-3. Rejection and denial responses.


async def test_reject_answers_http_403(implementation: str, probe: Probe) -> None:
    async with running_server(App(probe), implementation) as base:
        error = await refused(base + "/reject")
        assert error.response.status_code == 403
        assert await probe.next_note() is WebSocketState.DISCONNECTED
        assert await probe.outcome() is None


async def test_reject_with_response_sends_its_status_and_body(
    implementation: str, probe: Probe
) -> None:
    async with running_server(App(probe), implementation) as base:
        error = await refused(base + "/reject/response")
        assert error.response.status_code == 401
        assert error.response.body == b"go away"
        assert await probe.next_note() is WebSocketState.DISCONNECTED
        assert await probe.outcome() is None


async def test_send_denial_response_sends_status_headers_and_body(
    implementation: str, probe: Probe
) -> None:
    async with running_server(App(probe), implementation) as base:
        error = await refused(base + "/denial")
        assert error.response.status_code == 418
        assert error.response.headers["x-why"] == "teapot"
        assert error.response.body == b"short and stout"
        assert await probe.next_note() is WebSocketState.DISCONNECTED
        assert await probe.outcome() is None


# 4. Subprotocols.


async def test_accepted_subprotocol_reaches_the_client(implementation: str, probe: Probe) -> None:
    async with running_server(App(probe), implementation) as base:
        async with client(base + "/subprotocol", subprotocols=["chat.v2", "chat.v1"]) as ws:
            assert ws.subprotocol == "chat.v1"
            code, _ = await close_frame(ws)
            assert code == 1000
        assert await probe.next_note() == ["chat.v2", "chat.v1"]
        assert await probe.outcome() is None


async def test_unoffered_subprotocol_raises_value_error(implementation: str, probe: Probe) -> None:
    async with running_server(App(probe), implementation) as base:
        error = await refused(base + "/subprotocol/unoffered", subprotocols=["chat.v1"])
        assert error.response.status_code == 403
        exc, state = await probe.next_note()
        assert isinstance(exc, ValueError)
        assert "chat.v3" in str(exc)
        assert state is WebSocketState.CONNECTING  # nothing was sent
        assert await probe.outcome() is None


# 5. Closing.


async def test_close_code_and_reason_reach_the_client(implementation: str, probe: Probe) -> None:
    async with running_server(App(probe), implementation) as base:
        async with client(base + "/close/4001") as ws:
            assert await close_frame(ws) == (4001, "bye")
        assert await probe.outcome() is None


async def test_lazy_auto_accept_then_close_sends_a_close_frame(
    implementation: str, probe: Probe
) -> None:
    async with running_server(App(probe), implementation) as base:
        async with client(base + "/close/lazy") as ws:  # accepted: not an HTTP 403
            code, _ = await close_frame(ws)
        assert code == 4002
        assert await probe.next_note() is WebSocketState.DISCONNECTED
        assert await probe.outcome() is None


async def test_async_with_and_return_closes_with_1000(implementation: str, probe: Probe) -> None:
    async with running_server(App(probe), implementation) as base:
        async with client(base + "/async-with") as ws:
            code, _ = await close_frame(ws)
        assert code == 1000
        assert await probe.outcome() is None


# 6. Accept headers.


async def test_accept_headers_reach_the_client(implementation: str, probe: Probe) -> None:
    async with running_server(App(probe), implementation) as base:
        async with client(base + "/accept/headers") as ws:
            assert ws.response is not None
            assert ws.response.headers["x-bocws"] == "yes"
            await closed_by_server(ws)
        assert await probe.outcome() is None


# 7. A client that vanishes without a close frame.


async def test_client_vanishing_while_view_receives_raises_disconnect(
    implementation: str, probe: Probe, uvicorn_errors: list[logging.LogRecord]
) -> None:
    async with running_server(App(probe), implementation) as base:
        async with client(base + "/vanish/receive") as ws:
            await ws.send("hello")
            assert await probe.next_note() == ("received", "hello")
            ws.transport.abort()  # drop the TCP connection: no close frame
            kind, code, client_state = await probe.next_note()
        assert kind == "disconnect"
        assert code in ABNORMAL_CODES
        assert client_state is WebSocketState.DISCONNECTED
        assert await probe.outcome() is None
    assert messages(uvicorn_errors) == []


async def test_client_vanishing_while_view_sends_raises_disconnect(
    implementation: str, probe: Probe, uvicorn_errors: list[logging.LogRecord]
) -> None:
    async with running_server(App(probe), implementation) as base:
        async with client(base + "/vanish/send") as ws:
            assert await recv(ws) == "tick 0"
            ws.transport.abort()  # drop the TCP connection: no close frame
            kind, code, client_state, sent = await probe.next_note(timeout=8)
        assert kind == "disconnect"
        assert code in ABNORMAL_CODES
        assert client_state is WebSocketState.DISCONNECTED
        assert sent < 499  # stopped by the disconnect, not by the bound
        assert await probe.outcome() is None
    assert messages(uvicorn_errors) == []


# 8. The client closes.


@pytest.mark.parametrize(
    ("code", "reason", "caught"),
    [
        (1000, "", True),
        (1001, "going", True),
        (4000, "client bye", False),
        (3000, "", False),
        (1011, "client failed", False),
    ],
)
async def test_a_client_close_ends_async_for_or_raises_from_it_by_its_code(
    implementation: str,
    probe: Probe,
    uvicorn_errors: list[logging.LogRecord],
    code: int,
    reason: str,
    caught: bool,
) -> None:
    """The default caught codes (1000, 1001) end `async for`; any other is raised from it,
    with the client's code and reason, whichever uvicorn implementation carries it."""
    async with running_server(App(probe), implementation) as base:
        async with client(base + "/loop/default") as ws:
            for message in ["one", "two"]:
                await ws.send(message)
                assert await recv(ws) == message
            await ws.close(code, reason)
        if caught:
            expected: tuple[Any, ...] = ("after loop", WebSocketState.DISCONNECTED, ["one", "two"])
        else:
            expected = ("raised", code, reason, ["one", "two"])
        assert await probe.next_note() == expected
        assert await probe.outcome() is None
    assert messages(uvicorn_errors) == []
