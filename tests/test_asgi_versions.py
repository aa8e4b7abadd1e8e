"""What bocws adapts to from the ASGI version a server declares, not from its name.

A server of ASGI 2.0 (no `spec_version`, no extensions: daphne) sends only close codes
1000 and 3000-4999 and drops empty messages unsaid; before 2.4 a send on a closing
connection may raise the server's own `RuntimeError`. tests/test_server_matrix.py
checks the same against the real servers.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

from bocws import WebSocket, WebSocketDisconnect
from bocws._codes import sendable_by_asgi2

from .fake import FakeServer, binary, connected, disconnect, text

pytestmark = pytest.mark.anyio


def server_of(asgi: dict[str, Any] | None, *incoming: dict[str, Any], **extra: Any) -> FakeServer:
    """A connected fake server whose scope declares `asgi` (`None`: no key at all)."""
    server = connected(*incoming, **extra)
    if asgi is None:
        del server.scope["asgi"]
    else:
        server.scope["asgi"] = asgi
    return server


ASGI_2_0 = {"version": "3.0"}


def asgi2_server(*incoming: dict[str, Any]) -> FakeServer:
    return server_of(ASGI_2_0, *incoming, denial_response=False)


@pytest.mark.parametrize(
    ("code", "sent"),
    [
        (1000, 1000),
        (1001, 1000),
        (1003, 4003),
        (1007, 4007),
        (1008, 4008),
        (1009, 4009),
        (1011, 4011),
        (1012, 4012),
        (3000, 3000),
        (4001, 4001),
        (4999, 4999),
    ],
)
def test_an_asgi2_server_gets_a_code_it_sends(code: int, sent: int) -> None:
    assert sendable_by_asgi2(code) == sent


async def test_an_asgi2_server_gets_4011_for_1011_and_the_log_says_why(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="bocws")
    server = asgi2_server()
    ws = server.websocket()
    await ws.accept()
    await ws.close(1011, "internal error")
    assert server.sent[-1] == {"type": "websocket.close", "code": 4011, "reason": "internal error"}
    [line] = [record.getMessage() for record in caplog.records]
    assert "closing with 4011 instead of 1011 (INTERNAL_ERROR)" in line
    assert "ASGI 2.0" in line


async def test_bad_data_on_an_asgi2_server_closes_with_the_twin_code() -> None:
    server = asgi2_server(binary(b"\x00"))
    ws = server.websocket()
    async with ws:
        await ws.receive_text()
    assert server.sent[-1]["code"] == 4003


@pytest.mark.parametrize("code", [1000, 3000, 4001])
async def test_an_asgi2_server_gets_the_codes_it_sends_as_they_are(code: int) -> None:
    server = asgi2_server()
    ws = server.websocket()
    await ws.accept()
    await ws.close(code)
    assert server.sent[-1]["code"] == code


async def test_a_refusal_on_an_asgi2_server_is_still_a_403() -> None:
    server = asgi2_server()
    ws = server.websocket()
    await ws.reject()
    assert server.sent == [{"type": "websocket.close", "code": 403, "reason": ""}]


@pytest.mark.parametrize(
    ("asgi", "extensions"),
    [({"version": "3.0", "spec_version": "2.3"}, False), (None, True), (ASGI_2_0, True)],
    ids=["spec-2.3", "testclient", "extensions-declared"],
)
async def test_other_servers_get_1011_as_it_is(
    asgi: dict[str, Any] | None, extensions: bool
) -> None:
    server = server_of(asgi, denial_response=extensions)
    ws = server.websocket()
    await ws.accept()
    await ws.close(1011)
    assert server.sent[-1]["code"] == 1011


@pytest.mark.parametrize(
    ("method", "empty"), [("send_text", ""), ("send_bytes", b""), ("send", "")]
)
async def test_an_empty_message_on_an_asgi2_server_is_refused_and_nothing_is_sent(
    method: str, empty: str | bytes
) -> None:
    server = asgi2_server()
    ws: WebSocket = server.websocket(value_type="bytes" if isinstance(empty, bytes) else "text")
    await ws.accept()
    with pytest.raises(ValueError, match="drops empty messages; nothing was sent"):
        await getattr(ws, method)(empty)
    assert server.types() == ["websocket.accept"]
    await ws.send_text("still open")
    assert server.sent[-1] == {"type": "websocket.send", "text": "still open"}


async def test_an_empty_message_elsewhere_is_sent() -> None:
    server = server_of({"version": "3.0", "spec_version": "2.3"})
    ws = server.websocket()
    await ws.send_text("")
    assert server.sent[-1] == {"type": "websocket.send", "text": ""}


@pytest.mark.parametrize("spec", ["2.3", None])
async def test_before_2_4_a_runtime_error_from_send_is_the_client_leaving(
    spec: str | None,
) -> None:
    asgi = {"version": "3.0"} if spec is None else {"version": "3.0", "spec_version": spec}
    server = server_of(asgi, disconnect(1000, "bye"), denial_response=False)
    ws = server.websocket()
    await ws.accept()
    server.fail_sends_with = RuntimeError("Attempt to send on a closed protocol")
    with pytest.raises(WebSocketDisconnect) as error:
        await ws.send_text("echo")
    assert (error.value.code, error.value.reason) == (1000, "bye")  # the client's own close


async def test_from_2_4_a_runtime_error_from_send_is_the_servers_error() -> None:
    server = connected(text("hi"))
    ws = server.websocket()
    await ws.accept()
    server.fail_sends_with = RuntimeError("a bug in a middleware")
    with pytest.raises(RuntimeError, match="a bug in a middleware"):
        await ws.send_text("echo")
    assert await ws.receive_text() == "hi"  # the connection was not taken for broken
