"""Views: `websocket_view`, `ViewEndpoint` and `WebSocketView`, message by message.

Most tests drive a `ViewEndpoint` with the in-memory `FakeServer` and assert the exact
ASGI messages it sends; the integration tests at the end go through Starlette's and
FastAPI's routing with Starlette's TestClient.

This module uses `from __future__ import annotations`: every annotation of the views
below is a string that bocws resolves.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
import uuid
from typing import TYPE_CHECKING, Any, Optional
from urllib.parse import urlencode

import anyio
import pytest
from fastapi import Depends, FastAPI
from fastapi import WebSocketException as FastAPIWebSocketException
from starlette.applications import Starlette
from starlette.exceptions import WebSocketException
from starlette.routing import WebSocketRoute
from starlette.testclient import TestClient
from websockets.asyncio.client import connect

import bocws._lifecycle
from bocws import (
    App,
    InvalidJSON,
    ViewEndpoint,
    WebSocket,
    WebSocketDisconnect,
    WebSocketView,
    websocket_view,
)
from bocws._lifecycle import finish as _finish

from .fake import CONNECT, FakeServer, binary, connected, disconnect, text, websocket_scope
from .processes import Uvicorn

if TYPE_CHECKING:
    from bocws import WebSocket as TypeCheckingOnlyWebSocket

pytestmark = pytest.mark.anyio

ACCEPT = {"type": "websocket.accept", "subprotocol": None, "headers": []}
REFUSED = {"type": "websocket.close", "code": 403, "reason": ""}


def close(code: int = 1000, reason: str = "") -> dict[str, Any]:
    return {"type": "websocket.close", "code": code, "reason": reason}


def sent_text(data: str) -> dict[str, Any]:
    return {"type": "websocket.send", "text": data}


def client(
    *incoming: dict[str, Any], query: str = "", path_params: dict[str, Any] | None = None
) -> FakeServer:
    """A server whose client connects to a route with `path_params` and `query`."""
    server = connected(*incoming)
    server.scope["query_string"] = query.encode()
    server.scope["path_params"] = dict(path_params or {})
    return server


async def run(endpoint: ViewEndpoint, server: FakeServer) -> None:
    await endpoint(server.scope, server.receive, server.send)


def called_with(server: FakeServer) -> Any:
    """What the view recorded in `ws.state.called`; `None` if the view never ran."""
    return server.scope["state"].get("called")


class Log:
    """The records of the "bocws" logger, from INFO up."""

    def __init__(self, caplog: pytest.LogCaptureFixture) -> None:
        self.caplog = caplog

    def records(self, level: int) -> list[logging.LogRecord]:
        return [
            record
            for record in self.caplog.records
            if record.name == "bocws" and record.levelno == level
        ]

    def messages(self, level: int) -> list[str]:
        return [record.getMessage() for record in self.records(level)]


@pytest.fixture
def log(caplog: pytest.LogCaptureFixture) -> Log:
    caplog.set_level(logging.INFO, logger="bocws")
    return Log(caplog)


# Declaring views.


def test_bare_decorator_makes_an_endpoint_with_the_default_options() -> None:
    @websocket_view
    async def view(ws: WebSocket) -> None:
        pass

    assert isinstance(view, ViewEndpoint)
    assert view.options["auto_accept"] is True
    assert (view.options["value_type"], view.options["receive_type"]) == (None, None)
    assert view.options["send_type"] is None
    assert set(view.options["caught_close_codes"]) == {1000, 1001}


def test_decorator_with_options_sets_them() -> None:
    @websocket_view(value_type="json", auto_accept=False, caught_close_codes=[4000])
    async def view(ws: WebSocket) -> None:
        pass

    assert view.options["value_type"] == "json"
    assert view.options["auto_accept"] is False
    assert set(view.options["caught_close_codes"]) == {4000}


def test_endpoint_keeps_the_views_name_doc_and_module() -> None:
    async def chat(ws: WebSocket) -> None:
        """Relay messages."""

    endpoint = websocket_view(chat)
    assert endpoint.view is chat
    assert endpoint.__name__ == "chat"
    assert endpoint.__qualname__ == chat.__qualname__
    assert endpoint.__doc__ == "Relay messages."
    assert endpoint.__module__ == __name__
    assert repr(endpoint) == f"<ViewEndpoint {chat.__qualname__}>"


def test_replace_makes_a_new_endpoint_with_merged_options() -> None:
    async def view(ws: WebSocket) -> None:
        pass

    original = websocket_view(view, value_type="json", caught_close_codes=[4000])
    replaced = original.replace(auto_accept=False, value_type="bytes")
    assert replaced is not original
    assert replaced.view is view
    assert replaced.options["value_type"] == "bytes"
    assert replaced.options["auto_accept"] is False
    assert set(replaced.options["caught_close_codes"]) == {4000}
    assert original.options["value_type"] == "json"
    assert original.options["auto_accept"] is True


def test_a_sync_function_is_refused_naming_it() -> None:
    def sync_view(ws: WebSocket) -> None:
        pass

    with pytest.raises(TypeError, match=r"'.*sync_view' must be an async function"):
        websocket_view(sync_view)  # type: ignore[type-var]


def test_a_class_not_subclassing_websocket_view_is_refused_naming_it() -> None:
    class NotAView:
        async def on_message(self, ws: WebSocket, message: Any) -> None:
            pass

    with pytest.raises(TypeError, match=r"'.*NotAView' must subclass bocws.WebSocketView"):
        websocket_view(NotAView)  # type: ignore[type-var]


def test_a_view_taking_no_argument_is_refused() -> None:
    async def view() -> None:
        pass

    with pytest.raises(TypeError, match="must take the WebSocket as its first argument"):
        websocket_view(view)


def test_a_view_taking_the_websocket_by_keyword_only_is_refused() -> None:
    async def view(*, ws: WebSocket) -> None:
        pass

    with pytest.raises(TypeError, match="must take the WebSocket as its first argument"):
        websocket_view(view)


def test_a_required_positional_only_parameter_is_refused() -> None:
    async def view(ws: WebSocket, room: str, /) -> None:
        pass

    with pytest.raises(TypeError, match="'room' is positional-only"):
        websocket_view(view)


def test_unknown_options_are_a_type_error_naming_them() -> None:
    async def view(ws: WebSocket) -> None:
        pass

    with pytest.raises(TypeError, match=r"unknown view option.*value_typ.*use auto_accept"):
        websocket_view(value_typ="json")(view)  # type: ignore[call-overload]


@pytest.mark.parametrize("option", ["value_type", "receive_type", "send_type"])
def test_an_unknown_message_type_is_a_value_error(option: str) -> None:
    async def view(ws: WebSocket) -> None:
        pass

    with pytest.raises(ValueError, match=f"unknown {option} 'xml'"):
        websocket_view(view, **{option: "xml"})  # type: ignore[call-overload]


@pytest.mark.parametrize("codes", [["1000"], len, 1000])
def test_invalid_caught_close_codes_are_refused_at_decoration(codes: Any) -> None:
    async def view(ws: WebSocket) -> None:
        pass

    with pytest.raises(TypeError, match="caught_close_codes"):
        websocket_view(view, caught_close_codes=codes)


def test_an_unsupported_annotation_is_a_type_error_naming_the_parameter() -> None:
    async def view(ws: WebSocket, ids: list[int]) -> None:
        pass

    with pytest.raises(TypeError, match=r"parameter 'ids' of view '.*view' is annotated"):
        websocket_view(view)


def test_a_union_of_two_types_is_an_unsupported_annotation() -> None:
    async def view(ws: WebSocket, n: int | str) -> None:
        pass

    with pytest.raises(TypeError, match="parameter 'n'"):
        websocket_view(view)


# Filling parameters from the path and the query string.


async def take_str(ws: WebSocket, x: str) -> None:
    ws.state.called = {"x": x}


async def take_int(ws: WebSocket, x: int) -> None:
    ws.state.called = {"x": x}


async def take_float(ws: WebSocket, x: float) -> None:
    ws.state.called = {"x": x}


async def take_bool(ws: WebSocket, x: bool) -> None:
    ws.state.called = {"x": x}


async def take_unannotated(ws, x) -> None:  # type: ignore[no-untyped-def]
    ws.state.called = {"x": x}


async def take_any(ws: WebSocket, x: Any) -> None:
    ws.state.called = {"x": x}


async def take_int_or_none(ws: WebSocket, x: int | None) -> None:
    ws.state.called = {"x": x}


async def take_optional_int(ws: WebSocket, x: Optional[int]) -> None:  # noqa: UP045
    ws.state.called = {"x": x}


@pytest.mark.parametrize(
    ("view", "raw", "expected"),
    [
        (take_str, "héllo wörld", "héllo wörld"),
        (take_str, "", ""),
        (take_int, "42", 42),
        (take_float, "2.5", 2.5),
        (take_float, "-1e3", -1000.0),
        (take_bool, "true", True),
        (take_unannotated, "7", "7"),
        (take_any, "7", "7"),
        (take_int_or_none, "3", 3),
        (take_optional_int, "3", 3),
    ],
)
async def test_query_parameters_are_converted_by_annotation(
    view: Any, raw: str, expected: Any
) -> None:
    server = client(query=urlencode({"x": raw}))
    await run(websocket_view(view), server)
    called = called_with(server)
    assert called == {"x": expected}
    assert type(called["x"]) is type(expected)
    assert server.sent == [ACCEPT, close()]


async def test_evaluated_annotations_convert_too() -> None:
    async def view(ws, x):  # type: ignore[no-untyped-def]
        ws.state.called = {"x": x}

    view.__annotations__.update(x=int)  # a real type, not a string
    server = client(query="x=5")
    await run(websocket_view(view), server)
    assert called_with(server) == {"x": 5}


async def test_string_annotations_resolve_when_the_websocket_annotation_does_not() -> None:
    # A common pattern: the WebSocket type imported only under TYPE_CHECKING.
    async def view(ws: TypeCheckingOnlyWebSocket, x: int) -> None:
        ws.state.called = {"x": x}

    server = client(query="x=5")
    await run(websocket_view(view), server)
    assert called_with(server) == {"x": 5}


async def test_defaults_are_used_for_missing_query_parameters() -> None:
    async def view(ws: WebSocket, n: int = 5, tag: str | None = None) -> None:
        ws.state.called = {"n": n, "tag": tag}

    server = client()
    await run(websocket_view(view), server)
    assert called_with(server) == {"n": 5, "tag": None}


async def test_a_given_query_parameter_overrides_its_default() -> None:
    async def view(ws: WebSocket, n: int = 5) -> None:
        ws.state.called = {"n": n}

    server = client(query="n=6")
    await run(websocket_view(view), server)
    assert called_with(server) == {"n": 6}


async def test_the_last_of_repeated_query_parameters_wins() -> None:
    server = client(query="x=1&x=2")
    await run(websocket_view(take_int), server)
    assert called_with(server) == {"x": 2}


async def test_path_parameters_are_passed_as_keyword_arguments() -> None:
    async def view(ws: WebSocket, room: str, user: str) -> None:
        ws.state.called = {"room": room, "user": user}

    server = client(path_params={"room": "lobby", "user": "ana"})
    await run(websocket_view(view), server)
    assert called_with(server) == {"room": "lobby", "user": "ana"}


async def test_a_path_parameter_wins_over_a_query_parameter_of_the_same_name() -> None:
    server = client(query="x=from-query", path_params={"x": "from-path"})
    await run(websocket_view(take_str), server)
    assert called_with(server) == {"x": "from-path"}


async def test_a_string_path_parameter_is_converted_by_annotation() -> None:
    server = client(path_params={"x": "12"})
    await run(websocket_view(take_int), server)
    assert called_with(server) == {"x": 12}


async def test_an_already_converted_path_parameter_is_passed_as_is() -> None:
    server = client(path_params={"x": 12})  # as Starlette's {x:int} convertor gives it
    await run(websocket_view(take_int), server)
    assert called_with(server) == {"x": 12}


async def test_var_keyword_receives_every_path_parameter_and_no_query_parameter() -> None:
    async def view(ws: WebSocket, **params: Any) -> None:
        ws.state.called = params

    server = client(query="n=2", path_params={"room": "lobby", "id": 3})
    await run(websocket_view(view), server)
    assert called_with(server) == {"room": "lobby", "id": 3}


async def test_var_keyword_gets_the_path_parameters_not_taken_by_name() -> None:
    async def view(ws: WebSocket, room: str, **params: Any) -> None:
        ws.state.called = {"room": room, "params": params}

    server = client(path_params={"room": "lobby", "id": 3})
    await run(websocket_view(view), server)
    assert called_with(server) == {"room": "lobby", "params": {"id": 3}}


async def test_var_positional_and_optional_positional_only_parameters_are_left_alone() -> None:
    async def view(ws: WebSocket, flag: str = "default", /, *rest: Any, x: int) -> None:
        ws.state.called = {"flag": flag, "rest": rest, "x": x}

    server = client(query="flag=given&rest=1&x=1")
    await run(websocket_view(view), server)
    assert called_with(server) == {"flag": "default", "rest": (), "x": 1}


async def test_a_missing_required_parameter_refuses_the_handshake(log: Log) -> None:
    server = client(query="other=1")
    await run(websocket_view(take_int), server)
    assert server.sent == [REFUSED]
    assert called_with(server) is None
    assert log.messages(logging.INFO) == [
        "'/ws': rejecting the handshake: missing query parameter 'x'"
    ]
    assert log.records(logging.ERROR) == []


async def test_a_query_value_that_does_not_convert_refuses_the_handshake(log: Log) -> None:
    server = client(query="x=abc")
    await run(websocket_view(take_int), server)
    assert server.sent == [REFUSED]
    assert called_with(server) is None
    assert log.messages(logging.INFO) == [
        "'/ws': rejecting the handshake: query parameter 'x' must be an integer, got 'abc'"
    ]
    assert log.records(logging.ERROR) == []


async def test_a_path_value_that_does_not_convert_refuses_the_handshake(log: Log) -> None:
    server = client(path_params={"x": "abc"})
    await run(websocket_view(take_int), server)
    assert server.sent == [REFUSED]
    assert called_with(server) is None
    assert log.messages(logging.INFO) == [
        "'/ws': rejecting the handshake: path parameter 'x' must be an integer, got 'abc'"
    ]


async def test_an_empty_value_is_none_for_an_optional_parameter() -> None:
    server = client(query="x=")
    await run(websocket_view(take_int_or_none), server)  # no default to fall back to
    assert called_with(server) == {"x": None}


async def test_an_empty_value_is_a_value_not_a_missing_one() -> None:
    server = client(query="x=")
    await run(websocket_view(take_int), server)
    assert server.sent == [REFUSED]
    assert called_with(server) is None


async def test_a_uuid_parameter_converts_and_refuses_a_malformed_one() -> None:
    async def view(ws: WebSocket, key: uuid.UUID) -> None:
        ws.state.called = {"key": key}

    server = client(query="key=12345678-1234-5678-1234-567812345678")
    await run(websocket_view(view), server)
    assert called_with(server) == {"key": uuid.UUID("12345678-1234-5678-1234-567812345678")}
    server = client(query="key=nope")
    await run(websocket_view(view), server)
    assert server.sent == [REFUSED]


async def test_a_refused_parameter_is_refused_even_without_auto_accept() -> None:
    server = client(query="x=abc")
    await run(websocket_view(take_int, auto_accept=False), server)
    assert server.sent == [REFUSED]
    assert called_with(server) is None


# The converters' edge cases.


@pytest.mark.parametrize(("raw", "expected"), [("-3", -3), ("0", 0), ("007", 7), ("10", 10)])
async def test_int_accepts_plain_decimal_integers(raw: str, expected: int) -> None:
    server = client(query=f"x={raw}")
    await run(websocket_view(take_int), server)
    assert called_with(server) == {"x": expected}


@pytest.mark.parametrize(
    "raw", ["1.5", "%203", "3%20", "3_000", "%2B3", "", "-", "--3", "0x10", "1e3", "%D9%A3"]
)
async def test_int_refuses_anything_but_plain_decimal_integers(raw: str) -> None:
    # %20 is a space, %2B a "+", %D9%A3 the Arabic-Indic digit three.
    server = client(query=f"x={raw}")
    await run(websocket_view(take_int), server)
    assert server.sent == [REFUSED]
    assert called_with(server) is None


@pytest.mark.parametrize("raw", ["nan", "NaN", "inf", "-inf", "Infinity", "1e999", "abc", ""])
async def test_float_refuses_non_finite_and_non_numbers(raw: str) -> None:
    server = client(query=f"x={raw}")
    await run(websocket_view(take_float), server)
    assert server.sent == [REFUSED]
    assert called_with(server) is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("true", True),
        ("TRUE", True),
        ("1", True),
        ("yes", True),
        ("Yes", True),
        ("on", True),
        ("ON", True),
        ("false", False),
        ("False", False),
        ("0", False),
        ("no", False),
        ("NO", False),
        ("off", False),
        ("oFf", False),
    ],
)
async def test_bool_accepts_its_words_case_insensitively(raw: str, expected: bool) -> None:
    server = client(query=f"x={raw}")
    await run(websocket_view(take_bool), server)
    assert called_with(server) == {"x": expected}


@pytest.mark.parametrize("raw", ["2", "", "y", "n", "tru", "none", "null", "%20true"])
async def test_bool_refuses_other_words(raw: str, log: Log) -> None:
    server = client(query=f"x={raw}")
    await run(websocket_view(take_bool), server)
    assert server.sent == [REFUSED]
    assert called_with(server) is None
    assert "must be a boolean (true/false, 1/0, yes/no, on/off)" in log.messages(logging.INFO)[0]


# Lifecycle: returning.


async def test_a_view_that_returns_having_done_nothing_is_accepted_then_closed_1000() -> None:
    async def view(ws: WebSocket) -> None:
        pass

    server = client()
    await run(websocket_view(view), server)
    assert server.sent == [ACCEPT, close(1000)]


async def test_a_view_that_returns_without_accepting_refuses_the_handshake() -> None:
    async def view(ws: WebSocket) -> None:
        pass

    server = client()
    await run(websocket_view(view, auto_accept=False), server)
    assert server.sent == [close(1000)]


async def test_a_view_that_closed_itself_is_not_closed_again() -> None:
    async def view(ws: WebSocket) -> None:
        await ws.close(4000, "done")

    server = client()
    await run(websocket_view(view), server)
    assert server.sent == [ACCEPT, close(4000, "done")]


async def test_a_view_that_rejected_is_not_closed_again() -> None:
    async def view(ws: WebSocket) -> None:
        await ws.reject()

    server = client()
    await run(websocket_view(view), server)
    assert server.sent == [REFUSED]


async def test_a_view_echoes_until_the_client_closes_1000(log: Log) -> None:
    async def view(ws: WebSocket) -> None:
        async for message in ws:
            await ws.send(message)

    server = client(text("a"), text("b"), disconnect(1000))
    await run(websocket_view(view), server)
    assert server.sent == [ACCEPT, sent_text("a"), sent_text("b")]
    assert log.records(logging.ERROR) == []


# Lifecycle: the connection's own client disconnecting.


async def test_an_own_disconnect_with_a_caught_code_ends_async_for_quietly(log: Log) -> None:
    async def view(ws: WebSocket) -> None:
        async for _ in ws:
            pass  # pragma: no cover - the client sends nothing
        ws.state.called = "after the loop"

    server = client(disconnect(1001))
    await run(websocket_view(view), server)
    assert server.sent == [ACCEPT]
    assert called_with(server) == "after the loop"
    assert log.caplog.records == []


@pytest.mark.parametrize(
    ("caught", "code", "departure"),
    [
        ([4000], 4000, None),
        ([4000], 1000, "'/ws': the client left with 1000 (NORMAL_CLOSURE)"),
        (None, 4000, "'/ws': the client left with 4000"),
        (all, 4999, None),
    ],
)
async def test_caught_close_codes_option_decides_what_ends_async_for_quietly(
    caught: Any, code: int, departure: str | None, log: Log
) -> None:
    async def view(ws: WebSocket) -> None:
        async for _ in ws:
            pass  # pragma: no cover - the client sends nothing
        ws.state.called = "after the loop"

    options = {} if caught is None else {"caught_close_codes": caught}
    server = client(disconnect(code))
    await run(websocket_view(view, **options), server)  # nothing is raised either way
    assert server.sent == [ACCEPT]
    if departure is None:  # caught: the loop ended, the view went on
        assert called_with(server) == "after the loop"
        assert log.caplog.records == []
    else:  # raised out of the loop, then out of the view: the client's departure
        assert called_with(server) is None
        assert log.messages(logging.INFO) == [departure]


@pytest.mark.parametrize(
    ("code", "reason", "level", "message"),
    [
        (1000, "", logging.INFO, "'/ws': the client left with 1000 (NORMAL_CLOSURE)"),
        (1001, "", logging.INFO, "'/ws': the client left with 1001 (GOING_AWAY)"),
        (4000, "bye", logging.INFO, "'/ws': the client left with 4000 'bye'"),
        (1006, "", logging.INFO, "'/ws': the client left with 1006 (ABNORMAL_CLOSURE)"),
        (1012, "", logging.INFO, "'/ws': the client left with 1012 (SERVICE_RESTART)"),
        (1002, "", logging.WARNING, "'/ws': the client left with 1002 (PROTOCOL_ERROR)"),
        (
            1011,
            "oops",
            logging.WARNING,
            "'/ws': the client left with 1011 (INTERNAL_ERROR) 'oops'",
        ),
    ],
)
async def test_an_own_disconnect_escaping_the_view_is_logged_once_and_not_raised(
    code: int, reason: str, level: int, message: str, log: Log
) -> None:
    async def view(ws: WebSocket) -> None:
        await ws.receive()  # raises for every code: only loops end on caught ones

    server = client(disconnect(code, reason))
    await run(websocket_view(view), server)  # not raised to the server
    assert server.sent == [ACCEPT]
    [record] = log.caplog.records
    assert (record.name, record.levelno, record.getMessage()) == ("bocws", level, message)
    assert record.exc_info is None


async def test_an_own_disconnect_with_an_uncaught_code_reaches_the_view_first(log: Log) -> None:
    async def view(ws: WebSocket) -> None:
        try:
            async for _ in ws:
                pass  # pragma: no cover - the client sends nothing
        except WebSocketDisconnect as disconnect:
            ws.state.called = (disconnect.code, disconnect.reason)  # the view can react
            raise

    server = client(disconnect(4000, "bye"))
    await run(websocket_view(view), server)
    assert called_with(server) == (4000, "bye")
    assert server.sent == [ACCEPT]
    assert log.messages(logging.INFO) == ["'/ws': the client left with 4000 'bye'"]
    assert log.records(logging.ERROR) == []


async def test_a_client_leaving_during_the_handshake_is_one_info_line(log: Log) -> None:
    async def view(ws: WebSocket) -> None:
        await ws.send("never delivered")

    server = FakeServer([disconnect(1001)])
    server.scope["path_params"] = {}
    await run(websocket_view(view), server)
    assert server.sent == []
    assert log.messages(logging.INFO) == ["'/ws': the client left with 1001 (GOING_AWAY)"]
    assert log.records(logging.ERROR) == []


# Lifecycle: unhandled errors.


async def boom(ws: WebSocket) -> None:
    raise RuntimeError("boom")


async def test_an_unhandled_error_accepts_then_closes_1011_and_is_raised() -> None:
    server = client()
    with pytest.raises(RuntimeError, match="boom"):
        await run(websocket_view(boom), server)
    assert server.sent == [ACCEPT, close(1011, "internal error")]


async def test_an_unhandled_error_after_messages_closes_1011() -> None:
    async def view(ws: WebSocket) -> None:
        await ws.send(await ws.receive())
        raise RuntimeError("boom")

    server = client(text("hi"))
    with pytest.raises(RuntimeError, match="boom"):
        await run(websocket_view(view), server)
    assert server.sent == [ACCEPT, sent_text("hi"), close(1011, "internal error")]


async def test_an_unhandled_error_before_accept_without_auto_accept_refuses_the_handshake() -> None:
    server = client()
    with pytest.raises(RuntimeError, match="boom"):
        await run(websocket_view(boom, auto_accept=False), server)
    assert server.sent == [close(1011, "internal error")]


async def test_an_unhandled_error_is_logged_once_at_error_without_traceback(log: Log) -> None:
    server = client()
    logged_before_the_close = []
    server_send = server.send

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "websocket.close":
            logged_before_the_close.extend(log.records(logging.ERROR))
        await server_send(message)

    server.send = send  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        await run(websocket_view(boom), server)
    [record] = log.records(logging.ERROR)
    assert record.getMessage() == (
        f"'/ws': view {boom.__qualname__} raised RuntimeError: boom; "
        "closed with 1011 (INTERNAL_ERROR) 'internal error'"
    )
    assert logged_before_the_close == []  # the line says what the client received
    assert record.exc_info is None
    assert record.exc_text is None


async def test_an_unhandled_error_after_the_client_left_sends_nothing_more(log: Log) -> None:
    async def view(ws: WebSocket) -> None:
        try:
            await ws.receive()
        except WebSocketDisconnect:
            raise RuntimeError("cleanup failed") from None

    server = client(disconnect(1000))
    with pytest.raises(RuntimeError, match="cleanup failed"):
        await run(websocket_view(view), server)
    assert server.sent == [ACCEPT]
    assert log.messages(logging.ERROR) == [
        f"'/ws': view {view.__qualname__} raised RuntimeError: cleanup failed; "
        "not closed: the client had left with 1000 (NORMAL_CLOSURE)"
    ]


async def test_a_peers_disconnect_escaping_the_view_is_an_unhandled_error(log: Log) -> None:
    peer_server = client(disconnect(1001))
    peer = peer_server.websocket()

    async def view(ws: WebSocket) -> None:
        await peer.receive()  # the peer left: its WebSocketDisconnect(1001) is not ours

    server = client()
    with pytest.raises(WebSocketDisconnect) as info:
        await run(websocket_view(view), server)
    assert info.value.code == 1001
    assert server.sent == [ACCEPT, close(1011, "internal error")]
    [record] = log.records(logging.ERROR)
    assert record.getMessage() == (
        f"'/ws': view {view.__qualname__} raised WebSocketDisconnect: (1001, ''); "
        "closed with 1011 (INTERNAL_ERROR) 'internal error'"
    )
    assert log.records(logging.INFO) == []  # not told as the client's departure


async def test_a_peers_disconnect_with_our_clients_code_is_still_not_ours() -> None:
    peer = client(disconnect(1000)).websocket()

    async def view(ws: WebSocket) -> None:
        await ws.send("hello")
        await peer.receive()

    server = client()
    with pytest.raises(WebSocketDisconnect):
        await run(websocket_view(view), server)
    assert server.sent == [ACCEPT, sent_text("hello"), close(1011, "internal error")]


# Lifecycle: bad input from the client.


async def test_invalid_json_closes_1007(log: Log) -> None:
    async def view(ws: WebSocket) -> None:
        async for message in ws:
            await ws.send(message)

    server = client(text("[1]"), text("{nope"))
    await run(websocket_view(view, value_type="json"), server)
    assert server.sent == [ACCEPT, sent_text("[1]"), close(1007, "invalid JSON")]
    assert log.messages(logging.INFO) == [
        "'/ws': closed with 1007 (INVALID_PAYLOAD) 'invalid JSON': "
        f"view {view.__qualname__}: the client sent bad data: "
        "Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"
    ]
    assert log.caplog.records == log.records(logging.INFO)  # nothing else, no ERROR


async def test_invalid_utf8_in_binary_json_closes_1007() -> None:
    async def view(ws: WebSocket) -> None:
        await ws.receive_json(mode="binary")

    server = client(binary(b'"\xff"'))
    await run(websocket_view(view), server)
    assert server.sent == [ACCEPT, close(1007, "invalid JSON")]


@pytest.mark.parametrize(
    ("receive_type", "incoming", "mode"),
    [
        ("text", binary(b"x"), None),
        ("bytes", text("x"), None),
        ("json", binary(b"{}"), "text"),
        ("json", text("{}"), "binary"),
    ],
)
async def test_a_frame_of_the_wrong_kind_closes_1003(
    receive_type: Any, incoming: dict[str, Any], mode: Any, log: Log
) -> None:
    async def view(ws: WebSocket) -> None:
        if mode is None:
            await ws.receive()
        else:
            await ws.receive_json(mode=mode)

    server = client(incoming)
    await run(websocket_view(view, receive_type=receive_type), server)
    assert server.sent == [ACCEPT, close(1003, "unsupported frame type")]
    [message] = log.messages(logging.INFO)
    assert message.startswith(
        "'/ws': closed with 1003 (UNSUPPORTED_DATA) 'unsupported frame type': "
        f"view {view.__qualname__}: the client sent bad data: "
    )
    assert log.records(logging.ERROR) == []


async def test_a_json_route_takes_json_in_binary_frames_too() -> None:
    async def view(ws: WebSocket) -> None:
        await ws.send(await ws.receive())

    server = client(binary('{"é": 1}'.encode()))
    await run(websocket_view(view, value_type="json"), server)
    assert server.sent == [ACCEPT, sent_text('{"é":1}'), close(1000)]


async def test_bad_input_closes_even_without_auto_accept() -> None:
    async def view(ws: WebSocket) -> None:
        await ws.accept()
        await ws.receive()

    server = client(text("{nope"))
    await run(websocket_view(view, auto_accept=False, value_type="json"), server)
    assert server.sent == [ACCEPT, close(1007, "invalid JSON")]


async def test_a_json_error_the_view_raises_itself_is_a_server_error(log: Log) -> None:
    async def view(ws: WebSocket) -> None:
        json.loads(await ws.receive())

    server = client(text("{nope"))  # valid text, the view's own parsing fails
    with pytest.raises(json.JSONDecodeError):
        await run(websocket_view(view), server)
    assert server.sent == [ACCEPT, close(1011, "internal error")]
    assert len(log.records(logging.ERROR)) == 1


async def test_a_type_error_the_view_raises_itself_is_a_server_error() -> None:
    async def view(ws: WebSocket) -> None:
        await ws.send_text(b"bytes")  # type: ignore[arg-type]

    server = client()
    with pytest.raises(TypeError, match="send_text"):
        await run(websocket_view(view), server)
    assert server.sent == [ACCEPT, close(1011, "internal error")]


async def test_bad_input_from_a_peer_is_a_server_error(log: Log) -> None:
    peer = client(text("{nope")).websocket(value_type="json")

    async def view(ws: WebSocket) -> None:
        await peer.receive()

    server = client()
    with pytest.raises(InvalidJSON):
        await run(websocket_view(view), server)
    assert server.sent == [ACCEPT, close(1011, "internal error")]
    [message] = log.messages(logging.ERROR)
    assert message.startswith(f"'/ws': view {view.__qualname__} raised InvalidJSON: ")
    assert message.endswith("; closed with 1011 (INTERNAL_ERROR) 'internal error'")


async def test_bad_input_the_view_handled_does_not_excuse_a_later_error() -> None:
    async def view(ws: WebSocket) -> None:
        try:
            await ws.receive()
        except json.JSONDecodeError:
            await ws.send({"error": "not JSON"})
        json.loads("{")

    server = client(text("{nope"))
    with pytest.raises(json.JSONDecodeError):
        await run(websocket_view(view, value_type="json"), server)
    assert server.sent == [
        ACCEPT,
        sent_text('{"error":"not JSON"}'),
        close(1011, "internal error"),
    ]


# Lifecycle: Starlette's WebSocketException.


async def test_websocket_exception_closes_with_its_code_and_reason(log: Log) -> None:
    async def view(ws: WebSocket) -> None:
        await ws.send("hi")
        raise WebSocketException(4001, "not allowed")

    server = client()
    await run(websocket_view(view), server)
    assert server.sent == [ACCEPT, sent_text("hi"), close(4001, "not allowed")]
    assert log.messages(logging.INFO) == [
        f"'/ws': closed with 4001 'not allowed': view {view.__qualname__}: WebSocketException"
    ]
    assert log.records(logging.ERROR) == []


async def test_websocket_exception_without_reason_closes_with_an_empty_reason(log: Log) -> None:
    async def view(ws: WebSocket) -> None:
        await ws.send("hi")
        raise WebSocketException(1008)

    server = client()
    await run(websocket_view(view), server)
    assert server.sent == [ACCEPT, sent_text("hi"), close(1008)]
    assert log.messages(logging.INFO) == [
        f"'/ws': closed with 1008 (POLICY_VIOLATION): view {view.__qualname__}: WebSocketException"
    ]


@pytest.mark.parametrize("auto_accept", [True, False])
async def test_websocket_exception_before_accept_refuses_the_handshake_as_starlette_does(
    auto_accept: bool, log: Log
) -> None:
    async def view(ws: WebSocket) -> None:
        raise WebSocketException(4001, "who are you?")

    server = client()
    await run(websocket_view(view, auto_accept=auto_accept), server)
    assert server.sent == [REFUSED]
    [message] = log.messages(logging.INFO)
    assert message.startswith(f"'/ws': refused the handshake: view {view.__qualname__}: ")
    assert "WebSocketException" in message
    assert "4001" in message
    assert log.records(logging.ERROR) == []


@pytest.mark.parametrize(("code", "reason"), [(999, "bad code"), (4001, "x" * 124)])
async def test_websocket_exception_that_cannot_be_sent_closes_1011_and_is_raised(
    code: int, reason: str, log: Log
) -> None:
    async def view(ws: WebSocket) -> None:
        await ws.send("hi")
        raise WebSocketException(code, reason)

    server = client()
    with pytest.raises(WebSocketException) as info:
        await run(websocket_view(view), server)
    assert info.value.code == code
    assert server.sent == [ACCEPT, sent_text("hi"), close(1011, "internal error")]
    assert len(log.records(logging.ERROR)) == 1


async def test_a_disconnect_after_the_view_closed_first_is_a_normal_end(log: Log) -> None:
    async def view(ws: WebSocket) -> None:
        await ws.close(4000, "game over")
        await ws.receive()  # the client's answer echoes 4000, not a caught code

    server = client(disconnect(4000))
    await run(websocket_view(view), server)
    assert server.sent == [ACCEPT, close(4000, "game over")]
    assert log.caplog.records == []  # silent: not even told as the client's departure


async def test_a_class_view_that_rejects_after_accept_ends_normally(log: Log) -> None:
    class Strict(WebSocketView):
        async def on_message(self, ws: WebSocket, message: Any) -> None:
            await ws.reject()  # after accept: 1008, then the client answers 1008

    server = client(text("hi"), disconnect(1008))
    await run(websocket_view(Strict), server)
    assert server.sent == [ACCEPT, close(1008)]
    assert log.caplog.records == []  # the client's 1008 only answers the application's


# Lifecycle: the final close. `_finish` returns at once when either side has closed;
# otherwise it bounds the close by CLOSE_TIMEOUT: under asyncio with a timer that
# cancels the task, under other event loops (trio, through anyio) with anyio's scope.


def no_bound() -> Any:
    raise AssertionError("_finish set up a timeout for a connection already closed")


@pytest.fixture(params=["asyncio", "other event loops"])
def close_timer(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Which bound of the final close runs: asyncio's timer, or anyio's cancel scope."""
    if request.param != "asyncio":  # the choice another event loop gets
        monkeypatch.setattr(bocws._lifecycle, "_bounded_close", lambda: bocws._lifecycle._DEADLINE)
    return str(request.param)


