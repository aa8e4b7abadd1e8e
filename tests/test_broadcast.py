"""`Broadcast`: one contract, kept by every backend, and what only Redis can show.

The contract tests run against `memory://` and a real `redis-server` (a fresh one per
test, `tests/redis_server.py`), each made from its URL and passed as an object
(`Broadcast(backend=...)`), and against a backend written from `Backend`'s
documentation alone (tests/test_broadcast_contract.py): what arrives, in which order,
for whom; bounded queues and their two overflow policies; the errors. With a server,
two `Broadcast` objects on it stand for two processes, and the server can go away and
come back. Redis alone: a server frozen mid-run, its SIGKILL and SIGTERM, what it logs,
and messages from clients that are not bocws. Last, rooms: `Broadcast.room()` in a
`bocws.App` through Starlette's TestClient.

Every wait is bounded. The sleeps are the pauses of bounded polling loops, and one
quiet spell that is what a test is about (a subscription with nothing to say).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import anyio
import pytest
import redis
import redis.asyncio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient, WebSocketTestSession
from starlette.websockets import WebSocketDisconnect as ClientDisconnected

import bocws.broadcast._backends
from bocws import App, WebSocket, WebSocketDisconnect
from bocws.broadcast import (
    Backend,
    Broadcast,
    BroadcastUnavailable,
    Subscription,
    SubscriptionOverflow,
)
from bocws.broadcast._backends import MemoryBackend, RedisBackend

from .redis_server import RedisServer
from .test_broadcast_contract import DocumentedBackend, PubSubServer

TIMEOUT = 10.0
"""Seconds for any one thing to happen: a message to arrive, Redis to come back."""
POLL = 0.02
"""Seconds between two looks in a polling loop (each loop is bounded by `TIMEOUT`)."""

BACKENDS = ["memory", "memory-object", "redis", "redis-object", "documented"]
"""The backends the contract runs on: `memory://` and Redis, from their URLs and passed as
objects; and `DocumentedBackend`, written from the documentation alone."""
SERVERS = ["redis", "documented"]
"""Those whose server can go away and come back."""
BROADCAST_OPTIONS = ("queue_size", "overflow")


# Fixtures and helpers.


@dataclass(frozen=True)
class BackendUnderTest:
    """How a test makes a `Broadcast` on the backend under test, and what is behind it."""

    name: str
    make: Callable[..., Broadcast]
    """`make(**options)`: a new `Broadcast`, not connected, with `Broadcast`'s options and
    the backend's. With a server, each stands for a process of its own."""
    server: RedisServer | PubSubServer | None = None
    """The server behind the backend, which can be stopped and started again."""

    @property
    def in_memory(self) -> bool:
        """One process: a message is delivered before `publish()` returns."""
        return self.server is None

    async def subscriptions(self, channel: str) -> int | None:
        """How many connections the server says are subscribed to `channel` (`None` in memory)."""
        if isinstance(self.server, RedisServer):
            async with redis.asyncio.Redis.from_url(self.server.url) as client:
                return await numsub(client, channel)
        if isinstance(self.server, PubSubServer):
            return sum(channel in each.channels for each in self.server.connections)
        return None

    async def wait_for_subscriptions(self, channel: str, expected: int) -> None:
        """Poll until the server says `expected` connections are subscribed to `channel`
        (an unsubscribe is not acknowledged to the publisher); fail after `TIMEOUT`."""
        with anyio.fail_after(TIMEOUT):
            while True:
                if await self.subscriptions(channel) in (expected, None):
                    return
                await anyio.sleep(POLL)  # a pause of the bounded polling loop


def passed_as_object(new_backend: Callable[..., Backend]) -> Callable[..., Broadcast]:
    """`make` for a backend passed as an object: the options not `Broadcast`'s are its own."""

    def make(**options: Any) -> Broadcast:
        own = {name: options.pop(name) for name in BROADCAST_OPTIONS if name in options}
        return Broadcast(backend=new_backend(**options), **own)

    return make


def backend_under_test(name: str, request: pytest.FixtureRequest) -> BackendUnderTest:
    if name == "memory":
        return BackendUnderTest(name, partial(Broadcast, "memory://"))
    if name == "memory-object":
        return BackendUnderTest(name, passed_as_object(MemoryBackend))
    if name == "documented":
        server = PubSubServer()
        return BackendUnderTest(name, passed_as_object(partial(DocumentedBackend, server)), server)
    redis_server: RedisServer = request.getfixturevalue("redis_server")
    if name == "redis":
        return BackendUnderTest(name, partial(Broadcast, redis_server.url), redis_server)
    assert name == "redis-object", name
    new_backend = partial(RedisBackend, redis_server.url)
    return BackendUnderTest(name, passed_as_object(new_backend), redis_server)


@pytest.fixture(params=BACKENDS)
def under_test(request: pytest.FixtureRequest) -> BackendUnderTest:
    """The backend under test (for Redis, on a fresh server)."""
    return backend_under_test(request.param, request)


@pytest.fixture(params=SERVERS)
def with_server(request: pytest.FixtureRequest) -> BackendUnderTest:
    """A backend under test whose server can go away and come back."""
    return backend_under_test(request.param, request)


@pytest.fixture
async def broadcast(under_test: BackendUnderTest) -> AsyncIterator[Broadcast]:
    """A connected `Broadcast` on the backend under test."""
    async with under_test.make() as connected:
        yield connected


@pytest.fixture
async def redis_client(redis_server: RedisServer) -> AsyncIterator[redis.asyncio.Redis]:
    """A plain redis-py client of the test's server: PUBSUB NUMSUB, foreign messages."""
    client = redis.asyncio.Redis.from_url(redis_server.url)
    try:
        yield client
    finally:
        await client.aclose()


def channel_name(label: str = "channel") -> str:
    """A channel no other test uses."""
    return f"{label}-{uuid.uuid4().hex[:8]}"


async def receive(subscription: Subscription, count: int, *, within: float = TIMEOUT) -> list[Any]:
    """The next `count` messages of `subscription`; fail if they take over `within` s."""
    received: list[Any] = []
    with anyio.fail_after(within):
        while len(received) < count:
            received.append(await anext(subscription))
    return received


async def read_to_end(subscription: Subscription) -> list[Any]:
    """Every message until the subscription's iteration stops (bounded)."""
    with anyio.fail_after(TIMEOUT):
        return [message async for message in subscription]


async def publish_last(broadcast: Broadcast, channel: str, last: Any) -> None:
    """Publish `last` on `channel`; return once it is queued for the channel's subscribers.

    So is every message published there before it: the contract keeps a channel's
    messages in order. A witness joins the channel to see `last` arrive (it may see
    earlier ones still on their way, too); so `last` must differ from them.
    """
    async with broadcast.subscribe(channel, overflow="drop_oldest") as witness:
        await broadcast.publish(channel, last)
        with anyio.fail_after(TIMEOUT):
            while await anext(witness) != last:
                pass


