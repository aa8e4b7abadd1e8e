"""Rooms' fan-out (`bocws/broadcast/_rooms.py`): the fast path gives what the slow one gives.

Under asyncio a channel's rooms have a `Fanout`: one task sends each message to every
socket that is ready, encoded once, and queues it for the others (the fast path).
The slow path, taken under trio, and here by patching `fanout_for`, has each socket's
relay task send every message itself. Each scenario runs both on fresh sockets over
a fake server (no network) and compares everything a client sees: the frames, in
order, the close, and the subscription's drop count.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from uvicorn.protocols.utils import ClientDisconnected

from bocws import Broadcast, WebSocket
from bocws.broadcast._broadcast import encode

from .fake import CONNECT, Message, websocket_scope

pytestmark = pytest.mark.anyio

TIMEOUT = 10.0
CHANNEL = "room"


@dataclass
class Client:
    """A socket's client: what the app sent it, and how its sends behave.

    `mode`: `"ready"` (each send completes at once), `"yields"` (each send lets the
    loop turn first, as a send that waits for the network), `"blocked"` (sends wait
    for `gate`); `gone_after`: the client is gone after that many messages.
    """

    kind: str = "json"
    mode: str = "ready"
    gone_after: int | None = None
    sent: list[Message] = field(default_factory=list)
    left: anyio.Event = field(default_factory=anyio.Event)
    gate: anyio.Event = field(default_factory=anyio.Event)
    connected: bool = False

    async def receive(self) -> Message:
        if not self.connected:
            self.connected = True
            return CONNECT
        await self.left.wait()
        return {"type": "websocket.disconnect", "code": 1000, "reason": ""}

    async def send(self, message: Message) -> None:
        if message["type"] == "websocket.send":
            if self.mode == "yields":
                await anyio.lowlevel.checkpoint()
            elif self.mode == "blocked":
                await self.gate.wait()
            if self.gone_after is not None and len(self.frames) >= self.gone_after:
                raise ClientDisconnected
        self.sent.append(message)

    @property
    def frames(self) -> list[Any]:
        return [m.get("text", m.get("bytes")) for m in self.sent if m["type"] == "websocket.send"]

    @property
    def close(self) -> tuple[int, str] | None:
        closes = [m for m in self.sent if m["type"] == "websocket.close"]
        return (closes[0]["code"], closes[0].get("reason", "")) if closes else None


@contextmanager
def path(fast: bool) -> Iterator[None]:
    """The fast path as it is, or the slow one (each relay sends every message)."""
    if fast:
        yield
    else:
        with mock.patch("bocws.broadcast._broadcast.fanout_for", return_value=None):
            yield


async def settled() -> None:
    """Return once every task waits and nothing moves any more (a hand-over between
    tasks goes through a loop callback: see `Baton`)."""
    with anyio.fail_after(TIMEOUT):
        seen = None
        while True:
            await anyio.lowlevel.checkpoint()
            await anyio.wait_all_tasks_blocked()
            now = len(anyio.get_running_tasks())
            if now == seen:
                return
            seen = now


async def member(
    broadcast: Broadcast,
    client: Client,
    envelope: Callable[[str | None, Any], Any] | None,
    options: dict[str, Any],
    *,
    task_status: anyio.abc.TaskStatus[Any] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """A view in the room until its client leaves; `task_status` gets its subscription."""
    ws = WebSocket(websocket_scope(), client.receive, client.send, value_type=client.kind)
    async with ws, broadcast.room(ws, CHANNEL, envelope=envelope, **options) as subscription:
        task_status.started(subscription)
        async for _ in ws:
            pass  # pragma: no cover - the clients send nothing


@dataclass
class Outcome:
    frames: list[list[Any]]
    closes: list[tuple[int, str] | None]
    dropped: list[int]
    logged: list[str]  # bocws's warnings and errors, sorted


class Logged(logging.Handler):
    """Collects the warnings and errors of bocws's loggers."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextmanager
def logged() -> Iterator[list[str]]:
    handler = Logged()
    logger = logging.getLogger("bocws")
    logger.addHandler(handler)
    try:
        yield handler.messages
    finally:
        logger.removeHandler(handler)


