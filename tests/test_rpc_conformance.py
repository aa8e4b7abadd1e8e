"""The JSON-RPC 2.0 specification's examples (https://www.jsonrpc.org/specification,
section 7), each sent as written to a `JsonRpc` behind a real uvicorn, with each of its
WebSocket implementations, and the answers compared with the specified ones.

The examples are copied from the specification, frame by frame. Answers are compared
as JSON values, types included (`"1"` is not `1`, `1` is not `1.0`); the answers to a
batch as a multiset, since the server may return them in any order. That nothing is
answered to a notification shows as the next frame being the answer to a request
sent after it.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection

from bocws import App

from .live_server import IMPLEMENTATIONS, client, recv, running_server
from .rpc_app import service

pytestmark = pytest.mark.anyio

# A request sent after notifications: its answer must be the next frame.
FOLLOWER = '{"jsonrpc": "2.0", "method": "subtract", "params": [1, 1], "id": "follower"}'
FOLLOWER_ANSWER = {"jsonrpc": "2.0", "result": 0, "id": "follower"}


class Session:
    """A `websockets` client connected to the specification's service."""

    def __init__(self, connection: ClientConnection, notes: list[tuple[str, list[Any]]]) -> None:
        self.connection = connection
        self.notes = notes

    async def exchange(self, frame: str) -> Any:
        """Send `frame` as it is; the next frame the server sends, parsed."""
        await self.connection.send(frame)
        return await self.received()

    async def received(self) -> Any:
        answer = await recv(self.connection)
        assert isinstance(answer, str), "the server answers in text frames"
        return json.loads(answer)

    async def nothing_answered(self) -> None:
        """Fail if the server answered something since the last answer (or sends
        something before the answer to a request sent now)."""
        assert await self.exchange(FOLLOWER) == FOLLOWER_ANSWER


@pytest.fixture(params=IMPLEMENTATIONS)
async def session(request: pytest.FixtureRequest) -> AsyncIterator[Session]:
    notes: list[tuple[str, list[Any]]] = []
    app = App()
    app.add_websocket_route("/rpc", service(lambda method, params: notes.append((method, params))))
    async with running_server(app, request.param) as url, client(url + "/rpc") as connection:
        yield Session(connection, notes)


def canonical(value: Any) -> str:
    """`value` as JSON that equals another's only for the same JSON value (with types)."""
    return json.dumps(value, sort_keys=True)


def assert_same_json(answer: Any, expected: Any) -> None:
    assert canonical(answer) == canonical(expected)


def assert_same_batch(answer: Any, expected: list[Any]) -> None:
    """`answer` is an array with the `expected` answers, in any order."""
    assert isinstance(answer, list), f"a batch is answered with an array, got {answer!r}"
    assert sorted(map(canonical, answer)) == sorted(map(canonical, expected))


# rpc call with positional parameters


async def test_positional_parameters(session: Session) -> None:
    answer = await session.exchange(
        '{"jsonrpc": "2.0", "method": "subtract", "params": [42, 23], "id": 1}'
    )
    assert_same_json(answer, {"jsonrpc": "2.0", "result": 19, "id": 1})
    answer = await session.exchange(
        '{"jsonrpc": "2.0", "method": "subtract", "params": [23, 42], "id": 2}'
    )
    assert_same_json(answer, {"jsonrpc": "2.0", "result": -19, "id": 2})


# rpc call with named parameters


async def test_named_parameters(session: Session) -> None:
    answer = await session.exchange(
        '{"jsonrpc": "2.0", "method": "subtract", "params": {"subtrahend": 23, "minuend": 42}, '
        '"id": 3}'
    )
    assert_same_json(answer, {"jsonrpc": "2.0", "result": 19, "id": 3})
    answer = await session.exchange(
        '{"jsonrpc": "2.0", "method": "subtract", "params": {"minuend": 42, "subtrahend": 23}, '
        '"id": 4}'
    )
    assert_same_json(answer, {"jsonrpc": "2.0", "result": 19, "id": 4})


# a Notification


async def test_notifications_are_run_and_not_answered(session: Session) -> None:
    await session.connection.send('{"jsonrpc": "2.0", "method": "update", "params": [1,2,3,4,5]}')
    await session.connection.send('{"jsonrpc": "2.0", "method": "foobar"}')  # no such method
    await session.nothing_answered()
    assert session.notes == [("update", [1, 2, 3, 4, 5])]


