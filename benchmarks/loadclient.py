"""The load client of the server benchmarks: picows connections, in a process of their own.

Reads a JSON list of jobs on stdin, runs them one after the other and prints one JSON
line per job on stdout. A job names a server (`url`, and `pid` to read its CPU time and
memory with psutil) and a `mode`:

- `"echo"`: open `connections` connections, echo once on each (set-up, not measured),
  then `round_trips` round trips of `size`-byte text messages with `in_flight` of them
  outstanding on every connection; the window measured covers these round trips only.
  Reports the wall time, the server's CPU time (user + system) and the client's own.
- `"memory"`: open and close a few connections (warm-up), read the server's RSS, open
  `connections` connections with one echo on each (so that each view is running),
  let the RSS settle, read it again.

Every echo is checked: it must come back on its own connection, in order, byte for
byte. A lost, altered or late echo fails the job (exit status 1, the error on stderr).
Run by `benchmarks.servers.run_client`.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import psutil  # type: ignore[import-untyped]
from picows import (
    WSCloseCode,
    WSFrame,
    WSListener,
    WSMsgType,
    WSTransport,
    WSUpgradeRequest,
    WSUpgradeResponse,
    ws_connect,
)

from .servers import raise_fd_limit

#: Connections opened at once: well under uvicorn's listen backlog (2048).
CONNECT_BATCH = 100
#: Bound on closing all the connections of a job.
CLOSE_TIMEOUT = 10.0
#: How the RSS is judged settled: unchanged over this many samples, this far apart...
SETTLE_SAMPLES = 5
SETTLE_INTERVAL = 0.1
#: ... and the bound on the wait.
SETTLE_TIMEOUT = 5.0


class EchoError(Exception):
    """An echo was lost, altered, out of order, or the connection dropped mid-job."""


class Phase:
    """Round trips in progress on a set of connections: done when all have finished."""

    def __init__(self, connections: int) -> None:
        self.pending = connections
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_done(self) -> None:
        self.pending -= 1
        if self.pending == 0 and not self.done.done():
            self.done.set_result(None)

    def fail(self, reason: str) -> None:
        if not self.done.done():
            self.done.set_exception(EchoError(reason))


class EchoListener(WSListener):
    """One connection: sends its payloads in turn and checks that each comes back.

    Payload `slot` is `payloads[slot]`; with `len(payloads)` messages in flight, the
    echoes come back in slot order (one TCP stream, one echo loop), and each echo is
    sent again as the next message of its slot: no bytes are built while measuring.
    """

    def __init__(self, index: int, payloads: list[bytes]) -> None:
        super().__init__()
        self.index = index
        self.payloads = payloads
        self.transport: WSTransport | None = None
        self.phase: Phase | None = None
        self.quota = self.sent = self.received = self.next_slot = 0
        self.verified = 0
        #: Messages that came while no round trip was outstanding: none should.
        self.strays = 0

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport

    def start(self, phase: Phase, quota: int) -> None:
        """Begin `quota` round trips with up to `len(payloads)` in flight."""
        assert self.transport is not None
        self.phase, self.quota, self.sent, self.received, self.next_slot = phase, quota, 0, 0, 0
        for payload in self.payloads[: min(len(self.payloads), quota)]:
            self.transport.send(WSMsgType.TEXT, payload)
            self.sent += 1
        if quota == 0:
            phase.connection_done()

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        phase = self.phase
        if frame.msg_type is WSMsgType.CLOSE:
            if phase is not None:
                phase.fail(f"connection {self.index}: the server closed with {frame}")
            transport.disconnect()
            return
        if phase is None:
            self.strays += 1
            return
        if frame.msg_type is not WSMsgType.TEXT:
            phase.fail(f"connection {self.index}: unexpected {frame}")
            return
        expected = self.payloads[self.next_slot]
        if not frame.fin or frame.get_payload_as_bytes() != expected:
            phase.fail(f"connection {self.index}: echo {self.received} differs from its message")
            return
        self.received += 1
        self.verified += 1
        self.next_slot += 1
        if self.next_slot == len(self.payloads):
            self.next_slot = 0
        if self.sent < self.quota:
            transport.send(WSMsgType.TEXT, expected)
            self.sent += 1
        elif self.received == self.quota:
            self.phase = None
            phase.connection_done()

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        if self.phase is not None:
            self.phase.fail(f"connection {self.index} dropped after {self.received} echoes")


def payloads_for(index: int, size: int, count: int) -> list[bytes]:
    """`count` distinct ASCII payloads of `size` bytes for connection `index`."""
    result = []
    for slot in range(count):
        tag = f"{index}:{slot}:".encode()
        result.append((tag + b"x" * size)[:size])
    return result


async def connect(url: str, count: int, in_flight: int, size: int) -> list[EchoListener]:
    """Open `count` connections, `CONNECT_BATCH` at a time."""
    listeners = [
        EchoListener(index, payloads_for(index, size, in_flight)) for index in range(count)
    ]
    for start in range(0, count, CONNECT_BATCH):
        batch = listeners[start : start + CONNECT_BATCH]
        await asyncio.gather(
            *[
                ws_connect(returning(listener), url, websocket_handshake_timeout=30)
                for listener in batch
            ]
        )
    return listeners


def returning(
    listener: WSListener,
) -> Callable[[WSUpgradeRequest, WSUpgradeResponse], WSListener]:
    """A picows listener factory handing out `listener`, made beforehand."""

    def factory(request: WSUpgradeRequest, response: WSUpgradeResponse) -> WSListener:
        return listener

    return factory


async def echo_on_all(listeners: list[EchoListener], quotas: list[int], timeout: float) -> None:
    """`quotas[i]` round trips on connection `i`, all connections at once; bounded."""
    phase = Phase(len(listeners))
    for listener, quota in zip(listeners, quotas, strict=True):
        listener.start(phase, quota)
    await asyncio.wait_for(phase.done, timeout)


async def close_all(listeners: list[EchoListener]) -> None:
    """Close every connection with 1000 (so that every view ends quietly); bounded."""
    await close_transports([listener.transport for listener in listeners if listener.transport])


async def close_transports(transports: list[WSTransport]) -> None:
    """Close `transports` with 1000, and drop those not closed within `CLOSE_TIMEOUT`."""
    for transport in transports:
        transport.send_close(WSCloseCode.OK)
    waits = asyncio.gather(*[transport.wait_disconnected() for transport in transports])
    try:
        await asyncio.wait_for(waits, CLOSE_TIMEOUT)
    except asyncio.TimeoutError:
        for transport in transports:
            transport.disconnect(graceful=False)


def split(total: int, parts: int) -> list[int]:
    """`total` round trips shared out as evenly as can be over `parts` connections."""
    share, extra = divmod(total, parts)
    return [share + (1 if index < extra else 0) for index in range(parts)]


async def echo_job(job: dict[str, Any]) -> dict[str, Any]:
    """Round trips per second, server and client CPU per round trip, over the window."""
    server = psutil.Process(job["pid"])
    connections, timeout = job["connections"], job["timeout"]
    listeners = await connect(job["url"], connections, job["in_flight"], job["size"])
    try:
        await echo_on_all(listeners, [1] * connections, timeout)  # every view is running
        quotas = split(job["round_trips"], connections)
        server_before = server.cpu_times()
        client_before = time.process_time()
        started = time.perf_counter()
        await echo_on_all(listeners, quotas, timeout)
        wall = time.perf_counter() - started
        client_cpu = time.process_time() - client_before
        server_after = server.cpu_times()
    finally:
        await close_all(listeners)
    server_cpu = (server_after.user - server_before.user) + (
        server_after.system - server_before.system
    )
    round_trips = sum(quotas)
    return {
        "round_trips": round_trips,
        "echoes_verified": sum(listener.verified for listener in listeners),
        "echoes_expected": round_trips + connections,
        "strays": sum(listener.strays for listener in listeners),
        "wall_s": wall,
        "round_trips_per_s": round_trips / wall,
        "server_cpu_us": server_cpu / round_trips * 1e6,
        "server_cpu_share": server_cpu / wall,
        "client_cpu_us": client_cpu / round_trips * 1e6,
        "client_cpu_share": client_cpu / wall,
    }


async def settled_rss(server: psutil.Process) -> int:
    """The server's RSS once it has stopped moving (or after `SETTLE_TIMEOUT`)."""
    deadline = time.monotonic() + SETTLE_TIMEOUT
    samples: list[int] = [server.memory_info().rss]
    while time.monotonic() < deadline:
        await asyncio.sleep(SETTLE_INTERVAL)
        samples.append(server.memory_info().rss)
        recent = samples[-SETTLE_SAMPLES:]
        if len(recent) == SETTLE_SAMPLES and len(set(recent)) == 1:
            break
    return samples[-1]


