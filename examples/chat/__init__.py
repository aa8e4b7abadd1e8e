"""A multi-room chat: display names, a member list, and a page that reconnects.

Run it with `uvicorn examples.chat:app --ws-max-size 16384`, then open
http://127.0.0.1:8000/ in two tabs. (`--ws-max-size` matches the largest message the
chat takes, 16 KiB: without it uvicorn assembles, and inflates, messages of up to
16 MiB before the chat can refuse them.)

The page (`static/`) opens `/chat/{room}?name=NAME`, offering the subprotocol
`bocws-chat.v1`, and speaks JSON:

- the client sends `{"text": str, "cid": str}` (`cid`, a client id, may be left out);
- the server sends `{"type": "ack", "cid": str, "id": str}` once a message with a client
  id is published (one sent again with the same id is acknowledged, not published
  twice), `{"type": "message", "user": str, "text": str, "time": ms, "id": str}`, and
  `{"type": "join" | "leave", "user": str, "members": [str, ...], "id": str}` when
  someone comes or goes (the joiner's first event is its own `join`), and
  `{"type": "members", "members": [...]}` when the list changes otherwise (other
  processes answering a newcomer, or one that fell silent).

`id` is the event's id in the room's channel, which keeps the last `HISTORY` events:
a page that reconnects with `?since=ID` gets what was said after it first.

A malformed message closes the socket with 1008, invalid JSON with 1007, one over
16 KiB with 1009, and a member that does not keep up with 1013 (its oldest queued
event waited over `MAX_LAG` seconds, or `OUTBOX_SIZE` events wait for it).

Rooms are shared through a `bocws.Broadcast` (see `rooms.py`): `memory://` by default,
for one process; with `BROADCAST_URL=redis://127.0.0.1:6379/0`, every worker and
machine connected to that Redis shares them:

    BROADCAST_URL=redis://127.0.0.1:6379/0 uvicorn examples.chat:app --ws-max-size 16384 --workers 2

With prometheus-client installed (`pip install 'bocws[prometheus]'`), the chat counts
its connections, messages and broadcast traffic, and serves them to Prometheus at
`/metrics/` (see the metrics guide).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import FileResponse
from starlette.staticfiles import StaticFiles

from bocws import (
    App,
    Broadcast,
    BroadcastUnavailable,
    HistoryGap,
    SubscriptionOverflow,
    WebSocket,
    WebSocketDisconnect,
    WebSocketStateError,
)

from .rooms import BURST, HISTORY, MAX_LAG, OUTBOX_SIZE, RATE, Member, Room, Rooms

try:
    from prometheus_client import make_asgi_app
except ImportError:  # without the bocws[prometheus] extra: no metrics, the chat works alike
    make_asgi_app = None  # type: ignore[assignment]

SUBPROTOCOL = "bocws-chat.v1"
MAX_NAME = 32
MAX_ROOM = 64
MAX_TEXT = 2000
MAX_MESSAGE_BYTES = 16 * 1024
"""A larger message closes the socket with 1009, before it is parsed."""
MAX_CID = 64
MALFORMED = (
    f'expected {{"text": str, "cid"?: str}}: text of 1 to {MAX_TEXT} chars, cid 1 to {MAX_CID}'
)
BROADCAST_URL = os.environ.get("BROADCAST_URL", "memory://")
"""Where rooms meet: `memory://` for one process, `redis://host:port/db` for several."""

METRICS = make_asgi_app is not None
"""Whether the chat counts and serves Prometheus metrics (prometheus-client is installed)."""
STATIC = Path(__file__).parent / "static"
log = logging.getLogger("examples.chat")

broadcast = Broadcast(BROADCAST_URL, metrics=METRICS, history=HISTORY)
rooms = Rooms(broadcast)


@asynccontextmanager
async def lifespan(app: object) -> AsyncIterator[None]:
    """Connect to the broadcast and run the rooms while the app runs.

    An app that mounts this one runs this lifespan itself: Starlette does not run a
    mounted app's.
    """
    async with broadcast, anyio.create_task_group() as tasks:
        await tasks.start(rooms.run)
        yield
        tasks.cancel_scope.cancel()


# Sockets from this page's origin (and non-browsers) only.
app = App(allowed_origins=[], lifespan=lifespan, metrics=METRICS)
app.mount("/static", StaticFiles(directory=STATIC), name="static")
if make_asgi_app is not None:
    # prometheus-client's own app, for the default registry: scrape /metrics/.
    app.mount("/metrics", make_asgi_app(), name="metrics")

__all__ = [
    "BURST",
    "MAX_LAG",
    "METRICS",
    "OUTBOX_SIZE",
    "RATE",
    "app",
    "broadcast",
    "lifespan",
    "rooms",
]


def names_problem(room: str, name: str) -> str | None:
    """Why `room` or the display `name` cannot be used, or `None` if they can."""
    if not 0 < len(room) <= MAX_ROOM or not room.isprintable() or room.strip() != room:
        return f"a room name has 1 to {MAX_ROOM} printable characters, no spaces around"
    if not 0 < len(name) <= MAX_NAME or not name.isprintable():
        return f"a display name has 1 to {MAX_NAME} printable characters"
    return None


def check_message(message: Any) -> tuple[str, str | None] | None:
    """The text and client id of a valid `{"text": str, "cid": str}` message (the
    client id may be left out), or `None`."""
    if not isinstance(message, dict) or set(message) - {"cid"} != {"text"}:
        return None
    text, cid = message["text"], message.get("cid")
    if not isinstance(text, str) or not 0 < len(text.strip()) <= MAX_TEXT:
        return None
    if cid is not None and (
        not isinstance(cid, str) or not 0 < len(cid) <= MAX_CID or not cid.isprintable()
    ):
        return None
    return text, cid


async def deliver(member: Member) -> None:
    """Send a member its queued events, until its outbox closes."""
    try:
        while (event := await member.next_event()) is not None:
            await member.ws.send(event)
    except (WebSocketDisconnect, WebSocketStateError):
        pass  # the socket closed: the receiving loop reports how


@app.websocket_route(
    "/chat/{room}",
    value_type="json",
    caught_close_codes=(),  # the view catches every disconnect itself, to log its code
    max_message_size=MAX_MESSAGE_BYTES,
)
async def chat(ws: WebSocket, room: str, name: str, since: str | None = None) -> None:
    """Join `room` as `name`, publish each message to the room, and leave on disconnect.

    `since`, from a page that reconnects, is the id of the last event it got: what
    was said in the room after it comes first, after the page's own join.
    """
    # The page offers its protocol version; command-line clients may offer none.
    await ws.accept(subprotocol=SUBPROTOCOL if SUBPROTOCOL in ws.subprotocols else None)
    name = name.strip()
    problem = names_problem(room, name)
    if problem is not None:
        # Accepted first, so that a browser sees the code and reason (a refused
        # handshake only reaches a page as 1006).
        await ws.close(1008, problem)
        return
    member = Member(ws, name)
    try:
        joined = await rooms.join(room, member)
    except BroadcastUnavailable as error:
        log.warning("%r could not join room %r: %s", name, room, error)
        await ws.close(1013, "the chat is unavailable: try again later")
        return
    log.info("%r joined room %r", name, room)
    how = "closed by the server"
    try:
        # The room cancels this block to drop a member too far behind.
        async with anyio.create_task_group() as member.tasks:
            if since is not None:  # in the group: a member dropped meanwhile is stopped
                await catch_up(joined, member, since)
            member.tasks.start_soon(deliver, member)
            try:
                async for message in ws:
                    how = await said(joined, member, message)
                    if how:
                        break
            except WebSocketDisconnect as disconnect:
                how = f"disconnected with {disconnect.code}"
            member.tasks.cancel_scope.cancel()
    finally:
        with anyio.move_on_after(2, shield=True):  # even when the server shuts down
            await rooms.leave(joined, member)
            if member.too_slow:
                how = "too slow: closed with 1013"
                await ws.ensure_closed(1013, "too slow: try again later")
        log.info("%r left room %r: %s", name, room, how)


async def catch_up(room: Room, member: Member, since: str) -> None:
    """Queue what `member` missed in `room` after the event `since`, right after its
    join; or say that it cannot be had."""
    try:
        missed = await rooms.missed(room, member, since)
    except (HistoryGap, SubscriptionOverflow, TimeoutError, BroadcastUnavailable) as error:
        log.info("%r could not catch up in room %r: %s", member.name, room.name, error)
    except Exception:  # `since` comes from the client: whatever it does, the member stays
        log.exception("%r could not catch up in room %r", member.name, room.name)
    else:
        member.tell_after_first(missed)
        return
    text = "some messages from while you were away could not be recovered"
    member.tell_after_first([{"type": "error", "text": text}])


async def said(room: Room, member: Member, message: Any) -> str:
    """Publish what `member` said, and acknowledge it when it has a client id; how the
    connection ended, if that ended it."""
    checked = check_message(message)
    if checked is None:
        await rooms.leave(room, member)  # first, so that nothing more is queued
        await member.ws.close(1008, MALFORMED)
        return "closed with 1008"
    text, cid = checked
    if cid is not None and (member.name, cid) in room.seen:
        # Sent again by a page that did not get the acknowledgement: published already.
        member.tell({"type": "ack", "cid": cid, "id": room.seen[(member.name, cid)]})
        return ""
    if not rooms.may_speak(member):
        member.tell({"type": "error", "text": "not delivered: too many messages, slow down"})
        return ""
    now = round(time.time() * 1000)
    event: dict[str, Any] = {"type": "message", "user": member.name, "text": text, "time": now}
    if cid is not None:
        event["cid"] = cid
    try:
        event_id = await broadcast.publish(room.channel, event)
    except BroadcastUnavailable:
        member.tell({"type": "error", "text": "not delivered: the chat is unavailable"})
        return ""
    if cid is not None:
        member.tell({"type": "ack", "cid": cid, "id": event_id})
    return ""


@app.route("/")
async def home(request: Request) -> FileResponse:
    """The chat page; its script and style sheet are under /static."""
    return FileResponse(STATIC / "index.html")
