"""Message kinds as codecs: the built-in four, and a kind written only from the docs.

A kind of message is one object (`bocws.Codec`): the built-in kinds are in
`bocws._codecs.CODECS`, and any object following the contract goes wherever a kind's
name goes (`WebSocket`, routes, class-based views). These tests use `Packed`, a codec
written here from the docstring of `Codec` alone, through every way a message is
received and sent, and through the one close rule for what it refuses.
"""

from __future__ import annotations

import logging
import struct
import typing
from typing import Any

import pytest
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from bocws import (
    App,
    Codec,
    InvalidJSON,
    InvalidMessage,
    MessageTypeError,
    WebSocket,
    WebSocketView,
    websocket_view,
)
from bocws._codecs import BYTES, CODECS, EVENT, JSON, TEXT, MessageType, codec_for

from .fake import binary, connected, disconnect, text

pytestmark = pytest.mark.anyio


class Packed(Codec):
    """Pairs of ints, packed as two little-endian int32 in a binary frame."""

    name = "packed"

    def decode(self, data: str | bytes) -> tuple[int, int]:
        if isinstance(data, str):
            raise MessageTypeError("bytes", "text", "receive()")
        if len(data) != 8:
            raise InvalidMessage(f"a pair is 8 bytes, got {len(data)}")
        pair: tuple[int, int] = struct.unpack("<ii", data)
        return pair

    def encode(self, value: Any) -> bytes:
        try:
            return struct.pack("<ii", *value)
        except (struct.error, TypeError) as error:
            raise TypeError(f"cannot pack {value!r}: {error}") from None


def pair(a: int, b: int) -> bytes:
    return struct.pack("<ii", a, b)


# The registry.


def test_the_built_in_kinds_are_the_names_type_checkers_know() -> None:
    assert list(CODECS) == list(typing.get_args(MessageType))
    assert [CODECS[name] for name in CODECS] == [TEXT, BYTES, JSON, EVENT]
    assert all(codec.name == name for name, codec in CODECS.items())


def test_codec_for_takes_a_name_or_a_codec() -> None:
    packed = Packed()
    assert codec_for("receive_type", "json") is JSON
    assert codec_for("receive_type", packed) is packed


def test_codec_for_takes_any_object_with_decode_and_encode() -> None:
    class Plain:  # not a Codec subclass: the contract is the members
        name = "plain"

        def decode(self, data: str | bytes) -> Any:
            return data

        def encode(self, value: Any) -> str:
            return str(value)

    plain = Plain()
    assert codec_for("value_type", plain) is plain


def test_an_unknown_kind_name_is_a_value_error_that_lists_the_kinds() -> None:
    with pytest.raises(ValueError, match=r"unknown receive_type 'xml': use one of text, bytes"):
        codec_for("receive_type", "xml")


def test_an_object_that_is_no_codec_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="send_type must be one of 'text'"):
        codec_for("send_type", 42)


def test_the_built_in_codecs_decode_their_kind_and_refuse_the_other() -> None:
    assert TEXT.decode("é") == "é"
    assert BYTES.decode(b"\x00") == b"\x00"
    assert JSON.decode('{"a":1}') == {"a": 1}
    assert JSON.decode(b'{"a":1}') == {"a": 1}
    with pytest.raises(MessageTypeError) as error:
        TEXT.decode(b"x")
    assert (error.value.expected, error.value.received) == ("text", "bytes")
    with pytest.raises(MessageTypeError):
        BYTES.decode("x")
    with pytest.raises(InvalidJSON, match="not valid UTF-8"):
        JSON.decode(b"\xff")
    with pytest.raises(InvalidJSON):
        JSON.decode("NaN")
    with pytest.raises(TypeError):
        EVENT.decode("x")


def test_the_built_in_codecs_encode_their_kind_and_refuse_the_rest() -> None:
    assert TEXT.encode("a") == "a"
    assert BYTES.encode(bytearray(b"a")) == b"a"
    assert BYTES.encode(b"a").__class__ is bytes
    assert JSON.encode({"a": [1, None]}) == '{"a":[1,null]}'
    with pytest.raises(TypeError, match="use send_bytes"):
        TEXT.encode(b"a")
    with pytest.raises(TypeError, match="use send_text"):
        BYTES.encode("a")
    with pytest.raises(TypeError):
        JSON.encode({1, 2})
    with pytest.raises(TypeError):
        EVENT.encode({"type": "websocket.send", "text": "a"})


# A kind of one's own, on a plain WebSocket.


async def test_receive_and_send_speak_a_codec_given_as_value_type() -> None:
    server = connected(binary(pair(1, 2)))
    ws = server.websocket(value_type=Packed())
    assert await ws.receive() == (1, 2)
    await ws.send((3, 4))
    assert server.sent[-1] == {"type": "websocket.send", "bytes": pair(3, 4)}
    assert isinstance(ws.receive_type, Packed)
    assert ws.send_type is ws.receive_type


async def test_async_for_yields_decoded_values_until_a_normal_close() -> None:
    server = connected(binary(pair(1, 2)), binary(pair(5, 6)), disconnect(1000))
    ws = server.websocket(receive_type=Packed())
    assert [item async for item in ws] == [(1, 2), (5, 6)]


async def test_a_codec_for_one_direction_leaves_the_other_text() -> None:
    server = connected(binary(pair(7, 8)))
    ws = server.websocket(receive_type=Packed())
    await ws.send(str(await ws.receive()))
    assert server.sent[-1] == {"type": "websocket.send", "text": "(7, 8)"}


