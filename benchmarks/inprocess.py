"""In-process benchmark: the cost of one message through each WebSocket layer.

Every variant echoes the same messages over fake ASGI `receive`/`send` callables, so
what is measured is the layer itself, not a network or a server. Variants run in
turn, rotating the order each round, and every figure is also given as a ratio
against raw ASGI measured in the same round. Bocadillo runs in its own interpreter
(`worker.py`), where its ratio is taken against the raw ASGI measured there.

Run: `python -m benchmarks.inprocess` (see `--help`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any, Literal, cast

from litestar import Litestar, websocket, websocket_listener
from litestar import WebSocket as LitestarWebSocket
from prometheus_client import CollectorRegistry
from starlette.endpoints import WebSocketEndpoint
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket as StarletteWebSocket

from bocws import WebSocket, websocket_view

from .harness import WORKER_INTERPRETERS, comma_separated, measure_and_report, suite_options
from .worker import App, raw

Variant = App
KINDS = ["text", "bytes", "json"]


# The variants: each echoes every message back, then lets the connection end.


def bocws(kind: str, websocket: type[WebSocket] = WebSocket) -> Variant:
    """bocws's echo: `async with ws`, `async for`, `send()`; `websocket` is the class
    (another version's, in `versions.py`)."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        ws = websocket(scope, receive, send, value_type=kind)  # type: ignore[arg-type]
        async with ws:
            async for message in ws:
                await ws.send(message)

    return app


def bocws_receive(kind: str, websocket: type[WebSocket] = WebSocket) -> Variant:
    """bocws with `receive()`/`send()` in a loop, Bocadillo's other idiom: the
    disconnect ends it, silenced by `async with`."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        ws = websocket(scope, receive, send, value_type=kind)  # type: ignore[arg-type]
        async with ws:
            while True:
                await ws.send(await ws.receive())

    return app


def bocws_view(
    kind: str,
    metrics: bool | CollectorRegistry = False,
    view: Callable[..., Any] = websocket_view,
) -> Variant:
    """bocws's echo as a view (`websocket_view()`): the same loop inside the view
    lifecycle, as `App` routes run it; with `metrics`, counted for Prometheus. `view`
    is `websocket_view` (another version's, in `versions.py`)."""
    options: dict[str, Any] = {"metrics": metrics} if metrics is not False else {}

    @view(value_type=kind, **options)
    async def echo(ws: WebSocket) -> None:
        async for message in ws:
            await ws.send(message)

    return cast(Variant, echo)


def bocws_metrics(kind: str) -> Variant:
    """`bocws_view` with metrics on, in a registry of its own: what counting costs."""
    return bocws_view(kind, CollectorRegistry())


def starlette(kind: str) -> Variant:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
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
        encoding = cast(Literal["text", "bytes", "json"], kind)

        async def on_receive(self, websocket: StarletteWebSocket, data: Any) -> None:
            if kind == "text":
                await websocket.send_text(data)
            elif kind == "bytes":
                await websocket.send_bytes(data)
            else:
                await websocket.send_json(data)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await Echo(scope, receive, send)

    return app


def litestar(kind: str) -> Variant:
    """A Litestar app with one `@websocket` route, as its users write it.

    Litestar's `WebSocket` is not meant to be built by hand: `receive_json()` needs the
    route handler the app puts in the scope. The app's routing costs once per
    connection, nothing per message.
    """

    async def echo(socket: LitestarWebSocket) -> None:  # type: ignore[type-arg]
        await socket.accept()
        if kind == "text":
            async for text in socket.iter_data("text"):
                await socket.send_text(text)
        elif kind == "bytes":
            async for data in socket.iter_data("binary"):
                await socket.send_bytes(data)
        else:
            async for value in socket.iter_json():
                await socket.send_json(value)

    return Litestar(route_handlers=[websocket("/")(echo)])


def litestar_listener(kind: str) -> Variant:
    """Litestar's high-level `@websocket_listener`: typed data in, the reply returned."""
    if kind == "text":

        async def echo_text(data: str) -> str:
            return data

        handler = websocket_listener("/")(echo_text)
    elif kind == "bytes":

        async def echo_bytes(data: bytes) -> bytes:
            return data

        handler = websocket_listener("/", receive_mode="binary", send_mode="binary")(echo_bytes)
    else:

        async def echo_json(data: dict[str, Any]) -> dict[str, Any]:
            return data

        handler = websocket_listener("/")(echo_json)
    return Litestar(route_handlers=[handler])


#: The variants run in this interpreter, by name: each makes its echo for a message kind.
VARIANTS: dict[str, Callable[[str], Variant]] = {
    "raw": raw,
    "bocws": bocws,
    "bocws-receive": bocws_receive,
    "bocws-view": bocws_view,
    "bocws-metrics": bocws_metrics,
    "starlette": starlette,
    "starlette-endpoint": starlette_endpoint,
    "litestar": litestar,
    "litestar-listener": litestar_listener,
}
#: Every variant, those in a worker of their own interpreter included.
ALL_VARIANTS = [*VARIANTS, *WORKER_INTERPRETERS]


def main(argv: list[str] | None = None) -> int:
    """Measure every kind of message, print the report, keep the figures (`--json`)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, help="per run (100,000; quick 20,000)")
    parser.add_argument("--repeats", type=int, help="runs of each variant (7; quick 5)")
    parser.add_argument("--kinds", type=comma_separated, default=KINDS, help="comma-separated")
    defaults = {"messages": (100_000, 20_000), "repeats": (7, 5)}
    options, names = suite_options(parser, argv, ALL_VARIANTS, defaults)
    # With the view measured, every figure is given against it too: bocws-metrics's is
    # what metrics add per message, side by side in the same rounds.
    second_baseline = "bocws-view" if "bocws-view" in names else None
    return measure_and_report(
        "echo",
        VARIANTS,
        options.kinds,
        names,
        options.messages,
        options.repeats,
        document={"suite": "inprocess", "messages": options.messages, "repeats": options.repeats},
        json_path=options.json,
        second_baseline=second_baseline,
    )


if __name__ == "__main__":
    sys.exit(main())
