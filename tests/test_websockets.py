"""The WebSocket object, message by message, against an in-memory server."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from enum import IntEnum
from typing import Any

import anyio
import pytest
import starlette.websockets
from starlette.responses import PlainTextResponse

from bocws import (
    CloseCode,
    DenialResponseUnsupported,
    InvalidJSON,
    InvalidMessage,
    MessageTooBig,
    MessageTypeError,
    WebSocket,
    WebSocketDisconnect,
    WebSocketState,
    WebSocketStateError,
)
from bocws._broken import DISCONNECT_GRACE
from bocws._connection import ended_with

from .fake import CONNECT, FakeServer, LiveServer, binary, connected, disconnect, text

pytestmark = pytest.mark.anyio

ACCEPT = {"type": "websocket.accept", "subprotocol": None, "headers": []}


def close(code: int = 1000, reason: str = "") -> dict[str, Any]:
    return {"type": "websocket.close", "code": code, "reason": reason}


# Construction and connection information.


def test_websocket_disconnect_is_starlettes_class() -> None:
    assert WebSocketDisconnect is starlette.websockets.WebSocketDisconnect


@pytest.mark.parametrize("option", ["value_type", "receive_type", "send_type"])
def test_unknown_message_type_is_a_value_error(option: str) -> None:
    with pytest.raises(ValueError, match=r"unknown .*'xml'.*text, bytes, json, event"):
        FakeServer().websocket(**{option: "xml"})


def test_non_websocket_scope_is_refused() -> None:
    server = FakeServer()
    server.scope["type"] = "http"
    with pytest.raises(ValueError, match="'websocket' scope"):
        WebSocket(server.scope, server.receive, server.send)


def test_types_default_to_text_and_value_type_sets_both() -> None:
    ws = FakeServer().websocket()
    assert (ws.receive_type, ws.send_type) == ("text", "text")
    ws = FakeServer().websocket(value_type="json", receive_type="bytes")
    assert (ws.receive_type, ws.send_type) == ("json", "json")
    ws = FakeServer().websocket(receive_type="bytes", send_type="event")
    assert (ws.receive_type, ws.send_type) == ("bytes", "event")


def test_message_types_are_read_only() -> None:
    ws = FakeServer().websocket()
    with pytest.raises(AttributeError):
        ws.receive_type = "json"  # type: ignore[misc]


def test_connection_information_comes_from_the_scope() -> None:
    ws = FakeServer(subprotocols=["chat.v2", "chat.v1"]).websocket()
    assert ws.url.path == "/ws"
    assert str(ws.url) == "ws://127.0.0.1:8000/ws?room=lobby&n=2"
    assert ws.headers["origin"] == "http://127.0.0.1:8000"
    assert ws.query_params["n"] == "2"
    assert ws.path_params == {"room": "lobby"}
    assert ws.cookies == {"token": "abc", "theme": "dark"}
    assert ws.client is not None
    assert ws.client.port == 50000
    assert ws["path"] == "/ws"
    assert ws.subprotocols == ["chat.v2", "chat.v1"]
    ws.state.visits = 1
    assert ws.scope["state"]["visits"] == 1
    assert ws.client_state is WebSocketState.CONNECTING
    assert ws.application_state is WebSocketState.CONNECTING
    assert "CONNECTING" in repr(ws)


def test_caught_close_codes_default_to_1000_and_1001() -> None:
    codes = FakeServer().websocket().caught_close_codes
    assert 1000 in codes
    assert 1001 in codes
    assert 1006 not in codes


def test_caught_close_codes_all_means_every_code() -> None:
    codes = FakeServer().websocket(caught_close_codes=all).caught_close_codes
    assert all(code in codes for code in (1000, 1006, 1011, 3000, 4999))


def test_caught_close_codes_empty_means_none() -> None:
    codes = FakeServer().websocket(caught_close_codes=()).caught_close_codes
    assert 1000 not in codes


def test_caught_close_codes_take_any_iterable_of_ints() -> None:
    codes = FakeServer().websocket(caught_close_codes=iter([4000, 4001])).caught_close_codes
    assert 4000 in codes
    assert 4001 in codes
    assert 1000 not in codes


@pytest.mark.parametrize("codes", [["1000"], len, 1000])
def test_caught_close_codes_reject_other_values(codes: Any) -> None:
    with pytest.raises(TypeError, match="caught_close_codes"):
        FakeServer().websocket(caught_close_codes=codes)


# Lazy auto-accept.


async def test_auto_accept_waits_for_the_first_operation() -> None:
    server = connected(text("hi"))
    ws = server.websocket()
    assert server.sent == []
    assert await ws.receive() == "hi"
    assert server.sent == [ACCEPT]
    assert ws.application_state is WebSocketState.CONNECTED


async def test_auto_accept_lets_the_view_reject_first() -> None:
    server = connected()
    ws = server.websocket()
    await ws.reject()
    assert server.sent == [close(403)]
    assert ws.application_state is WebSocketState.DISCONNECTED


async def test_auto_accept_happens_before_the_first_send() -> None:
    server = connected()
    await server.websocket().send("hello")
    assert server.sent == [ACCEPT, {"type": "websocket.send", "text": "hello"}]


async def test_close_accepts_first_so_the_client_sees_the_code() -> None:
    server = connected()
    await server.websocket().close(4002, "done")
    assert server.sent == [ACCEPT, close(4002, "done")]


async def test_without_auto_accept_receive_before_accept_is_a_state_error() -> None:
    server = connected(text("hi"))
    ws = server.websocket(auto_accept=False)
    assert await ws.receive_event() == CONNECT
    with pytest.raises(WebSocketStateError, match=r"accept\(\)"):
        await ws.receive()
    assert server.sent == []


@pytest.mark.parametrize("method", ["receive", "receive_text", "receive_bytes", "receive_json"])
async def test_without_auto_accept_data_receive_before_connect_is_a_state_error(
    method: str,
) -> None:
    server = connected(text("hi"))
    ws = server.websocket(auto_accept=False)
    with pytest.raises(WebSocketStateError, match=r"call accept\(\) first"):
        await getattr(ws, method)()
    assert len(server.incoming) == 2  # the connect event was not consumed
    await ws.accept()
    assert await ws.receive() == "hi"


async def test_without_auto_accept_send_before_accept_is_a_state_error() -> None:
    server = connected()
    ws = server.websocket(auto_accept=False)
    with pytest.raises(WebSocketStateError, match=r"call accept\(\) first"):
        await ws.send_text("hi")
    assert server.sent == []


async def test_client_leaving_during_handshake_raises_disconnect_on_first_receive() -> None:
    server = FakeServer([disconnect(1001)])
    ws = server.websocket()
    with pytest.raises(WebSocketDisconnect) as info:
        await ws.receive()
    assert info.value.code == 1001
    assert server.sent == []


# accept()


async def test_accept_receives_connect_then_accepts_with_subprotocol_and_headers() -> None:
    server = connected(subprotocols=["chat.v2", "chat.v1"])
    ws = server.websocket(auto_accept=False)
    await ws.accept("chat.v1", headers=[(b"x-bocws", b"1")])
    assert server.sent == [
        {"type": "websocket.accept", "subprotocol": "chat.v1", "headers": [(b"x-bocws", b"1")]}
    ]
    assert ws.client_state is WebSocketState.CONNECTED


async def test_accept_with_a_subprotocol_not_offered_is_a_value_error() -> None:
    server = connected(subprotocols=["chat.v2"])
    with pytest.raises(ValueError, match=r"'chat.v1' was not offered.*\['chat.v2'\]"):
        await server.websocket().accept("chat.v1")
    assert server.sent == []


async def test_accept_twice_is_a_state_error() -> None:
    server = connected()
    ws = server.websocket()
    await ws.accept()
    with pytest.raises(WebSocketStateError, match="already accepted"):
        await ws.accept()
    assert server.sent == [ACCEPT]


async def test_accept_after_reject_is_a_state_error() -> None:
    server = connected()
    ws = server.websocket()
    await ws.reject()
    with pytest.raises(WebSocketStateError, match="already closed"):
        await ws.accept()


async def test_accept_with_bad_headers_is_refused_and_stays_pending() -> None:
    server = connected(text("hi"))
    ws = server.websocket()
    with pytest.raises(TypeError, match=r"\(bytes, bytes\) pairs"):
        await ws.accept(headers=[("x", "y")])  # type: ignore[list-item]
    assert server.sent == []
    assert await ws.receive() == "hi"
    assert server.sent == [ACCEPT]


# reject() and denial responses.


async def test_reject_with_a_response_sends_a_denial_response() -> None:
    server = connected()
    ws = server.websocket()
    await ws.reject(PlainTextResponse("go away", status_code=401))
    assert server.types() == ["websocket.http.response.start", "websocket.http.response.body"]
    assert server.sent[0]["status"] == 401
    assert server.sent[1]["body"] == b"go away"
    assert ws.application_state is WebSocketState.DISCONNECTED


async def test_reject_with_a_response_falls_back_to_403_without_the_extension(
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = connected(denial_response=False)
    with caplog.at_level(logging.WARNING, logger="bocws"):
        await server.websocket().reject(PlainTextResponse("no", status_code=401))
    assert server.sent == [close(403)]
    assert "plain HTTP 403" in caplog.text


async def test_receive_after_reject_says_the_handshake_was_refused() -> None:
    ws = connected().websocket()
    await ws.reject()
    with pytest.raises(WebSocketStateError, match="handshake was refused"):
        await ws.receive_text()


async def test_reject_after_accept_closes_with_1008() -> None:
    server = connected()
    ws = server.websocket()
    await ws.accept()
    await ws.reject()
    assert server.sent == [ACCEPT, close(1008)]


async def test_reject_with_a_response_after_accept_closes_1008_and_warns(
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = connected()
    ws = server.websocket()
    await ws.accept()
    with caplog.at_level(logging.WARNING, logger="bocws"):
        await ws.reject(PlainTextResponse("no", status_code=401))
    assert server.sent == [ACCEPT, close(1008)]
    assert "1008" in caplog.text


async def test_reject_after_close_is_a_state_error() -> None:
    server = connected()
    ws = server.websocket()
    await ws.close()
    with pytest.raises(WebSocketStateError):
        await ws.reject()


async def test_send_denial_response_without_the_extension_raises_clearly() -> None:
    server = connected(denial_response=False)
    with pytest.raises(DenialResponseUnsupported, match=r"websocket\.http\.response"):
        await server.websocket().send_denial_response(PlainTextResponse("no", 401))
    assert server.sent == []


async def test_send_denial_response_after_accept_is_a_state_error() -> None:
    server = connected()
    ws = server.websocket()
    await ws.accept()
    with pytest.raises(WebSocketStateError, match="before the handshake is accepted"):
        await ws.send_denial_response(PlainTextResponse("no", 401))


# Receiving, by type.


@pytest.mark.parametrize(
    ("receive_type", "incoming", "expected"),
    [
        ("text", text("hé"), "hé"),
        ("bytes", binary(b"\x00\xff"), b"\x00\xff"),
        ("json", text('{"a": [1, 2]}'), {"a": [1, 2]}),
        ("json", binary('{"é": [1, 2]}'.encode()), {"é": [1, 2]}),
        ("event", text("raw"), text("raw")),
    ],
)
async def test_receive_dispatches_to_the_configured_type(
    receive_type: Any, incoming: dict[str, Any], expected: Any
) -> None:
    ws = connected(incoming).websocket(receive_type=receive_type)
    assert await ws.receive() == expected


async def test_receive_text_on_a_binary_frame_names_both_kinds() -> None:
    ws = connected(binary(b"x")).websocket()
    with pytest.raises(MessageTypeError, match="expected a text frame, received a binary frame"):
        await ws.receive_text()


async def test_receive_bytes_on_a_text_frame_names_both_kinds() -> None:
    ws = connected(text("x")).websocket()
    with pytest.raises(MessageTypeError) as info:
        await ws.receive_bytes()
    assert (info.value.expected, info.value.received) == ("bytes", "text")
    assert isinstance(info.value, TypeError)


async def test_receive_json_takes_json_from_text_and_utf8_binary_frames_by_default() -> None:
    ws = connected(text('{"a": 1}'), binary('{"é": 2}'.encode())).websocket()
    assert await ws.receive_json() == {"a": 1}
    assert await ws.receive_json() == {"é": 2}


async def test_receive_json_text_mode_refuses_binary_frames() -> None:
    ws = connected(binary(b"{}")).websocket()
    with pytest.raises(MessageTypeError, match=r"receive_json\(mode='text'\)") as info:
        await ws.receive_json(mode="text")
    assert str(info.value).endswith("(or receive_json() for JSON in either)")


async def test_receive_json_binary_mode_reads_utf8_binary_frames() -> None:
    ws = connected(binary('{"é": 1}'.encode())).websocket()
    assert await ws.receive_json(mode="binary") == {"é": 1}


async def test_receive_json_binary_mode_refuses_text_frames() -> None:
    ws = connected(text("{}")).websocket()
    with pytest.raises(MessageTypeError, match="mode='binary'"):
        await ws.receive_json(mode="binary")


async def test_invalid_json_raises_invalid_json_a_json_decode_error() -> None:
    ws = connected(text("{nope"), text("[1]")).websocket()
    with pytest.raises(InvalidJSON) as info:
        await ws.receive_json()
    assert isinstance(info.value, json.JSONDecodeError)
    assert isinstance(info.value, InvalidMessage)
    assert (info.value.close_code, info.value.reason) == (1007, "invalid JSON")
    assert await ws.receive_json() == [1]


@pytest.mark.parametrize("mode", [None, "binary"])
async def test_invalid_utf8_in_binary_json_raises_invalid_json(mode: Any) -> None:
    ws = connected(binary(b'{"a": "\xff"}')).websocket()
    with pytest.raises(InvalidJSON, match="not valid UTF-8"):
        await ws.receive_json(mode=mode)


async def test_receive_json_unknown_mode_is_a_value_error() -> None:
    ws = connected(text("{}")).websocket()
    with pytest.raises(ValueError, match="use None, 'text' or 'binary'"):
        await ws.receive_json(mode="yaml")  # type: ignore[arg-type]


async def test_receive_raises_disconnect_with_code_and_reason() -> None:
    server = connected(disconnect(4000, "bye"))
    ws = server.websocket()
    with pytest.raises(WebSocketDisconnect) as info:
        await ws.receive()
    assert (info.value.code, info.value.reason) == (4000, "bye")
    assert ws.client_state is WebSocketState.DISCONNECTED


async def test_receive_after_disconnect_is_a_state_error() -> None:
    ws = connected(disconnect(1000)).websocket()
    with pytest.raises(WebSocketDisconnect):
        await ws.receive()
    with pytest.raises(WebSocketStateError, match="already disconnected with code 1000"):
        await ws.receive()


async def test_receive_event_returns_disconnect_events() -> None:
    ws = connected(disconnect(1001)).websocket()
    assert await ws.receive_event() == disconnect(1001)


async def test_a_malformed_server_event_is_refused() -> None:
    ws = connected({"type": "websocket.receive"}).websocket()
    with pytest.raises(ValueError, match="exactly one of 'text' or 'bytes'"):
        await ws.receive_event()


# Sending, by type.


@pytest.mark.parametrize(
    ("send_type", "value", "expected"),
    [
        ("text", "hé", {"type": "websocket.send", "text": "hé"}),
        ("bytes", b"\x00", {"type": "websocket.send", "bytes": b"\x00"}),
        ("json", {"é": [1, None]}, {"type": "websocket.send", "text": '{"é":[1,null]}'}),
        ("event", {"type": "websocket.send", "text": "é"}, {"type": "websocket.send", "text": "é"}),
    ],
)
async def test_send_dispatches_to_the_configured_type(
    send_type: Any, value: Any, expected: dict[str, Any]
) -> None:
    server = connected()
    await server.websocket(send_type=send_type).send(value)
    assert server.sent == [ACCEPT, expected]


async def test_send_json_binary_mode_sends_utf8_bytes() -> None:
    server = connected()
    await server.websocket().send_json(["é"], mode="binary")
    assert server.sent[-1] == {"type": "websocket.send", "bytes": '["é"]'.encode()}


async def test_send_bytes_accepts_bytearray_and_memoryview() -> None:
    server = connected()
    ws = server.websocket()
    await ws.send_bytes(bytearray(b"ab"))
    await ws.send_bytes(memoryview(b"cd"))
    assert [m.get("bytes") for m in server.sent[1:]] == [b"ab", b"cd"]


async def test_send_json_unknown_mode_is_a_value_error() -> None:
    ws = connected().websocket()
    with pytest.raises(ValueError, match="'text' or 'binary'"):
        await ws.send_json({}, mode="yaml")  # type: ignore[arg-type]


@pytest.mark.parametrize("data", [{1, 2}, object(), float("nan"), {"x": float("inf")}])
async def test_unserialisable_json_raises_type_error_and_sends_nothing(data: Any) -> None:
    server = connected()
    ws = server.websocket()
    await ws.accept()
    with pytest.raises(TypeError):
        await ws.send_json(data)
    assert server.sent == [ACCEPT]
    await ws.send_json({"still": "usable"})
    assert server.sent[-1] == {"type": "websocket.send", "text": '{"still":"usable"}'}


async def test_circular_json_raises_type_error() -> None:
    data: list[Any] = []
    data.append(data)
    with pytest.raises(TypeError, match="Circular"):
        await connected().websocket().send_json(data)


async def test_send_text_with_bytes_is_a_type_error_naming_the_fix() -> None:
    server = connected()
    with pytest.raises(TypeError, match=r"send_text\(\) takes a str, got bytes; use send_bytes"):
        await server.websocket().send_text(b"x")  # type: ignore[arg-type]
    assert server.sent == []


async def test_send_bytes_with_str_is_a_type_error_naming_the_fix() -> None:
    with pytest.raises(TypeError, match=r"got str; use send_text"):
        await connected().websocket().send_bytes("x")  # type: ignore[arg-type]


async def test_send_event_is_validated_by_the_core() -> None:
    server = connected()
    ws = server.websocket()
    await ws.accept()
    with pytest.raises(WebSocketStateError, match="already accepted"):
        await ws.send_event({"type": "websocket.accept"})
    with pytest.raises(ValueError, match="exactly one of"):
        await ws.send_event({"type": "websocket.send", "text": "a", "bytes": b"a"})
    assert server.sent == [ACCEPT]


async def test_send_event_accept_receives_connect_first() -> None:
    server = connected(subprotocols=["a"])
    ws = server.websocket(auto_accept=False)
    await ws.send_event({"type": "websocket.accept", "subprotocol": "a"})
    assert server.sent == [{"type": "websocket.accept", "subprotocol": "a"}]


async def test_send_event_close_while_pending_rejects_the_handshake() -> None:
    server = connected()
    ws = server.websocket()
    await ws.send_event(close(403))
    assert server.sent == [close(403)]


async def test_send_after_the_client_disconnected_raises_its_code() -> None:
    server = connected(disconnect(1001, "gone"))
    ws = server.websocket()
    with pytest.raises(WebSocketDisconnect):
        await ws.receive()
    with pytest.raises(WebSocketDisconnect) as info:
        await ws.send_text("late")
    assert (info.value.code, info.value.reason) == (1001, "gone")
    with pytest.raises(WebSocketDisconnect):
        await ws.send_event({"type": "websocket.send", "text": "late"})
    assert server.sent == [ACCEPT]


async def test_a_broken_connection_on_send_raises_disconnect_1006() -> None:
    server = connected()
    ws = server.websocket()
    await ws.accept()
    server.fail_sends_with = ConnectionResetError("peer reset")
    with pytest.raises(WebSocketDisconnect) as info:
        await ws.send_text("x")
    assert info.value.code == 1006
    assert ws.client_state is WebSocketState.DISCONNECTED
    await ws.ensure_closed()  # nothing to close any more, and no error


async def test_a_broken_connection_on_close_raises_disconnect_1006() -> None:
    server = connected()
    ws = server.websocket()
    await ws.accept()
    server.fail_sends_with = OSError("broken pipe")
    with pytest.raises(WebSocketDisconnect) as info:
        await ws.close()
    assert info.value.code == 1006


# close() and ensure_closed()


@pytest.mark.parametrize("code", [999, 1005, 1006, 1015, 2000, 5000])
async def test_close_with_an_invalid_code_is_a_value_error_and_sends_nothing(code: int) -> None:
    server = connected()
    ws = server.websocket()
    await ws.accept()
    with pytest.raises(ValueError, match=f"invalid close code {code}"):
        await ws.close(code)
    assert server.sent == [ACCEPT]
    await ws.close()
    assert server.sent == [ACCEPT, close()]


async def test_close_with_an_invalid_code_does_not_accept_first() -> None:
    server = connected()
    with pytest.raises(ValueError, match="invalid close code 1006"):
        await server.websocket().close(1006)
    assert server.sent == []


async def test_close_reason_over_123_bytes_is_a_value_error() -> None:
    server = connected()
    with pytest.raises(ValueError, match="123"):
        await server.websocket().close(1000, "ü" * 62)
    assert server.sent == []


async def test_close_twice_is_a_state_error() -> None:
    server = connected()
    ws = server.websocket()
    await ws.close()
    with pytest.raises(WebSocketStateError, match="already closed"):
        await ws.close()
    assert server.sent == [ACCEPT, close()]


async def test_close_after_client_disconnect_sends_nothing() -> None:
    server = connected(disconnect(1000))
    ws = server.websocket()
    with pytest.raises(WebSocketDisconnect):
        await ws.receive()
    await ws.close()
    assert server.sent == [ACCEPT]
    assert ws.application_state is WebSocketState.DISCONNECTED


async def close_with_a_close_code(ws: WebSocket) -> None:
    await ws.close(CloseCode.GOING_AWAY, "bye")


async def leave_async_with(ws: WebSocket) -> None:
    async with ws:
        pass


async def reject_after_accept(ws: WebSocket) -> None:
    await ws.accept()
    await ws.reject()


async def receive_a_message_too_big(ws: WebSocket) -> None:
    with pytest.raises(MessageTooBig):
        await ws.receive_text()


async def fail_in_async_with(ws: WebSocket) -> None:
    with pytest.raises(ZeroDivisionError):
        async with ws:
            1 / 0  # noqa: B018


async def receive_bad_json_in_async_with(ws: WebSocket) -> None:
    async with ws:
        await ws.receive_json()


@pytest.mark.parametrize(
    ("how", "expected"),
    [
        (close_with_a_close_code, 1001),
        (leave_async_with, 1000),
        (reject_after_accept, 1008),
        (receive_a_message_too_big, 1009),
        (fail_in_async_with, 1011),
        (receive_bad_json_in_async_with, 1007),
    ],
    ids=lambda value: getattr(value, "__name__", str(value)),
)
async def test_close_codes_are_sent_as_plain_ints(
    how: Callable[[WebSocket], Any], expected: int
) -> None:
    server = connected(text("{" * 8))
    await how(server.websocket(max_message_size=4 if how is receive_a_message_too_big else None))
    [code] = [message["code"] for message in server.sent if message["type"] == "websocket.close"]
    assert code == expected
    assert type(code) is int, f"sent {code!r}, a {type(code).__name__}"


async def test_close_403_is_refused_after_accept() -> None:
    ws = connected().websocket(auto_accept=False)
    await ws.accept()
    with pytest.raises(ValueError, match="invalid close code 403"):
        await ws.close(403)


async def test_close_before_accept_without_auto_accept_refuses_the_handshake() -> None:
    server = connected()
    await server.websocket(auto_accept=False).close(403)
    assert server.sent == [close(403)]


async def test_ensure_closed_closes_an_open_connection() -> None:
    server = connected()
    ws = server.websocket()
    await ws.accept()
    await ws.ensure_closed(4000, "done")
    assert server.sent == [ACCEPT, close(4000, "done")]


async def test_ensure_closed_is_silent_when_already_closed() -> None:
    server = connected()
    ws = server.websocket()
    await ws.close()
    await ws.ensure_closed()
    await ws.ensure_closed()
    assert server.sent == [ACCEPT, close()]


async def test_ensure_closed_is_silent_after_client_disconnect() -> None:
    server = connected(disconnect(1001))
    ws = server.websocket()
    with pytest.raises(WebSocketDisconnect):
        await ws.receive()
    await ws.ensure_closed()
    assert server.sent == [ACCEPT]


async def test_ensure_closed_validates_its_code() -> None:
    with pytest.raises(ValueError, match="invalid close code 1006"):
        await connected().websocket().ensure_closed(1006)


async def test_ensure_closed_finishes_a_denial_response_under_way() -> None:
    server = connected()
    ws = server.websocket()
    await ws.send_event({"type": "websocket.http.response.start", "status": 401, "headers": []})
    await ws.ensure_closed()
    last = server.sent[-1]
    assert last == {"type": "websocket.http.response.body", "body": b"", "more_body": False}
    assert ws.application_state is WebSocketState.DISCONNECTED


async def test_ensure_closed_swallows_a_connection_broken_meanwhile() -> None:
    server = connected()
    ws = server.websocket()
    await ws.accept()
    server.fail_sends_with = BrokenPipeError()
    await ws.ensure_closed()
    assert ws.client_state is WebSocketState.DISCONNECTED


# async with


async def test_async_with_accepts_on_entry_and_closes_1000_on_exit() -> None:
    server = connected()
    async with server.websocket() as ws:
        assert server.sent == [ACCEPT]
        assert ws.application_state is WebSocketState.CONNECTED
    assert server.sent == [ACCEPT, close()]


async def test_async_with_accepts_even_without_auto_accept() -> None:
    server = connected()
    async with server.websocket(auto_accept=False):
        assert server.sent == [ACCEPT]


async def test_entering_twice_is_harmless() -> None:
    server = connected()
    ws = server.websocket()
    async with ws, ws:
        pass
    assert server.sent == [ACCEPT, close()]


async def test_async_with_silences_a_caught_close_code() -> None:
    server = connected(disconnect(1001))
    async with server.websocket() as ws:
        await ws.receive()
    assert ws.client_state is WebSocketState.DISCONNECTED
    assert server.sent == [ACCEPT]


async def test_async_with_propagates_an_uncaught_close_code() -> None:
    server = connected(disconnect(4000))
    with pytest.raises(WebSocketDisconnect) as info:
        async with server.websocket() as ws:
            await ws.receive()
    assert info.value.code == 4000
    assert server.sent == [ACCEPT]


async def test_async_with_all_catches_every_code() -> None:
    server = connected(disconnect(4999))
    async with server.websocket(caught_close_codes=all) as ws:
        await ws.receive()


async def test_async_with_does_not_silence_another_connections_disconnect() -> None:
    # A chat relays to a peer who left: the peer's WebSocketDisconnect(1001) is not ours.
    peer_server = connected(disconnect(1001))
    peer = peer_server.websocket()
    with pytest.raises(WebSocketDisconnect):
        await peer.receive()
    server = connected()
    with pytest.raises(WebSocketDisconnect) as info:
        async with server.websocket():
            await peer.send_text("are you there?")
    assert info.value.code == 1001
    assert server.sent == [ACCEPT, close(1011, "internal error")]


async def test_async_with_closes_1011_on_an_exception_and_propagates_it() -> None:
    server = connected()
    with pytest.raises(ZeroDivisionError):
        async with server.websocket():
            1 / 0  # noqa: B018
    assert server.sent == [ACCEPT, close(1011, "internal error")]


async def test_async_with_does_not_close_again_after_an_explicit_close() -> None:
    server = connected()
    async with server.websocket() as ws:
        await ws.close(4000)
    assert server.sent == [ACCEPT, close(4000)]


@pytest.mark.parametrize(
    ("incoming", "expected", "logged"),
    [
        (
            text("{oops"),
            close(1007, "invalid JSON"),
            "'/ws': closed with 1007 (INVALID_PAYLOAD) 'invalid JSON': the client sent bad data: ",
        ),
        (
            binary(b"[]"),
            close(1003, "unsupported frame type"),
            "'/ws': closed with 1003 (UNSUPPORTED_DATA) 'unsupported frame type': "
            "the client sent bad data: receive_json(mode='text') expected",
        ),
    ],
)
async def test_async_with_closes_for_the_clients_bad_data_and_ends_quietly(
    incoming: dict[str, Any],
    expected: dict[str, Any],
    logged: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = connected(incoming)
    reached_the_end = False
    with caplog.at_level(logging.INFO, logger="bocws"):
        async with server.websocket() as ws:
            await ws.receive_json(mode="text")
            reached_the_end = True  # pragma: no cover - the receive raises
    assert not reached_the_end
    assert server.sent == [ACCEPT, expected]
    [record] = caplog.records
    assert record.levelno == logging.INFO
    assert record.getMessage().startswith(logged)


async def test_async_with_raises_the_same_bad_data_from_a_peer() -> None:
    peer = connected(text("{oops")).websocket()
    server = connected()
    with pytest.raises(InvalidJSON):
        async with server.websocket():
            await peer.receive_json()
    assert server.sent == [ACCEPT, close(1011, "internal error")]


# async for


async def test_async_for_yields_messages_until_a_caught_close() -> None:
    server = connected(text('{"n": 1}'), text('{"n": 2}'), disconnect(1000))
    seen = [message async for message in server.websocket(value_type="json")]
    assert seen == [{"n": 1}, {"n": 2}]


async def test_async_for_raises_an_uncaught_close() -> None:
    server = connected(text("a"), disconnect(1006))
    seen = []

    async def consume() -> None:
        async for message in server.websocket():
            seen.append(message)

    with pytest.raises(WebSocketDisconnect) as info:
        await consume()
    assert seen == ["a"]
    assert info.value.code == 1006


async def test_async_for_in_event_mode_yields_the_disconnect_event_then_ends() -> None:
    server = connected(text("a"), disconnect(4000))
    events = [event async for event in server.websocket(value_type="event")]
    assert events == [text("a"), disconnect(4000)]


async def test_async_for_in_event_mode_still_raises_other_state_errors() -> None:
    ws = connected().websocket(value_type="event", auto_accept=False)
    assert await ws.receive() == CONNECT
    with pytest.raises(WebSocketStateError, match="before the handshake is accepted"):
        async for _ in ws:
            pass  # pragma: no cover


async def test_async_for_with_no_caught_codes_raises_even_1000() -> None:
    server = connected(disconnect(1000))
    with pytest.raises(WebSocketDisconnect):
        async for _ in server.websocket(caught_close_codes=()):
            pass


async def test_iter_text_iter_bytes_and_iter_json_yield_until_a_caught_close() -> None:
    server = connected(text("a"), text("b"), disconnect(1001))
    assert [message async for message in server.websocket().iter_text()] == ["a", "b"]
    server = connected(binary(b"\x00"), disconnect(1000))
    assert [message async for message in server.websocket().iter_bytes()] == [b"\x00"]
    server = connected(text("[1]"), binary(b'{"a": 2}'), disconnect(1000))
    assert [message async for message in server.websocket().iter_json()] == [[1], {"a": 2}]


async def test_iter_json_takes_a_mode() -> None:
    ws = connected(text("[1]"), text("[2]"), disconnect(1000)).websocket()
    with pytest.raises(MessageTypeError, match="mode='binary'"):
        async for _ in ws.iter_json(mode="binary"):
            pass  # pragma: no cover
    assert [message async for message in ws.iter_json(mode="text")] == [[2]]


async def test_iter_text_raises_an_uncaught_close() -> None:
    ws = connected(text("a"), disconnect(4000, "bye")).websocket()
    seen = []

    async def consume() -> None:
        async for message in ws.iter_text():
            seen.append(message)

    with pytest.raises(WebSocketDisconnect) as info:
        await consume()
    assert seen == ["a"]
    assert (info.value.code, info.value.reason) == (4000, "bye")


async def test_iter_bytes_ends_quietly_when_the_client_answers_the_applications_close() -> None:
    server = connected(disconnect(4000))
    ws = server.websocket(caught_close_codes=())
    await ws.close(4000)
    assert [message async for message in ws.iter_bytes()] == []
    assert server.sent == [ACCEPT, close(4000)]


# Concurrency: several tasks on one connection.


async def test_concurrent_first_operations_accept_once_and_lose_no_message() -> None:
    # Starlette's TestClient starts the app before websocket.connect is queued.
    connect_ready = anyio.Event()
    server = connected(text("hello"))
    ws = server.websocket()
    scripted_receive = server.receive

    async def slow_receive() -> dict[str, Any]:
        await connect_ready.wait()
        return await scripted_receive()

    ws._receive = slow_receive
    received: list[str] = []

    async def receiver() -> None:
        received.append(await ws.receive_text())

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(receiver)
        tasks.start_soon(ws.send_text, "hi")
        await anyio.wait_all_tasks_blocked()
        connect_ready.set()
    assert received == ["hello"]
    assert server.sent == [ACCEPT, {"type": "websocket.send", "text": "hi"}]


# The lazy accept shared by two tasks: the first to need it accepts; any other waits on
# an event made only when it comes (`_accepting`), and goes on once the accept is done.


class SlowConnect(FakeServer):
    """A server whose `websocket.connect` arrives only once the test says so."""

    def __init__(self, *incoming: dict[str, Any]) -> None:
        super().__init__([CONNECT, *incoming])
        self.connect_ready = anyio.Event()

    async def receive(self) -> dict[str, Any]:
        await self.connect_ready.wait()
        return await super().receive()


async def operate(ws: WebSocket, operation: str, name: str, outcomes: dict[str, Any]) -> None:
    """Run `operation` on `ws` as task `name`; record what it returned or raised."""
    try:
        if operation == "send":
            await ws.send_text(name)
            outcomes[name] = "sent"
        elif operation == "receive":
            outcomes[name] = await ws.receive_text()
        elif operation == "accept":
            await ws.accept()
            outcomes[name] = "accepted"
        else:
            await ws.send_event(ACCEPT)
            outcomes[name] = "accepted"
    except (WebSocketDisconnect, WebSocketStateError) as error:
        outcomes[name] = error


async def start_both(
    server: SlowConnect,
    first: str,
    *others: str,
    before_connect: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Start `first`, then the `others` ("second", "third") while the first's lazy accept
    waits for the connect; check that they wait on one event; then let the connect come."""
    ws = server.websocket()
    outcomes: dict[str, Any] = {}
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(operate, ws, first, "first", outcomes)
            await anyio.wait_all_tasks_blocked()
            assert ws._accepting is True  # under way; no event until someone waits
            events = []
            for operation, name in zip(others, ["second", "third"][: len(others)], strict=True):
                tasks.start_soon(operate, ws, operation, name, outcomes)
                await anyio.wait_all_tasks_blocked()
                events.append(ws._accepting)
            assert isinstance(events[0], anyio.Event)  # the second task waits on it
            assert all(event is events[0] for event in events)  # and so does a third
            assert server.sent == []
            if before_connect is not None:
                before_connect()
            server.connect_ready.set()
    assert ws._accepting is False
    return outcomes