class BlockedClose(FakeServer):
    """A server whose send takes the application's close, then never returns: the
    client reads nothing. `then` says what the send does when it is cancelled."""

    def __init__(self, then: str = "raise") -> None:
        super().__init__([CONNECT])
        self.scope["path_params"] = {}
        self.then = then
        self.closing = anyio.Event()

    async def send(self, message: dict[str, Any]) -> None:
        await super().send(message)
        if message["type"] != "websocket.close":
            return
        self.closing.set()
        try:
            await anyio.Event().wait()  # set by no one: only a cancellation ends it
        except asyncio.CancelledError:
            if self.then == "also-cancel":
                task = asyncio.current_task()
                assert task is not None
                task.cancel()  # the server shuts down as the timer fires
            elif self.then == "fail":
                raise ConnectionResetError("closed while writing") from None
            raise


def pending_cancellations() -> int:
    """The cancellations of the current task not yet handled (always 0 before 3.11)."""
    task = asyncio.current_task()
    assert task is not None
    if sys.version_info >= (3, 11):
        return task.cancelling()
    return 0


async def says_goodbye(ws: WebSocket) -> None:
    await ws.send("bye")


GAVE_UP = "'/ws': the client reads nothing; gave up sending the close (1000) after 0.05 s"


@pytest.mark.parametrize("side", ["client", "application"])
async def test_finish_sends_nothing_and_sets_no_timeout_once_either_side_has_closed(
    side: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = client(disconnect(1001))
    ws = server.websocket()
    await ws.accept()
    if side == "client":
        with pytest.raises(WebSocketDisconnect):
            await ws.receive()
    else:
        await ws.close(4000)
    sent = list(server.sent)
    server.fail_sends_with = AssertionError("_finish sent a message")
    monkeypatch.setattr(bocws._lifecycle, "_bounded_close", no_bound)
    await _finish(ws, 1000)
    assert server.sent == sent


async def test_a_final_close_the_client_never_takes_is_given_up_after_close_timeout(
    close_timer: str, monkeypatch: pytest.MonkeyPatch, log: Log
) -> None:
    monkeypatch.setattr(bocws._lifecycle, "CLOSE_TIMEOUT", 0.05)
    server = BlockedClose()

    async def serve() -> int:
        await run(websocket_view(says_goodbye), server)  # returns: no error
        await asyncio.sleep(0)  # raises CancelledError if the bound's cancellation is left
        return pending_cancellations()

    with anyio.fail_after(5):
        task = asyncio.create_task(serve())
        assert await task == 0
    assert server.sent == [ACCEPT, sent_text("bye"), close(1000)]
    assert log.messages(logging.INFO) == [GAVE_UP]


@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_under_trio_the_final_close_is_bounded_by_a_deadline_of_its_own(
    monkeypatch: pytest.MonkeyPatch, log: Log
) -> None:
    assert bocws._lifecycle._bounded_close() is bocws._lifecycle._DEADLINE
    monkeypatch.setattr(bocws._lifecycle, "CLOSE_TIMEOUT", 0.05)
    server = BlockedClose()
    with anyio.fail_after(5):
        await run(websocket_view(says_goodbye), server)  # returns: no error
    assert server.sent == [ACCEPT, sent_text("bye"), close(1000)]
    assert log.messages(logging.INFO) == [GAVE_UP]


async def test_a_cancellation_from_outside_during_the_final_close_propagates(
    close_timer: str, monkeypatch: pytest.MonkeyPatch, log: Log
) -> None:
    monkeypatch.setattr(bocws._lifecycle, "CLOSE_TIMEOUT", 3600)  # not reached here
    server = BlockedClose()
    task = asyncio.create_task(run(websocket_view(says_goodbye), server))
    with anyio.fail_after(5):
        await server.closing.wait()
        task.cancel()  # the server shuts down
        with pytest.raises(asyncio.CancelledError):
            await task
    assert task.cancelled()
    assert log.messages(logging.INFO) == []


@pytest.mark.skipif(sys.version_info < (3, 11), reason="asyncio counts cancellations from 3.11")
async def test_a_cancellation_from_outside_as_the_close_timer_fires_propagates(
    monkeypatch: pytest.MonkeyPatch, log: Log
) -> None:
    monkeypatch.setattr(bocws._lifecycle, "CLOSE_TIMEOUT", 0.05)
    server = BlockedClose(then="also-cancel")
    task = asyncio.create_task(run(websocket_view(says_goodbye), server))
    with anyio.fail_after(5), pytest.raises(asyncio.CancelledError):
        await task
    assert task.cancelled()
    assert log.messages(logging.INFO) == []


@pytest.mark.parametrize(
    "close_timer",
    [
        "asyncio",
        "other event loops",
    ],
    indirect=True,
)
async def test_a_final_close_the_server_fails_when_timed_out_leaves_the_task_uncancelled(
    close_timer: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bocws._lifecycle, "CLOSE_TIMEOUT", 0.05)
    server = BlockedClose(then="fail")

    async def serve() -> int:
        await run(websocket_view(says_goodbye), server)
        return pending_cancellations()

    with anyio.fail_after(5):
        assert await asyncio.create_task(serve()) == 0
    assert server.sent == [ACCEPT, sent_text("bye"), close(1000)]


@pytest.mark.parametrize("side", ["client", "application"])
async def test_websocket_exception_that_cannot_be_sent_is_raised_even_once_closed(
    side: str, log: Log
) -> None:
    async def view(ws: WebSocket) -> None:
        if side == "client":
            with contextlib.suppress(WebSocketDisconnect):
                await ws.receive()
        else:
            await ws.close(4000)
        raise WebSocketException(999, "bad code")

    server = client(disconnect(1000))
    with pytest.raises(WebSocketException):
        await run(websocket_view(view), server)
    assert len(log.records(logging.ERROR)) == 1
    assert not any("closed the connection with 999" in line for line in log.messages(logging.INFO))


# Calling the endpoint.


async def test_an_endpoint_called_without_scope_receive_and_send_is_a_type_error() -> None:
    endpoint = websocket_view(boom)
    with pytest.raises(TypeError, match="missing 1 required positional argument"):
        endpoint()  # type: ignore[call-arg]  # at the call, not when awaited
    with pytest.raises(TypeError, match=r"called with \(scope, receive, send\)"):
        await endpoint(websocket_scope())


# Class-based views.


class Recorder(WebSocketView):
    """Records its hook calls in `ws.state.called`; echoes messages back."""

    async def on_connect(self, ws: WebSocket) -> None:
        ws.state.called = [("connect", id(self))]
        await super().on_connect(ws)

    async def on_message(self, ws: WebSocket, message: Any) -> None:
        ws.state.called.append(("message", message))
        await ws.send(message)

    async def on_disconnect(self, ws: WebSocket, code: int) -> None:
        ws.state.called.append(("disconnect", code))


def hooks(server: FakeServer) -> list[tuple[str, Any]]:
    """The hooks a `Recorder` saw after on_connect, which records the instance."""
    return called_with(server)[1:]  # type: ignore[no-any-return]


async def test_class_view_default_on_connect_accepts() -> None:
    server = client(disconnect(1000))
    await run(websocket_view(WebSocketView), server)
    assert server.sent == [ACCEPT]


async def test_class_view_gets_messages_and_the_clients_close_code_once(log: Log) -> None:
    server = client(text("a"), text("b"), disconnect(1001))
    await run(websocket_view(Recorder), server)
    assert server.sent == [ACCEPT, sent_text("a"), sent_text("b")]
    assert hooks(server) == [("message", "a"), ("message", "b"), ("disconnect", 1001)]
    assert log.records(logging.ERROR) == []


async def test_class_view_gets_a_new_instance_per_connection() -> None:
    instances = []

    class View(Recorder):
        async def on_connect(self, ws: WebSocket) -> None:
            instances.append(self)  # kept alive: an id() alone could be reused
            await super().on_connect(ws)

    endpoint = websocket_view(View)
    await run(endpoint, client(disconnect()))
    await run(endpoint, client(disconnect()))
    [first, second] = instances
    assert first is not second


@pytest.mark.parametrize(
    ("receive_type", "incoming", "expected"),
    [
        ("json", text('{"a": [1, null]}'), {"a": [1, None]}),
        ("text", text("hé"), "hé"),
        ("bytes", binary(b"\x00\xff"), b"\x00\xff"),
    ],
)
async def test_class_view_messages_are_decoded_per_receive_type(
    receive_type: Any, incoming: dict[str, Any], expected: Any
) -> None:
    class View(Recorder):
        async def on_message(self, ws: WebSocket, message: Any) -> None:
            ws.state.called.append(("message", message))

    server = client(incoming, disconnect())
    await run(websocket_view(View, receive_type=receive_type), server)
    assert hooks(server) == [("message", expected), ("disconnect", 1000)]


async def test_class_view_options_are_class_attributes() -> None:
    class View(Recorder):
        value_type = "json"
        caught_close_codes = (4000,)

    server = client(text('{"n": 1}'), disconnect(4000))
    endpoint = websocket_view(View)
    assert endpoint.options["value_type"] == "json"
    await run(endpoint, server)
    assert server.sent == [ACCEPT, sent_text('{"n":1}')]
    assert hooks(server) == [("message", {"n": 1}), ("disconnect", 4000)]


async def test_decorator_options_override_class_attributes() -> None:
    class View(Recorder):
        value_type = "json"
        auto_accept = False

    endpoint = websocket_view(View, value_type="bytes", auto_accept=True)
    assert endpoint.options["value_type"] == "bytes"
    assert endpoint.options["auto_accept"] is True
    server = client(binary(b"{"), disconnect())
    await run(endpoint, server)
    assert hooks(server) == [("message", b"{"), ("disconnect", 1000)]


async def test_class_view_on_connect_rejecting_refuses_without_other_hooks(log: Log) -> None:
    class View(Recorder):
        async def on_connect(self, ws: WebSocket) -> None:
            ws.state.called = [("connect", id(self))]
            await ws.reject()

    server = client(text("never read"))
    await run(websocket_view(View), server)
    assert server.sent == [REFUSED]
    assert hooks(server) == []
    assert log.records(logging.ERROR) == []


async def test_class_view_on_connect_closing_ends_without_other_hooks() -> None:
    class View(Recorder):
        async def on_connect(self, ws: WebSocket) -> None:
            ws.state.called = [("connect", id(self))]
            await ws.close(4000)

    server = client(text("never read"))
    await run(websocket_view(View), server)
    assert server.sent == [ACCEPT, close(4000)]
    assert hooks(server) == []


async def test_class_view_on_connect_may_leave_the_accept_to_auto_accept() -> None:
    class View(Recorder):
        async def on_connect(self, ws: WebSocket) -> None:
            ws.state.called = [("connect", id(self))]

    server = client(text("a"), disconnect())
    await run(websocket_view(View), server)
    assert server.sent == [ACCEPT, sent_text("a")]


async def test_class_view_error_in_on_message_closes_1011_and_is_raised(log: Log) -> None:
    class View(Recorder):
        async def on_message(self, ws: WebSocket, message: Any) -> None:
            raise RuntimeError("boom")

    server = client(text("a"))
    with pytest.raises(RuntimeError, match="boom"):
        await run(websocket_view(View), server)
    assert server.sent == [ACCEPT, close(1011, "internal error")]
    assert hooks(server) == []  # the client did not disconnect: no on_disconnect
    assert len(log.records(logging.ERROR)) == 1


async def test_class_view_closing_in_on_message_gets_the_clients_answer(log: Log) -> None:
    class View(Recorder):
        caught_close_codes = (4000,)

        async def on_message(self, ws: WebSocket, message: Any) -> None:
            ws.state.called.append(("message", message))
            await ws.close(4000, "bye")

    server = client(text("quit"), disconnect(4000))
    await run(websocket_view(View), server)
    assert server.sent == [ACCEPT, close(4000, "bye")]
    assert hooks(server) == [("message", "quit"), ("disconnect", 4000)]
    assert log.records(logging.ERROR) == []


async def test_class_view_error_in_on_connect_closes_1011() -> None:
    class View(WebSocketView):
        async def on_connect(self, ws: WebSocket) -> None:
            raise RuntimeError("boom")

    server = client()
    with pytest.raises(RuntimeError, match="boom"):
        await run(websocket_view(View), server)
    assert server.sent == [ACCEPT, close(1011, "internal error")]


async def test_class_view_bad_json_closes_1007_and_on_disconnect_hears_it(log: Log) -> None:
    server = client(text("{nope"))
    await run(websocket_view(Recorder, value_type="json"), server)
    assert server.sent == [ACCEPT, close(1007, "invalid JSON")]
    assert hooks(server) == [("disconnect", 1007)]
    [message] = log.messages(logging.INFO)
    assert message.startswith(
        "'/ws': closed with 1007 (INVALID_PAYLOAD) 'invalid JSON': view Recorder: "
        "the client sent bad data: "
    )
    assert log.records(logging.ERROR) == []


async def test_class_view_uncaught_close_code_reaches_on_disconnect_then_one_info_line(
    log: Log,
) -> None:
    server = client(disconnect(4000))
    await run(websocket_view(Recorder), server)  # not raised to the server
    assert hooks(server) == [("disconnect", 4000)]
    assert log.messages(logging.INFO) == ["'/ws': the client left with 4000"]
    assert log.records(logging.ERROR) == []


async def test_class_view_on_disconnect_once_when_a_send_finds_the_client_gone(log: Log) -> None:
    class View(Recorder):
        async def on_message(self, ws: WebSocket, message: Any) -> None:
            ws.state.called.append(("message", message))
            server.fail_sends_with = BrokenPipeError()  # the client vanishes now
            await ws.send(message)

    server = client(text("a"))
    await run(websocket_view(View), server)  # 1006 is not a caught code, but not raised
    assert hooks(server) == [("message", "a"), ("disconnect", 1006)]
    assert log.messages(logging.INFO) == ["'/ws': the client left with 1006 (ABNORMAL_CLOSURE)"]


async def test_class_view_in_event_mode_gets_events_and_the_disconnect_code(log: Log) -> None:
    class View(Recorder):
        async def on_message(self, ws: WebSocket, message: Any) -> None:
            ws.state.called.append(("message", message))
            await ws.send({"type": "websocket.send", "text": message.get("text", "?")})

    server = client(text("a"), binary(b"b"), disconnect(4000))
    await run(websocket_view(View, value_type="event"), server)
    assert server.sent == [ACCEPT, sent_text("a"), sent_text("?")]
    assert hooks(server) == [
        ("message", text("a")),
        ("message", binary(b"b")),
        ("disconnect", 4000),
    ]
    assert log.records(logging.ERROR) == []


async def test_class_view_peer_disconnect_in_on_message_is_an_error_not_on_disconnect() -> None:
    peer = client(disconnect(1000)).websocket()

    class View(Recorder):
        async def on_message(self, ws: WebSocket, message: Any) -> None:
            await peer.receive()

    server = client(text("a"))
    with pytest.raises(WebSocketDisconnect):
        await run(websocket_view(View), server)
    assert server.sent == [ACCEPT, close(1011, "internal error")]
    assert hooks(server) == []


# Inside Starlette and FastAPI.


@websocket_view(value_type="json")
async def item(ws: WebSocket, item_id: int, n: int = 1, verbose: bool = False) -> None:
    """Send back the parameters, as the view received them."""
    await ws.send({"item_id": item_id, "n": n, "verbose": verbose})


def test_starlette_route_passes_converted_path_parameters() -> None:
    app = Starlette(routes=[WebSocketRoute("/items/{item_id:int}", item)])
    with TestClient(app).websocket_connect("/items/3?n=4&verbose=yes") as session:
        assert session.receive_json() == {"item_id": 3, "n": 4, "verbose": True}
        assert session.receive() == close(1000)


def test_starlette_route_refuses_a_bad_query_parameter_with_403() -> None:
    app = Starlette(routes=[WebSocketRoute("/items/{item_id:int}", item)])
    with (
        pytest.raises(WebSocketDisconnect) as info,
        TestClient(app).websocket_connect("/items/3?n=four"),
    ):
        pass  # pragma: no cover
    assert info.value.code == 403


def test_starlette_route_serves_a_class_view() -> None:
    app = Starlette(routes=[WebSocketRoute("/echo", websocket_view(Recorder))])
    with TestClient(app).websocket_connect("/echo") as session:
        session.send_text("hé")
        assert session.receive_text() == "hé"


def test_fastapi_add_api_websocket_route_serves_a_view() -> None:
    app = FastAPI()
    app.add_api_websocket_route("/items/{item_id}", item)
    with TestClient(app).websocket_connect("/items/7?n=2") as session:
        assert session.receive_json() == {"item_id": 7, "n": 2, "verbose": False}
        assert session.receive() == close(1000)


def test_fastapi_add_api_websocket_route_refuses_a_bad_query_parameter_with_403() -> None:
    app = FastAPI()
    app.add_api_websocket_route("/items/{item_id}", item)
    with (
        pytest.raises(WebSocketDisconnect) as info,
        TestClient(app).websocket_connect("/items/7?verbose=maybe"),
    ):
        pass  # pragma: no cover
    assert info.value.code == 403


def test_fastapi_add_api_websocket_route_serves_a_class_view() -> None:
    app = FastAPI()
    app.add_api_websocket_route("/echo", websocket_view(Recorder, value_type="json"))
    with TestClient(app).websocket_connect("/echo") as session:
        session.send_json({"a": 1})
        assert session.receive_json() == {"a": 1}


def test_fastapi_appended_starlette_route_serves_a_view() -> None:
    app = FastAPI()
    app.router.routes.append(WebSocketRoute("/items/{item_id:int}", item))
    with TestClient(app).websocket_connect("/items/5?n=3") as session:
        assert session.receive_json() == {"item_id": 5, "n": 3, "verbose": False}


def test_fastapi_mounted_bocws_app_serves_its_views() -> None:
    views = App()
    views.add_websocket_route("/items/{item_id}", item)
    app = FastAPI()
    app.mount("/ws", views)
    with TestClient(app).websocket_connect("/ws/items/8?verbose=on") as session:
        assert session.receive_json() == {"item_id": 8, "n": 1, "verbose": True}


def test_fastapi_websocket_decorator_over_websocket_view_serves_it() -> None:
    app = FastAPI()

    @app.websocket("/items/{item_id}")
    @websocket_view(value_type="json")
    async def view(ws: WebSocket, item_id: int) -> None:
        await ws.send({"item_id": item_id})

    with TestClient(app).websocket_connect("/items/9") as session:
        assert session.receive_json() == {"item_id": 9}


def test_fastapi_route_dependencies_run_first_and_may_refuse() -> None:
    async def require_token(token: str | None = None) -> None:
        if token != "s3cret":
            raise FastAPIWebSocketException(1008, "no token")

    app = FastAPI()
    app.add_api_websocket_route("/items/{item_id}", item, dependencies=[Depends(require_token)])
    test_client = TestClient(app)
    with test_client.websocket_connect("/items/1?token=s3cret") as session:
        assert session.receive_json() == {"item_id": 1, "n": 1, "verbose": False}
    with pytest.raises(WebSocketDisconnect) as info, test_client.websocket_connect("/items/1"):
        pass  # pragma: no cover
    assert info.value.code == 1008


# Stricter numbers, direction options over a class's value_type, and task groups.


@pytest.mark.parametrize("raw", ["%201.5", "1.5%20", "1_000", "%2B1.5", "%D9%A3", "0x10", "1e"])
async def test_float_refuses_what_float_would_stretch_to_accept(raw: str) -> None:
    # %20 is a space, %2B a "+", %D9%A3 the Arabic-Indic digit three.
    server = client(query=f"x={raw}")
    await run(websocket_view(take_float), server)
    assert server.sent == [REFUSED]
    assert called_with(server) is None


@pytest.mark.parametrize(("raw", "expected"), [("1.", 1.0), (".5", 0.5), ("-2E-2", -0.02)])
async def test_float_accepts_plain_decimal_and_exponent_forms(raw: str, expected: float) -> None:
    server = client(query=f"x={raw}")
    await run(websocket_view(take_float), server)
    assert called_with(server) == {"x": expected}


async def test_a_receive_type_given_alone_overrides_a_class_value_type_for_receiving_only() -> None:
    class Bytes(WebSocketView):
        value_type = "json"

    endpoint = websocket_view(Bytes, receive_type="bytes")
    assert endpoint.options["value_type"] is None
    assert (endpoint.options["receive_type"], endpoint.options["send_type"]) == ("bytes", "json")
    replaced = endpoint.replace(send_type="text")
    assert (replaced.options["receive_type"], replaced.options["send_type"]) == ("bytes", "text")


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (1000, "'/ws': the client left with 1000 (NORMAL_CLOSURE)"),
        (4000, "'/ws': the client left with 4000"),  # not a caught code: not raised either
    ],
)
@pytest.mark.parametrize("nested", [False, True])
async def test_a_departure_inside_a_task_group_is_one_info_line(
    code: int, message: str, nested: bool, log: Log
) -> None:
    async def receive_in_a_group(ws: WebSocket) -> None:
        async with anyio.create_task_group() as group:
            group.start_soon(ws.send, "hello")
            await ws.receive()  # raises the client's disconnect inside the group

    async def view(ws: WebSocket) -> None:
        if not nested:
            await receive_in_a_group(ws)
            return
        async with anyio.create_task_group() as outer:
            outer.start_soon(receive_in_a_group, ws)

    server = client(disconnect(code))
    await run(websocket_view(view), server)  # not raised to the server
    assert server.sent[0] == ACCEPT
    assert close(1011, "internal error") not in server.sent
    assert log.messages(logging.INFO) == [message]
    assert log.records(logging.ERROR) == []