async def run(
    clients: list[Client],
    messages: list[Any],
    *,
    fast: bool,
    envelopes: list[Callable[[str | None, Any], Any] | None] | None = None,
    before_opening: Callable[[], None] | None = None,
    settling: bool = False,
    burst: bool = False,
    **options: Any,
) -> Outcome:
    """Every client in the room, `messages` published one by one (`settling`: each
    once the last one is sent, or queued, to everyone; `burst`: all at once, without
    letting the loop turn, as a Redis reader may deliver them); once settled,
    `before_opening()`, then the blocked sends let through, and every client leaves."""
    envelopes = envelopes or [None] * len(clients)
    with path(fast), logged() as warnings:
        async with Broadcast("memory://") as broadcast, anyio.create_task_group() as group:
            subscriptions = [
                await group.start(member, broadcast, client, envelope, options)
                for client, envelope in zip(clients, envelopes, strict=True)
            ]
            assert (CHANNEL in broadcast._fanouts) is fast  # a look inside: the path taken
            for message in messages:
                if burst:  # a look inside: delivered as the backend does
                    broadcast._deliver(CHANNEL, encode(message))
                    continue
                await broadcast.publish(CHANNEL, message)
                if settling:
                    await settled()
            await settled()
            if before_opening is not None:
                before_opening()
            for client in clients:
                client.gate.set()
            await settled()
            for client in clients:
                client.left.set()
        assert broadcast._fanouts == {}  # the fan-out ended with its last member
    return Outcome(
        [client.frames for client in clients],
        [client.close for client in clients],
        [subscription.dropped for subscription in subscriptions],
        sorted(warnings),
    )


def fresh(clients: list[Client]) -> list[Client]:
    return [Client(client.kind, client.mode, client.gone_after) for client in clients]


# Any scenario, both paths.

values = st.one_of(
    st.text(max_size=8),
    st.binary(max_size=8),
    st.dictionaries(st.sampled_from("abc"), st.integers(-5, 5), max_size=2),
)
clients_strategy = st.lists(
    st.builds(
        Client,
        kind=st.sampled_from(["json", "text", "bytes"]),
        mode=st.sampled_from(["ready", "ready", "yields"]),
        gone_after=st.one_of(st.none(), st.integers(0, 4)),
    ),
    min_size=1,
    max_size=6,
)


def shared_envelope(message_id: str | None, message: Any) -> Any:
    return {"id": message_id, "message": message if not isinstance(message, bytes) else "b"}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    clients=clients_strategy,
    messages=st.lists(values, max_size=12),
    enveloped=st.sampled_from(["none", "shared", "own"]),
    burst=st.booleans(),
)
async def test_any_room_gives_every_client_the_same_on_both_paths(
    clients: list[Client], messages: list[Any], enveloped: str, burst: bool
) -> None:
    def envelopes() -> list[Any]:
        if enveloped == "none":
            return [None] * len(clients)
        if enveloped == "shared":
            return [shared_envelope if c.kind == "json" else None for c in clients]
        return [(lambda i, m: shared_envelope(i, m)) if c.kind == "json" else None for c in clients]

    fast = await run(fresh(clients), messages, fast=True, envelopes=envelopes(), burst=burst)
    slow = await run(fresh(clients), messages, fast=False, envelopes=envelopes(), burst=burst)
    assert fast == slow
    # And right, not only alike: a client that takes every message gets each, in order.
    takes_all = not any(isinstance(message, bytes) for message in messages)
    for client, frames in zip(clients, fast.frames, strict=True):
        if (
            takes_all
            and client.gone_after is None
            and client.kind == "json"
            and enveloped == "none"
        ):
            assert [json.loads(frame) for frame in frames] == messages


# One client that does not read: the others are not held up; its queue is bounded.


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "slow"])
async def test_a_client_that_does_not_read_holds_up_no_other(fast: bool) -> None:
    clients = [Client(), Client(mode="blocked"), Client()]
    messages = [{"n": n} for n in range(5)]
    seen_before: list[list[Any]] = []
    outcome = await run(
        clients,
        messages,
        fast=fast,
        before_opening=lambda: seen_before.extend(client.frames[:] for client in clients),
    )
    frames = [f'{{"n":{n}}}' for n in range(5)]
    assert seen_before == [frames, [], frames]  # all of it, while the blocked one waited
    assert outcome.frames == [frames, frames, frames]  # then it got its own, in order
    assert outcome.closes == [None, None, None]  # the clients closed first, and left


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "slow"])
async def test_a_burst_reaches_every_client_in_order_past_one_that_does_not_read(
    fast: bool,
) -> None:
    """Several messages waiting are taken at once (a batch), each sent to every socket
    in turn; a send that waits mid-batch has the batch's later messages queued for its
    socket, before any later batch's."""
    clients = [Client(), Client(mode="blocked"), Client(mode="yields"), Client()]
    messages = [{"n": n} for n in range(40)]  # more than a batch
    outcome = await run(clients, messages, fast=fast, burst=True)
    frames = [f'{{"n":{n}}}' for n in range(40)]
    assert outcome.frames == [frames] * 4


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "slow"])
async def test_a_client_queue_size_behind_is_closed_with_1013_after_its_queue(
    fast: bool, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "bocws.broadcast")
    clients = [Client(mode="blocked"), Client()]
    messages = [{"n": n} for n in range(5)]
    outcome = await run(clients, messages, fast=fast, settling=True, queue_size=2)
    # The one being sent, the two queued; then the close. The other got everything.
    assert outcome.frames[0] == ['{"n":0}', '{"n":1}', '{"n":2}']
    assert outcome.closes[0] == (1013, "too slow: try again later")
    assert len(outcome.frames[1]) == 5
    assert "unsubscribed a subscriber 2 messages behind" in caplog.text


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "slow"])
async def test_a_client_behind_with_drop_oldest_loses_the_oldest_queued(fast: bool) -> None:
    clients = [Client(mode="blocked"), Client()]
    messages = [{"n": n} for n in range(5)]
    outcome = await run(
        clients, messages, fast=fast, settling=True, queue_size=2, overflow="drop_oldest"
    )
    assert outcome.frames[0] == ['{"n":0}', '{"n":3}', '{"n":4}']
    assert outcome.dropped == [2, 0]
    assert outcome.closes == [None, None]


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "slow"])
async def test_a_client_gone_mid_fan_out_stops_only_its_own_relaying(fast: bool) -> None:
    clients = [Client(), Client(gone_after=2), Client(mode="yields", gone_after=1), Client()]
    outcome = await run(clients, [f"m{n}" for n in range(4)], fast=fast)
    everything = ['"m0"', '"m1"', '"m2"', '"m3"']
    assert outcome.frames == [everything, everything[:2], everything[:1], everything]


