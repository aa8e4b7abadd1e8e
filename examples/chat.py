"""A multi-room chat: every message is relayed to everyone in the same room.

Run it with `uvicorn examples.chat:app`, then open http://127.0.0.1:8000/ in two tabs.

The socket is `/chat/{room}`; clients send and receive JSON `{"user": str, "text": str}`.
Rooms live in this process: with several workers, use a broadcast layer instead.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse

from bocws import App, WebSocket, WebSocketDisconnect

MAX_USER = 32
MAX_TEXT = 2000

app = App()
rooms: defaultdict[str, set[WebSocket]] = defaultdict(set)


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


async def relay(room: str, message: dict[str, str]) -> None:
    """Send `message` to every member of `room`; members who have gone are removed."""
    members = rooms.get(room, set())
    for member in list(members):
        try:
            await member.send(message)
        except WebSocketDisconnect:
            members.discard(member)


@app.websocket_route("/chat/{room}", value_type="json", caught_close_codes=all)
async def chat(ws: WebSocket, room: str) -> None:
    """Join `room`, relay each message to its members, and leave on disconnect."""
    await ws.accept()  # before joining: members may send to us as soon as we are in
    members = rooms[room]
    members.add(ws)
    try:
        async for message in ws:
            valid = check_message(message)
            if valid is None:
                members.discard(ws)  # leave first, so that no one sends to a closed socket
                await ws.close(1008, 'expected {"user": str, "text": str}')
                return
            await relay(room, valid)
    finally:
        members.discard(ws)
        if not members:
            rooms.pop(room, None)


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
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    socket = new WebSocket(`${scheme}://${location.host}/chat/${encodeURIComponent(room)}`);
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
