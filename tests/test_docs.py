"""The Python examples in docs/ run, and do what the text around them says.

A block is picked by a distinctive substring it contains, never by its position on
the page, so adding an example does not reshuffle the tests. Every block compiles
and names nothing but what it defines, imports, or its page provides (`app`). The
important ones run: through Starlette's TestClient, or against a real uvicorn (the
harness of tests/test_server.py) for what only shows on the wire. The testing page's
own tests run under pytest, as a reader would run them.
"""

from __future__ import annotations

import ast
import asyncio
import builtins
import inspect
import json
import logging
import os
import re
import struct
import subprocess
import symtable
import sys
import textwrap
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import CodeType
from typing import Any

import pytest
import starlette.websockets
from fastapi import Depends, FastAPI, WebSocketException
from fastapi import WebSocket as FastAPIWebSocket
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import WebSocketRoute
from starlette.testclient import TestClient, WebSocketDenialResponse, WebSocketTestSession
from starlette.types import ASGIApp, Receive, Scope, Send

from bocws import App, ViewEndpoint, WebSocketDisconnect, websocket_view
from tests.live_server import TIMEOUT, client, closed_by_server, recv, refused, running_server

DOCS = Path(__file__).resolve().parent.parent / "docs"

FENCE = re.compile(
    r"^(?P<indent>[ \t]*)```python(?:[ \t][^\n]*)?\n(?P<code>.*?)^(?P=indent)```[ \t]*$",
    re.MULTILINE | re.DOTALL,
)

# Lines that do not say what a block is about, left out of its test id.
BOILERPLATE = re.compile(r"\s*(#|import\s|from\s+\S+\s+import\s|\w+ = App\(\)\s*$)")

CONTEXT_NAMES = {
    "app": "the `app = App()` the guide's fragments register their views on",
    "WebSocketView": "bocws.WebSocketView, imported by the other examples of class-views.md",
}
"""Names a block may use without defining them: what its page provides around it."""

NOT_STANDALONE: dict[tuple[str, str], str] = {}
"""(page, substring) of a block that is not valid Python on its own by design -> why.

Such a block must fail to compile; none does today.
"""

FRAGMENT_CONTEXT = "from bocws import App, WebSocketView\n\napp = App()\n"


# Finding and running blocks.


@dataclass(frozen=True)
class Block:
    page: str
    line: int  # where the code starts on the page
    code: str

    def compiled(self) -> CodeType:
        """The code, compiled so that errors and tracebacks point at the page's lines."""
        source = "\n" * (self.line - 1) + self.code
        # dont_inherit: this module's `from __future__ import annotations` is not the page's.
        return compile(source, str(DOCS / self.page), "exec", dont_inherit=True)


@cache
def page_text(page: str) -> str:
    return (DOCS / page).read_text(encoding="utf-8")


@cache
def python_blocks(page: str) -> tuple[Block, ...]:
    """The ```python blocks of `page`, in order."""
    text = page_text(page)
    return tuple(
        Block(page, text.count("\n", 0, match.start("code")) + 1, textwrap.dedent(match["code"]))
        for match in FENCE.finditer(text)
    )


def block(page: str, needle: str) -> Block:
    """The one Python block of `page` that contains `needle`."""
    found = [candidate for candidate in python_blocks(page) if needle in candidate.code]
    if len(found) != 1:
        lines = ", ".join(f"line {candidate.line}" for candidate in found) or "none"
        pytest.fail(
            f"docs/{page}: {len(found)} Python blocks contain {needle!r} ({lines}); "
            "exactly one must: pick a more distinctive substring",
            pytrace=False,
        )
    return found[0]


def example(page: str, *needles: str, context: str = "") -> dict[str, Any]:
    """Run `context`, then the blocks of `page` containing `needles`, in one fresh namespace."""
    namespace: dict[str, Any] = {"__name__": f"docs.{Path(page).stem}"}
    exec(context, namespace)
    for needle in needles:
        exec(block(page, needle).compiled(), namespace)
    return namespace


def fragments(page: str, *needles: str) -> App:
    """Run fragments that register views on an `app` they do not define; return that app."""
    app: App = example(page, *needles, context=FRAGMENT_CONTEXT)["app"]
    return app


def documented(page: str, quote: str) -> bool:
    """Whether `quote` appears on `page`, whatever the line wrapping."""
    return " ".join(quote.split()) in " ".join(page_text(page).split())


def block_params() -> list[Any]:
    """Every Python block of every page, with an id: its page and first meaningful line."""
    params = []
    for path in sorted(DOCS.glob("*.md")):
        taken: set[str] = set()
        for found in python_blocks(path.name):
            lines = [
                line.strip()[:60]
                for line in found.code.splitlines()
                if line.strip() and not BOILERPLATE.match(line)
            ] or [f"line {found.line}"]
            label = lines.pop(0)
            while label in taken and lines:  # extend until it tells this block apart
                label += " / " + lines.pop(0)
            if label in taken:
                label += f" (line {found.line})"
            taken.add(label)
            params.append(pytest.param(found, id=f"{path.name}: {label}"))
    if not params:
        raise RuntimeError(f"no ```python blocks found under {DOCS}")
    return params


def undefined_names(code: str) -> set[str]:
    """Global names the code reads but neither defines, imports, nor gets from builtins."""
    top = symtable.symtable(code, "<block>", "exec")
    bound = {
        symbol.get_name()
        for symbol in top.get_symbols()
        if symbol.is_assigned() or symbol.is_imported() or symbol.is_namespace()
    }
    read: set[str] = set()
    tables = [top]
    while tables:
        table = tables.pop()
        read.update(
            symbol.get_name()
            for symbol in table.get_symbols()
            if symbol.is_referenced() and (table is top or symbol.is_global())
        )
        tables.extend(table.get_children())
    return read - bound - set(dir(builtins))


# Talking to an app.


def refusal(app: ASGIApp, path: str) -> int:
    """The code TestClient reports for a handshake `app` refuses (HTTP 403 on a server)."""
    with pytest.raises(WebSocketDisconnect) as info, TestClient(app).websocket_connect(path):
        pass  # pragma: no cover - the handshake is refused
    assert not isinstance(info.value, WebSocketDenialResponse)
    return info.value.code


def denial(app: ASGIApp, path: str) -> WebSocketDenialResponse:
    """The denial response `app` answers a handshake with."""
    with pytest.raises(WebSocketDenialResponse) as info, TestClient(app).websocket_connect(path):
        pass  # pragma: no cover - the handshake is refused
    return info.value


def close_of(session: WebSocketTestSession) -> tuple[int, str]:
    """The code and reason of the close the session receives next."""
    message = session.receive()
    assert message["type"] == "websocket.close", message
    return message["code"], message.get("reason") or ""


def serve(view: Any, path: str = "/", **options: Any) -> App:
    """An App serving one view."""
    app = App()
    app.add_websocket_route(path, view, **options)
    return app


def bocws_messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == "bocws"]


