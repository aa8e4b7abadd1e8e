"""Each example works as documented: through Starlette's TestClient, a real uvicorn in the
test's loop, and (for the README's demo) the `uvicorn` command itself."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient, WebSocketDenialResponse
from websockets.asyncio.client import ClientConnection

from bocws import WebSocketDisconnect
from bocws.broadcast import id_key
from examples import auth, chat, echo, fastapi_app, rpc, starlette_app, typed
from tests.live_server import TIMEOUT, client, recv, refused, running_server
from tests.processes import Uvicorn

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


# typed


def test_typed_answers_requests_with_models() -> None:
    with TestClient(typed.app).websocket_connect("/todo") as session:
        session.send_text('{"op": "add", "title": "water the plants", "due": "2026-12-24"}')
        item = {"id": 1, "title": "water the plants", "due": "2026-12-24", "done": False}
        assert json.loads(session.receive_text()) == {"ok": True, "items": [item], "error": None}
        session.send_bytes(b'{"op": "done", "id": 1}')  # JSON in a binary frame too
        done = {**item, "done": True}
        assert json.loads(session.receive_text())["items"] == [done]
        session.send_text('{"op": "done", "id": 7}')
        assert json.loads(session.receive_text()) == {
            "ok": False,
            "items": [],
            "error": "no item 7",
        }
        session.send_text('{"op": "show"}')
        assert json.loads(session.receive_text())["items"] == [done]


@pytest.mark.parametrize(
    ("request_text", "detail"),
    [
        (
            '{"op": "done", "id": "first"}',
            {
                "type": "int_parsing",
                "loc": ["done", "id"],
                "msg": "Input should be a valid integer, unable to parse string as an integer",
            },
        ),
        ('{"op": "add", "title": ""}', {"type": "string_too_short", "loc": ["add", "title"]}),
        ('{"op": "fly"}', {"type": "union_tag_invalid", "loc": []}),
        ("{oops", {"type": "json_invalid", "loc": []}),
    ],
    ids=["wrong type", "too short", "unknown op", "not JSON"],
)
def test_typed_answers_bad_requests_and_stays_open(
    request_text: str, detail: dict[str, Any]
) -> None:
    with TestClient(typed.app).websocket_connect("/todo") as session:
        session.send_text(request_text)
        error = json.loads(session.receive_text())
        assert error["type"] == "error"
        assert error["error"] == "invalid message"
        [entry] = error["detail"]
        assert entry.items() >= detail.items()
        assert "first" not in json.dumps(error)  # the input is never echoed
        session.send_text('{"op": "show"}')  # still open, still serving
        assert json.loads(session.receive_text()) == {"ok": True, "items": [], "error": None}


def test_typed_sums_with_msgspec() -> None:
    with TestClient(typed.app).websocket_connect("/sum") as session:
        session.send_text('{"values": [1, 2.5]}')
        assert json.loads(session.receive_text()) == {"total": 3.5, "count": 2}
        session.send_text('{"values": [1, "x"]}')
        assert json.loads(session.receive_text())["detail"] == [
            {"type": "validation", "loc": ["values", 1], "msg": "Expected `float`, got `str`"}
        ]


@pytest.mark.anyio
async def test_typed_runs_under_uvicorn(serve: type[Uvicorn]) -> None:
    server = serve("examples.typed:app")
    server.start()
    async with client(f"ws://127.0.0.1:{server.port}/todo") as connection:
        await connection.send('{"op": "add", "title": "from uvicorn"}')
        assert json.loads(await recv(connection))["items"][0]["title"] == "from uvicorn"
        await connection.send('{"op": "add"}')
        error = json.loads(await recv(connection))
        assert error["detail"][0]["type"] == "missing"
    server.stop()
    assert not [line for line in server.lines if "WARNING" in line or "ERROR" in line]


# rpc


def call(session: Any, method: str, params: Any = None, call_id: int = 1) -> None:
    request = {"jsonrpc": "2.0", "method": method, "id": call_id}
    if params is not None:
        request["params"] = params
    session.send_text(json.dumps(request))


def test_rpc_answers_its_methods() -> None:
    with TestClient(rpc.app).websocket_connect("/rpc") as session:
        call(session, "add", [20, 22])
        assert json.loads(session.receive_text()) == {"jsonrpc": "2.0", "result": 42, "id": 1}
        call(session, "distance", {"a": {"x": 0, "y": 0}, "b": {"x": 3, "y": 4}}, 2)
        assert json.loads(session.receive_text())["result"] == 5.0
        call(session, "distance", {"a": {"x": 0}, "b": {"x": 3, "y": 4}}, 3)
        error = json.loads(session.receive_text())["error"]
        assert (error["code"], error["data"][0]["loc"]) == (-32602, ["a", "y"])


def test_rpc_tells_every_client_and_calls_back() -> None:
    with (
        TestClient(rpc.app) as client,  # one event loop for both: see docs/testing.md
        client.websocket_connect("/rpc") as first,
        client.websocket_connect("/rpc") as second,
    ):
        call(second, "add", [1, 1])  # second is served: both are clients now
        assert json.loads(second.receive_text())["result"] == 2
        call(first, "chat.say", {"text": "hello"})
        said = {"jsonrpc": "2.0", "method": "chat.said", "params": {"text": "hello"}}
        assert json.loads(second.receive_text()) == said
        assert json.loads(first.receive_text()) == said
        assert json.loads(first.receive_text())["result"] == 2
        call(first, "delete_everything", None, 9)
        asked = json.loads(first.receive_text())
        assert asked["method"] == "confirm"
        first.send_text(json.dumps({"jsonrpc": "2.0", "result": True, "id": asked["id"]}))
        assert json.loads(first.receive_text()) == {"jsonrpc": "2.0", "result": "deleted", "id": 9}
    assert rpc.clients == {}


# chat


@pytest.fixture
def chat_client() -> Iterator[TestClient]:
    """The chat app, started: its broadcast connected and its rooms running."""
    with TestClient(chat.app) as started:
        yield started
    assert chat.rooms.rooms == {}  # every room was closed with its last member


def test_chat_serves_its_page_script_and_style(chat_client: TestClient) -> None:
    test_client = chat_client
    page = test_client.get("/")
    assert page.status_code == 200
    assert 'src="static/chat.js"' in page.text  # relative: it works mounted too
    script = test_client.get("/static/chat.js")
    assert script.status_code == 200
    assert "new WebSocket(url, [SUBPROTOCOL])" in script.text
    assert "innerHTML" not in script.text  # user text is never inserted as HTML
    assert test_client.get("/static/chat.css").status_code == 200


def without_id(event: Any) -> Any:
    """`event` without the id the room's channel gave it (checked to be one)."""
    if isinstance(event, dict) and "id" in event:
        event = dict(event)
        id_key(event.pop("id"))  # raises if it is none
    return event


