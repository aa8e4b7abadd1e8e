"""Hostile clients: what one client (or one stray publisher) must not be able to do.

Each test states an attack, runs it against a real server where the attack needs one,
and checks what bocws, or the chat example, does about it (docs/reliability.md's
"Hostile clients" table names these tests).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib
import json
import logging
import math
import re
import time
import weakref
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import psutil
import pytest
import redis.asyncio
from hypothesis import given, settings
from hypothesis import strategies as st
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

import examples.chat
from bocws import WebSocket, _parameters, websocket_view
from bocws._servers import server_message_limit
from tests.fake import CONNECT, FakeServer
from tests.processes import TIMEOUT, Uvicorn, log_config
from tests.redis_server import RedisServer
from tests.test_json import ORJSON_BACKEND, STDLIB_BACKEND

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


# Memory: a closed connection is freed at once, and the server refuses big messages.


class Message(dict[str, Any]):
    """An ASGI message that can be watched through a weak reference."""


def gone(reference: weakref.ref[Any]) -> bool:
    return reference() is None


@pytest.mark.parametrize(
    ("options", "content", "code"),
    [
        ({"max_message_size": 64}, {"text": "x" * 100_000}, 1009),
        ({"value_type": "json"}, {"text": "{" * 100_000}, 1007),
        ({}, {"bytes": b"x" * 100_000}, 1003),
        ({}, {"text": "boom"}, 1011),
    ],
    ids=["1009", "1007", "1003", "1011"],
)
async def test_a_closed_connection_is_freed_by_reference_counting(
    options: dict[str, Any], content: dict[str, Any], code: int
) -> None:
    """No reference cycle keeps a closed WebSocket, or the message it refused, alive."""
    sockets: list[weakref.ref[WebSocket]] = []

    async def view(ws: WebSocket) -> None:
        sockets.append(weakref.ref(ws))
        async for received in ws:
            if received == "boom":
                raise RuntimeError("boom")

    message = Message(type="websocket.receive", **content)
    server = FakeServer([CONNECT, message])
    watched = weakref.ref(message)
    del message
    endpoint = websocket_view(view, **options)
    gc.disable()
    try:
        with contextlib.suppress(RuntimeError):
            await endpoint(server.scope, server.receive, server.send)
        assert server.sent[-1]["code"] == code
        assert gone(watched), gc.get_referrers(watched())
        assert gone(sockets[0]), [type(r) for r in gc.get_referrers(sockets[0]())]
    finally:
        gc.enable()


MIB = 1024 * 1024


def inflating_message() -> str:
    """Just under uvicorn's default --ws-max-size (16 MiB), about 16 KiB deflated."""
    return "a" * (16 * MIB - 64 * 1024)


@pytest.mark.parametrize("options", [(), ("--ws-max-size", "16384")], ids=["default", "matched"])
async def test_inflating_frames_leave_the_servers_memory_bounded(options: tuple[str, ...]) -> None:
    """40 tiny permessage-deflate frames, each inflating to 16 MiB, against the chat
    (16 KiB messages): the server's memory goes back down, without a gc.collect()."""
    server = Uvicorn("examples.chat:app", *options)
    server.start()
    base = server.url.replace("http", "ws")
    process = psutil.Process(server.pid)
    payload = inflating_message()
    try:
        async with member(base, "lobby", "warmup"):
            pass
        before = process.memory_info().rss
        for number in range(40):
            async with connect(
                f"{base}/chat/lobby?name=bomb{number}",
                compression="deflate",
                max_size=None,
                open_timeout=TIMEOUT,
            ) as bomb:
                with contextlib.suppress(ConnectionClosed):
                    await bomb.send(payload)
                    with anyio.fail_after(TIMEOUT):
                        async for _ in bomb:
                            pass
                assert bomb.close_code == 1009
        after = process.memory_info().rss
    finally:
        server.stop()
    assert after - before < 64 * MIB, f"+{(after - before) / MIB:.0f} MiB"


@pytest.mark.parametrize(
    ("options", "warned"),
    [((), True), (("--ws-max-size", "1048576"), False), (("--ws-max-size=4194304",), False)],
)
async def test_an_app_warns_when_the_server_assembles_far_larger_messages(
    options: tuple[str, ...], warned: bool, tmp_path: Path
) -> None:
    config = str(log_config(tmp_path / "log.json", "bocws"))
    server = Uvicorn("examples.echo:app", "--log-config", config, *options)
    server.start()
    server.stop()
    warnings = [line for line in server.lines if "before bocws can refuse them" in line]
    assert len(warnings) == warned, server.lines
    if warned:
        assert "up to 16777216 bytes (uvicorn's --ws-max-size)" in warnings[0]
        assert "set the server's limit to 1048576" in warnings[0]


