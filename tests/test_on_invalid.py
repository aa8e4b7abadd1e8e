"""`on_invalid`: what a route does with a message it cannot take, end to end.

Three shapes of bad message (invalid JSON, a frame of the wrong kind, a typed message
that does not validate), with real pydantic models and msgspec Structs, meet the four
policies (`"close"`, `"reply"`, `"raise"`, a callable) through each way a view
receives (`receive()`, `async for`, `iter_json()`, a class view's `on_message`), under
Starlette's TestClient; what the client gets is asserted exactly. Then the option's
plumbing (`App` default, routes, `websocket_view()`, `WebSocketView`, `WebSocket`),
the log, typed sends and receives, a hypothesis property over any JSON (driven with
the in-memory fake server), and one exchange with a real uvicorn.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError
from starlette.testclient import TestClient
from starlette.types import Receive, Scope, Send

from bocws import (
    App,
    InvalidJSON,
    InvalidMessage,
    MessageTypeError,
    WebSocket,
    WebSocketState,
    WebSocketView,
    invalid_reply,
    websocket_view,
)

from .fake import connected, disconnect, text
from .live_server import IMPLEMENTATIONS, client, recv, running_server
from .test_typed import SECRET, USER, WRONG_AGE, StructUser, StructWide, User, Wide

# The shapes of bad message, and what each policy makes of them.

ERROR = {"type": "error", "error": "invalid message"}


def pydantic_detail(tp: Any, payload: str) -> list[dict[str, Any]]:
    """pydantic's own error list for `payload`, as the error frame carries it."""
    try:
        TypeAdapter(tp).validate_json(payload)
    except ValidationError as error:
        return [
            {"type": entry["type"], "loc": list(entry["loc"]), "msg": entry["msg"]}
            for entry in error.errors(include_url=False, include_input=False)
        ]
    raise AssertionError(f"{payload!r} is a valid {tp}")


@dataclasses.dataclass(frozen=True)
class Shape:
    """A route's message kind, a message it cannot take (the `error` it raises, and the
    close or error frame it calls for), and a valid message with the view's echo of it."""

    name: str
    value_type: Any
    bad: str | bytes  # sent in a text frame if a str, else a binary one
    error: type[InvalidMessage]
    code: int
    reason: str
    detail: list[dict[str, Any]]
    good: str
    echo: str

    @property
    def typed(self) -> bool:
        return not isinstance(self.value_type, str)

    @property
    def error_frame(self) -> dict[str, Any]:
        return {**ERROR, "detail": self.detail}


USER_JSON = json.dumps(USER)
BAD_AGE = json.dumps(WRONG_AGE)  # holds SECRET
TRUNCATED = '{"name": "' + SECRET  # a string that never ends
PYDANTIC_ECHO = User.model_validate(USER).model_dump_json()
MSGSPEC_ECHO = msgspec.json.encode(msgspec.convert(USER, StructUser)).decode()
AGE_REASON = (
    "invalid message: age: Input should be a valid integer, unable to parse string as an integer"
)
AGE_DETAIL = pydantic_detail(User, BAD_AGE)

WRONG_FRAME = Shape(
    "wrong frame kind",
    "text",
    SECRET.encode(),
    MessageTypeError,
    1003,
    "unsupported frame type",
    [{"type": "frame_type", "loc": [], "msg": "expected a text frame, got a binary frame"}],
    "hello",
    "hello",
)
SHAPES = [
    Shape(
        "invalid JSON, pydantic",
        User,
        TRUNCATED,
        InvalidJSON,
        1007,
        "invalid JSON: EOF while parsing a string",
        [
            {
                "type": "json_invalid",
                "loc": [],
                "msg": "Invalid JSON: EOF while parsing a string at line 1 column 22",
            }
        ],
        USER_JSON,
        PYDANTIC_ECHO,
    ),
    Shape(
        "invalid JSON, msgspec",
        StructUser,
        TRUNCATED,
        InvalidJSON,
        1007,
        "invalid JSON: Input data was truncated",
        [{"type": "json_invalid", "loc": [], "msg": "Input data was truncated"}],
        USER_JSON,
        MSGSPEC_ECHO,
    ),
    Shape(
        "invalid JSON, plain json",
        "json",
        "{" + SECRET,
        InvalidJSON,
        1007,
        "invalid JSON",
        [
            {
                "type": "json_invalid",
                "loc": [],
                "msg": "Invalid JSON: Expecting property name enclosed in double quotes",
            }
        ],
        '{"a": [1, 2]}',
        '{"a":[1,2]}',
    ),
    WRONG_FRAME,
    Shape(
        "validation failure, pydantic",
        User,
        BAD_AGE,
        InvalidMessage,
        1007,
        AGE_REASON,
        AGE_DETAIL,
        USER_JSON,
        PYDANTIC_ECHO,
    ),
    Shape(
        "validation failure, msgspec",
        StructUser,
        BAD_AGE,
        InvalidMessage,
        1007,
        "invalid message: age: Expected `int`, got `str`",
        [{"type": "validation", "loc": ["age"], "msg": "Expected `int`, got `str`"}],
        USER_JSON,
        MSGSPEC_ECHO,
    ),
]
SHAPE_IDS = [shape.name for shape in SHAPES]

