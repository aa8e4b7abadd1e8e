"""JSON-RPC 2.0 (`bocws.JsonRpc`, `bocws.RpcError`), in process: methods and their
params, errors, the server's calls and notifications, concurrency and backpressure,
hooks and route options, msgspec, and the OpenRPC document of `rpc.discover`, checked
against the official meta-schema (the npm package @open-rpc/meta-schema).

Most tests serve a `JsonRpc` over the fake server of tests/fake.py in the test's own
event loop (`connection()`), so that they see every frame the service sends and can
tell when every task waits (`Peer.settled()`); a few go through TestClient or
a real uvicorn, as the foreign client jsonrpc-websocket (PyPI) does at the end. The
specification's own examples are in tests/test_rpc_conformance.py, and the browser's
client (the npm package json-rpc-2.0) in tests/test_rpc_browser.py.
"""

from __future__ import annotations

import gc
import json
import logging
import subprocess
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any

import anyio
import jsonrpc_base
import jsonrpc_websocket as jsonrpc_websocket_client
import jsonschema
import msgspec
import pydantic
import pytest
from pydantic import BaseModel, create_model
from referencing import Registry
from referencing.jsonschema import DRAFT7
from starlette.testclient import TestClient

from bocws import App, JsonRpc, RpcError, WebSocket, WebSocketDisconnect
from examples import rpc as rpc_example

from .fake import LiveServer, Message, binary, disconnect, text
from .live_server import client, close_frame, recv, refused, running_server
from .node_packages import TESTS, npm_package
from .rpc_app import service

pytestmark = pytest.mark.anyio

TIMEOUT = 5.0
"""The bound on every wait for the service."""


# The client's end of a connection, in process.


class Peer(LiveServer):
    """The client's side of one connection to a `JsonRpc`: what it sends is delivered
    when the test says, and what the service sends can be awaited in order."""

    def __init__(self) -> None:
        super().__init__()
        self.sent_more = anyio.Event()
        self.taken = 0  # how many of `sent` the test has looked at

    async def send(self, message: Message) -> None:
        await super().send(message)
        self.sent_more.set()

    async def request(self, payload: Any) -> None:
        """Send `payload` in a text frame: a str as it is, anything else as JSON."""
        await self.deliver(text(payload if isinstance(payload, str) else json.dumps(payload)))

    async def next_sent(self) -> Message:
        """The next ASGI message the service sends (waiting for it, bounded)."""
        with anyio.fail_after(TIMEOUT):
            while self.taken >= len(self.sent):
                await self.sent_more.wait()
                self.sent_more = anyio.Event()
        self.taken += 1
        return self.sent[self.taken - 1]

    async def received(self) -> Any:
        """The next frame the service sends: text, parsed as JSON."""
        message = await self.next_sent()
        assert message["type"] == "websocket.send", message
        assert "text" in message, f"JSON-RPC answers in text frames, got {message!r}"
        return json.loads(message["text"])

    async def ask(self, payload: Any) -> Any:
        """Send `payload`; the next frame the service sends."""
        await self.request(payload)
        return await self.received()

    async def settled(self) -> None:
        """Return once every task waits and nothing moves any more.

        `wait_all_tasks_blocked()` alone may return while the reader hands the reading
        over to a new task through a loop callback (bocws.rpc._AsyncioTasks): so each
        round lets pending callbacks run first, and it takes two rounds alike, tasks
        counted, to call it settled."""
        with anyio.fail_after(TIMEOUT):
            seen = None
            while True:
                await anyio.lowlevel.checkpoint()
                await anyio.wait_all_tasks_blocked()
                now = (len(self.incoming), len(self.sent), len(anyio.get_running_tasks()))
                if now == seen:
                    return
                seen = now

    async def nothing_sent(self) -> None:
        """Fail if the service sent anything not looked at yet, once it settled."""
        await self.settled()
        assert self.sent[self.taken :] == []


@asynccontextmanager
async def connection(rpc: JsonRpc, close_code: int = 1000) -> AsyncIterator[Peer]:
    """Serve one connection to `rpc` in this event loop; the client leaves with
    `close_code` when the block ends, and the service must then end."""
    peer = Peer()
    with anyio.fail_after(TIMEOUT * 3):
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(rpc, peer.scope, peer.receive, peer.send)
            assert (await peer.next_sent())["type"] == "websocket.accept"
            yield peer
            await peer.deliver(disconnect(close_code))


both_event_loops = pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
"""For the tests of how requests run: under asyncio and under trio, bocws runs them in
two ways (bocws.rpc._AsyncioTasks, _TaskGroupTasks)."""


def request(method: str, params: Any = None, id: Any = 1) -> dict[str, Any]:
    """A request object (a notification with `id=None`)."""
    message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if params is not None:
        message["params"] = params
    if id is not None:
        message["id"] = id
    return message


def result(value: Any, id: Any = 1) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "result": value, "id": id}


def error(code: int, message: str, id: Any = 1, **data: Any) -> dict[str, Any]:
    error = {"code": code, "message": message, **data}
    return {"jsonrpc": "2.0", "error": error, "id": id}


PARSE_ERROR = error(-32700, "Parse error", None)
INVALID_REQUEST = error(-32600, "Invalid Request", None)


def invalid_params(detail: list[dict[str, Any]], id: Any = 1) -> dict[str, Any]:
    return error(-32602, "Invalid params", id, data=detail)


def internal_error(id: Any = 1) -> dict[str, Any]:
    return error(-32603, "Internal error", id)