@pytest.mark.parametrize(
    ("first", "second", "outcomes", "sent"),
    [
        ("send", "receive", {"first": "sent", "second": "hello"}, ["first"]),
        ("receive", "send", {"first": "hello", "second": "sent"}, ["second"]),
        ("send", "send", {"first": "sent", "second": "sent"}, ["first", "second"]),
    ],
)
async def test_two_tasks_starting_at_once_share_one_lazy_accept(
    first: str, second: str, outcomes: dict[str, Any], sent: list[str]
) -> None:
    server = SlowConnect(text("hello"))
    assert await start_both(server, first, second) == outcomes
    assert server.sent == [ACCEPT, *({"type": "websocket.send", "text": data} for data in sent)]


async def test_three_tasks_starting_at_once_share_one_lazy_accept() -> None:
    server = SlowConnect(text("hello"))
    outcomes = await start_both(server, "send", "receive", "send")
    assert outcomes == {"first": "sent", "second": "hello", "third": "sent"}
    assert [message["type"] for message in server.sent].count("websocket.accept") == 1
    assert server.sent[0] == ACCEPT


@pytest.mark.parametrize("second", ["accept", "send_event"])
async def test_an_explicit_accept_during_the_lazy_accept_waits_then_is_a_state_error(
    second: str,
) -> None:
    server = SlowConnect()
    outcomes = await start_both(server, "send", second)
    assert outcomes["first"] == "sent"
    assert isinstance(outcomes["second"], WebSocketStateError)
    assert "already accepted" in str(outcomes["second"])
    assert server.sent == [ACCEPT, {"type": "websocket.send", "text": "first"}]