def chat_event(session: Any) -> dict[str, Any]:
    event: dict[str, Any] = without_id(session.receive_json())
    return event


def test_chat_relays_a_message_to_the_sender(chat_client: TestClient) -> None:
    with chat_client.websocket_connect("/chat/solo?name=ana") as session:
        assert chat_event(session) == {"type": "join", "user": "ana", "members": ["ana"]}
        session.send_json({"text": "hi"})
        message = chat_event(session)
        assert isinstance(message.pop("time"), int)
        assert message == {"type": "message", "user": "ana", "text": "hi"}
    assert "solo" not in chat.rooms.rooms  # the last member left: the room is gone


def scraped(test_client: TestClient) -> dict[str, float]:
    """The chat's bocws metrics, scraped from /metrics and parsed with prometheus-client's
    parser: `name{labels}` -> value (the default registry: other tests count there too)."""
    response = test_client.get("/metrics")  # Starlette redirects to /metrics/
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.name.startswith("bocws_") and not sample.name.endswith("_created"):
                labels = ",".join(f"{key}={value}" for key, value in sorted(sample.labels.items()))
                samples[f"{sample.name}{{{labels}}}"] = sample.value
    return samples


def test_chat_serves_its_metrics(chat_client: TestClient) -> None:
    assert chat.METRICS  # prometheus-client is a dev dependency
    before = scraped(chat_client)
    with chat_client.websocket_connect("/chat/metered?name=ana") as session:
        events = [session.receive_text()]  # its own join
        session.send_text('{"text": "hi"}')
        events.append(session.receive_text())
        assert json.loads(events[1])["text"] == "hi"
        assert scraped(chat_client)["bocws_connections_open{route=/chat/{room}}"] == 1
        assert scraped(chat_client)["bocws_broadcast_subscriptions{}"] >= 1
    after = scraped(chat_client)
    changed = {
        name: after[name] - before.get(name, 0)
        for name in after
        if after[name] != before.get(name, 0) and "_bucket" not in name and "_sum" not in name
    }
    # Broadcast: the join (a roster) and the message at least; the leave may be in flight.
    assert changed.pop("bocws_broadcast_published_total{}") >= 2
    assert changed.pop("bocws_broadcast_delivered_total{}") >= 2
    assert changed == {
        "bocws_connections_total{code=1000,route=/chat/{room}}": 1,
        "bocws_connection_duration_seconds_count{route=/chat/{room}}": 1,
        "bocws_messages_received_total{route=/chat/{room}}": 1,
        "bocws_received_bytes_total{route=/chat/{room}}": len('{"text": "hi"}'),
        "bocws_messages_sent_total{route=/chat/{room}}": 2,
        "bocws_sent_bytes_total{route=/chat/{room}}": sum(len(event.encode()) for event in events),
    }