# rpc call of non-existent method


async def test_a_non_existent_method(session: Session) -> None:
    answer = await session.exchange('{"jsonrpc": "2.0", "method": "foobar", "id": "1"}')
    assert_same_json(
        answer,
        {"jsonrpc": "2.0", "error": {"code": -32601, "message": "Method not found"}, "id": "1"},
    )


# rpc call with invalid JSON


async def test_invalid_json(session: Session) -> None:
    answer = await session.exchange('{"jsonrpc": "2.0", "method": "foobar, "params": "bar", "baz]')
    assert_same_json(
        answer, {"jsonrpc": "2.0", "error": {"code": -32700, "message": "Parse error"}, "id": None}
    )
    await session.nothing_answered()  # and the connection is still open


# rpc call with invalid Request object


async def test_an_invalid_request_object(session: Session) -> None:
    answer = await session.exchange('{"jsonrpc": "2.0", "method": 1, "params": "bar"}')
    assert_same_json(
        answer,
        {"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": None},
    )
    await session.nothing_answered()


# rpc call Batch, invalid JSON


async def test_a_batch_of_invalid_json(session: Session) -> None:
    answer = await session.exchange(
        "[\n"
        '  {"jsonrpc": "2.0", "method": "sum", "params": [1,2,4], "id": "1"},\n'
        '  {"jsonrpc": "2.0", "method"\n'
        "]"
    )
    assert_same_json(
        answer, {"jsonrpc": "2.0", "error": {"code": -32700, "message": "Parse error"}, "id": None}
    )
    await session.nothing_answered()


# rpc call with an empty Array


async def test_an_empty_array(session: Session) -> None:
    answer = await session.exchange("[]")
    assert_same_json(  # one error object, not an array
        answer,
        {"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": None},
    )
    await session.nothing_answered()


# rpc call with an invalid Batch (but not empty)


async def test_an_invalid_batch_of_one(session: Session) -> None:
    answer = await session.exchange("[1]")
    assert_same_batch(
        answer,
        [{"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": None}],
    )
    await session.nothing_answered()


# rpc call with invalid Batch


async def test_an_invalid_batch_of_three(session: Session) -> None:
    answer = await session.exchange("[1,2,3]")
    invalid = {
        "jsonrpc": "2.0",
        "error": {"code": -32600, "message": "Invalid Request"},
        "id": None,
    }
    assert_same_batch(answer, [invalid, invalid, invalid])
    await session.nothing_answered()


# rpc call Batch


async def test_a_batch(session: Session) -> None:
    answer = await session.exchange(
        "[\n"
        '    {"jsonrpc": "2.0", "method": "sum", "params": [1,2,4], "id": "1"},\n'
        '    {"jsonrpc": "2.0", "method": "notify_hello", "params": [7]},\n'
        '    {"jsonrpc": "2.0", "method": "subtract", "params": [42,23], "id": "2"},\n'
        '    {"foo": "boo"},\n'
        '    {"jsonrpc": "2.0", "method": "foo.get", "params": {"name": "myself"}, "id": "5"},\n'
        '    {"jsonrpc": "2.0", "method": "get_data", "id": "9"}\n'
        "]"
    )
    assert_same_batch(
        answer,
        [
            {"jsonrpc": "2.0", "result": 7, "id": "1"},
            {"jsonrpc": "2.0", "result": 19, "id": "2"},
            {"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": None},
            {"jsonrpc": "2.0", "error": {"code": -32601, "message": "Method not found"}, "id": "5"},
            {"jsonrpc": "2.0", "result": ["hello", 5], "id": "9"},
        ],
    )
    assert session.notes == [("notify_hello", [7])]
    await session.nothing_answered()


# rpc call Batch (all notifications)


async def test_a_batch_of_notifications_only_is_not_answered(session: Session) -> None:
    await session.connection.send(
        "[\n"
        '    {"jsonrpc": "2.0", "method": "notify_sum", "params": [1,2,4]},\n'
        '    {"jsonrpc": "2.0", "method": "notify_hello", "params": [7]}\n'
        "]"
    )
    await session.nothing_answered()
    assert sorted(session.notes) == [("notify_hello", [7]), ("notify_sum", [1, 2, 4])]