PATHS = ["receive()", "async for", "iter_json()", "class view"]
POLICIES = ["close", "reply", "raise", "callable"]


async def tell_the_client(ws: WebSocket, error: InvalidMessage) -> None:
    """An `on_invalid` of the application's own: a frame of its making."""
    await ws.send_json({"refused": error.reason, "code": error.close_code})


def policy_of(name: str) -> Any:
    return tell_the_client if name == "callable" else name


def echo_view(path: str, disconnects: list[int], catch: bool = False) -> Any:
    """A view echoing every message it gets through `path` (`PATHS`); with `catch`, one
    that tells the client `caught <code> <reason>` for an `InvalidMessage`, and goes on.
    A class view records its `on_disconnect` codes in `disconnects`."""
    if path == "class view":

        class Echo(WebSocketView):
            async def on_message(self, ws: WebSocket, message: Any) -> None:
                await ws.send(message)

            async def on_disconnect(self, ws: WebSocket, code: int) -> None:
                disconnects.append(code)

        return Echo

    async def echo(ws: WebSocket) -> None:
        while True:
            try:
                if path == "receive()":
                    while True:
                        await ws.send(await ws.receive())
                elif path == "async for":
                    async for message in ws:
                        await ws.send(message)
                else:
                    async for message in ws.iter_json():
                        await ws.send(message)
                return
            except InvalidMessage as error:
                if not catch:
                    raise
                await ws.send_text(f"caught {error.close_code} {error.reason}")

    return echo


def send_frame(session: Any, payload: str | bytes) -> None:
    if isinstance(payload, str):
        session.send_text(payload)
    else:
        session.send_bytes(payload)


def sent_text(data: str) -> dict[str, Any]:
    return {"type": "websocket.send", "text": data}


def sent_json(data: Any) -> dict[str, Any]:
    return sent_text(json.dumps(data, separators=(",", ":"), ensure_ascii=False))


def closed(code: int, reason: str) -> dict[str, Any]:
    return {"type": "websocket.close", "code": code, "reason": reason}


def expected_answers(shape: Shape, policy: str, path: str) -> list[dict[str, Any]]:
    """What the client receives for: a good message, the bad one, a good one."""
    first = sent_text(shape.echo)
    close = closed(shape.code, shape.reason)
    if policy == "close" or (policy == "raise" and path == "class view"):
        return [first, close]  # a class view cannot catch: it ends as with "close"
    if policy == "reply":
        middle = sent_json(shape.error_frame)
    elif policy == "raise":
        middle = sent_text(f"caught {shape.code} {shape.reason}")
    else:
        middle = sent_json({"refused": shape.reason, "code": shape.code})
    return [first, middle, first]


CASES = [
    pytest.param(shape, path, id=f"{shape.name}-{path}")
    for shape in SHAPES
    for path in PATHS
    if shape.typed or path != "iter_json()"  # iter_json() of a kind: receive_json()
]


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize(("shape", "path"), CASES)
def test_each_policy_answers_each_bad_message_on_each_receive_path(
    shape: Shape, path: str, policy: str
) -> None:
    disconnects: list[int] = []
    app = App()
    app.websocket_route("/ws", value_type=shape.value_type, on_invalid=policy_of(policy))(
        echo_view(path, disconnects, catch=policy == "raise")
    )
    expected = expected_answers(shape, policy, path)
    with TestClient(app) as test_client, test_client.websocket_connect("/ws") as session:
        session.send_text(shape.good)
        send_frame(session, shape.bad)
        session.send_text(shape.good)
        answers = [session.receive() for _ in expected]
    assert answers == expected
    if path == "class view":
        ended_by_the_message = expected[-1]["type"] == "websocket.close"
        assert disconnects == [shape.code if ended_by_the_message else 1000]


@pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
def test_receive_under_close_leaves_the_connection_open_when_the_view_catches(
    shape: Shape,
) -> None:
    states: list[WebSocketState] = []

    async def view(ws: WebSocket) -> None:
        try:
            await ws.receive()
        except InvalidMessage as error:
            states.append(ws.application_state)
            await ws.send_text(f"caught {error.close_code}")
        await ws.send(await ws.receive())

    with TestClient(websocket_view(value_type=shape.value_type)(view)).websocket_connect(
        "/"
    ) as session:
        send_frame(session, shape.bad)
        session.send_text(shape.good)
        assert session.receive() == sent_text(f"caught {shape.code}")
        assert session.receive() == sent_text(shape.echo)
    assert states == [WebSocketState.CONNECTED]


@pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
def test_async_for_under_close_has_closed_before_the_view_sees_the_error(shape: Shape) -> None:
    seen: list[tuple[type[InvalidMessage], WebSocketState]] = []

    async def view(ws: WebSocket) -> None:
        try:
            async for message in ws:
                await ws.send(message)
        except InvalidMessage as error:
            seen.append((type(error), ws.application_state))

    with TestClient(websocket_view(value_type=shape.value_type)(view)).websocket_connect(
        "/"
    ) as session:
        send_frame(session, shape.bad)
        assert session.receive() == closed(shape.code, shape.reason)
    assert len(seen) == 1
    assert issubclass(seen[0][0], shape.error)
    assert seen[0][1] is WebSocketState.DISCONNECTED


@pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
def test_async_for_under_raise_goes_on_after_several_bad_messages(shape: Shape) -> None:
    got: list[Any] = []
    caught: list[str] = []

    async def view(ws: WebSocket) -> None:
        while True:
            try:
                async for message in ws:
                    got.append(message)
                    if len(got) == 3:
                        await ws.send_text("done")
                return
            except InvalidMessage as error:
                caught.append(error.reason)

    endpoint = websocket_view(value_type=shape.value_type, on_invalid="raise")(view)
    with TestClient(endpoint).websocket_connect("/") as session:
        for _ in range(3):
            send_frame(session, shape.bad)
            send_frame(session, shape.bad)
            session.send_text(shape.good)
        assert session.receive() == sent_text("done")
    assert caught == [shape.reason] * 6
    assert len(got) == 3
    assert got[0] == got[1] == got[2]


def test_a_synchronous_callable_decides_too() -> None:
    told: list[tuple[str, str]] = []

    def note(ws: WebSocket, error: InvalidMessage) -> None:
        told.append((ws.scope["path"], error.reason))

    app = App()
    app.websocket_route("/users", value_type=User, on_invalid=note)(echo_view("async for", []))
    with TestClient(app) as test_client, test_client.websocket_connect("/users") as session:
        session.send_text(TRUNCATED)
        session.send_text(USER_JSON)
        assert session.receive() == sent_text(PYDANTIC_ECHO)  # nothing for the bad one
    assert told == [("/users", "invalid JSON: EOF while parsing a string")]


def test_a_callable_may_build_on_the_reply_frame() -> None:
    async def hint(ws: WebSocket, error: InvalidMessage) -> None:
        await ws.send_json({**invalid_reply(error), "hint": "see /docs"})

    endpoint = websocket_view(value_type=User, on_invalid=hint)(echo_view("async for", []))
    with TestClient(endpoint).websocket_connect("/") as session:
        session.send_text(BAD_AGE)
        session.send_text(USER_JSON)
        assert session.receive() == sent_json({**ERROR, "detail": AGE_DETAIL, "hint": "see /docs"})
        assert session.receive() == sent_text(PYDANTIC_ECHO)


@pytest.mark.parametrize("path", ["receive()", "async for", "class view"])
def test_a_callable_that_raises_the_error_closes_as_close_does(path: str) -> None:
    disconnects: list[int] = []

    async def refuse(ws: WebSocket, error: InvalidMessage) -> None:
        raise error

    app = App()
    app.websocket_route("/ws", value_type=StructUser, on_invalid=refuse)(
        echo_view(path, disconnects)
    )
    with TestClient(app) as test_client, test_client.websocket_connect("/ws") as session:
        session.send_text(BAD_AGE)
        assert session.receive() == closed(1007, "invalid message: age: Expected `int`, got `str`")
    assert disconnects == ([1007] if path == "class view" else [])


def test_a_callable_that_raises_another_error_is_the_applications_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def broken(ws: WebSocket, error: InvalidMessage) -> None:
        raise RuntimeError("the policy broke")

    endpoint = websocket_view(value_type=User, on_invalid=broken)(echo_view("async for", []))
    caplog.set_level(logging.INFO, logger="bocws")

    def talk() -> None:
        with TestClient(endpoint).websocket_connect("/") as session:
            session.send_text(TRUNCATED)
            session.receive()  # raises the view's error

    with pytest.raises(RuntimeError, match="the policy broke"):
        talk()
    errors = [record.getMessage() for record in caplog.records if record.levelno == logging.ERROR]
    assert errors == [
        "'/': view echo_view.<locals>.echo raised RuntimeError: the policy broke; "
        "closed with 1011 (INTERNAL_ERROR) 'internal error'"
    ]


def test_a_callable_may_close_the_connection_itself() -> None:
    async def goodbye(ws: WebSocket, error: InvalidMessage) -> None:
        await ws.close(4000, "bad client")

    endpoint = websocket_view(value_type=User, on_invalid=goodbye)(echo_view("async for", []))
    with TestClient(endpoint).websocket_connect("/") as session:
        session.send_text(BAD_AGE)
        assert session.receive() == closed(4000, "bad client")


def test_the_error_frame_holds_ten_errors_at_most_and_never_the_input() -> None:
    endpoint = websocket_view(value_type=list[int], on_invalid="reply")(echo_view("async for", []))
    with TestClient(endpoint).websocket_connect("/") as session:
        session.send_text(json.dumps([SECRET] * 50))
        answer = session.receive()
    assert SECRET not in answer["text"]
    assert json.loads(answer["text"]) == {
        **ERROR,
        "detail": [
            {
                "type": "int_parsing",
                "loc": [index],
                "msg": "Input should be a valid integer, unable to parse string as an integer",
            }
            for index in range(10)
        ],
    }


