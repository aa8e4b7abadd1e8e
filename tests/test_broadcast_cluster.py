"""`Broadcast("redis+cluster://...")`: Redis Cluster, with sharded pub/sub and history.

A real three-node cluster from Debian's `redis-server`, made with `redis-cli --cluster
create` (`tests/redis_topologies.py`). Channels are spread over the nodes' slots: each
test checks that its channels do land on more than one node.
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest
import redis.asyncio
from redis.asyncio.cluster import ClusterNode, RedisCluster

from bocws import Broadcast, HistoryGap
from bocws.broadcast import OLDEST, id_key
from bocws.broadcast._backends import ClusterBackend, parse_cluster_url

from .redis_topologies import ClusterSetup
from .test_broadcast import until

pytestmark = pytest.mark.anyio

TIMEOUT = 10.0
CHANNELS = [f"room:{n}" for n in range(12)]


async def owners(cluster: ClusterSetup, channels: list[str]) -> set[str]:
    """The nodes that own `channels`' slots."""
    client = RedisCluster(startup_nodes=[ClusterNode("127.0.0.1", cluster.nodes[0])])
    try:
        await client.initialize()
        return {client.get_node_from_key(channel).name for channel in channels}
    finally:
        await client.aclose()


def test_a_cluster_url_names_the_nodes_to_start_from() -> None:
    assert parse_cluster_url("redis+cluster://a:7000,b:7001") == ([("a", 7000), ("b", 7001)], {})
    assert parse_cluster_url("redis+cluster://u:p%40ss@a:7000/") == (
        [("a", 7000)],
        {"username": "u", "password": "p@ss"},
    )


@pytest.mark.parametrize(
    "url", ["redis+cluster://", "redis+cluster://a:x", "redis+cluster://a:1/0"]
)
def test_a_malformed_cluster_url_is_a_value_error_without_its_password(url: str) -> None:
    with pytest.raises(ValueError, match="redis\\+cluster://host:port") as caught:
        Broadcast(url.replace("://", "://:hunter2@"))
    assert "hunter2" not in str(caught.value)


async def test_messages_reach_subscribers_on_every_node_in_order(
    redis_cluster: ClusterSetup,
) -> None:
    assert len(await owners(redis_cluster, CHANNELS)) == 3  # spread over every node
    publisher = Broadcast(redis_cluster.url)
    subscriber = Broadcast(redis_cluster.url)
    assert isinstance(subscriber._backend, ClusterBackend)
    received: dict[str, list[Any]] = {channel: [] for channel in CHANNELS}
    async with publisher, subscriber, anyio.create_task_group() as tasks:

        async def follow(channel: str, *, task_status: Any) -> None:
            async with subscriber.subscribe(channel) as subscription:
                task_status.started()
                async for message in subscription:
                    received[channel].append(message)

        for channel in CHANNELS:
            await tasks.start(follow, channel)
        for n in range(20):
            for channel in CHANNELS:
                assert await publisher.publish(channel, {"n": n}) is None  # no history
        await until(lambda: all(len(messages) == 20 for messages in received.values()))
        for messages in received.values():
            assert messages == [{"n": n} for n in range(20)]
        tasks.cancel_scope.cancel()


async def test_history_resumes_on_every_node_without_gap_or_duplicate_while_others_publish(
    redis_cluster: ClusterSetup,
) -> None:
    publisher = Broadcast(redis_cluster.url, history=1000)
    subscriber = Broadcast(redis_cluster.url, history=1000)
    async with publisher, subscriber:
        for channel in CHANNELS[:6]:
            since = await publisher.publish(channel, {"n": 0})
            assert since is not None
            for n in range(1, 50):
                await publisher.publish(channel, {"n": n})
            got: list[Any] = []
            async with anyio.create_task_group() as tasks:

                async def publish_more(channel: str = channel) -> None:
                    for n in range(50, 100):
                        await publisher.publish(channel, {"n": n})

                with anyio.fail_after(TIMEOUT):
                    async with subscriber.subscribe(channel, since=since) as subscription:
                        tasks.start_soon(publish_more)  # racing the catch-up
                        while len(got) < 99:
                            got.append(await anext(subscription))
                        last = subscription.last_id
            assert got == [{"n": n} for n in range(1, 100)]
            assert last is not None
            assert id_key(last) > id_key(since)


async def test_kept_history_is_in_the_channels_slot_and_too_old_is_a_gap(
    redis_cluster: ClusterSetup,
) -> None:
    broadcast = Broadcast(redis_cluster.url, history=10)
    async with broadcast:
        first = await broadcast.publish("room:{42}", "first")
        for n in range(400):  # trimming is by whole stream nodes of 100 entries
            await broadcast.publish("room:{42}", str(n))
        with pytest.raises(HistoryGap):
            async with broadcast.subscribe("room:{42}", since=first):
                pass
        async with broadcast.subscribe("room:{42}", since=OLDEST) as kept:
            assert await anext(kept) != "first"
    node = (await owners(redis_cluster, ["room:{42}"])).pop()
    host, port = node.rsplit(":", 1)
    async with redis.asyncio.Redis(host=host, port=int(port)) as owner:
        assert await owner.exists("bocws:history:tagged:room:{42}") == 1  # the channel's tag


async def test_a_channel_whose_braces_make_no_hash_tag_cannot_keep_history(
    redis_cluster: ClusterSetup,
) -> None:
    async with Broadcast(redis_cluster.url, history=10) as broadcast:
        with pytest.raises(ValueError, match="hash tag"):
            await broadcast.publish("a{}b", "text")
        assert await broadcast.publish("a{b}", "text") is not None  # a tag: fine


async def test_a_channel_and_the_same_name_in_braces_keep_histories_of_their_own(
    redis_cluster: ClusterSetup,
) -> None:
    async with Broadcast(redis_cluster.url, history=10) as broadcast:
        plain = await broadcast.publish("lobby", "plain")
        await broadcast.publish("{lobby}", "braced")
        assert plain is not None
        async with broadcast.subscribe("lobby", since=OLDEST) as kept:
            assert await anext(kept) == "plain"
            with anyio.move_on_after(0.3):  # nothing more: "braced" is another channel's
                assert await anext(kept) is None
