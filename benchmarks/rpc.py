"""In-process benchmark: JSON-RPC 2.0 calls through `bocws.JsonRpc` against raw ASGI.

Each variant answers the same call (`{"jsonrpc": "2.0", "method": "add", "params":
[20, 22], "id": 1}`, `worker.PAYLOADS["rpc"]`) over the fake server of the echo suite.
Raw ASGI does the dispatch by hand: parse, check the request's shape, look the method
up, call it, write the answer; bocws registers `add` on a `JsonRpc`, which also
validates the parameters against the annotations (pydantic) and lets requests run
side by side: a request that waits hands the reading over to a new task, so that a
slow method does not hold up the others (these calls never wait).

Variants:
- `raw`: the dispatch by hand, one request after the other;
- `bocws`: `JsonRpc` with `async def add(a: int, b: int) -> int`;
- `bocws-untyped`: the same method without annotations (the parameters bound to the
  signature only: what validation costs).

Run: `python -m benchmarks.rpc` (see `--help`).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.types import Receive, Scope, Send

from bocws import JsonRpc

from .harness import measure_and_report, suite_options
from .worker import App

try:
    import orjson
except ImportError:  # pragma: no cover - the bench extra has it
    orjson = None  # type: ignore[assignment]

KEYS = ["rpc"]


def raw(key: str) -> App:
    """A JSON-RPC dispatcher written by hand: the floor for an ASGI app."""
    loads: Callable[[str], Any] = json.loads if orjson is None else orjson.loads

    def dumps(value: Any) -> str:
        if orjson is None:
            return json.dumps(value, separators=(",", ":"))
        return orjson.dumps(value).decode()

    async def add(a: int, b: int) -> int:
        return a + b

    methods: dict[str, Callable[..., Awaitable[Any]]] = {"add": add}

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            request = loads(message["text"])
            if request.get("jsonrpc") != "2.0" or not isinstance(request.get("method"), str):
                answer: dict[str, Any] = {
                    "jsonrpc": "2.0",
                    "error": {"code": -32600, "message": "Invalid Request"},
                    "id": None,
                }
            else:
                method = methods.get(request["method"])
                params = request.get("params", [])
                if method is None:
                    error = {"code": -32601, "message": "Method not found"}
                    answer = {"jsonrpc": "2.0", "error": error, "id": request.get("id")}
                else:
                    result = await (
                        method(*params) if isinstance(params, list) else method(**params)
                    )
                    answer = {"jsonrpc": "2.0", "result": result, "id": request.get("id")}
            await send({"type": "websocket.send", "text": dumps(answer)})

    return app


def bocws(key: str, typed: bool = True) -> App:
    rpc = JsonRpc()
    if typed:

        @rpc.method
        async def add(a: int, b: int) -> int:
            return a + b

    else:

        @rpc.method("add")
        async def add_untyped(a, b):  # type: ignore[no-untyped-def]
            return a + b

    # Every call must be answered: `run_once` counts the answers (a connection's
    # requests still running when its client leaves would be cancelled).
    return rpc


VARIANTS: dict[str, Callable[[str], App]] = {
    "raw": raw,
    "bocws": bocws,
    "bocws-untyped": lambda key: bocws(key, typed=False),
}


def main(argv: list[str] | None = None) -> int:
    """Measure the calls, print the report, keep the figures (`--json`)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, help="calls per run (20,000; quick 5,000)")
    parser.add_argument("--repeats", type=int, help="runs of each variant (11; quick 5)")
    defaults = {"messages": (20_000, 5_000), "repeats": (11, 5)}
    options, names = suite_options(parser, argv, list(VARIANTS), defaults)
    return measure_and_report(
        "echo",
        VARIANTS,
        KEYS,
        names,
        options.messages,
        options.repeats,
        document={"suite": "rpc", "messages": options.messages, "repeats": options.repeats},
        json_path=options.json,
    )


if __name__ == "__main__":
    sys.exit(main())