def test_chat_negotiates_its_subprotocol_when_offered(chat_client: TestClient) -> None:
    test_client = chat_client
    offer = ["other", chat.SUBPROTOCOL]
    with test_client.websocket_connect("/chat/a?name=ana", subprotocols=offer) as session:
        assert session.accepted_subprotocol == chat.SUBPROTOCOL
    with test_client.websocket_connect("/chat/a?name=ana") as session:
        assert session.accepted_subprotocol is None


def test_chat_tells_members_who_joins_and_leaves(chat_client: TestClient) -> None:
    test_client = chat_client
    with test_client.websocket_connect("/chat/hall?name=zoe") as zoe:
        chat_event(zoe)
        with test_client.websocket_connect("/chat/hall?name=%20Ana%20") as ana:
            joined = {"type": "join", "user": "Ana", "members": ["Ana", "zoe"]}  # case-blind order
            assert chat_event(ana) == joined
            assert chat_event(zoe) == joined
        assert chat_event(zoe) == {"type": "leave", "user": "Ana", "members": ["zoe"]}


ROOM_RULE = "a room name has 1 to 64 printable characters, no spaces around"


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/chat/a?name=", "a display name has 1 to 32 printable characters"),
        ("/chat/a?name=%20%20", "a display name has 1 to 32 printable characters"),
        ("/chat/a?name=" + "x" * 33, "a display name has 1 to 32 printable characters"),
        ("/chat/a?name=a%0Ab", "a display name has 1 to 32 printable characters"),
        ("/chat/" + "r" * 65 + "?name=ana", ROOM_RULE),
        ("/chat/%20lobby?name=ana", ROOM_RULE),
        ("/chat/a%09b?name=ana", ROOM_RULE),
    ],
)
def test_chat_closes_1008_on_an_unusable_name(
    chat_client: TestClient, path: str, reason: str
) -> None:
    with (
        chat_client.websocket_connect(path) as session,
        pytest.raises(WebSocketDisconnect) as info,
    ):
        session.receive_text()
    assert (info.value.code, info.value.reason) == (1008, reason)
    assert chat.rooms.rooms == {}


def test_chat_refuses_a_handshake_without_a_name(chat_client: TestClient) -> None:
    with (
        pytest.raises(WebSocketDisconnect) as info,
        chat_client.websocket_connect("/chat/a"),
    ):
        pass  # pragma: no cover - the handshake is refused
    assert info.value.code == 403


@pytest.mark.parametrize(
    "message",
    [
        {},
        {"text": 3},
        {"text": ""},
        {"text": "   "},
        {"text": "x" * 2001},
        {"text": "hi", "user": "admin"},
        {"text": "hi", "cid": 7},
        {"text": "hi", "cid": ""},
        {"text": "hi", "cid": "x" * 65},
        {"text": "hi", "cid": "a\nb"},
        ["hi"],
        "hi",
    ],
)
def test_chat_closes_1008_on_a_malformed_message(chat_client: TestClient, message: object) -> None:
    with chat_client.websocket_connect("/chat/strict?name=ana") as session:
        chat_event(session)
        session.send_json(message)
        with pytest.raises(WebSocketDisconnect) as info:
            session.receive_text()
    assert info.value.code == 1008
    assert info.value.reason == chat.MALFORMED
    assert "strict" not in chat.rooms.rooms