def test_the_error_frames_detail_fits_in_four_kib() -> None:
    # Each error is located by two keys of the client's, cut to 200 characters: about
    # 500 bytes an entry, so fewer than ten fit.
    endpoint = websocket_view(value_type=dict[str, dict[str, int]], on_invalid="reply")(
        echo_view("async for", [])
    )
    document = {f"{index}" + "k" * 300: {"v" * 300: "x"} for index in range(12)}
    with TestClient(endpoint).websocket_connect("/") as session:
        session.send_text(json.dumps(document))
        answer = session.receive()
    detail = json.loads(answer["text"])["detail"]
    assert 1 <= len(detail) < 10
    assert len(json.dumps(detail, separators=(",", ":"), ensure_ascii=False).encode()) <= 4096
    assert detail[0] == {
        "type": "int_parsing",
        "loc": ["0" + "k" * 198 + "…", "v" * 199 + "…"],
        "msg": "Input should be a valid integer, unable to parse string as an integer",
    }


@pytest.mark.parametrize(
    ("receive", "payload", "error"),
    [
        ("receive_json", TRUNCATED, InvalidJSON),
        ("receive_text", USER_JSON.encode(), MessageTypeError),
        ("receive_bytes", USER_JSON, MessageTypeError),
    ],
)
@pytest.mark.parametrize("policy", POLICIES)
def test_the_explicit_receives_raise_whatever_the_policy_and_leave_the_connection_open(
    receive: str, payload: str | bytes, error: type[InvalidMessage], policy: str
) -> None:
    caught: list[type[InvalidMessage]] = []

    async def view(ws: WebSocket) -> None:
        try:
            await getattr(ws, receive)()
        except InvalidMessage as raised:
            caught.append(type(raised))
        await ws.send(await ws.receive())

    endpoint = websocket_view(value_type=User, on_invalid=policy_of(policy))(view)
    with TestClient(endpoint).websocket_connect("/") as session:
        send_frame(session, payload)
        session.send_text(USER_JSON)
        assert session.receive() == sent_text(PYDANTIC_ECHO)  # nothing before it
    assert caught == [error]


@pytest.mark.parametrize("tp", [Wide, StructWide])
def test_the_close_reason_fits_in_a_close_frame(tp: Any) -> None:
    endpoint = websocket_view(value_type=tp)(echo_view("async for", []))
    with TestClient(endpoint).websocket_connect("/") as session:
        session.send_text(json.dumps({"é" * 80: SECRET}))
        answer = session.receive()
    assert answer["code"] == 1007
    assert answer["reason"].startswith("invalid message: éé")
    assert len(answer["reason"].encode()) <= 123
    assert SECRET not in answer["reason"]


# The option's plumbing: App default, routes, views, WebSocket.


def answer_to_bad_age(app: Any, path: str = "/users") -> dict[str, Any]:
    """What the client at `path` of `app` gets for a message of the wrong age, then a
    good one (the echo, unless the connection was closed)."""
    with TestClient(app).websocket_connect(path) as session:
        session.send_text(BAD_AGE)
        session.send_text(USER_JSON)
        answer: dict[str, Any] = session.receive()
        if answer["type"] != "websocket.close":
            assert session.receive() == sent_text(PYDANTIC_ECHO)
    return answer


REPLIED = sent_json({**ERROR, "detail": AGE_DETAIL})
CLOSED = closed(1007, AGE_REASON)
CAUGHT = sent_text(f"caught 1007 {AGE_REASON}")


def test_the_app_default_applies_to_its_routes() -> None:
    app = App(on_invalid="reply")
    app.websocket_route("/users", value_type=User)(echo_view("async for", []))
    assert answer_to_bad_age(app) == REPLIED


def test_the_app_default_may_be_a_callable() -> None:
    app = App(on_invalid=tell_the_client)
    app.websocket_route("/users", value_type=User)(echo_view("async for", []))
    assert answer_to_bad_age(app) == sent_json({"refused": AGE_REASON, "code": 1007})


def test_a_routes_own_option_overrides_the_app_default() -> None:
    app = App(on_invalid="reply")
    app.websocket_route("/users", value_type=User, on_invalid="raise")(
        echo_view("async for", [], catch=True)
    )
    app.websocket_route("/closing", value_type=User, on_invalid="close")(echo_view("async for", []))
    assert answer_to_bad_age(app) == CAUGHT
    assert answer_to_bad_age(app, "/closing") == CLOSED


def test_routes_given_as_route_objects_take_the_app_default() -> None:
    from starlette.routing import WebSocketRoute

    endpoint = websocket_view(value_type=User)(echo_view("async for", []))
    app = App(routes=[WebSocketRoute("/users", endpoint)], on_invalid="reply")
    assert answer_to_bad_age(app) == REPLIED