async def numsub(client: redis.asyncio.Redis, channel: str) -> int:
    """How many connections Redis says are subscribed to `channel`."""
    [(_name, count)] = await client.pubsub_numsub(channel)
    return int(count)


async def until(condition: Callable[[], bool]) -> None:
    """Poll `condition` until it holds; fail after `TIMEOUT`."""
    with anyio.fail_after(TIMEOUT):
        while True:
            if condition():
                return
            await anyio.sleep(POLL)  # a pause of the bounded polling loop


def same(received: Any, sent: Any) -> bool:
    """Equal, and of the same types all the way down (1 is not 1.0, nor True; 0.0 is not -0.0)."""
    if type(received) is not type(sent):
        return False
    if isinstance(sent, float):
        return received == sent and math.copysign(1, received) == math.copysign(1, sent)
    if isinstance(sent, list):
        return len(received) == len(sent) and all(map(same, received, sent))
    if isinstance(sent, dict):
        return list(received) == list(sent) and all(same(received[k], sent[k]) for k in sent)
    return bool(received == sent)


# Messages of every kind, each as it must arrive.
MESSAGES: list[Any] = [
    "hello",
    "",
    "héllo wörld ☃ 😀 \u2028 \x00",
    "lone surrogates: \ud800 \udfff \udbff\udbff",
    "j[1]",  # text that looks like a tagged payload stays text
    b"",
    bytes(range(256)),
    b"t\x00j\xff",
    0,
    -1,
    2**70,
    -(2**64),
    1.5,
    -0.0,
    1e16,
    5e-324,
    1.7976931348623157e308,
    None,
    True,
    False,
    [],
    {},
    [1, "two", 3.0, None, [True]],
    {"a": 1, "é": "😀", "lone": "\udc80", "\ud800": "key"},
    {"nested": {"list": [{"deep": [None, True, {"x": [[[[["bottom"]]]]]}]}]}, "n": -0.5},
]


# The contract, on both backends.


@pytest.mark.anyio
async def test_messages_of_every_kind_arrive_as_sent_and_in_order(broadcast: Broadcast) -> None:
    channel = channel_name()
    async with broadcast.subscribe(channel) as subscription:
        for message in MESSAGES:
            await broadcast.publish(channel, message)
        received = await receive(subscription, len(MESSAGES))
    for got, sent in zip(received, MESSAGES, strict=True):
        assert same(got, sent), (got, sent)


@pytest.mark.anyio
async def test_json_values_arrive_as_json_makes_them(broadcast: Broadcast) -> None:
    # What JSON cannot tell apart arrives as JSON reads it; bytes-likes arrive as bytes.
    channel = channel_name()
    sent: list[Any] = [(1, 2), {1: "one"}, bytearray(b"ab"), memoryview(b"cd")]
    async with broadcast.subscribe(channel) as subscription:
        for message in sent:
            await broadcast.publish(channel, message)
        received = await receive(subscription, len(sent))
    assert all(map(same, received, [[1, 2], {"1": "one"}, b"ab", b"cd"])), received


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(st.characters() | st.characters(categories=["Cs"]), max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=4), children, max_size=4)
    ),
    max_leaves=12,
)


@pytest.mark.anyio
@settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(value=json_values)
async def test_any_json_value_round_trips(broadcast: Broadcast, value: Any) -> None:
    channel = channel_name("json")
    async with broadcast.subscribe(channel) as subscription:
        await broadcast.publish(channel, value)
        [received] = await receive(subscription, 1)
    assert same(received, value), (received, value)


@pytest.mark.anyio
async def test_every_subscriber_gets_every_message(broadcast: Broadcast) -> None:
    channel = channel_name()
    async with (
        broadcast.subscribe(channel) as first,
        broadcast.subscribe(channel) as second,
        broadcast.subscribe(channel, queue_size=50, overflow="drop_oldest") as third,
    ):
        for number in range(20):
            await broadcast.publish(channel, number)
        for subscription in (first, second, third):
            assert await receive(subscription, 20) == list(range(20))


@pytest.mark.anyio
async def test_a_channels_messages_never_reach_another_channels_subscribers(
    broadcast: Broadcast,
) -> None:
    channel = channel_name("news")
    # Names alike, and names a pattern subscription would match: channels are exact.
    others = [f"{channel}*", channel[:-1], f"{channel}x", channel.upper(), f" {channel}"]
    async with (
        broadcast.subscribe(channel) as subscription,
        broadcast.subscribe(others[0]) as pattern_like,
    ):
        for other in others:
            await broadcast.publish(other, f"for {other}")
        await broadcast.publish(channel, "mine")
        await broadcast.publish(others[0], "end")
        assert await receive(subscription, 1) == ["mine"]
        assert await receive(pattern_like, 2) == [f"for {others[0]}", "end"]


@pytest.mark.anyio
async def test_a_subscriber_gets_only_messages_published_after_it_subscribed(
    broadcast: Broadcast,
) -> None:
    channel = channel_name()
    await broadcast.publish(channel, "before anyone")
    async with broadcast.subscribe(channel) as subscription:
        await broadcast.publish(channel, "after")
        await broadcast.publish(channel, "end")
        assert await receive(subscription, 2) == ["after", "end"]


@pytest.mark.anyio
async def test_a_later_subscriber_gets_what_is_published_once_it_joined(
    broadcast: Broadcast, under_test: BackendUnderTest
) -> None:
    channel = channel_name()
    async with broadcast.subscribe(channel) as first:
        await broadcast.publish(channel, "before the second")
        async with broadcast.subscribe(channel) as second:
            await broadcast.publish(channel, "after the second")
            assert await receive(first, 2) == ["before the second", "after the second"]
            got = await receive(second, 1)
            if got == ["before the second"]:
                # Documented (docs/scaling.md, Backend): through a server, a message still
                # on its way when a subscriber joins reaches it too.
                assert not under_test.in_memory
                got = await receive(second, 1)
            assert got == ["after the second"]


@pytest.mark.anyio
async def test_leaving_the_block_unsubscribes(
    broadcast: Broadcast, under_test: BackendUnderTest
) -> None:
    channel = channel_name()
    async with broadcast.subscribe(channel) as staying:
        async with broadcast.subscribe(channel) as leaving:
            await broadcast.publish(channel, "both")
            assert await receive(leaving, 1) == ["both"]
        await broadcast.publish(channel, "one")
        assert await receive(staying, 2) == ["both", "one"]
        assert await read_to_end(leaving) == []  # it ended, and got nothing more
        assert await under_test.subscriptions(channel) in (1, None)  # still, for `staying`
    await broadcast.publish(channel, "nobody")
    assert await read_to_end(staying) == []
    await under_test.wait_for_subscriptions(channel, 0)  # the last one left: unsubscribed


