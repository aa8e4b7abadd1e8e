"""The subscribers of the broadcast benchmark: picows connections, in a process of their own.

Reads a JSON list of jobs on stdin, runs them one after the other and prints one JSON
line per job on stdout. A job opens `subscribers` connections to the feed of
`benchmarks.broadcast_app` or of a peer, shared out evenly over the job's `urls` (one
per server process), speaking its `protocol` (`PROTOCOLS`): "websocket", each message
a text frame of JSON, or "socketio", Socket.IO v5 over Engine.IO v4 on a plain
WebSocket (`SocketIOSubscriber`), each message an event whose argument is the same
JSON. It has the server at `publish_url` publish three batches:

- a warm-up of `warmup` messages (not measured), which also shows that every
  connection is subscribed: each must receive all of them;
- `steady`: `rate` messages a second for `duration` seconds. Per message and
  connection, the delivery latency is the time it was read here minus the `sent`
  time the publisher put in it (`time.time_ns()`, one clock for the whole machine):
  p50 and p99 over every delivery. Also the server processes' CPU time (psutil) per
  delivery, Redis's, and this client's own CPU share;
- `burst`: `burst` messages published back to back (fewer than a subscriber's
  queue holds, so none is dropped): the capacity is the deliveries per second from
  the first message's `sent` to the last delivery.

Every connection must receive every message of a batch once, in order; what is
missing once the publisher is done and `timeout` seconds more have passed is counted
as lost (not waited for any longer; the publishing itself is bounded by its
schedule plus `timeout`). At the end: each server's resident set size,
and Redis's `used_memory` (`INFO memory`) when there is one. Run by
`benchmarks.broadcast`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
import urllib.parse
from time import time_ns
from typing import Any

import psutil  # type: ignore[import-untyped]
from picows import (
    WSCloseCode,
    WSFrame,
    WSListener,
    WSMsgType,
    WSTransport,
    ws_connect,
)

from .loadclient import CONNECT_BATCH, close_transports, returning, run_jobs

try:
    from orjson import loads
except ImportError:  # pragma: no cover - orjson is in the bench extra
    from json import loads  # type: ignore[assignment]

#: Bound on a connection's Socket.IO handshake once its WebSocket is open.
JOIN_TIMEOUT = 30.0


class Batch:
    """The messages of one batch on every connection: their latencies, and what is left."""

    def __init__(self, number: int, count: int, connections: int) -> None:
        self.number = number
        self.count = count
        self.expected = count * connections
        self.remaining = self.expected
        self.latencies: list[int] = []  # ns, one per delivery
        self.first_sent = sys.maxsize
        self.last_read = 0
        #: Messages that came on a connection out of order (a gap, or one repeated).
        self.disordered = 0
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def delivered(self, now: int, sent: int) -> None:
        self.latencies.append(now - sent)
        if sent < self.first_sent:
            self.first_sent = sent
        self.last_read = now
        self.remaining -= 1
        if self.remaining == 0 and not self.done.done():
            self.done.set_result(None)

    def given_up(self, missing: int) -> None:
        """A connection closed with `missing` messages of the batch still to come."""
        self.remaining -= missing
        if self.remaining <= 0 and not self.done.done():
            self.done.set_result(None)


class Subscriber(WSListener):
    """One connection: checks and times the messages of the batch under way, each a text
    frame of JSON."""

    def __init__(self, index: int) -> None:
        super().__init__()
        self.index = index
        self.transport: WSTransport | None = None
        self.batch: Batch | None = None
        self.received = self.next_seq = 0
        #: Messages of no batch under way: late ones, or from an earlier batch; and, over
        #: Socket.IO, packets that are not the protocol's.
        self.strays = 0
        #: The close code, when the server closed the connection (1013: too slow).
        self.closed_with: WSCloseCode | int | None = None
        #: Done once the connection gets the messages published (`connect` waits).
        self.joined: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport
        self.joined.set_result(None)

    def start(self, batch: Batch) -> None:
        self.batch, self.received, self.next_seq = batch, 0, 0
        if self.closed_with is not None:  # closed in an earlier batch: nothing will come
            batch.given_up(batch.count)

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type is WSMsgType.TEXT:
            self.check(time_ns(), loads(frame.get_payload_as_bytes()))
        elif frame.msg_type is WSMsgType.CLOSE:
            self.on_close(transport, frame.get_close_code())

    def check(self, now: int, message: dict[str, Any]) -> None:
        """Count `message`, read at `now` (ns): in the batch under way, and in order?"""
        batch = self.batch
        if batch is None or message["batch"] != batch.number:
            self.strays += 1
            return
        seq = message["seq"]
        if seq != self.next_seq:
            batch.disordered += 1
        self.next_seq = seq + 1
        self.received += 1
        batch.delivered(now, message["sent"])

    def on_close(self, transport: WSTransport, code: WSCloseCode | int) -> None:
        """The server closed the connection with `code`: what is missing will not come."""
        if self.closed_with is None and self.batch is not None:
            self.closed_with = code
            self.batch.given_up(self.batch.count - self.received)
        transport.disconnect()

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        if not self.joined.done():
            self.joined.set_exception(ConnectionError("disconnected before joining"))
        if self.closed_with is None and self.batch is not None:
            self.closed_with = 1006
            self.batch.given_up(self.batch.count - self.received)


class SocketIOSubscriber(Subscriber):
    """A `Subscriber` speaking Socket.IO v5 over Engine.IO v4 on a plain WebSocket
    (`/socket.io/?EIO=4&transport=websocket`), as python-socketio's clients do.

    The server opens with `0{...}` (Engine.IO's open packet); `40` asks to join the
    default namespace, `40{...}` says it is joined; each `2` (ping) is answered with
    `3` (pong); each `42["feed",{...}]` (an event on the default namespace) is a message,
    its argument checked as the other protocols' JSON is.
    """

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport  # joined once the namespace's `40{...}` comes

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type is WSMsgType.TEXT:
            now = time_ns()
            packet = frame.get_payload_as_bytes()
            if packet.startswith(b"42"):
                self.check(now, loads(packet[2:])[1])
            elif packet == b"2":
                transport.send(WSMsgType.TEXT, b"3")
            elif packet.startswith(b"40"):
                if not self.joined.done():
                    self.joined.set_result(None)
            elif packet.startswith(b"0"):
                transport.send(WSMsgType.TEXT, b"40")
            else:  # a disconnect (`41`, `1`) ends with a close frame, counted there
                self.strays += 1
        elif frame.msg_type is WSMsgType.CLOSE:
            self.on_close(transport, frame.get_close_code())


#: What a job's `protocol` asks the subscribers to speak.
PROTOCOLS: dict[str, type[Subscriber]] = {
    "websocket": Subscriber,
    "socketio": SocketIOSubscriber,
}


async def connect(urls: list[str], count: int, protocol: str = "websocket") -> list[Subscriber]:
    """`count` connections speaking `protocol`, the first share to `urls[0]` and so on;
    `CONNECT_BATCH` at once, each batch joined before the next."""
    kind = PROTOCOLS[protocol]
    subscribers = [kind(index) for index in range(count)]
    targets = [urls[index * len(urls) // count] for index in range(count)]
    for start in range(0, count, CONNECT_BATCH):
        batch = subscribers[start : start + CONNECT_BATCH]
        await asyncio.gather(
            *[
                ws_connect(returning(subscriber), url, websocket_handshake_timeout=30)
                for subscriber, url in zip(
                    batch, targets[start : start + CONNECT_BATCH], strict=True
                )
            ]
        )
        joins = asyncio.gather(*[subscriber.joined for subscriber in batch])
        await asyncio.wait_for(joins, JOIN_TIMEOUT)
    return subscribers


async def close_all(subscribers: list[Subscriber]) -> None:
    """Close every connection with 1000 (each view ends quietly); bounded."""
    for subscriber in subscribers:
        subscriber.batch = None
    await close_transports(
        [s.transport for s in subscribers if s.transport and s.closed_with is None]
    )


async def request(host: str, port: int, data: bytes) -> bytes:
    """Send `data` to host:port and read the answer until the server closes."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(data)
        await writer.drain()
        return await reader.read()
    finally:
        writer.close()


async def publish(url: str, count: int, rate: float, batch: int) -> dict[str, Any]:
    """Have the server at `url` publish `count` messages at `rate` a second; its answer."""
    parts = urllib.parse.urlsplit(url)
    assert parts.hostname is not None
    assert parts.port is not None
    query = urllib.parse.urlencode({"count": count, "rate": rate, "batch": batch})
    head = f"POST {parts.path}?{query} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
    head += "Content-Length: 0\r\nConnection: close\r\n\r\n"
    answer = await request(parts.hostname, parts.port, head.encode())
    status, _, rest = answer.partition(b"\r\n")
    _, _, body = rest.partition(b"\r\n\r\n")
    if b" 200 " not in status + b" ":
        raise RuntimeError(f"POST {url}: {answer[:2000]!r}")
    published: dict[str, Any] = json.loads(body)
    return published


async def redis_used_memory(port: int) -> int:
    """Redis's `used_memory` (bytes), from `INFO memory`."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(b"INFO memory\r\n")
        await writer.drain()
        header = await reader.readline()  # $<length>
        text = (await reader.readexactly(int(header[1:]) + 2)).decode()
    finally:
        writer.close()
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    return int(fields["used_memory"])


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def percentile(ordered: list[int], fraction: float) -> float:
    """The value `fraction` of the way along `ordered` (nearest rank), in ms."""
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] / 1e6


async def run_batch(
    job: dict[str, Any],
    subscribers: list[Subscriber],
    number: int,
    count: int,
    rate: float,
) -> dict[str, Any]:
    """Publish one batch and wait for it on every connection (bounded); its figures."""
    servers = [psutil.Process(pid) for pid in job["pids"]]
    redis = psutil.Process(job["redis_pid"]) if job.get("redis_pid") else None
    batch = Batch(number, count, len(subscribers))
    for subscriber in subscribers:
        subscriber.start(batch)
    server_before = [cpu_seconds(server) for server in servers]
    redis_before = cpu_seconds(redis) if redis else 0.0
    client_before = time.process_time()
    started = time.perf_counter()
    # Bounded: the publishing takes count / rate seconds, more if the server falls behind.
    publishing = publish(job["publish_url"], count, rate, number)
    published = await asyncio.wait_for(publishing, job["timeout"] + (count / rate if rate else 0))
    with contextlib.suppress(asyncio.TimeoutError):  # what has not come by then is lost
        await asyncio.wait_for(asyncio.shield(batch.done), job["timeout"])
    wall = time.perf_counter() - started
    client_cpu = time.process_time() - client_before
    server_cpu = [
        cpu_seconds(server) - before for server, before in zip(servers, server_before, strict=True)
    ]
    redis_cpu = cpu_seconds(redis) - redis_before if redis else 0.0
    for subscriber in subscribers:
        subscriber.batch = None
    delivered = len(batch.latencies)
    span = (batch.last_read - batch.first_sent) / 1e9 if delivered else float("nan")
    ordered = sorted(batch.latencies)
    return {
        "messages": count,
        "rate": rate,
        "expected": batch.expected,
        "delivered": delivered,
        "lost": batch.expected - delivered,
        "disordered": batch.disordered,
        "publish_s": published["seconds"],
        "publisher_behind_s": published["behind_s"],
        "span_s": span,
        "wall_s": wall,
        "deliveries_per_s": delivered / span if delivered else 0.0,
        "p50_ms": percentile(ordered, 0.50),
        "p99_ms": percentile(ordered, 0.99),
        "max_ms": ordered[-1] / 1e6 if ordered else float("nan"),
        "server_cpu_s": server_cpu,
        "server_cpu_us": sum(server_cpu) / delivered * 1e6 if delivered else None,
        "server_cpu_share": sum(server_cpu) / wall,
        "redis_cpu_share": redis_cpu / wall,
        "client_cpu_share": client_cpu / wall,
    }


async def fanout_job(job: dict[str, Any]) -> dict[str, Any]:
    """Connect the subscribers, then warm-up, steady and burst batches; memory at the end."""
    started = time.perf_counter()
    subscribers = await connect(job["urls"], job["subscribers"], job.get("protocol", "websocket"))
    connect_s = time.perf_counter() - started
    try:
        warmup = await run_batch(job, subscribers, 1, job["warmup"], job["warmup_rate"])
        steady = await run_batch(
            job, subscribers, 2, round(job["rate"] * job["duration"]), job["rate"]
        )
        burst = await run_batch(job, subscribers, 3, job["burst"], 0)
        rss = [psutil.Process(pid).memory_info().rss for pid in job["pids"]]
        used_memory = await redis_used_memory(job["redis_port"]) if job.get("redis_port") else None
    finally:
        await close_all(subscribers)
    return {
        "connect_s": connect_s,
        "warmup": warmup,
        "steady": steady,
        "burst": burst,
        "rss": rss,
        "redis_used_memory": used_memory,
        "strays": sum(subscriber.strays for subscriber in subscribers),
        "closed": sum(subscriber.closed_with is not None for subscriber in subscribers),
    }


async def run(jobs: list[dict[str, Any]]) -> None:
    """Run the jobs in order, printing each result as one JSON line."""
    for job in jobs:
        result = await fanout_job(job)
        print(json.dumps({**job, **result}), flush=True)  # noqa: T201 - the result line


def main() -> int:
    """Read the jobs on stdin and run them, on uvloop when it is there."""
    return run_jobs(run, "subscribers")


if __name__ == "__main__":
    sys.exit(main())