def test_a_class_attribute_sets_the_policy_and_overrides_the_app_default() -> None:
    class Replying(WebSocketView):
        value_type = User
        on_invalid: Any = "reply"

        async def on_message(self, ws: WebSocket, message: Any) -> None:
            await ws.send(message)

    class Closing(Replying):
        on_invalid = "close"

    class Inheriting(WebSocketView):
        value_type = User

        async def on_message(self, ws: WebSocket, message: Any) -> None:
            await ws.send(message)

    plain = App()
    plain.websocket_route("/users")(Replying)
    assert answer_to_bad_age(plain) == REPLIED
    replying = App(on_invalid="reply")
    replying.websocket_route("/users")(Closing)
    replying.websocket_route("/inheriting")(Inheriting)
    replying.websocket_route("/overridden", on_invalid="close")(Replying)
    assert answer_to_bad_age(replying) == CLOSED
    assert answer_to_bad_age(replying, "/inheriting") == REPLIED
    assert answer_to_bad_age(replying, "/overridden") == CLOSED


def test_a_class_attribute_may_be_a_callable() -> None:
    class Telling(WebSocketView):
        value_type = User
        on_invalid = staticmethod(tell_the_client)

        async def on_message(self, ws: WebSocket, message: Any) -> None:
            await ws.send(message)

    app = App()
    app.websocket_route("/users")(Telling)
    assert answer_to_bad_age(app) == sent_json({"refused": AGE_REASON, "code": 1007})


def test_websocket_view_takes_the_option_and_keeps_it_on_an_app() -> None:
    endpoint = websocket_view(value_type=User, on_invalid="reply")(echo_view("async for", []))
    assert endpoint.options["on_invalid"] == "reply"
    assert answer_to_bad_age(endpoint, "/") == REPLIED
    app = App(on_invalid="raise")
    app.add_websocket_route("/users", endpoint)
    app.add_websocket_route("/closing", endpoint, on_invalid="close")
    assert answer_to_bad_age(app) == REPLIED
    assert answer_to_bad_age(app, "/closing") == CLOSED


def test_a_view_on_fastapi_keeps_its_option() -> None:
    from fastapi import FastAPI

    app = FastAPI()
    app.add_api_websocket_route(
        "/users", websocket_view(value_type=User, on_invalid="reply")(echo_view("async for", []))
    )
    assert answer_to_bad_age(app) == REPLIED


def test_websocket_takes_the_option_directly() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        ws = WebSocket(scope, receive, send, value_type=User, on_invalid="reply")
        async with ws:
            async for user in ws:
                await ws.send(user)

    assert answer_to_bad_age(app, "/") == REPLIED


async def never_called(ws: WebSocket) -> None:
    raise AssertionError("never called")


def declare(site: str, **options: Any) -> None:
    """Declare a route with `options` at `site`."""
    if site == "App()":
        App(**options)
    elif site == "App.websocket_route()":
        App().websocket_route("/x", **options)(never_called)
    elif site == "websocket_view()":
        websocket_view(**options)
    elif site == "websocket_view(view)":
        websocket_view(never_called, **options)
    elif site == "WebSocketView":
        view = type("Configured", (WebSocketView,), dict(options))
        App().websocket_route("/x")(view)
    else:
        connected().websocket(**options)


SITES = [
    "App()",
    "App.websocket_route()",
    "websocket_view()",
    "websocket_view(view)",
    "WebSocketView",
    "WebSocket()",
]


@pytest.mark.parametrize("site", SITES)
def test_an_unknown_policy_is_refused_at_declaration(site: str) -> None:
    with pytest.raises(
        ValueError,
        match=r"unknown on_invalid 'ignore': use 'close', 'reply', 'raise', or a function",
    ):
        declare(site, on_invalid="ignore")


@pytest.mark.parametrize("site", SITES)
@pytest.mark.parametrize("value", [3, None, b"reply"], ids=repr)
def test_a_policy_of_another_type_is_refused_at_declaration(site: str, value: Any) -> None:
    with pytest.raises(
        TypeError,
        match=r"on_invalid must be one of 'close', 'reply', 'raise' or a callable \(ws, error\), "
        rf"got {value!r}",
    ):
        declare(site, on_invalid=value)


@pytest.mark.parametrize("site", [site for site in SITES if site != "App()"])
def test_an_unknown_codec_is_refused_at_declaration(site: str) -> None:
    with pytest.raises(
        ValueError, match=r"codec must be None, 'pydantic' or 'msgspec', got 'bogus'"
    ):
        declare(site, codec="bogus", value_type=User)


def test_websocket_refuses_an_unknown_codec_without_a_type_too() -> None:
    # As routes do (test_an_unknown_codec_is_refused_at_declaration): the option is
    # checked whatever the kinds.
    with pytest.raises(
        ValueError, match=r"codec must be None, 'pydantic' or 'msgspec', got 'bogus'"
    ):
        connected().websocket(codec="bogus")


def numbers_app(site: str, library: Any) -> Any:
    """An application echoing lists of ints, read by `library`, declared at `site`."""
    if site == "WebSocket()":

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            ws = WebSocket(
                scope, receive, send, value_type=list[int], codec=library, on_invalid="reply"
            )
            async with ws:
                async for numbers in ws:
                    await ws.send(numbers)

        return app
    endpoint = websocket_view(value_type=list[int], codec=library, on_invalid="reply")(
        echo_view("async for", [])
    )
    assert endpoint.options["codec"] == library
    return endpoint