async def test_bad_json_inside_a_task_group_closes_1007(log: Log) -> None:
    async def view(ws: WebSocket) -> None:
        async with anyio.create_task_group() as group:
            group.start_soon(ws.receive)

    server = client(text("{nope"))
    await run(websocket_view(view, value_type="json"), server)
    assert server.sent == [ACCEPT, close(1007, "invalid JSON")]
    [message] = log.messages(logging.INFO)
    assert message.startswith("'/ws': closed with 1007 (INVALID_PAYLOAD) 'invalid JSON': ")
    assert log.records(logging.ERROR) == []


async def test_a_bug_beside_a_disconnect_in_a_task_group_closes_1011_and_raises(log: Log) -> None:
    async def fail() -> None:
        raise RuntimeError("bug")

    async def view(ws: WebSocket) -> None:
        async with anyio.create_task_group() as group:
            group.start_soon(fail)
            group.start_soon(ws.receive)

    server = client(text("{nope"))
    with pytest.raises(Exception) as info:  # noqa: PT011 - an exception group, checked below
        await run(websocket_view(view, value_type="json"), server)
    assert info.group_contains(RuntimeError, match="bug")
    assert server.sent[-1] == close(1011, "internal error")
    [message] = log.messages(logging.ERROR)
    assert message.endswith("; closed with 1011 (INTERNAL_ERROR) 'internal error'")


