"""A multi-room chat: every message is relayed to everyone in the same room.

Run it with `uvicorn examples.chat:app`, then open http://127.0.0.1:8000/ in two tabs.

The socket is `/chat/{room}`; clients send and receive JSON `{"user": str, "text": str}`.
Rooms live in this process: with several workers, use a broadcast layer instead.
"""

from __future__ import annotations

from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import HTMLResponse

from bocws import App, WebSocket, WebSocketState

MAX_USER = 32
MAX_TEXT = 2000
MAX_MESSAGE_BYTES = 16 * 1024
"""A larger message closes the socket with 1009, before it is parsed."""
OUTBOX_SIZE = 100
"""Messages that may wait for a member; a member further behind is dropped (1013)."""

app = App(allowed_origins=[])  # sockets from this page's origin (and non-browsers) only


class Member:
    """A socket in a room, with its outbox: relaying never waits for a slow reader."""

    def __init__(self, ws: WebSocket) -> None:
        self.ws = ws
        self.outbox, self.inbox = anyio.create_memory_object_stream[dict[str, str]](OUTBOX_SIZE)
        self.too_slow = False


rooms: dict[str, set[Member]] = {}


def check_message(message: Any) -> dict[str, str] | None:
    """The message to relay, or `None` if it is not `{"user": str, "text": str}`."""
    if not isinstance(message, dict) or set(message) != {"user", "text"}:
        return None
    user, text = message["user"], message["text"]
    if not (isinstance(user, str) and isinstance(text, str)):
        return None
    if not (0 < len(user) <= MAX_USER and 0 < len(text) <= MAX_TEXT):
        return None
    return {"user": user, "text": text}


def leave(room: str, member: Member) -> None:
    """Take `member` out of `room`; forget the room once it is empty."""
    members = rooms.get(room)
    if members is not None and member in members:
        members.discard(member)
        member.outbox.close()
        if not members:
            del rooms[room]


def relay(room: str, message: dict[str, str]) -> None:
    """Queue `message` for every member of `room`, dropping those too far behind."""
    for member in list(rooms.get(room, ())):
        try:
            member.outbox.send_nowait(message)
        except anyio.WouldBlock:
            member.too_slow = True
            leave(room, member)


async def deliver(member: Member) -> None:
    """Send a member its queued messages; close with 1013 if the room dropped it."""
    async with member.inbox:
        async for message in member.inbox:
            await member.ws.send(message)
    if member.too_slow and member.ws.application_state is WebSocketState.CONNECTED:
        await member.ws.close(1013, "too slow: try again later")


@app.websocket_route(
    "/chat/{room}", value_type="json", caught_close_codes=all, max_message_size=MAX_MESSAGE_BYTES
)
async def chat(ws: WebSocket, room: str) -> None:
    """Join `room`, relay each message to its members, and leave on disconnect."""
    await ws.accept()  # before joining: members may send to us as soon as we are in
    member = Member(ws)
    rooms.setdefault(room, set()).add(member)
    try:
        async with anyio.create_task_group() as group:
            group.start_soon(deliver, member)
            async for message in ws:
                valid = check_message(message)
                if valid is None:
                    leave(room, member)  # first, so that nothing more is queued for us
                    await ws.close(1008, 'expected {"user": str, "text": str}')
                    break
                relay(room, valid)
            group.cancel_scope.cancel()
    finally:
        leave(room, member)


@app.route("/")
async def home(request: Request) -> HTMLResponse:
    """The chat page."""
    return HTMLResponse(PAGE)


PAGE = """<!doctype html>
<html lang="en">
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>bocws chat</title>
<style>
  body { font: 16px/1.4 system-ui, sans-serif; max-width: 40rem; margin: 2rem auto; }
  form { display: flex; gap: .5rem; margin: .5rem 0; }
  input { flex: 1; padding: .3rem; }
  #messages { list-style: none; padding: 0; border: 1px solid #ccc; min-height: 12rem; }
  #messages li { padding: .2rem .5rem; }
  #status { color: #666; }
</style>
<h1>bocws chat</h1>
<form id="join">
  <input id="room" placeholder="room" value="lobby" required>
  <input id="user" placeholder="your name" maxlength="32" required>
  <button>Join</button>
</form>
<p id="status">not connected</p>
<ul id="messages"></ul>
<form id="send">
  <input id="text" placeholder="message" maxlength="2000" autocomplete="off" disabled>
  <button disabled>Send</button>
</form>
<script>
  const $ = (id) => document.getElementById(id);
  let socket = null;

  function show(line) {
    const item = document.createElement("li");
    item.textContent = line; // text, never HTML: no injection between users
    $("messages").append(item);
  }

  function setConnected(connected) {
    for (const element of $("send").elements) element.disabled = !connected;
  }

  $("join").onsubmit = (event) => {
    event.preventDefault();
    if (socket) socket.close(1000);
    const room = $("room").value.trim();
    // Relative to this page, so that the chat also works mounted under a prefix.
    const url = new URL(`chat/${encodeURIComponent(room)}`, location.href);
    url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
    socket = new WebSocket(url);
    $("status").textContent = `connecting to ${room}...`;
    socket.onopen = () => {
      $("status").textContent = `connected to ${room}`;
      setConnected(true);
      $("text").focus();
    };
    socket.onmessage = (event) => {
      const message = JSON.parse(event.data);
      show(`${message.user}: ${message.text}`);
    };
    socket.onclose = (event) => {
      const reason = event.reason ? ` ${event.reason}` : "";
      $("status").textContent = `disconnected (${event.code}${reason})`;
      setConnected(false);
    };
  };

  $("send").onsubmit = (event) => {
    event.preventDefault();
    const text = $("text").value;
    if (!text) return;
    socket.send(JSON.stringify({ user: $("user").value, text }));
    $("text").value = "";
  };
</script>
</html>
"""