@pytest.mark.parametrize(
    ("first", "second"), [("send", "receive"), ("receive", "send"), ("send", "send")]
)
@pytest.mark.parametrize(
    ("incoming", "code"),
    [([disconnect(1001)], 1001), ([], 1006)],
    ids=["client-left", "connection-lost"],
)
async def test_a_lazy_accept_the_server_fails_releases_the_waiting_task_with_the_disconnect(
    first: str, second: str, incoming: list[dict[str, Any]], code: int
) -> None:
    server = SlowConnect(*incoming)

    def break_the_connection() -> None:
        server.fail_sends_with = ConnectionResetError("peer reset")

    outcomes = await start_both(server, first, second, before_connect=break_the_connection)
    assert {name: (type(error), error.code) for name, error in outcomes.items()} == {
        "first": (WebSocketDisconnect, code),
        "second": (WebSocketDisconnect, code),
    }
    assert server.sent == []


@pytest.mark.parametrize("second", ["send", "receive"])
async def test_a_task_waiting_on_a_cancelled_lazy_accept_accepts_itself(second: str) -> None:
    server = SlowConnect(text("hello"))
    ws = server.websocket()
    outcomes: dict[str, Any] = {}
    first_scope = anyio.CancelScope()

    async def first_then_cancelled() -> None:
        with first_scope:
            await operate(ws, "send", "first", outcomes)

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(first_then_cancelled)
            await anyio.wait_all_tasks_blocked()
            tasks.start_soon(operate, ws, second, "second", outcomes)
            await anyio.wait_all_tasks_blocked()
            first_scope.cancel()  # say, a timeout around the first task's send
            await anyio.wait_all_tasks_blocked()
            server.connect_ready.set()
    assert outcomes == {"second": "sent" if second == "send" else "hello"}
    assert server.sent[0] == ACCEPT


