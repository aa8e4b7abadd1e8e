"""Hostile clients: what one client (or one stray publisher) must not be able to do.

Each test states an attack, runs it against a real server where the attack needs one,
and checks what bocws, or the chat example, does about it (docs/reliability.md's
"Hostile clients" table names these tests).
"""

from __future__ import annotations

import asyncio
import importlib
import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
import redis.asyncio
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

import examples.chat
from tests.processes import TIMEOUT, Uvicorn, log_config
from tests.redis_server import RedisServer

pytestmark = pytest.mark.anyio

# Not `from examples.chat import rooms`: that is the app's `Rooms` object.
chat_rooms = importlib.import_module("examples.chat.rooms")

READERS = 5
SPEAKERS = 20
JOINERS = 200


# The chat: one client cannot empty a room.


async def event(connection: ClientConnection) -> dict[str, Any]:
    with anyio.fail_after(TIMEOUT):
        received: dict[str, Any] = json.loads(await connection.recv())
    return received


@asynccontextmanager
async def member(base: str, room: str, name: str) -> AsyncIterator[ClientConnection]:
    """A chat client in `room`, past its own join event."""
    async with connect(f"{base}/chat/{room}?name={name}", open_timeout=TIMEOUT) as connection:
        while True:
            joined = await event(connection)
            if (joined["type"], joined.get("user")) == ("join", name):
                break
        yield connection


async def keep_reading(
    connection: ClientConnection, seen: list[dict[str, Any]], saw: anyio.Event
) -> None:
    """Read everything the server sends until it closes the connection; set `saw` on
    the message "still here"."""
    try:
        async for message in connection:
            seen.append(json.loads(message))
            if seen[-1].get("text") == "still here":
                saw.set()
    except ConnectionClosed:
        pass


async def burst(base: str, number: int) -> None:
    """A socket that sends its whole burst at once, then leaves."""
    async with member(base, "lobby", f"speaker{number}") as speaker:
        for count in range(chat_rooms.BURST):
            await speaker.send(json.dumps({"text": f"{number}:{count}"}))
        await asyncio.sleep(0.5)


async def join_and_leave(base: str, number: int) -> None:
    async with connect(f"{base}/chat/lobby?name=joiner{number}", open_timeout=TIMEOUT):
        await asyncio.sleep(0.2)


async def test_bursts_and_join_floods_do_not_drop_members_that_read(tmp_path: Path) -> None:
    config = log_config(tmp_path / "log.json", "examples.chat", "bocws")
    server = Uvicorn("examples.chat:app", "--log-config", str(config))
    server.start()
    base = server.url.replace("http", "ws")
    try:
        async with contextlib_nested(
            [member(base, "lobby", f"reader{number}") for number in range(READERS)]
        ) as readers:
            seen: list[list[dict[str, Any]]] = [[] for _ in readers]
            saw = [anyio.Event() for _ in readers]
            async with anyio.create_task_group() as tasks:
                for reader, events, marker in zip(readers, seen, saw, strict=True):
                    tasks.start_soon(keep_reading, reader, events, marker)
                async with anyio.create_task_group() as attack:
                    for number in range(SPEAKERS):
                        attack.start_soon(burst, base, number)
                    for number in range(JOINERS):
                        attack.start_soon(join_and_leave, base, number)
                # Every reader is still a member: what one of them says reaches all.
                await readers[0].send(json.dumps({"text": "still here"}))
                with anyio.fail_after(TIMEOUT):
                    for marker in saw:
                        await marker.wait()
                for reader in readers:
                    assert reader.close_code is None
                tasks.cancel_scope.cancel()
    finally:
        server.stop()
    assert not [line for line in server.lines if "too slow" in line], server.lines[-30:]
    joins = [event for event in seen[0] if event["type"] == "join"]
    assert len(joins) >= JOINERS  # the flood did reach the readers
    assert [line for line in server.lines if "ERROR" in line or "Traceback" in line] == []


@asynccontextmanager
async def contextlib_nested(
    managers: list[Any],
) -> AsyncIterator[list[ClientConnection]]:
    async with AsyncExitStack() as stack:
        yield [await stack.enter_async_context(manager) for manager in managers]


