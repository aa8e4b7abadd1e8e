"""JSON-RPC calls through uvicorn: `bocws.JsonRpc` against a dispatcher written by hand,
and python-socketio's emit with acknowledgement.

The in-process suite (`rpc.py`) measures the layer alone; this one serves both apps of
that suite (`RAW`, `BOCWS`, below) and python-socketio's (`SOCKETIO`: an event whose
return value is the acknowledgement) with uvicorn (`--ws websockets-sansio`, one
worker each, started at once) and drives them in turn, the order rotated each round,
with one client connection making `--calls` calls one after the other, each answer
awaited and checked: a `websockets` client for the first two, python-socketio's own
`AsyncClient.call()` over a WebSocket for the third. Per round it reads each server's
CPU time over the calls (psutil), and reports the server CPU per call and the calls
per second, each as a ratio to raw's in the same round.

Run: `python -m benchmarks.rpc_uvicorn` (see `--help`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psutil  # type: ignore[import-untyped]
from websockets.asyncio.client import connect

from bocws import JsonRpc

from .harness import write_json
from .rpc import raw
from .servers import free_port

#: The apps uvicorn serves, by variant name.
RAW = raw("rpc")
_rpc = JsonRpc()


@_rpc.method
async def add(a: int, b: int) -> int:
    return a + b


BOCWS = _rpc


def _socketio() -> Any:
    """python-socketio's ASGI app: `add` as an event whose return value is the ack,
    what its `call()` (emit with acknowledgement) waits for."""
    import socketio

    server = socketio.AsyncServer(async_mode="asgi")

    @server.event  # type: ignore[untyped-decorator,unused-ignore]
    async def add(sid: str, data: dict[str, int]) -> int:
        return data["a"] + data["b"]

    return socketio.ASGIApp(server)


def __getattr__(name: str) -> Any:
    if name == "SOCKETIO":  # made only when uvicorn imports it: the peer is optional
        return _socketio()
    raise AttributeError(name)


APPS = {"raw": "RAW", "bocws": "BOCWS", "socketio": "SOCKETIO"}


@contextmanager
def served() -> Iterator[dict[str, tuple[psutil.Process, int]]]:
    """Each variant under its own uvicorn, until the block ends."""
    processes: dict[str, tuple[subprocess.Popen[bytes], int]] = {}
    try:
        for name, attribute in APPS.items():
            port = free_port()
            command = [sys.executable, "-m", "uvicorn", f"benchmarks.rpc_uvicorn:{attribute}"]
            command += ["--ws", "websockets-sansio", "--port", str(port), "--log-level", "error"]
            processes[name] = (subprocess.Popen(command), port)
        yield {
            name: (psutil.Process(process.pid), port) for name, (process, port) in processes.items()
        }
    finally:
        for process, _ in processes.values():
            process.terminate()
        for process, _ in processes.values():
            process.wait(timeout=10)


async def ready(port: int) -> None:
    deadline = time.monotonic() + 20
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)
        else:
            writer.close()
            return


async def calls(name: str, port: int, count: int) -> None:
    """`count` calls of `add`, one after the other, each answer checked."""
    if name == "socketio":
        await socketio_calls(port, count)
        return
    async with connect(f"ws://127.0.0.1:{port}/", compression=None) as ws:
        for number in range(count):
            await ws.send(
                json.dumps({"jsonrpc": "2.0", "method": "add", "params": [number, 1], "id": number})
            )
            answer = json.loads(await ws.recv())
            if answer != {"jsonrpc": "2.0", "result": number + 1, "id": number}:
                raise AssertionError(f"unexpected answer {answer!r}")


async def socketio_calls(port: int, count: int) -> None:
    """The same calls through python-socketio's own client, over a WebSocket only:
    `call()` emits the event and waits for its acknowledgement."""
    import socketio

    client = socketio.AsyncClient()
    await client.connect(f"http://127.0.0.1:{port}", transports=["websocket"])
    try:
        for number in range(count):
            answer = await client.call("add", {"a": number, "b": 1}, timeout=10)
            if answer != number + 1:
                raise AssertionError(f"unexpected answer {answer!r}")
    finally:
        await client.disconnect()


async def measure(count: int, rounds: int) -> dict[str, list[dict[str, float]]]:
    results: dict[str, list[dict[str, float]]] = {name: [] for name in APPS}
    with served() as servers:
        for _, port in servers.values():
            await ready(port)
        for name, (_, port) in servers.items():
            await calls(name, port, 200)  # warm up
        for index in range(rounds):
            names = list(servers)
            order = names[index % len(names) :] + names[: index % len(names)]  # rotated
            for name in order:
                process, port = servers[name]
                cpu = process.cpu_times()
                began = time.perf_counter()
                await calls(name, port, count)
                elapsed = time.perf_counter() - began
                after = process.cpu_times()
                used = (after.user - cpu.user) + (after.system - cpu.system)
                results[name].append(
                    {"server_cpu_us": used / count * 1e6, "calls_per_s": count / elapsed}
                )
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, help="calls per round (5,000; quick 2,000)")
    parser.add_argument("--rounds", type=int, help="rounds (9; quick 3)")
    parser.add_argument("--quick", action="store_true", help="a short run")
    parser.add_argument("--json", help="write every round's figures to this file")
    options = parser.parse_args(argv)
    if options.calls is None:
        options.calls = 2000 if options.quick else 5000
    if options.rounds is None:
        options.rounds = 3 if options.quick else 9
    results = asyncio.run(measure(options.calls, options.rounds))
    summary: dict[str, Any] = {}
    for figure in ("server_cpu_us", "calls_per_s"):
        raw_values = [entry[figure] for entry in results["raw"]]
        for name, entries in results.items():
            values = [entry[figure] for entry in entries]
            # CPU time comes in clock ticks: a round too short to register one has no ratio.
            pairs = zip(values, raw_values, strict=True)
            ratio = [value / base for value, base in pairs if base > 0] or [math.nan]
            summary.setdefault(name, {})[figure] = {
                "median": statistics.median(values),
                "ratio_median": statistics.median(ratio),
                "ratio_min": min(ratio),
                "ratio_max": max(ratio),
            }
            print(  # noqa: T201 - the report
                f"{name:6} {figure:14} {statistics.median(values):10.1f}   "
                f"{statistics.median(ratio):.2f}x raw ({min(ratio):.2f}-{max(ratio):.2f})"
            )
    if options.json:
        write_json(
            options.json,
            {
                "suite": "rpc_uvicorn",
                "calls": options.calls,
                "rounds": options.rounds,
                "results": results,
                "summary": summary,
            },
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
