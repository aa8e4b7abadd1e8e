"""`Broadcast(history=...)`: message ids, resuming with `since`, and what is kept.

A contract suite, run against every backend that keeps history: `memory://` and a real
`redis-server` (a fresh one per test, `tests/redis_server.py`), each made from its URL
and passed as an object (`Broadcast(backend=...)`), and Redis behind Sentinel and Redis
Cluster (`tests/redis_topologies.py`), from their URLs. With a server, two `Broadcast`
objects on it stand for two processes. It covers the ids `publish()` returns; a resume
(`subscribe(channel, since=...)`) giving exactly the messages after `since`, then the
live ones; the seam between the two while other tasks and processes keep publishing
(no gap, no duplicate, in id order, across pages of history); `HistoryGap` for what is
no longer kept (trimmed, lost with a restart, or not an id at all); Redis's catch-up
after its subscribing connection was cut; history as a function of the channel;
`room(..., since=..., envelope=...)` through Starlette's TestClient; and live messages
counting against `queue_size` while a subscriber catches up.

Tests that showed bugs, since fixed, say so in their docstrings.

Every wait is bounded (`anyio.fail_after`, or the helpers of tests/test_broadcast.py).
"""

from __future__ import annotations

import itertools
import logging
import random
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import anyio
import anyio.lowlevel
import pytest
import redis.asyncio
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect as ClientDisconnected

import bocws
import bocws.broadcast._backends
import bocws.broadcast._broadcast
import bocws.broadcast._history
from bocws import App, WebSocket
from bocws.broadcast import (
    OLDEST,
    Broadcast,
    BroadcastUnavailable,
    HistoryBackend,
    HistoryGap,
    Subscription,
    SubscriptionOverflow,
    id_key,
)
from bocws.broadcast._backends import MemoryBackend, RedisBackend
from bocws.broadcast._broadcast import PAGE
from bocws.broadcast._history import HistorySetting

from .redis_server import RedisServer
from .redis_topologies import ClusterSetup, SentinelSetup
from .test_broadcast import (
    POLL,
    TIMEOUT,
    BackendUnderTest,
    backend_under_test,
    channel_name,
    receive,
    receive_json,
    until,
)
from .test_broadcast_contract import DocumentedBackend, PubSubServer

HISTORY_BACKENDS = ["memory", "memory-object", "redis", "redis-object", "sentinel", "cluster"]
"""The backends that keep history ("documented" keeps none: see the TypeError test);
`sentinel` and `cluster` on real Sentinel and Cluster set-ups (tests/redis_topologies.py)."""

QUIET = 0.1
"""Seconds of a quiet spell in which nothing more may arrive (a test's point, not a sync)."""
Received = list[tuple[str | None, Any]]
"""Messages as a subscriber got them: `(subscription.last_id, message)`."""


# Fixtures and helpers.


@dataclass(frozen=True)
class Keeper:
    """A backend under test that keeps history, and how to make a `Broadcast` on it."""

    under_test: BackendUnderTest

    @property
    def name(self) -> str:
        return self.under_test.name

    @property
    def in_memory(self) -> bool:
        return self.under_test.in_memory

    @property
    def redis(self) -> RedisServer:
        """The Redis server behind the backend (for the Redis backends only)."""
        server = self.under_test.server
        assert isinstance(server, RedisServer), self.name
        return server

    def make(self, history: HistorySetting = 1000, **options: Any) -> Broadcast:
        """A new `Broadcast`, not connected, keeping `history` messages per channel.

        `BackendUnderTest.make` passes `history` to the constructor of a backend passed
        as an object (tests/test_broadcast.py's `BROADCAST_OPTIONS` are `queue_size` and
        `overflow` only), where it is a TypeError: those `Broadcast`s are made here.
        """
        if self.name == "memory-object":
            return Broadcast(backend=MemoryBackend(), history=history, **options)
        if self.name == "redis-object":
            return Broadcast(backend=RedisBackend(self.redis.url), history=history, **options)
        return self.under_test.make(history=history, **options)


def running(setup: SentinelSetup | ClusterSetup) -> Iterator[Any]:
    """Start `setup`, yield it, and stop it however the tests end."""
    setup.start()
    try:
        yield setup
    finally:
        setup.stop()


@pytest.fixture(scope="module")
def shared_sentinel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelSetup]:
    """One Sentinel set-up for the module (2 s to start): each test has channels of its own."""
    yield from running(SentinelSetup(tmp_path_factory.mktemp("sentinel")))


@pytest.fixture(scope="module")
def shared_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterSetup]:
    """One three-node cluster for the module (2 s to start)."""
    yield from running(ClusterSetup(tmp_path_factory.mktemp("cluster")))


@pytest.fixture(params=HISTORY_BACKENDS)
def keeper(request: pytest.FixtureRequest) -> Keeper:
    """A backend that keeps history (for Redis, on a fresh server; Sentinel and Cluster
    shared by the module's tests)."""
    name = request.param
    if name in ("sentinel", "cluster"):
        setup = request.getfixturevalue(f"shared_{name}")
        return Keeper(BackendUnderTest(name, partial(Broadcast, setup.url), setup))
    return Keeper(backend_under_test(name, request))


@pytest.fixture(params=["memory", "memory-object"])
def memory_keeper(request: pytest.FixtureRequest) -> Keeper:
    """`memory://`, from its URL and as an object."""
    return Keeper(backend_under_test(request.param, request))