@pytest.mark.anyio
async def test_a_channel_can_be_subscribed_to_again_after_it_was_left(
    broadcast: Broadcast,
) -> None:
    channel = channel_name()
    for round_ in range(3):
        async with broadcast.subscribe(channel) as subscription:
            await broadcast.publish(channel, round_)
            assert await receive(subscription, 1) == [round_]


@pytest.mark.anyio
async def test_overflow_close_reads_what_was_queued_then_raises(broadcast: Broadcast) -> None:
    channel = channel_name()
    async with broadcast.subscribe(channel, queue_size=3, overflow="close") as subscription:
        for number in range(5):
            await broadcast.publish(channel, number)
        await publish_last(broadcast, channel, 5)
        assert await receive(subscription, 3) == [0, 1, 2]
        with anyio.fail_after(TIMEOUT), pytest.raises(SubscriptionOverflow) as info:
            await anext(subscription)
        assert (info.value.channel, info.value.queue_size) == (channel, 3)
        # It was unsubscribed: nothing published since reaches it.
        await publish_last(broadcast, channel, "later")
        with anyio.fail_after(TIMEOUT), pytest.raises(SubscriptionOverflow):
            await anext(subscription)


@pytest.mark.anyio
async def test_an_overflowing_subscriber_does_not_disturb_the_others(
    broadcast: Broadcast,
) -> None:
    channel = channel_name()
    async with (
        broadcast.subscribe(channel, queue_size=2, overflow="close") as slow,
        broadcast.subscribe(channel, queue_size=100) as fast,
    ):
        for number in range(10):
            await broadcast.publish(channel, number)
        assert await receive(fast, 10) == list(range(10))
        assert await receive(slow, 2) == [0, 1]
        with anyio.fail_after(TIMEOUT), pytest.raises(SubscriptionOverflow):
            await anext(slow)
        await broadcast.publish(channel, "still here")
        assert await receive(fast, 1) == ["still here"]
    # Then a subscriber of a channel whose only subscriber overflowed gets its messages.
    async with broadcast.subscribe(channel, queue_size=1) as only:
        await broadcast.publish(channel, 0)
        await broadcast.publish(channel, 1)  # the last: none is on its way once it overflowed
        await until(lambda: not broadcast._subscribers[channel])  # a look inside: it overflowed
        assert await receive(only, 1) == [0]
        with anyio.fail_after(TIMEOUT), pytest.raises(SubscriptionOverflow):
            await anext(only)
    async with broadcast.subscribe(channel) as again:
        await broadcast.publish(channel, "again")
        assert await receive(again, 1) == ["again"]


@pytest.mark.anyio
async def test_a_subscriber_that_comes_before_an_overflowed_one_left_gets_messages(
    broadcast: Broadcast, under_test: BackendUnderTest
) -> None:
    # The backend is asked to subscribe to a channel it is subscribed to already, and
    # to unsubscribe once (Backend.subscribe() says so).
    channel = channel_name()
    async with broadcast.subscribe(channel, queue_size=1) as overflowed:
        await broadcast.publish(channel, 0)
        await broadcast.publish(channel, 1)  # the last: none is on its way once it overflowed
        await until(lambda: not broadcast._subscribers[channel])  # a look inside: it overflowed
        async with broadcast.subscribe(channel) as newcomer:
            await broadcast.publish(channel, "for the newcomer")
            assert await receive(newcomer, 1) == ["for the newcomer"]
        assert await receive(overflowed, 1) == [0]
        with anyio.fail_after(TIMEOUT), pytest.raises(SubscriptionOverflow):
            await anext(overflowed)
        await under_test.wait_for_subscriptions(channel, 0)
    async with broadcast.subscribe(channel) as again:
        await broadcast.publish(channel, "again")
        assert await receive(again, 1) == ["again"]


@pytest.mark.anyio
async def test_overflow_drop_oldest_keeps_the_newest_and_counts_the_dropped(
    broadcast: Broadcast,
) -> None:
    channel = channel_name()
    async with broadcast.subscribe(channel, queue_size=3, overflow="drop_oldest") as subscription:
        for number in range(9):
            await broadcast.publish(channel, number)
        await publish_last(broadcast, channel, 9)
        assert subscription.dropped == 7
        assert await receive(subscription, 3) == [7, 8, 9]
        await broadcast.publish(channel, 10)  # room again: nothing more is dropped
        assert await receive(subscription, 1) == [10]
        assert subscription.dropped == 7


@pytest.mark.anyio
async def test_many_concurrent_publishes_all_arrive(broadcast: Broadcast) -> None:
    channel = channel_name()
    async with broadcast.subscribe(channel, queue_size=1000) as subscription:
        async with anyio.create_task_group() as group:
            for number in range(150):
                group.start_soon(broadcast.publish, channel, number)
        assert sorted(await receive(subscription, 150)) == list(range(150))


@pytest.mark.anyio
async def test_the_broadcasts_queue_size_and_overflow_are_every_subscribers_default(
    under_test: BackendUnderTest,
) -> None:
    channel = channel_name()
    async with (
        under_test.make(queue_size=2, overflow="drop_oldest") as broadcast,
        broadcast.subscribe(channel) as subscription,
    ):
        assert (subscription.queue_size, subscription.overflow) == (2, "drop_oldest")
        for number in range(4):
            await broadcast.publish(channel, number)
        await publish_last(broadcast, channel, 4)
        assert subscription.dropped == 3
        assert await receive(subscription, 2) == [3, 4]


BAD_QUEUES: list[dict[str, Any]] = [
    {"queue_size": 0},
    {"queue_size": -1},
    {"queue_size": 1.5},
    {"queue_size": True},
    {"queue_size": "3"},
    {"overflow": "block"},
    {"overflow": "CLOSE"},
    {"overflow": ""},
]


@pytest.mark.parametrize("options", BAD_QUEUES)
def test_an_invalid_queue_size_or_overflow_is_a_value_error(
    options: dict[str, Any], under_test: BackendUnderTest
) -> None:
    with pytest.raises(ValueError, match=r"queue_size|overflow"):
        under_test.make(**options)


@pytest.mark.anyio
@pytest.mark.parametrize("options", BAD_QUEUES)
async def test_subscribe_with_an_invalid_queue_size_or_overflow_is_a_value_error(
    broadcast: Broadcast, options: dict[str, Any]
) -> None:
    channel = channel_name()
    with pytest.raises(ValueError, match=r"queue_size|overflow"):
        async with broadcast.subscribe(channel, **options):
            pass  # pragma: no cover - refused
    # Nothing was left behind: the channel works.
    async with broadcast.subscribe(channel) as subscription:
        await broadcast.publish(channel, "fine")
        assert await receive(subscription, 1) == ["fine"]