@pytest.mark.parametrize("site", ["websocket_view()", "WebSocket()"])
def test_codec_msgspec_reads_a_type_that_is_no_struct_with_msgspec(site: str) -> None:
    answers: dict[str, list[Any]] = {}
    for library in ("pydantic", "msgspec"):
        with TestClient(numbers_app(site, library)).websocket_connect("/") as session:
            session.send_text('[1, "2", 3]')
            session.send_text("[1, 2, 3.0]")
            answers[library] = [json.loads(session.receive()["text"]) for _ in range(2)]
    assert answers["msgspec"] == [
        {
            **ERROR,
            "detail": [{"type": "validation", "loc": [1], "msg": "Expected `int`, got `str`"}],
        },
        {
            **ERROR,
            "detail": [{"type": "validation", "loc": [2], "msg": "Expected `int`, got `float`"}],
        },
    ]
    assert answers["pydantic"] == [[1, 2, 3], [1, 2, 3]]  # pydantic's lax mode converts


@pytest.mark.anyio
async def test_codec_msgspec_raises_msgspecs_errors() -> None:
    server = connected(text('["x"]'))
    ws = server.websocket(value_type=list[int], codec="msgspec", on_invalid="raise")
    with pytest.raises(InvalidMessage) as raised:
        await ws.receive()
    assert raised.value.errors == [
        {"type": "validation", "loc": (0,), "msg": "Expected `int`, got `str`"}
    ]


# The log: one line per connection, never the content.


def invalid_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == "bocws" and "invalid message from the client" in record.getMessage()
    ]


def assert_secret_never_logged(caplog: pytest.LogCaptureFixture) -> None:
    for record in caplog.records:
        assert SECRET not in record.getMessage()
        assert SECRET not in repr(record.args)
        assert record.exc_info is None or SECRET not in repr(record.exc_info[1])


