"""The fan-out benchmark's reference outside ASGI: the `websockets` library's own server.

`python -m benchmarks.websockets_broadcast --port N` serves, on 127.0.0.1, what
`fanout_apps.py` serves, with no ASGI in between (websockets' new asyncio API):

- `/feed`: the connections only listen, each held in a set while it is open;
- `POST /publish?count=N&rate=R&batch=B`: answered from `process_request`, before any
  handshake, once `fanout_apps.publish_as_asked` has published, each message with
  `websockets.asyncio.server.broadcast()`: its frame built once and written to every
  open connection, with no await and no backpressure. The physical floor of a
  fan-out in Python, not a peer of the ASGI apps.

`BOCWS_BENCH_GC` is read as by the ASGI apps (`fanout_apps.freeze_gc_if_asked`), once
the server listens. SIGTERM stops it (`benchmarks.servers.Server`).
"""

from __future__ import annotations

import argparse
import asyncio
import http
import signal
import sys
import urllib.parse
from typing import Any

from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.http11 import Request, Response

from .fanout_apps import dumps, freeze_gc_if_asked, publish_as_asked

#: The open `/feed` connections, which every message is broadcast to.
subscribers: set[ServerConnection] = set()


async def feed(connection: ServerConnection) -> None:
    """Hold a `/feed` connection among the subscribers until it closes; it sends nothing."""
    subscribers.add(connection)
    try:
        await connection.wait_closed()
    finally:
        subscribers.discard(connection)


async def publish(event: dict[str, Any]) -> None:
    broadcast(subscribers, dumps(event))


async def process_request(connection: ServerConnection, request: Request) -> Response | None:
    """Answer `/publish` once it has published, and any path but `/feed` with 404; let
    `/feed` go on to the handshake."""
    path, _, query = request.path.partition("?")
    if path == "/feed":
        return None
    if path != "/publish":
        return connection.respond(http.HTTPStatus.NOT_FOUND, f"no {path} here: /feed or /publish")
    published = await publish_as_asked(dict(urllib.parse.parse_qsl(query)), publish)
    response = connection.respond(http.HTTPStatus.OK, dumps(published))
    del response.headers["Content-Type"]  # respond() says text/plain
    response.headers["Content-Type"] = "application/json"
    return response


async def serve_until_terminated(port: int) -> None:
    """Serve on 127.0.0.1:`port` until SIGTERM or SIGINT."""
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    for signal_number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signal_number, stop.set_result, None)
    async with serve(
        feed,
        "127.0.0.1",
        port,
        process_request=process_request,
        compression=None,  # as uvicorn is told: --ws-per-message-deflate=false
        # The handshake's bound would cut `/publish` short: it answers from
        # process_request, once every message is published.
        open_timeout=None,
        backlog=2048,  # uvicorn's: the client connects 100 at once
    ):
        freeze_gc_if_asked()
        await stop


def main(argv: list[str] | None = None) -> int:
    """Serve until terminated, on uvloop unless `--loop asyncio`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--loop", default="uvloop", choices=["uvloop", "asyncio"])
    options = parser.parse_args(argv)
    if options.loop == "uvloop":
        import uvloop

        uvloop.run(serve_until_terminated(options.port))
    else:
        asyncio.run(serve_until_terminated(options.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