@pytest.mark.parametrize(
    ("overflow", "frames", "close", "dropped"),
    [
        ("close", [], (1013, "too slow: try again later"), 0),
        ("drop_oldest", ['"m2"', '"m3"', '"m4"'], None, 2),
    ],
)
async def test_messages_the_fan_out_cannot_take_in_time_are_shed_as_overflows(
    overflow: str, frames: list[str], close: tuple[int, str] | None, dropped: int
) -> None:
    """A burst delivered at once (as a Redis reader may) waits for the fan-out's task
    in one queue of at most the largest `queue_size`: beyond, the oldest is lost."""
    clients = [Client(), Client()]
    async with (
        Broadcast("memory://", queue_size=3, overflow=overflow) as broadcast,
        anyio.create_task_group() as group,
    ):
        subscriptions = [
            await group.start(member, broadcast, client, None, {}) for client in clients
        ]
        for n in range(5):  # a look inside: delivered without letting the loop turn
            broadcast._deliver(CHANNEL, encode(f"m{n}"))
        await settled()
        for client in clients:
            client.left.set()
    assert [client.frames for client in clients] == [frames, frames]
    assert [client.close for client in clients] == [close, close]
    assert [subscription.dropped for subscription in subscriptions] == [dropped, dropped]


async def test_a_client_that_leaves_while_a_send_to_it_waits_is_let_go() -> None:
    """Its send is cancelled; the others go on from another task; nothing is left running."""
    clients = [Client(), Client(mode="blocked"), Client()]
    async with Broadcast("memory://") as broadcast, anyio.create_task_group() as group:
        before = len(anyio.get_running_tasks())
        for client in clients:
            await group.start(member, broadcast, client, None, {})
        await broadcast.publish(CHANNEL, 1)
        await settled()
        clients[1].left.set()  # it leaves while the fan-out's send to it waits
        await settled()
        await broadcast.publish(CHANNEL, 2)
        await settled()
        assert [client.frames for client in clients] == [["1", "2"], [], ["1", "2"]]
        for client in clients:
            client.left.set()
        await settled()
        assert broadcast._fanouts == {}  # a look inside: the fan-out and its tasks ended
        assert len(anyio.get_running_tasks()) == before


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "slow"])
async def test_a_client_gone_mid_fan_out_is_let_go_quietly(fast: bool) -> None:
    """The server's send raising as the client leaves is a departure, not an error."""
    clients = [Client(gone_after=1), Client(mode="yields", gone_after=0), Client()]
    outcome = await run(clients, ["a", "b"], fast=fast)
    assert outcome.frames == [['"a"'], [], ['"a"', '"b"']]
    assert outcome.logged == []


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "slow"])
async def test_a_socket_its_view_closed_in_the_room_is_sent_nothing_more(fast: bool) -> None:
    client, other = Client(), Client()
    closed = anyio.Event()

    async def closing_view(*, task_status: anyio.abc.TaskStatus[None]) -> None:
        ws = WebSocket(websocket_scope(), client.receive, client.send, value_type="json")
        async with ws, broadcast.room(ws, CHANNEL):
            task_status.started()
            await closed.wait()
            await ws.close(4000)  # still in the room
            await client.left.wait()

    with path(fast), logged() as messages:
        async with Broadcast("memory://") as broadcast, anyio.create_task_group() as group:
            await group.start(closing_view)
            await group.start(member, broadcast, other, None, {})
            await broadcast.publish(CHANNEL, 1)
            await settled()
            closed.set()
            await settled()
            await broadcast.publish(CHANNEL, 2)
            await settled()
            client.left.set()
            other.left.set()
    assert [m["type"] for m in client.sent] == [
        "websocket.accept",
        "websocket.send",
        "websocket.close",
    ]
    assert client.frames == ["1"]
    assert other.frames == ["1", "2"]
    assert messages == []


