"""In-process benchmark: the cost of one message through each WebSocket layer.

Every variant echoes the same messages over fake ASGI `receive`/`send` callables, so
what is measured is the layer itself, not a network or a server. Variants run in
turn, rotating the order each round, and every figure is also given as a ratio
against raw ASGI measured in the same round.

Run: `python -m benchmarks.inprocess` (see `--help`).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from starlette.endpoints import WebSocketEndpoint
from starlette.websockets import WebSocket as StarletteWebSocket

from bocws import WebSocket

Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Variant = Callable[[dict[str, Any], Receive, Send], Awaitable[None]]

SCOPE: dict[str, Any] = {
    "type": "websocket",
    "asgi": {"version": "3.0", "spec_version": "2.4"},
    "scheme": "ws",
    "path": "/",
    "raw_path": b"/",
    "query_string": b"",
    "headers": [(b"host", b"127.0.0.1")],
    "client": ("127.0.0.1", 50000),
    "server": ("127.0.0.1", 8000),
    "subprotocols": [],
}

PAYLOADS: dict[str, Message] = {
    "text": {"type": "websocket.receive", "text": "x" * 32},
    "bytes": {"type": "websocket.receive", "bytes": b"x" * 32},
    "json": {"type": "websocket.receive", "text": json.dumps({"user": "ada", "text": "x" * 8})},
}


class FakeServer:
    """`count` messages of one kind between a connect and a disconnect; sends counted."""

    def __init__(self, kind: str, count: int) -> None:
        events = [{"type": "websocket.connect"}]
        events += [PAYLOADS[kind]] * count
        events.append({"type": "websocket.disconnect", "code": 1000})
        self._next: Callable[[], Message] = iter(events).__next__
        self.sent = 0

    async def receive(self) -> Message:
        return self._next()

    async def send(self, message: Message) -> None:
        self.sent += 1


# The variants: each echoes every message back, then lets the connection end.


def raw(kind: str) -> Variant:
    """A bare ASGI app doing the same work, with nothing in between: the baseline."""
    key = "bytes" if kind == "bytes" else "text"

    async def echo(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            await send({"type": "websocket.send", key: message[key]})

    async def echo_json(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            reply = json.dumps(json.loads(message["text"]), separators=(",", ":"))
            await send({"type": "websocket.send", "text": reply})

    return echo_json if kind == "json" else echo


def bocws(kind: str) -> Variant:
    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        ws = WebSocket(scope, receive, send, value_type=kind)  # type: ignore[arg-type]
        async with ws:
            async for message in ws:
                await ws.send(message)

    return app


def starlette(kind: str) -> Variant:
    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        ws = StarletteWebSocket(scope, receive, send)
        await ws.accept()
        if kind == "text":
            async for text in ws.iter_text():
                await ws.send_text(text)
        elif kind == "bytes":
            async for data in ws.iter_bytes():
                await ws.send_bytes(data)
        else:
            async for data in ws.iter_json():
                await ws.send_json(data)

    return app


def starlette_endpoint(kind: str) -> Variant:
    class Echo(WebSocketEndpoint):
        encoding = kind

        async def on_receive(self, websocket: StarletteWebSocket, data: Any) -> None:
            if kind == "text":
                await websocket.send_text(data)
            elif kind == "bytes":
                await websocket.send_bytes(data)
            else:
                await websocket.send_json(data)

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await Echo(scope, receive, send)

    return app


VARIANTS: dict[str, Callable[[str], Variant]] = {
    "raw": raw,
    "bocws": bocws,
    "starlette": starlette,
    "starlette-endpoint": starlette_endpoint,
}


def run_once(variant: Variant, kind: str, count: int) -> float:
    """Nanoseconds per message for one run of `variant` over `count` messages."""
    server = FakeServer(kind, count)
    loop = asyncio.new_event_loop()
    try:
        gc.collect()
        started = time.perf_counter_ns()
        loop.run_until_complete(variant(dict(SCOPE), server.receive, server.send))
        elapsed = time.perf_counter_ns() - started
    finally:
        loop.close()
    if server.sent < count:  # every message echoed, plus the accept (and maybe a close)
        raise AssertionError(f"{variant} sent {server.sent} messages for {count}")
    return elapsed / count


def rounds(names: list[str], count: int) -> Iterator[list[str]]:
    """The order of each round: rotated, so that no variant always runs first."""
    for shift in range(count):
        yield names[shift % len(names) :] + names[: shift % len(names)]


def measure(kinds: list[str], names: list[str], count: int, repeats: int) -> dict[str, Any]:
    """Per kind and variant: ns per message in each round, and the ratio to raw."""
    results: dict[str, Any] = {}
    for kind in kinds:
        apps = {name: VARIANTS[name](kind) for name in names}
        for name in names:  # warm up: imports, caches, first-call costs
            run_once(apps[name], kind, min(count, 1000))
        timings: dict[str, list[float]] = {name: [] for name in names}
        for order in rounds(names, repeats):
            for name in order:
                timings[name].append(run_once(apps[name], kind, count))
        results[kind] = {name: summary(timings[name], timings.get("raw")) for name in names}
    return results


def summary(values: list[float], raw_values: list[float] | None) -> dict[str, Any]:
    figures: dict[str, Any] = {
        "ns_per_message": values,
        "median_ns": statistics.median(values),
        "min_ns": min(values),
        "max_ns": max(values),
    }
    if raw_values is not None:
        ratios = [value / raw for value, raw in zip(values, raw_values, strict=True)]
        figures.update(
            ratio_median=statistics.median(ratios), ratio_min=min(ratios), ratio_max=max(ratios)
        )
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000, help="messages per run")
    parser.add_argument("--repeats", type=int, default=7, help="runs of each variant")
    parser.add_argument("--kinds", default="text,bytes,json", help="comma-separated")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated")
    parser.add_argument("--json", help="write the results to this file")
    options = parser.parse_args(argv)
    names = options.variants.split(",")
    if names[0] != "raw":
        names = ["raw", *[name for name in names if name != "raw"]]
    results = measure(options.kinds.split(","), names, options.messages, options.repeats)
    for kind, by_variant in results.items():
        for name, figures in by_variant.items():
            ratio = figures.get("ratio_median", 1.0)
            print(  # noqa: T201 - the benchmark's report
                f"{kind:6} {name:20} {figures['median_ns']:8.0f} ns/message "
                f"({ratio:4.2f}x raw, {figures['ratio_min']:4.2f}-{figures['ratio_max']:4.2f})"
            )
    if options.json:
        with open(options.json, "w", encoding="utf-8") as output:
            json.dump({"messages": options.messages, "results": results}, output, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