async def test_a_class_view_with_a_sync_hook_is_refused_when_declared() -> None:
    class Sync(WebSocketView):
        def on_message(self, ws: WebSocket, message: Any) -> None:  # type: ignore[override]
            pass

    with pytest.raises(TypeError, match=r"Sync\.on_message must be an async method"):
        websocket_view(Sync)


async def test_a_mistyped_option_fails_when_websocket_view_is_called() -> None:
    with pytest.raises(TypeError, match="unknown view option"):
        websocket_view(func=boom)  # type: ignore[call-overload]


def test_an_exception_a_starlette_handler_takes_before_accept_is_left_to_it() -> None:
    from starlette.exceptions import HTTPException
    from starlette.responses import PlainTextResponse
    from starlette.testclient import WebSocketDenialResponse

    class Teapot(Exception):
        pass

    @websocket_view
    async def teapot(ws: WebSocket) -> None:
        raise Teapot

    @websocket_view
    async def late(ws: WebSocket) -> None:
        await ws.send("hi")
        raise HTTPException(418)

    def handle(request: Any, error: Exception) -> PlainTextResponse:
        return PlainTextResponse("short and stout", status_code=418)

    app = Starlette(
        routes=[WebSocketRoute("/teapot", teapot), WebSocketRoute("/late", late)],
        exception_handlers={Teapot: handle, 418: handle},
    )
    with (
        pytest.raises(WebSocketDenialResponse) as info,
        TestClient(app).websocket_connect("/teapot"),
    ):
        pass  # pragma: no cover
    assert (info.value.status_code, info.value.text) == (418, "short and stout")
    # After accept, the handler cannot answer: bocws closes 1011 and does not re-raise.
    with TestClient(app).websocket_connect("/late") as session:
        assert session.receive_text() == "hi"
        with pytest.raises(WebSocketDisconnect) as closed:
            session.receive_text()
    assert closed.value.code == 1011