async def test_a_frame_the_codec_refuses_is_the_clients_bad_data_and_the_socket_stays_open() -> (
    None
):
    server = connected(text("(1, 2)"), binary(b"short"), binary(pair(1, 1)))
    ws = server.websocket(value_type=Packed())
    with pytest.raises(MessageTypeError, match="use receive_text"):
        await ws.receive()
    with pytest.raises(InvalidMessage, match="a pair is 8 bytes, got 5"):
        await ws.receive()
    assert await ws.receive() == (1, 1)


async def test_a_value_the_codec_cannot_encode_sends_nothing() -> None:
    server = connected()
    ws = server.websocket(value_type=Packed())
    await ws.accept()
    with pytest.raises(TypeError, match="cannot pack"):
        await ws.send("not a pair")
    assert server.types() == ["websocket.accept"]
    await ws.send((0, 0))
    assert server.types() == ["websocket.accept", "websocket.send"]


async def test_a_codec_that_encodes_to_neither_str_nor_bytes_is_a_type_error() -> None:
    class Broken(Packed):
        def encode(self, value: Any) -> Any:
            return value

    server = connected()
    ws = server.websocket(send_type=Broken())
    await ws.accept()
    with pytest.raises(TypeError, match=r"encode\(\) returned int: a codec's encode\(\) returns"):
        await ws.send(1)
    assert server.types() == ["websocket.accept"]


async def test_a_codec_sends_text_frames_for_str_payloads() -> None:
    class Upper(Codec):
        name = "upper"

        def decode(self, data: str | bytes) -> Any:
            return data

        def encode(self, value: Any) -> str:
            return str(value).upper()

    server = connected()
    ws = server.websocket(send_type=Upper())
    await ws.send("hi")
    assert server.sent[-1] == {"type": "websocket.send", "text": "HI"}


@pytest.mark.parametrize(
    ("frame", "code", "reason"),
    [
        (text("(1, 2)"), 1003, "unsupported frame type"),
        (binary(b"short"), 1007, "invalid message"),
    ],
)
async def test_async_with_closes_for_what_the_codec_refuses_by_the_one_rule(
    frame: dict[str, Any], code: int, reason: str
) -> None:
    server = connected(frame)
    ws = server.websocket(value_type=Packed())
    async with ws:
        await ws.receive()
    assert server.sent[-1] == {"type": "websocket.close", "code": code, "reason": reason}


async def test_a_decode_that_fails_otherwise_is_the_applications_error() -> None:
    class Buggy(Packed):
        def decode(self, data: str | bytes) -> Any:
            raise KeyError("a bug")

    server = connected(binary(pair(1, 2)))
    ws = server.websocket(value_type=Buggy())
    with pytest.raises(KeyError):
        async with ws:
            await ws.receive()
    assert server.sent[-1]["code"] == 1011


async def test_a_disconnect_ends_a_codecs_receive_with_its_code() -> None:
    server = connected(disconnect(4000, "bye"))
    ws = server.websocket(value_type=Packed())
    with pytest.raises(WebSocketDisconnect) as error:
        await ws.receive()
    assert (error.value.code, error.value.reason) == (4000, "bye")


# Routes and views take a codec as they take a kind's name.


def test_a_route_speaks_the_codec_and_closes_for_what_it_refuses(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = App()

    @app.websocket_route("/sum", value_type=Packed())
    async def add(ws: WebSocket) -> None:
        async for a, b in ws:
            await ws.send((a + b, a - b))

    caplog.set_level(logging.INFO, logger="bocws")
    with TestClient(app) as client, client.websocket_connect("/sum") as session:
        session.send_bytes(pair(5, 3))
        assert session.receive_bytes() == pair(8, 2)
        session.send_bytes(b"\x01")
        closed = session.receive()
    assert closed == {"type": "websocket.close", "code": 1007, "reason": "invalid message"}
    assert "a pair is 8 bytes, got 1" in caplog.text
    assert "ERROR" not in [record.levelname for record in caplog.records]


def test_a_class_view_gets_decoded_values_in_on_message() -> None:
    class Sums(WebSocketView):
        value_type = Packed()

        async def on_message(self, ws: WebSocket, message: Any) -> None:
            a, b = message
            await ws.send((a + b, 0))

    app = App()
    app.websocket_route("/sums")(Sums)
    with TestClient(app) as client, client.websocket_connect("/sums") as session:
        session.send_bytes(pair(2, 2))
        assert session.receive_bytes() == pair(4, 0)


def test_websocket_view_takes_a_codec() -> None:
    @websocket_view(receive_type=Packed(), send_type="json")
    async def view(ws: WebSocket) -> None:
        a, b = await ws.receive()
        await ws.send({"product": a * b})

    with TestClient(view).websocket_connect("/") as session:
        session.send_bytes(pair(6, 7))
        assert session.receive_json() == {"product": 42}


def test_a_route_refuses_what_is_no_kind_when_declared() -> None:
    async def view(ws: WebSocket) -> None:
        raise AssertionError("never called")

    app = App()
    with pytest.raises(TypeError, match="value_type must be one of"):
        app.websocket_route("/x", value_type=3.5)(view)
    with pytest.raises(ValueError, match="unknown receive_type 'xml'"):
        app.websocket_route("/x", receive_type="xml")(view)
