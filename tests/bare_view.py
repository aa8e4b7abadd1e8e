"""A bare `websocket_view` as the whole application: `uvicorn tests.bare_view:echo`."""

from __future__ import annotations

from bocws import WebSocket, websocket_view


@websocket_view
async def echo(ws: WebSocket) -> None:
    async for message in ws:
        await ws.send(message)
