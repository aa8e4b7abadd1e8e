"""An existing FastAPI app that adds bocws views next to its own routes.

Run it with `uvicorn examples.fastapi_app:app --ws-max-size 1048576`:

- `GET /` is a plain FastAPI path operation;
- `/ws/count` is a bocws class-based view registered with `add_api_websocket_route`;
- `/bocws/...` is a whole `bocws.App` (the chat example) mounted under a prefix.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from bocws import WebSocket, WebSocketView, websocket_view
from examples.chat import app as chat_app
from examples.chat import lifespan as chat_lifespan

# FastAPI runs no mounted app's lifespan: run the chat's here.
app = FastAPI(lifespan=chat_lifespan)


@app.get("/")
async def homepage() -> dict[str, str]:
    return {"message": "a FastAPI app with bocws views at /ws/count and /bocws/chat/{room}"}


@websocket_view
class Counter(WebSocketView):
    """A class-based view: counts the messages of each connection and reports the total."""

    value_type = "json"

    async def on_connect(self, ws: WebSocket) -> None:
        self.count = 0
        await ws.accept()

    async def on_message(self, ws: WebSocket, message: Any) -> None:
        self.count += 1
        await ws.send({"count": self.count, "message": message})


app.add_api_websocket_route("/ws/count", Counter)
app.mount("/bocws", chat_app)