# accept() and raw events: what the ASGI specification requires of them.


async def test_headers_from_a_generator_are_refused_rather_than_lost() -> None:
    server = connected()
    ws = server.websocket()
    headers = ((name, b"1") for name in [b"x-a"])
    with pytest.raises(TypeError, match="must be a list"):
        await ws.send_event({"type": "websocket.accept", "headers": headers})
    assert server.sent == []


async def test_accept_lowercases_header_names() -> None:
    server = connected()
    await server.websocket().accept(headers=[(b"X-Up", b"1")])
    assert server.sent[0]["headers"] == [(b"x-up", b"1")]


async def test_raw_accept_with_uppercase_header_names_is_refused() -> None:
    server = connected()
    with pytest.raises(ValueError, match="lowercase"):
        await server.websocket().send_event(
            {"type": "websocket.accept", "headers": [(b"X-Up", b"1")]}
        )
    assert server.sent == []


async def test_accept_refuses_a_sec_websocket_protocol_header() -> None:
    server = connected(subprotocols=["chat"])
    with pytest.raises(ValueError, match=r"accept\(subprotocol=...\)"):
        await server.websocket().accept(headers=[(b"sec-websocket-protocol", b"chat")])
    assert server.sent == []


async def test_raw_accept_with_a_subprotocol_not_offered_is_refused() -> None:
    server = connected(subprotocols=["chat"])
    with pytest.raises(ValueError, match="not offered"):
        await server.websocket().send_event({"type": "websocket.accept", "subprotocol": "x"})
    assert server.sent == []