@pytest.mark.parametrize(
    "bad_url", ["", "memory:", "kafka://localhost", "http://localhost:6379", "MEMORY://"]
)
def test_an_unsupported_url_scheme_is_a_value_error(bad_url: str) -> None:
    with pytest.raises(ValueError, match="unsupported broadcast URL"):
        Broadcast(bad_url)


def test_memory_takes_no_options() -> None:
    with pytest.raises(TypeError, match="no options"):
        Broadcast("memory://", socket_timeout=1)


@pytest.mark.parametrize(
    ("url", "options"),
    [
        ("redis://127.0.0.1:6379/0", {"decode_responses": True}),
        ("redis://127.0.0.1:6379/0?decode_responses=true", {}),
    ],
)
def test_redis_refuses_decode_responses_which_would_drop_every_message(
    url: str, options: dict[str, Any]
) -> None:
    with pytest.raises(TypeError, match="decode_responses"):
        Broadcast(url, **options)


def circular() -> list[Any]:
    loop: list[Any] = []
    loop.append(loop)
    return loop


@pytest.mark.anyio
@pytest.mark.parametrize(
    "message",
    [object(), {1, 2}, math.nan, math.inf, {"a": object()}, {(1, 2): 3}, circular()],
    ids=["object", "set", "nan", "inf", "nested-object", "tuple-key", "circular"],
)
async def test_publishing_what_json_cannot_encode_is_a_type_error(
    broadcast: Broadcast, message: Any
) -> None:
    channel = channel_name()
    async with broadcast.subscribe(channel) as subscription:
        with pytest.raises(TypeError):
            await broadcast.publish(channel, message)
        await broadcast.publish(channel, "next")
        assert await receive(subscription, 1) == ["next"]  # nothing was published


async def refused_when_not_connected(broadcast: Broadcast) -> None:
    assert "not connected" in repr(broadcast)
    with pytest.raises(RuntimeError, match="connect"):
        await broadcast.publish("channel", "message")
    with pytest.raises(RuntimeError, match="connect"):
        async with broadcast.subscribe("channel"):
            pass  # pragma: no cover - refused
    await broadcast.disconnect()  # not connected: nothing to do


@pytest.mark.anyio
async def test_publish_or_subscribe_before_connect_is_a_runtime_error(
    under_test: BackendUnderTest,
) -> None:
    broadcast = under_test.make()
    await refused_when_not_connected(broadcast)
    async with broadcast:
        assert "not connected" not in repr(broadcast)
        with pytest.raises(RuntimeError, match="already connected"):
            await broadcast.connect()


@pytest.mark.anyio
async def test_publish_or_subscribe_after_disconnect_is_a_runtime_error(
    under_test: BackendUnderTest,
) -> None:
    async with under_test.make() as broadcast:
        pass
    await refused_when_not_connected(broadcast)


@pytest.mark.anyio
async def test_disconnect_ends_subscriptions_after_what_was_queued(
    under_test: BackendUnderTest,
) -> None:
    channel = channel_name()
    broadcast = under_test.make()
    await broadcast.connect()
    try:
        async with (
            broadcast.subscribe(channel) as queued,
            broadcast.subscribe(channel) as waiting,
            anyio.create_task_group() as group,
        ):
            await broadcast.publish(channel, 1)
            await publish_last(broadcast, channel, 2)
            assert await receive(waiting, 2) == [1, 2]
            read: list[Any] = []

            async def read_all() -> None:  # waits for a message when disconnect() comes
                read.extend(await read_to_end(waiting))

            group.start_soon(read_all)
            await anyio.wait_all_tasks_blocked()
            with anyio.fail_after(TIMEOUT):
                await broadcast.disconnect()
            assert await read_to_end(queued) == [1, 2]
        assert read == []
    finally:
        await broadcast.disconnect()


@pytest.mark.anyio
async def test_a_broadcast_connects_again_after_disconnecting(
    under_test: BackendUnderTest,
) -> None:
    broadcast = under_test.make()
    async with contextlib.AsyncExitStack() as stack:
        publisher = broadcast
        if not under_test.in_memory:  # another process, whose connection is open: it is quick
            publisher = await stack.enter_async_context(under_test.make())
            await publisher.publish("warm-up", "")
        for round_ in range(3):
            async with broadcast:
                channel = channel_name()
                async with broadcast.subscribe(channel) as subscription:
                    await publisher.publish(channel, round_)
                    # Lost, not late, when it fails: a short bound is enough.
                    assert await receive(subscription, 1, within=2) == [round_]


@pytest.mark.anyio
async def test_disconnect_right_after_connecting_again_returns(
    under_test: BackendUnderTest,
) -> None:
    broadcast = under_test.make()
    await broadcast.connect()
    await broadcast.disconnect()
    await broadcast.connect()
    backend = broadcast._backend
    reader = backend._reader if isinstance(backend, RedisBackend) else None
    try:
        with anyio.fail_after(2):
            await broadcast.disconnect()
    finally:  # after the bug (in RedisBackend): what disconnect() did not do
        if isinstance(backend, RedisBackend) and reader is not None and not reader.done():
            reader.cancel()  # a second cancellation reaches it
            with anyio.fail_after(TIMEOUT):
                await asyncio.wait([reader])
            await backend._client.aclose()


# With a server: processes, and outages.


@pytest.mark.anyio
async def test_two_processes_see_each_others_messages_in_order(
    with_server: BackendUnderTest,
) -> None:
    channel = channel_name()
    async with (
        with_server.make() as one,
        with_server.make() as two,
        one.subscribe(channel) as on_one,
        two.subscribe(channel) as on_two,
    ):
        for number in range(50):
            await one.publish(channel, ["one", number])
        for number in range(50):
            await two.publish(channel, ["two", number])
        expected = [["one", n] for n in range(50)] + [["two", n] for n in range(50)]
        assert await receive(on_one, 100) == expected
        assert await receive(on_two, 100) == expected


async def back_again(
    publisher: Broadcast, *subscriptions: Subscription, late: tuple[Any, ...] = ()
) -> None:
    """Publish until each of `subscriptions` gets a message; fail after `TIMEOUT`.

    Then read on each until a last marker, so that they hold nothing more. Messages
    in `late` may come in between (published before, and delivered after all).
    """
    expected = {"ping", *late}
    channel = subscriptions[0].channel
    waiting = list(subscriptions)
    with anyio.fail_after(TIMEOUT):
        while waiting:
            with contextlib.suppress(BroadcastUnavailable):
                await publisher.publish(channel, "ping")
            for subscription in list(waiting):
                with anyio.move_on_after(POLL):  # a pause of the bounded polling loop
                    assert await anext(subscription) in expected
                    waiting.remove(subscription)
        await publisher.publish(channel, "synced")
        for subscription in subscriptions:
            while (message := await anext(subscription)) != "synced":
                assert message in expected


