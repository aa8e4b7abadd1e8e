"""Conditional rejection: only clients with a valid token may connect.

Run it with `uvicorn examples.auth:app --ws-max-size 1048576`. The token comes from a
`token` cookie (set it with `GET /login?token=...`), from the socket's first message,
or from the query string (`/private?token=...`).

Prefer the cookie or the first message: a query string is part of the URL, which
servers and proxies write to their access logs (uvicorn's logs
`"WebSocket /private?token=alice-token"`), so a token there ends up in log files.

- `/private` refuses a bad token with a plain HTTP 403, the WebSocket default.
- `/private/explained` refuses it with HTTP 401 and a body saying why, for servers
  that support WebSocket denial responses (uvicorn does).
- `/private/first-message` accepts first and reads the token from the first message
  (no log records it); a wrong one, or none within 5 seconds, closes with 1008.

The cookie would also ride along with a socket opened by a page on another site, so
the app allows same-origin pages only (`allowed_origins=[]`); clients that send no
`Origin` header, which are not browsers, still connect with their token.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response

from bocws import App, WebSocket

# A real app would check a session or a signed token; this keeps the example small.
TOKENS = {"alice-token": "alice", "bob-token": "bob"}

app = App(allowed_origins=[])  # same-origin pages only: see docs/reliability.md


def user_for(ws: WebSocket, token: str | None) -> str | None:
    """The user the token (from the query string, else the cookie) belongs to."""
    return TOKENS.get(token or ws.cookies.get("token", ""))


async def greet_and_echo(ws: WebSocket, user: str) -> None:
    """What an authenticated client gets: a greeting, then its messages signed back."""
    await ws.send(f"hello {user}")
    async for message in ws:
        await ws.send(f"{user}: {message}")


@app.websocket_route("/private")
async def private(ws: WebSocket, token: str | None = None) -> None:
    """Greet the user, then echo; refuse unknown tokens with HTTP 403."""
    user = user_for(ws, token)
    if user is None:
        await ws.reject()  # nothing was accepted yet: the client gets HTTP 403
        return
    await greet_and_echo(ws, user)


@app.websocket_route("/private/explained")
async def private_explained(ws: WebSocket, token: str | None = None) -> None:
    """Like `/private`, but a refusal is an HTTP 401 with a reason in its body."""
    user = user_for(ws, token)
    if user is None:
        denial = PlainTextResponse(
            "a valid token is required", status_code=401, headers={"WWW-Authenticate": "Token"}
        )
        await ws.reject(denial)
        return
    await greet_and_echo(ws, user)


FIRST_MESSAGE_TIMEOUT = 5.0


@app.websocket_route("/private/first-message")
async def private_first_message(ws: WebSocket) -> None:
    """Read the token from the first message; close with 1008 unless it is valid.

    The check comes after the handshake (a refusal is a close, not an HTTP status),
    and no URL carries the token.
    """
    try:
        token = await ws.receive_text(timeout=FIRST_MESSAGE_TIMEOUT)
    except TimeoutError:
        await ws.close(1008, "send your token as the first message")
        return
    user = TOKENS.get(token)
    if user is None:
        await ws.close(1008, "invalid token")
        return
    await greet_and_echo(ws, user)


@app.route("/login")
async def login(request: Request) -> Response:
    """Store the token from the query string in a cookie, for the sockets to read."""
    token = request.query_params.get("token", "")
    if token not in TOKENS:
        return PlainTextResponse("unknown token", status_code=401)
    response = RedirectResponse("/", status_code=303)
    response.set_cookie("token", token, httponly=True, samesite="strict")
    return response


@app.route("/")
async def home(request: Request) -> PlainTextResponse:
    """Explain how to connect."""
    return PlainTextResponse(
        "Connect to ws://HOST/private?token=alice-token, or GET /login?token=alice-token "
        "first to use the cookie.\n"
    )