def test_chat_acknowledges_a_message_with_a_client_id_and_drops_it_sent_again(
    chat_client: TestClient,
) -> None:
    with chat_client.websocket_connect("/chat/acks?name=ana") as session:
        chat_event(session)
        session.send_json({"text": "hi", "cid": "c1"})
        events = [session.receive_json(), session.receive_json()]
        ack = next(event for event in events if event["type"] == "ack")
        message = next(event for event in events if event["type"] == "message")
        assert ack["cid"] == message["cid"] == "c1"
        assert ack["id"] == message["id"]
        id_key(ack["id"])
        # The page did not get the acknowledgement and sends it again: acknowledged
        # with the same id, not published twice.
        session.send_json({"text": "hi", "cid": "c1"})
        assert session.receive_json() == {"type": "ack", "cid": "c1", "id": ack["id"]}
        session.send_json({"text": "next", "cid": "c2"})
        later = [session.receive_json(), session.receive_json()]
        assert sorted(event["type"] for event in later) == ["ack", "message"]
        assert [event["text"] for event in later if event["type"] == "message"] == ["next"]


def test_a_message_sent_again_after_its_room_closed_is_still_dropped(
    chat_client: TestClient,
) -> None:
    # The room closes with its last member here; the page, which missed the
    # acknowledgement, comes back and sends the message again.
    with chat_client.websocket_connect("/chat/alone?name=ana") as session:
        chat_event(session)
        session.send_json({"text": "once", "cid": "c1"})
        events = [session.receive_json(), session.receive_json()]
        (ack,) = [event for event in events if event["type"] == "ack"]
    assert "alone" not in chat.rooms.rooms
    with chat_client.websocket_connect("/chat/alone?name=ana") as session:
        chat_event(session)
        session.send_json({"text": "once", "cid": "c1"})
        assert session.receive_json() == {"type": "ack", "cid": "c1", "id": ack["id"]}
        session.send_json({"text": "then", "cid": "c2"})
        later = [session.receive_json(), session.receive_json()]
        assert [event.get("text") for event in later if event["type"] == "message"] == ["then"]


def test_a_page_that_reconnects_with_since_gets_what_was_said_meanwhile_first(
    chat_client: TestClient,
) -> None:
    with chat_client.websocket_connect("/chat/resume?name=ana") as ana:
        joined = ana.receive_json()
        since = joined["id"]
        with chat_client.websocket_connect("/chat/resume?name=bob") as bob:
            chat_event(bob)
            chat_event(ana)  # bob's join
            for n in range(3):
                bob.send_json({"text": f"m{n}", "cid": f"b{n}"})
                assert chat_event(ana)["text"] == f"m{n}"
            # Ana's page lost its connection after its join: it comes back with it.
            with chat_client.websocket_connect(f"/chat/resume?name=ana&since={since}") as again:
                first = chat_event(again)
                assert (first["type"], first["user"]) == ("join", "ana")
                missed = [chat_event(again) for _ in range(3)]
                assert [(event["type"], event["text"]) for event in missed] == [
                    ("message", "m0"),
                    ("message", "m1"),
                    ("message", "m2"),
                ]
                bob.send_json({"text": "live", "cid": "b9"})
                event = chat_event(again)
                while event["type"] != "message":  # bob's page hears of the join too
                    event = chat_event(again)
                assert event["text"] == "live"


@pytest.mark.parametrize("since", ["not-an-id", "1-1", "99999999999999-0", "0" * 130 + "1-0"])
def test_a_page_that_cannot_catch_up_is_told_so(chat_client: TestClient, since: str) -> None:
    with chat_client.websocket_connect(f"/chat/gap?name=ana&since={since}") as session:
        assert chat_event(session)["type"] == "join"
        assert chat_event(session) == {
            "type": "error",
            "text": "some messages from while you were away could not be recovered",
        }
        session.send_json({"text": "still here"})
        assert chat_event(session)["text"] == "still here"


def test_chat_closes_1007_on_invalid_json(chat_client: TestClient) -> None:
    with chat_client.websocket_connect("/chat/strict?name=ana") as session:
        chat_event(session)
        session.send_text("{not json")
        with pytest.raises(WebSocketDisconnect) as info:
            session.receive_text()
    assert info.value.code == 1007


def test_chat_closes_1009_on_an_oversized_message_before_parsing_it(
    chat_client: TestClient,
) -> None:
    with chat_client.websocket_connect("/chat/big?name=ana") as session:
        chat_event(session)
        session.send_text("[" * chat.MAX_MESSAGE_BYTES + "x")
        with pytest.raises(WebSocketDisconnect) as info:
            session.receive_text()
    assert (info.value.code, info.value.reason) == (1009, "message too big")
    assert "big" not in chat.rooms.rooms


