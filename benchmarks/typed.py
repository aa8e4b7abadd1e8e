"""In-process benchmark: typed messages (pydantic, msgspec) through bocws against raw ASGI.

Each variant echoes the same typed message (five fields, one of them nested: see
`worker.TYPED_PAYLOAD`) over the fake ASGI server of the echo suite. Raw ASGI does the
same work by hand with the same library: decode and validate the frame's text into
the type, encode the value back, send it. bocws does it with the type as the route's
`value_type`. The keys are the libraries: `pydantic` (a `BaseModel`, through a
`TypeAdapter`) and `msgspec` (a `Struct`, through `msgspec.json.Decoder`).

Variants:
- `raw`: the baseline above;
- `bocws`: `WebSocket(value_type=T)`, `async with`, `async for`, `send()`;
- `bocws-view`: the same loop in a view (`websocket_view(value_type=T)`);
- `bocws-reply`: the view with `on_invalid="reply"`, to show what the policy costs
  on valid messages (it should cost nothing).

Run: `python -m benchmarks.typed` (see `--help`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any, cast

import msgspec
import pydantic
from starlette.types import Receive, Scope, Send

from bocws import WebSocket, websocket_view

from .harness import comma_separated, measure_and_report, suite_options
from .worker import App

LIBRARIES = ["pydantic", "msgspec"]


class Place(pydantic.BaseModel):
    room: str
    seat: int


class Said(pydantic.BaseModel):
    id: int
    user: str
    text: str
    score: float
    place: Place


class PlaceStruct(msgspec.Struct):
    room: str
    seat: int


class SaidStruct(msgspec.Struct):
    id: int
    user: str
    text: str
    score: float
    place: PlaceStruct


TYPES: dict[str, type[Any]] = {"pydantic": Said, "msgspec": SaidStruct}


def raw(library: str) -> App:
    """Raw ASGI with the library's own decode-validate-encode, nothing in between."""
    if library == "pydantic":
        adapter = pydantic.TypeAdapter(Said)
        decode: Callable[[str], Any] = adapter.validate_json
        encode: Callable[[Any], bytes] = adapter.dump_json
    else:
        decode = msgspec.json.Decoder(SaidStruct).decode
        encode = msgspec.json.Encoder().encode

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            value = decode(message["text"])
            await send({"type": "websocket.send", "text": encode(value).decode()})

    return app


def bocws(library: str) -> App:
    typ = TYPES[library]

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        ws = WebSocket(scope, receive, send, value_type=typ)
        async with ws:
            async for message in ws:
                await ws.send(message)

    return app


def bocws_view(library: str, **options: Any) -> App:
    @websocket_view(value_type=TYPES[library], **options)
    async def echo(ws: WebSocket) -> None:
        async for message in ws:
            await ws.send(message)

    return cast(App, echo)


VARIANTS: dict[str, Callable[[str], App]] = {
    "raw": raw,
    "bocws": bocws,
    "bocws-view": bocws_view,
    "bocws-reply": lambda library: bocws_view(library, on_invalid="reply"),
}


def main(argv: list[str] | None = None) -> int:
    """Measure each library, print the report, keep the figures (`--json`)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, help="per run (50,000; quick 10,000)")
    parser.add_argument("--repeats", type=int, help="runs of each variant (11; quick 5)")
    parser.add_argument(
        "--libraries", type=comma_separated, default=LIBRARIES, help="comma-separated"
    )
    defaults = {"messages": (50_000, 10_000), "repeats": (11, 5)}
    options, names = suite_options(parser, argv, list(VARIANTS), defaults)
    second_baseline = "bocws-view" if "bocws-view" in names else None
    return measure_and_report(
        "echo",
        VARIANTS,
        options.libraries,
        names,
        options.messages,
        options.repeats,
        document={"suite": "typed", "messages": options.messages, "repeats": options.repeats},
        json_path=options.json,
        second_baseline=second_baseline,
    )


if __name__ == "__main__":
    sys.exit(main())
