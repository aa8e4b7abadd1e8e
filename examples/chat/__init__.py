"""A multi-room chat: display names, a member list, and a page that reconnects.

Run it with `uvicorn examples.chat:app`, then open http://127.0.0.1:8000/ in two tabs.

The page (`static/`) opens `/chat/{room}?name=NAME`, offering the subprotocol
`bocws-chat.v1`, and speaks JSON:

- the client sends `{"text": str}`;
- the server sends `{"type": "message", "user": str, "text": str, "time": ms}`, and
  `{"type": "join" | "leave", "user": str, "members": [str, ...]}` when someone comes
  or goes (the joiner gets its own `join`, with everyone already there).

A malformed message closes the socket with 1008, invalid JSON with 1007, one over
16 KiB with 1009, and a member too far behind to keep up with 1013.

Rooms live in this process: with several workers, use a broadcast layer instead.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import FileResponse
from starlette.staticfiles import StaticFiles

from bocws import App, WebSocket, WebSocketDisconnect, WebSocketState

SUBPROTOCOL = "bocws-chat.v1"
MAX_NAME = 32
MAX_ROOM = 64
MAX_TEXT = 2000
MAX_MESSAGE_BYTES = 16 * 1024
"""A larger message closes the socket with 1009, before it is parsed."""
MALFORMED = f'expected {{"text": str}} of 1 to {MAX_TEXT} characters'
OUTBOX_SIZE = 100
"""Messages that may wait for a member; a member further behind is dropped (1013)."""

STATIC = Path(__file__).parent / "static"
log = logging.getLogger("examples.chat")

app = App(allowed_origins=[])  # sockets from this page's origin (and non-browsers) only
app.mount("/static", StaticFiles(directory=STATIC), name="static")


class Member:
    """A socket in a room, with its outbox: relaying never waits for a slow reader."""

    def __init__(self, ws: WebSocket, name: str) -> None:
        self.ws = ws
        self.name = name
        self.outbox, self.inbox = anyio.create_memory_object_stream[dict[str, Any]](OUTBOX_SIZE)
        self.too_slow = False


rooms: dict[str, set[Member]] = {}


def names_problem(room: str, name: str) -> str | None:
    """Why `room` or the display `name` cannot be used, or `None` if they can."""
    if not 0 < len(room) <= MAX_ROOM:
        return f"a room name has 1 to {MAX_ROOM} characters"
    if not 0 < len(name) <= MAX_NAME or not name.isprintable():
        return f"a display name has 1 to {MAX_NAME} printable characters"
    return None


def check_message(message: Any) -> str | None:
    """The text of a valid `{"text": str}` message, or `None`."""
    if not isinstance(message, dict) or set(message) != {"text"}:
        return None
    text = message["text"]
    if not isinstance(text, str) or not 0 < len(text.strip()) <= MAX_TEXT:
        return None
    return text


def member_names(room: str) -> list[str]:
    """The display names in `room`, sorted; a name open in two tabs appears twice."""
    return sorted((member.name for member in rooms.get(room, ())), key=str.casefold)


def relay(room: str, event: dict[str, Any]) -> None:
    """Queue `event` for every member of `room`, dropping those too far behind."""
    behind = []
    for member in rooms.get(room, ()):
        try:
            member.outbox.send_nowait(event)
        except anyio.WouldBlock:
            behind.append(member)
    for member in behind:
        member.too_slow = True
        leave(room, member)


def join(room: str, member: Member) -> None:
    """Add `member` to `room` and tell everyone there, the newcomer included."""
    rooms.setdefault(room, set()).add(member)
    relay(room, {"type": "join", "user": member.name, "members": member_names(room)})


def leave(room: str, member: Member) -> None:
    """Take `member` out of `room` and tell the others; forget the room once empty."""
    members = rooms.get(room)
    if members is None or member not in members:
        return
    members.discard(member)
    member.outbox.close()
    if members:
        relay(room, {"type": "leave", "user": member.name, "members": member_names(room)})
    else:
        del rooms[room]


async def deliver(member: Member) -> None:
    """Send a member its queued events; close with 1013 if the room dropped it."""
    try:
        async with member.inbox:
            async for event in member.inbox:
                await member.ws.send(event)
        if member.too_slow and member.ws.application_state is WebSocketState.CONNECTED:
            await member.ws.close(1013, "too slow: try again later")
    except WebSocketDisconnect:
        pass  # the receiving loop sees the disconnect too, and reports it


@app.websocket_route(
    "/chat/{room}",
    value_type="json",
    caught_close_codes=(),  # the view catches every disconnect itself, to log its code
    max_message_size=MAX_MESSAGE_BYTES,
)
async def chat(ws: WebSocket, room: str, name: str) -> None:
    """Join `room` as `name`, relay each message to its members, and leave on disconnect."""
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
    join(room, member)  # after accept(): members may send to us as soon as we are in
    log.info("%r joined room %r", name, room)
    how = "closed by the server"
    try:
        async with anyio.create_task_group() as group:
            group.start_soon(deliver, member)
            try:
                async for message in ws:
                    text = check_message(message)
                    if text is None:
                        leave(room, member)  # first, so that nothing more is queued for us
                        await ws.close(1008, MALFORMED)
                        how = "closed with 1008"
                        break
                    now = round(time.time() * 1000)
                    relay(room, {"type": "message", "user": name, "text": text, "time": now})
            except WebSocketDisconnect as disconnect:
                how = f"disconnected with {disconnect.code}"
            group.cancel_scope.cancel()
    finally:
        leave(room, member)
        log.info("%r left room %r: %s", name, room, how)


@app.route("/")
async def home(request: Request) -> FileResponse:
    """The chat page; its script and style sheet are under /static."""
    return FileResponse(STATIC / "index.html")
