"""The fan-out app of the broadcast benchmark: `uvicorn benchmarks.broadcast_app:app`.

- `/feed` (WebSocket): each client joins the room of the channel and only listens:
  `async with broadcast.room(ws, channel): async for _ in ws: pass`.
- `POST /publish?count=N&rate=R&batch=B` publishes N messages
  `{"batch": B, "seq": n, "sent": time.time_ns()}` to the channel, R a second
  (0: back to back, each publish awaited before the next), and answers once they
  are all published, with how long that took and how far it fell behind schedule.

`BOCWS_BENCH_BROADCAST` is the broadcast URL (`memory://` by default, or
`redis://127.0.0.1:PORT/0`), `BOCWS_BENCH_CHANNEL` the channel (`feed`),
`BOCWS_BENCH_HISTORY` the messages kept per channel (0: none). The broadcast
is connected in the app's lifespan, and then `BOCWS_BENCH_GC` read
(`fanout_apps.freeze_gc_if_asked`). With `memory://` the publisher is in the process
that holds the subscribers, as it must be; with Redis it is in one of the processes,
as it would be in an app whose handlers publish.
"""

from __future__ import annotations

import os

from starlette.requests import Request
from starlette.responses import JSONResponse

from bocws import App, Broadcast, WebSocket

from .fanout_apps import freeze_gc_if_asked, publish_as_asked

URL = os.environ.get("BOCWS_BENCH_BROADCAST", "memory://")
CHANNEL = os.environ.get("BOCWS_BENCH_CHANNEL", "feed")
#: Messages that may wait for one subscriber (`Broadcast`'s default): a burst must be
#: shorter, or slow subscribers are closed with 1013.
QUEUE_SIZE = 1000

HISTORY = int(os.environ.get("BOCWS_BENCH_HISTORY", "0"))

broadcast = Broadcast(URL, queue_size=QUEUE_SIZE, history=HISTORY)
app = App()
app.on_startup(broadcast.connect)
app.on_startup(freeze_gc_if_asked)  # last: start-up's objects are all made by then
app.on_shutdown(broadcast.disconnect)


@app.websocket_route("/feed", value_type="json")
async def feed(ws: WebSocket) -> None:
    """Relay the channel to the client until it leaves; it sends nothing."""
    async with broadcast.room(ws, CHANNEL):
        async for _ in ws:
            pass


@app.route("/publish", methods=["POST"])
async def publish(request: Request) -> JSONResponse:
    """Publish `count` messages at `rate` a second (0: back to back)."""

    async def one(event: dict[str, int]) -> None:
        await broadcast.publish(CHANNEL, event)

    return JSONResponse(await publish_as_asked(request.query_params, one))