@pytest.fixture(params=["redis", "redis-object"])
def redis_keeper(request: pytest.FixtureRequest) -> Keeper:
    """Redis, from its URL and as an object, on a fresh server."""
    return Keeper(backend_under_test(request.param, request))


@pytest.fixture
async def redis_raw(redis_keeper: Keeper) -> AsyncIterator[redis.asyncio.Redis]:
    """A plain redis-py client of the Redis under test: XLEN, CLIENT KILL."""
    client = redis.asyncio.Redis.from_url(redis_keeper.redis.url)
    try:
        yield client
    finally:
        await client.aclose()


async def publish_all(broadcast: Broadcast, channel: str, messages: list[Any]) -> list[str]:
    """Publish `messages` one after the other on a channel with history; their ids."""
    ids = []
    with anyio.fail_after(TIMEOUT):
        for message in messages:
            message_id = await broadcast.publish(channel, message)
            assert message_id is not None, "a channel with history gives ids"
            ids.append(message_id)
    return ids


async def receive_with_ids(subscription: Subscription, count: int) -> Received:
    """The next `count` messages of `subscription`, each with `last_id` right after it."""
    received: Received = []
    with anyio.fail_after(TIMEOUT):
        while len(received) < count:
            message = await anext(subscription)
            received.append((subscription.last_id, message))
    return received


async def read_until(subscription: Subscription, last: Any) -> Received:
    """Every message of `subscription` up to `last`, with ids (bounded)."""
    received: Received = []
    with anyio.fail_after(TIMEOUT):
        while not received or received[-1][1] != last:
            message = await anext(subscription)
            received.append((subscription.last_id, message))
    return received


def increasing(ids: list[str]) -> bool:
    """Whether `ids` are strictly increasing in the order of `id_key`."""
    keys = [id_key(message_id) for message_id in ids]
    return all(before < after for before, after in itertools.pairwise(keys))


async def assert_history_gap(broadcast: Broadcast, channel: str, since: str) -> None:
    """`subscribe(channel, since=since)` raises `HistoryGap` as the block starts, before
    any message, and leaves no subscriber behind."""
    with anyio.fail_after(TIMEOUT), pytest.raises(HistoryGap) as info:
        async with broadcast.subscribe(channel, since=since):
            pytest.fail(f"the block ran although messages after {since!r} are gone")
    assert (info.value.channel, info.value.since) == (channel, since)
    assert isinstance(info.value, LookupError)
    assert channel not in broadcast._subscribers  # a look inside: nobody is left subscribed


async def kill_pubsub_connections(client: redis.asyncio.Redis) -> None:
    """Close every subscribing connection of the server, as a network failure would."""
    killed = await client.execute_command("CLIENT", "KILL", "TYPE", "pubsub")  # type: ignore[no-untyped-call]
    assert int(killed) >= 1


def reconnect_logs(caplog: pytest.LogCaptureFixture, what: str) -> int:
    """How many times `bocws.broadcast` has logged `what` ("lost", "again")."""
    needle = {
        "lost": "lost the connection to Redis",
        "again": "again; subscribed to",
    }[what]
    return sum(
        needle in record.getMessage()
        for record in caplog.records
        if record.name == "bocws.broadcast"
    )


# 1. Ids.


@pytest.mark.anyio
async def test_publish_returns_ids_increasing_per_channel_and_none_without_history(
    keeper: Keeper,
) -> None:
    channel, other = channel_name(), channel_name()
    async with keeper.make(history=100) as broadcast:
        ids = []
        for number in range(30):
            # Two channels in turn: each channel's ids increase on their own.
            ids.append(await broadcast.publish(channel, number))
            await broadcast.publish(other, number)
        assert all(isinstance(message_id, str) for message_id in ids)
        checked = [message_id for message_id in ids if message_id is not None]
        assert len(checked) == 30
        assert increasing(checked)
        assert all(id_key(message_id) > (0, 0) for message_id in checked)
    async with keeper.make(history=0) as without:
        assert await without.publish(channel, "no history") is None


@pytest.mark.anyio
async def test_ids_from_two_processes_interleave_in_one_order(redis_keeper: Keeper) -> None:
    channel = channel_name()
    async with (
        redis_keeper.make() as one,
        redis_keeper.make() as two,
        two.subscribe(channel, queue_size=10_000) as on_two,
    ):
        # One after the other, from either process: one order of ids.
        ids = []
        for number in range(20):
            ids.extend(await publish_all(one if number % 2 else two, channel, [number]))
        assert increasing(ids)
        assert await receive_with_ids(on_two, 20) == list(zip(ids, range(20), strict=True))

        # All at once from both: each process's ids increase, and the subscriber
        # gets every message in the order of the ids.
        published: dict[str, tuple[int, int]] = {}

        async def burst(publisher: Broadcast, label: int) -> None:
            mine = []
            for number in range(100):
                message_id = await publisher.publish(channel, [label, number])
                assert message_id is not None
                published[message_id] = (label, number)
                mine.append(message_id)
            assert increasing(mine)

        with anyio.fail_after(TIMEOUT):
            async with anyio.create_task_group() as group:
                group.start_soon(burst, one, 1)
                group.start_soon(burst, two, 2)
        received = await receive_with_ids(on_two, 200)
        received_ids = [message_id for message_id, _ in received]
        assert received_ids == sorted(published, key=id_key)
        assert [message for _, message in received] == [
            list(published[str(message_id)]) for message_id in received_ids
        ]


# 2. Resuming.