class GoneMember:
    """A chat member whose client has left: sending to it raises, as bocws does."""

    async def send(self, message: Any) -> None:
        raise WebSocketDisconnect(1001)


class Finished:
    """Wraps an ASGI app so that a test can wait, bounded, for a connection to end."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.paths: asyncio.Queue[str] = asyncio.Queue()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        finally:
            self.paths.put_nowait(scope["path"])

    async def next(self) -> str:
        return await asyncio.wait_for(self.paths.get(), TIMEOUT)


# Every block.


@pytest.mark.parametrize("found", block_params())
def test_every_python_block_compiles_and_defines_what_it_uses(found: Block) -> None:
    reasons = [
        reason
        for (page, needle), reason in NOT_STANDALONE.items()
        if page == found.page and needle in found.code
    ]
    if reasons:
        with pytest.raises(SyntaxError):
            found.compiled()
        return
    found.compiled()
    undefined = undefined_names(found.code) - CONTEXT_NAMES.keys()
    assert not undefined, (
        f"docs/{found.page}, block at line {found.line} uses {sorted(undefined)} "
        "without defining or importing them"
    )


def test_a_needle_must_pick_exactly_one_block() -> None:
    with pytest.raises(pytest.fail.Exception, match="2 Python blocks contain"):
        block("integration.md", "from fastapi import FastAPI")
    with pytest.raises(pytest.fail.Exception, match="0 Python blocks contain"):
        block("integration.md", "no such code")


def test_undefined_names_finds_a_misspelled_name_in_a_view() -> None:
    code = "async def view(ws):\n    message = await ws.receive()\n    await ws.send(mesage)\n"
    assert undefined_names(code) == {"mesage"}


# index.md


def test_index_echo_app_echoes() -> None:
    app = example("index.md", '"/echo"')["app"]
    with TestClient(app).websocket_connect("/echo") as session:
        session.send_text("hi")
        assert session.receive_text() == "hi"


def test_index_plain_asgi_websocket_echoes() -> None:
    app = example("index.md", "async def app(scope, receive, send):")["app"]
    with TestClient(app).websocket_connect("/") as session:
        session.send_text("hi")
        assert session.receive_text() == "hi"


# views.md


def test_views_echo_app_echoes() -> None:
    # The echo app alone: the HTTP page example contains the same view.
    app = example("views.md", 'app = App()\n\n\n@app.websocket_route("/echo")')["app"]
    with TestClient(app).websocket_connect("/echo") as session:
        session.send_text("hi")
        assert session.receive_text() == "hi"


def test_views_chat_echoes_json_with_its_room_and_catches_1006(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = example("views.md", '"/chat/{room}"')["app"]
    with TestClient(app).websocket_connect("/chat/lobby") as session:
        session.send_json({"a": 1})
        assert session.receive_json() == {"room": "lobby", "echo": {"a": 1}}
        session.close(1006)
    assert bocws_messages(caplog) == []


def test_views_function_view_takes_path_and_query_parameters() -> None:
    app = example("views.md", "async def join(ws, room: str, name: str")["app"]
    with TestClient(app).websocket_connect("/rooms/lobby?name=ada") as session:
        assert session.receive_text() == "ada joined lobby"
    with TestClient(app).websocket_connect("/rooms/lobby") as session:
        assert session.receive_text() == "anonymous joined lobby"


def test_views_route_options_override_only_those_given(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="bocws")
    namespace = example("views.md", '"/echo/any-code", echo')
    app = namespace["app"]
    app.add_websocket_route("/raw", namespace["echo"], receive_type="text")
    test_client = TestClient(app)
    for path in ("/echo", "/echo/any-code"):
        with test_client.websocket_connect(path) as session:
            session.send_json({"a": [1]})
            assert session.receive_json() == {"a": [1]}
    with test_client.websocket_connect("/echo/any-code") as session:
        session.close(4000)  # a normal end on that route only
    assert bocws_messages(caplog) == []
    with test_client.websocket_connect("/echo") as session:
        session.close(4000)  # the view lets it out: a departure, logged, not re-raised
    assert bocws_messages(caplog) == ["'/echo': the client left with 4000"]
    with test_client.websocket_connect("/raw") as session:  # receives text, still sends JSON
        session.send_text("hi")
        assert session.receive_text() == '"hi"'


def test_views_int_convertor_converts_and_refuses_other_paths() -> None:
    app = example("views.md", '"/items/{item_id:int}"')["app"]
    with TestClient(app).websocket_connect("/items/42") as session:
        assert session.receive_json() == {"id": 42}
    assert refusal(app, "/items/abc") == 403


def test_views_http_page_is_served_and_its_path_refuses_websockets(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="bocws")
    app = example("views.md", "HTMLResponse(PAGE)")["app"]
    test_client = TestClient(app)
    assert "new WebSocket(" in test_client.get("/").text
    with test_client.websocket_connect("/echo") as session:
        session.send_text("x")
        assert session.receive_text() == "x"
    assert refusal(app, "/") == 403
    assert refusal(app, "/nowhere") == 403
    message = "'/nowhere': no WebSocket route matches; refusing with 403"
    assert message in bocws_messages(caplog)
    assert documented("views.md", message)
    assert documented("lifecycle.md", message)


def test_views_mounted_app_answers_under_its_prefix_without_its_hooks() -> None:
    namespace = example("views.md", 'app.mount("/api", api, name="api")')
    app, api = namespace["app"], namespace["api"]
    started: list[str] = []
    api.on_startup(lambda: started.append("api"))
    with TestClient(app) as test_client, test_client.websocket_connect("/api/ping") as session:
        assert session.receive_text() == "pong"
    assert app.url_path_for("api:ping") == "/api/ping"
    assert started == []


def test_views_session_middleware_gives_the_view_the_login() -> None:
    app = example("views.md", "SessionMiddleware")["app"]
    with TestClient(app) as test_client:
        with pytest.raises(WebSocketDisconnect) as info, test_client.websocket_connect("/me"):
            pass  # pragma: no cover - the handshake is refused
        assert info.value.code == 403
        test_client.get("/login?user=bob")
        with test_client.websocket_connect("/me") as session:
            assert session.receive_text() == "hello bob"


def test_views_startup_and_shutdown_hooks_run(capsys: pytest.CaptureFixture[str]) -> None:
    app = example("views.md", "@app.on_startup")["app"]
    with TestClient(app):
        assert capsys.readouterr().out == "starting\n"
    assert capsys.readouterr().out == "stopping with 0 connections open\n"


def test_views_lifespan_state_reaches_the_view() -> None:
    app = example("views.md", "def lifespan(app):")["app"]
    with TestClient(app) as test_client, test_client.websocket_connect("/greet") as session:
        assert session.receive_text() == "hello"


def test_views_url_for_gives_the_websocket_url() -> None:
    app = example("views.md", 'request.url_for("room"')["app"]  # runs its own assert too
    test_client = TestClient(app)
    assert test_client.get("/").text == "ws://testserver/rooms/lobby"
    with test_client.websocket_connect("/rooms/lobby") as session:
        assert session.receive_text() == "welcome to lobby"


# parameters.md


def test_parameters_come_from_the_path_then_the_query_then_the_default() -> None:
    app = fragments("parameters.md", '"/chat/{room}"')
    test_client = TestClient(app)
    for path, greeting in [
        ("/chat/lobby?name=ada", "ada joined lobby"),
        ("/chat/lobby", "anonymous joined lobby"),
        ("/chat/lobby?room=other", "anonymous joined lobby"),
    ]:
        with test_client.websocket_connect(path) as session:
            assert session.receive_text() == greeting, path


def feed(app: App, query: str) -> Any:
    """What the /feed view of parameters.md sends for `query`: the values it got."""
    with TestClient(app).websocket_connect("/feed" + query) as session:
        return session.receive_json()


def test_parameters_feed_table_is_what_the_view_gets() -> None:
    rows = re.findall(r"^\| `(/feed[^`]*)` \| (.+?) \|$", page_text("parameters.md"), re.M)
    assert len(rows) >= 4, "the table of /feed URLs is gone from parameters.md"
    app = fragments("parameters.md", '"/feed"')
    for url, gets in rows:
        if "refused" in gets:
            assert refusal(app, url) == 403, url
            continue
        pairs = (pair.split("=", 1) for pair in gets.strip("`").split(", "))
        expected = {name: ast.literal_eval(value) for name, value in pairs}
        assert feed(app, url.removeprefix("/feed")) == expected, url


@pytest.mark.parametrize(
    ("query", "name", "value"),
    [
        ("?limit=42", "limit", 42),
        ("?limit=-3", "limit", -3),
        ("?limit=1&limit=2", "limit", 2),
        ("?ratio=0.5", "ratio", 0.5),
        ("?ratio=.5", "ratio", 0.5),
        ("?ratio=-2", "ratio", -2.0),
        ("?ratio=1e3", "ratio", 1000.0),
        ("?live=TRUE", "live", True),
        ("?live=1", "live", True),
        ("?live=yes", "live", True),
        ("?live=On", "live", True),
        ("?live=False", "live", False),
        ("?live=0", "live", False),
        ("?live=NO", "live", False),
        ("?live=off", "live", False),
        ("?tag=", "tag", None),  # `str | None`: an empty value is None
    ],
)
def test_parameters_convert_the_documented_accepted_values(
    query: str, name: str, value: object
) -> None:
    got = feed(fragments("parameters.md", '"/feed"'), query)[name]
    assert got == value
    assert type(got) is type(value)


@pytest.mark.parametrize(
    "query",
    [
        "?limit=4.2",
        "?limit=1_000",
        "?limit=%2B5",
        "?limit=",
        "?ratio=nan",
        "?ratio=inf",
        "?ratio=1e400",
        "?ratio=1_000",
        "?ratio=%2B1",
        "?ratio=",
        "?live=y",
        "?live=maybe",
        "?live=",
    ],
)
def test_parameters_refuse_the_documented_refused_values(query: str) -> None:
    assert refusal(fragments("parameters.md", '"/feed"'), "/feed" + query) == 403


def test_parameters_refusals_are_logged_at_info_as_documented(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="bocws")
    app = fragments("parameters.md", '"/feed"')
    called: list[str] = []

    @app.websocket_route("/chat")
    async def chat(ws: Any, token: str) -> None:
        called.append(token)  # pragma: no cover - never called without a token

    assert refusal(app, "/feed?limit=ten") == 403
    assert refusal(app, "/chat") == 403
    assert called == []
    assert [(record.levelname, record.getMessage()) for record in caplog.records] == [
        (
            "INFO",
            "'/feed': rejecting the handshake: "
            "query parameter 'limit' must be an integer, got 'ten'",
        ),
        ("INFO", "'/chat': rejecting the handshake: missing query parameter 'token'"),
    ]
    for message in bocws_messages(caplog):
        assert documented("parameters.md", message), message


def test_parameters_var_keyword_gets_the_other_path_parameters_only() -> None:
    app = fragments("parameters.md", "**params")
    with TestClient(app).websocket_connect("/news/2?x=1") as session:
        assert session.receive_json() == {"section": "news", "others": {"page": 2}}


def test_parameters_countdown_answers_a_bad_value_itself() -> None:
    app = fragments("parameters.md", '"/countdown"')
    with TestClient(app).websocket_connect("/countdown?start=3") as session:
        assert [session.receive_text() for _ in range(3)] == ["3", "2", "1"]
        assert close_of(session) == (1000, "")
    with TestClient(app).websocket_connect("/countdown?start=x") as session:
        assert session.receive_text() == "start must be a number"
        assert close_of(session) == (4000, "bad start")


def test_parameters_string_annotations_resolve_past_type_checking_imports() -> None:
    app = example("parameters.md", "if TYPE_CHECKING:")["app"]
    with TestClient(app).websocket_connect("/rooms/lobby?limit=3") as session:
        assert session.receive_text() == "lobby: 3 messages"
    with TestClient(app).websocket_connect("/rooms/lobby") as session:
        assert session.receive_text() == "lobby: 10 messages"


def test_parameters_everything_else_is_on_the_websocket() -> None:
    app = fragments("parameters.md", '"/inbox"')
    test_client = TestClient(app, cookies={"theme": "dark"})
    headers = {"user-agent": "me"}
    with test_client.websocket_connect("/inbox?tag=a&tag=b", headers=headers) as session:
        assert session.receive_json() == {
            "tags": ["a", "b"],
            "agent": "me",
            "theme": "dark",
            "path_params": {},
        }


# lifecycle.md


def test_lifecycle_returning_closes_with_1000() -> None:
    app = fragments("lifecycle.md", '"/hello"')
    with TestClient(app).websocket_connect("/hello") as session:
        assert session.receive_text() == "hello"
        assert close_of(session) == (1000, "")


def test_lifecycle_departures_end_the_view_with_one_line_at_the_documented_level(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="bocws")
    app = fragments("lifecycle.md", '"/live"')
    test_client = TestClient(app)
    for code in (1005, 1006, 4000, 1011):
        with test_client.websocket_connect("/live") as session:  # nothing re-raised
            session.send_text("x")
            assert session.receive_text() == "x"
            session.close(code)
    # caught_close_codes=all: `async for` ends quietly on every code.
    assert bocws_messages(caplog) == []
    app = App()

    @app.websocket_route("/live", caught_close_codes=())
    async def live(ws: Any) -> None:
        async for message in ws:
            await ws.send(message)

    for code, reason in ((1006, ""), (1011, "oops")):
        with TestClient(app).websocket_connect("/live") as session:
            session.close(code, reason)
    records = [(record.levelname, record.getMessage()) for record in caplog.records]
    assert records == [
        ("INFO", "'/live': the client left with 1006 (ABNORMAL_CLOSURE)"),
        ("WARNING", "'/live': the client left with 1011 (INTERNAL_ERROR) 'oops'"),
    ]
    for _, message in records:
        assert documented("lifecycle.md", message)


def test_lifecycle_bad_client_data_and_websocket_exception_close_with_their_codes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="bocws")
    test_client = TestClient(fragments("lifecycle.md", '"/orders"'))
    with test_client.websocket_connect("/orders") as session:
        session.send_json({"item": "tea"})
        assert session.receive_json() == {"ok": "tea"}
        session.send_text("")
        assert close_of(session) == (1007, "invalid JSON")
    with test_client.websocket_connect("/orders") as session:
        session.send_json({"x": 1})
        assert close_of(session) == (4000, "an order needs an item")
    with test_client.websocket_connect("/orders") as session:  # JSON in binary frames too
        session.send_bytes(b'{"item": "tea"}')
        assert session.receive_json() == {"ok": "tea"}
        session.send_bytes(b"\xff")
        assert close_of(session) == (1007, "invalid JSON")
    assert {record.levelname for record in caplog.records} == {"INFO"}
    invalid_json, websocket_exception, _ = bocws_messages(caplog)
    assert invalid_json == (
        "'/orders': closed with 1007 (INVALID_PAYLOAD) 'invalid JSON': view orders: "
        "the client sent bad data: Expecting value: line 1 column 1 (char 0)"
    )
    assert websocket_exception == (
        "'/orders': closed with 4000 'an order needs an item': view orders: WebSocketException"
    )
    assert documented("lifecycle.md", invalid_json)
    assert documented("lifecycle.md", websocket_exception)


def until_not_a_tick(session: WebSocketTestSession) -> list[Any]:
    """What the ticker sends up to its first message that is not a tick (one per second)."""
    received: list[Any] = []
    for _ in range(3):
        message = session.receive()
        received.append(json.loads(message["text"]) if "text" in message else message)
        if received[-1] != {"tick": True}:
            return received
    raise AssertionError(f"only ticks: {received}")


def test_lifecycle_ticker_task_group_echoes_and_closes_1007_on_bad_json(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="bocws")
    test_client = TestClient(fragments("lifecycle.md", '"/ticker"'))
    with test_client.websocket_connect("/ticker") as session:
        assert session.receive_json() == {"tick": True}
        session.send_json({"a": 1})
        assert until_not_a_tick(session)[-1] == {"echo": {"a": 1}}
    with test_client.websocket_connect("/ticker") as session:
        assert session.receive_json() == {"tick": True}
        session.send_text("{bad")
        assert until_not_a_tick(session)[-1] == {
            "type": "websocket.close",
            "code": 1007,
            "reason": "invalid JSON",
        }
    assert not [record for record in caplog.records if record.levelno >= logging.WARNING]


def test_lifecycle_private_denies_with_401_and_its_body() -> None:
    app = fragments("lifecycle.md", '"/private"')
    response = denial(app, "/private?token=wrong")
    assert (response.status_code, response.text) == (401, "a valid token is required")
    with TestClient(app).websocket_connect("/private?token=s3cret") as session:
        assert session.receive_text() == "welcome"


@pytest.mark.anyio
async def test_lifecycle_on_the_wire_errors_close_1011_and_denials_are_http(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = fragments("lifecycle.md", '"/orders"', '"/private"')
    async with running_server(app, "websockets-sansio") as base:  # type: ignore[arg-type]
        async with client(f"{base}/notes") as connection:
            await connection.send("")
            closed = await closed_by_server(connection)
        denied = (await refused(f"{base}/private")).response
        async with client(f"{base}/private?token=s3cret") as connection:
            assert await recv(connection) == "welcome"
    assert closed.rcvd is not None
    assert (closed.rcvd.code, closed.rcvd.reason) == (1011, "internal error")
    assert (denied.status_code, denied.body) == (401, b"a valid token is required")
    message = (
        "'/notes': view notes raised JSONDecodeError: Expecting value: line 1 column 1 (char 0); "
        "closed with 1011 (INTERNAL_ERROR) 'internal error'"
    )
    assert [
        (record.levelname, record.getMessage())
        for record in caplog.records
        if record.name == "bocws"
    ] == [("ERROR", message)]
    assert documented("lifecycle.md", message)


def test_lifecycle_reject_after_accept_warns_as_documented(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def view(ws: Any) -> None:
        await ws.send("hi")
        await ws.reject(PlainTextResponse("too late"))

    with TestClient(serve(view)).websocket_connect("/") as session:
        assert session.receive_text() == "hi"
        assert close_of(session) == (1008, "")
    [message] = bocws_messages(caplog)
    assert (
        message == "reject(response) after accept cannot send an HTTP response; closing with 1008"
    )
    assert documented("lifecycle.md", message)


def test_lifecycle_logging_setup_shows_the_info_lines(capsys: pytest.CaptureFixture[str]) -> None:
    root, bocws_logger = logging.getLogger(), logging.getLogger("bocws")
    handlers, level = root.handlers[:], bocws_logger.level
    root.handlers.clear()  # basicConfig() only sets up a root logger without handlers
    try:
        example("lifecycle.md", "logging.basicConfig(")
        test_client = TestClient(fragments("lifecycle.md", '"/orders"'))
        with test_client.websocket_connect("/orders") as session:
            session.send_text("")
            assert close_of(session)[0] == 1007
    finally:
        root.handlers[:] = handlers
        bocws_logger.setLevel(level)
    assert capsys.readouterr().err == (
        "INFO bocws: '/orders': closed with 1007 (INVALID_PAYLOAD) 'invalid JSON': view orders: "
        "the client sent bad data: Expecting value: line 1 column 1 (char 0)\n"
    )


# class-views.md


def test_class_views_echo_fragment_echoes() -> None:
    app = fragments("class-views.md", "class Echo(WebSocketView):\n    async def on_message")
    with TestClient(app).websocket_connect("/echo") as session:
        session.send_text("x")
        assert session.receive_text() == "x"


def test_class_views_class_attributes_are_route_options(caplog: pytest.LogCaptureFixture) -> None:
    app = example("class-views.md", "class Scores(WebSocketView):")["app"]
    with TestClient(app).websocket_connect("/scores") as session:
        session.send_json(3)
        assert session.receive_json() == {"received": 3}
        session.close(1006)  # in its caught_close_codes
    assert bocws_messages(caplog) == []


def test_class_views_one_class_serves_two_routes_with_their_options(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="bocws")
    app = example("class-views.md", '"/echo/any-code", Echo')["app"]
    test_client = TestClient(app)
    with test_client.websocket_connect("/echo/any-code") as session:
        session.send_json({"a": 1})
        assert session.receive_json() == {"a": 1}
        session.close(4000)
    assert bocws_messages(caplog) == []
    with test_client.websocket_connect("/echo") as session:
        session.close(4000)  # not caught on this route: on_disconnect, then one line
    assert bocws_messages(caplog) == ["'/echo': the client left with 4000"]


def test_class_views_on_connect_rejects_or_takes_the_room() -> None:
    app = example("class-views.md", "class Room(WebSocketView):")["app"]
    assert refusal(app, "/rooms/lobby") == 403
    with TestClient(app).websocket_connect("/rooms/lobby?token=s3cret") as session:
        session.send_text("x")
        assert session.receive_text() == "[lobby] x"


def test_class_views_state_is_per_connection(capsys: pytest.CaptureFixture[str]) -> None:
    app = example("class-views.md", "class Counter(WebSocketView):")["app"]
    test_client = TestClient(app)
    with test_client.websocket_connect("/count") as session:
        for count, message in enumerate("ab", start=1):
            session.send_text(message)
            assert session.receive_json() == {"count": count, "message": message}
    with test_client.websocket_connect("/count") as session:
        session.send_text("c")
        assert session.receive_json() == {"count": 1, "message": "c"}
    assert capsys.readouterr().out == (
        "client left with 1000 after 2 messages\nclient left with 1000 after 1 messages\n"
    )


@pytest.mark.anyio
async def test_class_views_closing_in_a_hook_reaches_on_disconnect_quietly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="bocws")
    namespace = example("class-views.md", "class Quiz(WebSocketView):")
    codes: list[int] = []

    async def on_disconnect(self: Any, ws: Any, code: int) -> None:
        codes.append(code)

    namespace["Quiz"].on_disconnect = on_disconnect
    app = Finished(namespace["app"])
    async with running_server(app, "websockets-sansio") as base:  # type: ignore[arg-type]
        async with client(f"{base}/quiz") as connection:
            await connection.send("hello")
            assert await recv(connection) == "you said hello"
            await connection.send("quit")
            closed = await closed_by_server(connection)
        assert await app.next() == "/quiz"
    assert closed.rcvd is not None
    assert (closed.rcvd.code, closed.rcvd.reason) == (4000, "bye")
    assert codes == [4000]
    assert bocws_messages(caplog) == []


def test_class_views_event_mode_takes_text_and_bytes_and_any_close(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = example("class-views.md", "class Frames(WebSocketView):")["app"]
    with TestClient(app).websocket_connect("/frames") as session:
        session.send_text("hi")
        assert session.receive_text() == "text: hi"
        session.send_bytes(b"abc")
        assert session.receive_text() == "3 bytes"
        session.close(4321)
    assert bocws_messages(caplog) == []


# integration.md


def test_integration_websocket_view_serves_a_starlette_route() -> None:
    echo = example("integration.md", "async def echo(ws):")["echo"]
    assert isinstance(echo, ViewEndpoint)
    app = Starlette(routes=[WebSocketRoute("/echo", echo)])
    with TestClient(app).websocket_connect("/echo") as session:
        session.send_text("x")
        assert session.receive_text() == "x"


def test_integration_starlette_app_serves_its_page_and_the_view() -> None:
    app = example("integration.md", "app = Starlette(\n")["app"]
    test_client = TestClient(app)
    assert test_client.get("/").text == "hello"
    with test_client.websocket_connect("/chat/lobby?name=ada") as session:
        session.send_json("hi")
        assert session.receive_json() == {"room": "lobby", "from": "ada", "text": "hi"}
    assert app.url_path_for("chat", room="lobby") == "/chat/lobby"


def test_integration_fastapi_app_serves_both_registrations() -> None:
    app = example("integration.md", '@app.get("/health")')["app"]
    test_client = TestClient(app)
    assert test_client.get("/health").json() == {"ok": True}
    with test_client.websocket_connect("/chat/lobby") as session:
        session.send_json("hi")
        assert session.receive_json() == {"room": "lobby", "from": "anonymous", "text": "hi"}
    with test_client.websocket_connect("/ping") as session:
        assert session.receive_text() == "pong"


def test_integration_fastapi_dependency_returns_the_user_to_the_view() -> None:
    app = example("integration.md", "async def current_user(")["app"]
    test_client = TestClient(app)
    with test_client.websocket_connect("/chat/lobby?token=s3cret") as session:
        session.send_json("hi")
        assert session.receive_json() == {"room": "lobby", "from": "ada", "text": "hi"}
    cookie = {"cookie": "session=s3cret"}
    with test_client.websocket_connect("/chat/lobby", headers=cookie) as session:
        session.send_json("hi")
        assert session.receive_json()["from"] == "ada"
    assert refusal(app, "/chat/lobby?token=wrong") == 1008


def test_integration_fastapi_route_dependencies_run_first_and_may_refuse() -> None:
    async def check(websocket: FastAPIWebSocket) -> None:
        if websocket.query_params.get("token") != "t":
            raise WebSocketException(code=1008)

    @websocket_view
    async def view(ws: Any) -> None:
        await ws.send("checked")

    app = FastAPI()
    app.add_api_websocket_route("/v", view, dependencies=[Depends(check)])
    with TestClient(app).websocket_connect("/v?token=t") as session:
        assert session.receive_text() == "checked"
    assert refusal(app, "/v") == 1008


def test_integration_mounted_app_answers_under_the_prefix() -> None:
    app = example("integration.md", 'app.mount("/chat", chat)')["app"]
    with TestClient(app).websocket_connect("/chat/rooms/lobby") as session:
        assert session.receive_text() == "welcome to lobby"


def test_integration_websocket_without_a_view_closes_as_a_view_would(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="bocws")
    app = example("integration.md", "class Echo:")["app"]
    with TestClient(app).websocket_connect("/echo") as session:
        session.send_json([1])
        assert session.receive_json() == {"echo": [1]}
    with TestClient(app).websocket_connect("/echo") as session:
        session.send_text("{bad")  # `async with` closes 1007, as a view would
        assert close_of(session) == (1007, "invalid JSON")
    [message] = bocws_messages(caplog)
    assert message.startswith("'/echo': closed with 1007 (INVALID_PAYLOAD) 'invalid JSON': ")


# starlette.md


def test_starlette_code_runs_unchanged_on_bocws() -> None:
    app = example("starlette.md", "websocket.iter_text()")["app"]
    with TestClient(app).websocket_connect("/echo") as session:
        session.send_text("hi")
        assert session.receive_text() == "hi"
        session.close(1000)
    with TestClient(app).websocket_connect("/echo") as session:
        session.close(4000)  # not caught: iter_text() raises, the view catches it


# websocket.md


def test_websocket_plain_asgi_echo() -> None:
    app = example("websocket.md", "async with WebSocket(scope, receive, send) as ws:")["app"]
    with TestClient(app).websocket_connect("/") as session:
        session.send_text("hi")
        assert session.receive_text() == "hi"


def test_websocket_value_type_json_echo() -> None:
    app = example("websocket.md", 'value_type="json")\n    async with ws:')["app"]
    with TestClient(app).websocket_connect("/") as session:
        session.send_json({"a": 1})
        assert session.receive_json() == {"echo": {"a": 1}}


def test_websocket_starlette_endpoint_runs_a_view() -> None:
    app = example("websocket.md", "class Endpoint:")["app"]
    with TestClient(app).websocket_connect("/echo") as session:
        session.send_text("hi")
        assert session.receive_text() == "hi"
        session.close(1001)


def test_websocket_connection_information() -> None:
    greet = example("websocket.md", "async def greet(ws):")["greet"]
    app = Starlette(routes=[WebSocketRoute("/rooms/{room}", websocket_view(greet))])
    with TestClient(app).websocket_connect("/rooms/lobby?name=ada") as session:
        assert session.receive_text() == "welcome to lobby, ada"


def test_websocket_typed_receives_and_send_json() -> None:
    view = example("websocket.md", "avatar = await ws.receive_bytes()")["view"]
    with TestClient(serve(view)).websocket_connect("/") as session:
        session.send_text("ada")
        session.send_bytes(b"\x89PNG")
        assert session.receive_json() == {"name": "ada", "avatar_size": 4}


def test_websocket_json_in_binary_frames() -> None:
    view = example("websocket.md", 'receive_json(mode="binary")')["view"]
    with TestClient(serve(view)).websocket_connect("/") as session:
        session.send_bytes(b'{"theme": "dark"}')
        assert json.loads(session.receive_bytes()) == {"ok": True, "settings": {"theme": "dark"}}


@pytest.mark.parametrize(
    ("frame", "answer"),
    [
        (b"{}", "please send JSON as text"),
        ("{bad", "that was not JSON"),
        ('{"go": 1}', '{"received":{"go":1}}'),
    ],
)
def test_websocket_strictness_errors_can_be_caught(frame: str | bytes, answer: str) -> None:
    view = example("websocket.md", "except MessageTypeError:")["view"]
    with TestClient(serve(view)).websocket_connect("/") as session:
        if isinstance(frame, bytes):
            session.send_bytes(frame)
        else:
            session.send_text(frame)
        assert session.receive_text() == answer


def test_websocket_codec_of_ones_own_speaks_packed_floats_and_refuses_the_rest() -> None:
    app = example("websocket.md", "class Floats(Codec):")["app"]
    with TestClient(app).websocket_connect("/telemetry") as session:
        session.send_bytes(struct.pack("<3d", 1.0, 2.0, 6.0))
        assert struct.unpack("<d", session.receive_bytes()) == (3.0,)
        session.send_bytes(b"\x00" * 7)
        assert session.receive() == {
            "type": "websocket.close",
            "code": 1007,
            "reason": "invalid message",
        }
    with TestClient(app).websocket_connect("/telemetry") as session:
        session.send_text("1.0")
        assert session.receive()["code"] == 1003


def test_websocket_lazy_accept_lets_a_view_still_reject() -> None:
    view = example("websocket.md", 'if ws.query_params.get("token") != "secret":')["view"]
    app = serve(view)
    assert refusal(app, "/") == 403
    with TestClient(app).websocket_connect("/?token=secret") as session:
        assert session.receive_text() == "welcome"


def test_websocket_accepting_yourself_with_a_subprotocol_and_headers() -> None:
    app = example("websocket.md", '"chat.v2" in ws.subprotocols')["app"]
    assert refusal(app, "/") == 403
    with TestClient(app).websocket_connect("/", subprotocols=["chat.v1", "chat.v2"]) as session:
        assert session.accepted_subprotocol == "chat.v2"
        assert (b"x-server", b"bocws") in session.extra_headers
        session.send_text("hi")
        assert session.receive_text() == "hi"


def test_websocket_reject_with_a_response() -> None:
    view = example("websocket.md", '"log in first"')["view"]
    response = denial(serve(view), "/")
    assert (response.status_code, response.text) == (401, "log in first")
    with TestClient(serve(view), cookies={"token": "t"}).websocket_connect("/") as session:
        assert session.receive_text() == "hello"


def test_websocket_close_sends_code_and_reason() -> None:
    view = example("websocket.md", '"room closed"')["view"]
    with TestClient(serve(view)).websocket_connect("/") as session:
        assert session.receive_text() == "this room is closing"
        assert close_of(session) == (4000, "room closed")


def test_websocket_async_with_and_async_for() -> None:
    view = example("websocket.md", "message.upper()")["view"]
    with TestClient(serve(view)).websocket_connect("/") as session:
        session.send_text("hi")
        assert session.receive_text() == "HI"


def test_websocket_relay_drops_a_member_that_left() -> None:
    relay = example("websocket.md", "async def relay(sender, members):")["relay"]
    gone = GoneMember()
    members: set[Any] = {gone}

    async def room(ws: Any) -> None:
        members.add(ws)
        await relay(ws, members)

    with TestClient(serve(room)).websocket_connect("/") as session:
        session.send_text("one")
        assert session.receive_text() == "one"
        session.send_text("two")  # relayed once "one" went to every member
        assert session.receive_text() == "two"
        assert gone not in members


def test_websocket_caught_close_codes_all_catches_any_code() -> None:
    app = example("websocket.md", "caught_close_codes=all)")["app"]
    with TestClient(app).websocket_connect("/") as session:
        session.send_text("hi")
        assert session.receive_text() == "hi"
        session.close(4000)


def test_websocket_testclient_sees_a_reject_as_403() -> None:
    test = example("websocket.md", "def test_reject_is_seen_as_403(app):")

    async def reject(ws: Any) -> None:
        await ws.reject()

    test["test_reject_is_seen_as_403"](serve(reject, "/reject"))


def test_websocket_raw_events() -> None:
    view = example("websocket.md", "await ws.send_event(")["view"]
    with TestClient(serve(view)).websocket_connect("/") as session:
        assert session.receive_bytes() == b"\x00\x01"
        session.send_text("x")
        assert close_of(session) == (1000, "done")


def test_websocket_logging_level_silences_the_warnings(caplog: pytest.LogCaptureFixture) -> None:
    async def view(ws: Any) -> None:
        await ws.send("hi")
        await ws.reject(PlainTextResponse("too late"))  # warns, as the page says

    bocws_logger = logging.getLogger("bocws")
    level = bocws_logger.level
    try:
        example("websocket.md", "setLevel(logging.ERROR)")
        with TestClient(serve(view)).websocket_connect("/") as session:
            assert session.receive_text() == "hi"
            assert close_of(session) == (1008, "")
    finally:
        bocws_logger.setLevel(level)
    assert bocws_messages(caplog) == []


# api.md


def test_api_websocket_disconnect_is_starlettes_with_the_documented_signature() -> None:
    stub = example("api.md", "class WebSocketDisconnect(Exception):")["WebSocketDisconnect"]
    assert WebSocketDisconnect is starlette.websockets.WebSocketDisconnect
    assert inspect.signature(stub.__init__, eval_str=True) == inspect.signature(
        WebSocketDisconnect.__init__, eval_str=True
    )


# bocadillo.md


def test_bocadillo_json_echo_is_a_valid_view() -> None:
    app = fragments("bocadillo.md", '@app.websocket_route("/echo", value_type="json")')
    with TestClient(app).websocket_connect("/echo") as session:
        session.send_json({"a": 1})
        assert session.receive_json() == {"a": 1}


def test_bocadillo_lazy_accept_lets_a_view_reject_on_a_header() -> None:
    app = fragments("bocadillo.md", '"/private"')
    assert refusal(app, "/private") == 403
    with TestClient(app).websocket_connect("/private", headers={"api-key": "s3cret"}) as session:
        assert session.receive_text() == "welcome"


def test_bocadillo_migrated_chat_relays_and_drops_members_that_left(
    capsys: pytest.CaptureFixture[str],
) -> None:
    namespace = example("bocadillo.md", "rooms: dict[str, set] = {}")
    app, rooms = namespace["app"], namespace["rooms"]
    gone = GoneMember()
    rooms["lobby"] = {gone}
    headers = {"api-key": "s3cret"}
    with TestClient(app) as test_client:
        assert test_client.get("/").text == "Connect to /rooms/{name}"
        with pytest.raises(WebSocketDisconnect) as info, test_client.websocket_connect("/rooms/x"):
            pass  # pragma: no cover - the handshake is refused
        assert info.value.code == 403
        with (
            test_client.websocket_connect("/rooms/lobby?nickname=ada", headers=headers) as ada,
            test_client.websocket_connect("/rooms/lobby?nickname=bob", headers=headers) as bob,
        ):
            ada.send_json("hi")
            assert ada.receive_json() == bob.receive_json() == {"from": "ada", "text": "hi"}
            ada.send_json("again")  # relayed once "hi" went to every member
            assert ada.receive_json() == bob.receive_json() == {"from": "ada", "text": "again"}
            assert gone not in rooms["lobby"]
    assert rooms["lobby"] == set()
    assert capsys.readouterr().out == "ready\n"


# testing.md


def test_testing_page_tests_pass_under_pytest(tmp_path: Path) -> None:
    files = {
        "app.py": block("testing.md", 'raise RuntimeError("boom")'),
        "test_first.py": block("testing.md", "# the application under test, below"),
        "test_client.py": block("testing.md", "def client():"),
        "test_live.py": block("testing.md", "async def server_url():"),
    }
    for name, found in files.items():
        (tmp_path / name).write_text(found.code, encoding="utf-8")
    (tmp_path / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    tests = sum(
        len(re.findall(r"^(?:async )?def test_", found.code, re.M)) for found in files.values()
    )
    env = {name: value for name, value in os.environ.items() if name != "PYTEST_ADDOPTS"}
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"  # only the plugin the page relies on
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1"  # the page's client talks to 127.0.0.1
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "error"]
    command += ["-p", "anyio.pytest_plugin"]  # what the page's async tests run with
    result = subprocess.run(
        command,
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert re.search(rf"\b{tests} passed\b", result.stdout), output


# Limits, timeouts and origins (websocket.md, views.md, reliability.md).


def test_websocket_max_message_size_example_closes_1009() -> None:
    app = example("websocket.md", "max_message_size=4096)")["app"]
    with TestClient(app).websocket_connect("/") as session:
        session.send_json({"a": 1})
        assert session.receive_json() == {"a": 1}
        session.send_text(json.dumps("x" * 5000))
        assert close_of(session) == (1009, "message too big")
    assert documented("websocket.md", "closes the connection with 1009 (message too big")


def test_websocket_receive_timeout_example_asks_again() -> None:
    app = example("websocket.md", "receive_text(timeout=10)")["app"]
    with TestClient(app).websocket_connect("/") as session:
        session.send_text("ada")
        assert session.receive_text() == "hello ada"


def test_views_limits_example_applies_route_and_app_settings() -> None:
    app = example("views.md", "idle_timeout=300,")["app"]
    endpoint = app.routes[0].app
    assert endpoint.options["max_message_size"] == 4096
    assert endpoint.options["idle_timeout"] == 300
    headers = {"origin": "https://chat.example.com"}
    with TestClient(app).websocket_connect("/rooms/a/lines", headers=headers) as session:
        session.send_json({"text": "hi"})
        assert session.receive_json() == {"room": "a", "text": "hi"}
        session.send_text(json.dumps({"text": "x" * 5000}))
        assert close_of(session) == (1009, "message too big")
    assert refusal_with(app, "/rooms/a/lines", "https://evil.test") == 403


def refusal_with(app: ASGIApp, path: str, origin: str) -> int:
    """The code TestClient reports for a handshake from `origin` that `app` refuses."""
    headers = {"origin": origin}
    with (
        pytest.raises(WebSocketDisconnect) as info,
        TestClient(app).websocket_connect(path, headers=headers),
    ):
        pass  # pragma: no cover - the handshake is refused
    return info.value.code


def test_reliability_origin_examples_follow_the_documented_rule() -> None:
    app = example("reliability.md", '"https://*.example.com"])')["app"]

    async def echo(ws: Any) -> None:
        await ws.send(await ws.receive())

    app.add_websocket_route("/ws", echo)
    for origin in ("https://chat.example.com", "https://a.b.example.com", "http://testserver"):
        with TestClient(app).websocket_connect("/ws", headers={"origin": origin}) as session:
            session.send_text("ok")
            assert session.receive_text() == "ok"
    for origin in ("https://example.com", "https://evil.test", "null"):
        assert refusal_with(app, "/ws", origin) == 403
    admin = example("reliability.md", "async def admin(ws)")["app"]
    headers = {"origin": "https://admin.example.com"}
    with TestClient(admin).websocket_connect("/admin", headers=headers) as session:
        assert session.receive_text() == "hello, admin"
    assert refusal_with(admin, "/admin", "https://example.com") == 403


@pytest.mark.anyio
async def test_reliability_feed_learns_at_once_that_its_client_left() -> None:
    namespace = example("reliability.md", "async def publish_updates(ws)")
    ended = asyncio.Event()
    feed = namespace["feed"]

    async def watched(ws: Any) -> None:
        try:
            await feed(ws)
        finally:
            ended.set()

    app = App()
    app.add_websocket_route("/feed", watched, caught_close_codes=all)
    async with running_server(app, "websockets-sansio") as base:  # type: ignore[arg-type]
        async with client(base + "/feed"):
            pass  # connects, then leaves long before the first update (60 s)
        started = asyncio.get_running_loop().time()
        await asyncio.wait_for(ended.wait(), TIMEOUT)
    assert asyncio.get_running_loop().time() - started < 1


# browsers.md


def test_browsers_private_closes_4001_with_a_reason_a_page_can_read() -> None:
    test_client = TestClient(fragments("browsers.md", '"/private"'))
    with (
        test_client.websocket_connect("/private?token=nope") as session,
        pytest.raises(WebSocketDisconnect) as info,
    ):
        session.receive_text()
    assert (info.value.code, info.value.reason) == (4001, "unauthorized: log in first")
    with test_client.websocket_connect("/private?token=secret") as session:
        session.send_text("hi")
        assert session.receive_text() == "hi"


def test_browsers_feed_picks_the_first_offered_subprotocol_it_speaks() -> None:
    test_client = TestClient(fragments("browsers.md", '"/feed"'))
    with test_client.websocket_connect("/feed", subprotocols=["v3", "v2", "v1"]) as session:
        assert session.accepted_subprotocol == "v2"
        assert session.receive_text() == "speaking v2"


def test_browsers_goodbye_reports_the_pages_close_code(capsys: pytest.CaptureFixture[str]) -> None:
    test_client = TestClient(fragments("browsers.md", '"/goodbye"'))
    with test_client.websocket_connect("/goodbye") as session:
        session.send_text("hi")
        assert session.receive_text() == "hi"
        session.close(4002, "bye")
    assert capsys.readouterr().out == "the page closed with 4002 bye\n"


def test_browsers_bytes_route_echoes_every_byte() -> None:
    with TestClient(fragments("browsers.md", '"/bytes"')).websocket_connect("/bytes") as session:
        session.send_bytes(bytes(range(256)))
        assert session.receive_bytes() == bytes(range(256))


# scaling.md


def test_scaling_room_relays_each_message_to_everyone_in_the_room() -> None:
    app = example("scaling.md", "broadcast.room(ws")["app"]
    with (
        TestClient(app) as test_client,  # its startup connects the broadcast (memory://)
        test_client.websocket_connect("/rooms/lobby") as ana,
        test_client.websocket_connect("/rooms/lobby") as bob,
        test_client.websocket_connect("/rooms/kitchen") as eve,
    ):
        ana.send_json({"text": "hi"})
        assert bob.receive_json() == {"text": "hi"}
        assert ana.receive_json() == {"text": "hi"}
        eve.send_json({"text": "only the kitchen"})
        assert eve.receive_json() == {"text": "only the kitchen"}  # nothing from the lobby


# typed.md


def test_typed_first_example_answers_with_models() -> None:
    app = example("typed.md", "class Question(BaseModel)")["app"]
    with TestClient(app).websocket_connect("/ask") as session:
        session.send_text('{"text": "how are you"}')
        assert json.loads(session.receive_text()) == {"text": "HOW ARE YOU", "words": 3}
        session.send_text('{"lang": "fr"}')  # no text: the default policy closes 1007
        with pytest.raises(WebSocketDisconnect) as closed:
            session.receive_text()
    assert closed.value.code == 1007
    assert closed.value.reason == "invalid message: text: Field required"


def test_typed_msgspec_example_reads_a_list_of_structs() -> None:
    app = example("typed.md", "class Point(msgspec.Struct)")["app"]
    with TestClient(app).websocket_connect("/centre") as session:
        session.send_bytes(b'[{"x": 0, "y": 0}, {"x": 2, "y": 4}]')  # a binary frame too
        assert json.loads(session.receive_text()) == {"x": 1.0, "y": 2.0}


def test_typed_reply_example_answers_as_documented() -> None:
    namespace = example("typed.md", "class Move(BaseModel)")
    with TestClient(namespace["app"]).websocket_connect("/moves") as session:
        session.send_text('{"x": 1, "y": "up"}')
        [documented] = [
            json.loads(found)
            for found in re.findall(r"```json\n(.*?)```", (DOCS / "typed.md").read_text(), re.S)
            if "int_parsing" in found
        ]
        assert json.loads(session.receive_text()) == documented
        session.send_text('{"x": 1, "y": 2}')  # the connection goes on
        assert json.loads(session.receive_text()) == {"x": 2, "y": 1}


def test_typed_function_example_extends_the_default_frame() -> None:
    app = example("typed.md", "async def tell(ws")["app"]
    with TestClient(app).websocket_connect("/strict") as session:
        session.send_text("{oops")
        reply = json.loads(session.receive_text())
        assert reply["type"] == "error"
        assert reply["hint"] == "see /docs/moves"
        assert reply["detail"][0]["type"] == "json_invalid"
        session.send_text("[1]")
        assert json.loads(session.receive_text()) == {"got": [1]}


# rpc.md


def rpc_call(session: WebSocketTestSession, method: str, params: Any, call_id: int = 1) -> Any:
    session.send_text(
        json.dumps({"jsonrpc": "2.0", "method": method, "params": params, "id": call_id})
    )
    return json.loads(session.receive_text())


def test_rpc_first_example_adds_and_notifies() -> None:
    app = example("rpc.md", '@rpc.method("chat.say")')["app"]
    with TestClient(app).websocket_connect("/rpc") as session:
        assert rpc_call(session, "add", [20, 22]) == {"jsonrpc": "2.0", "result": 42, "id": 1}
        assert rpc_call(session, "add", {"a": 20, "b": 22})["result"] == 42
        said = rpc_call(session, "chat.say", {"text": "hi"}, 2)
        assert said == {"jsonrpc": "2.0", "method": "chat.said", "params": {"text": "hi"}}
        assert json.loads(session.receive_text()) == {"jsonrpc": "2.0", "result": None, "id": 2}


def test_rpc_withdraw_answers_its_own_error() -> None:
    rpc = example("rpc.md", "async def withdraw(")["rpc"]
    app = App()
    app.add_websocket_route("/rpc", rpc)
    with TestClient(app).websocket_connect("/rpc") as session:
        assert rpc_call(session, "withdraw", ["ada", 4])["result"] == 6
        assert rpc_call(session, "withdraw", ["ada", 100])["error"] == {
            "code": 1001,
            "message": "insufficient funds",
            "data": {"balance": 6},
        }


def test_rpc_delete_everything_asks_the_client_first() -> None:
    rpc = example("rpc.md", "async def delete_everything(")["rpc"]
    app = App()
    app.add_websocket_route("/rpc", rpc)
    with TestClient(app).websocket_connect("/rpc") as session:
        for confirmed, answer in [(False, {"code": 1, "message": "not confirmed"}), (True, None)]:
            session.send_text('{"jsonrpc": "2.0", "method": "delete_everything", "id": 7}')
            asked = json.loads(session.receive_text())
            assert asked["method"] == "confirm"
            session.send_text(
                json.dumps({"jsonrpc": "2.0", "result": confirmed, "id": asked["id"]})
            )
            got = json.loads(session.receive_text())
            assert got.get("error") == answer
            assert got["id"] == 7
        assert got["result"] == "deleted"


def test_rpc_hooks_refuse_without_the_token_and_keep_the_clients() -> None:
    namespace = example("rpc.md", "async def joined(")
    app = App()
    app.add_websocket_route("/rpc", namespace["rpc"])
    client = TestClient(app)
    with pytest.raises(WebSocketDisconnect), client.websocket_connect("/rpc"):
        pass  # pragma: no cover - refused
    with client.websocket_connect("/rpc?token=s3cret") as session:
        session.send_text('{"jsonrpc": "2.0", "method": "rpc.discover", "id": 1}')
        assert json.loads(session.receive_text())["result"]["openrpc"] == "1.3.2"
        assert len(namespace["clients"]) == 1
    assert namespace["clients"] == {}