def test_reply_logs_one_info_line_per_connection_without_the_content(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    app = App(on_invalid="reply")
    for path in ("/users", "/admins"):
        app.websocket_route(path, value_type=User)(echo_view("async for", []))
    with TestClient(app) as test_client:
        for path in ("/users", "/admins", "/users"):
            with test_client.websocket_connect(path) as session:
                for _ in range(20):
                    session.send_text(BAD_AGE)
                    session.send_text(TRUNCATED)
                    session.send_bytes(b"\xff" + SECRET.encode())
                session.send_text(USER_JSON)
                for _ in range(60):
                    assert json.loads(session.receive()["text"])["type"] == "error"
                assert session.receive() == sent_text(PYDANTIC_ECHO)
    assert invalid_lines(caplog) == [
        f"'{path}': invalid message from the client ({AGE_REASON}); on_invalid='reply'"
        for path in ("/users", "/admins", "/users")
    ]
    assert all(
        record.levelno == logging.INFO
        for record in caplog.records
        if "invalid message from the client" in record.getMessage()
    )
    assert_secret_never_logged(caplog)


@pytest.mark.parametrize("policy", ["close", "raise", "callable"])
def test_no_policy_logs_the_content(caplog: pytest.LogCaptureFixture, policy: str) -> None:
    caplog.set_level(logging.DEBUG)
    endpoint = websocket_view(value_type=StructUser, on_invalid=policy_of(policy))(
        echo_view("async for", [], catch=policy == "raise")
    )
    with TestClient(endpoint).websocket_connect("/") as session:
        for payload in (BAD_AGE, TRUNCATED):
            session.send_text(payload)
            answer = session.receive()
            assert SECRET not in json.dumps(answer)
            if answer["type"] == "websocket.close":
                break
    # A callable is logged once; "raise" leaves it to the view; "close" logs the close.
    assert len(invalid_lines(caplog)) == (1 if policy == "callable" else 0)
    if policy == "close":
        assert [
            record.getMessage() for record in caplog.records if record.levelno >= logging.INFO
        ] == [
            "'/': closed with 1007 (INVALID_PAYLOAD) 'invalid message: age: Expected `int`, "
            "got `str`': view echo_view.<locals>.echo: the client sent bad data: "
            "invalid StructUser: age: Expected `int`, got `str`"
        ]
    assert_secret_never_logged(caplog)


# Typed messages end to end.


@pytest.mark.parametrize(("tp", "echo"), [(User, PYDANTIC_ECHO), (StructUser, MSGSPEC_ECHO)])
def test_send_takes_an_instance_and_refuses_another_type_sending_nothing(
    tp: Any, echo: str
) -> None:
    refused: list[str] = []

    async def view(ws: WebSocket) -> None:
        user = await ws.receive()
        for wrong in (USER, User.model_validate(USER) if tp is StructUser else 3):
            try:
                await ws.send(wrong)
            except TypeError as error:
                refused.append(str(error))
        await ws.send(user)

    with TestClient(websocket_view(value_type=tp)(view)).websocket_connect("/") as session:
        session.send_text(USER_JSON)
        assert session.receive() == sent_text(echo)  # nothing before it
        assert session.receive()["type"] == "websocket.close"
    assert len(refused) == 2
    assert all(tp.__name__ in message for message in refused)


@pytest.mark.parametrize("tp", [User, StructUser])
def test_iter_json_yields_instances_of_the_type(tp: Any) -> None:
    got: list[Any] = []

    async def view(ws: WebSocket) -> None:
        async for user in ws.iter_json():
            got.append(user)

    with TestClient(websocket_view(receive_type=tp)(view)).websocket_connect("/") as session:
        session.send_text(USER_JSON)
        session.send_bytes(USER_JSON.encode())
    assert len(got) == 2
    assert all(type(user) is tp for user in got)
    assert got[0] == got[1]
    assert got[0].address.zip == "W1"


@pytest.mark.parametrize("tp", [User, StructUser])
def test_receive_reads_json_in_binary_frames(tp: Any) -> None:
    got: list[Any] = []
    document = dict(USER, name="Ada Lovelace ♞ é")

    async def view(ws: WebSocket) -> None:
        got.append(await ws.receive())
        got.append(await ws.receive())

    with TestClient(websocket_view(receive_type=tp)(view)).websocket_connect("/") as session:
        session.send_bytes(json.dumps(document, ensure_ascii=False).encode())
        session.send_bytes(json.dumps(document).encode())
    assert got == [msgspec.convert(document, tp) if tp is StructUser else tp(**document)] * 2


def test_send_json_writes_a_model_as_pydantic_and_a_struct_as_msgspec_does() -> None:
    async def view(ws: WebSocket) -> None:
        message = await ws.receive()
        await ws.send_json(User.model_validate(message))
        await ws.send(User.model_validate(message))
        await ws.send_json(msgspec.convert(message, StructUser))
        await ws.send_json({"users": [User.model_validate(message)]}, mode="binary")

    with TestClient(websocket_view(value_type="json")(view)).websocket_connect("/") as session:
        session.send_text(USER_JSON)
        assert session.receive() == sent_text(PYDANTIC_ECHO)
        assert session.receive() == sent_text(PYDANTIC_ECHO)
        assert session.receive() == sent_text(MSGSPEC_ECHO)
        assert session.receive() == {
            "type": "websocket.send",
            "bytes": ('{"users":[' + PYDANTIC_ECHO + "]}").encode(),
        }


def test_a_typed_send_type_with_text_receives() -> None:
    async def view(ws: WebSocket) -> None:
        async for name in ws:
            await ws.send(User.model_validate(dict(USER, name=name)))

    endpoint = websocket_view(receive_type="text", send_type=User, on_invalid="reply")(view)
    with TestClient(endpoint).websocket_connect("/") as session:
        session.send_bytes(b"Grace")
        session.send_text("Grace")
        assert session.receive() == sent_json(WRONG_FRAME.error_frame)
        assert session.receive() == sent_text(
            User.model_validate(dict(USER, name="Grace")).model_dump_json()
        )


# The property: any JSON either reaches the view as the library decodes it, or gets
# the policy, never a 1011.

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=12,
)