async def test_closes_under_way_share_one_watch_that_gives_up_only_the_late_ones(
    monkeypatch: pytest.MonkeyPatch, log: Log
) -> None:
    # A blocked close and a prompt one: the watch ticks while closes are under way,
    # gives up the blocked one only, then stops ticking.
    monkeypatch.setattr(bocws._lifecycle, "CLOSE_TIMEOUT", 0.05)
    blocked, prompt = BlockedClose(), FakeServer([CONNECT])
    prompt.scope["path_params"] = {}
    endpoint = websocket_view(says_goodbye)
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(run, endpoint, blocked)
            await blocked.closing.wait()
            watch = bocws._lifecycle._CloseWatch.of(asyncio.get_running_loop())
            assert watch.ticking
            assert len(watch.pending) == 1
            await run(endpoint, prompt)  # closes at once, while the other waits
            assert len(watch.pending) == 1
    assert prompt.sent == [ACCEPT, sent_text("bye"), close(1000)]
    assert log.messages(logging.INFO).count(GAVE_UP) == 1
    assert watch.pending == set()
    # The next tick finds nothing left: it sets no timer after it.
    timers: list[Any] = []
    monkeypatch.setattr(watch.loop, "call_later", lambda *arguments: timers.append(arguments))
    watch.tick()
    assert not watch.ticking
    assert timers == []
    assert bocws._lifecycle._CloseWatch._current is None  # no loop kept alive


