"""`App`: routes, mounts, middleware and lifespan, through Starlette's TestClient; the
refusals and closing codes also against a real uvicorn (see `test_server.py`)."""

from __future__ import annotations

import inspect
import logging
import re
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, NamedTuple

import anyio
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Match, Mount, Route, Router, WebSocketRoute
from starlette.testclient import TestClient
from starlette.types import Message, Receive, Scope, Send

from bocws import App, ViewEndpoint, WebSocket, WebSocketDisconnect, WebSocketView, websocket_view
from bocws.app import _Router

from .fake import CONNECT, connected, websocket_scope
from .live_server import IMPLEMENTATIONS, client, close_frame, recv, refused, running_server

REFUSED = {"type": "websocket.close", "code": 403, "reason": ""}


def refusal_code(app: App, path: str) -> int:
    """Connect to `path`, which must refuse the handshake; return the close code it used."""
    with pytest.raises(WebSocketDisconnect) as info, TestClient(app).websocket_connect(path):
        pass  # pragma: no cover
    return info.value.code


def closed_after(client: TestClient, path: str, *greeting: str) -> tuple[int, str]:
    """Connect to `path`, receive `greeting`'s messages, then the close: its code and
    reason."""
    with client.websocket_connect(path) as session:
        assert [session.receive_text() for _ in greeting] == list(greeting)
        with pytest.raises(WebSocketDisconnect) as closed:
            session.receive_text()
    return closed.value.code, closed.value.reason


async def echo(ws: WebSocket) -> None:
    async for message in ws:
        await ws.send(message)


# WebSocket routes.


def test_websocket_route_registers_the_view_and_returns_it_unchanged() -> None:
    app = App()
    registered = app.websocket_route("/echo")(echo)
    assert registered is echo
    with TestClient(app).websocket_connect("/echo") as session:
        session.send_text("hé")
        assert session.receive_text() == "hé"


def test_websocket_route_returns_a_class_view_unchanged() -> None:
    class Echo(WebSocketView):
        async def on_message(self, ws: WebSocket, message: Any) -> None:
            await ws.send(message)

    app = App()
    assert app.websocket_route("/echo", value_type="json")(Echo) is Echo
    with TestClient(app).websocket_connect("/echo") as session:
        session.send_json({"a": [1]})
        assert session.receive_json() == {"a": [1]}


def test_websocket_route_value_type_reaches_the_websocket() -> None:
    app = App()
    app.websocket_route("/json", value_type="json")(echo)
    with TestClient(app).websocket_connect("/json") as session:
        session.send_json({"n": 1, "é": None})
        assert session.receive() == {"type": "websocket.send", "text": '{"n":1,"é":null}'}


def test_websocket_route_receive_and_send_types_reach_the_websocket() -> None:
    app = App()

    @app.websocket_route("/upper", receive_type="bytes", send_type="text")
    async def upper(ws: WebSocket) -> None:
        await ws.send((await ws.receive()).decode().upper())

    with TestClient(app).websocket_connect("/upper") as session:
        session.send_bytes(b"abc")
        assert session.receive_text() == "ABC"


def test_websocket_route_without_auto_accept_refuses_a_view_that_does_not_accept() -> None:
    app = App()

    @app.websocket_route("/manual", auto_accept=False)
    async def manual(ws: WebSocket) -> None:
        pass

    assert refusal_code(app, "/manual") == 1000


def test_websocket_route_caught_close_codes_end_the_views_loop_quietly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="bocws")
    app = App()
    ended = []

    @app.websocket_route("/wait", caught_close_codes=[4000])
    async def wait(ws: WebSocket) -> None:
        async for _ in ws:
            pass  # pragma: no cover - the client sends nothing
        ended.append("after the loop")

    with TestClient(app).websocket_connect("/wait") as session:
        session.close(4000)  # the view returns quietly: nothing is raised on exit
    assert ended == ["after the loop"]
    assert [r.getMessage() for r in caplog.records if r.name == "bocws"] == []


def test_websocket_route_uncaught_close_code_reaches_the_view_then_ends_with_one_info_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="bocws")
    app = App()
    seen = []

    @app.websocket_route("/wait")
    async def wait(ws: WebSocket) -> None:
        try:
            async for _ in ws:
                pass  # pragma: no cover - the client sends nothing
        except WebSocketDisconnect as disconnect:
            seen.append(disconnect.code)  # the view can react to it
            raise

    with TestClient(app).websocket_connect("/wait") as session:
        session.close(4000)  # the client's departure: nothing comes out when the session ends
    assert seen == [4000]
    [record] = [r for r in caplog.records if r.name == "bocws"]
    assert (record.levelno, record.getMessage()) == (
        logging.INFO,
        "'/wait': the client left with 4000",
    )


def test_websocket_route_passes_converted_path_and_query_parameters() -> None:
    app = App()

    @app.websocket_route("/items/{item_id:int}/{slug}", value_type="json")
    async def item(ws: WebSocket, item_id: int, slug: str, n: int = 1) -> None:
        await ws.send({"item_id": item_id, "slug": slug, "n": n})

    with TestClient(app).websocket_connect("/items/3/hello?n=4") as session:
        assert session.receive_json() == {"item_id": 3, "slug": "hello", "n": 4}