def test_chat_refuses_another_sites_page(chat_client: TestClient) -> None:
    headers = {"origin": "https://evil.test"}
    with (
        pytest.raises(WebSocketDisconnect) as info,
        chat_client.websocket_connect("/chat/a?name=ana", headers=headers),
    ):
        pass  # pragma: no cover - the handshake is refused
    assert info.value.code == 403


def test_chat_drops_a_member_too_far_behind_with_1013(chat_client: TestClient) -> None:
    def flood() -> None:  # in the app's event loop, at once: the member cannot keep up
        room = chat.rooms.rooms["slow"]
        for number in range(2 * chat.OUTBOX_SIZE):
            room.tell_everyone({"type": "message", "user": "x", "text": str(number), "time": 0})

    with chat_client.websocket_connect("/chat/slow?name=ana") as session:
        chat_event(session)
        [member] = chat.rooms.rooms["slow"].members.values()
        session.portal.call(flood)
        assert member.too_slow
        received = []
        with pytest.raises(WebSocketDisconnect) as info:  # noqa: PT012 - read until the close
            while True:
                received.append(chat_event(session)["text"])
    # Dropped at once: some of what the outbox held, in order, then the close.
    assert len(received) <= chat.OUTBOX_SIZE + 1
    assert received == [str(number) for number in range(len(received))]
    assert (info.value.code, info.value.reason) == (1013, "too slow: try again later")


def test_chat_asks_a_member_who_sends_too_fast_to_slow_down(chat_client: TestClient) -> None:
    with chat_client.websocket_connect("/chat/busy?name=ana") as session:
        chat_event(session)
        for number in range(chat.BURST + 5):  # faster than the rate refills
            session.send_json({"text": str(number)})
        events = [chat_event(session) for _ in range(chat.BURST + 5)]
    said = [event["text"] for event in events if event["type"] == "message"]
    refused = [event for event in events if event["type"] == "error"]
    assert said[: chat.BURST] == [str(number) for number in range(chat.BURST)]
    assert len(said) + len(refused) == chat.BURST + 5
    assert 1 <= len(refused) <= 5
    assert refused[0] == {"type": "error", "text": "not delivered: too many messages, slow down"}


async def receive_json(connection: ClientConnection) -> Any:
    return without_id(json.loads(await recv(connection)))


async def joined(connection: ClientConnection, *others: ClientConnection) -> None:
    """Receive the `join` event a new member's connection starts with, on it and `others`."""
    for member in (connection, *others):
        assert (await receive_json(member))["type"] == "join"


async def relayed(sender: ClientConnection, text: str, *others: ClientConnection) -> None:
    """Send a chat message; check that the sender and `others`, in order, receive it."""
    await sender.send(json.dumps({"text": text}))
    for member in (sender, *others):
        message = await receive_json(member)
        assert (message["type"], message["text"]) == ("message", text)


async def until(condition: Callable[[], bool]) -> None:
    """Wait, bounded, for server-side state that no message reports."""
    deadline = asyncio.get_running_loop().time() + TIMEOUT
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


@pytest.mark.anyio
async def test_chat_relays_within_a_room_only_and_forgets_leavers() -> None:
    async with (
        chat.lifespan(chat.app),
        running_server(chat.app, "websockets-sansio") as base,  # type: ignore[arg-type]
    ):
        async with (
            client(f"{base}/chat/a?name=ana") as ana,
            client(f"{base}/chat/b?name=eve") as eve,
        ):
            await joined(ana)
            await joined(eve)
            async with client(f"{base}/chat/a?name=bob") as bob:
                await joined(bob, ana)
                await relayed(bob, "bob here", ana)
                await relayed(ana, "hello a", bob)
            assert await receive_json(ana) == {"type": "leave", "user": "bob", "members": ["ana"]}
            await relayed(ana, "still here")
            # Eve's next message is the first thing she receives: nothing from room a leaked.
            await relayed(eve, "bye")
        await until(lambda: chat.rooms.rooms == {})


