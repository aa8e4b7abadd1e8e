"""The smallest bocws app: echo every text message back.

Run it with `uvicorn examples.echo:app --ws-max-size 1048576`, then open http://127.0.0.1:8000/.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import HTMLResponse

from bocws import App, WebSocket

app = App()


@app.websocket_route("/echo")
async def echo(ws: WebSocket) -> None:
    """Send each text message back to the client."""
    async for message in ws:
        await ws.send(message)


@app.route("/")
async def home(request: Request) -> HTMLResponse:
    """A page that talks to the echo socket."""
    return HTMLResponse(PAGE)


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
  const socket = new WebSocket(`${scheme}://${location.host}/echo`);
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