def test_websocket_route_refuses_a_bad_query_parameter_with_403() -> None:
    app = App()

    @app.websocket_route("/count")
    async def count(ws: WebSocket, n: int) -> None:
        raise AssertionError("not called")  # pragma: no cover

    assert refusal_code(app, "/count?n=many") == 403


def test_a_view_not_taking_a_path_parameter_is_a_type_error_at_registration() -> None:
    app = App()

    async def view(ws: WebSocket, room: str) -> None:
        pass

    with pytest.raises(TypeError, match=r"does not take the path parameter\(s\) user of '/"):
        app.websocket_route("/rooms/{room}/{user}")(view)
    assert app.routes == []


def test_var_keyword_and_class_views_may_take_any_path_parameter() -> None:
    app = App()

    @app.websocket_route("/a/{room}/{user}", value_type="json")
    async def params(ws: WebSocket, **params: Any) -> None:
        await ws.send(params)

    @app.websocket_route("/b/{room}", value_type="json")
    class Room(WebSocketView):
        async def on_connect(self, ws: WebSocket) -> None:
            await ws.send(ws.path_params)

    test_client = TestClient(app)
    with test_client.websocket_connect("/a/lobby/ana") as session:
        assert session.receive_json() == {"room": "lobby", "user": "ana"}
    with test_client.websocket_connect("/b/lobby") as session:
        assert session.receive_json() == {"room": "lobby"}


def test_stacking_over_websocket_view_merges_options() -> None:
    app = App()

    @app.websocket_route("/wait", value_type="json")
    @websocket_view(caught_close_codes=[4000])
    async def wait(ws: WebSocket) -> None:
        await ws.send(await ws.receive())
        await ws.receive()

    assert isinstance(wait, ViewEndpoint)  # returned unchanged
    [route] = app.routes
    assert isinstance(route, WebSocketRoute)
    endpoint = route.app
    assert isinstance(endpoint, ViewEndpoint)
    assert endpoint.options["value_type"] == "json"
    assert set(endpoint.options["caught_close_codes"]) == {4000}
    with TestClient(app).websocket_connect("/wait") as session:
        session.send_json([1])
        assert session.receive_json() == [1]
        session.close(4000)


def test_route_options_override_those_of_a_stacked_websocket_view() -> None:
    app = App()

    @app.websocket_route("/x", value_type="bytes", caught_close_codes=all)
    @websocket_view(value_type="json", caught_close_codes=[4000])
    async def view(ws: WebSocket) -> None:
        pass

    endpoint = app.routes[0].app  # type: ignore[attr-defined]
    assert endpoint.options["value_type"] == "bytes"
    assert 4999 in endpoint.options["caught_close_codes"]
    assert view.options["value_type"] == "json"  # the stacked endpoint is not changed


def test_route_options_override_class_attributes() -> None:
    class View(WebSocketView):
        value_type = "json"
        caught_close_codes = (4000,)

    app = App()
    app.websocket_route("/x", value_type="bytes")(View)
    endpoint = app.routes[0].app  # type: ignore[attr-defined]
    assert endpoint.options["value_type"] == "bytes"
    assert set(endpoint.options["caught_close_codes"]) == {4000}


def test_a_subclass_direction_overrides_an_inherited_value_type_for_its_direction() -> None:
    class Base(WebSocketView):
        value_type = "json"
        max_message_size = 100

        async def on_message(self, ws: WebSocket, message: Any) -> None:
            await ws.send({"got": message.decode()})

    class Child(Base):
        receive_type = "bytes"

    class Grandchild(Child):
        value_type = "text"

    options = websocket_view(Child).options
    assert (options["receive_type"], options["send_type"]) == ("bytes", "json")
    assert options["max_message_size"] == 100
    options = websocket_view(Grandchild).options
    assert (options["value_type"], options["receive_type"]) == ("text", "bytes")
    app = App()
    app.add_websocket_route("/x", Child)
    with TestClient(app).websocket_connect("/x") as session:
        session.send_bytes(b"hi")
        assert session.receive_json() == {"got": "hi"}


class ManualAccept(WebSocketView):
    auto_accept = False


@pytest.mark.parametrize(
    "view",
    [ManualAccept, websocket_view(ManualAccept)],
    ids=["class-attribute", "websocket_view-option"],
)
def test_an_explicit_route_option_equal_to_the_default_still_overrides(view: Any) -> None:
    app = App()
    app.websocket_route("/x", auto_accept=True)(view)
    endpoint = app.routes[0].app  # type: ignore[attr-defined]
    assert endpoint.options["auto_accept"] is True


def test_a_sync_view_is_a_type_error_at_registration() -> None:
    def sync_view(ws: WebSocket) -> None:
        pass

    app = App()
    with pytest.raises(TypeError, match="sync_view' must be an async function"):
        app.websocket_route("/x")(sync_view)  # type: ignore[type-var]
    assert app.routes == []


