"""One rule for closes caused by the client, whatever the shape of the code.

The same bad input gets the same close under plain ASGI with `async with`, `async for`,
typed receives, function views and class views: invalid JSON (or invalid UTF-8 in a
binary JSON frame) 1007 "invalid JSON", a frame of the wrong kind 1003, a message over
`max_message_size` 1009, an application error 1011 "internal error". And a client's
departure, whatever its code and however deeply wrapped, ends a view with one log line
(INFO, or WARNING for the codes that report an error), never an ERROR or a re-raise.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import pytest
from starlette.testclient import TestClient

from bocws import (
    App,
    CloseCode,
    InvalidJSON,
    InvalidMessage,
    MessageTypeError,
    WebSocket,
    WebSocketView,
    websocket_view,
)

from .fake import CONNECT, FakeServer, binary, connected, disconnect, text

if sys.version_info < (3, 11):  # pragma: no cover - anyio brings the backport
    from exceptiongroup import BaseExceptionGroup

pytestmark = pytest.mark.anyio

ACCEPT = {"type": "websocket.accept", "subprotocol": None, "headers": []}
LIMIT = 64


def close(code: int, reason: str = "") -> dict[str, Any]:
    return {"type": "websocket.close", "code": code, "reason": reason}


def boom_if_asked(message: Any) -> None:
    if message == "boom":
        raise RuntimeError("boom")


ASGIApp = Callable[[Any, Any, Any], Awaitable[None]]


def plain_async_with_receive(**options: Any) -> ASGIApp:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        ws = WebSocket(scope, receive, send, **options)
        async with ws:
            while True:
                boom_if_asked(await ws.receive())

    return app


def plain_async_with_typed_receive(**options: Any) -> ASGIApp:
    """`async with ws: await ws.receive_json()` (the shape the issue reported)."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        ws = WebSocket(scope, receive, send, **options)
        typed = ws.receive_json if options.get("value_type") == "json" else ws.receive_text
        async with ws:
            while True:
                boom_if_asked(await typed())

    return app


def plain_async_with_for(**options: Any) -> ASGIApp:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        async with WebSocket(scope, receive, send, **options) as ws:
            async for message in ws:
                boom_if_asked(message)

    return app


def view_receive(**options: Any) -> ASGIApp:
    async def view(ws: WebSocket) -> None:
        while True:
            boom_if_asked(await ws.receive())

    return websocket_view(view, **options)


def view_async_for(**options: Any) -> ASGIApp:
    async def view(ws: WebSocket) -> None:
        async for message in ws:
            boom_if_asked(message)

    return websocket_view(view, **options)


def view_async_with(**options: Any) -> ASGIApp:
    async def view(ws: WebSocket) -> None:
        async with ws:
            async for message in ws:
                boom_if_asked(message)

    return websocket_view(view, **options)


def view_in_a_task_group(**options: Any) -> ASGIApp:
    async def view(ws: WebSocket) -> None:
        async def reader() -> None:
            async for message in ws:
                boom_if_asked(message)

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(reader)

    return websocket_view(view, **options)


def class_view(**options: Any) -> ASGIApp:
    class View(WebSocketView):
        async def on_message(self, ws: WebSocket, message: Any) -> None:
            boom_if_asked(message)

    return websocket_view(View, **options)


SHAPES = [
    plain_async_with_receive,
    plain_async_with_typed_receive,
    plain_async_with_for,
    view_receive,
    view_async_for,
    view_async_with,
    view_in_a_task_group,
    class_view,
]

# (name, route options, what the client sends, the close it gets)
BAD_INPUT = [
    ("invalid JSON", {"value_type": "json"}, text("{oops"), close(1007, "invalid JSON")),
    (
        "invalid UTF-8 in a binary JSON frame",
        {"value_type": "json"},
        binary(b'"\xff"'),
        close(1007, "invalid JSON"),
    ),
    ("a binary frame for text", {}, binary(b"hi"), close(1003, "unsupported frame type")),
    (
        "a message over max_message_size",
        {"max_message_size": LIMIT},
        text("x" * (LIMIT + 1)),
        close(1009, "message too big"),
    ),
]