def test_each_event_loop_gets_a_watch_of_its_own() -> None:
    async def watch() -> bocws._lifecycle._CloseWatch:
        return bocws._lifecycle._CloseWatch.of(asyncio.get_running_loop())

    first, again = asyncio.run(watch()), asyncio.run(watch())
    assert first is not again
    assert first.loop is not again.loop


@pytest.mark.skipif(sys.version_info < (3, 11), reason="asyncio counts cancellations from 3.11")
async def test_a_timed_out_close_in_a_task_that_swallowed_a_cancellation_is_given_up_quietly(
    monkeypatch: pytest.MonkeyPatch, log: Log
) -> None:
    # The view caught a cancellation and returned: the task's count stays at 1. The
    # bound takes back only its own cancellation, as asyncio.timeout does.
    monkeypatch.setattr(bocws._lifecycle, "CLOSE_TIMEOUT", 0.05)
    server = BlockedClose()

    async def swallows_a_cancellation(ws: WebSocket) -> None:
        await ws.send("bye")
        task = asyncio.current_task()
        assert task is not None
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(1)

    async def serve() -> int:
        await run(websocket_view(swallows_a_cancellation), server)
        return pending_cancellations()

    with anyio.fail_after(5):
        assert await asyncio.create_task(serve()) == 1  # the view's own, still there
    assert log.messages(logging.INFO) == [GAVE_UP]


def test_uvicorn_serves_a_bare_view_endpoint_as_an_asgi_app() -> None:
    """uvicorn calls an app once without arguments to detect a factory: that call must
    fail (a view endpoint served the coroutine it returned, and every handshake got
    HTTP 500)."""
    server = Uvicorn("tests.bare_view:echo", "--lifespan", "off")
    server.start()
    try:

        async def talk() -> Any:
            async with connect(server.url.replace("http", "ws") + "/") as client:
                await client.send("hi")
                return await asyncio.wait_for(client.recv(), 5)

        assert asyncio.run(talk()) == "hi"
    finally:
        server.stop()
    assert [line for line in server.lines if "factory" in line or "ERROR" in line] == []
