"""Each example works as documented: through Starlette's TestClient, a real uvicorn in the
test's loop, and (for the README's demo) the `uvicorn` command itself."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient, WebSocketDenialResponse
from websockets.asyncio.client import ClientConnection

from bocws import WebSocketDisconnect
from examples import auth, chat, echo, fastapi_app, starlette_app
from tests.test_server import TIMEOUT, client, recv, refused, running_server

ROOT = Path(__file__).resolve().parent.parent
LOCAL_EPHEMERAL = ["--host", "127.0.0.1", "--port", "0"]


# echo


def test_echo_serves_its_page() -> None:
    response = TestClient(echo.app).get("/")
    assert response.status_code == 200
    assert "new WebSocket(" in response.text
    assert "/echo" in response.text


def test_echo_echoes_text() -> None:
    with TestClient(echo.app).websocket_connect("/echo") as session:
        session.send_text("hello")
        assert session.receive_text() == "hello"
        session.send_text("é 🥪")
        assert session.receive_text() == "é 🥪"


# chat


def test_chat_serves_its_page() -> None:
    response = TestClient(chat.app).get("/")
    assert response.status_code == 200
    assert "new WebSocket(" in response.text
    assert "`chat/${" in response.text  # relative to the page: it works mounted too
    assert "textContent" in response.text  # user text is never inserted as HTML


def test_chat_relays_a_message_to_the_sender() -> None:
    with TestClient(chat.app).websocket_connect("/chat/solo") as session:
        session.send_json({"user": "ana", "text": "hi"})
        assert session.receive_json() == {"user": "ana", "text": "hi"}
    assert "solo" not in chat.rooms  # the last member left: the room is gone


@pytest.mark.parametrize(
    "message",
    [
        {"user": "ana"},
        {"user": "ana", "text": 3},
        {"user": "", "text": "hi"},
        {"user": "ana", "text": ""},
        {"user": "a" * 33, "text": "hi"},
        {"user": "ana", "text": "hi", "admin": True},
        ["ana", "hi"],
    ],
)
def test_chat_closes_1008_on_a_malformed_message(message: object) -> None:
    with TestClient(chat.app).websocket_connect("/chat/strict") as session:
        session.send_json(message)
        with pytest.raises(WebSocketDisconnect) as info:
            session.receive_text()
    assert info.value.code == 1008
    assert "strict" not in chat.rooms


def test_chat_closes_1007_on_invalid_json() -> None:
    with TestClient(chat.app).websocket_connect("/chat/strict") as session:
        session.send_text("{not json")
        with pytest.raises(WebSocketDisconnect) as info:
            session.receive_text()
    assert info.value.code == 1007


def test_chat_closes_1009_on_an_oversized_message_before_parsing_it() -> None:
    with TestClient(chat.app).websocket_connect("/chat/big") as session:
        session.send_text("[" * chat.MAX_MESSAGE_BYTES + "x")
        with pytest.raises(WebSocketDisconnect) as info:
            session.receive_text()
    assert (info.value.code, info.value.reason) == (1009, "message too big")
    assert "big" not in chat.rooms


def test_chat_refuses_another_sites_page() -> None:
    headers = {"origin": "https://evil.test"}
    with (
        pytest.raises(WebSocketDisconnect) as info,
        TestClient(chat.app).websocket_connect("/chat/a", headers=headers),
    ):
        pass  # pragma: no cover - the handshake is refused
    assert info.value.code == 403


async def receive_json(connection: ClientConnection) -> object:
    return json.loads(await recv(connection))


async def relayed(sender: ClientConnection, text: str, *others: ClientConnection) -> None:
    """Send a chat message; check that the sender and `others`, in order, receive it."""
    message = {"user": "someone", "text": text}
    await sender.send(json.dumps(message))
    for member in (sender, *others):
        assert await receive_json(member) == message


async def until(condition: Callable[[], bool]) -> None:
    """Wait, bounded, for server-side state that no message reports."""
    deadline = asyncio.get_running_loop().time() + TIMEOUT
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


@pytest.mark.anyio
async def test_chat_relays_within_a_room_only_and_forgets_leavers() -> None:
    async with running_server(chat.app, "websockets-sansio") as base:  # type: ignore[arg-type]
        async with client(f"{base}/chat/a") as ana, client(f"{base}/chat/b") as eve:
            # A member's own message coming back proves it has joined.
            await relayed(ana, "ana here")
            await relayed(eve, "eve here")
            async with client(f"{base}/chat/a") as bob:
                await relayed(bob, "bob here", ana)
                await relayed(ana, "hello a", bob)
            await until(lambda: len(chat.rooms["a"]) == 1)  # Bob left: the room forgot him
            await relayed(ana, "still here")
            # Eve's next message is the first thing she receives: nothing from room a leaked.
            await relayed(eve, "bye")
        await until(lambda: chat.rooms == {})


@pytest.mark.anyio
async def test_chat_survives_a_member_that_vanishes() -> None:
    async with (
        running_server(chat.app, "websockets-sansio") as base,  # type: ignore[arg-type]
        client(f"{base}/chat/c") as ana,
    ):
        await relayed(ana, "first")
        async with client(f"{base}/chat/c") as bob:
            await relayed(bob, "about to vanish", ana)
            bob.transport.abort()  # no close frame: the TCP connection just ends
        for number in range(3):
            await relayed(ana, f"message {number}")
        await until(lambda: len(chat.rooms["c"]) == 1)


# auth


def test_auth_refuses_a_missing_token_with_403() -> None:
    with (
        pytest.raises(WebSocketDisconnect) as info,
        TestClient(auth.app).websocket_connect("/private"),
    ):
        pass  # pragma: no cover - the handshake is refused
    assert info.value.code == 403  # the close before accept that servers answer with HTTP 403


def test_auth_accepts_a_token_in_the_query_string() -> None:
    with TestClient(auth.app).websocket_connect("/private?token=alice-token") as session:
        assert session.receive_text() == "hello alice"
        session.send_text("hi")
        assert session.receive_text() == "alice: hi"


def test_auth_accepts_a_token_in_a_cookie_set_by_login() -> None:
    with TestClient(auth.app) as test_client:
        response = test_client.get("/login?token=bob-token", follow_redirects=False)
        assert response.status_code == 303
        assert "token=bob-token" in response.headers["set-cookie"]
        test_client.cookies.set("token", "bob-token")
        with test_client.websocket_connect("/private") as session:
            assert session.receive_text() == "hello bob"


def test_auth_refuses_a_cookie_carried_by_another_sites_page() -> None:
    test_client = TestClient(auth.app)
    test_client.cookies.set("token", "bob-token")
    with (
        pytest.raises(WebSocketDisconnect) as info,
        test_client.websocket_connect("/private", headers={"origin": "https://evil.test"}),
    ):
        pass  # pragma: no cover - the handshake is refused
    assert info.value.code == 403
    headers = {"origin": "http://testserver"}  # the app's own page
    with test_client.websocket_connect("/private", headers=headers) as session:
        assert session.receive_text() == "hello bob"


def test_auth_login_refuses_an_unknown_token() -> None:
    assert TestClient(auth.app).get("/login?token=nope").status_code == 401


def test_auth_explained_refuses_with_401_and_a_body() -> None:
    with (
        pytest.raises(WebSocketDenialResponse) as info,
        TestClient(auth.app).websocket_connect("/private/explained?token=nope"),
    ):
        pass  # pragma: no cover - the handshake is refused
    assert info.value.status_code == 401
    assert info.value.text == "a valid token is required"
    assert info.value.headers["www-authenticate"] == "Token"


@pytest.mark.anyio
async def test_auth_refusals_over_uvicorn() -> None:
    async with running_server(auth.app, "websockets-sansio") as base:  # type: ignore[arg-type]
        assert (await refused(f"{base}/private?token=nope")).response.status_code == 403
        denial = (await refused(f"{base}/private/explained")).response
        assert denial.status_code == 401
        assert denial.body == b"a valid token is required"
        async with client(f"{base}/private/explained?token=alice-token") as connection:
            assert await recv(connection) == "hello alice"


# Starlette and FastAPI apps


def test_starlette_app_keeps_its_own_routes() -> None:
    response = TestClient(starlette_app.app).get("/")
    assert response.status_code == 200
    assert "/ws/echo" in response.text


def test_starlette_app_serves_a_bocws_view_with_a_query_parameter() -> None:
    test_client = TestClient(starlette_app.app)
    with test_client.websocket_connect("/ws/echo?uppercase=yes") as session:
        session.send_json("shout")
        assert session.receive_json() == "SHOUT"
    with test_client.websocket_connect("/ws/echo") as session:
        session.send_json({"a": [1]})
        assert session.receive_json() == {"a": [1]}


def test_starlette_app_mounts_the_chat() -> None:
    test_client = TestClient(starlette_app.app)
    assert "new WebSocket(" in test_client.get("/bocws/").text
    with test_client.websocket_connect("/bocws/chat/lobby") as session:
        session.send_json({"user": "ana", "text": "hi"})
        assert session.receive_json() == {"user": "ana", "text": "hi"}


def test_fastapi_app_keeps_its_own_routes() -> None:
    response = TestClient(fastapi_app.app).get("/")
    assert response.status_code == 200
    assert "/ws/count" in response.json()["message"]


def test_fastapi_app_serves_a_class_based_view() -> None:
    with TestClient(fastapi_app.app).websocket_connect("/ws/count") as session:
        for count in (1, 2, 3):
            session.send_json(["ping", count])
            assert session.receive_json() == {"count": count, "message": ["ping", count]}


def test_fastapi_app_mounts_the_chat() -> None:
    with TestClient(fastapi_app.app).websocket_connect("/bocws/chat/lobby") as session:
        session.send_json({"user": "ana", "text": "hi"})
        assert session.receive_json() == {"user": "ana", "text": "hi"}


# The README's demo, with the uvicorn command itself.


@pytest.fixture
def chat_under_uvicorn() -> Iterator[str]:
    """Run `uvicorn examples.chat:app` on a free port; yield its base URL."""
    with subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "examples.chat:app", *LOCAL_EPHEMERAL],
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    ) as process:
        try:
            assert process.stderr is not None
            for _ in range(50):  # uvicorn logs a handful of lines before the address
                line = process.stderr.readline()
                found = re.search(r"Uvicorn running on http://127\.0\.0\.1:(\d+)", line)
                if found:
                    yield f"127.0.0.1:{found.group(1)}"
                    break
            else:
                pytest.fail("uvicorn did not report its address")
        finally:
            process.terminate()
            process.wait(TIMEOUT)


@pytest.mark.anyio
async def test_chat_runs_under_the_uvicorn_command(chat_under_uvicorn: str) -> None:
    async with httpx.AsyncClient(timeout=TIMEOUT) as http:
        page = await http.get(f"http://{chat_under_uvicorn}/")
    assert page.status_code == 200
    async with client(f"ws://{chat_under_uvicorn}/chat/demo") as connection:
        await connection.send(json.dumps({"user": "ana", "text": "hi"}))
        assert await receive_json(connection) == {"user": "ana", "text": "hi"}
