"""An existing Starlette app that adds bocws views next to its own routes.

Run it with `uvicorn examples.starlette_app:app --ws-max-size 1048576`:

- `GET /` is a plain Starlette endpoint;
- `/ws/echo` is a bocws function view in Starlette's own `WebSocketRoute`;
- `/bocws/...` is a whole `bocws.App` (the chat example) mounted under a prefix.
"""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route, WebSocketRoute

from bocws import WebSocket, websocket_view
from examples.chat import app as chat_app
from examples.chat import lifespan as chat_lifespan


async def homepage(request: Request) -> PlainTextResponse:
    return PlainTextResponse("a Starlette app with bocws views at /ws/echo and /bocws/chat/{room}")


@websocket_view(value_type="json")
async def echo(ws: WebSocket, uppercase: bool = False) -> None:
    """Echo JSON messages; `?uppercase=true` upper-cases strings."""
    async for message in ws:
        reply: Any = message.upper() if uppercase and isinstance(message, str) else message
        await ws.send(reply)


app = Starlette(
    routes=[
        Route("/", homepage),
        WebSocketRoute("/ws/echo", echo),
        Mount("/bocws", chat_app),
    ],
    lifespan=chat_lifespan,  # Starlette runs no mounted app's lifespan: run the chat's here
)