async def serve(app: ASGIApp, server: FakeServer) -> None:
    await app(server.scope, server.receive, server.send)


@pytest.mark.parametrize("shape", SHAPES, ids=lambda shape: shape.__name__)
@pytest.mark.parametrize(
    ("options", "sent", "expected"),
    [case[1:] for case in BAD_INPUT],
    ids=[case[0] for case in BAD_INPUT],
)
async def test_bad_input_gets_the_same_close_whatever_the_shape(
    shape: Callable[..., ASGIApp],
    options: dict[str, Any],
    sent: dict[str, Any],
    expected: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="bocws")
    server = connected(sent)
    await serve(shape(**options), server)  # the client's fault: nothing is raised
    assert server.sent == [ACCEPT, expected]
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
    # One line says what the client received.
    said = [r.getMessage() for r in caplog.records if r.name == "bocws"]
    assert len(said) == 1, said
    assert f"closed with {expected['code']} ({CloseCode(expected['code']).name})" in said[0]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda shape: shape.__name__)
@pytest.mark.parametrize("value_type", ["text", "json"])
async def test_an_application_error_closes_1011_internal_error_whatever_the_shape(
    shape: Callable[..., ASGIApp], value_type: str
) -> None:
    server = connected(text('"boom"' if value_type == "json" else "boom"))
    with pytest.raises((RuntimeError, BaseExceptionGroup)) as raised:
        await serve(shape(value_type=value_type), server)
    assert "boom" in repr(raised.value)
    assert server.sent == [ACCEPT, close(1011, "internal error")]


async def test_invalid_json_is_an_invalid_json_error_a_json_decode_error_and_a_value_error() -> (
    None
):
    ws = connected(text("{oops")).websocket()
    with pytest.raises(InvalidJSON) as raised:
        await ws.receive_json()
    assert isinstance(raised.value, InvalidMessage)
    assert isinstance(raised.value, ValueError)
    assert (raised.value.close_code, raised.value.reason) == (1007, "invalid JSON")
    assert ws.client_state.name == "CONNECTED"  # caught, the connection stays open
    with pytest.raises(MessageTypeError) as wrong:
        await FakeServer([CONNECT, binary(b"[]")]).websocket().receive_json(mode="text")
    assert (wrong.value.close_code, wrong.value.reason) == (1003, "unsupported frame type")


async def test_a_json_route_takes_json_in_binary_frames_too() -> None:
    server = connected(binary(b'{"a": 1}'), text("[2]"), disconnect(1000))

    async def view(ws: WebSocket) -> None:
        async for message in ws:
            await ws.send(message)

    await serve(websocket_view(view, value_type="json"), server)
    assert [message.get("text") for message in server.sent[1:]] == ['{"a":1}', "[2]"]


async def test_invalid_json_caught_by_the_view_leaves_the_connection_open() -> None:
    server = connected(text("{oops"), text("[1]"), disconnect(1000))

    async def view(ws: WebSocket) -> None:
        async with ws:
            while True:
                try:
                    await ws.send(await ws.receive())
                except InvalidJSON as error:
                    await ws.send({"error": error.reason})

    await serve(websocket_view(view, value_type="json"), server)
    assert [message.get("text") for message in server.sent[1:]] == [
        '{"error":"invalid JSON"}',
        "[1]",
    ]