@pytest.mark.anyio
@pytest.mark.parametrize("kill", [True, False], ids=["SIGKILL", "SIGTERM"])
async def test_subscriptions_come_back_by_themselves_when_the_server_does(
    with_server: BackendUnderTest, kill: bool, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "bocws.broadcast")
    server = with_server.server
    assert server is not None
    channel = channel_name()
    async with (
        with_server.make() as one,
        with_server.make() as two,
        one.subscribe(channel) as on_one,
        two.subscribe(channel) as on_two,
    ):
        await one.publish(channel, "before")
        assert await receive(on_one, 1) == await receive(on_two, 1) == ["before"]

        server.stop(kill=kill)
        for publisher in (one, two):
            with anyio.fail_after(TIMEOUT), pytest.raises(BroadcastUnavailable) as info:
                await publisher.publish(channel, "while down")
            if isinstance(server, RedisServer):
                assert server.url.removeprefix("redis://") in str(info.value)

        server.start()  # (Redis: on the same port) the test does nothing more
        await back_again(one, on_one, on_two)
        for number in range(10):
            await one.publish(channel, ["one", number])
            await two.publish(channel, ["two", number])
        expected = [[name, n] for n in range(10) for name in ("one", "two")]
        assert await receive(on_one, 20) == expected
        assert await receive(on_two, 20) == expected
    if isinstance(server, RedisServer):
        warnings = [r.getMessage() for r in caplog.records if r.name == "bocws.broadcast"]
        assert any("lost the connection to Redis" in w for w in warnings), warnings
        assert any("connected to Redis at" in w and "again" in w for w in warnings), warnings


@pytest.mark.anyio
async def test_a_subscription_made_while_the_server_is_down_starts_once_it_is_back(
    with_server: BackendUnderTest,
) -> None:
    server = with_server.server
    assert server is not None
    channel = channel_name()
    async with (
        with_server.make() as broadcast,
        broadcast.subscribe(channel_name("existing")) as existing,
    ):
        server.stop(kill=True)
        with anyio.fail_after(TIMEOUT):  # it does not wait for the server
            async with broadcast.subscribe(channel) as late:
                server.start()
                await back_again(broadcast, late)
                await broadcast.publish(existing.channel, "existing too")
                assert await receive(existing, 1) == ["existing too"]


@pytest.mark.anyio
async def test_a_channel_left_while_the_server_is_down_is_not_subscribed_to_again(
    with_server: BackendUnderTest,
) -> None:
    server = with_server.server
    assert server is not None
    left = channel_name("left")
    async with (
        with_server.make() as broadcast,
        broadcast.subscribe(channel_name("kept")) as kept,
    ):
        async with broadcast.subscribe(left):
            assert await with_server.subscriptions(left) == 1
            server.stop(kill=True)
        server.start()
        await back_again(broadcast, kept)  # subscribed again: to `kept` only
        assert await with_server.subscriptions(left) == 0
        assert await with_server.subscriptions(kept.channel) == 1


@pytest.mark.anyio
async def test_connect_raises_broadcast_unavailable_while_the_server_is_down(
    with_server: BackendUnderTest,
) -> None:
    server = with_server.server
    assert server is not None
    server.stop(kill=True)
    broadcast = with_server.make()
    with anyio.fail_after(TIMEOUT), pytest.raises(BroadcastUnavailable):
        await broadcast.connect()
    await refused_when_not_connected(broadcast)
    # Once the server is there, the broadcast connects.
    server.start()
    channel = channel_name()
    async with broadcast, broadcast.subscribe(channel) as subscription:
        await broadcast.publish(channel, "back")
        assert await receive(subscription, 1) == ["back"]


# Redis only: a frozen server, what it says, and clients that are not bocws.