async def test_raw_send_needs_a_byte_string() -> None:
    server = connected()
    ws = server.websocket()
    with pytest.raises(ValueError, match="'bytes' must be bytes, got memoryview"):
        await ws.send_event({"type": "websocket.send", "bytes": memoryview(b"x")})
    assert server.sent == [ACCEPT]


# Odd values: enums for codes, lone surrogates in text.


def test_caught_close_codes_take_int_enums() -> None:
    class Close(IntEnum):
        GOING_AWAY = 1001

    codes = FakeServer().websocket(caught_close_codes=[Close.GOING_AWAY]).caught_close_codes
    assert 1001 in codes
    assert 1000 not in codes


async def test_send_text_with_a_lone_surrogate_is_a_type_error() -> None:
    async def encoding_send(message: dict[str, Any]) -> None:
        if "text" in message:
            message["text"].encode("utf-8")  # what a real server does first

    server = connected()
    ws = WebSocket(server.scope, server.receive, encoding_send)
    with pytest.raises(TypeError, match="not valid Unicode"):
        await ws.send_text("\ud800")
    await ws.send_text("still usable")


async def test_send_json_binary_escapes_a_lone_surrogate() -> None:
    server = connected()
    ws = server.websocket()
    await ws.accept()
    await ws.send_json({"a": "\ud800", "b": "é"}, mode="binary")
    escaped = b'{"a":"\\ud800","b":"\\u00e9"}'
    assert server.sent == [ACCEPT, {"type": "websocket.send", "bytes": escaped}]