async def test_the_log_says_the_client_had_left_rather_than_a_close_it_never_got(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Server shutdown: uvicorn's 1012 came first; the view then fails."""
    caplog.set_level(logging.INFO, logger="bocws")

    async def view(ws: WebSocket) -> None:
        async for _ in ws:
            pass
        raise RuntimeError("cleanup failed")

    server = connected(disconnect(1012))
    with pytest.raises(RuntimeError):
        await serve(websocket_view(view, caught_close_codes=all), server)
    assert server.sent == [ACCEPT]
    [record] = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert "closing with 1011" not in record.getMessage()
    assert "the client had left with 1012 (SERVICE_RESTART)" in record.getMessage()


# Departures.

ORDINARY = [1000, 1001, 1005, 1006, 1012, 1013, 3000, 4000, 4999]
ERRORS = [1002, 1003, 1007, 1008, 1009, 1010, 1011]


def departure_shapes() -> list[Callable[[], ASGIApp]]:
    async def receive_loop(ws: WebSocket) -> None:
        while True:
            await ws.receive()

    async def async_for(ws: WebSocket) -> None:
        async for _ in ws:
            pass

    async def async_with(ws: WebSocket) -> None:
        async with ws:
            await ws.receive()

    async def task_group(ws: WebSocket) -> None:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(receive_loop, ws)

    async def nested_groups(ws: WebSocket) -> None:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(task_group, ws)

    return [
        lambda view=view: websocket_view(view, caught_close_codes=())
        for view in (receive_loop, async_for, async_with, task_group, nested_groups)
    ] + [lambda: websocket_view(receive_loop)]


@pytest.mark.parametrize("code", ORDINARY + ERRORS)
@pytest.mark.parametrize("shape", range(6))
async def test_a_client_departure_ends_the_view_with_one_line_and_no_error(
    code: int, shape: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="bocws")
    server = connected(disconnect(code, "bye"))
    await serve(departure_shapes()[shape](), server)  # not re-raised to the server
    assert server.sent == [ACCEPT]
    records = [r for r in caplog.records if r.name == "bocws"]
    assert len(records) == 1, [r.getMessage() for r in records]
    [record] = records
    assert record.levelno == (logging.WARNING if code in ERRORS else logging.INFO)
    assert record.getMessage().startswith(f"'/ws': the client left with {code}")
    assert "'bye'" in record.getMessage()
    assert record.exc_info is None


async def test_a_class_views_on_disconnect_gets_the_code(caplog: pytest.LogCaptureFixture) -> None:
    codes: list[int] = []

    class View(WebSocketView):
        caught_close_codes = ()

        async def on_disconnect(self, ws: WebSocket, code: int) -> None:
            codes.append(code)

    for code in (1006, 4000, 1011):
        await serve(websocket_view(View), connected(disconnect(code)))
    server = connected(text("{oops"))
    await serve(websocket_view(View, value_type="json"), server)
    assert codes == [1006, 4000, 1011, 1007]
    assert server.sent[-1] == close(1007, "invalid JSON")


async def test_a_peers_disconnect_is_still_the_applications_error() -> None:
    peer = connected(disconnect(1001)).websocket()

    async def view(ws: WebSocket) -> None:
        await peer.receive()

    server = connected()
    with pytest.raises(Exception, match="1001"):
        await serve(websocket_view(view), server)
    assert server.sent == [ACCEPT, close(1011, "internal error")]


# Under Starlette's TestClient, through an App.


def test_the_close_rule_holds_through_an_app_and_the_test_client() -> None:
    app = App()

    @app.websocket_route("/json", value_type="json")
    async def json_view(ws: WebSocket) -> None:
        async with ws:
            await ws.receive_json()

    @app.websocket_route("/text")
    async def text_view(ws: WebSocket) -> None:
        async with ws:
            await ws.receive_text()

    with TestClient(app) as client:
        with client.websocket_connect("/json") as session:
            session.send_text("{oops")
            assert session.receive() == close(1007, "invalid JSON")
        with client.websocket_connect("/json") as session:
            session.send_bytes(b'"\xff"')
            assert session.receive() == close(1007, "invalid JSON")
        with client.websocket_connect("/text") as session:
            session.send_bytes(b"hi")
            assert session.receive() == close(1003, "unsupported frame type")
