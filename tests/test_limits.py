"""Limits and timeouts: `max_message_size`, `receive(timeout=...)` and `idle_timeout`, on
`WebSocket`, views and `App`; over the fake server, TestClient and a real uvicorn."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Any

import anyio
import pytest
from starlette.routing import WebSocketRoute
from starlette.testclient import TestClient

from bocws import (
    App,
    MessageTooBig,
    WebSocket,
    WebSocketDisconnect,
    WebSocketView,
    websocket_view,
)

from .fake import FakeServer, LiveServer, binary, connected, disconnect, text
from .live_server import IMPLEMENTATIONS, client, close_frame, recv, running_server

pytestmark = pytest.mark.anyio


def bocws_messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == "bocws"]


# max_message_size on WebSocket.


async def test_a_message_at_the_limit_is_received() -> None:
    server = connected(text("é" * 5), binary(b"x" * 10))  # 10 bytes each in UTF-8
    ws = server.websocket(max_message_size=10)
    assert await ws.receive_text() == "é" * 5
    assert await ws.receive_bytes() == b"x" * 10
    assert server.types() == ["websocket.accept"]


@pytest.mark.parametrize(
    ("message", "size"),
    [(text("é" * 6), 12), (text("x" * 11), 11), (binary(b"x" * 11), 11), (text("😀" * 3), 12)],
)
async def test_a_message_over_the_limit_closes_1009(message: dict[str, Any], size: int) -> None:
    server = connected(message, disconnect(1009))
    ws = server.websocket(max_message_size=10, receive_type="event")
    with pytest.raises(MessageTooBig) as info:
        await ws.receive()
    assert (info.value.code, info.value.reason) == (1009, "message too big")
    assert (info.value.size, info.value.limit) == (size, 10)
    assert str(info.value) == f"a message of {size} bytes is over max_message_size (10)"
    assert server.sent[-1] == {"type": "websocket.close", "code": 1009, "reason": "message too big"}
    # The client's answer to the close still arrives, as for any close of the application.
    assert (await ws.receive_event())["code"] == 1009


async def test_message_too_big_is_a_websocket_disconnect_that_ends_loops_quietly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="bocws")
    server = connected(text("ok"), text("x" * 100), disconnect(1009))
    ws = server.websocket(max_message_size=10)
    received = []
    async with ws:
        async for message in ws:
            received.append(message)
    assert received == ["ok"]
    assert server.types() == ["websocket.accept", "websocket.close"]
    assert bocws_messages(caplog) == [
        "'/ws': closed with 1009 (MESSAGE_TOO_BIG) 'message too big': "
        "a message of 100 bytes is over max_message_size (10)"
    ]


async def test_json_is_measured_before_it_is_parsed() -> None:
    server = connected(text("[" * 50 + "]" * 50))
    ws = server.websocket(max_message_size=64, value_type="json")
    with pytest.raises(MessageTooBig):
        await ws.receive()


async def test_without_a_limit_any_size_is_received() -> None:
    ws = connected(text("x" * 1_000_000)).websocket()
    assert ws.max_message_size is None
    assert len(await ws.receive_text()) == 1_000_000


@pytest.mark.parametrize(
    ("value", "error"),
    [(0, ValueError), (-1, ValueError), (True, TypeError), (1.5, TypeError), ("10", TypeError)],
)
def test_an_invalid_max_message_size_is_refused_everywhere(value: Any, error: type) -> None:
    with pytest.raises(error, match="max_message_size"):
        FakeServer().websocket(max_message_size=value)
    with pytest.raises(error, match="max_message_size"):
        websocket_view(max_message_size=value)
    with pytest.raises(error, match="max_message_size"):
        App(max_message_size=value)


# max_message_size on views and App.


def test_a_view_closes_1009_quietly_and_its_class_view_hears_it() -> None:
    seen: list[Any] = []

    class Echo(WebSocketView):
        max_message_size = 4

        async def on_message(self, ws: WebSocket, message: Any) -> None:
            await ws.send(message)

        async def on_disconnect(self, ws: WebSocket, code: int) -> None:
            seen.append(code)

    app = App()
    app.add_websocket_route("/ws", Echo)
    with TestClient(app).websocket_connect("/ws") as session:
        session.send_text("1234")
        assert session.receive_text() == "1234"
        session.send_text("12345")
        assert session.receive() == {
            "type": "websocket.close",
            "code": 1009,
            "reason": "message too big",
        }
    assert seen == [1009]


def test_app_max_message_size_is_the_default_of_its_routes() -> None:
    async def echo(ws: WebSocket) -> None:
        async for message in ws:
            await ws.send(message)

    class Own(WebSocketView):
        max_message_size = 8

        async def on_message(self, ws: WebSocket, message: Any) -> None:
            await ws.send(message)

    app = App(max_message_size=4)
    app.add_websocket_route("/default", echo)
    app.add_websocket_route("/route", echo, max_message_size=6)
    app.add_websocket_route("/view", websocket_view(max_message_size=7)(echo))
    app.add_websocket_route("/class", Own)
    app.add_websocket_route("/none", echo, max_message_size=None)
    for path, limit in [("/default", 4), ("/route", 6), ("/view", 7), ("/class", 8)]:
        with TestClient(app).websocket_connect(path) as session:
            session.send_text("x" * limit)
            assert session.receive_text() == "x" * limit
            session.send_text("x" * (limit + 1))
            assert session.receive()["code"] == 1009, path
    with TestClient(app).websocket_connect("/none") as session:
        session.send_text("x" * 1000)
        assert session.receive_text() == "x" * 1000


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
async def test_max_message_size_closes_1009_over_uvicorn(implementation: str) -> None:
    app = App()

    @app.websocket_route("/ws", max_message_size=1024, value_type="bytes")
    async def echo(ws: WebSocket) -> None:
        async for message in ws:
            await ws.send(message)

    async with running_server(app, implementation) as base:  # type: ignore[arg-type]
        async with client(base + "/ws") as connection:
            await connection.send(b"x" * 1024)
            assert await recv(connection) == b"x" * 1024
            await connection.send(b"x" * 1025)
            assert await close_frame(connection) == (1009, "message too big")
        # The server goes on serving.
        async with client(base + "/ws") as connection:
            await connection.send(b"again")
            assert await recv(connection) == b"again"


# receive(timeout=...).


@pytest.mark.parametrize(
    ("call", "message", "expected"),
    [
        (lambda ws, t: ws.receive_text(timeout=t), text("a"), "a"),
        (lambda ws, t: ws.receive_bytes(timeout=t), binary(b"a"), b"a"),
        (lambda ws, t: ws.receive_json(timeout=t), text("[1]"), [1]),
        (lambda ws, t: ws.receive_json("binary", timeout=t), binary(b"[1]"), [1]),
        (lambda ws, t: ws.receive(timeout=t), text("a"), "a"),
    ],
)
async def test_a_receive_timeout_raises_and_leaves_the_connection_usable(
    call: Callable[[WebSocket, float], Any], message: dict[str, Any], expected: Any
) -> None:
    server = LiveServer()
    ws = server.websocket()
    await ws.accept()
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        await call(ws, 0.05)
    assert time.monotonic() - started >= 0.05
    assert ws.client_state.name == "CONNECTED"
    await server.deliver(message)
    assert await call(ws, 5) == expected
    await ws.send_text("still open")
    assert server.sent[-1] == {"type": "websocket.send", "text": "still open"}


async def test_receive_event_takes_a_timeout_too() -> None:
    server = LiveServer()
    ws = server.websocket(auto_accept=False)
    await ws.accept()
    with pytest.raises(TimeoutError):
        await ws.receive_event(timeout=0.01)
    await server.deliver(disconnect(1001))
    assert await ws.receive_event(timeout=1) == disconnect(1001)


async def test_a_message_already_there_is_received_even_with_a_zero_timeout() -> None:
    ws = connected(text("here")).websocket()
    assert await ws.receive_text(timeout=0) == "here"


async def test_a_disconnect_within_the_timeout_raises_websocket_disconnect() -> None:
    ws = connected(disconnect(1001)).websocket()
    with pytest.raises(WebSocketDisconnect) as info:
        await ws.receive_text(timeout=1)
    assert info.value.code == 1001


@pytest.mark.parametrize(
    ("seconds", "error"),
    [(-1, ValueError), (math.nan, ValueError), (math.inf, ValueError), ("1", TypeError)],
)
async def test_an_invalid_timeout_is_refused_before_waiting(seconds: Any, error: type) -> None:
    server = connected(text("kept"))
    ws = server.websocket()
    with pytest.raises(error, match="timeout"):
        await ws.receive_text(timeout=seconds)
    assert await ws.receive_text() == "kept"  # nothing was consumed


# idle_timeout.


def close_of(session: Any) -> tuple[int, str]:
    message = session.receive()
    assert message["type"] == "websocket.close", message
    return message["code"], message.get("reason") or ""


def test_an_idle_connection_is_closed_1000_and_its_view_cancelled(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="bocws")
    ended = []

    async def waits_forever(ws: WebSocket) -> None:
        await ws.accept()
        try:
            await anyio.sleep_forever()
        finally:
            ended.append("cancelled")

    app = App()
    app.add_websocket_route("/ws", waits_forever, idle_timeout=0.1)
    started = time.monotonic()
    with TestClient(app).websocket_connect("/ws") as session:
        assert close_of(session) == (1000, "idle timeout")
    assert time.monotonic() - started >= 0.1
    assert ended == ["cancelled"]
    assert bocws_messages(caplog) == [
        "'/ws': closing the connection, idle for 0.1 s (idle_timeout)"
    ]


def test_messages_in_either_direction_keep_a_connection_alive() -> None:
    async def ticks(ws: WebSocket) -> None:
        for _ in range(6):
            await ws.send("tick")
            await anyio.sleep(0.05)  # the view's own pace: a tick every 50 ms
        async for message in ws:
            await ws.send(message)

    app = App()
    app.add_websocket_route("/ws", ticks, idle_timeout=0.2)
    with TestClient(app).websocket_connect("/ws") as session:
        assert [session.receive_text() for _ in range(6)] == ["tick"] * 6  # 0.3 s in all
        for _ in range(3):
            session.send_text("echo")
            assert session.receive_text() == "echo"
        assert close_of(session) == (1000, "idle timeout")


async def test_a_view_error_under_idle_timeout_is_not_wrapped_in_a_group() -> None:
    async def boom(ws: WebSocket) -> None:
        await ws.accept()
        raise KeyError("boom")

    server = connected(disconnect(1011))
    endpoint = websocket_view(idle_timeout=10)(boom)
    with pytest.raises(KeyError):
        await endpoint(server.scope, server.receive, server.send)
    assert server.sent[-1] == {"type": "websocket.close", "code": 1011, "reason": "internal error"}


async def test_a_view_returning_under_idle_timeout_closes_1000_without_a_reason() -> None:
    async def once(ws: WebSocket) -> None:
        await ws.send(await ws.receive())

    server = connected(text("a"), disconnect(1000))
    await websocket_view(idle_timeout=10)(once)(server.scope, server.receive, server.send)
    assert server.sent[-2:] == [
        {"type": "websocket.send", "text": "a"},
        {"type": "websocket.close", "code": 1000, "reason": ""},
    ]


def test_app_idle_timeout_is_the_default_and_a_class_attribute_overrides_it() -> None:
    class Patient(WebSocketView):
        idle_timeout = 30

    async def echo(ws: WebSocket) -> None:
        async for message in ws:
            await ws.send(message)

    app = App(idle_timeout=0.1)
    app.add_websocket_route("/default", echo)
    app.add_websocket_route("/patient", Patient)
    app.add_websocket_route("/off", echo, idle_timeout=None)
    with TestClient(app).websocket_connect("/default") as session:
        assert close_of(session) == (1000, "idle timeout")
    endpoints = {route.path: route.app for route in app.routes}  # type: ignore[attr-defined]
    assert endpoints["/patient"].options["idle_timeout"] == 30
    assert endpoints["/off"].options["idle_timeout"] is None
    assert endpoints["/default"].options["idle_timeout"] == 0.1


@pytest.mark.parametrize(
    ("value", "error"),
    [(0, ValueError), (-1, ValueError), (math.nan, ValueError), ("1", TypeError)],
)
def test_an_invalid_idle_timeout_fails_at_declaration(value: Any, error: type) -> None:
    with pytest.raises(error, match="idle_timeout"):
        websocket_view(idle_timeout=value)
    with pytest.raises(error, match="idle_timeout"):
        App(idle_timeout=value)


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
async def test_idle_timeout_closes_over_uvicorn(implementation: str) -> None:
    app = App()

    @app.websocket_route("/ws", idle_timeout=0.2)
    async def echo(ws: WebSocket) -> None:
        async for message in ws:
            await ws.send(message)

    async with (
        running_server(app, implementation) as base,  # type: ignore[arg-type]
        client(base + "/ws") as connection,
    ):
        await connection.send("hi")
        assert await recv(connection) == "hi"
        started = time.monotonic()
        assert await close_frame(connection) == (1000, "idle timeout")
        assert time.monotonic() - started >= 0.15


async def test_idle_timeout_leaves_the_views_clean_up_alone_once_the_client_left() -> None:
    steps = []

    async def saves_history(ws: WebSocket) -> None:
        async for message in ws:
            await ws.send(message)
        steps.append("saving")
        await anyio.sleep(0.3)  # longer than idle_timeout: the connection is over, not idle
        steps.append("saved")

    server = connected(text("hi"), disconnect(1000))
    await websocket_view(idle_timeout=0.1)(saves_history)(server.scope, server.receive, server.send)
    assert steps == ["saving", "saved"]
    assert server.types() == ["websocket.accept", "websocket.send"]


async def test_an_oversized_message_during_the_closing_handshake_raises_message_too_big() -> None:
    server = connected(text("x" * 100), disconnect(1000))
    ws = server.websocket(max_message_size=10, receive_type="event")
    await ws.accept()
    await ws.close(4000)
    with pytest.raises(MessageTooBig):
        await ws.receive()  # the client's last message, before it answers the close
    assert server.types() == ["websocket.accept", "websocket.close"]


async def test_an_invalid_timeout_fails_before_the_lazy_accept() -> None:
    server = connected(text("kept"))
    ws = server.websocket()
    with pytest.raises(ValueError, match="timeout"):
        await ws.receive_text(timeout=-1)
    assert server.sent == []


def test_app_defaults_reach_bocws_views_given_in_routes() -> None:
    async def echo(ws: WebSocket) -> None:
        async for message in ws:
            await ws.send(message)

    app = App(
        max_message_size=4,
        routes=[
            WebSocketRoute("/listed", websocket_view(echo)),
            WebSocketRoute("/own", websocket_view(max_message_size=8)(echo)),
        ],
    )
    for path, limit in [("/listed", 4), ("/own", 8)]:
        with TestClient(app).websocket_connect(path) as session:
            session.send_text("x" * (limit + 1))
            assert session.receive()["code"] == 1009, path