@pytest.mark.anyio
async def test_a_resume_yields_exactly_the_messages_after_since_then_live_ones(
    keeper: Keeper,
) -> None:
    channel = channel_name()
    async with keeper.make() as broadcast:
        ids = await publish_all(broadcast, channel, [{"n": n} for n in range(10)])
        async with broadcast.subscribe(channel, since=ids[3]) as subscription:
            assert subscription.last_id is None  # nothing yielded yet
            kept = await receive_with_ids(subscription, 6)
            assert kept == [(ids[n], {"n": n}) for n in range(4, 10)]
            live_ids = await publish_all(broadcast, channel, [{"n": n} for n in range(10, 13)])
            live = await receive_with_ids(subscription, 3)
            assert live == [(live_ids[n], {"n": 10 + n}) for n in range(3)]
            assert subscription.last_id == live_ids[-1]


@pytest.mark.anyio
async def test_a_resume_from_oldest_yields_every_kept_message_then_live_ones(
    keeper: Keeper,
) -> None:
    channel, untouched = channel_name(), channel_name("untouched")
    async with keeper.make() as broadcast:
        ids = await publish_all(broadcast, channel, list(range(10)))
        async with broadcast.subscribe(channel, since=OLDEST) as subscription:
            assert await receive_with_ids(subscription, 10) == list(
                zip(ids, range(10), strict=True)
            )
            [live_id] = await publish_all(broadcast, channel, ["live"])
            assert await receive_with_ids(subscription, 1) == [(live_id, "live")]
        # A channel nothing was published on yet: no gap, the live ones only.
        async with broadcast.subscribe(untouched, since=OLDEST) as subscription:
            [first] = await publish_all(broadcast, untouched, ["first"])
            assert await receive_with_ids(subscription, 1) == [(first, "first")]


@pytest.mark.anyio
async def test_last_id_follows_live_messages_without_since_too(keeper: Keeper) -> None:
    channel = channel_name()
    async with keeper.make() as broadcast, broadcast.subscribe(channel) as subscription:
        assert subscription.last_id is None
        ids = await publish_all(broadcast, channel, ["a", b"b", {"c": 1}])
        assert await receive_with_ids(subscription, 3) == list(
            zip(ids, ["a", b"b", {"c": 1}], strict=True)
        )
        # The id the subscriber got last is where it resumes from, later.
        await publish_all(broadcast, channel, ["missed"])
        async with broadcast.subscribe(channel, since=ids[-1]) as resumed:
            assert await receive(resumed, 1) == ["missed"]


@pytest.mark.anyio
async def test_a_resume_never_yields_a_message_at_or_before_since(keeper: Keeper) -> None:
    """A subscriber resuming from the newest id gets the messages after it, and none
    before, even when messages at or before `since` are still on their way to this
    process for its other subscribers.

    BUG (Redis): with nothing kept after `since`, the backlog is empty, and the seam
    (`HistorySubscription.__anext__`, in bocws/broadcast/_subscription.py) only skips
    live ids `<= last_id`, while `last_id` is still `None`: every message the Redis
    reader delivers after the subscription was added, from a burst published before
    `since`, is yielded again (hundreds of them here). `catch_up()` knows nothing of
    `since`: the seam should start there.
    """
    channel = channel_name()
    async with (
        keeper.make(history=10_000) as broadcast,
        broadcast.subscribe(channel, queue_size=10_000, overflow="drop_oldest"),
    ):
        for _attempt in range(3):
            published: list[str] = []

            async def publish_one(number: int, published: list[str] = published) -> None:
                message_id = await broadcast.publish(channel, number)
                assert message_id is not None
                published.append(message_id)

            with anyio.fail_after(TIMEOUT):
                async with anyio.create_task_group() as group:
                    for number in range(300):  # a burst the reader takes a while to deliver
                        group.start_soon(publish_one, number)
            since = max(published, key=id_key)
            async with broadcast.subscribe(channel, since=since, queue_size=10_000) as late:
                [after] = await publish_all(broadcast, channel, ["after"])
                received = await read_until(late, "after")
                assert received == [(after, "after")], f"{len(received) - 1} messages again"


# 3. The seam: a resume while other tasks and processes keep publishing.


async def resume_racing_publishes(
    subscriber: Broadcast,
    publishers: list[Broadcast],
    channel: str,
    since: str,
    *,
    burst: int,
    delay: int,
) -> tuple[dict[str, Any], Received, int]:
    """Resume from `since` on `subscriber` while each of `publishers` publishes `burst`
    messages then an end marker, from a task of its own; the subscription starts after
    `delay` checkpoints. Read until every end marker, then a last message.

    Returns what was published (by id), what was received, and how many messages the
    publishers had published when the subscription was made.
    """
    published: dict[str, Any] = {}
    received: Received = []

    async def publish_burst(publisher: Broadcast, label: str) -> None:
        for message in [[label, number] for number in range(burst)] + [["end", label]]:
            message_id = await publisher.publish(channel, message)
            assert message_id is not None
            published[message_id] = message

    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as group:
            for index, publisher in enumerate(publishers):
                group.start_soon(publish_burst, publisher, f"p{index}")
            for _ in range(delay):
                await anyio.lowlevel.checkpoint()
            async with subscriber.subscribe(
                channel, since=since, queue_size=100_000
            ) as subscription:
                published_before = len(published)
                ends = 0
                while ends < len(publishers):
                    message = await anext(subscription)
                    received.append((subscription.last_id, message))
                    ends += message[0] == "end"
                # Nothing more may come before a last message: no late duplicate.
                [last_id] = await publish_all(subscriber, channel, [["last"]])
                published[last_id] = ["last"]
                while not received or received[-1][1] != ["last"]:
                    message = await anext(subscription)
                    received.append((subscription.last_id, message))
                # "last" may have come from a page of history, with live copies of the
                # messages before it still queued: a quiet spell, in which they must not
                # come again.
                with anyio.move_on_after(QUIET):
                    message = await anext(subscription)
                    received.append((subscription.last_id, message))
    return published, received, published_before


