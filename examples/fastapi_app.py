"""An existing FastAPI app that adds bocws views next to its own routes.

Run it with `uvicorn examples.fastapi_app:app --ws-max-size 1048576`:

- `GET /` is a plain FastAPI path operation;
- `/ws/count` is a bocws class-based view registered with `add_api_websocket_route`;
- `/ws/me` is a bocws view that gets its user from a FastAPI dependency, which
  refuses the handshake without a valid `token` cookie;
- `/bocws/...` is a whole `bocws.App` (the chat example) mounted under a prefix.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Cookie, Depends, FastAPI, WebSocketException, status

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

# A real app would check a session or a signed token (see examples/auth.py).
TOKENS = {"alice-token": "alice", "bob-token": "bob"}


async def current_user(token: Annotated[str | None, Cookie()] = None) -> str:
    """The user of the `token` cookie; without one, the handshake is refused."""
    user = TOKENS.get(token or "")
    if user is None:
        raise WebSocketException(status.WS_1008_POLICY_VIOLATION, "a valid token is required")
    return user


# The cookie rides along with a socket opened by another site's page: same-origin only.
@app.websocket("/ws/me")
@websocket_view(value_type="json", allowed_origins=[])
async def me(
    ws: WebSocket, user: Annotated[str, Depends(current_user)], room: str = "lobby"
) -> None:
    """Tell the client who it is: `user` comes from FastAPI, `room` from the query string."""
    await ws.send({"user": user, "room": room})


app.mount("/bocws", chat_app)