@pytest.mark.anyio
async def test_chat_survives_a_member_that_vanishes() -> None:
    async with (
        chat.lifespan(chat.app),
        running_server(chat.app, "websockets-sansio") as base,  # type: ignore[arg-type]
        client(f"{base}/chat/c?name=ana") as ana,
    ):
        await joined(ana)
        async with client(f"{base}/chat/c?name=bob") as bob:
            await joined(bob, ana)
            await relayed(bob, "about to vanish", ana)
            bob.transport.abort()  # no close frame: the TCP connection just ends
        assert await receive_json(ana) == {"type": "leave", "user": "bob", "members": ["ana"]}
        for number in range(3):
            await relayed(ana, f"message {number}")
        assert len(chat.rooms.rooms["c"].members) == 1


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


def test_auth_takes_a_token_as_the_first_message() -> None:
    with TestClient(auth.app).websocket_connect("/private/first-message") as session:
        session.send_text("alice-token")
        assert session.receive_text() == "hello alice"
        session.send_text("hi")
        assert session.receive_text() == "alice: hi"
    with TestClient(auth.app).websocket_connect("/private/first-message") as session:
        session.send_text("nope")
        assert session.receive() == {
            "type": "websocket.close",
            "code": 1008,
            "reason": "invalid token",
        }


def test_auth_closes_1008_when_no_token_comes_in_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auth, "FIRST_MESSAGE_TIMEOUT", 0.1)
    with TestClient(auth.app).websocket_connect("/private/first-message") as session:
        message = session.receive()
    assert (message["code"], message["reason"]) == (1008, "send your token as the first message")


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
    with TestClient(starlette_app.app) as test_client:
        check_mounted_chat(test_client)


def check_mounted_chat(test_client: TestClient) -> None:
    assert "static/chat.js" in test_client.get("/bocws/").text
    assert test_client.get("/bocws/static/chat.js").status_code == 200
    with test_client.websocket_connect("/bocws/chat/lobby?name=ana") as session:
        assert session.receive_json()["members"] == ["ana"]


def test_fastapi_app_keeps_its_own_routes() -> None:
    response = TestClient(fastapi_app.app).get("/")
    assert response.status_code == 200
    assert "/ws/count" in response.json()["message"]


def test_fastapi_app_serves_a_class_based_view() -> None:
    with TestClient(fastapi_app.app).websocket_connect("/ws/count") as session:
        for count in (1, 2, 3):
            session.send_json(["ping", count])
            assert session.receive_json() == {"count": count, "message": ["ping", count]}


def test_fastapi_app_gets_the_user_from_a_dependency() -> None:
    test_client = TestClient(fastapi_app.app)
    cookie = {"cookie": "token=bob-token"}
    with test_client.websocket_connect("/ws/me?room=attic", headers=cookie) as session:
        assert session.receive_json() == {"user": "bob", "room": "attic"}
    for headers in ({}, {"cookie": "token=wrong"}, {**cookie, "origin": "https://evil.example"}):
        with (
            pytest.raises(WebSocketDisconnect) as info,
            test_client.websocket_connect("/ws/me", headers=headers),
        ):
            pass  # pragma: no cover - the handshake is refused
        assert info.value.code == (403 if "origin" in headers else 1008)


def test_fastapi_app_mounts_the_chat() -> None:
    with TestClient(fastapi_app.app) as test_client:
        check_mounted_chat(test_client)


# The README's demo, with the uvicorn command itself.


README = Path(__file__).resolve().parent.parent / "README.md"


def readme_demo_options() -> list[str]:
    """The options of the README's demo command after the app, but for host and port."""
    line = next(
        line for line in README.read_text().splitlines() if "uvicorn examples.chat:app" in line
    )
    words = line.split("uvicorn examples.chat:app", 1)[1].split()
    options = []
    while words:
        word = words.pop(0)
        if word in ("--host", "--port"):
            words.pop(0)  # the test picks its own
        else:
            options.append(word)
    return options


@pytest.mark.skipif(not README.exists(), reason="no README beside the tests")
@pytest.mark.anyio
async def test_chat_runs_under_the_readmes_uvicorn_command(serve: type[Uvicorn]) -> None:
    options = readme_demo_options()
    assert options == ["--ws-max-size", "16384"]  # the chat's largest message
    server = serve("examples.chat:app", *options)  # on a free port
    server.start()
    async with httpx.AsyncClient(timeout=TIMEOUT) as http:
        page = await http.get(f"{server.url}/")
    assert page.status_code == 200
    async with client(f"ws://127.0.0.1:{server.port}/chat/demo?name=ana") as connection:
        await joined(connection)
        await relayed(connection, "hi")
    server.stop()
    assert not [line for line in server.lines if "WARNING" in line or "ERROR" in line]