def mostly(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """`valid` seven times in eight, else any JSON value."""
    return st.sampled_from(range(8)).flatmap(lambda draw: json_values if draw == 5 else valid)


user_like = st.fixed_dictionaries(
    {
        "name": mostly(st.text(max_size=6)),
        "age": mostly(st.integers()),
        "email": st.text(max_size=6),
        "tags": mostly(st.lists(st.text(max_size=4), max_size=3)),
        "address": mostly(
            st.fixed_dictionaries({"city": st.text(max_size=4), "zip": mostly(st.text())})
        ),
    },
    optional={"extra": json_values},
)


@st.composite
def documents(draw: st.DrawFn) -> str:
    """A text frame's payload: JSON of any value or of one shaped like a user, escaped
    or not, and now and then cut short (not JSON any more)."""
    value = draw(user_like if draw(st.sampled_from(range(3))) else json_values)
    document = json.dumps(value, ensure_ascii=draw(st.booleans()))
    if draw(st.sampled_from(range(10))) == 5:
        document = document[: draw(st.integers(0, len(document) - 1))]
    return document


def reference(tp: Any, document: str) -> tuple[str, Any]:
    """What the library itself makes of `document`: `("value", the value)`, or
    `("detail", its errors as the error frame carries them)`."""
    if tp is StructUser:
        try:
            return "value", msgspec.json.Decoder(tp).decode(document)
        except msgspec.DecodeError as error:
            if not isinstance(error, msgspec.ValidationError):
                return "detail", [{"type": "json_invalid", "loc": [], "msg": str(error)}]
            message, at, path = str(error).rpartition(" - at `")
            if not at:  # an error at the top
                message, path = path, "$`"
            return "detail", [{"type": "validation", "path": path[:-1], "msg": message}]
    try:
        return "value", TypeAdapter(tp).validate_json(document)
    except ValidationError as error:
        return "detail", [
            {"type": entry["type"], "loc": list(entry["loc"]), "msg": entry["msg"]}
            for entry in error.errors(include_url=False, include_input=False)
        ][:10]


def msgspec_path(loc: list[Any]) -> str:
    """A location as msgspec writes it: `$.address.zip`, `$.tags[1]`."""
    return "$" + "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc)


def serve_one(tp: Any, policy: Any, path: str, document: str) -> tuple[list[Any], list[Any]]:
    """Run a view on the fake server for one text frame; what it got, what was sent."""
    got: list[Any] = []

    async def view(ws: WebSocket) -> None:
        if path == "async for":
            async for value in ws:
                got.append(value)
        else:
            while True:
                got.append(await ws.receive())

    endpoint = websocket_view(value_type=tp, on_invalid=policy)(view)
    server = connected(text(document), disconnect(1000))
    send: Any = server.send

    async def main() -> None:
        with contextlib.suppress(Exception):  # a bug closes with 1011: checked by the caller
            await endpoint(server.scope, server.receive, send)

    asyncio.run(main())
    return got, server.sent[1:]  # after the accept


@pytest.mark.parametrize("path", ["async for", "receive()"])
@pytest.mark.parametrize("policy", ["reply", "close"])
@pytest.mark.parametrize("tp", [User, StructUser])
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(document=documents())
def test_any_json_reaches_the_view_as_the_library_decodes_it_or_gets_the_policy(
    tp: Any, policy: str, path: str, document: str
) -> None:
    outcome, expected = reference(tp, document)
    event(outcome)
    got, sent = serve_one(tp, policy, path, document)
    assert all(message.get("code") != 1011 for message in sent), sent
    if outcome == "value":
        assert got == [expected]
        assert sent == []  # the client's own close ended it
        return
    assert got == []
    assert len(sent) == 1
    if policy == "close":
        assert sent[0]["type"] == "websocket.close"
        assert sent[0]["code"] == 1007
        assert sent[0]["reason"].startswith(("invalid message: ", "invalid JSON: "))
        assert len(sent[0]["reason"].encode()) <= 123
        return
    frame = json.loads(sent[0]["text"])
    assert frame.keys() == {"type", "error", "detail"}
    assert (frame["type"], frame["error"]) == ("error", "invalid message")
    if tp is StructUser:
        detail = [
            {"type": entry["type"], "path": msgspec_path(entry["loc"]), "msg": entry["msg"]}
            for entry in frame["detail"]
        ]
        if expected[0]["type"] == "json_invalid":
            detail = frame["detail"]
        assert detail == expected
    else:
        assert frame["detail"] == expected


# A subclass's receive().


class Tagged(WebSocket):
    """A subclass whose receive() builds on the base's, as Starlette's users write."""

    async def receive(self, *, timeout: float | None = None) -> Any:
        return ("tagged", await super().receive(timeout=timeout))


@pytest.mark.anyio
async def test_a_subclass_receive_may_call_the_base_receive() -> None:
    server = connected(text("hi"))
    send: Any = server.send
    ws = Tagged(server.scope, server.receive, send)
    assert await ws.receive() == ("tagged", "hi")


@pytest.mark.anyio
async def test_a_subclass_receive_gets_the_policy_of_the_base_receive() -> None:
    server = connected(text(BAD_AGE), text(USER_JSON), disconnect(1000))
    send: Any = server.send
    ws = Tagged(server.scope, server.receive, send, value_type=User, on_invalid="reply")
    assert await ws.receive() == ("tagged", User.model_validate(USER))
    assert server.sent[1:] == [sent_json({**ERROR, "detail": AGE_DETAIL})]


# A bad message while the client leaves.


@pytest.mark.anyio
async def test_async_for_ends_quietly_when_the_client_left_before_the_reply() -> None:
    # The client sent a bad message and closed with 1000; the server's send of the
    # reply fails as the connection is gone. `async for` ends on 1000, as it does when
    # the close comes before any bad message.
    server = connected(text(TRUNCATED), disconnect(1000))

    async def gone(message: Any) -> None:
        if message["type"] == "websocket.send":
            raise OSError("the connection is gone")
        await server.send(message)

    ws = WebSocket(server.scope, server.receive, gone, value_type=User, on_invalid="reply")
    got = [user async for user in ws]
    assert got == []


# Under a real uvicorn.


@pytest.mark.anyio
@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
async def test_reply_under_uvicorn_answers_the_bad_message_and_echoes_the_good(
    implementation: str,
) -> None:
    app = App(on_invalid="reply")
    app.websocket_route("/users", value_type=User)(echo_view("async for", []))
    async with running_server(app, implementation) as base, client(f"{base}/users") as connection:
        await connection.send(BAD_AGE)
        await connection.send(USER_JSON.encode())  # a binary frame
        assert json.loads(await recv(connection)) == {**ERROR, "detail": AGE_DETAIL}
        assert await recv(connection) == PYDANTIC_ECHO
        await connection.send(TRUNCATED)
        assert json.loads(await recv(connection))["detail"][0]["type"] == "json_invalid"
        await connection.send(USER_JSON)
        assert await recv(connection) == PYDANTIC_ECHO
