"""The WebSocket inside a Starlette app, driven by Starlette's TestClient."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.authentication import AuthCredentials, AuthenticationBackend, SimpleUser
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import HTTPConnection
from starlette.responses import PlainTextResponse
from starlette.routing import WebSocketRoute
from starlette.testclient import TestClient, WebSocketDenialResponse
from starlette.types import Receive, Scope, Send

from bocws import WebSocket, WebSocketDisconnect

View = Callable[[WebSocket], Awaitable[None]]


class Endpoint:
    """A plain ASGI endpoint running `view` on a bocws WebSocket."""

    def __init__(self, view: View, **options: Any) -> None:
        self.view = view
        self.options = options

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        ws = WebSocket(scope, receive, send, **self.options)
        try:
            await self.view(ws)
        except WebSocketDisconnect as disconnect:
            if disconnect.code not in ws.caught_close_codes:
                raise
        await ws.ensure_closed()


class TokenBackend(AuthenticationBackend):
    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, SimpleUser] | None:
        token = conn.query_params.get("token")
        if token is None:
            return None
        return AuthCredentials(["chat"]), SimpleUser(token)


async def echo(ws: WebSocket) -> None:
    async for message in ws:
        await ws.send(message)


async def reject(ws: WebSocket) -> None:
    await ws.reject()


async def deny(ws: WebSocket) -> None:
    await ws.reject(PlainTextResponse("who are you?", status_code=401))


async def whoami(ws: WebSocket) -> None:
    await ws.send_json(
        {
            "user": ws.user.display_name if ws.user.is_authenticated else None,
            "scopes": ws.auth.scopes,
            "visits": ws.session.get("visits", 0),
            "room": ws.path_params["room"],
        }
    )


async def close_4001(ws: WebSocket) -> None:
    await ws.close(4001, "custom")


def make_app() -> Starlette:
    return Starlette(
        routes=[
            WebSocketRoute("/echo", Endpoint(echo)),
            WebSocketRoute("/json", Endpoint(echo, value_type="json")),
            WebSocketRoute("/reject", Endpoint(reject)),
            WebSocketRoute("/deny", Endpoint(deny)),
            WebSocketRoute("/whoami/{room}", Endpoint(whoami)),
            WebSocketRoute("/close", Endpoint(close_4001)),
        ],
        middleware=[
            Middleware(SessionMiddleware, secret_key="test-secret"),
            Middleware(AuthenticationMiddleware, backend=TokenBackend()),
        ],
    )


@pytest.fixture
def client() -> TestClient:
    return TestClient(make_app())


def test_text_echo(client: TestClient) -> None:
    with client.websocket_connect("/echo") as session:
        for n in range(3):
            session.send_text(f"message {n}")
            assert session.receive_text() == f"message {n}"


def test_json_echo(client: TestClient) -> None:
    with client.websocket_connect("/json") as session:
        session.send_json({"user": "ana", "text": "hé"})
        assert session.receive_json() == {"user": "ana", "text": "hé"}


def test_json_in_binary_frames_is_taken_too(client: TestClient) -> None:
    with client.websocket_connect("/json") as session:
        session.send_json({"user": "ana", "text": "hé"}, mode="binary")
        assert session.receive_json() == {"user": "ana", "text": "hé"}


def test_the_accept_carries_a_headers_list_as_starlettes_does(client: TestClient) -> None:
    with client.websocket_connect("/echo") as session:
        assert session.extra_headers == []


def test_reject_is_seen_as_403(client: TestClient) -> None:
    with pytest.raises(WebSocketDisconnect) as info, client.websocket_connect("/reject"):
        pass  # pragma: no cover
    assert info.value.code == 403


def test_denial_response_is_seen_with_status_and_body(client: TestClient) -> None:
    with pytest.raises(WebSocketDenialResponse) as info, client.websocket_connect("/deny"):
        pass  # pragma: no cover
    assert info.value.status_code == 401
    assert info.value.content == b"who are you?"


def test_user_auth_session_and_path_params_from_middleware(client: TestClient) -> None:
    with client.websocket_connect("/whoami/lobby?token=ana") as session:
        assert session.receive_json() == {
            "user": "ana",
            "scopes": ["chat"],
            "visits": 0,
            "room": "lobby",
        }


def test_anonymous_user(client: TestClient) -> None:
    with client.websocket_connect("/whoami/kitchen") as session:
        assert session.receive_json()["user"] is None


def test_close_code_and_reason_reach_the_client(client: TestClient) -> None:
    with client.websocket_connect("/close") as session:
        message = session.receive()
    assert message == {"type": "websocket.close", "code": 4001, "reason": "custom"}


def test_client_close_ends_the_view_cleanly(client: TestClient) -> None:
    with client.websocket_connect("/echo") as session:
        session.send_text("one")
        assert session.receive_text() == "one"
        session.close(1001)
