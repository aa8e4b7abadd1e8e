"""`Broadcast("redis+sentinel://...")`: Redis behind Sentinel, and a failover.

Real processes from Debian's packages (`tests/redis_topologies.py`): a master, a
replica and three sentinels. The master is killed (SIGKILL) while a publisher and a
subscriber run; the sentinels promote the replica; the test measures how long
publishes fail, and checks that the subscriber resumes by itself and that the
channel's history, replicated before the kill, is still there.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import anyio
import pytest

from bocws import Broadcast, BroadcastUnavailable
from bocws.broadcast import id_key
from bocws.broadcast._backends import SentinelBackend, parse_sentinel_url

from .redis_topologies import SentinelSetup
from .test_broadcast import until

pytestmark = pytest.mark.anyio

TIMEOUT = 30.0
"""Seconds for the failover and the reconnection, each (2 to 3 s here)."""


def test_a_sentinel_url_names_the_sentinels_the_service_and_the_database() -> None:
    assert parse_sentinel_url("redis+sentinel://a:26379,b:26380/mymaster/2") == (
        [("a", 26379), ("b", 26380)],
        "mymaster",
        2,
        {},
    )
    assert parse_sentinel_url("redis+sentinel://:s%40cret@a:1/svc") == (
        [("a", 1)],
        "svc",
        0,
        {"password": "s@cret"},
    )


@pytest.mark.parametrize(
    "url",
    [
        "redis+sentinel://a:1",
        "redis+sentinel://a:x/svc",
        "redis+sentinel:///svc",
        "redis+sentinel://a:1/svc/db",
        "redis+sentinel://a:1/svc/-1",
        "redis+sentinel://a:1,,b:2/svc",
        "redis+sentinel://:5/svc",
        "redis+sentinel://a:1/svc?db=2",
    ],
)
def test_a_malformed_sentinel_url_is_a_value_error_without_its_password(url: str) -> None:
    with pytest.raises(ValueError, match="redis\\+sentinel://host:port") as caught:
        Broadcast(url.replace("://", "://:hunter2@"))
    assert "hunter2" not in str(caught.value)


async def test_publish_subscribe_and_history_through_sentinel(
    redis_sentinel: SentinelSetup,
) -> None:
    broadcast = Broadcast(redis_sentinel.url, history=100)
    assert isinstance(broadcast._backend, SentinelBackend)
    async with broadcast:
        first = await broadcast.publish("room", {"n": 0})
        assert first is not None
        with anyio.fail_after(TIMEOUT):
            async with broadcast.subscribe("room", since=first) as subscription:
                await broadcast.publish("room", {"n": 1})
                assert await anext(subscription) == {"n": 1}
                assert subscription.last_id is not None
                assert id_key(subscription.last_id) > id_key(first)


async def test_after_a_failover_publishes_resume_and_the_subscriber_gets_them_by_itself(
    redis_sentinel: SentinelSetup, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "bocws.broadcast")
    publisher = Broadcast(redis_sentinel.url, history=1000, socket_timeout=1.0)
    subscriber = Broadcast(redis_sentinel.url, history=1000, socket_timeout=1.0)
    received: list[Any] = []
    async with publisher, subscriber, anyio.create_task_group() as tasks:
        async with subscriber.subscribe("room") as subscription:

            async def read() -> None:
                async for message in subscription:
                    received.append(message)

            tasks.start_soon(read)
            before = [await publisher.publish("room", {"n": n}) for n in range(5)]
            assert None not in before
            await until(lambda: len(received) == 5)
            # Let the replica have every write before the master dies.
            await anyio.sleep(0.2)
            old_port = redis_sentinel.kill_master()
            killed_at = time.monotonic()
            failed = 0
            with anyio.fail_after(TIMEOUT):
                while True:
                    try:
                        await publisher.publish("room", {"n": 5})
                        break
                    except BroadcastUnavailable:
                        failed += 1
                        await anyio.sleep(0.05)  # retrying, bounded by the deadline
            unavailable_for = time.monotonic() - killed_at
            assert failed > 0  # it did fail for a while
            assert redis_sentinel.master_port() != old_port
            # The subscriber, on its own, reconnected to the new master.
            await until(lambda: {"n": 5} in received)
            assert received[:5] == [{"n": n} for n in range(5)]
            assert received.count({"n": 5}) == 1
            logging.getLogger("tests").warning(
                "publishes failed for %.2f s after the master was killed", unavailable_for
            )
            tasks.cancel_scope.cancel()
        # What was kept before the kill was replicated: a late subscriber gets it.
        with anyio.fail_after(TIMEOUT):
            async with subscriber.subscribe("room", since=before[0]) as late:
                assert [await anext(late) for _ in range(5)] == [{"n": n} for n in (1, 2, 3, 4, 5)]
    assert any("lost the connection to Redis" in record.getMessage() for record in caplog.records)
