"""The app `tests/test_browser_api.py` opens WebSockets to from headless Chromium.

Serve it with `uvicorn tests.browser_app:app`. `/` is a blank page, so that the tests'
scripts run same-origin (the app allows same-origin pages only); each WebSocket route
shows one behaviour of the browser's WebSocket API against bocws. What a view learns
that the page cannot see, it logs on the `tests.browser_app` logger.
"""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse
from starlette.staticfiles import StaticFiles

from bocws import App, WebSocket, WebSocketDisconnect
from examples import chat

logger = logging.getLogger("tests.browser_app")

app = App(allowed_origins=[])  # same-origin pages only, as a real app would

SUPPORTED = ("v1", "v2")
"""The subprotocols `/subprotocol` speaks, in no particular order."""


@app.route("/")
async def blank(request: Request) -> HTMLResponse:
    """A page with nothing on it, for the tests' scripts to run in."""
    return HTMLResponse('<!doctype html><title>bocws</title><link rel="icon" href="data:,">')


@app.websocket_route("/subprotocol", auto_accept=False)
async def subprotocol(ws: WebSocket) -> None:
    """Accept with the client's most preferred supported subprotocol; tell it what it offered."""
    chosen = next((offered for offered in ws.subprotocols if offered in SUPPORTED), None)
    await ws.accept(subprotocol=chosen)
    await ws.send_json({"offered": ws.subprotocols, "chosen": chosen})
    await ws.receive_event()  # until the client closes


@app.websocket_route("/subprotocol/none", auto_accept=False)
async def no_subprotocol(ws: WebSocket) -> None:
    """Accept without a subprotocol, whatever the client offered; log how the client left."""
    logger.info("/subprotocol/none: offered %s, accepting with none", ws.subprotocols)
    await ws.accept()
    try:
        await ws.receive_text()
    except WebSocketDisconnect as disconnect:
        logger.info("/subprotocol/none: the client left with %d", disconnect.code)


@app.websocket_route("/bytes", value_type="bytes")
async def echo_bytes(ws: WebSocket) -> None:
    """Echo binary messages; a text message fails the receive (MessageTypeError: 1003)."""
    async for data in ws:
        await ws.send(data)


@app.websocket_route("/reject")
async def reject(ws: WebSocket) -> None:
    """Refuse the handshake: HTTP 403."""
    await ws.reject()


@app.websocket_route("/reject/explained")
async def reject_explained(ws: WebSocket) -> None:
    """Refuse the handshake with a denial response: HTTP 401 and a body."""
    await ws.reject(PlainTextResponse("log in first", status_code=401))


@app.websocket_route("/close")
async def close(ws: WebSocket) -> None:
    """Accept, then close with an application's code and a reason."""
    await ws.close(4001, "some reason")


@app.websocket_route("/goodbye")
async def goodbye(ws: WebSocket) -> None:
    """Echo text until the client closes with a code of its own; log that code and reason."""
    try:
        async for message in ws:
            await ws.send(message)
    except WebSocketDisconnect as disconnect:  # not 1000 or 1001, which end the loop quietly
        logger.info("/goodbye: the client closed with %d %r", disconnect.code, disconnect.reason)


# The chat example's page over a chat socket that fails: /broken/ shows the page, which
# opens /broken/chat/{room}.
broken_chat = App()
broken_chat.route("/")(chat.home)
broken_chat.mount("/static", StaticFiles(directory=chat.STATIC))


@broken_chat.websocket_route("/chat/{room}")
async def failing_chat(ws: WebSocket, room: str, name: str) -> None:
    """Accept as the chat does, then fail like a bug would: bocws closes with 1011."""
    await ws.accept(subprotocol=chat.SUBPROTOCOL)
    raise RuntimeError("a bug in the chat")


app.mount("/broken", broken_chat)