def test_add_websocket_route_takes_a_view_without_the_decorator() -> None:
    app = App()
    app.add_websocket_route("/echo", echo, name="the-echo", value_type="json")
    assert app.url_path_for("the-echo") == "/echo"
    with TestClient(app).websocket_connect("/echo") as session:
        session.send_json({"a": 1})
        assert session.receive_json() == {"a": 1}


def test_routes_given_to_the_constructor_are_served() -> None:
    app = App(routes=[WebSocketRoute("/echo", websocket_view(echo))])
    with TestClient(app).websocket_connect("/echo") as session:
        session.send_text("hi")
        assert session.receive_text() == "hi"


# HTTP routes.


def test_route_registers_an_http_endpoint_and_returns_it_unchanged() -> None:
    app = App()

    async def home(request: Request) -> Response:
        return PlainTextResponse(f"hello {request.query_params['name']}")

    assert app.route("/")(home) is home
    response = TestClient(app).get("/?name=ana")
    assert (response.status_code, response.text) == (200, "hello ana")


def test_route_methods_restrict_the_http_methods() -> None:
    app = App()

    @app.route("/login", methods=["POST"])
    async def login(request: Request) -> Response:
        return PlainTextResponse("in")

    test_client = TestClient(app)
    assert test_client.post("/login").status_code == 200
    assert test_client.get("/login").status_code == 405


# Names.


def test_url_path_for_uses_the_function_name_by_default() -> None:
    app = App()

    @app.websocket_route("/rooms/{room}")
    async def chat(ws: WebSocket, room: str) -> None:
        pass

    @app.websocket_route("/echo")
    class Echo(WebSocketView):
        pass

    @app.route("/")
    async def home(request: Request) -> Response:
        return PlainTextResponse("")  # pragma: no cover

    assert app.url_path_for("chat", room="lobby") == "/rooms/lobby"
    assert app.url_path_for("Echo") == "/echo"
    assert app.url_path_for("home") == "/"


def test_url_path_for_uses_explicit_names() -> None:
    app = App()

    @app.websocket_route("/items/{item_id:int}", name="item")
    async def view(ws: WebSocket, item_id: int) -> None:
        pass

    @app.route("/about", name="about-page")
    async def about(request: Request) -> Response:
        return PlainTextResponse("")  # pragma: no cover

    assert app.url_path_for("item", item_id=3) == "/items/3"
    assert app.url_path_for("about-page") == "/about"


# Mounts and middleware.


def test_a_mounted_app_passes_path_parameters_from_both_levels() -> None:
    inner = App()

    @inner.websocket_route("/users/{user}", value_type="json")
    async def member(ws: WebSocket, room: str, user: str) -> None:
        await ws.send({"room": room, "user": user, "path": ws.url.path, "root": ws["root_path"]})

    outer = App()
    outer.mount("/rooms/{room}", inner, name="rooms")
    with TestClient(outer).websocket_connect("/rooms/lobby/users/ana") as session:
        assert session.receive_json() == {
            "room": "lobby",
            "user": "ana",
            "path": "/rooms/lobby/users/ana",
            "root": "/rooms/lobby",
        }
    assert outer.url_path_for("rooms:member", room="r", user="u") == "/rooms/r/users/u"


def test_a_mounted_app_refuses_its_unmatched_paths() -> None:
    inner = App()
    inner.websocket_route("/echo")(echo)
    outer = App()
    outer.mount("/sub", inner)
    with TestClient(outer).websocket_connect("/sub/echo") as session:
        session.send_text("hi")
        assert session.receive_text() == "hi"
    assert refusal_code(outer, "/sub/nowhere") == 403


def test_session_middleware_gives_the_view_a_session() -> None:
    app = App()
    app.add_middleware(SessionMiddleware, secret_key="test-secret")

    @app.route("/login")
    async def login(request: Request) -> Response:
        request.session["user"] = "ana"
        return PlainTextResponse("in")

    @app.websocket_route("/whoami")
    async def whoami(ws: WebSocket) -> None:
        await ws.send(ws.session.get("user", "anonymous"))

    test_client = TestClient(app)
    with test_client.websocket_connect("/whoami") as session:
        assert session.receive_text() == "anonymous"
    test_client.get("/login")
    with test_client.websocket_connect("/whoami") as session:
        assert session.receive_text() == "ana"


def test_middleware_given_to_the_constructor_wraps_the_views() -> None:
    app = App(middleware=[Middleware(SessionMiddleware, secret_key="test-secret")])

    @app.websocket_route("/visits", value_type="json")
    async def visits(ws: WebSocket) -> None:
        await ws.send(dict(ws.session))

    with TestClient(app).websocket_connect("/visits") as session:
        assert session.receive_json() == {}