def test_the_servers_limit_is_read_with_uvicorns_own_parser(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    uvicorn = "/venv/bin/uvicorn"
    assert server_message_limit([uvicorn, "app:app"]) == ("uvicorn's --ws-max-size", 16 * MIB)
    assert server_message_limit([uvicorn, "app:app", "--ws-max-size", "10"])[1] == 10  # type: ignore[index]
    module = "/usr/lib/python3/site-packages/uvicorn/__main__.py"
    assert server_message_limit([module, "app:app", "--ws-max-size=20"])[1] == 20  # type: ignore[index]
    monkeypatch.setenv("UVICORN_WS_MAX_SIZE", "30")
    assert server_message_limit([uvicorn, "app:app"])[1] == 30  # type: ignore[index]
    assert server_message_limit(["hypercorn", "app:app"]) is None
    assert server_message_limit(["python", "serve.py"]) is None
    assert server_message_limit([]) is None


# JSON: what is read can be written back.

UNWRITABLE = {
    "NaN": "NaN",
    "Infinity": "[Infinity, 1]",
    "-Infinity": '{"x": -Infinity}',
    "1e999": "[1e999]",
    "-1e999": "-1e999",
    "300 deep": "[" * 300 + "]" * 300,
    "1000 deep": "[" * 1000 + "]" * 1000,
    "1024 deep objects": '{"a":' * 1024 + "1" + "}" * 1024,
}


@pytest.mark.parametrize("document", UNWRITABLE.values(), ids=UNWRITABLE.keys())
async def test_a_json_echo_refuses_on_receipt_what_it_could_not_send_back(
    document: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The docs' echo pattern: 1007 for the client's document, never a 1011."""

    async def echo(ws: WebSocket) -> None:
        async for message in ws:
            await ws.send(message)

    server = FakeServer([CONNECT, {"type": "websocket.receive", "text": document}])
    await websocket_view(echo, value_type="json")(server.scope, server.receive, server.send)
    assert server.sent[-1] == {"type": "websocket.close", "code": 1007, "reason": "invalid JSON"}
    assert [record for record in caplog.records if record.levelno >= logging.ERROR] == []


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=3), children, max_size=3)
    ),
    max_leaves=20,
)


def deepen(value: Any, depth: int) -> Any:
    for _ in range(depth):
        value = [value]
    return value


@settings(max_examples=300, deadline=None)
@given(value=json_values, depth=st.integers(0, 400), exponent=st.sampled_from(["", "e999"]))
def test_whatever_is_received_can_be_sent(value: Any, depth: int, exponent: str) -> None:
    text = json.dumps(deepen(value, depth), allow_nan=True)
    if exponent:
        text = f"[{text}, 1{exponent}]"
    for backend in (ORJSON_BACKEND, STDLIB_BACKEND):
        try:
            received = backend.loads(text)
        except (ValueError, RecursionError):
            continue  # refused on receipt: 1007
        backend.dumps(received)  # must not raise


# Parameters: conversion in linear time.

ADVERSARIAL_NUMBERS = [
    "1" * 8100 + "x",
    "1" * 100_000 + "x",
    "1" * 50_000 + "." + "1" * 50_000 + "x",
    "1" * 50_000 + "e" + "1" * 50_000 + "x",
    "-" + "9" * 399,
]


@pytest.mark.parametrize("convert", [_parameters._to_float, _parameters._to_int])
def test_number_parameters_take_linear_time(convert: Any) -> None:
    """A value a client crafts to make the regular expression backtrack is refused at
    once. The bound is loose (half a second, for a machine under load): each input takes
    about a millisecond, where the backtracking pattern took 1.6 s for 8,100 digits and
    would take minutes for 100,000."""
    for raw in ADVERSARIAL_NUMBERS:
        started = time.perf_counter()
        with contextlib.suppress(ValueError):
            convert(raw)
        assert time.perf_counter() - started < 0.5, raw[:20]
    # The pattern itself, without the length bound, matches in linear time too.
    digits = "1" * 100_000 + "x"
    started = time.perf_counter()
    assert _parameters._NUMBER.fullmatch(digits) is None
    assert time.perf_counter() - started < 0.5


@settings(max_examples=500, deadline=None)
@given(raw=st.text(alphabet="0123456789.-+eE_x ", max_size=40))
def test_number_parameters_accept_exactly_the_documented_forms(raw: str) -> None:
    """The linear pattern accepts what the documented grammar does, no more, no less."""
    documented = re.fullmatch(r"-?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?", raw, flags=re.ASCII)
    try:
        value = _parameters._to_float(raw)
    except ValueError:
        assert documented is None or not math.isfinite(float(raw))
    else:
        assert documented is not None
        assert value == float(raw)
    integer = re.fullmatch(r"-?\d+", raw, flags=re.ASCII)
    try:
        number = _parameters._to_int(raw)
    except ValueError:
        assert integer is None
    else:
        assert integer is not None
        assert number == int(raw)