async def test_send_json_text_escapes_a_lone_surrogate_the_server_cannot_encode() -> None:
    server = connected()

    async def encoding_send(message: dict[str, Any]) -> None:
        if "text" in message:
            message["text"].encode("utf-8")  # what a server does before writing
        await server.send(message)

    ws = WebSocket(server.scope, server.receive, encoding_send)
    await ws.accept()
    await ws.send_json({"a": "\ud800"})
    await ws.send_json({"b": "é"})
    assert server.sent[1:] == [
        {"type": "websocket.send", "text": '{"a":"\\ud800"}'},
        {"type": "websocket.send", "text": '{"b":"é"}'},
    ]
    assert json.loads(server.sent[1]["text"]) == {"a": "\ud800"}


async def test_send_json_checks_its_mode_before_serialising() -> None:
    with pytest.raises(ValueError, match="'text' or 'binary'"):
        await connected().websocket().send_json(object(), mode="yaml")  # type: ignore[arg-type]


# The client's answer to the application's own close.


async def test_async_for_ends_quietly_when_the_client_answers_the_applications_close() -> None:
    server = connected(disconnect(4000))
    ws = server.websocket()
    await ws.accept()
    await ws.close(4000)  # the client's disconnect will echo 4000, which is not caught
    received = [message async for message in ws]
    assert received == []
    assert server.sent == [ACCEPT, close(4000)]


