"""FastAPI dependencies in bocws views: FastAPI's own solver fills them, the view gets
the values.

Views are registered on FastAPI (`@app.websocket()` over `websocket_view`,
`add_api_websocket_route`, routers, mounted apps) and driven with Starlette's
TestClient, and once under a real uvicorn. This module uses `from __future__ import
annotations`: the views' `Annotated[..., Depends(...)]` marks are strings bocws
resolves, so the dependencies they name live at module level, as in an application.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Annotated, Any

import pytest
from fastapi import (
    APIRouter,
    Body,
    Cookie,
    Depends,
    FastAPI,
    Form,
    Header,
    Path,
    Query,
    Security,
    WebSocketException,
)
from fastapi.security import APIKeyHeader, SecurityScopes
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocket as StarletteWebSocket

from bocws import App, WebSocket, WebSocketDisconnect, WebSocketView, websocket_view
from tests.live_server import TIMEOUT, client, recv, refused, running_server

if TYPE_CHECKING:
    from bocws import WebSocket as TypeCheckingOnlyWebSocket

USERS = {"ada-token": "ada", "alan-token": "alan"}


async def current_user(
    token: str | None = None,
    authorization: Annotated[str | None, Header()] = None,
    session: Annotated[str | None, Cookie()] = None,
) -> str:
    """The user of a `?token=`, an `Authorization: Bearer` header or a session cookie."""
    bearer = (authorization or "").removeprefix("Bearer ")
    user = USERS.get(token or bearer or session or "")
    if user is None:
        raise WebSocketException(4401, "sign in first")
    return user


User = Annotated[str, Depends(current_user)]


@websocket_view
async def whoami(ws: WebSocket, user: User) -> None:
    await ws.send(user)


def app_with(path: str, endpoint: Any, **route: Any) -> FastAPI:
    app = FastAPI()
    app.add_api_websocket_route(path, endpoint, **route)
    return app


def refusal(app: Any, path: str, **kwargs: Any) -> int:
    """The code TestClient reports for a handshake `app` refuses (HTTP 403 on a server)."""
    with (
        pytest.raises(WebSocketDisconnect) as info,
        TestClient(app).websocket_connect(path, **kwargs),
    ):
        pass  # pragma: no cover - the handshake is refused
    return info.value.code


# The user, from a dependency.


def test_a_dependency_returns_the_user_from_a_query_token() -> None:
    with TestClient(app_with("/me", whoami)).websocket_connect("/me?token=ada-token") as session:
        assert session.receive_text() == "ada"


def test_a_dependency_returns_the_user_from_a_header() -> None:
    headers = {"authorization": "Bearer alan-token"}
    with TestClient(app_with("/me", whoami)).websocket_connect("/me", headers=headers) as session:
        assert session.receive_text() == "alan"


def test_a_dependency_returns_the_user_from_a_cookie() -> None:
    headers = {"cookie": "session=ada-token"}
    with TestClient(app_with("/me", whoami)).websocket_connect("/me", headers=headers) as session:
        assert session.receive_text() == "ada"


def test_a_dependency_raising_websocket_exception_refuses_the_handshake_with_its_code() -> None:
    ran = []

    @websocket_view
    async def view(ws: WebSocket, user: User) -> None:
        ran.append(user)  # pragma: no cover - never runs

    assert refusal(app_with("/me", view), "/me?token=wrong") == 4401
    assert ran == []


def test_depends_as_a_default_works_as_in_annotated() -> None:
    @websocket_view
    async def view(ws: WebSocket, user: str = Depends(current_user)) -> None:
        await ws.send(user)

    with TestClient(app_with("/me", view)).websocket_connect("/me?token=ada-token") as session:
        assert session.receive_text() == "ada"


def test_dependencies_are_found_when_another_annotation_names_a_type_checking_import() -> None:
    @websocket_view
    async def view(ws: TypeCheckingOnlyWebSocket, user: User) -> None:
        await ws.send(user)

    with TestClient(app_with("/me", view)).websocket_connect("/me?token=ada-token") as session:
        assert session.receive_text() == "ada"


def test_the_decorator_form_registers_a_view_with_dependencies() -> None:
    app = FastAPI()

    @app.websocket("/me")
    @websocket_view
    async def view(ws: WebSocket, user: User) -> None:
        await ws.send(f"hello {user}")

    with TestClient(app).websocket_connect("/me?token=alan-token") as session:
        assert session.receive_text() == "hello alan"


def test_dependency_overrides_replace_a_views_dependency() -> None:
    app = app_with("/me", whoami)
    app.dependency_overrides[current_user] = lambda: "test-user"
    with TestClient(app).websocket_connect("/me") as session:
        assert session.receive_text() == "test-user"


# Security.


async def scoped_user(scopes: SecurityScopes, user: User) -> dict[str, Any]:
    return {"user": user, "scopes": scopes.scopes}


api_key = APIKeyHeader(name="x-api-key", auto_error=False)


def test_security_passes_its_scopes_to_the_dependency() -> None:
    @websocket_view(value_type="json")
    async def view(
        ws: WebSocket, who: Annotated[dict[str, Any], Security(scoped_user, scopes=["chat"])]
    ) -> None:
        await ws.send(who)

    with TestClient(app_with("/me", view)).websocket_connect("/me?token=ada-token") as session:
        assert session.receive_json() == {"user": "ada", "scopes": ["chat"]}


def test_security_with_a_fastapi_security_scheme() -> None:
    @websocket_view
    async def view(ws: WebSocket, key: Annotated[str | None, Security(api_key)]) -> None:
        await ws.send(repr(key))

    app = app_with("/key", view)
    headers = {"x-api-key": "k3y"}
    with TestClient(app).websocket_connect("/key", headers=headers) as session:
        assert session.receive_text() == "'k3y'"
    with TestClient(app).websocket_connect("/key") as session:
        assert session.receive_text() == "None"


# Query, Path, Header and Cookie parameters, validated by FastAPI.


@websocket_view(value_type="json")
async def marked(
    ws: WebSocket,
    item_id: Annotated[int, Path(gt=0)],
    tags: Annotated[list[str], Query()],
    user_agent: Annotated[str, Header()],
    theme: Annotated[str, Cookie()] = "light",
    page: int = Query(1, ge=1),
) -> None:
    await ws.send(
        {"item_id": item_id, "tags": tags, "user_agent": user_agent, "theme": theme, "page": page}
    )


def test_query_path_header_and_cookie_parameters_are_fastapis() -> None:
    app = app_with("/items/{item_id}", marked)
    headers = {"user-agent": "probe", "cookie": "theme=dark"}
    with TestClient(app).websocket_connect(
        "/items/3?tags=a&tags=b&page=2", headers=headers
    ) as session:
        assert session.receive_json() == {
            "item_id": 3,
            "tags": ["a", "b"],
            "user_agent": "probe",
            "theme": "dark",
            "page": 2,
        }


@pytest.mark.parametrize(
    "path",
    [
        "/items/0?tags=a",  # Path(gt=0)
        "/items/3",  # tags are required
        "/items/3?tags=a&page=0",  # Query(ge=1)
    ],
)
def test_a_parameter_fastapi_finds_invalid_closes_the_handshake_1008(path: str) -> None:
    assert refusal(app_with("/items/{item_id}", marked), path) == 1008


def test_a_missing_required_header_closes_the_handshake_1008() -> None:
    @websocket_view
    async def view(ws: WebSocket, x_trace: Annotated[str, Header()]) -> None:
        await ws.send(x_trace)  # pragma: no cover - never runs

    assert refusal(app_with("/trace", view), "/trace") == 1008
    with TestClient(app_with("/trace", view)).websocket_connect(
        "/trace", headers={"x-trace": "t1"}
    ) as session:
        assert session.receive_text() == "t1"


# Nested dependencies, and teardown.

calls: list[str] = []


async def database() -> AsyncIterator[str]:
    calls.append("database opened")
    try:
        yield "db"
    finally:
        calls.append("database closed")


async def repository(db: Annotated[str, Depends(database)], user: User) -> str:
    calls.append("repository")
    return f"{user}'s repository on {db}"


@pytest.fixture
def call_log() -> list[str]:
    calls.clear()
    return calls


def test_nested_dependencies_are_solved_and_a_shared_one_is_called_once(
    call_log: list[str],
) -> None:
    @websocket_view(value_type="json")
    async def view(
        ws: WebSocket,
        repo: Annotated[str, Depends(repository)],
        db: Annotated[str, Depends(database)],
    ) -> None:
        await ws.send({"repo": repo, "db": db})

    app = app_with("/repo", view)
    with TestClient(app).websocket_connect("/repo?token=alan-token") as session:
        assert session.receive_json() == {"repo": "alan's repository on db", "db": "db"}
    assert call_log == ["database opened", "repository", "database closed"]


def test_a_yield_dependency_is_torn_down_after_the_view_ends(call_log: list[str]) -> None:
    @websocket_view
    async def view(ws: WebSocket, db: Annotated[str, Depends(database)]) -> None:
        call_log.append("view started")
        message = await ws.receive_text()
        call_log.append(f"view ended after {message}")

    with TestClient(app_with("/db", view)).websocket_connect("/db") as session:
        session.send_text("bye")
        assert session.receive() == {"type": "websocket.close", "code": 1000, "reason": ""}
    assert call_log == [
        "database opened",
        "view started",
        "view ended after bye",
        "database closed",
    ]


def test_a_yield_dependency_is_torn_down_when_the_view_raises(call_log: list[str]) -> None:
    @websocket_view
    async def view(ws: WebSocket, db: Annotated[str, Depends(database)]) -> None:
        raise RuntimeError("bug")

    with (
        pytest.raises(RuntimeError, match="bug"),
        TestClient(app_with("/db", view)).websocket_connect("/db") as session,
    ):
        session.receive()  # pragma: no cover - the error is raised by the TestClient
    assert call_log == ["database opened", "database closed"]


# The view's own parameters beside FastAPI's.


def test_the_views_own_parameters_keep_working_beside_fastapis() -> None:
    app = FastAPI()

    @app.websocket("/rooms/{room}")
    @websocket_view(value_type="json")
    async def view(
        websocket: WebSocket, room: int, user: User, limit: int = 10, verbose: bool = False
    ) -> None:
        await websocket.send({"room": room, "user": user, "limit": limit, "verbose": verbose})

    test_client = TestClient(app)
    with test_client.websocket_connect("/rooms/7?token=ada-token&limit=3&verbose=yes") as session:
        assert session.receive_json() == {"room": 7, "user": "ada", "limit": 3, "verbose": True}
    # bocws's own conversion refuses a bad value of its own, after FastAPI's dependencies.
    assert refusal(app, "/rooms/7?token=ada-token&limit=three") == 403
    assert refusal(app, "/rooms/7?limit=3") == 4401


def test_a_view_with_params_keyword_gets_fastapis_values_and_the_path() -> None:
    @websocket_view(value_type="json")
    async def view(ws: WebSocket, user: User, **params: Any) -> None:
        await ws.send({"user": user, **params})

    app = app_with("/rooms/{room}", view)
    with TestClient(app).websocket_connect("/rooms/lobby?token=alan-token") as session:
        assert session.receive_json() == {"user": "alan", "room": "lobby"}


def test_the_endpoint_shows_fastapi_the_websocket_and_the_views_fastapi_parameters() -> None:
    @websocket_view
    async def view(ws: WebSocket, room: str, user: User, page: int = Query(1)) -> None:
        pass  # pragma: no cover

    parameters = inspect.signature(view).parameters
    assert list(parameters) == ["websocket", "user", "page"]
    assert parameters["websocket"].annotation is StarletteWebSocket
    assert parameters["user"].annotation == User
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in parameters.values())
    assert list(inspect.signature(websocket_view(whoami.view)).parameters) == [
        "websocket",
        "user",
    ]


# Routers, included routers and mounted apps.


def test_an_api_router_included_with_a_prefix_and_its_own_dependencies() -> None:
    seen: list[str] = []

    async def audit(user: User) -> None:
        seen.append(f"audited {user}")

    router = APIRouter()
    router.add_api_websocket_route("/me", whoami)

    @router.websocket("/rooms/{room}")
    @websocket_view
    async def room(ws: WebSocket, room: str, user: User) -> None:
        await ws.send(f"{user} in {room}")

    app = FastAPI()
    app.include_router(router, prefix="/v1", dependencies=[Depends(audit)])
    test_client = TestClient(app)
    with test_client.websocket_connect("/v1/me?token=ada-token") as session:
        assert session.receive_text() == "ada"
    with test_client.websocket_connect("/v1/rooms/lobby?token=alan-token") as session:
        assert session.receive_text() == "alan in lobby"
    assert seen == ["audited ada", "audited alan"]
    assert refusal(app, "/v1/me") == 4401


def test_a_fastapi_app_mounted_in_another_solves_its_views_dependencies() -> None:
    sub = FastAPI()
    sub.add_api_websocket_route("/me", whoami)
    app = FastAPI()
    app.mount("/sub", sub)
    with TestClient(app).websocket_connect("/sub/me?token=alan-token") as session:
        assert session.receive_text() == "alan"
    assert refusal(app, "/sub/me") == 4401


# Class views: dependencies in on_connect.


class Greeter(WebSocketView):
    value_type = "json"

    async def on_connect(self, ws: WebSocket, user: User, lang: str = Query("en")) -> None:
        self.user, self.lang = user, lang
        await ws.accept()

    async def on_message(self, ws: WebSocket, message: Any) -> None:
        await ws.send({"to": self.user, "lang": self.lang, "echo": message})


def test_a_class_view_takes_its_dependencies_in_on_connect() -> None:
    app = app_with("/greet", websocket_view(Greeter))
    with TestClient(app).websocket_connect("/greet?token=ada-token&lang=fr") as session:
        session.send_json("hi")
        assert session.receive_json() == {"to": "ada", "lang": "fr", "echo": "hi"}
    assert refusal(app, "/greet") == 4401


# Outside FastAPI, and what a view cannot declare.


def test_a_view_with_dependencies_on_a_bocws_app_is_refused_when_registered() -> None:
    app = App()
    with pytest.raises(TypeError, match=r"has FastAPI parameters \(user\), which only FastAPI"):
        app.add_websocket_route("/me", whoami)
    with pytest.raises(TypeError, match="register it on a FastAPI app or APIRouter"):
        app.add_websocket_route("/greet", Greeter)


def test_a_view_with_dependencies_under_starlette_raises_at_the_handshake() -> None:
    app = Starlette(routes=[WebSocketRoute("/me", whoami)])
    with (
        pytest.raises(TypeError, match=r"view 'whoami' has FastAPI parameters \(user\)"),
        TestClient(app).websocket_connect("/me?token=ada-token"),
    ):
        pass  # pragma: no cover - the handshake fails


def test_a_view_with_dependencies_inside_fastapi_but_on_a_starlette_route_raises() -> None:
    app = FastAPI()
    app.router.routes.append(WebSocketRoute("/me", whoami))
    with (
        pytest.raises(TypeError, match="only FastAPI's routing fills"),
        TestClient(app).websocket_connect("/me?token=ada-token"),
    ):
        pass  # pragma: no cover - the handshake fails


@pytest.mark.parametrize("marker", [Body(), Form(), api_key], ids=["Body", "Form", "scheme"])
def test_a_fastapi_mark_a_handshake_cannot_fill_is_refused_when_declared(marker: Any) -> None:
    async def view(ws: WebSocket, data: Any = marker) -> None: ...

    with pytest.raises(TypeError, match="which a WebSocket handshake cannot fill"):
        websocket_view(view)


@pytest.mark.parametrize("name", ["websocket", "receive", "send"])
def test_a_fastapi_parameter_named_as_an_endpoint_argument_is_refused(name: str) -> None:
    namespace: dict[str, Any] = {"Query": Query}
    exec(f"async def view(ws, {name}=Query(None)): ...", namespace)
    with pytest.raises(TypeError, match=f"FastAPI parameter '{name}' has the name of an argument"):
        websocket_view(namespace["view"])


def test_a_positional_only_fastapi_parameter_is_refused() -> None:
    async def view(ws: WebSocket, user: str = Depends(current_user), /) -> None: ...

    with pytest.raises(TypeError, match="is FastAPI's and must be passed by name"):
        websocket_view(view)


# Under a real uvicorn.


@pytest.mark.anyio
async def test_under_uvicorn_a_dependency_authenticates_refuses_and_is_torn_down() -> None:
    closed = asyncio.Event()

    async def connection_resource() -> AsyncIterator[str]:
        try:
            yield "resource"
        finally:
            closed.set()

    @websocket_view(value_type="json")
    async def view(
        ws: WebSocket, room: str, user: User, resource: str = Depends(connection_resource)
    ) -> None:
        async for message in ws:
            await ws.send({"room": room, "from": user, "text": message, "with": resource})

    app = FastAPI()
    app.add_api_websocket_route("/chat/{room}", view)
    async with running_server(app, "websockets-sansio") as base:
        async with client(f"{base}/chat/lobby?token=ada-token") as connection:
            await connection.send('"hi"')
            assert await recv(connection) == (
                '{"room":"lobby","from":"ada","text":"hi","with":"resource"}'
            )
            assert not closed.is_set()  # held for the whole connection
        await asyncio.wait_for(closed.wait(), TIMEOUT)
        assert (await refused(f"{base}/chat/lobby?token=nope")).response.status_code == 403