class PassThrough:
    """Middleware of the user's that changes nothing."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


class Teapot(Exception):
    pass


def handlers_app(middleware: Sequence[Middleware]) -> App:
    """An app whose WebSocket routes raise, with handlers for some of the errors."""
    from starlette.exceptions import HTTPException, WebSocketException
    from starlette.websockets import WebSocket as StarletteWebSocket

    def teapot(request: Any, error: Exception) -> PlainTextResponse:
        return PlainTextResponse("short and stout", status_code=418)

    async def closing(websocket: StarletteWebSocket, error: Exception) -> None:
        await websocket.close(4002, "handled")

    class Handled(Exception):
        pass

    app = App(
        middleware=middleware,
        exception_handlers={Teapot: teapot, 418: teapot, Handled: closing},
    )

    @app.websocket_route("/teapot")
    async def raises_teapot(ws: WebSocket) -> None:
        raise Teapot

    @app.websocket_route("/late")
    async def raises_late(ws: WebSocket) -> None:
        await ws.send("hi")
        raise HTTPException(418)

    async def starlette_refusal(websocket: StarletteWebSocket) -> None:
        await websocket.accept()
        raise WebSocketException(4001, "refused")

    async def starlette_handled(websocket: StarletteWebSocket) -> None:
        await websocket.accept()
        await websocket.send_text("hi")
        raise Handled

    async def starlette_unhandled(websocket: StarletteWebSocket) -> None:
        await websocket.accept()
        raise KeyError("nobody handles this")

    app.router.routes += [
        WebSocketRoute("/starlette/refusal", starlette_refusal),
        WebSocketRoute("/starlette/handled", starlette_handled),
        WebSocketRoute("/starlette/unhandled", starlette_unhandled),
    ]
    return app


@pytest.mark.parametrize("middleware", [[], [Middleware(PassThrough)]], ids=["bare", "middleware"])
def test_exception_handlers_take_websocket_errors_with_or_without_middleware(
    middleware: Sequence[Middleware],
) -> None:
    # Without middleware of the user's, WebSocket connections skip Starlette's
    # ExceptionMiddleware for a copy that keeps their send: the handlers behave alike.
    from starlette.testclient import WebSocketDenialResponse

    client = TestClient(handlers_app(middleware))
    with pytest.raises(WebSocketDenialResponse) as denied, client.websocket_connect("/teapot"):
        pass  # pragma: no cover
    assert (denied.value.status_code, denied.value.text) == (418, "short and stout")
    assert closed_after(client, "/late", "hi")[0] == 1011
    assert closed_after(client, "/starlette/refusal") == (4001, "refused")
    assert closed_after(client, "/starlette/handled", "hi") == (4002, "handled")
    with (
        pytest.raises(KeyError, match="nobody handles this"),
        client.websocket_connect("/starlette/unhandled") as session,
    ):
        session.receive_text()


@pytest.mark.anyio
@pytest.mark.parametrize("middleware", [[], [Middleware(PassThrough)]], ids=["bare", "middleware"])
async def test_a_views_sends_reach_the_servers_send_directly_without_middleware(
    middleware: Sequence[Middleware],
) -> None:
    import sys

    callers: list[Any] = []
    server = connected()

    async def send(message: Message) -> None:
        callers.append(sys._getframe(1).f_code)
        await server.send(message)

    app = App(middleware=middleware)

    @app.websocket_route("/ws")
    async def greet(ws: WebSocket) -> None:
        await ws.send("hi")

    await app(server.scope, server.receive, send)
    assert server.types() == ["websocket.accept", "websocket.send", "websocket.close"]
    # The text message's send: from send_text() itself, or through Starlette's
    # ExceptionMiddleware's wrapper once the app has middleware of the user's.
    sent_by_the_view = callers[1] is WebSocket.send_text.__code__
    assert sent_by_the_view == (not middleware)


def test_an_unhandled_websocket_error_keeps_no_reference_cycle_through_the_handling() -> None:
    import gc
    import weakref

    app = App()
    errors: list[weakref.ref[BaseException]] = []

    class Boom(Exception):
        pass

    @app.websocket_route("/boom")
    async def boom(ws: WebSocket) -> None:
        raise Boom

    async def run() -> None:
        server = connected(path="/boom")
        try:
            await app(server.scope, server.receive, server.send)
        except Boom as error:
            errors.append(weakref.ref(error))

    gc.disable()
    try:
        anyio.run(run)
        assert len(errors) == 1
        assert errors[0]() is None  # freed as soon as the last reference went
    finally:
        gc.enable()


# Lifespan.


def test_startup_and_shutdown_hooks_run_in_order_around_the_lifespan() -> None:
    events: list[str] = []

    @asynccontextmanager
    async def lifespan(app: App) -> AsyncIterator[dict[str, Any]]:
        events.append("lifespan enter")
        yield {"db": "connected"}
        events.append("lifespan exit")

    app = App(lifespan=lifespan)

    def sync_hook(name: str) -> Any:
        return lambda: events.append(name)

    async def first_async_startup() -> None:
        events.append("startup async")

    async def async_shutdown() -> None:
        events.append("shutdown async")

    assert app.on_startup(first_async_startup) is first_async_startup
    app.on_startup(sync_hook("startup sync"))
    hook = sync_hook("shutdown sync")
    assert app.on_shutdown(hook) is hook
    app.on_shutdown(async_shutdown)

    with TestClient(app):
        assert events == ["startup async", "startup sync", "lifespan enter"]
    assert events == [
        "startup async",
        "startup sync",
        "lifespan enter",
        "lifespan exit",
        "shutdown sync",
        "shutdown async",
    ]


def test_hooks_run_without_a_user_lifespan() -> None:
    events: list[str] = []
    app = App()
    app.on_startup(lambda: events.append("startup"))
    app.on_shutdown(lambda: events.append("shutdown"))
    TestClient(app).get("/nowhere")  # outside `with`: no lifespan
    assert events == []
    with TestClient(app):
        assert events == ["startup"]
    assert events == ["startup", "shutdown"]


def test_the_lifespan_gets_the_app_and_its_state_reaches_views_and_requests() -> None:
    seen: list[Any] = []

    @asynccontextmanager
    async def lifespan(app: App) -> AsyncIterator[dict[str, Any]]:
        seen.append(app)
        yield {"db": "connected"}

    app = App(lifespan=lifespan)

    @app.websocket_route("/db")
    async def db(ws: WebSocket) -> None:
        await ws.send(ws.state.db)

    @app.route("/db")
    async def db_http(request: Request) -> Response:
        return PlainTextResponse(request.state.db)

    with TestClient(app) as test_client:
        assert seen == [app]
        with test_client.websocket_connect("/db") as session:
            assert session.receive_text() == "connected"
        assert test_client.get("/db").text == "connected"


@asynccontextmanager
async def failing_lifespan(app: App) -> AsyncIterator[None]:
    raise RuntimeError("no database")
    yield  # pragma: no cover


def failing_hook() -> None:
    raise RuntimeError("no database")


@pytest.mark.parametrize(
    ("lifespan", "startup"),
    [(failing_lifespan, None), (None, failing_hook)],
    ids=["lifespan", "startup-hook"],
)
def test_shutdown_hooks_do_not_run_when_the_start_failed(
    lifespan: Any, startup: Callable[[], None] | None
) -> None:
    events: list[str] = []
    app = App(lifespan=lifespan)
    if startup is not None:
        app.on_startup(startup)
    app.on_shutdown(lambda: events.append("shutdown"))
    with pytest.raises(RuntimeError, match="no database"), TestClient(app):
        pass  # pragma: no cover
    assert events == []


def test_shutdown_hooks_run_after_the_lifespan_exits() -> None:
    events: list[str] = []

    @asynccontextmanager
    async def lifespan(app: App) -> AsyncIterator[None]:
        events.append("lifespan enter")
        yield
        events.append("lifespan exit")

    app = App(lifespan=lifespan)
    app.on_startup(lambda: events.append("startup"))
    app.on_shutdown(lambda: events.append("shutdown"))
    with TestClient(app):
        assert events == ["startup", "lifespan enter"]
    assert events == ["startup", "lifespan enter", "lifespan exit", "shutdown"]


# WebSocket connections no WebSocket route matches.


def app_with_an_http_route(called: list[str]) -> App:
    app = App()

    @app.route("/page")
    async def page(request: Request) -> Response:
        called.append("page")
        return PlainTextResponse("page")

    @app.websocket_route("/echo")
    async def ws_echo(ws: WebSocket) -> None:
        await echo(ws)

    return app


@pytest.mark.anyio
@pytest.mark.parametrize("path", ["/nowhere", "/page", "/echo/extra"])
async def test_an_unmatched_websocket_path_is_refused_before_accept(path: str) -> None:
    called: list[str] = []
    server = connected(path=path)
    server.scope["path_params"] = {}
    await app_with_an_http_route(called)(server.scope, server.receive, server.send)
    # The refusal reject() sends: a close before accept, which servers answer with HTTP 403.
    assert server.sent == [{"type": "websocket.close", "code": 403, "reason": ""}]
    assert called == []


def test_an_http_only_path_refuses_a_websocket_and_does_not_call_the_http_view() -> None:
    called: list[str] = []
    app = app_with_an_http_route(called)
    assert refusal_code(app, "/page") == 403
    assert called == []
    assert TestClient(app).get("/page").text == "page"  # the route itself works
    assert called == ["page"]


# Routing: App's router against Starlette's `Router` with the same routes.
#
# App's router passes over a `WebSocketRoute` whose static part is not in the path
# without running its regular expression; it must reach the same route, with the same
# parameters and scope, as Starlette's for any route table and path. The endpoints
# record what routing gave them; nothing runs over a network.

ROUTING_EXAMPLES = 300

#: Pattern parts: literals sharing prefixes ("a", "ab"), digits for `{:int}`, a brace
#: that is not a parameter ("{1}"), and parameters (`%s` is the parameter's name).
PATTERN_PARTS = ["a", "ab", "b", "A", "7", "12", "{1}", "{%s}", "{%s:int}", "{%s:path}", "x-{%s}"]
MOUNT_PARTS = ["a", "ab", "b", "7", "{%s}", "{%s:int}"]
REQUEST_SEGMENTS = ["a", "ab", "b", "A", "7", "12", "ab7", "{1}", "x-1", "x-", ""]
ROOT_PATHS = ["", "/a", "/root"]
#: Values for a pattern's parameters when a request path is made from it.
PARAMETER_VALUES = {"": ["7", "ab", "A", "x-1"], ":int": ["7", "12"], ":path": ["", "a/7", "b/"]}
PARAMETER = re.compile(r"{p[0-9]+(:int|:path)?}")
#: What may be done to a path made from a pattern, so that it almost matches.
TWEAKS = ["none", "none", "toggle-slash", "extend", "upper", "upper", "shorten"]


class Reached:
    """An ASGI endpoint that records, in the scope, what routing handed it."""

    def __init__(self, label: str) -> None:
        self.label = label

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["reached"] = self.label


class PrefixRoute(BaseRoute):
    """A route that takes any WebSocket handshake under `prefix` but prefers not to: a
    partial match, as Starlette's HTTP routes give for a method they do not allow."""

    def __init__(self, prefix: str, name: str) -> None:
        self.prefix = prefix
        self.name = name
        self.endpoint = Reached(name)

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] == "websocket" and scope["path"].startswith(self.prefix):
            path_params = {**scope.get("path_params", {}), "under": self.prefix}
            return Match.PARTIAL, {"endpoint": self.endpoint, "path_params": path_params}
        return Match.NONE, {}

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.endpoint(scope, receive, send)