async def memory_job(job: dict[str, Any]) -> dict[str, Any]:
    """The server's RSS before and after `connections` idle connections, each echoed once."""
    server = psutil.Process(job["pid"])
    connections, timeout = job["connections"], job["timeout"]
    for _ in range(2):  # warm-up: first-connection costs (imports, caches, allocator growth)
        warm = await connect(job["url"], job["warmup"], 1, job["size"])
        try:
            await echo_on_all(warm, [1] * len(warm), timeout)
        finally:
            await close_all(warm)
    before = await settled_rss(server)
    listeners = await connect(job["url"], connections, 1, job["size"])
    try:
        await echo_on_all(listeners, [1] * connections, timeout)
        after = await settled_rss(server)
    finally:
        await close_all(listeners)
    return {
        "connections": connections,
        "echoes_verified": sum(listener.verified for listener in listeners),
        "echoes_expected": connections,
        "strays": sum(listener.strays for listener in listeners),
        "rss_before": before,
        "rss_after": after,
        "bytes_per_connection": (after - before) / connections,
    }


JOBS: dict[str, Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]] = {
    "echo": echo_job,
    "memory": memory_job,
}


async def run(jobs: list[dict[str, Any]]) -> None:
    """Run the jobs in order, printing each result as one JSON line."""
    for job in jobs:
        result = await JOBS[job["mode"]](job)
        if result["echoes_verified"] != result["echoes_expected"] or result["strays"]:
            raise EchoError(
                f"{result['echoes_verified']} echoes of {result['echoes_expected']}, "
                f"{result['strays']} messages unasked for"
            )
        print(json.dumps({**job, **result}), flush=True)  # noqa: T201 - the result line


def main() -> int:
    """Read the jobs on stdin and run them, on uvloop when it is there."""
    return run_jobs(run, "connections")


def run_jobs(run: Callable[[list[dict[str, Any]]], Coroutine[Any, Any, None]], sockets: str) -> int:
    """Read a client's jobs on stdin and `run` them, on uvloop when it is there; each
    job opens `job[sockets]` connections, which the open-file limit must allow."""
    limit = raise_fd_limit()
    jobs: list[dict[str, Any]] = json.loads(sys.stdin.read())
    needed = max((job[sockets] for job in jobs), default=0) + 64
    if needed > limit:
        raise SystemExit(f"{needed} open files needed, the limit is {limit}")
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is in the bench extra
        asyncio.run(run(jobs))
    else:
        uvloop.run(run(jobs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