async def test_async_with_silences_the_answer_to_the_applications_own_close() -> None:
    server = connected(disconnect(4000))
    async with server.websocket() as ws:
        await ws.close(4000)
        await ws.receive_text()
    assert server.sent == [ACCEPT, close(4000)]


# A connection that breaks under a send.


async def test_a_receive_after_another_tasks_send_found_the_connection_broken_raises_1006() -> None:
    server = connected(disconnect(1006))
    ws = server.websocket()
    await ws.accept()
    server.fail_sends_with = ConnectionResetError()
    with pytest.raises(WebSocketDisconnect):
        await ws.send_text("lost")  # say, a chat peer relaying to this member
    with pytest.raises(WebSocketDisconnect) as info:
        await ws.receive_text()  # the member's own task: told the same, not a state error
    assert info.value.code == 1006
    with pytest.raises(WebSocketStateError, match="already disconnected"):
        await ws.receive_event()  # told once, as after any disconnect


async def test_event_mode_async_for_ends_after_a_send_found_the_connection_broken() -> None:
    server = connected(text("a"), disconnect(1001, "away"))
    ws = server.websocket(receive_type="event")
    events = []
    with anyio.fail_after(5):
        async for event in ws:
            events.append(event)
            if event["type"] == "websocket.receive":
                server.fail_sends_with = ConnectionResetError()
                with pytest.raises(WebSocketDisconnect):
                    await ws.send_text("reply")
    assert events == [text("a"), disconnect(1001, "away")]


# A send that finds the connection broken reports the server's own disconnect code.


async def test_a_send_after_the_client_closed_normally_raises_its_code() -> None:
    server = connected(disconnect(1000, "bye"))  # queued by the server, not yet received
    ws = server.websocket()
    await ws.accept()
    server.fail_sends_with = BrokenPipeError()  # uvicorn's ClientDisconnected is an OSError
    with pytest.raises(WebSocketDisconnect) as info:
        await ws.send_text("tick")
    assert (info.value.code, info.value.reason) == (1000, "bye")
    with pytest.raises(WebSocketDisconnect) as again:
        await ws.receive_text()  # another task's receive: told the same
    assert again.value.code == 1000


async def test_a_send_only_loop_under_async_with_ends_quietly_on_a_normal_close() -> None:
    server = connected(disconnect(1001))
    ws = server.websocket()
    sends = 0
    async with ws:
        await ws.send_text("first")
        sends += 1
        server.fail_sends_with = ConnectionResetError()  # the client has gone meanwhile
        while True:
            await ws.send_text("tick")
            sends += 1  # pragma: no cover - the send fails
    assert sends == 1
    assert ws.client_state is WebSocketState.DISCONNECTED


async def test_unread_client_messages_are_kept_for_later_receives() -> None:
    server = connected(text("unread"), binary(b"unread"), disconnect(4001, "gone"))
    ws = server.websocket(receive_type="event")
    await ws.accept()
    server.fail_sends_with = OSError("broken pipe")
    with pytest.raises(WebSocketDisconnect) as info:
        await ws.send_json({"a": 1})
    assert (info.value.code, info.value.reason) == (4001, "gone")
    assert not server.incoming  # read while looking for the disconnect, and kept:
    assert [event async for event in ws] == [
        text("unread"),
        binary(b"unread"),
        disconnect(4001, "gone"),
    ]