def assert_exactly_once_in_order(
    kept: dict[str, Any], published: dict[str, Any], received: Sequence[tuple[str | None, Any]]
) -> None:
    """`received` is every message of `kept` and `published`, once each, in id order."""
    expected = {**kept, **published}
    order = sorted(expected, key=id_key)
    received_ids = [message_id for message_id, _ in received]
    duplicates = len(received_ids) - len(set(received_ids))
    missing = set(order) - set(received_ids)
    assert not duplicates, f"{duplicates} duplicates"
    assert not missing, f"{len(missing)} missing, such as {sorted(missing, key=id_key)[:3]}"
    assert received_ids == order
    assert [message for _, message in received] == [expected[i] for i in order]


@pytest.mark.anyio
async def test_a_resume_racing_publishes_gets_every_message_once_in_order(
    keeper: Keeper,
) -> None:
    rng = random.Random(19)
    async with keeper.make(history=10_000) as broadcast, keeper.make(history=10_000) as other:
        # Another process publishes too, on a server; in memory, another task.
        publishers = [broadcast, broadcast, broadcast if keeper.in_memory else other]
        mid_burst = 0
        for attempt in range(6):
            channel = channel_name(f"seam{attempt}")
            pre = [["pre", n] for n in range(100)]
            ids = await publish_all(broadcast, channel, pre)
            since = ids[49]
            kept = dict(zip(ids[50:], pre[50:], strict=True))
            published, received, before = await resume_racing_publishes(
                broadcast, publishers, channel, since, burst=100, delay=rng.randrange(0, 30)
            )
            assert_exactly_once_in_order(kept, published, received)
            mid_burst += 0 < before < len(published) - 1
        assert mid_burst, "no subscription was made while the publishers were publishing"


@pytest.mark.anyio
async def test_a_catch_up_of_several_pages_racing_publishes_has_no_gap_nor_duplicate(
    keeper: Keeper,
) -> None:
    channel = channel_name()
    async with keeper.make(history=5000) as broadcast, keeper.make(history=5000) as other:
        pre = [["pre", n] for n in range(2500)]
        ids = await publish_all(broadcast, channel, pre)
        since = ids[9]
        kept = dict(zip(ids[10:], pre[10:], strict=True))
        assert len(kept) > 2 * PAGE  # three pages of history, at least
        publishers = [broadcast, broadcast if keeper.in_memory else other]
        published, received, _ = await resume_racing_publishes(
            broadcast, publishers, channel, since, burst=200, delay=0
        )
        assert_exactly_once_in_order(kept, published, received)


@pytest.mark.anyio
async def test_a_catch_up_trimmed_while_it_is_read_is_not_a_silent_gap(keeper: Keeper) -> None:
    """A subscriber catching up page by page while the publishes go on sees the pages
    it has not read yet trimmed: it must get every message, or learn that it missed
    some (`HistoryGap`), never skip them silently.

    BUG: `more()` in `Broadcast._catch_up_from` (bocws/broadcast/_broadcast.py) drops
    the `complete` flag of `history()` for every page after the first. Here
    (history=1500, 1500 kept, since=OLDEST, 1500 more published once the first page of
    1000 is read) messages 1000 to about 1500 are trimmed before their page is read,
    and the subscriber gets 0-999 then about 1500-2999, with no error.
    """
    channel = channel_name()
    async with keeper.make(history=1500) as broadcast:
        await publish_all(broadcast, channel, list(range(1500)))
        received: list[int] = []
        gap: HistoryGap | None = None
        async with broadcast.subscribe(channel, since=OLDEST, queue_size=10_000) as subscription:
            received += await receive(subscription, 1)  # the first page is read
            await publish_all(broadcast, channel, [*range(1500, 3000), "end"])
            try:
                with anyio.fail_after(TIMEOUT):
                    while (message := await anext(subscription)) != "end":
                        received.append(message)
            except HistoryGap as error:
                gap = error
        assert received == sorted(set(received)), "out of order, or twice"
        if gap is None:
            skipped = sorted(set(range(3000)) - set(received))
            assert not skipped, (
                f"{len(skipped)} messages skipped silently, from {skipped[0]} to {skipped[-1]}"
            )
        else:
            assert received == list(range(len(received)))


# 4. What is no longer kept, and ids that are no ids.


@pytest.mark.anyio
async def test_memory_a_resume_from_a_trimmed_id_is_a_history_gap(memory_keeper: Keeper) -> None:
    channel = channel_name()
    async with memory_keeper.make(history=5) as broadcast:
        ids = await publish_all(broadcast, channel, list(range(10)))
        for trimmed in (ids[0], ids[3]):
            await assert_history_gap(broadcast, channel, trimmed)
        # The newest trimmed: every message after it is kept.
        async with broadcast.subscribe(channel, since=ids[4]) as subscription:
            assert await receive_with_ids(subscription, 5) == list(
                zip(ids[5:], range(5, 10), strict=True)
            )
        async with broadcast.subscribe(channel, since=ids[7]) as subscription:
            assert await receive_with_ids(subscription, 2) == list(
                zip(ids[8:], range(8, 10), strict=True)
            )
        async with broadcast.subscribe(channel, since=OLDEST) as subscription:
            assert await receive_with_ids(subscription, 5) == list(
                zip(ids[5:], range(5, 10), strict=True)
            )