class Stalled:
    """A socket whose client stopped reading: once the server's buffers are full, a
    send waits for ever (what uvicorn does, waiting for a drain)."""

    client = None

    def __init__(self, accepted: int) -> None:
        self.accepted = accepted
        self.sent: list[Any] = []

    async def send(self, event: Any) -> None:
        if len(self.sent) >= self.accepted:
            await anyio.sleep_forever()
        self.sent.append(event)


async def test_a_member_that_stops_reading_is_dropped_once_it_lags(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(chat_rooms, "MAX_LAG", 0.2)
    socket = Stalled(accepted=3)
    member = chat_rooms.Member(socket, "slow")  # type: ignore[arg-type]
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(examples.chat.deliver, member)
        for number in range(chat_rooms.OUTBOX_SIZE - 1):  # a burst: no lag yet
            assert member.tell({"n": number})
        await anyio.sleep(0.05)
        assert not member.too_slow
        assert len(socket.sent) == 3  # and then the client stopped reading
        await anyio.sleep(0.3)
        assert member.lag() > 0.2
        assert not member.tell({"n": "late"})
        assert member.too_slow
        tasks.cancel_scope.cancel()


async def test_a_member_that_reads_takes_a_burst_of_a_whole_outbox() -> None:
    socket = Stalled(accepted=10**9)
    member = chat_rooms.Member(socket, "fast")  # type: ignore[arg-type]
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(examples.chat.deliver, member)
        for _ in range(3):
            for number in range(chat_rooms.OUTBOX_SIZE - 1):
                assert member.tell({"n": number})
            await anyio.sleep(0.01)
        member.close()
    assert len(socket.sent) == 3 * (chat_rooms.OUTBOX_SIZE - 1)
    assert not member.too_slow


async def test_the_rate_limit_follows_a_name_across_reconnections() -> None:
    rooms = chat_rooms.Rooms(broadcast=None)  # type: ignore[arg-type]
    said = 0
    for socket in range(10):  # reconnecting gives a fresh socket, not a fresh allowance
        member = chat_rooms.Member(Stalled(0), "Mallory")  # type: ignore[arg-type]
        member.address = f"10.0.0.{socket}"
        said += sum(rooms.may_speak(member) for _ in range(chat_rooms.BURST))
    assert said <= chat_rooms.BURST + 2  # what the name's bucket refilled meanwhile


async def test_the_rate_limit_follows_an_address_across_names() -> None:
    rooms = chat_rooms.Rooms(broadcast=None)  # type: ignore[arg-type]
    said = 0
    for name in range(20):
        member = chat_rooms.Member(Stalled(0), f"sock{name}")  # type: ignore[arg-type]
        member.address = "10.0.0.1"
        said += sum(rooms.may_speak(member) for _ in range(chat_rooms.BURST))
    assert said <= chat_rooms.ADDRESS_BURST + 5


# The chat: one message on Redis cannot stop every process.

POISON = [
    b'j{"type":"roster","process":"x","n":1e999,"members":[]}',
    b'j{"type":"roster","process":"x","n":1,"members":' + b"[" * 990 + b"]" * 990 + b"}",
    b'j{"type":"roster","process":"x","n":"many","members":[]}',
    b'j{"type":"roster","process":"x","n":1,"members":[1,2],"change":{"type":"join"}}',
    b"j[1,2,3]",
    b"jnot json",
    b"\xff\xfe",
]


async def test_a_stray_publisher_cannot_stop_the_rooms(
    serve: type[Uvicorn], redis_server: RedisServer, tmp_path: Path
) -> None:
    config = str(log_config(tmp_path / "log.json", "examples.chat", "bocws"))
    server = serve(
        "examples.chat:app", "--log-config", config, env={"BROADCAST_URL": redis_server.url}
    )
    server.start()
    base = server.url.replace("http", "ws")
    publisher = redis.asyncio.Redis.from_url(redis_server.url)
    try:
        async with member(base, "lobby", "ana") as ana:
            for payload in POISON:
                await publisher.publish("chat:lobby", payload)
            await ana.send(json.dumps({"text": "still alive"}))
            with anyio.fail_after(TIMEOUT):
                while (await event(ana)).get("text") != "still alive":
                    pass
            async with member(base, "lobby", "bob"), member(base, "other", "eve"):
                pass  # joins still work, in this room and in others
    finally:
        await publisher.aclose()
    assert [line for line in server.lines if "Traceback" in line] == []
