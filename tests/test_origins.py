"""`allowed_origins`: the origin rule on its own, then on routes and `App`, through
Starlette's TestClient and a real uvicorn with the `websockets` client."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocket as StarletteWebSocket

from bocws import App, WebSocket, WebSocketDisconnect, WebSocketView, websocket_view
from bocws._origins import OriginPolicy

from .live_server import IMPLEMENTATIONS, client, recv, refused, running_server


def handshake(origin: str | None, host: str | None = "app.example.com") -> dict[str, Any]:
    headers = []
    if host is not None:
        headers.append((b"host", host.encode("latin-1")))
    if origin is not None:
        headers.append((b"origin", origin.encode("latin-1")))
    return {"type": "websocket", "headers": headers}


# The rule.


@pytest.mark.parametrize(
    ("entries", "origin"),
    [
        (["https://example.com"], "https://example.com"),
        (["https://example.com"], "HTTPS://Example.COM"),
        (["https://example.com"], "https://example.com:443"),
        (["https://example.com:8443"], "https://example.com:8443"),
        (["http://localhost:5173"], "http://localhost:5173"),
        (["example.com"], "http://example.com"),
        (["example.com"], "https://example.com"),
        (["*.example.com"], "https://chat.example.com"),
        (["*.example.com"], "http://a.b.example.com"),
        (["https://*.example.com"], "https://chat.example.com"),
        (["http://[::1]:8000"], "http://[::1]:8000"),
        (["*"], "https://anything.test"),
        (["*"], "null"),
        (["https://other.test", "https://example.com"], "https://example.com"),
    ],
)
def test_an_origin_matching_an_entry_is_allowed(entries: list[str], origin: str) -> None:
    assert OriginPolicy(entries).allows(handshake(origin))


@pytest.mark.parametrize(
    ("entries", "origin"),
    [
        (["https://example.com"], "https://evil.test"),
        (["https://example.com"], "http://example.com"),
        (["https://example.com"], "https://example.com:8443"),
        (["https://example.com"], "https://example.com.evil.test"),
        (["https://example.com"], "https://sub.example.com"),
        (["example.com"], "ftp://example.com"),
        (["example.com"], "https://example.com:444"),
        (["*.example.com"], "https://example.com"),
        (["*.example.com"], "https://evilexample.com"),
        (["*.example.com"], "https://example.com.evil.test"),
        (["https://*.example.com"], "http://chat.example.com"),
        (["https://example.com"], "null"),
        (["https://example.com"], ""),
        (["https://example.com"], "https://example.com/path"),
        (["https://example.com"], "https://user@example.com"),
        ([], "https://example.com"),
    ],
)
def test_an_origin_matching_no_entry_is_refused(entries: list[str], origin: str) -> None:
    assert not OriginPolicy(entries).allows(handshake(origin))


@pytest.mark.parametrize(
    ("origin", "host"),
    [
        ("https://app.example.com", "app.example.com"),
        ("http://app.example.com", "app.example.com"),
        ("http://127.0.0.1:8000", "127.0.0.1:8000"),
        ("https://app.example.com", "App.Example.com:443"),
        ("http://[::1]:8000", "[::1]:8000"),
    ],
)
def test_a_same_origin_handshake_is_allowed_without_an_entry(origin: str, host: str) -> None:
    assert OriginPolicy([]).allows(handshake(origin, host))


@pytest.mark.parametrize(
    ("origin", "host"),
    [
        ("http://127.0.0.1:8001", "127.0.0.1:8000"),
        ("https://app.example.com", "app.example.com:8443"),
        ("https://evil.test", "app.example.com"),
        ("https://app.example.com", None),
        ("https://app.example.com", "app.example.com/x"),
    ],
)
def test_another_host_or_port_is_not_the_same_origin(origin: str, host: str | None) -> None:
    assert not OriginPolicy([]).allows(handshake(origin, host))


def test_an_http_page_is_not_the_same_origin_as_a_secure_socket() -> None:
    secure = {**handshake("http://app.example.com", "app.example.com"), "scheme": "wss"}
    assert not OriginPolicy([]).allows(secure)
    assert OriginPolicy(["http://app.example.com"]).allows(secure)  # unless listed
    # TLS ended at a proxy without --proxy-headers: the socket looks plain, the page is not.
    behind_proxy = {**handshake("https://app.example.com", "app.example.com"), "scheme": "ws"}
    assert OriginPolicy([]).allows(behind_proxy)


@pytest.mark.parametrize(
    "origin",
    ["https://evil.test\\.example.com", "https://.example.com", "https://a..example.com"],
)
def test_hosts_no_browser_sends_match_no_pattern(origin: str) -> None:
    assert not OriginPolicy(["*.example.com"]).allows(handshake(origin))


def test_a_handshake_without_origin_is_allowed() -> None:
    assert OriginPolicy([]).allows(handshake(None))
    assert OriginPolicy(["https://example.com"]).allows(handshake(None, None))


def test_two_origin_headers_match_nothing() -> None:
    scope = handshake("https://example.com")
    scope["headers"].append((b"origin", b"https://example.com"))
    assert not OriginPolicy(["https://example.com"]).allows(scope)
    assert OriginPolicy(["*"]).allows(scope)


def test_a_single_string_is_one_origin_not_its_characters() -> None:
    policy = OriginPolicy("https://example.com")
    assert policy.allows(handshake("https://example.com"))
    assert not policy.allows(handshake("https://e.test"))


@pytest.mark.parametrize(
    "entry", ["https://example.com/", "https://", "*", "example.com/chat", "https://*", "a b"]
)
def test_a_malformed_entry_is_a_value_error(entry: str) -> None:
    if entry == "*":
        OriginPolicy([entry])  # "*" alone is the documented "any origin"
        return
    with pytest.raises(ValueError, match="is not an origin"):
        OriginPolicy([entry])


@pytest.mark.parametrize(
    ("entry", "hint"),
    [
        ("wss://example.com", "use https://example.com"),
        ("ws://example.com:8000", "use http://example.com:8000"),
        ("https://bücher.example", "punycode"),
        ("https://example.com:0", "1-65535"),
        ("https://example.com:99999", "1-65535"),
    ],
)
def test_an_entry_no_browser_origin_can_match_is_refused_with_a_hint(entry: str, hint: str) -> None:
    with pytest.raises(ValueError, match=hint):
        OriginPolicy([entry])


@pytest.mark.parametrize("allowed", [b"https://example.com", 42, [b"https://example.com"], [None]])
def test_allowed_origins_of_another_type_is_a_type_error(allowed: Any) -> None:
    with pytest.raises(TypeError, match="allowed_origins must"):
        OriginPolicy(allowed)


# On routes and on App, through TestClient (whose Host is "testserver").


async def echo(ws: WebSocket) -> None:
    async for message in ws:
        await ws.send(message)


def connects(app: Any, path: str, origin: str | None) -> bool:
    """Whether a handshake from `origin` is accepted (a message then echoes)."""
    headers = {"origin": origin} if origin is not None else {}
    code = None
    try:
        with TestClient(app).websocket_connect(path, headers=headers) as session:
            session.send_text("ping")
            assert session.receive_text() == "ping"
    except WebSocketDisconnect as refusal:
        code = refusal.code
    assert code in (None, 403)
    return code is None


def test_a_route_refuses_another_origin_with_403_before_the_view_runs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="bocws")
    calls = []

    async def view(ws: WebSocket) -> None:
        calls.append(ws.headers.get("origin"))
        await echo(ws)

    app = App()
    app.add_websocket_route("/ws", view, allowed_origins=["https://app.example.com"])
    assert not connects(app, "/ws", "https://evil.test")
    assert calls == []
    assert connects(app, "/ws", "https://app.example.com")
    assert connects(app, "/ws", "http://testserver")  # same origin
    assert connects(app, "/ws", None)  # not a browser
    assert calls == ["https://app.example.com", "http://testserver", None]
    assert [record.getMessage() for record in caplog.records if record.name == "bocws"] == [
        "'/ws': refusing a handshake from origin 'https://evil.test': not in the "
        "allowed_origins of view test_a_route_refuses_another_origin_with_403_before_the_view_"
        "runs.<locals>.view"
    ]


def test_the_log_line_quotes_a_hostile_origin(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="bocws")
    app = App(allowed_origins=[])
    app.add_websocket_route("/ws", echo)
    assert not connects(app, "/ws", "https://evil.test\r\nINFO fake line")
    (message,) = [record.getMessage() for record in caplog.records if record.name == "bocws"]
    assert "\n" not in message
    assert message == (
        "'/ws': refusing a handshake from origin 'https://evil.test\\r\\nINFO fake line': "
        "not in the application's allowed_origins"
    )


def test_websocket_view_and_class_attributes_take_allowed_origins() -> None:
    class Echo(WebSocketView):
        allowed_origins = ("*.example.com",)

        async def on_message(self, ws: WebSocket, message: Any) -> None:
            await ws.send(message)

    routes = [
        WebSocketRoute("/function", websocket_view(allowed_origins="*.example.com")(echo)),
        WebSocketRoute("/class", websocket_view(Echo)),
    ]
    app = Starlette(routes=routes)
    for path in ("/function", "/class"):
        assert connects(app, path, "https://chat.example.com")
        assert not connects(app, path, "https://example.com.evil.test")


def test_app_allowed_origins_guard_every_websocket_route_mounts_included() -> None:
    async def starlette_echo(websocket: StarletteWebSocket) -> None:
        await websocket.accept()
        await websocket.send_text(await websocket.receive_text())
        await websocket.close()

    app = App(allowed_origins=["https://app.example.com"])
    app.add_websocket_route("/bocws", echo)
    app.mount("/inner", Starlette(routes=[WebSocketRoute("/plain", starlette_echo)]))
    for path in ("/bocws", "/inner/plain"):
        assert connects(app, path, "https://app.example.com")
        assert not connects(app, path, "https://evil.test")
        assert connects(app, path, None)


def test_a_route_narrows_the_apps_origins_and_cannot_widen_them() -> None:
    app = App(allowed_origins=["https://app.example.com", "https://admin.example.com"])
    app.add_websocket_route("/admin", echo, allowed_origins=["https://admin.example.com"])
    app.add_websocket_route("/open", echo, allowed_origins="*")
    assert connects(app, "/admin", "https://admin.example.com")
    assert not connects(app, "/admin", "https://app.example.com")
    assert connects(app, "/open", "https://app.example.com")
    assert not connects(app, "/open", "https://evil.test")  # the application's check first


def test_app_allowed_origins_leave_http_alone() -> None:
    app = App(allowed_origins=[])

    @app.route("/")
    async def home(request: Any) -> Any:
        from starlette.responses import PlainTextResponse

        return PlainTextResponse("home")

    response = TestClient(app).get("/", headers={"origin": "https://evil.test"})
    assert response.text == "home"


@pytest.mark.parametrize("allowed", ["https://example.com/", 42])
def test_bad_allowed_origins_fail_at_declaration(allowed: Any) -> None:
    with pytest.raises((TypeError, ValueError)):
        App(allowed_origins=allowed)
    with pytest.raises((TypeError, ValueError)):
        websocket_view(allowed_origins=allowed)
    with pytest.raises((TypeError, ValueError)):
        App().add_websocket_route("/ws", echo, allowed_origins=allowed)


# Through a real uvicorn: a browser-like client from another site is refused with 403.


@pytest.mark.anyio
@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
async def test_cross_site_handshakes_are_refused_over_uvicorn(implementation: str) -> None:
    app = App(allowed_origins=["https://app.example.com"])
    app.add_websocket_route("/ws", echo)
    async with running_server(app, implementation) as base:  # type: ignore[arg-type]
        error = await refused(base + "/ws", origin="https://evil.test")
        assert error.response.status_code == 403
        for origin in ("https://app.example.com", base.replace("ws://", "http://"), None):
            async with client(base + "/ws", origin=origin) as connection:
                await connection.send("ping")
                assert await recv(connection) == "ping"


def test_a_policy_shows_what_it_allows() -> None:
    assert repr(OriginPolicy(["https://a.test", "b.test"])) == "<OriginPolicy 2>"
    assert repr(OriginPolicy("*")) == "<OriginPolicy *>"