@pytest.mark.anyio
async def test_redis_a_resume_from_a_trimmed_id_is_a_history_gap(
    redis_keeper: Keeper, redis_raw: redis.asyncio.Redis
) -> None:
    # MAXLEN ~ trims whole stream nodes (100 entries each): 400 messages with history=10
    # leave at most about 110, so the first id is surely gone.
    channel = channel_name()
    async with redis_keeper.make(history=10) as broadcast:
        ids = await publish_all(broadcast, channel, list(range(400)))
        kept = await redis_raw.xlen(RedisBackend(redis_keeper.redis.url).history_key(channel))
        assert 10 <= kept < 400
        await assert_history_gap(broadcast, channel, ids[0])
        await redis_keeper.under_test.wait_for_subscriptions(channel, 0)
        async with broadcast.subscribe(channel, since=ids[-5]) as subscription:
            assert await receive_with_ids(subscription, 4) == list(
                zip(ids[-4:], range(396, 400), strict=True)
            )
        async with broadcast.subscribe(channel, since=OLDEST) as subscription:
            oldest = await receive_with_ids(subscription, kept)
            assert oldest == list(zip(ids[-kept:], range(400 - kept, 400), strict=True))


@pytest.mark.anyio
@pytest.mark.parametrize(
    "since",
    [
        "abc",
        "1-x",
        "",
        "-1",
        "1-",
        "-",
        "1-2-3",
        " 1-0",
        "1.5",
        "\uff11-0",
        "0x10-0",
        "0" * 130 + "1-0",  # Redis refuses ids this long (zeros in front or not)
        "18446744073709551615-18446744073709551615",  # the greatest: nothing after it
    ],
)
async def test_a_malformed_since_is_a_history_gap(keeper: Keeper, since: str) -> None:
    channel = channel_name()
    async with keeper.make() as broadcast:
        await publish_all(broadcast, channel, ["kept"])
        await assert_history_gap(broadcast, channel, since)


@pytest.mark.anyio
@pytest.mark.parametrize("since", ["18446744073709551616-0", "1-18446744073709551616"])
async def test_a_since_beyond_redis_ids_is_a_history_gap(redis_keeper: Keeper, since: str) -> None:
    """An id Redis cannot hold (a part over 2**64 - 1) is not an id of the channel.

    BUG: `id_key()` (so `_check_since`) accepts any digits, and `RedisBackend.history()`
    (bocws/broadcast/_backends.py) iterates the `ResponseError` its pipeline returns
    for XRANGE (`raise_on_error=False`): the subscriber gets `TypeError:
    'ResponseError' object is not iterable` instead of `HistoryGap`.
    """
    channel = channel_name()
    async with redis_keeper.make() as broadcast:
        await publish_all(broadcast, channel, ["kept"])
        await assert_history_gap(broadcast, channel, since)


@pytest.mark.anyio
@pytest.mark.parametrize("since", [5, b"1-0", 1.5, ["0"]])
async def test_a_since_that_is_not_a_str_is_a_type_error(keeper: Keeper, since: Any) -> None:
    channel = channel_name()
    async with keeper.make() as broadcast:
        with pytest.raises(TypeError, match="since is a message id"):
            async with broadcast.subscribe(channel, since=since):
                pytest.fail("the block ran")
        assert channel not in broadcast._subscribers


@pytest.mark.anyio
async def test_since_on_a_channel_without_history_is_a_value_error(keeper: Keeper) -> None:
    channel = channel_name()
    async with keeper.make(history=0) as broadcast:
        for since in (OLDEST, "1-0"):
            with pytest.raises(ValueError, match="keeps no history"):
                async with broadcast.subscribe(channel, since=since):
                    pytest.fail("the block ran")
        async with broadcast.subscribe(channel) as subscription:  # without since: live ones
            assert await broadcast.publish(channel, "live") is None
            assert await receive(subscription, 1) == ["live"]
            assert subscription.last_id is None


# 5. Ids of another incarnation of the history.


@pytest.mark.anyio
async def test_memory_an_id_of_another_backend_is_a_history_gap(memory_keeper: Keeper) -> None:
    channel = channel_name()
    async with memory_keeper.make() as before:
        old_ids = await publish_all(before, channel, ["old 1", "old 2"])
    # A process started again, later: a new backend, with none of that history. (Ids
    # are the clock's milliseconds: a backend made within the same one would make the
    # same ids again, so let the clock move on.)
    await anyio.sleep(0.005)
    async with memory_keeper.make() as after:
        await assert_history_gap(after, channel, old_ids[-1])
        new_ids = await publish_all(after, channel, ["new 1", "new 2"])
        for old in old_ids:
            await assert_history_gap(after, channel, old)
        async with after.subscribe(channel, since=OLDEST) as subscription:
            assert await receive_with_ids(subscription, 2) == list(
                zip(new_ids, ["new 1", "new 2"], strict=True)
            )