class CaseInsensitiveRoute(WebSocketRoute):
    """A `WebSocketRoute` subclass with its own matching: its static part may be absent
    from a path it matches ("/A" for "/a"), so App's router must still ask it."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        lowered = {**scope, "path": scope["path"].lower(), "root_path": scope["root_path"].lower()}
        return super().matches(lowered)


def pattern(parts: list[str], trailing_slash: bool) -> str:
    """`/`-joined `parts`, each parameter named after its position (p0, p1, ...)."""
    named = [part % f"p{index}" if "%s" in part else part for index, part in enumerate(parts)]
    return "/" + "/".join(named) + ("/" if trailing_slash and named else "")


patterns = st.builds(pattern, st.lists(st.sampled_from(PATTERN_PARTS), max_size=3), st.booleans())
mount_patterns = st.builds(
    pattern, st.lists(st.sampled_from(MOUNT_PARTS), min_size=1, max_size=2), st.just(False)
)
leaf_specs = st.tuples(st.sampled_from(["websocket", "case-insensitive", "partial"]), patterns)
route_specs = st.one_of(
    st.tuples(
        st.sampled_from(["websocket", "websocket", "case-insensitive", "http", "http-post"]),
        patterns,
    ),
    st.tuples(st.just("partial"), patterns),
    st.tuples(st.just("mount"), mount_patterns, st.lists(leaf_specs, max_size=3)),
)


def targets(specs: list[tuple[Any, ...]]) -> list[str]:
    """The patterns a request path may be made from: every route's, mounted ones joined
    to their mount's."""
    found: list[str] = []
    for kind, path, *nested in specs:
        found.append(path)
        if kind == "mount":
            found.extend(path + inner_path for _, inner_path in nested[0])
    return found