@pytest.mark.anyio
async def test_a_redis_that_stops_answering_is_left_and_found_again(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Frozen (SIGSTOP), as behind a network partition: the connections stay open and
    # nothing answers. The reader pings a connection silent for PING_EVERY seconds and
    # takes it for dead after twice that; a publish waits for `socket_timeout`.
    monkeypatch.setattr(bocws.broadcast._backends, "PING_EVERY", 0.5)
    caplog.set_level(logging.WARNING, "bocws.broadcast")
    channel = channel_name()
    async with (
        Broadcast(redis_server.url, socket_timeout=1) as broadcast,
        broadcast.subscribe(channel) as subscription,
    ):
        await broadcast.publish(channel, "before")
        assert await receive(subscription, 1) == ["before"]
        redis_server.pause()
        try:
            with anyio.fail_after(TIMEOUT), pytest.raises(BroadcastUnavailable):
                await broadcast.publish(channel, "frozen")
            await until(
                lambda: any("lost the connection" in r.getMessage() for r in caplog.records)
            )
        finally:
            redis_server.resume()
        # The frozen server may still run the publish it had read: it is not "nothing
        # was published", only "not known to be".
        await back_again(broadcast, subscription, late=("frozen",))


@pytest.mark.anyio
async def test_an_unreachable_redis_is_named_without_its_password(
    redis_server: RedisServer,
) -> None:
    redis_server.stop(kill=True)
    secret_url = f"redis://user:s3cret@127.0.0.1:{redis_server.port}/0"
    for broadcast in [Broadcast(redis_server.url), Broadcast(secret_url)]:
        with anyio.fail_after(TIMEOUT), pytest.raises(BroadcastUnavailable) as info:
            await broadcast.connect()
        assert f"127.0.0.1:{redis_server.port}" in str(info.value)
        assert "s3cret" not in str(info.value)
        assert "s3cret" not in repr(broadcast)


FOREIGN = [b"hello", b"", b"x{}", b"j{", b"jnot json", b"t\xff\xfe", b"j\xff", b"j" + b"1" * 5000]


@pytest.mark.anyio
@pytest.mark.parametrize("payload", FOREIGN, ids=lambda payload: repr(payload[:12]))
async def test_a_foreign_message_is_dropped_with_a_warning(
    redis_client: redis.asyncio.Redis,
    redis_server: RedisServer,
    payload: bytes,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, "bocws.broadcast")
    channel = channel_name()
    async with Broadcast(redis_server.url) as broadcast, broadcast.subscribe(channel) as sub:
        await redis_client.publish(channel, payload)  # as `redis-cli publish` would
        await broadcast.publish(channel, "after")
        assert await receive(sub, 1) == ["after"]
    [record] = [r for r in caplog.records if r.name == "bocws.broadcast"]
    assert record.levelno == logging.WARNING
    assert f"dropped a message on channel {channel!r}" in record.getMessage()


@pytest.mark.anyio
async def test_a_deeply_nested_foreign_message_does_not_stop_delivery(
    redis_client: redis.asyncio.Redis, redis_server: RedisServer
) -> None:
    channel = channel_name()
    async with Broadcast(redis_server.url) as broadcast, broadcast.subscribe(channel) as sub:
        await redis_client.publish(channel, b"j" + b"[" * 100_000)
        await broadcast.publish(channel, "after")
        assert await receive(sub, 1, within=2) == ["after"]


@pytest.mark.anyio
async def test_a_quiet_subscription_stays_connected(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The reader pings a connection that has been silent for PING_EVERY seconds, and
    # takes it for dead after twice that without an answer: a live one answers.
    monkeypatch.setattr(bocws.broadcast._backends, "PING_EVERY", 1.0)
    caplog.set_level(logging.WARNING, "bocws.broadcast")
    channel = channel_name()
    async with Broadcast(redis_server.url) as broadcast, broadcast.subscribe(channel) as sub:
        await anyio.sleep(3.5)  # quiet, as a channel with nothing to say (not a sync)
        await broadcast.publish(channel, "still there")
        assert await receive(sub, 1) == ["still there"]
    assert [r.getMessage() for r in caplog.records if r.name == "bocws.broadcast"] == []


# Rooms: Broadcast.room() in an App, through Starlette's TestClient.


def app_with(under_test: BackendUnderTest, **options: Any) -> tuple[App, Broadcast]:
    """An empty app with a broadcast, connected while the app runs."""
    broadcast = under_test.make(**options)
    app = App()
    app.on_startup(broadcast.connect)
    app.on_shutdown(broadcast.disconnect)
    return app, broadcast


def room_app(
    under_test: BackendUnderTest, *, slow: bool = False, **options: Any
) -> tuple[App, Broadcast]:
    """An app whose `/rooms/{name}` relays each client's JSON messages to its room.

    `slow`: each send to a client takes 10 ms, as over a slow network.
    """
    app, broadcast = app_with(under_test, **options)

    @app.websocket_route("/rooms/{name}", value_type="json")
    async def room(ws: WebSocket, name: str) -> None:
        if slow:
            send = ws.send

            async def slow_send(message: Any) -> None:
                await anyio.sleep(0.01)
                await send(message)

            ws.send = slow_send  # type: ignore[method-assign]
        async with broadcast.room(ws, name):
            await ws.send({"joined": name})  # in the room: the test may go on
            async for message in ws:
                await broadcast.publish(name, message)

    return app, broadcast


def receive_json(session: WebSocketTestSession) -> Any:
    """The next JSON message the app sends `session`; fail after `TIMEOUT` s.

    Raises:
        starlette.websockets.WebSocketDisconnect: the app closed the connection.
    """

    async def bounded() -> Any:
        with anyio.fail_after(TIMEOUT):
            return await session._send_rx.receive()

    message = session.portal.call(bounded)
    if message["type"] == "websocket.close":
        raise ClientDisconnected(message.get("code", 1000), message.get("reason") or "")
    return json.loads(message["text"])


def room_members(session: WebSocketTestSession, broadcast: Broadcast, name: str) -> int:
    """The app's subscribers to `name` (a look inside: nothing public counts them)."""
    return session.portal.call(lambda: subscribers_of(broadcast, name))


def subscribers_of(broadcast: Broadcast, name: str) -> int:
    """The subscribers to `name` here, the sockets of its rooms included (a look inside)."""
    fanout = broadcast._fanouts.get(name)  # under asyncio, the rooms' sockets are its members
    return len(broadcast._subscribers.get(name, ())) + (
        0 if fanout is None else len(fanout.members)
    )


def wait_until_left(
    session: WebSocketTestSession,
    broadcast: Broadcast,
    name: str,
    under_test: BackendUnderTest,
) -> None:
    """Poll until the app has left `name`, and its server has no subscriber to it; bounded."""
    deadline = time.monotonic() + TIMEOUT
    # A look inside, as for `room_members`: an overflowed subscriber's channel stays
    # there, empty, until its block ends.
    while session.portal.call(lambda: name in broadcast._subscribers or name in broadcast._fanouts):
        assert time.monotonic() < deadline, f"the app is still subscribed to {name!r}"
        time.sleep(POLL)  # a pause of the bounded polling loop
    session.portal.call(under_test.wait_for_subscriptions, name, 0)


def test_room_members_see_each_others_messages(under_test: BackendUnderTest) -> None:
    app, _broadcast = room_app(under_test)
    with (
        TestClient(app) as client,
        client.websocket_connect("/rooms/r") as ana,
        client.websocket_connect("/rooms/r") as bob,
        client.websocket_connect("/rooms/elsewhere") as eve,
    ):
        for session in (ana, bob):
            assert receive_json(session) == {"joined": "r"}
        assert receive_json(eve) == {"joined": "elsewhere"}
        ana.send_json({"from": "ana", "text": "héllo"})
        bob.send_json({"from": "bob", "n": [1, 2.5, None]})
        for session in (ana, bob):
            got = [receive_json(session), receive_json(session)]
            assert {"from": "ana", "text": "héllo"} in got
            assert {"from": "bob", "n": [1, 2.5, None]} in got
        eve.send_json("alone")
        assert receive_json(eve) == "alone"  # and nothing from room r before it
        ana.send_json("bye")
        assert receive_json(ana) == receive_json(bob) == "bye"


def test_a_client_that_disconnects_leaves_the_room(under_test: BackendUnderTest) -> None:
    app, broadcast = room_app(under_test)
    with TestClient(app) as client, client.websocket_connect("/rooms/r") as bob:
        assert receive_json(bob) == {"joined": "r"}
        with client.websocket_connect("/rooms/r") as ana:
            assert receive_json(ana) == {"joined": "r"}
            assert room_members(ana, broadcast, "r") == 2
            ana.close(1001)
            deadline = time.monotonic() + TIMEOUT
            while room_members(ana, broadcast, "r") != 1:
                assert time.monotonic() < deadline, "ana is still in the room"
                time.sleep(POLL)  # a pause of the bounded polling loop
        bob.send_json("still here")
        assert receive_json(bob) == "still here"
        bob.close(1000)
        wait_until_left(bob, broadcast, "r", under_test)


FLOOD = 50
"""Concurrent publishes (under redis-py's 100 connections: see the test of many)."""


def test_a_room_member_that_falls_behind_is_closed_with_1013(
    under_test: BackendUnderTest, caplog: pytest.LogCaptureFixture
) -> None:
    app, broadcast = room_app(under_test, queue_size=4, slow=True)

    async def flood() -> None:  # in the app's event loop, all at once: it cannot keep up
        async with anyio.create_task_group() as group:
            for number in range(FLOOD):
                group.start_soon(broadcast.publish, "slow", number)

    with TestClient(app) as client, client.websocket_connect("/rooms/slow") as ana:
        assert receive_json(ana) == {"joined": "slow"}
        ana.portal.call(flood)
        received: list[Any] = []
        with pytest.raises(ClientDisconnected) as info:  # noqa: PT012 - read until the close
            for _ in range(FLOOD):
                received.append(receive_json(ana))
        ana.close(1013)  # the client answers the close, as a browser would
        wait_until_left(ana, broadcast, "slow", under_test)
    assert (info.value.code, info.value.reason) == (1013, "too slow: try again later")
    # Some (with memory://, what the queue held and one the relay had taken; with Redis,
    # also what the relay sent while the burst came in), then the close. (Concurrent
    # publishes reach Redis in no particular order.)
    assert len(received) < FLOOD
    assert len(set(received)) == len(received)
    assert set(received) <= set(range(FLOOD))
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.anyio
async def test_a_reader_failure_not_the_networks_is_logged_and_recovered(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "bocws.broadcast")
    broadcast = Broadcast(redis_server.url)
    backend = broadcast._backend
    assert isinstance(backend, bocws.broadcast._backends.RedisBackend)
    make_pubsub = backend._reader_client.pubsub
    failures = iter([RuntimeError("a bug somewhere below")])

    def pubsub_failing_once() -> Any:
        for failure in failures:
            raise failure
        return make_pubsub()

    backend._reader_client.pubsub = pubsub_failing_once  # type: ignore[method-assign]
    channel = channel_name()
    async with broadcast, broadcast.subscribe(channel) as subscription:
        await broadcast.publish(channel, "still delivered")
        assert await receive(subscription, 1) == ["still delivered"]
    failed = [
        r for r in caplog.records if r.getMessage() == "the Redis reader failed; reconnecting"
    ]
    assert len(failed) == 1
    assert failed[0].exc_info is not None


# Rooms: errors and closes inside a room.


def test_an_error_raised_in_a_room_comes_out_of_it_unchanged(
    under_test: BackendUnderTest, caplog: pytest.LogCaptureFixture
) -> None:
    app, broadcast = app_with(under_test)
    codes: list[int] = []

    @app.websocket_route("/room", value_type="json")
    async def room(ws: WebSocket) -> None:
        try:
            async with broadcast.room(ws, "r"):
                await ws.send("in")
                async for _message in ws:
                    pass
        except WebSocketDisconnect as disconnect:  # not an ExceptionGroup
            codes.append(disconnect.code)

    with TestClient(app) as client, client.websocket_connect("/room") as session:
        assert receive_json(session) == "in"
        session.close(4001)
        deadline = time.monotonic() + TIMEOUT
        while not codes:
            assert time.monotonic() < deadline, "the view never caught the disconnect"
            time.sleep(POLL)  # a pause of the bounded polling loop
    assert codes == [4001]
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []


def test_a_room_stops_relaying_quietly_once_the_view_closed_the_socket(
    under_test: BackendUnderTest, caplog: pytest.LogCaptureFixture
) -> None:
    app, broadcast = app_with(under_test)
    relayed_after_close = anyio.Event()

    @app.websocket_route("/room", value_type="json")
    async def room(ws: WebSocket) -> None:
        async with broadcast.room(ws, "r"):
            await ws.close(4000, "bye")
            await broadcast.publish("r", "after the close")  # the relay has nowhere to send it
            await broadcast.publish("r", "and again")
            relayed_after_close.set()

    with TestClient(app) as client, client.websocket_connect("/room") as session:
        with pytest.raises(ClientDisconnected) as closed:
            receive_json(session)
        assert closed.value.code == 4000
        session.portal.call(relayed_after_close.wait)
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []


def test_a_message_a_room_cannot_send_is_logged_and_ends_the_relaying_only(
    under_test: BackendUnderTest, caplog: pytest.LogCaptureFixture
) -> None:
    app, broadcast = app_with(under_test)

    @app.websocket_route("/room", send_type="text")
    async def room(ws: WebSocket) -> None:
        async with broadcast.room(ws, "r"):
            async for message in ws:
                if message == "publish bytes":
                    await broadcast.publish("r", b"not text")  # send_type="text": a TypeError
                else:
                    await ws.send(f"echo {message}")  # the view itself goes on

    def failures() -> list[logging.LogRecord]:
        return [r for r in caplog.records if "stopped relaying" in r.getMessage()]

    with TestClient(app) as client, client.websocket_connect("/room") as session:
        session.send_text("publish bytes")
        session.send_text("still there?")
        assert session.receive_text() == "echo still there?"
        # Through a network backend the message may still be on its way: wait for it
        # (bounded) before the socket closes, or the relay would never try to send it.
        deadline = time.monotonic() + TIMEOUT
        while not failures() and time.monotonic() < deadline:
            time.sleep(POLL)
    assert len(failures()) == 1
    assert failures()[0].levelno == logging.ERROR


# Arguments, cancellation and bursts.


@pytest.mark.anyio
async def test_a_channel_must_be_a_str(broadcast: Broadcast) -> None:
    with pytest.raises(TypeError, match="a channel is named by a str, got int"):
        await broadcast.publish(123, "x")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="a channel is named by a str, got bytes"):
        async with broadcast.subscribe(b"c"):  # type: ignore[arg-type]
            pass  # pragma: no cover - refused


@pytest.mark.anyio
async def test_waits_cancelled_on_a_quiet_channel_leave_nothing_behind(
    broadcast: Broadcast,
) -> None:
    channel = channel_name()
    async with broadcast.subscribe(channel) as subscription:
        for _ in range(100):
            with anyio.move_on_after(0):
                await anext(subscription)
        # A look inside: no task waits, and nothing piles up (asyncio keeps a future a wait).
        assert subscription._wakeup.waiting == 0
        assert len(getattr(subscription._wakeup, "_futures", ())) <= 1
        await broadcast.publish(channel, "then a message")
        assert await receive(subscription, 1) == ["then a message"]


@pytest.mark.anyio
async def test_a_burst_from_redis_does_not_overflow_a_subscriber_that_keeps_up(
    redis_server: RedisServer, redis_client: redis.asyncio.Redis
) -> None:
    # redis-py hands out a whole read's messages at once: the reader must let the
    # subscriber run between them.
    channel = channel_name()
    count = 5_000
    async with (
        Broadcast(redis_server.url, queue_size=100) as broadcast,
        broadcast.subscribe(channel) as subscription,
    ):
        pipeline = redis_client.pipeline(transaction=False)
        for number in range(count):
            pipeline.publish(channel, b"j" + str(number).encode())
        await pipeline.execute()
        assert await receive(subscription, count) == list(range(count))


@pytest.mark.anyio
async def test_a_cancelled_connect_leaves_no_reader_behind(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    backends = bocws.broadcast._backends

    async def never_ready(self: backends.RedisBackend) -> None:
        await anyio.sleep_forever()  # as a reader still connecting when connect() gives up

    broadcast = Broadcast(redis_server.url)
    backend = broadcast._backend
    assert isinstance(backend, backends.RedisBackend)
    with monkeypatch.context() as patched:
        patched.setattr(backends.RedisBackend, "_read", never_ready)
        with anyio.move_on_after(0.2):
            await broadcast.connect()
    assert backend._reader is None  # cancelled with the connect(), not left running
    async with broadcast, broadcast.subscribe("c") as subscription:  # and it connects again
        await broadcast.publish("c", "fine")
        assert await receive(subscription, 1) == ["fine"]


def test_the_memory_backend_works_under_trio_too() -> None:
    # Subscriptions wait on a bare future under asyncio, on anyio's event elsewhere.
    async def main() -> tuple[list[Any], list[Any]]:
        async with Broadcast("memory://", queue_size=2) as broadcast:
            async with broadcast.subscribe("c") as subscription:
                with anyio.move_on_after(0.01):  # a wait cancelled on a quiet channel
                    await anext(subscription)
                assert repr(subscription) == "<Subscription 'c': 0 queued, 0 waiting>"
                got: list[Any] = []
                async with anyio.create_task_group() as group:

                    async def read() -> None:
                        async for message in subscription:  # woken by each publish
                            got.append(message)
                            if len(got) == 3:
                                return

                    group.start_soon(read)
                    for message in ("a", b"b", {"c": [1]}):
                        await anyio.sleep(0.01)  # the reader is waiting each time
                        await broadcast.publish("c", message)
            async with broadcast.subscribe("d") as behind:
                for number in range(3):  # one more than queue_size, unread
                    await broadcast.publish("d", number)
                queued = []
                with pytest.raises(SubscriptionOverflow):  # noqa: PT012 - read until it raises
                    async for message in behind:
                        queued.append(message)
        return got, queued

    got, queued = anyio.run(main, backend="trio")
    assert got == ["a", b"b", {"c": [1]}]
    assert queued == [0, 1]


# Joining and leaving a channel at the backend: one call at a time a channel, and a
# subscriber is never told it is subscribed while the backend is not.


async def wait_until(condition: Callable[[], bool]) -> None:
    """Let other tasks run until `condition()` holds; fail after `TIMEOUT`."""
    with anyio.fail_after(TIMEOUT):
        while not condition():
            await anyio.lowlevel.checkpoint()


class SlowMemoryBackend(MemoryBackend):
    """The memory backend with a subscribe and an unsubscribe that wait to be let go
    (`gates`), or fail (`failures`), and a log of the backend calls."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, str]] = []
        self.gates: dict[str, anyio.Event] = {}
        self.failures: list[BaseException] = []

    async def _call(self, name: str, channel: str) -> None:
        self.calls.append((name, channel))
        gate = self.gates.pop(name, None)
        if gate is not None:
            await gate.wait()
        if self.failures:
            raise self.failures.pop(0)

    async def subscribe(self, channel: str) -> None:
        await self._call("subscribe", channel)
        await super().subscribe(channel)

    async def unsubscribe(self, channel: str) -> None:
        await self._call("unsubscribe", channel)
        await super().unsubscribe(channel)


@pytest.mark.anyio
async def test_a_subscriber_waiting_on_a_join_that_failed_joins_itself() -> None:
    backend = SlowMemoryBackend()
    backend.gates["subscribe"] = gate = anyio.Event()
    backend.failures.append(BroadcastUnavailable("redis is down"))
    got: list[Any] = []
    async with Broadcast(backend=backend) as broadcast, anyio.create_task_group() as group:

        async def first() -> None:
            with pytest.raises(BroadcastUnavailable):
                async with broadcast.subscribe("news"):
                    raise AssertionError("the failed join gave a subscription")

        async def second(ready: anyio.Event) -> None:
            async with broadcast.subscribe("news") as news:
                ready.set()
                got.append(await anext(news))

        group.start_soon(first)
        await wait_until(lambda: backend.calls == [("subscribe", "news")])
        ready = anyio.Event()
        group.start_soon(second, ready)
        await anyio.lowlevel.checkpoint()
        gate.set()  # the first join fails; the second subscriber joins by itself
        with anyio.fail_after(TIMEOUT):
            await ready.wait()
        await broadcast.publish("news", "hello")
    assert got == ["hello"]
    assert backend.calls == [("subscribe", "news"), ("subscribe", "news"), ("unsubscribe", "news")]


@pytest.mark.anyio
async def test_a_subscriber_waiting_on_a_cancelled_join_joins_itself() -> None:
    backend = SlowMemoryBackend()
    backend.gates["subscribe"] = anyio.Event()  # never set: only a cancellation ends it
    got: list[Any] = []
    async with Broadcast(backend=backend) as broadcast, anyio.create_task_group() as group:
        with anyio.CancelScope() as first:

            async def second(ready: anyio.Event) -> None:
                async with broadcast.subscribe("news") as news:
                    ready.set()
                    got.append(await anext(news))

            async def cancel_first() -> None:
                await wait_until(lambda: len(backend.calls) == 1)
                group.start_soon(second, ready)
                await anyio.lowlevel.checkpoint()
                first.cancel()

            ready = anyio.Event()
            group.start_soon(cancel_first)
            async with broadcast.subscribe("news"):
                raise AssertionError("the cancelled join gave a subscription")
        with anyio.fail_after(TIMEOUT):
            await ready.wait()
        await broadcast.publish("news", "hello")
    assert got == ["hello"]


@pytest.mark.anyio
async def test_a_subscriber_coming_while_the_last_one_leaves_is_subscribed_after_it() -> None:
    backend = SlowMemoryBackend()
    got: list[Any] = []
    async with Broadcast(backend=backend) as broadcast, anyio.create_task_group() as group:

        async def first() -> None:
            async with broadcast.subscribe("news"):
                backend.gates["unsubscribe"] = gate
            # Left: the unsubscribe waits at the backend until the gate opens.

        async def later(ready: anyio.Event) -> None:
            async with broadcast.subscribe("news") as news:
                ready.set()
                got.append(await anext(news))

        gate = anyio.Event()
        group.start_soon(first)
        await wait_until(lambda: backend.calls[-1:] == [("unsubscribe", "news")])
        ready = anyio.Event()
        group.start_soon(later, ready)
        try:
            for _ in range(10):
                await anyio.lowlevel.checkpoint()
            assert not ready.is_set()  # not before the backend has left the channel
        finally:
            gate.set()  # else a failure would leave the shielded unsubscribe waiting
        with anyio.fail_after(TIMEOUT):
            await ready.wait()
        await broadcast.publish("news", "still here")
    assert got == ["still here"]
    assert backend.calls == [
        ("subscribe", "news"),
        ("unsubscribe", "news"),
        ("subscribe", "news"),
        ("unsubscribe", "news"),
    ]