async def publish_when_back(broadcast: Broadcast, channel: str, message: Any) -> str:
    """Publish `message` once the server answers again; its id (bounded)."""
    with anyio.fail_after(TIMEOUT):
        while True:
            try:
                message_id = await broadcast.publish(channel, message)
            except BroadcastUnavailable:
                await anyio.sleep(POLL)  # a pause of the bounded polling loop
                continue
            assert message_id is not None
            return message_id


@pytest.mark.anyio
async def test_redis_an_id_from_before_a_restart_without_persistence_is_a_history_gap(
    redis_keeper: Keeper,
) -> None:
    channel = channel_name()
    async with redis_keeper.make() as broadcast:
        old_ids = await publish_all(broadcast, channel, ["old 1", "old 2"])
        redis_keeper.redis.restart(kill=True)  # no persistence: the streams are gone
        new_id = await publish_when_back(broadcast, channel, "new")
        assert id_key(new_id) > id_key(old_ids[-1])
        for old in old_ids:
            await assert_history_gap(broadcast, channel, old)
        async with broadcast.subscribe(channel, since=OLDEST) as subscription:
            assert await receive_with_ids(subscription, 1) == [(new_id, "new")]


# 6. Redis: the subscribing connection cut, and the reader's catch-up.


@pytest.mark.anyio
async def test_a_subscriber_cut_off_from_redis_gets_what_was_published_meanwhile(
    redis_keeper: Keeper,
    redis_raw: redis.asyncio.Redis,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The subscribing connection cut (CLIENT KILL), another process publishes while
    the reader is away; once back, the reader delivers what was kept meanwhile, while
    that process goes on publishing (from the moment the reader is back, so that its
    catch-up and the live messages overlap): each message once, in id order."""
    # Half a second before the reader connects again: the publishes below are all
    # made while it is away.
    monkeypatch.setattr(bocws.broadcast._backends, "RETRY_FIRST", 0.5)
    caplog.set_level(logging.WARNING, "bocws.broadcast")
    channel = channel_name()
    after = [f"after {n}" for n in range(50)]
    after_ids: list[str] = []

    async def publish_after(publisher: Broadcast) -> None:
        after_ids.extend(await publish_all(publisher, channel, after))

    async with (
        redis_keeper.make() as one,
        redis_keeper.make() as two,
        one.subscribe(channel, queue_size=10_000) as subscription,
        anyio.create_task_group() as group,
    ):
        backend = one._backend  # a look inside: told when its reader is back
        assert isinstance(backend, RedisBackend)

        def reconnected() -> None:  # called as the reader's catch-up starts
            group.start_soon(publish_after, two)

        backend.report_reconnects(reconnected)
        [before] = await publish_all(two, channel, ["before"])
        assert await receive_with_ids(subscription, 1) == [(before, "before")]

        await kill_pubsub_connections(redis_raw)
        await until(lambda: reconnect_logs(caplog, "lost") >= 1)
        during = [f"during {n}" for n in range(20)]
        during_ids = await publish_all(two, channel, during)
        assert reconnect_logs(caplog, "again") == 0, "too slow: the reader was back already"

        received = await receive_with_ids(subscription, len(during) + len(after))
        await until(lambda: len(after_ids) == len(after))
        with anyio.move_on_after(QUIET):  # nothing more: no late duplicate
            message = await anext(subscription)
            received.append((subscription.last_id, message))
        assert received == list(zip(during_ids + after_ids, during + after, strict=True))
        [last] = await publish_all(one, channel, ["last"])
        assert await receive_with_ids(subscription, 1) == [(last, "last")]
    messages = [r.getMessage() for r in caplog.records if r.name == "bocws.broadcast"]
    assert reconnect_logs(caplog, "lost") >= 1, messages
    assert reconnect_logs(caplog, "again") >= 1, messages
    assert all(r.levelno == logging.WARNING for r in caplog.records), messages
    assert not [m for m in messages if "no longer kept" in m]


@pytest.mark.anyio
@pytest.mark.parametrize("start", ["fresh", "resumed"])
async def test_a_subscriber_cut_off_before_any_live_message_catches_up_too(
    redis_keeper: Keeper,
    redis_raw: redis.asyncio.Redis,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    start: str,
) -> None:
    """As above, but the connection is cut before the subscriber got a live message:
    `fresh`, it got none at all; `resumed`, only kept ones, from `since`.

    BUG: `RedisBackend._catch_up()` (bocws/broadcast/_backends.py) resumes only the
    channels in `_last_ids`, which only a live delivery fills (`RedisBackend._delivered`):
    not a subscription, nor a resume's backlog (read by `Broadcast`). The 20 messages
    published while the reader was away are lost silently, with no warning, although
    docs/scaling.md says "its subscribers miss nothing that is still kept": the
    subscriber gets "after" only (`fresh`), or "kept 1", "kept 2", "after" (`resumed`).
    """
    monkeypatch.setattr(bocws.broadcast._backends, "RETRY_FIRST", 0.5)
    caplog.set_level(logging.WARNING, "bocws.broadcast")
    channel = channel_name()
    async with redis_keeper.make() as one, redis_keeper.make() as two:
        kept_ids = await publish_all(two, channel, ["kept 0", "kept 1", "kept 2"])
        since = kept_ids[0] if start == "resumed" else None
        async with one.subscribe(channel, since=since) as subscription:
            expected: Received = []
            if start == "resumed":
                expected += [(kept_ids[1], "kept 1"), (kept_ids[2], "kept 2")]
                assert await receive_with_ids(subscription, 2) == expected

            await kill_pubsub_connections(redis_raw)
            await until(lambda: reconnect_logs(caplog, "lost") >= 1)
            during = [f"during {n}" for n in range(20)]
            during_ids = await publish_all(two, channel, during)
            await until(lambda: reconnect_logs(caplog, "again") >= 2)
            [after] = await publish_all(two, channel, ["after"])

            received = expected + await read_until(subscription, "after")
            assert received == [*expected, *zip(during_ids, during, strict=True), (after, "after")]


# 7. History as a function of the channel, and invalid settings.


@pytest.mark.anyio
async def test_history_may_depend_on_the_channel(keeper: Keeper) -> None:
    def history(channel: str) -> int:
        return 5 if channel.startswith("keep:") else 0

    kept, plain = channel_name("keep:"), channel_name("plain")
    async with keeper.make(history=history) as broadcast:
        ids = await publish_all(broadcast, kept, list(range(10)))
        assert increasing(ids)
        assert await broadcast.publish(plain, "not kept") is None
        with pytest.raises(ValueError, match="keeps no history"):
            async with broadcast.subscribe(plain, since=OLDEST):
                pytest.fail("the block ran")
        async with broadcast.subscribe(kept, since=OLDEST) as subscription:
            # At least the last 5 (Redis trims approximately), the newest last, in order.
            received = await read_until(subscription, 9)
        assert len(received) >= 5
        assert received == list(zip(ids, range(10), strict=True))[-len(received) :]
        if keeper.in_memory:
            assert len(received) == 5
            await assert_history_gap(broadcast, kept, ids[3])
        async with broadcast.subscribe(kept, since=ids[-3]) as subscription:
            assert await receive_with_ids(subscription, 2) == [(ids[8], 8), (ids[9], 9)]


@pytest.mark.parametrize("history", [-1, True, False, "5", 1.5, None])
@pytest.mark.parametrize("backend", ["memory://", "object"])
def test_an_invalid_history_is_a_value_error(history: Any, backend: str) -> None:
    options = {"backend": MemoryBackend()} if backend == "object" else {"url": backend}
    with pytest.raises(ValueError, match="history must be an int of at least 0"):
        Broadcast(history=history, **options)


@pytest.mark.anyio
@pytest.mark.parametrize("returned", [-1, True, "5", 2.5, None])
async def test_a_history_function_returning_an_invalid_value_is_a_value_error(
    keeper: Keeper, returned: Any
) -> None:
    channel = channel_name("bad")
    async with keeper.make(history=lambda name: returned if name == channel else 3) as broadcast:
        with pytest.raises(ValueError, match=rf"history\('{channel}'\) must be an int"):
            await broadcast.publish(channel, "x")
        with pytest.raises(ValueError, match=rf"history\('{channel}'\)"):
            async with broadcast.subscribe(channel):
                pytest.fail("the block ran")
        assert await broadcast.publish(channel_name("good"), "y") is not None


def test_history_needs_a_backend_that_keeps_history() -> None:
    documented = DocumentedBackend(PubSubServer())
    assert not isinstance(documented, HistoryBackend)
    assert isinstance(MemoryBackend(), HistoryBackend)
    for history in (5, lambda channel: 0):
        with pytest.raises(TypeError, match="needs a backend that keeps history"):
            Broadcast(backend=documented, history=history)
    assert Broadcast(backend=documented, history=0).history == 0  # no history: fine


def test_the_history_names_are_exported() -> None:
    assert bocws.HistoryGap is HistoryGap
    assert OLDEST == "0"
    assert id_key("1700000000000-3") == (1700000000000, 3)
    for malformed in ("", "a-1", "1-b", "1-", "-1"):
        with pytest.raises(ValueError, match="not a message id"):
            id_key(malformed)


# 8. Rooms resumed: Broadcast.room(since=..., envelope=...) through Starlette's TestClient.


def feed_app(broadcast: Broadcast) -> App:
    """An app whose `/feed/{name}?since=ID` relays the room's messages with their ids,
    after those kept since ID; when they are no longer kept, it closes with 4409."""
    app = App()
    app.on_startup(broadcast.connect)
    app.on_shutdown(broadcast.disconnect)

    def with_id(message_id: str | None, message: Any) -> Any:
        return {**message, "id": message_id}

    @app.websocket_route("/feed/{name}", value_type="json")
    async def feed(ws: WebSocket, name: str, since: str | None = None) -> None:
        try:
            async with broadcast.room(ws, name, since=since, envelope=with_id):
                async for _message in ws:
                    pass
        except HistoryGap:
            await ws.close(4409, "resynchronise")

    return app


def test_a_room_resumed_with_since_sends_the_missed_messages_first_with_their_ids(
    keeper: Keeper,
) -> None:
    broadcast = keeper.make(history=100)
    app = feed_app(broadcast)

    def publish(n: int) -> str:
        message_id = portal.call(broadcast.publish, "news", {"n": n})
        assert isinstance(message_id, str)
        return message_id

    with TestClient(app) as client:
        portal = client.portal
        assert portal is not None
        ids = [publish(n) for n in range(5)]
        with (
            client.websocket_connect(f"/feed/news?since={ids[1]}") as resumed,
            client.websocket_connect(f"/feed/news?since={OLDEST}") as from_oldest,
        ):
            assert [receive_json(resumed) for _ in range(3)] == [
                {"n": n, "id": ids[n]} for n in (2, 3, 4)
            ]
            assert [receive_json(from_oldest) for _ in range(5)] == [
                {"n": n, "id": ids[n]} for n in range(5)
            ]
            live = publish(5)
            assert receive_json(resumed) == receive_json(from_oldest) == {"n": 5, "id": live}
        with client.websocket_connect("/feed/news?since=not-an-id") as gone:
            with pytest.raises(ClientDisconnected) as closed:
                receive_json(gone)
            assert (closed.value.code, closed.value.reason) == (4409, "resynchronise")


# 9. Overflow while catching up.


@pytest.mark.anyio
@pytest.mark.parametrize("overflow", ["close", "drop_oldest"])
async def test_live_messages_during_a_catch_up_count_against_queue_size(
    keeper: Keeper, overflow: Any
) -> None:
    """The kept messages are read from the backend as the subscriber goes (a backlog
    outside its queue); the live ones that come meanwhile wait in its queue, and count
    against `queue_size`. With history=1000, 20 kept, `since=OLDEST`, `queue_size=5`,
    and 10 live messages published before the subscriber reads anything:

    - `overflow="close"`: the 20 kept, then the first 5 live (those queued before the
      overflow), then `SubscriptionOverflow`; the subscriber is unsubscribed.
    - `overflow="drop_oldest"`: the 20 kept, then the last 5 live; 5 counted dropped.
    """
    channel = channel_name()
    async with keeper.make(history=1000) as broadcast:
        kept_ids = await publish_all(broadcast, channel, [["kept", n] for n in range(20)])
        async with broadcast.subscribe(
            channel, since=OLDEST, queue_size=5, overflow=overflow
        ) as subscription:
            async with broadcast.subscribe(channel, queue_size=100) as witness:
                live = [["live", n] for n in range(10)]
                live_ids = await publish_all(broadcast, channel, live)
                # Once the witness has them all, so has the subscriber's queue (or not).
                assert await receive(witness, 10) == live
            got = await receive_with_ids(subscription, 25)
            assert got[:20] == list(zip(kept_ids, [["kept", n] for n in range(20)], strict=True))
            if overflow == "close":
                assert got[20:] == list(zip(live_ids[:5], live[:5], strict=True))
                with anyio.fail_after(TIMEOUT), pytest.raises(SubscriptionOverflow):
                    await anext(subscription)
                assert subscription not in broadcast._subscribers.get(channel, ())
            else:
                assert got[20:] == list(zip(live_ids[5:], live[5:], strict=True))
                assert subscription.dropped == 5


# Sanity of the helpers: a duplicate or a gap is seen.


def test_the_seam_check_sees_a_gap_a_duplicate_and_a_disorder() -> None:
    kept = {"1-0": "a", "1-1": "b"}
    published = {"2-0": "c"}
    assert_exactly_once_in_order(kept, published, [("1-0", "a"), ("1-1", "b"), ("2-0", "c")])
    for wrong in (
        [("1-0", "a"), ("2-0", "c")],
        [("1-0", "a"), ("1-1", "b"), ("1-1", "b"), ("2-0", "c")],
        [("1-1", "b"), ("1-0", "a"), ("2-0", "c")],
    ):
        with pytest.raises(AssertionError):
            assert_exactly_once_in_order(kept, published, wrong)


@pytest.mark.anyio
async def test_memory_forgets_the_history_of_the_channel_published_to_least_recently(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A bound: channels named by clients (chat rooms) cannot grow memory without end.
    monkeypatch.setattr(bocws.broadcast._history, "MEMORY_CHANNELS", 3)
    async with Broadcast("memory://", history=10) as broadcast:
        ids = {name: await broadcast.publish(name, name) for name in ("a", "b", "c")}
        await broadcast.publish("a", "again")  # "a" is now the most recent: "b" goes next
        await broadcast.publish("d", "d")
        for kept in ("a", "c", "d"):
            async with broadcast.subscribe(kept, since=OLDEST) as subscription:
                assert await anext(subscription) == kept
        with pytest.raises(HistoryGap):
            async with broadcast.subscribe("b", since=str(ids["b"])):
                pass


@pytest.mark.anyio
async def test_a_foreign_message_with_a_bad_id_is_dropped_and_the_channel_goes_on(
    redis_keeper: Keeper, redis_raw: redis.asyncio.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "bocws.broadcast")
    channel = channel_name()
    broadcast = redis_keeper.make(history=100)
    async with broadcast, broadcast.subscribe(channel) as subscription:
        await redis_raw.publish(channel, b"@bad j{}")
        await broadcast.publish(channel, "genuine")
        with anyio.fail_after(TIMEOUT):
            assert await anext(subscription) == "genuine"
    assert any("a bad id" in record.getMessage() for record in caplog.records)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (HistoryGap("c", "1-0"), "missed messages are no longer kept: resynchronise"),
        (BroadcastUnavailable("down"), "the broadcast is unavailable: try again later"),
    ],
)
async def test_a_room_that_cannot_go_on_catching_up_closes_its_socket_with_1013(
    error: Exception, reason: str
) -> None:
    closed: list[tuple[int, str]] = []

    class Socket:
        async def send(self, message: Any) -> None:
            pass

        async def ensure_closed(self, code: int, reason: str) -> None:
            closed.append((code, reason))

    class Failing:
        channel = "c"
        message_id = None

        def __aiter__(self) -> Failing:
            return self

        async def __anext__(self) -> Any:
            raise error

    await bocws.broadcast._rooms.relay(Socket(), Failing(), None)  # type: ignore[arg-type]
    assert closed == [(1013, reason)]
