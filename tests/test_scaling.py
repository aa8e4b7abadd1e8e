"""The chat example scaled out: two uvicorn processes, two ports, one real redis-server.

Clients connected to different processes share rooms through `Broadcast`; killing
redis-server mid-run leaves the processes up, and once it is back, traffic resumes
on the same connections.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect

from tests.processes import TIMEOUT, Uvicorn, log_config
from tests.redis_server import RedisServer

pytestmark = pytest.mark.anyio


@pytest.fixture
def servers(
    serve: type[Uvicorn], redis_server: RedisServer, tmp_path: Path
) -> tuple[Uvicorn, Uvicorn]:
    return chat_processes(serve, redis_server, tmp_path)


def chat_processes(
    serve: type[Uvicorn], redis_server: RedisServer, tmp_path: Path
) -> tuple[Uvicorn, Uvicorn]:
    """`uvicorn examples.chat:app` twice, each on its own port, sharing `redis_server`."""
    logging = str(log_config(tmp_path / "log.json", "examples.chat", "bocws"))
    env = {"BROADCAST_URL": redis_server.url}
    pair = (
        serve("examples.chat:app", "--log-config", logging, env=env),
        serve("examples.chat:app", "--log-config", logging, env=env),
    )
    for server in pair:
        server.start()
    return pair  # `serve` stops them


@asynccontextmanager
async def member(server: Uvicorn, room: str, name: str) -> AsyncIterator[ClientConnection]:
    """A chat client on `server`, in `room`, past its own join event."""
    async with connect(f"ws://127.0.0.1:{server.port}/chat/{room}?name={name}") as connection:
        joined = await event(connection)
        assert (joined["type"], joined["user"]) == ("join", name)
        yield connection


async def event(connection: ClientConnection) -> dict[str, Any]:
    with anyio.fail_after(TIMEOUT):
        received: dict[str, Any] = json.loads(await connection.recv())
    return received


async def next_of(connection: ClientConnection, kind: str) -> dict[str, Any]:
    """The next event of type `kind`, skipping member-list updates and the like."""
    with anyio.fail_after(TIMEOUT):
        while True:
            received = await event(connection)
            if received["type"] == kind:
                return received


async def say(connection: ClientConnection, text: str) -> None:
    await connection.send(json.dumps({"text": text}))


async def test_rooms_span_processes_in_order_and_stay_apart(
    servers: tuple[Uvicorn, Uvicorn],
) -> None:
    one, two = servers
    async with (
        member(one, "a", "ana") as ana,
        member(two, "a", "bob") as bob,
        member(two, "b", "eve") as eve,
    ):
        # Both processes come to agree on who is in room a.
        with anyio.fail_after(TIMEOUT):
            while (await event(ana)).get("members") != ["ana", "bob"]:
                pass
        for number in range(10):  # both ways, interleaved
            await say(ana if number % 2 == 0 else bob, f"message {number}")
        expected = [f"message {number}" for number in range(10)]
        seen = [[(await next_of(each, "message"))["text"] for _ in expected] for each in (ana, bob)]
        assert seen[0] == seen[1]  # one order, the same for every member in every process
        assert sorted(seen[0], key=lambda text: int(text.split()[1])) == expected
        for sender in (0, 1):  # each sender's messages in the order it sent them
            own = [text for text in seen[0] if int(text.split()[1]) % 2 == sender]
            assert own == expected[sender::2]
        await say(eve, "only in b")
        assert (await next_of(eve, "message"))["text"] == "only in b"  # nothing of a came first


async def test_processes_survive_redis_going_away_and_traffic_resumes(
    servers: tuple[Uvicorn, Uvicorn], redis_server: RedisServer
) -> None:
    one, two = servers
    async with member(one, "a", "ana") as ana, member(two, "a", "bob") as bob:
        await say(ana, "before")
        assert (await next_of(bob, "message"))["text"] == "before"

        redis_server.stop(kill=True)  # no goodbye: the connections just break
        for server in servers:
            server.wait_for(r"lost the connection to Redis")
        await say(ana, "while redis is down")
        refused = await next_of(ana, "error")
        assert refused["text"] == "not delivered: the chat is unavailable"
        async with httpx.AsyncClient() as http:  # the processes still serve
            for server in servers:
                assert (await http.get(f"{server.url}/")).status_code == 200

        redis_server.start()  # same port: the processes reconnect by themselves
        for server in servers:
            server.wait_for(r"connected to Redis at .* again; subscribed to 1 channels")
        for sender in (ana, bob):
            text = f"after, from {'ana' if sender is ana else 'bob'}"
            await say(sender, text)
            for connection in (ana, bob):
                assert (await next_of(connection, "message"))["text"] == text