async def test_a_message_kept_after_a_broken_send_still_meets_the_size_limit() -> None:
    server = connected(text("x" * 20), disconnect(1000))
    ws = server.websocket(max_message_size=10)
    await ws.accept()
    server.fail_sends_with = OSError("broken pipe")
    with pytest.raises(WebSocketDisconnect):
        await ws.send_text("tick")
    with pytest.raises(MessageTooBig):
        await ws.receive_text()


class YieldingServer(FakeServer):
    """A fake server whose receive lets other tasks run first, as uvicorn's may."""

    async def receive(self) -> dict[str, Any]:
        await anyio.lowlevel.checkpoint()
        return await super().receive()


async def test_several_failed_senders_all_learn_the_code_without_waiting() -> None:
    server = YieldingServer([CONNECT, disconnect(1000)])
    ws = server.websocket()
    await ws.accept()
    server.fail_sends_with = ConnectionResetError()
    codes: list[int] = []

    async def sender() -> None:
        try:
            await ws.send_text("relayed")
        except WebSocketDisconnect as disconnect_:
            codes.append(disconnect_.code)

    started = anyio.current_time()
    async with anyio.create_task_group() as tasks:
        for _ in range(3):
            tasks.start_soon(sender)
    assert codes == [1000, 1000, 1000]
    assert anyio.current_time() - started < DISCONNECT_GRACE


async def test_a_timeout_error_from_the_servers_send_is_not_a_broken_connection() -> None:
    server = connected(text("kept"))
    ws = server.websocket()
    await ws.accept()
    server.fail_sends_with = TimeoutError()
    with pytest.raises(TimeoutError):
        await ws.send_text("slow")
    assert ws.client_state is WebSocketState.CONNECTED
    assert await ws.receive_text() == "kept"


async def test_a_receive_in_progress_gets_the_disconnect_and_the_send_waits_for_its_code() -> None:
    server = LiveServer()
    ws = server.websocket()
    await ws.accept()
    seen: dict[str, int] = {}

    async def receiver() -> None:
        try:
            await ws.receive_text()
        except WebSocketDisconnect as disconnect_:
            seen["receiver"] = disconnect_.code

    async def sender() -> None:
        try:
            await ws.send_text("relayed")
        except WebSocketDisconnect as disconnect_:
            seen["sender"] = disconnect_.code

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(receiver)
            await anyio.wait_all_tasks_blocked()
            server.fail_sends_with = ConnectionResetError()
            tasks.start_soon(sender)
            await anyio.wait_all_tasks_blocked()  # the sender waits for the receiver's news
            await server.deliver(disconnect(1001))
    assert seen == {"receiver": 1001, "sender": 1001}


async def test_without_a_disconnect_in_time_the_send_raises_1006() -> None:
    server = LiveServer()  # the server queued nothing: its receive waits
    ws = server.websocket()
    await ws.accept()
    server.fail_sends_with = ConnectionResetError()
    with anyio.fail_after(5), pytest.raises(WebSocketDisconnect) as info:
        await ws.send_text("lost")
    assert info.value.code == 1006
    await server.deliver(disconnect(1000))  # too late: the connection is recorded as lost
    assert await ws.receive_event() == {"type": "websocket.disconnect", "code": 1006, "reason": ""}
    with pytest.raises(WebSocketStateError):
        await ws.receive_event()


async def test_a_late_disconnect_for_a_receive_in_progress_keeps_the_1006() -> None:
    server = LiveServer()
    ws = server.websocket()
    await ws.accept()
    seen: list[int] = []

    async def receiver() -> None:
        try:
            await ws.receive_text()
        except WebSocketDisconnect as disconnect_:
            seen.append(disconnect_.code)

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(receiver)
        await anyio.wait_all_tasks_blocked()
        server.fail_sends_with = ConnectionResetError()
        with pytest.raises(WebSocketDisconnect) as info:
            await ws.send_text("lost")  # waits DISCONNECT_GRACE for the receiver, in vain
        assert info.value.code == 1006
        await server.deliver(disconnect(1000))
    assert seen == [1006]


async def test_a_server_whose_receive_fails_too_gives_1006() -> None:
    server = connected()  # the fake raises AssertionError on a receive it has nothing for
    ws = server.websocket()
    await ws.accept()
    server.fail_sends_with = ConnectionResetError()
    with pytest.raises(WebSocketDisconnect) as info:
        await ws.send_text("lost")
    assert info.value.code == 1006


async def test_json_nested_too_deeply_is_bad_client_data() -> None:
    ws = connected(text("[" * 100_000)).websocket()
    with pytest.raises(InvalidJSON, match="nested too deeply") as info:
        await ws.receive_json()
    assert ws._ending_of(info.value)[:2] == ("close", 1007)


async def test_async_for_uses_a_subclass_receive_text() -> None:
    class Shouting(WebSocket):
        async def receive_text(self, *, timeout: float | None = None) -> str:  # noqa: ASYNC109
            return (await super().receive_text(timeout=timeout)).upper()

    server = FakeServer([CONNECT, text("hi"), text("there"), disconnect(1000)])
    ws = Shouting(server.scope, server.receive, server.send)
    received = [message async for message in ws]
    assert received == ["HI", "THERE"]


async def test_ended_with_is_the_applications_close_code_else_the_clients() -> None:
    server = connected(disconnect(4001))
    ws = server.websocket()
    await ws.accept()
    assert ended_with(ws) is None  # open
    with pytest.raises(WebSocketDisconnect):
        await ws.receive_text()
    assert ended_with(ws) == 4001
    server = connected(disconnect(1000))
    ws = server.websocket()
    await ws.close(4002)
    await ws.receive_event()  # the client's answer to the close
    assert ended_with(ws) == 4002
    refused = connected().websocket()
    await refused.reject()
    assert ended_with(refused) is None


async def test_wait_closed_returns_the_clients_code_and_drops_its_messages() -> None:
    server = connected(text("ignored"), binary(b"ignored"), disconnect(4001, "bye"))
    ws = server.websocket()
    assert await ws.wait_closed() == 4001  # accepting first, lazily
    assert server.types() == ["websocket.accept"]
    assert await ws.wait_closed() == 4001  # it had left already
    await ws.ensure_closed()  # nothing to send: the client is gone
    assert server.types() == ["websocket.accept"]


async def test_wait_closed_returns_1009_for_a_message_over_the_limit() -> None:
    server = connected(text("x" * 100))
    ws = server.websocket(max_message_size=10)
    assert await ws.wait_closed() == 1009
    assert server.sent[-1] == {"type": "websocket.close", "code": 1009, "reason": "message too big"}


async def test_wait_closed_before_accept_without_auto_accept_is_a_state_error() -> None:
    ws = connected().websocket(auto_accept=False)
    with pytest.raises(WebSocketStateError):
        await ws.wait_closed()
