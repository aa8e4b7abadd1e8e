"""Calls and events over one socket: a JSON-RPC 2.0 service.

The client calls the server's methods (`add`, `distance`, `chat.say`,
`delete_everything`); the server notifies every client (`chat.said`) and calls the
client back (`confirm`). Any JSON-RPC 2.0 client in any language can talk to it;
`rpc.discover` answers with the service's OpenRPC document.

Run it with `uvicorn examples.rpc:app`, then, in a browser's console:

    ws = new WebSocket("ws://127.0.0.1:8000/rpc")
    ws.onmessage = (event) => console.log(event.data)
    ws.send(JSON.stringify({jsonrpc: "2.0", method: "add", params: [20, 22], id: 1}))
"""

from __future__ import annotations

import math

from pydantic import BaseModel

from bocws import App, JsonRpc, RpcError, WebSocket

rpc = JsonRpc(title="bocws example service", version="1.0.0")

#: The connections open now, by id (a WebSocket is a mapping: not hashable).
clients: dict[int, WebSocket] = {}


class Point(BaseModel):
    x: float
    y: float


@rpc.method
async def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@rpc.method
def distance(a: Point, b: Point) -> float:
    """The distance between two points (a plain function: it runs at once)."""
    return math.dist((a.x, a.y), (b.x, b.y))


@rpc.method("chat.say")
async def say(ws: WebSocket, text: str) -> int:
    """Tell every client (`chat.said`); return how many were told."""
    for client in list(clients.values()):
        await rpc.notify(client, "chat.said", {"text": text})
    return len(clients)


@rpc.method
async def delete_everything(ws: WebSocket) -> str:
    """Ask the client to confirm first: the server calls its `confirm` method."""
    confirmed = await rpc.call(ws, "confirm", {"question": "Delete everything?"}, timeout=10)
    if confirmed is not True:
        raise RpcError(1, "not confirmed")
    return "deleted"


@rpc.on_connect
async def joined(ws: WebSocket) -> None:
    clients[id(ws)] = ws


@rpc.on_disconnect
async def left(ws: WebSocket, code: int) -> None:
    clients.pop(id(ws), None)


app = App(asyncapi_url="/asyncapi.json")  # the routes described: see docs/asyncapi.md
app.add_websocket_route("/rpc", rpc)