@st.composite
def request_path(draw: st.DrawFn, specs: list[tuple[Any, ...]]) -> tuple[str, str]:
    """A `(root_path, path)` pair: random segments, or made from one of the table's
    patterns and perhaps tweaked; under the root path or not (servers send it under)."""
    patterns_given = targets(specs)
    from_a_pattern = draw(st.sampled_from([True, True, False]))
    if patterns_given and from_a_pattern:
        made = PARAMETER.sub(
            lambda match: draw(st.sampled_from(PARAMETER_VALUES[match.group(1) or ""])),
            draw(st.sampled_from(patterns_given)),
        )
        tweak = draw(st.sampled_from(TWEAKS))
        if tweak == "toggle-slash":
            made = made[:-1] if made.endswith("/") else made + "/"
        elif tweak == "extend":
            made += draw(st.sampled_from(["/a", "7", "/"]))
        elif tweak == "upper":
            made = made.upper()
        elif tweak == "shorten":
            made = made[:-1]
    else:
        segments = draw(st.lists(st.sampled_from(REQUEST_SEGMENTS), max_size=4))
        trailing_slash = draw(st.booleans())
        made = "/" + "/".join(segments) + ("/" if segments and trailing_slash else "")
    root_path = draw(st.sampled_from(ROOT_PATHS))
    return root_path, root_path + made if draw(st.booleans()) else made


@st.composite
def route_tables(draw: st.DrawFn) -> tuple[list[tuple[Any, ...]], list[tuple[str, str]]]:
    """A route table's specification and request paths, many of them near its routes."""
    specs = draw(st.lists(route_specs, max_size=8))
    return specs, draw(st.lists(request_path(specs), min_size=1, max_size=6))


