"""Code written for Starlette's WebSocket keeps working on bocws's, under TestClient.

Each test is Starlette-style code: `iter_text()`/`iter_bytes()`/`iter_json()`, state
comparisons with `starlette.websockets.WebSocketState`, JSON in binary frames on a JSON
route, and the `headers` list of `accept()`.
"""

from __future__ import annotations

from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocketState

from bocws import App, WebSocket, WebSocketDisconnect, websocket_view

from .fake import CONNECT, FakeServer, disconnect, text

pytestmark = pytest.mark.anyio


def app_with(view: Any, **options: Any) -> Starlette:
    return Starlette(routes=[WebSocketRoute("/ws", websocket_view(view, **options))])


def test_iter_text_iter_bytes_and_iter_json_as_in_starlette() -> None:
    seen: list[Any] = []

    async def texts(websocket: WebSocket) -> None:
        await websocket.accept()
        async for message in websocket.iter_text():
            await websocket.send_text(message.upper())
        seen.append("texts ended")

    async def blobs(websocket: WebSocket) -> None:
        await websocket.accept()
        async for data in websocket.iter_bytes():
            await websocket.send_bytes(data[::-1])

    async def documents(websocket: WebSocket) -> None:
        await websocket.accept()
        async for document in websocket.iter_json():
            await websocket.send_json({"got": document})

    client = TestClient(
        Starlette(
            routes=[
                WebSocketRoute("/texts", websocket_view(texts)),
                WebSocketRoute("/blobs", websocket_view(blobs)),
                WebSocketRoute("/documents", websocket_view(documents)),
            ]
        )
    )
    with client.websocket_connect("/texts") as session:
        session.send_text("hi")
        assert session.receive_text() == "HI"
        session.close(1000)
    with client.websocket_connect("/blobs") as session:
        session.send_bytes(b"abc")
        assert session.receive_bytes() == b"cba"
    with client.websocket_connect("/documents") as session:
        session.send_json({"a": 1})
        assert session.receive_json() == {"got": {"a": 1}}
        session.send_bytes(b"[2]")  # JSON in a binary frame, as Starlette's encoding="json"
        assert session.receive_json() == {"got": [2]}
    assert seen == ["texts ended"]


async def test_iter_text_raises_a_disconnect_that_is_not_caught() -> None:
    ws = FakeServer([CONNECT, text("a"), disconnect(4000)]).websocket()
    received = []

    async def read_all() -> None:
        async for message in ws.iter_text():
            received.append(message)

    with pytest.raises(WebSocketDisconnect) as raised:
        await read_all()
    assert raised.value.code == 4000
    assert received == ["a"]
    caught = FakeServer([CONNECT, text("a"), disconnect(4000)]).websocket(caught_close_codes=all)
    assert [message async for message in caught.iter_text()] == ["a"]


def test_states_compare_equal_to_starlettes_both_ways() -> None:
    states: list[tuple[Any, Any]] = []

    async def view(websocket: WebSocket) -> None:
        states.append((websocket.client_state, websocket.application_state))
        await websocket.accept()
        states.append((websocket.client_state, websocket.application_state))
        assert websocket.client_state == WebSocketState.CONNECTED
        assert websocket.application_state == WebSocketState.CONNECTED
        await websocket.close()
        states.append((websocket.client_state, websocket.application_state))

    with TestClient(app_with(view, auto_accept=False)).websocket_connect("/ws") as session:
        assert session.receive()["type"] == "websocket.close"
    assert states == [
        (WebSocketState.CONNECTING, WebSocketState.CONNECTING),
        (WebSocketState.CONNECTED, WebSocketState.CONNECTED),
        (WebSocketState.CONNECTED, WebSocketState.DISCONNECTED),
    ]


async def test_accept_always_sends_a_headers_list() -> None:
    explicit = FakeServer([CONNECT])
    await explicit.websocket().accept()
    lazy = FakeServer([CONNECT])
    await lazy.websocket().send_text("hi")
    with_headers = FakeServer([CONNECT])
    await with_headers.websocket().accept(headers=[(b"X-Token", b"1")])
    assert explicit.sent[0] == {"type": "websocket.accept", "subprotocol": None, "headers": []}
    assert lazy.sent[0] == explicit.sent[0]
    assert with_headers.sent[0]["headers"] == [(b"x-token", b"1")]


def test_a_json_route_takes_binary_frames_and_closes_1007_on_invalid_utf8() -> None:
    app = App()

    @app.websocket_route("/json", value_type="json")
    async def echo(ws: WebSocket) -> None:
        async for message in ws:
            await ws.send(message)

    with TestClient(app).websocket_connect("/json") as session:
        session.send_bytes('{"é": 1}'.encode())
        assert session.receive_json() == {"é": 1}
        session.send_bytes(b"\xc3(")
        assert session.receive() == {
            "type": "websocket.close",
            "code": 1007,
            "reason": "invalid JSON",
        }