def test_a_rooms_messages_are_counted_in_the_routes_metrics() -> None:
    from prometheus_client import CollectorRegistry
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.testclient import TestClient

    from bocws import App

    registry = CollectorRegistry()
    broadcast = Broadcast("memory://")
    app = App(metrics=registry)
    app.on_startup(broadcast.connect)
    app.on_shutdown(broadcast.disconnect)

    @app.websocket_route("/feed", value_type="json")
    async def feed(ws: WebSocket) -> None:
        async with broadcast.room(ws, CHANNEL):
            await ws.send("joined")
            async for _ in ws:
                pass

    @app.route("/publish", methods=["POST"])
    async def publish(request: Request) -> PlainTextResponse:
        for n in range(3):
            await broadcast.publish(CHANNEL, {"n": n})
        return PlainTextResponse("ok")

    with TestClient(app) as client:
        with (
            client.websocket_connect("/feed") as first,
            client.websocket_connect("/feed") as second,
        ):
            assert first.receive_json() == second.receive_json() == "joined"
            client.post("/publish")
            for session in (first, second):
                assert [session.receive_json() for _ in range(3)] == [{"n": n} for n in range(3)]
        sent = registry.get_sample_value("bocws_messages_sent_total", {"route": "/feed"})
        sent_bytes = registry.get_sample_value("bocws_sent_bytes_total", {"route": "/feed"})
    assert sent == 2 * 4  # "joined" and the room's three, for each
    assert sent_bytes == 2 * (len('"joined"') + 3 * len('{"n":0}'))


async def test_a_message_is_encoded_once_for_the_sockets_alike() -> None:
    calls: list[Any] = []

    def envelope(message_id: str | None, message: Any) -> Any:
        calls.append(message)
        return {"message": message}

    clients = [Client() for _ in range(5)]
    outcome = await run(clients, ["a", "b", "c"], fast=True, envelopes=[envelope] * 5)
    assert calls == ["a", "b", "c"]  # once per message, for the five sockets
    assert outcome.frames == [['{"message":"a"}', '{"message":"b"}', '{"message":"c"}']] * 5


async def test_a_send_replaced_on_the_socket_gets_every_message() -> None:
    """A `send()` replaced on the instance (to log, to slow down ...) is not bypassed."""
    sent: list[Any] = []
    client = Client()

    async def view(*, task_status: anyio.abc.TaskStatus[None]) -> None:
        ws = WebSocket(websocket_scope(), client.receive, client.send, value_type="json")
        original = ws.send

        async def send(message: Any) -> None:
            sent.append(message)
            await original(message)

        ws.send = send  # type: ignore[method-assign]
        async with ws, broadcast.room(ws, CHANNEL):
            task_status.started()
            async for _ in ws:
                pass  # pragma: no cover - the client sends nothing

    async with Broadcast("memory://") as broadcast, anyio.create_task_group() as group:
        await group.start(view)
        await broadcast.publish(CHANNEL, {"a": 1})
        await settled()
        client.left.set()
    assert sent == [{"a": 1}]
    assert client.frames == ['{"a":1}']


async def test_a_message_a_socket_cannot_send_is_logged_and_stops_its_relaying_only(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clients = [Client(kind="text"), Client(kind="json")]
    outcome = await run(clients, [{"a": 1}, "b"], fast=True)
    assert outcome.frames == [[], ['{"a":1}', '"b"']]  # text takes a str only: it stopped
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert "could not relay a message of channel 'room'; stopped relaying" in errors[0].message
    assert "send_text() takes a str, got dict" in caplog.text


def test_a_room_under_trio_relays_from_each_sockets_task() -> None:
    async def main() -> list[list[Any]]:
        clients = [Client(), Client(mode="yields")]
        async with Broadcast("memory://") as broadcast, anyio.create_task_group() as group:
            for client in clients:
                await group.start(member, broadcast, client, None, {})
            assert broadcast._fanouts == {}  # a look inside: no fan-out under trio
            for n in range(3):
                await broadcast.publish(CHANNEL, n)
            await settled()
            for client in clients:
                client.left.set()
        return [client.frames for client in clients]

    assert anyio.run(main, backend="trio") == [["0", "1", "2"]] * 2