def build_routes(
    specs: list[tuple[Any, ...]], mounted: Callable[[list[BaseRoute]], Any], prefix: str = "r"
) -> list[BaseRoute]:
    """The routes `specs` describe, each named (and its endpoint labelled) after its place;
    a mount's routes are served by `mounted(routes)`."""
    routes: list[BaseRoute] = []
    for index, (kind, path, *nested) in enumerate(specs):
        name = f"{prefix}{index}"
        if kind == "websocket":
            routes.append(WebSocketRoute(path, Reached(name), name=name))
        elif kind == "case-insensitive":
            routes.append(CaseInsensitiveRoute(path, Reached(name), name=name))
        elif kind == "http":
            routes.append(Route(path, Reached(name), name=name))
        elif kind == "http-post":
            routes.append(Route(path, Reached(name), methods=["POST"], name=name))
        elif kind == "partial":
            routes.append(PrefixRoute(path.rstrip("/"), name))
        else:
            inner = build_routes(nested[0], mounted, prefix=name + ".")
            routes.append(Mount(path, app=mounted(inner), name=name))
    return routes


class Routed(NamedTuple):
    """Where routing led: the endpoint reached (`None`: a router's default), what the
    scope held then, and the messages sent."""

    reached: str | None
    route: str | None
    endpoint: str | None
    path_params: dict[str, Any]
    root_path: str
    app_root_path: str | None
    sent: list[Message]


def request_scope(kind: str, path: str, root_path: str) -> Scope:
    scope = websocket_scope(path, root_path=root_path)
    if kind == "http":
        scope.update(type="http", scheme="http", method="GET", http_version="1.1")
    return scope


async def route_through(router: Any, scope: Scope) -> Routed:
    """Hand `scope` to `router` with a client that connects; where it led."""
    sent: list[Message] = []

    async def receive() -> Message:
        return CONNECT if scope["type"] == "websocket" else {"type": "http.request"}

    async def send(message: Message) -> None:
        sent.append(message)

    await router(scope, receive, send)
    return Routed(
        reached=scope.get("reached"),
        route=getattr(scope.get("route"), "name", None),
        endpoint=getattr(scope.get("endpoint"), "label", None),
        path_params=scope.get("path_params", {}),
        root_path=scope["root_path"],
        app_root_path=scope.get("app_root_path"),
        sent=sent,
    )


def assert_routes_like_starlette(
    specs: list[tuple[Any, ...]], paths: list[tuple[str, str]]
) -> None:
    app = App(routes=build_routes(specs, _Router))
    starlette_router = Router(build_routes(specs, Router))

    async def main() -> None:
        for root_path, path in paths:
            for kind in ("websocket", "http"):
                expected = await route_through(
                    starlette_router, request_scope(kind, path, root_path)
                )
                routed = await route_through(app.router, request_scope(kind, path, root_path))
                if kind == "websocket" and expected.reached is None and expected.route is None:
                    # Starlette's default closes with 1000; App's refuses with 403.
                    assert expected.sent == [
                        {"type": "websocket.close", "code": 1000, "reason": ""}
                    ]
                    assert routed == expected._replace(sent=[REFUSED]), (kind, path)
                else:
                    assert routed == expected, (kind, path)

    anyio.run(main)


@settings(max_examples=ROUTING_EXAMPLES, deadline=None)
@given(table=route_tables())
@example(
    # Sharing prefixes: "/ab" must not stop at "/a", nor "/a/{1}" take "/a/7".
    table=(
        [
            ("websocket", "/a"),
            ("websocket", "/ab"),
            ("websocket", "/a/{1}"),
            ("websocket", "/a/{p1}"),
        ],
        [("", "/ab"), ("", "/a/{1}"), ("", "/a/7")],
    ),
)
@example(
    # A root path: the static part is looked for after it, and a WebSocketRoute
    # subclass is asked even when its static part is not in the path.
    table=(
        [
            ("websocket", "/a/{p1:int}"),
            ("case-insensitive", "/b"),
            ("mount", "/a", [("websocket", "/b"), ("partial", "/a")]),
        ],
        [("/root", "/root/a/7"), ("/a", "/a/a/b"), ("/a", "/a"), ("", "/B"), ("/a", "/a/B")],
    ),
)
def test_app_routes_any_request_as_starlettes_router_does(
    table: tuple[list[tuple[Any, ...]], list[tuple[str, str]]],
) -> None:
    assert_routes_like_starlette(*table)


def route_once(routes: Sequence[BaseRoute], path: str) -> tuple[Routed, Routed]:
    """Route one WebSocket handshake to `path` through App's router and Starlette's."""

    async def main() -> tuple[Routed, Routed]:
        routed = await route_through(
            App(routes=routes).router, request_scope("websocket", path, "")
        )
        expected = await route_through(Router(routes), request_scope("websocket", path, ""))
        return routed, expected

    return anyio.run(main)


def test_a_partial_websocket_match_is_taken_when_no_route_matches_fully() -> None:
    routes = [
        WebSocketRoute("/other", Reached("other"), name="other"),
        PrefixRoute("/p", "partial"),
    ]
    routed, expected = route_once(routes, "/p/x")
    assert routed == expected
    assert (routed.reached, routed.route, routed.endpoint) == ("partial", "partial", "partial")
    assert routed.path_params == {"under": "/p"}
    assert routed.sent == []


