"""Client departures are not server errors, under a real uvicorn process.

The README's echo view (`examples.echo`) sees clients drop their connections without a
close frame (1006), close with an application code (4000), close normally, and the
server stop with Ctrl+C (every open socket gets 1012): its stderr holds no ERROR and no
traceback. The chat (`examples.chat`) is stopped with Ctrl+C while 100 members are in
a room: every view's `finally` runs (each member leaves its room) and the server exits
within its graceful-shutdown period.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.processes import TIMEOUT, Uvicorn, log_config

pytestmark = pytest.mark.anyio

IMPLEMENTATIONS = ["websockets-sansio", "wsproto", "websockets"]
GRACE = 5
"""uvicorn's --timeout-graceful-shutdown, in seconds."""
MEMBERS = 100


def server_errors(server: Uvicorn) -> list[str]:
    return [line for line in server.lines if "ERROR" in line or "Traceback" in line]


@pytest.fixture(params=IMPLEMENTATIONS)
def echo_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Uvicorn]:
    config = log_config(tmp_path / "log.json", "bocws")
    server = Uvicorn("examples.echo:app", "--ws", request.param, "--log-config", str(config))
    server.start()
    try:
        yield server
    finally:
        if server.running:
            server.stop()


async def closed_code(client: ClientConnection) -> int | None:
    """Read until the server closes `client`; the code it sent."""
    try:
        async with asyncio.timeout(TIMEOUT):
            async for _ in client:
                pass
    except ConnectionClosed:
        pass
    return client.close_code


async def test_departures_and_ctrl_c_leave_no_error_in_the_servers_log(
    echo_server: Uvicorn,
) -> None:
    url = echo_server.url.replace("http", "ws") + "/echo"
    # Dropped without a close frame: a phone losing signal, a killed tab.
    for _ in range(3):
        client = await connect(url)
        await client.send("hi")
        assert await client.recv() == "hi"
        client.transport.abort()
    # An application's close code, and a normal close.
    for code in (4000, 1000):
        async with connect(url) as client:
            await client.send("hi")
            assert await client.recv() == "hi"
            await client.close(code)
    echo_server.wait_for(r"the client left with 4000", times=1)
    echo_server.wait_for(r"the client left with 100[56]", times=3)  # servers differ
    # Ctrl+C with views open: each gets 1012 (service restart).
    clients = [await connect(url) for _ in range(5)]
    for client in clients:
        await client.send("hi")
        assert await client.recv() == "hi"
    codes = asyncio.gather(*(closed_code(client) for client in clients))
    took = await asyncio.to_thread(echo_server.interrupt)
    assert await codes == [1012] * 5
    assert took < GRACE + TIMEOUT
    assert server_errors(echo_server) == []


async def test_ctrl_c_with_a_hundred_chat_members_runs_every_finally(tmp_path: Path) -> None:
    config = log_config(tmp_path / "log.json", "bocws", "examples.chat")
    server = Uvicorn(
        "examples.chat:app",
        "--log-config",
        str(config),
        "--timeout-graceful-shutdown",
        str(GRACE),
    )
    server.start()
    try:
        base = server.url.replace("http", "ws")
        members = []
        for number in range(MEMBERS):
            client = await connect(f"{base}/chat/lobby?name=m{number}", open_timeout=TIMEOUT)
            members.append(client)
            while True:  # until its own join
                async with asyncio.timeout(TIMEOUT):
                    event = json.loads(await client.recv())
                if event["type"] == "join" and event["user"] == f"m{number}":
                    break
        codes = asyncio.gather(*(closed_code(client) for client in members))
        took = await asyncio.to_thread(server.interrupt)
    finally:
        if server.running:
            server.stop()
    assert set(await codes) == {1012}
    left = [line for line in server.lines if "left room 'lobby'" in line]
    assert len(left) == MEMBERS, "\n".join(server.lines[-20:])
    assert took < GRACE + 1, f"shutdown took {took:.1f} s"
    assert server_errors(server) == []