def problems(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """What was logged at WARNING or above."""
    return [record for record in caplog.records if record.levelno >= logging.WARNING]


class Pending:
    """A call running in a task of its own: its outcome, awaited with a bound."""

    def __init__(self) -> None:
        self.done = anyio.Event()
        self.value: Any = None
        self.error: BaseException | None = None

    async def run(self, call: Callable[[], Awaitable[Any]]) -> None:
        try:
            self.value = await call()
        except Exception as raised:
            self.error = raised
        finally:
            self.done.set()

    async def outcome(self) -> Any:
        """The call's return value; what it raised is raised."""
        with anyio.fail_after(TIMEOUT):
            await self.done.wait()
        if self.error is not None:
            raise self.error
        return self.value


def calling(tasks: anyio.abc.TaskGroup, call: Callable[[], Awaitable[Any]]) -> Pending:
    """Start `call()` in a task of `tasks`."""
    pending = Pending()
    tasks.start_soon(pending.run, call)
    return pending


def keeping_connections(rpc: JsonRpc) -> list[WebSocket]:
    """The connections `rpc` accepts, in order (an `on_connect` hook keeps them)."""
    connections: list[WebSocket] = []

    @rpc.on_connect
    async def keep(ws: WebSocket) -> None:
        connections.append(ws)

    return connections


# Types for the params.


class Point(BaseModel):
    x: int
    y: int


class Segment(BaseModel):
    start: Point
    end: Point


class Vector(msgspec.Struct):
    x: int
    y: int


class Polyline(msgspec.Struct):
    points: list[Vector]


def arithmetic() -> JsonRpc:
    rpc = JsonRpc()

    @rpc.method
    async def subtract(minuend: int, subtrahend: int = 0) -> int:
        return minuend - subtrahend

    @rpc.method
    def multiply(a: int, b: int) -> int:  # sync
        return a * b

    @rpc.method("geometry.length")
    async def length(segment: Segment) -> int:
        return abs(segment.end.x - segment.start.x) + abs(segment.end.y - segment.start.y)

    return rpc


# Params.


async def test_params_by_position() -> None:
    async with connection(arithmetic()) as peer:
        assert await peer.ask(request("subtract", [42, 23])) == result(19)
        assert await peer.ask(request("subtract", [23, 42], id="b")) == result(-19, "b")


async def test_params_by_name_in_any_order() -> None:
    async with connection(arithmetic()) as peer:
        assert await peer.ask(request("subtract", {"subtrahend": 23, "minuend": 42})) == result(19)
        assert await peer.ask(request("subtract", {"minuend": 42, "subtrahend": 23})) == result(19)


async def test_a_default_fills_a_param_left_out() -> None:
    async with connection(arithmetic()) as peer:
        assert await peer.ask(request("subtract", [42])) == result(42)
        assert await peer.ask(request("subtract", {"minuend": 42})) == result(42)


async def test_params_are_validated_into_their_types() -> None:
    segment = {"start": {"x": 0, "y": 0}, "end": {"x": "3", "y": 4}}  # "3": pydantic's lax mode
    async with connection(arithmetic()) as peer:
        assert await peer.ask(request("geometry.length", [segment])) == result(7)
        assert await peer.ask(request("geometry.length", {"segment": segment})) == result(7)


async def test_too_many_params_by_position_are_invalid_params() -> None:
    async with connection(arithmetic()) as peer:
        answer = await peer.ask(request("subtract", [1, 2, 3]))
    assert answer == invalid_params(
        [{"type": "too_many_params", "loc": [], "msg": "takes 2 params, got 3"}]
    )


async def test_an_unknown_param_by_name_is_invalid_params() -> None:
    async with connection(arithmetic()) as peer:
        answer = await peer.ask(request("subtract", {"minuend": 1, "divisor": 2}))
    assert answer == invalid_params(
        [{"type": "extra_forbidden", "loc": ["divisor"], "msg": "Extra inputs are not permitted"}]
    )


async def test_a_missing_param_is_invalid_params() -> None:
    async with connection(arithmetic()) as peer:
        by_name = await peer.ask(request("multiply", {"b": 2}))
        by_position = await peer.ask(request("multiply", [2]))
        no_params = await peer.ask(request("multiply"))
    assert by_name == invalid_params([{"type": "missing", "loc": ["a"], "msg": "Field required"}])
    assert by_position == invalid_params(
        [{"type": "missing", "loc": ["b"], "msg": "Field required"}]
    )
    assert no_params["error"]["data"] == [
        {"type": "missing", "loc": ["a"], "msg": "Field required"},
        {"type": "missing", "loc": ["b"], "msg": "Field required"},
    ]


async def test_invalid_params_carry_pydantics_errors_without_the_input() -> None:
    secret = "s3cr3t-" * 3
    segment = {"start": {"x": secret, "y": 0}, "end": {"x": 1}}
    async with connection(arithmetic()) as peer:
        answer = await peer.ask(request("geometry.length", [segment]))
        frame = peer.sent[-1]["text"]
    assert secret not in frame
    assert answer == invalid_params(
        [
            {
                "type": "int_parsing",
                "loc": ["segment", "start", "x"],
                "msg": "Input should be a valid integer, unable to parse string as an integer",
            },
            {"type": "missing", "loc": ["segment", "end", "y"], "msg": "Field required"},
        ]
    )


async def test_invalid_params_data_is_trimmed_to_ten_errors() -> None:
    rpc = JsonRpc()

    @rpc.method
    async def many(values: list[int]) -> int:
        return len(values)

    async with connection(rpc) as peer:
        answer = await peer.ask(request("many", [["x"] * 15]))
    data = answer["error"]["data"]
    assert [entry["loc"] for entry in data] == [["values", index] for index in range(10)]
    assert all(set(entry) == {"type", "loc", "msg"} for entry in data)  # no input, no ctx


async def test_params_of_another_json_type_are_an_invalid_request() -> None:
    async with connection(arithmetic()) as peer:
        for params in ("42", 42, None, True):
            answer = await peer.ask(
                {"jsonrpc": "2.0", "method": "subtract", "params": params, "id": 1}
            )
            assert answer == INVALID_REQUEST, params


async def test_a_websocket_parameter_gets_the_connection_and_is_no_param() -> None:
    rpc = JsonRpc()

    @rpc.method
    async def where(ws: WebSocket, suffix: str) -> str:
        return ws.url.path + suffix

    async with connection(rpc) as peer:
        assert await peer.ask(request("where", ["!"])) == result("/ws!")
        assert await peer.ask(request("where", {"suffix": "?"})) == result("/ws?")
        answer = await peer.ask(request("where", {"ws": 1, "suffix": "?"}))
    assert answer["error"]["code"] == -32602
    assert answer["error"]["data"][0]["loc"] == ["ws"]


async def test_sync_and_async_methods_both_answer() -> None:
    async with connection(arithmetic()) as peer:
        assert await peer.ask(request("multiply", [6, 7])) == result(42)
        assert await peer.ask(request("subtract", [6, 7])) == result(-1)


async def test_a_method_returning_none_answers_null() -> None:
    rpc = JsonRpc()

    @rpc.method
    async def nothing() -> None:
        return None

    async with connection(rpc) as peer:
        assert await peer.ask(request("nothing")) == result(None)


async def test_a_result_is_written_as_the_typed_messages_are() -> None:
    rpc = JsonRpc()

    @rpc.method
    async def mirror(point: Point) -> Point:
        return Point(x=point.y, y=point.x)

    @rpc.method
    async def origin() -> Vector:
        return Vector(0, 0)

    async with connection(rpc) as peer:
        assert await peer.ask(request("mirror", [{"x": 1, "y": 2}])) == result({"x": 2, "y": 1})
        assert await peer.ask(request("origin")) == result({"x": 0, "y": 0})


async def test_a_positional_only_parameter_takes_its_param() -> None:
    # Was a bug: the method is registered, then every call is an internal error
    # (`function(**kwargs)` cannot fill a positional-only parameter).
    rpc = JsonRpc()

    def subtract(minuend: int, /, subtrahend: int) -> int:
        return minuend - subtrahend

    rpc.method(subtract)
    async with connection(rpc) as peer:
        assert await peer.ask(request("subtract", [42, 23])) == result(19)


async def test_a_parameter_with_a_leading_underscore_takes_its_param() -> None:
    # Was a bug: pydantic makes `_private` a private attribute of the params model, not a
    # field, so every call is invalid params ("extra_forbidden" for `_private`).
    rpc = JsonRpc()

    @rpc.method
    async def echo(_private: int) -> int:
        return _private

    async with connection(rpc) as peer:
        assert await peer.ask(request("echo", [1])) == result(1)
        assert await peer.ask(request("echo", {"_private": 2})) == result(2)


async def test_a_parameter_named_like_a_pydantic_model_attribute_is_registered_quietly() -> None:
    # Was a bug: pydantic warns (UserWarning) that the params model's field `json` (or
    # `schema`, `copy`, `dict` ...) shadows an attribute of BaseModel; under
    # `-W error`, as here, registering the method fails.
    rpc = JsonRpc()

    async def save(json: str) -> str:
        return json

    rpc.method(save)
    async with connection(rpc) as peer:
        assert await peer.ask(request("save", {"json": "{}"})) == result("{}")


# Errors a method raises.


async def test_an_rpc_error_is_answered_as_given() -> None:
    rpc = JsonRpc()

    @rpc.method
    async def withdraw(amount: int) -> int:
        if amount > 10:
            raise RpcError(1001, "insufficient funds", {"balance": 10})
        raise RpcError(-32000, "closed")

    async with connection(rpc) as peer:
        with_data = await peer.ask(request("withdraw", [11]))
        without_data = await peer.ask(request("withdraw", [1], id=2))
    assert with_data == error(1001, "insufficient funds", data={"balance": 10})
    assert without_data == error(-32000, "closed", 2)  # no "data" member


async def test_another_exception_is_an_internal_error_logged_once_and_not_leaked(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rpc = JsonRpc()

    @rpc.method
    async def explode() -> None:
        raise KeyError("password=hunter2")

    async with connection(rpc) as peer:
        await peer.request(request("explode"))
        answer = await peer.received()
        frame = peer.sent[-1]["text"]
    assert answer == internal_error()
    assert "hunter2" not in frame
    (logged,) = problems(caplog)
    assert logged.levelno == logging.ERROR
    assert logged.getMessage() == (
        "'/ws': JSON-RPC method 'explode' raised; answered with an internal error"
    )
    assert logged.exc_info is not None
    assert logged.exc_info[0] is KeyError


async def test_a_result_json_cannot_write_is_an_internal_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rpc = JsonRpc()

    @rpc.method
    async def unwritable(kind: str) -> Any:
        return {"object": object(), "nan": float("nan"), "set": {1, 2}}[kind]

    async with connection(rpc) as peer:
        for kind in ("object", "nan", "set"):
            assert await peer.ask(request("unwritable", [kind])) == internal_error(), kind
    assert [record.levelno for record in problems(caplog)] == [logging.ERROR] * 3
    assert "returned what JSON cannot write" in problems(caplog)[0].getMessage()


async def test_a_notification_is_never_answered_even_when_it_fails(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rpc = JsonRpc()

    @rpc.method
    async def explode() -> None:
        raise RuntimeError("boom")

    @rpc.method
    async def refuse() -> None:
        raise RpcError(1, "no")

    async with connection(rpc) as peer:
        for method, params in [
            ("explode", None),
            ("refuse", None),
            ("missing", None),
            ("explode", [1, 2]),  # invalid params
        ]:
            await peer.request(request(method, params, id=None))
        await peer.nothing_sent()
    (logged,) = problems(caplog)  # the exception, still logged
    assert "'explode' raised" in logged.getMessage()


async def test_a_request_with_a_null_id_is_answered_with_a_null_id() -> None:
    async with connection(arithmetic()) as peer:
        answer = await peer.ask(
            {"jsonrpc": "2.0", "method": "subtract", "params": [2, 1], "id": None}
        )
    assert answer == result(1, None)


@pytest.mark.parametrize(
    "message",
    [
        {"jsonrpc": "2.0", "method": "subtract", "params": [1], "id": True},
        {"jsonrpc": "2.0", "method": "subtract", "params": [1], "id": [1]},
        {"jsonrpc": "2.0", "method": "subtract", "params": [1], "id": {"n": 1}},
        {"jsonrpc": "1.0", "method": "subtract", "params": [1], "id": 1},
        {"method": "subtract", "params": [1], "id": 1},
        {"jsonrpc": "2.0", "params": [1], "id": 1},
    ],
    ids=["bool id", "array id", "object id", "version 1.0", "no version", "no method"],
)
async def test_a_malformed_request_object_is_an_invalid_request(message: dict[str, Any]) -> None:
    async with connection(arithmetic()) as peer:
        assert await peer.ask(message) == INVALID_REQUEST


async def test_other_members_of_a_request_are_left_alone() -> None:
    async with connection(arithmetic()) as peer:
        answer = await peer.ask(request("subtract", [2, 1]) | {"trace": "abc"})
    assert answer == result(1)


async def test_the_connection_stays_open_after_each_error() -> None:
    rpc = arithmetic()

    @rpc.method
    async def explode() -> None:
        raise RuntimeError("boom")

    mistakes = [
        ('{"jsonrpc": "2.0", "method": "subtract", "id": 1', PARSE_ERROR),
        (b"\xff\xfe", PARSE_ERROR),
        ("[]", INVALID_REQUEST),
        ('"subtract"', INVALID_REQUEST),
        (request("nope"), error(-32601, "Method not found")),
        (request("subtract", ["x"]), None),
        (request("explode"), internal_error()),
    ]
    async with connection(rpc) as peer:
        for frame, expected in mistakes:
            if isinstance(frame, bytes):
                await peer.deliver(binary(frame))
                answer = await peer.received()
            else:
                answer = await peer.ask(frame)
            if expected is not None:
                assert answer == expected, frame
            else:
                assert answer["error"]["code"] == -32602
            assert await peer.ask(request("subtract", [3, 1], id="ok")) == result(2, "ok")
        assert "websocket.close" not in peer.types()


# Frames.


async def test_a_binary_frame_carrying_json_is_answered_in_a_text_frame() -> None:
    async with connection(arithmetic()) as peer:
        await peer.deliver(binary(json.dumps(request("subtract", [5, 3])).encode()))
        assert await peer.received() == result(2)


async def test_invalid_utf8_is_a_parse_error() -> None:
    async with connection(arithmetic()) as peer:
        await peer.deliver(binary(b'{"jsonrpc": "2.0", "method": "\xc3\x28", "id": 1}'))
        assert await peer.received() == PARSE_ERROR


@both_event_loops
async def test_a_batch_is_answered_in_one_array_in_order_without_its_notifications() -> None:
    rpc = arithmetic()
    slow_may_end = anyio.Event()

    @rpc.method
    async def slow() -> str:
        await slow_may_end.wait()
        return "slow"

    async with connection(rpc) as peer:
        await peer.request(
            [
                request("slow", id=1),
                request("subtract", [5, 3], id=None),
                request("nope", id=2),
                request("multiply", [2, 3], id=3),
            ]
        )
        await peer.nothing_sent()  # the batch is answered once all its requests ended
        slow_may_end.set()
        answer = await peer.received()
    assert answer == [result("slow", 1), error(-32601, "Method not found", 2), result(6, 3)]


# The server's side: notify and call.


async def test_notify_sends_a_notification() -> None:
    rpc = JsonRpc()
    connections = keeping_connections(rpc)
    async with connection(rpc) as peer:
        (ws,) = connections
        await rpc.notify(ws, "chat.said", {"text": "hi"})
        await rpc.notify(ws, "tick", (1, 2))
        await rpc.notify(ws, "ping")
        assert await peer.received() == request("chat.said", {"text": "hi"}, id=None)
        assert await peer.received() == request("tick", [1, 2], id=None)
        assert await peer.received() == {"jsonrpc": "2.0", "method": "ping"}
        with pytest.raises(TypeError, match="params must be a list, a tuple or a dict"):
            await rpc.notify(ws, "tick", 1)
        with pytest.raises(TypeError, match="a method's name is a str"):
            await rpc.notify(ws, 1, [])  # type: ignore[arg-type]
        await peer.nothing_sent()


async def test_a_method_notifies_its_client() -> None:
    rpc = JsonRpc()

    @rpc.method("chat.say")
    async def say(ws: WebSocket, text: str) -> None:
        await rpc.notify(ws, "chat.said", {"text": text})

    async with connection(rpc) as peer:
        await peer.request(request("chat.say", ["hello"]))
        assert await peer.received() == request("chat.said", {"text": "hello"}, id=None)
        assert await peer.received() == result(None)


@both_event_loops
async def test_call_returns_the_clients_result() -> None:
    rpc = JsonRpc()
    connections = keeping_connections(rpc)
    async with connection(rpc) as peer, anyio.create_task_group() as tasks:
        (ws,) = connections
        pending = calling(tasks, lambda: rpc.call(ws, "confirm", {"question": "sure?"}))
        asked = await peer.received()
        assert asked == request("confirm", {"question": "sure?"}, id=asked["id"])
        assert isinstance(asked["id"], int)
        await peer.request(result("yes", asked["id"]))
        assert await pending.outcome() == "yes"


@both_event_loops
async def test_a_method_calls_its_client_and_answers_with_the_result() -> None:
    rpc = JsonRpc()

    @rpc.method
    async def ask(ws: WebSocket, question: str) -> Any:
        return await rpc.call(ws, "confirm", [question], timeout=TIMEOUT)

    async with connection(rpc) as peer:
        await peer.request(request("ask", ["sure?"], id="a"))
        asked = await peer.received()
        assert asked == request("confirm", ["sure?"], id=asked["id"])
        await peer.request(result({"confirmed": True}, asked["id"]))
        assert await peer.received() == result({"confirmed": True}, "a")


async def test_call_raises_rpc_error_when_the_client_answers_with_an_error() -> None:
    rpc = JsonRpc()
    connections = keeping_connections(rpc)
    async with connection(rpc) as peer, anyio.create_task_group() as tasks:
        (ws,) = connections
        with_data = calling(tasks, lambda: rpc.call(ws, "confirm"))
        without_data = calling(tasks, lambda: rpc.call(ws, "confirm"))
        first, second = await peer.received(), await peer.received()
        await peer.request(error(4000, "declined", first["id"], data={"why": "no"}))
        await peer.request(error(-32601, "Method not found", second["id"]))
        with pytest.raises(RpcError) as raised:
            await with_data.outcome()
        assert (raised.value.code, raised.value.message, raised.value.data) == (
            4000,
            "declined",
            {"why": "no"},
        )
        assert raised.value.error_object() == {
            "code": 4000,
            "message": "declined",
            "data": {"why": "no"},
        }
        with pytest.raises(RpcError) as raised:
            await without_data.outcome()
        assert raised.value.error_object() == {"code": -32601, "message": "Method not found"}
        assert str(raised.value) == "Method not found (-32601)"


async def test_an_rpc_error_from_call_passes_through_a_method_as_its_answer() -> None:
    rpc = JsonRpc()

    @rpc.method
    async def ask(ws: WebSocket) -> Any:
        return await rpc.call(ws, "confirm", timeout=TIMEOUT)

    async with connection(rpc) as peer:
        await peer.request(request("ask"))
        asked = await peer.received()
        await peer.request(error(4000, "declined", asked["id"]))
        assert await peer.received() == error(4000, "declined")


async def test_call_times_out_and_a_late_answer_is_ignored_with_a_log_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="bocws")
    rpc = arithmetic()
    connections = keeping_connections(rpc)
    async with connection(rpc) as peer:
        (ws,) = connections
        with pytest.raises(TimeoutError):
            await rpc.call(ws, "confirm", timeout=0.01)
        asked = await peer.received()
        await peer.request(result("too late", asked["id"]))
        # The reader took the late answer before this request.
        assert await peer.ask(request("subtract", [2, 1])) == result(1)
    ignored = [record.getMessage() for record in caplog.records if "no call" in record.getMessage()]
    assert ignored == [
        f"'/ws': a JSON-RPC answer for no call of the server's (id {asked['id']}); ignored"
    ]


async def test_answers_for_unknown_ids_are_ignored_with_a_log_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="bocws")
    async with connection(arithmetic()) as peer:
        await peer.request(result("what?", 99))
        await peer.request(error(1, "what?", "x"))
        await peer.request(result("what?", None))
        await peer.request([result("what?", [1]), result("what?", {"a": 1})])
        assert await peer.ask(request("subtract", [2, 1])) == result(1)
        await peer.nothing_sent()
    ignored = [record.getMessage() for record in caplog.records if "no call" in record.getMessage()]
    assert ignored == [
        f"'/ws': a JSON-RPC answer for no call of the server's (id {answer_id!r}); ignored"
        for answer_id in (99, "x", None, [1], {"a": 1})
    ]
    assert problems(caplog) == []


@both_event_loops
async def test_call_raises_websocket_disconnect_when_the_connection_ends_first() -> None:
    rpc = JsonRpc()
    connections = keeping_connections(rpc)
    async with anyio.create_task_group() as tasks:
        async with connection(rpc, close_code=4002) as peer:
            (ws,) = connections
            pending = calling(tasks, lambda: rpc.call(ws, "confirm"))
            await peer.received()
        with pytest.raises(WebSocketDisconnect) as raised:
            await pending.outcome()
    assert raised.value.code == 4002


async def test_call_after_the_connection_ended_raises_websocket_disconnect() -> None:
    # Was a bug: the connection's peer is forgotten before it is marked ended, so a call
    # after the end is a RuntimeError ("not a connection of ...") and the
    # WebSocketDisconnect branch of _Peer.call is unreachable; notify() raises
    # WebSocketDisconnect in the same place.
    rpc = JsonRpc()
    connections = keeping_connections(rpc)
    async with connection(rpc, close_code=1001):
        pass
    (ws,) = connections
    with pytest.raises(WebSocketDisconnect):
        await rpc.notify(ws, "bye")
    with pytest.raises(WebSocketDisconnect):
        await rpc.call(ws, "confirm", timeout=TIMEOUT)


async def test_call_on_a_connection_of_another_service_is_a_runtime_error() -> None:
    first, second = JsonRpc(), JsonRpc()
    connections = keeping_connections(first)
    async with connection(first):
        (ws,) = connections
        with pytest.raises(RuntimeError, match="is not a connection of <JsonRpc"):
            await second.call(ws, "confirm")


async def test_concurrent_calls_get_ids_of_their_own_and_their_own_answers() -> None:
    rpc = JsonRpc()
    connections = keeping_connections(rpc)
    async with connection(rpc) as peer, anyio.create_task_group() as tasks:
        (ws,) = connections
        calls = [calling(tasks, lambda n=n: rpc.call(ws, "echo", [n])) for n in range(3)]
        asked = [await peer.received() for _ in calls]
        assert len({message["id"] for message in asked}) == 3
        for message in reversed(asked):
            await peer.request(result(message["params"][0] * 10, message["id"]))
        assert [await pending.outcome() for pending in calls] == [0, 10, 20]


async def test_a_batch_of_answers_from_the_client_answers_each_call() -> None:
    rpc = JsonRpc()
    connections = keeping_connections(rpc)
    async with connection(rpc) as peer, anyio.create_task_group() as tasks:
        (ws,) = connections
        yes = calling(tasks, lambda: rpc.call(ws, "confirm", ["a"]))
        no = calling(tasks, lambda: rpc.call(ws, "confirm", ["b"]))
        first, second = await peer.received(), await peer.received()
        await peer.request([error(1, "no", second["id"]), result("yes", first["id"])])
        assert await yes.outcome() == "yes"
        with pytest.raises(RpcError):
            await no.outcome()
        await peer.nothing_sent()  # a batch of answers is not answered


async def test_a_batch_mixing_answers_and_requests_takes_both() -> None:
    rpc = arithmetic()
    connections = keeping_connections(rpc)
    async with connection(rpc) as peer, anyio.create_task_group() as tasks:
        (ws,) = connections
        pending = calling(tasks, lambda: rpc.call(ws, "confirm"))
        asked = await peer.received()
        answer = await peer.ask([result(True, asked["id"]), request("subtract", [3, 2], id=7)])
        assert answer == [result(1, 7)]
        assert await pending.outcome() is True


# Concurrency.


@both_event_loops
async def test_requests_run_concurrently() -> None:
    rpc = arithmetic()
    slow_may_end = anyio.Event()

    @rpc.method
    async def slow() -> str:
        await slow_may_end.wait()
        return "slow"

    async with connection(rpc) as peer:
        await peer.request(request("slow", id="slow"))
        assert await peer.ask(request("subtract", [2, 1], id="fast")) == result(1, "fast")
        slow_may_end.set()
        assert await peer.received() == result("slow", "slow")


@both_event_loops
async def test_requests_that_wait_hand_the_reading_over_after_quick_ones_and_each_other() -> None:
    # Under asyncio the reader keeps one hand-over scheduled: it must do nothing while
    # the reader waits for a message, and hand over each time a request waits, from
    # whichever task reads by then.
    rpc = arithmetic()
    may_end = {name: anyio.Event() for name in ("first", "second")}

    @rpc.method
    async def wait(name: str) -> str:
        await may_end[name].wait()
        return name

    async with connection(rpc) as peer:
        tasks = []
        for n in range(3):  # quick ones, the loop turning between them
            assert await peer.ask(request("subtract", [n, 1], id=n)) == result(n - 1, n)
            await peer.settled()
            tasks.append(len(anyio.get_running_tasks()))
        assert tasks[0] == tasks[1] == tasks[2]  # one reader all along
        await peer.request(request("wait", ["first"], id="first"))
        assert await peer.ask(request("subtract", [5, 1], id="q1")) == result(4, "q1")
        await peer.request(request("wait", ["second"], id="second"))
        assert await peer.ask(request("subtract", [7, 1], id="q2")) == result(6, "q2")
        may_end["second"].set()
        assert await peer.received() == result("second", "second")
        may_end["first"].set()
        assert await peer.received() == result("first", "first")
        assert await peer.ask(request("subtract", [9, 1], id="q3")) == result(8, "q3")


def blocking_service(max_concurrency: int) -> tuple[JsonRpc, list[int], dict[int, anyio.Event]]:
    """A service whose `block(n)` waits for `releases[n]`; `started` lists the n begun."""
    rpc = JsonRpc(max_concurrency=max_concurrency)
    started: list[int] = []
    releases = {n: anyio.Event() for n in range(1, 10)}

    @rpc.method
    async def block(n: int) -> int:
        started.append(n)
        await releases[n].wait()
        return n

    return rpc, started, releases


@both_event_loops
async def test_at_most_max_concurrency_requests_run_and_the_reader_waits() -> None:
    rpc, started, releases = blocking_service(2)
    async with connection(rpc) as peer:
        for n in (1, 2, 3, 4):
            await peer.request(request("block", [n], id=n))
        await peer.settled()
        assert sorted(started) == [1, 2]  # trio starts tasks in any order
        # The reader took the third request and waits for a slot: the fourth is unread.
        assert len(peer.incoming) == 1
        releases[2].set()
        assert await peer.received() == result(2, 2)
        await peer.settled()
        assert sorted(started) == [1, 2, 3]
        assert len(peer.incoming) == 0  # the reader took the fourth, and waits again
        for n in (1, 3):
            releases[n].set()
            assert await peer.received() == result(n, n)
        await peer.settled()
        assert sorted(started) == [1, 2, 3, 4]
        releases[4].set()
        assert await peer.received() == result(4, 4)


@both_event_loops
async def test_a_batch_counts_its_requests_against_max_concurrency() -> None:
    # Was a bug: a batch takes one slot, then runs all its requests at once: a batch of a
    # thousand requests runs a thousand methods at a time whatever max_concurrency says.
    rpc, started, releases = blocking_service(2)
    async with connection(rpc) as peer:
        await peer.request([request("block", [n], id=n) for n in (1, 2, 3)])
        await peer.settled()
        assert len(started) <= 2
        for release in releases.values():
            release.set()
        assert len(await peer.received()) == 3


@both_event_loops
async def test_a_request_waiting_for_a_slot_is_dropped_cleanly_when_the_view_is_cancelled() -> None:
    # Was a bug: the reader makes the request's coroutine (`run(message)`) before it
    # waits for a slot; cancelled there (a server shutting down, an idle timeout), the
    # coroutine is never awaited, and Python warns about it when it is collected.
    rpc, started, _ = blocking_service(1)
    peer = Peer()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(rpc, peer.scope, peer.receive, peer.send)
            await peer.request(request("block", [1], id=1))
            await peer.request(request("block", [2], id=2))
            await peer.settled()
            assert started == [1]
            assert len(peer.incoming) == 0  # the reader holds the second, waiting
            tasks.cancel_scope.cancel()  # the view is cancelled
        gc.collect()
    assert [str(warning.message) for warning in caught] == []


@both_event_loops
async def test_an_answer_to_a_call_reaches_its_method_while_the_reader_waits_for_a_slot() -> None:
    # Was a deadlock: the method holding the only slot waits
    # for the client's answer, but the reader, waiting for a slot for the request the
    # client sent before its answer, never reads that answer.
    rpc = arithmetic()
    rpc.max_concurrency = 1

    @rpc.method
    async def ask(ws: WebSocket) -> Any:
        return await rpc.call(ws, "confirm", timeout=1)

    async with connection(rpc) as peer:
        await peer.request(request("ask", id="ask"))
        asked = await peer.received()
        await peer.request(request("subtract", [2, 1], id="other"))
        await peer.request(result("yes", asked["id"]))
        answers = [await peer.received(), await peer.received()]
    assert sorted(answers, key=lambda answer: answer["id"]) == [
        result("yes", "ask"),
        result(1, "other"),
    ]


# Hooks.


async def test_on_connect_can_reject_with_403_and_on_disconnect_is_not_called() -> None:
    rpc = arithmetic()
    ended: list[int] = []
    left = anyio.Event()

    @rpc.on_connect
    async def authenticate(ws: WebSocket) -> None:
        if ws.query_params.get("token") != "secret":
            await ws.reject()

    @rpc.on_disconnect
    async def leave(ws: WebSocket, code: int) -> None:
        ended.append(code)
        left.set()

    app = App()
    app.add_websocket_route("/rpc", rpc)
    async with running_server(app, "websockets-sansio") as url:
        assert (await refused(url + "/rpc")).response.status_code == 403
        async with client(url + "/rpc?token=secret") as session:
            await session.send(json.dumps(request("subtract", [2, 1])))
            assert json.loads(await recv(session)) == result(1)
        with anyio.fail_after(TIMEOUT):
            await left.wait()
    assert ended == [1000]  # the accepted connection's only


async def test_on_connect_may_accept_with_a_subprotocol() -> None:
    rpc = arithmetic()

    @rpc.on_connect
    async def accept(ws: WebSocket) -> None:
        await ws.accept(subprotocol="jsonrpc")

    app = App()
    app.add_websocket_route("/rpc", rpc)
    with TestClient(app).websocket_connect("/rpc", subprotocols=["jsonrpc"]) as session:
        assert session.accepted_subprotocol == "jsonrpc"
        session.send_json(request("subtract", [2, 1]))
        assert session.receive_json() == result(1)


@pytest.mark.parametrize("code", [1000, 1001, 4002])
async def test_on_disconnect_gets_the_close_code(code: int) -> None:
    rpc = arithmetic()
    ended: list[tuple[str, int]] = []

    @rpc.on_disconnect
    async def leave(ws: WebSocket, code: int) -> None:
        ended.append((ws.url.path, code))

    async with connection(rpc, close_code=code) as peer:
        assert await peer.ask(request("subtract", [2, 1])) == result(1)
        assert ended == []
    assert ended == [("/ws", code)]


@both_event_loops
async def test_a_connection_ending_cancels_its_running_methods() -> None:
    # Was a bug: under asyncio the first request that waits runs in the view's own task,
    # where the end of the connection is also handled: until that method returns,
    # nothing is cancelled and on_disconnect does not run (here: never).
    rpc = JsonRpc()
    started: list[int] = []
    cancelled: list[int] = []
    ended = anyio.Event()

    @rpc.method
    async def forever(n: int) -> None:
        started.append(n)
        try:
            await anyio.sleep_forever()
        finally:
            cancelled.append(n)

    @rpc.on_disconnect
    async def leave(ws: WebSocket, code: int) -> None:
        ended.set()

    peer = Peer()
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(rpc, peer.scope, peer.receive, peer.send)
        try:
            await peer.request(request("forever", [1]))
            await peer.request(request("forever", [2]))
            await peer.settled()
            assert sorted(started) == [1, 2]
            await peer.deliver(disconnect(1001))
            with anyio.fail_after(TIMEOUT):
                await ended.wait()
            assert sorted(cancelled) == [1, 2]
        finally:
            tasks.cancel_scope.cancel()  # a service that did not end


# Route options.


async def test_allowed_origins_refuses_another_origin_with_403() -> None:
    app = App()
    app.add_websocket_route("/rpc", arithmetic(), allowed_origins=["https://app.example.com"])
    async with running_server(app, "websockets-sansio") as url:
        denied = await refused(url + "/rpc", origin="https://evil.test")
        assert denied.response.status_code == 403
        async with client(url + "/rpc", origin="https://app.example.com") as allowed:
            await allowed.send(json.dumps(request("subtract", [2, 1])))
            assert json.loads(await recv(allowed)) == result(1)


async def test_max_message_size_closes_1009_over_uvicorn() -> None:
    app = App()
    app.add_websocket_route("/rpc", arithmetic(), max_message_size=100)
    async with running_server(app, "websockets-sansio") as url, client(url + "/rpc") as peer:
        await peer.send(json.dumps(request("subtract", [2, 1])))
        assert json.loads(await recv(peer)) == result(1)
        await peer.send(json.dumps(request("subtract", [2, 1], id="x" * 100)))
        assert await close_frame(peer) == (1009, "message too big")


def test_json_rpc_also_takes_options_of_its_own() -> None:
    rpc = JsonRpc(max_message_size=100, idle_timeout=30)
    assert rpc.options["max_message_size"] == 100
    assert rpc.options["idle_timeout"] == 30


@pytest.mark.parametrize("kind", ["value_type", "receive_type", "send_type"])
def test_json_rpc_takes_no_message_kind(kind: str) -> None:
    with pytest.raises(TypeError, match=f"JsonRpc takes no {kind}: its messages are JSON-RPC's"):
        JsonRpc(**{kind: Point})


@pytest.mark.parametrize("value", [0, -1, 1.5, "2"])
def test_max_concurrency_is_a_positive_int(value: Any) -> None:
    with pytest.raises(ValueError, match="max_concurrency must be a positive int"):
        JsonRpc(max_concurrency=value)


def test_an_unknown_codec_is_refused() -> None:
    with pytest.raises(ValueError, match="codec must be None, 'pydantic' or 'msgspec'"):
        JsonRpc(codec="marshmallow")  # type: ignore[arg-type]


# msgspec.


def msgspec_service() -> JsonRpc:
    rpc = JsonRpc(codec="msgspec", title="paths", version="0.1.0")

    @rpc.method
    async def walk(path: Polyline, scale: int = 1) -> int:
        """The length of a path.

        Manhattan distance, point to point, times `scale`.
        """
        pairs = zip(path.points, path.points[1:], strict=False)
        return scale * sum(abs(b.x - a.x) + abs(b.y - a.y) for a, b in pairs)

    @rpc.method
    async def start(path: Polyline) -> Vector:
        return path.points[0]

    return rpc


async def test_msgspec_struct_params_by_position_and_name() -> None:
    path = {"points": [{"x": 0, "y": 0}, {"x": 3, "y": 4}]}
    async with connection(msgspec_service()) as peer:
        assert await peer.ask(request("walk", [path])) == result(7)
        assert await peer.ask(request("walk", {"path": path, "scale": 2})) == result(14)
        assert await peer.ask(request("start", [path])) == result({"x": 0, "y": 0})


async def test_msgspec_invalid_params_say_where_without_the_input() -> None:
    secret = "s3cr3t-s3cr3t"
    path = {"points": [{"x": 0, "y": secret}]}
    async with connection(msgspec_service()) as peer:
        await peer.request(request("walk", [path]))
        answer = await peer.received()
        frame = peer.sent[-1]["text"]
        extra = await peer.ask(request("walk", {"path": {"points": []}, "size": 1}))
    assert secret not in frame
    assert answer == invalid_params(
        [
            {
                "type": "validation",
                "loc": [],
                "msg": "Expected `int`, got `str` - at `$.path.points[0].y`",
            }
        ]
    )
    assert extra["error"]["code"] == -32602
    assert extra["error"]["data"][0]["msg"] == "Object contains unknown field `size`"


async def test_msgspec_is_strict_where_pydantic_is_lax() -> None:
    async with connection(msgspec_service()) as peer:
        answer = await peer.ask(request("walk", [{"points": []}, "2"]))
    assert answer["error"]["code"] == -32602


# The OpenRPC document: rpc.discover.


def test_the_document_describes_each_methods_params_and_result() -> None:
    rpc = arithmetic()

    @rpc.method
    async def documented(ws: WebSocket, word: str = "hi") -> list[str]:
        """Say a word.

        Twice, in a list.
        """
        return [word, word]

    document = rpc.openrpc()
    assert document["openrpc"] == "1.3.2"
    assert document["info"] == {"title": "bocws JSON-RPC service", "version": "1.0.0"}
    methods = {method["name"]: method for method in document["methods"]}
    assert list(methods) == ["subtract", "multiply", "geometry.length", "documented"]
    assert methods["subtract"] == {
        "name": "subtract",
        "params": [
            {"name": "minuend", "schema": {"type": "integer"}, "required": True},
            {"name": "subtrahend", "schema": {"type": "integer"}, "required": False},
        ],
        "result": {"name": "result", "schema": {"type": "integer"}},
    }
    assert methods["documented"] == {
        "name": "documented",
        "params": [{"name": "word", "schema": {"type": "string"}, "required": False}],
        "result": {"name": "result", "schema": {"items": {"type": "string"}, "type": "array"}},
        "summary": "Say a word.",
        "description": "Twice, in a list.",
    }


def test_nested_pydantic_models_are_in_components_with_refs() -> None:
    document = arithmetic().openrpc()
    schemas = document["components"]["schemas"]
    assert schemas["Point"] == Point.model_json_schema()
    (length,) = [method for method in document["methods"] if method["name"] == "geometry.length"]
    reference = length["params"][0]["schema"]["$ref"]  # the model itself is in components
    schema = schemas[reference.removeprefix("#/components/schemas/")]
    assert schema["properties"]["start"] == {"$ref": "#/components/schemas/Point"}
    assert "$defs" not in json.dumps(document)


def test_a_pydantic_model_param_or_result_is_a_ref_to_components() -> None:
    # Was a gap: a model at the top of a param's or result's type is written out
    # inline in every method that uses it; only the models inside it are moved to
    # components. msgspec's Structs are refs at every level.
    rpc = JsonRpc()

    @rpc.method
    async def mirror(point: Point) -> Point:
        return point

    document = rpc.openrpc()
    (method,) = document["methods"]
    assert method["params"][0]["schema"] == {"$ref": "#/components/schemas/Point"}
    assert method["result"]["schema"] == {"$ref": "#/components/schemas/Point"}
    assert document["components"]["schemas"]["Point"]["title"] == "Point"


def test_msgspec_structs_are_in_components_with_refs() -> None:
    document = msgspec_service().openrpc()
    assert document["info"] == {"title": "paths", "version": "0.1.0"}
    walk, start = document["methods"]
    assert walk["params"] == [
        {"name": "path", "schema": {"$ref": "#/components/schemas/Polyline"}, "required": True},
        {"name": "scale", "schema": {"type": "integer"}, "required": False},
    ]
    assert walk["summary"] == "The length of a path."
    assert walk["description"] == "Manhattan distance, point to point, times `scale`."
    assert start["result"]["schema"] == {"$ref": "#/components/schemas/Vector"}
    schemas = document["components"]["schemas"]
    assert set(schemas) == {"Polyline", "Vector"}
    assert schemas["Polyline"]["properties"]["points"]["items"] == {
        "$ref": "#/components/schemas/Vector"
    }


async def test_rpc_discover_answers_with_the_document() -> None:
    rpc = arithmetic()
    async with connection(rpc) as peer:
        assert await peer.ask(request("rpc.discover")) == result(rpc.openrpc())
        await peer.request(request("rpc.discover", id=None))  # a notification
        await peer.nothing_sent()


@pytest.fixture(scope="module")
def openrpc_validator() -> jsonschema.Draft7Validator:
    """The official OpenRPC meta-schema (@open-rpc/meta-schema), as a validator.

    The package is JavaScript: Node.js prints it as JSON. Its JSON Schema
    definition refers to https://meta.json-schema.tools/, the meta-schema of
    @json-schema-tools/meta-schema, installed alongside, as @open-rpc/schema-utils-js
    does it."""
    npm_package("openrpc", "@open-rpc/meta-schema")
    npm_package("openrpc", "@json-schema-tools/meta-schema")
    script = (
        "process.stdout.write(JSON.stringify({"
        "openrpc: require('@open-rpc/meta-schema').openrpcDocument,"
        "jsonSchema: require('@json-schema-tools/meta-schema').default}))"
    )
    printed = subprocess.run(
        ["node", "-e", script], cwd=TESTS / "openrpc", capture_output=True, text=True, check=True
    )
    schemas = json.loads(printed.stdout)
    json_schema = DRAFT7.create_resource(schemas["jsonSchema"])
    registry: Registry[Any] = Registry().with_resources(
        (uri, json_schema)
        for uri in ("https://meta.json-schema.tools", schemas["jsonSchema"]["$id"])
    )
    return jsonschema.Draft7Validator(schemas["openrpc"], registry=registry)


def openrpc_errors(validator: jsonschema.Draft7Validator, document: Any) -> list[str]:
    return [
        f"{'/'.join(map(str, error.absolute_path))}: {error.message}"
        for error in validator.iter_errors(document)
    ]


def test_the_meta_schema_refuses_a_broken_document(
    openrpc_validator: jsonschema.Draft7Validator,
) -> None:
    document = arithmetic().openrpc()
    assert openrpc_errors(openrpc_validator, document) == []
    document["methods"][0]["params"][0]["schema"] = {"type": "integr"}
    assert openrpc_errors(openrpc_validator, document) != []
    assert openrpc_errors(openrpc_validator, {"openrpc": "1.3.2", "methods": []}) != []


def every_kind_of_method() -> JsonRpc:
    rpc = arithmetic()

    @rpc.method
    async def documented(ws: WebSocket, word: str = "hi") -> list[str]:
        """Say a word.

        Twice, in a list.
        """
        return [word]

    @rpc.method
    async def untyped(anything, other=None):  # type: ignore[no-untyped-def]
        return anything

    @rpc.method
    async def segments(first: Segment, rest: list[Segment] | None = None) -> dict[str, Point]:
        return {}

    return rpc


SERVICES = pytest.mark.parametrize(
    "make",
    [
        JsonRpc,
        every_kind_of_method,
        lambda: service(lambda method, params: None),
        msgspec_service,
        lambda: JsonRpc(codec="msgspec"),
        lambda: rpc_example.rpc,
    ],
    ids=[
        "no methods",
        "pydantic",
        "the specification's examples",
        "msgspec",
        "msgspec, no methods",
        "examples/rpc.py",
    ],
)


@SERVICES
def test_the_document_is_valid_openrpc(
    openrpc_validator: jsonschema.Draft7Validator, make: Callable[[], JsonRpc]
) -> None:
    assert openrpc_errors(openrpc_validator, make().openrpc()) == []


def refs(value: Any) -> list[str]:
    """Every `$ref` in `value`, at any depth."""
    if isinstance(value, dict):
        found = [value["$ref"]] if isinstance(value.get("$ref"), str) else []
        return found + [ref for member in value.values() for ref in refs(member)]
    if isinstance(value, list):
        return [ref for member in value for ref in refs(member)]
    return []


@SERVICES
def test_every_ref_in_the_document_is_in_its_components(make: Callable[[], JsonRpc]) -> None:
    document = make().openrpc()
    schemas = document.get("components", {}).get("schemas", {})
    prefix = "#/components/schemas/"
    for ref in refs(document):
        assert ref.startswith(prefix), ref
        assert ref.removeprefix(prefix) in schemas, ref


# Two models of one name, from two modules as it were.
ItemOnSale = create_model("Item", name=(str, ...))
ItemInStock = create_model("Item", count=(int, ...))


def test_two_models_of_one_name_keep_schemas_of_their_own() -> None:
    # Was a bug: each param's schema is made on its own (a TypeAdapter each), and their
    # definitions go into components by bare name: the second `Item` replaces the
    # first, and `sell`'s params then point at the schema of `stock`'s.
    rpc = JsonRpc()

    @rpc.method
    async def sell(items: list[ItemOnSale]) -> None: ...

    @rpc.method
    async def stock(items: list[ItemInStock]) -> None: ...

    document = rpc.openrpc()
    schemas = document["components"]["schemas"]
    prefix = "#/components/schemas/"
    resolved = {
        method["name"]: schemas[method["params"][0]["schema"]["items"]["$ref"].removeprefix(prefix)]
        for method in document["methods"]
    }
    assert list(resolved["sell"]["properties"]) == ["name"]
    assert list(resolved["stock"]["properties"]) == ["count"]


# Declaring methods.


def test_names_beginning_with_rpc_dot_are_reserved() -> None:
    rpc = JsonRpc()

    async def discover() -> None: ...

    for name in ("rpc.discover", "rpc.other"):
        with pytest.raises(TypeError, match=r"method names beginning with 'rpc\.' are reserved"):
            rpc.method(name)(discover)
    rpc.method("rpcx")(discover)  # only the prefix with its dot


def test_a_name_is_registered_once() -> None:
    rpc = JsonRpc()

    async def add() -> None: ...

    rpc.method(add)
    with pytest.raises(TypeError, match="method 'add' is registered already"):
        rpc.method(add)
    with pytest.raises(TypeError, match="method 'add' is registered already"):
        rpc.method("add")(lambda: None)


def test_a_function_taking_args_or_kwargs_is_refused() -> None:
    rpc = JsonRpc()

    async def numbers(*values: int) -> int:
        return sum(values)

    async def options(**values: int) -> int:
        return len(values)

    with pytest.raises(TypeError, match=r"method 'numbers': \*args and \*\*kwargs"):
        rpc.method(numbers)
    with pytest.raises(TypeError, match=r"method 'options': \*args and \*\*kwargs"):
        rpc.method(options)


def test_the_decorator_takes_a_name_or_nothing() -> None:
    rpc = JsonRpc()

    async def add() -> None: ...

    async def negate() -> None: ...

    assert rpc.method(add) is add
    assert rpc.method()(negate) is negate
    assert rpc.method("math.add")(add) is add
    assert [method["name"] for method in rpc.openrpc()["methods"]] == ["add", "negate", "math.add"]
    assert repr(rpc) == "<JsonRpc 'bocws JSON-RPC service': add, negate, math.add>"
    assert repr(JsonRpc(title="t")) == "<JsonRpc 't': no methods>"


def test_an_empty_name_is_refused() -> None:
    # Was a bug: `rpc.method("")` registers the function under its own name
    # (`function or decorated.__name__`), so _register's check for an empty name
    # never sees it.
    rpc = JsonRpc()

    async def add() -> None: ...

    with pytest.raises(TypeError, match="a method's name is a non-empty str"):
        rpc.method("")(add)


def test_a_name_that_is_not_a_str_is_refused() -> None:
    rpc = JsonRpc()

    async def add() -> None: ...

    with pytest.raises(TypeError, match="a method's name is a non-empty str, got 1"):
        rpc.method(1)(add)  # type: ignore[call-overload]


# A foreign client: jsonrpc-websocket (PyPI), over a real uvicorn.


@asynccontextmanager
async def jsonrpc_websocket(
    notes: list[tuple[str, list[Any]]] | None = None,
) -> AsyncIterator[jsonrpc_websocket_client.Server]:
    """jsonrpc-websocket's client, connected to tests/rpc_app.py's service."""
    app = App()
    kept = notes if notes is not None else []
    app.add_websocket_route("/rpc", service(lambda method, params: kept.append((method, params))))
    async with running_server(app, "websockets-sansio") as url:
        connected = jsonrpc_websocket_client.Server(url + "/rpc", timeout=TIMEOUT)
        reading = await connected.ws_connect()
        try:
            yield connected
        finally:
            await connected.close()
            with anyio.fail_after(TIMEOUT):
                await reading


async def test_jsonrpc_websocket_calls_the_servers_methods() -> None:
    async with jsonrpc_websocket() as server:
        assert await server.subtract(42, 23) == 19
        assert await server.subtract(subtrahend=23, minuend=42) == 19
        assert await server.sum(1, 2, 4) == 7
        assert await server.get_data() == ["hello", 5]


async def test_jsonrpc_websocket_sends_notifications_that_are_not_answered() -> None:
    notes: list[tuple[str, list[Any]]] = []
    async with jsonrpc_websocket(notes) as server:
        assert await server.update(1, 2, 3, 4, 5, _notification=True) is None
        assert await server.notify_hello(7, _notification=True) is None
        assert await server.subtract(1, 1) == 0  # answered first: nothing came before
    assert notes == [("update", [1, 2, 3, 4, 5]), ("notify_hello", [7])]


async def test_jsonrpc_websocket_gets_the_servers_errors() -> None:
    async with jsonrpc_websocket() as server:
        with pytest.raises(jsonrpc_base.ProtocolError) as raised:
            await server.foobar()
        assert raised.value.args[:2] == (-32601, "Method not found")
        with pytest.raises(jsonrpc_base.ProtocolError) as raised:
            await server.refuse()
        assert raised.value.args[:2] == (4001, "refused")
        assert raised.value.args[2]["error"]["data"] == {"why": "a test"}
        with pytest.raises(jsonrpc_base.ProtocolError) as raised:
            await server.subtract("x", 1)
        assert raised.value.args[0] == -32602
        assert raised.value.args[2]["error"]["data"][0]["loc"] == ["minuend"]
        assert await server.subtract(2, 1) == 1  # the connection is still open


async def test_jsonrpc_websocket_discovers_the_service() -> None:
    async with jsonrpc_websocket() as server:
        document = await server.rpc.discover()
    assert document["info"] == {"title": "JSON-RPC 2.0 examples", "version": "2.0.0"}
    assert [method["name"] for method in document["methods"]] == [
        "subtract",
        "sum",
        "update",
        "notify_hello",
        "notify_sum",
        "get_data",
        "ask",
        "announce",
        "refuse",
    ]


async def test_rpc_call_round_trips_with_jsonrpc_websocket() -> None:
    questions: list[str] = []

    async def confirm(question: str) -> str:
        questions.append(question)
        return f"yes to {question}"

    async with jsonrpc_websocket() as server:
        server.confirm = confirm  # a method the client serves to the server
        assert await server.ask("sure?") == "yes to sure?"
        assert await server.ask(question="really?") == "yes to really?"
    assert questions == ["sure?", "really?"]


async def test_rpc_call_gets_jsonrpc_websockets_errors_as_rpc_errors() -> None:
    def confirm(question: str) -> str:  # jsonrpc-websocket takes plain functions too
        raise ValueError(f"cannot confirm {question}")

    async with jsonrpc_websocket() as server:
        with pytest.raises(jsonrpc_base.ProtocolError) as raised:
            await server.ask("sure?")  # the client serves no confirm yet
        assert raised.value.args[:2] == (-32601, "Method not found")
        server.confirm = confirm
        with pytest.raises(jsonrpc_base.ProtocolError) as raised:
            await server.ask("sure?")  # ask lets call()'s RpcError through as its answer
        assert raised.value.args[:2] == (-32000, "Server Error: cannot confirm sure?")


async def test_the_server_notifies_jsonrpc_websocket() -> None:
    announced: list[str] = []
    arrived = anyio.Event()

    def on_announced(text: str) -> None:
        announced.append(text)
        arrived.set()

    async with jsonrpc_websocket() as server:
        server.announced = on_announced
        assert await server.announce("hello") == "announced"
        with anyio.fail_after(TIMEOUT):
            await arrived.wait()
    assert announced == ["hello"]


async def test_annotated_constraints_of_params_are_checked() -> None:
    # Annotated's extras reach pydantic: a constraint in Field() is checked, as it
    # would be on a model's field.
    rpc = JsonRpc()

    @rpc.method
    async def take(amount: Annotated[int, pydantic.Field(gt=0)]) -> int:
        return amount

    async with connection(rpc) as peer:
        ok = await peer.ask({"jsonrpc": "2.0", "method": "take", "params": [5], "id": 1})
        assert ok == {"jsonrpc": "2.0", "result": 5, "id": 1}
        refused = await peer.ask({"jsonrpc": "2.0", "method": "take", "params": [0], "id": 2})
        assert refused["error"]["code"] == -32602
        assert refused["error"]["data"][0]["type"] == "greater_than"