def test_a_later_full_websocket_match_wins_over_an_earlier_partial_one() -> None:
    routes = [
        PrefixRoute("/p", "partial"),
        WebSocketRoute("/p/{name}", Reached("full"), name="full"),
    ]
    routed, expected = route_once(routes, "/p/x")
    assert routed == expected
    assert (routed.reached, routed.route, routed.path_params) == ("full", "full", {"name": "x"})


def test_the_first_of_two_partial_websocket_matches_is_taken() -> None:
    routes = [PrefixRoute("/p", "first"), PrefixRoute("/p/x", "second")]
    routed, expected = route_once(routes, "/p/x")
    assert routed == expected
    assert routed.reached == "first"


def test_a_websocket_path_missing_its_trailing_slash_is_refused_not_redirected() -> None:
    # As in Starlette: redirect_slashes is for HTTP; a WebSocket client cannot follow one.
    routes = [WebSocketRoute("/echo/", Reached("echo"), name="echo")]
    routed, expected = route_once(routes, "/echo")
    assert (expected.reached, expected.route) == (None, None)
    assert routed == expected._replace(sent=[REFUSED])


def test_app_redirects_an_http_path_to_its_other_slash_as_starlette_does() -> None:
    app = App()

    @app.route("/page/")
    async def page(request: Request) -> Response:
        return PlainTextResponse("page")

    @app.route("/about")
    async def about(request: Request) -> Response:
        return PlainTextResponse("about")

    test_client = TestClient(app, follow_redirects=False)
    response = test_client.get("/page?x=1")
    assert (response.status_code, response.headers["location"]) == (
        307,
        "http://testserver/page/?x=1",
    )
    response = test_client.get("/about/")
    assert (response.status_code, response.headers["location"]) == (307, "http://testserver/about")
    assert test_client.get("/nowhere/").status_code == 404


@pytest.mark.anyio
async def test_the_lifespan_goes_through_starlettes_router_to_the_hooks() -> None:
    events: list[str] = []
    app = App()
    app.on_startup(lambda: events.append("startup"))
    app.on_shutdown(lambda: events.append("shutdown"))
    incoming = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]

    async def receive() -> Message:
        return incoming.pop(0)

    async def send(message: Message) -> None:
        events.append(message["type"])

    await app.router({"type": "lifespan", "state": {}}, receive, send)
    assert events == [
        "startup",
        "lifespan.startup.complete",
        "shutdown",
        "lifespan.shutdown.complete",
    ]


# Against a real uvicorn.


def uvicorn_app(called: list[str]) -> App:
    app = app_with_an_http_route(called)

    @app.websocket_route("/boom")
    async def boom(ws: WebSocket) -> None:
        await ws.send("about to fail")
        raise RuntimeError("boom")

    @app.websocket_route("/json", value_type="json")
    async def json_echo(ws: WebSocket) -> None:
        await echo(ws)

    @app.websocket_route("/count")
    async def count(ws: WebSocket, n: int) -> None:
        await ws.send(str(n + 1))

    return app


@pytest.mark.anyio
@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
async def test_uvicorn_refuses_unmatched_and_http_only_paths_with_403(implementation: str) -> None:
    called: list[str] = []
    app = uvicorn_app(called)
    async with running_server(app, implementation) as base:  # type: ignore[arg-type]
        assert (await refused(base + "/nowhere")).response.status_code == 403
        assert (await refused(base + "/page")).response.status_code == 403
    assert called == []


@pytest.mark.anyio
@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
async def test_uvicorn_client_sees_1011_when_a_view_raises(implementation: str) -> None:
    async with (
        running_server(uvicorn_app([]), implementation) as base,  # type: ignore[arg-type]
        client(base + "/boom") as ws,
    ):
        assert await recv(ws) == "about to fail"
        assert await close_frame(ws) == (1011, "internal error")


@pytest.mark.anyio
@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
async def test_uvicorn_client_sees_1007_after_invalid_json(implementation: str) -> None:
    async with (
        running_server(uvicorn_app([]), implementation) as base,  # type: ignore[arg-type]
        client(base + "/json") as ws,
    ):
        await ws.send('{"ok": true}')
        assert await recv(ws) == '{"ok":true}'
        await ws.send("{nope")
        assert await close_frame(ws) == (1007, "invalid JSON")


@pytest.mark.anyio
@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
async def test_uvicorn_refuses_a_bad_query_parameter_with_403(implementation: str) -> None:
    async with running_server(uvicorn_app([]), implementation) as base:  # type: ignore[arg-type]
        assert (await refused(base + "/count?n=many")).response.status_code == 403
        assert (await refused(base + "/count")).response.status_code == 403
        async with client(base + "/count?n=41") as ws:
            assert await recv(ws) == "42"


def test_route_options_left_out_show_as_default_in_the_signature() -> None:
    parameters = inspect.signature(App.websocket_route).parameters
    assert repr(parameters["value_type"].default) == "<default>"
