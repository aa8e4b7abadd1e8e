"""The smallest bocws app: echo every text message back.

Run it with `uvicorn examples.echo:app`, then open http://127.0.0.1:8000/.
"""

from __future__ import annotations

from starlette.responses import HTMLResponse
from starlette.types import Receive, Scope, Send

from bocws import WebSocket

PAGE = """<!doctype html>
<meta charset="utf-8">
<title>bocws echo</title>
<form id="form"><input id="text" autocomplete="off" autofocus><button>Send</button></form>
<ul id="log"></ul>
<script>
  const log = (line) => {
    const item = document.createElement("li");
    item.textContent = line;
    document.getElementById("log").append(item);
  };
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}/`);
  socket.onopen = () => log("connected");
  socket.onmessage = (event) => log(`echo: ${event.data}`);
  socket.onclose = (event) => log(`closed (${event.code})`);
  document.getElementById("form").onsubmit = (event) => {
    event.preventDefault();
    const input = document.getElementById("text");
    socket.send(input.value);
    input.value = "";
  };
</script>
"""


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """A plain ASGI app: the page over HTTP, the echo over WebSocket."""
    if scope["type"] == "http":
        await HTMLResponse(PAGE)(scope, receive, send)
    elif scope["type"] == "websocket":
        async with WebSocket(scope, receive, send) as ws:
            async for message in ws:
                await ws.send(message)
