"""The hot path: typed receives and sends while both sides are connected (`core.open`)
give exactly what the original path through the state core gives.

A receive with a `timeout=` always takes the original path, and so does a send before
a pending lazy accept. Each property runs both paths on fresh `WebSocket`s fed the same
messages by a fake server (no sockets), and compares everything observable: the value
returned or the exception raised (type, message, code), what the server was sent
afterwards (a 1009 close, say), the state of both sides, and the close code a view
would use for the client's bad data (`_ending_of`).
"""

from __future__ import annotations

import datetime
import enum
import math
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import anyio
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry
from uvicorn.protocols.utils import ClientDisconnected

from bocws import (
    MessageTooBig,
    WebSocket,
    WebSocketDisconnect,
    WebSocketState,
    WebSocketStateError,
)
from bocws._connection import count_with
from bocws._metrics import ConnectionMetrics, Tally
from bocws._state import ConnectionState

from .fake import CONNECT, FakeServer, Message

#: Examples per property; the file runs in a few seconds.
HOT_PATH_EXAMPLES = 250
#: A timeout that never runs out here, only to take the original path.
SLOW = 3600

hot_settings = settings(
    max_examples=HOT_PATH_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

RECEIVE = "websocket.receive"
DISCONNECT = "websocket.disconnect"
ACCEPT = "websocket.accept"
SEND = "websocket.send"
CLOSE = "websocket.close"
CONNECTED = WebSocketState.CONNECTED
CONNECTING = WebSocketState.CONNECTING
DISCONNECTED = WebSocketState.DISCONNECTED

#: What the client gives when the script runs out: it has gone.
GONE: Message = {"type": DISCONNECT, "code": 1006, "reason": ""}
#: The route whose metrics count the connections of the tests with metrics on.
ROUTE = ConnectionMetrics.of(CollectorRegistry()).route("/ws")


class Server(FakeServer):
    """A fake server that checks text as a real one does before sending it (a lone
    surrogate cannot be encoded), fails its sends from the `fail_from`-th on with a
    fresh `failure()`, and reports the client gone once the script runs out."""

    def __init__(
        self,
        incoming: list[Message],
        *,
        failure: Callable[[], BaseException] | None = None,
        fail_from: int = 1,
    ) -> None:
        super().__init__([CONNECT, *(dict(message) for message in incoming)])
        self.failure = failure
        self.fail_from = fail_from

    async def receive(self) -> Message:
        if not self.incoming:
            return dict(GONE)
        return self.incoming.popleft()

    async def send(self, message: Message) -> None:
        if self.failure is not None and len(self.sent) >= self.fail_from:
            raise self.failure()
        text = message.get("text")
        if text is not None:
            text.encode("utf-8")  # UnicodeEncodeError for a lone surrogate, as uvicorn's
        self.sent.append(dict(message))


# What is compared.


def describe_value(value: Any) -> tuple[Any, ...]:
    return ("returned", type(value), value)


def describe_error(ws: WebSocket, error: BaseException) -> tuple[Any, ...]:
    source = getattr(error, "source", None)
    return (
        "raised",
        type(error),
        str(error),
        getattr(error, "code", None),
        getattr(error, "reason", None),
        getattr(error, "size", None),
        getattr(error, "limit", None),
        None if source is None else source() is ws,
        type(error.__cause__),
        error.__suppress_context__,
        ws._ending_of(error),  # how a view or `async with` would end the connection
    )


def typed(message: Message) -> list[tuple[str, type, Any]]:
    """A message with the class of each value: b"a" and bytearray(b"a") are equal."""
    return [(key, type(value), value) for key, value in message.items()]


def counted(ws: WebSocket) -> None:
    """Turn metrics on for `ws`, accepted already (the accept is not counted)."""
    count_with(ws, Tally(ROUTE))


def snapshot(ws: WebSocket, server: Server) -> tuple[Any, ...]:
    core = ws._core
    tally = ws._tally
    return (
        ws.client_state,
        ws.application_state,
        core.open,
        core.disconnect_code,
        core.disconnect_reason,
        core.lost,
        [typed(message) for message in server.sent],
        len(server.incoming),
        [typed(message) for message in (ws._search._unread if ws._search else ())],
        None
        if tally is None
        else (tally.received, tally.received_bytes, tally.sent, tally.sent_bytes),
    )


async def outcome_of(ws: WebSocket, call: Awaitable[Any]) -> tuple[Any, ...]:
    try:
        value = await call
    except Exception as error:
        return describe_error(ws, error)
    return describe_value(value)


# The receiving side.

Receiver = Callable[[WebSocket], Awaitable[Any]]

RECEIVERS: dict[str, tuple[Receiver, Receiver]] = {
    "text": (
        lambda ws: ws.receive_text(),
        lambda ws: ws.receive_text(timeout=SLOW),
    ),
    "bytes": (
        lambda ws: ws.receive_bytes(),
        lambda ws: ws.receive_bytes(timeout=SLOW),
    ),
    "json": (
        lambda ws: ws.receive_json(),
        lambda ws: ws.receive_json(timeout=SLOW),
    ),
    "json-text": (
        lambda ws: ws.receive_json(mode="text"),
        lambda ws: ws.receive_json(mode="text", timeout=SLOW),
    ),
    "json-binary": (
        lambda ws: ws.receive_json(mode="binary"),
        lambda ws: ws.receive_json(mode="binary", timeout=SLOW),
    ),
}


def run_receives(
    messages: list[Message], limit: int | None, receiver: Receiver
) -> list[tuple[Any, ...]]:
    """Accept, then receive once per message and once more; every outcome and state."""
    server = Server(messages)

    async def main() -> list[tuple[Any, ...]]:
        ws = server.websocket(max_message_size=limit)
        await ws.accept()
        assert ws._core.open  # the hot path is there to take
        outcomes = []
        for _ in range(len(messages) + 1):
            outcomes.append(await outcome_of(ws, receiver(ws)))
            outcomes.append(snapshot(ws, server))
        return outcomes

    return anyio.run(main)


def ends_quietly(ws: WebSocket, error: Exception, caught: Any) -> bool:
    """Whether `async for` ends without raising on `error` (the documented rule): a
    disconnect with a caught code, or after the application's own close (1009)."""
    if not isinstance(error, WebSocketDisconnect):
        return False
    codes = {1000, 1001} if caught is None else caught
    return codes is all or error.code in codes or ws.application_state is DISCONNECTED


def run_loop(
    messages: list[Message],
    limit: int | None,
    receive_type: str,
    caught: Any,
    slow: bool,
    metrics: bool = False,
) -> list[tuple[Any, ...]]:
    """`async for` over a WebSocket (the hot path), or the loop it stands for, written
    out with `receive_<type>(timeout=...)` (the original path); with `metrics`, counted."""
    server = Server(messages)

    async def main() -> list[tuple[Any, ...]]:
        # on_invalid="raise": the loop written out raises, as `async for` then does
        # (under the default "close", `async for` closes first: tested elsewhere).
        ws = server.websocket(
            receive_type=receive_type,
            max_message_size=limit,
            caught_close_codes=caught,
            on_invalid="raise",
        )
        await ws.accept()
        if metrics:
            counted(ws)
        items: list[tuple[Any, ...]] = []
        if not slow:
            try:
                async for item in ws:
                    items.append(describe_value(item))
            except Exception as error:
                items.append(describe_error(ws, error))
            else:
                items.append(("ended",))
        else:
            receive = getattr(ws, f"receive_{receive_type}")
            while True:
                try:
                    item = await receive(timeout=SLOW)
                except Exception as error:
                    items.append(
                        ("ended",) if ends_quietly(ws, error, caught) else describe_error(ws, error)
                    )
                    break
                items.append(describe_value(item))
        items.append(snapshot(ws, server))
        return items

    return anyio.run(main)


class CloseCode(enum.IntEnum):
    GOING_AWAY = 1001
    SERVICE_RESTART = 1012


class Name(str):
    """A str that is not exactly a str."""


characters = (
    st.characters(max_codepoint=0x7F)
    | st.sampled_from(["é", "€", "😀", "\u2028", "\ud800", "\udfff"])
    | st.characters()
)
texts = st.lists(characters, max_size=24).map("".join)
JSON_TEXTS = ['{"a":[1,2]}', "NaN", "1" * 30, '"\\ud800"', "{", "[1,]", "", "null", '"é"']
data_texts = texts | st.sampled_from(JSON_TEXTS)
payload_bytes = st.binary(max_size=24) | st.sampled_from([b"[1]", b"\xff", "é".encode()])
bytes_like = payload_bytes | payload_bytes.map(bytearray) | payload_bytes.map(memoryview)
not_str = st.sampled_from([1, 0, 1.5, True, b"abc", bytearray(b"a"), ["a"], {"a": 1}, object()])
not_bytes = st.sampled_from(["abc", "", 1, 0, True, ["a"], object(), [1, 2]])
#: Extra keys a server may add; none changes the meaning of a message.
extras = st.dictionaries(
    st.sampled_from(["extra", "headers", "more_body", "reason"]), st.integers()
)
close_codes = st.sampled_from(
    [1000, 1001, 1005, 1006, 1009, 1011, 4000, 0, 3999]
) | st.sampled_from(list(CloseCode))
bad_codes = st.sampled_from([True, "1000", None, 1000.0])
reasons = st.sampled_from(["", "bye", "é" * 10, None])
WRONG_TYPES = [None, SEND, "websocket.receive ", "WEBSOCKET.RECEIVE", "http.request", 1, CLOSE]


def receive_message(fields: dict[str, Any], extra: dict[str, Any]) -> Message:
    return {**extra, "type": RECEIVE, **fields}


def with_extra(fields: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[Message]:
    return st.builds(receive_message, fields, st.just({}) | extras)


def disconnect_message(code: Any, reason: Any, keys: str) -> Message:
    message: Message = {"type": DISCONNECT}
    if "c" in keys:
        message["code"] = code
    if "r" in keys:
        message["reason"] = reason
    return message


messages = st.one_of(
    # Well-formed text and bytes, the hot path's own.
    with_extra(st.fixed_dictionaries({"text": data_texts})),
    with_extra(st.fixed_dictionaries({"bytes": payload_bytes})),
    # The other payload there but None.
    with_extra(st.fixed_dictionaries({"text": data_texts, "bytes": st.none()})),
    with_extra(st.fixed_dictionaries({"bytes": bytes_like, "text": st.none()})),
    # Not quite: a str subclass, bytearray and memoryview, both keys, neither.
    with_extra(st.fixed_dictionaries({"text": data_texts.map(Name)})),
    with_extra(st.fixed_dictionaries({"bytes": bytes_like})),
    with_extra(st.fixed_dictionaries({"text": data_texts, "bytes": bytes_like})),
    with_extra(st.fixed_dictionaries({})),
    with_extra(st.fixed_dictionaries({"text": st.none(), "bytes": st.none()})),
    # Payloads of the wrong class.
    with_extra(st.fixed_dictionaries({"text": not_str})),
    with_extra(st.fixed_dictionaries({"bytes": not_bytes})),
    # Wrong or missing type.
    st.builds(lambda t, text: {"type": t, "text": text}, st.sampled_from(WRONG_TYPES), texts),
    st.builds(lambda text: {"text": text}, texts),
    st.builds(lambda data: {"bytes": data}, payload_bytes),
    # The client leaving, and a second websocket.connect.
    st.builds(
        disconnect_message,
        close_codes | bad_codes,
        reasons | st.just(1),
        st.sampled_from(["cr", "c", "r", ""]),
    ),
    st.builds(lambda extra: {**extra, "type": "websocket.connect"}, st.just({}) | extras),
)


def data_size(message: Message) -> tuple[int, int] | None:
    """(length, UTF-8 size) of a text message's payload, (length, length) for bytes."""
    text = message.get("text")
    if isinstance(text, str):
        return len(text), len(text.encode("utf-8", "surrogatepass"))
    data = message.get("bytes")
    if isinstance(data, (bytes, bytearray, memoryview)):
        return len(data), len(data)
    return None


@st.composite
def limit_around(draw: st.DrawFn, batch: list[Message]) -> int | None:
    """A `max_message_size`: none, any, or a byte either side of a message's length,
    UTF-8 size, or four times its length (what the hot path passes unmeasured)."""
    sizes = [size for size in map(data_size, batch) if size is not None]
    choice = draw(st.sampled_from(["none", "any", "near"] if sizes else ["none", "any"]))
    if choice == "none":
        return None
    if choice == "any":
        return draw(st.integers(1, 100))
    length, encoded = draw(st.sampled_from(sizes))
    base = draw(st.sampled_from([length, encoded, length * 4, length // 4 * 4]))
    return max(1, base + draw(st.integers(-1, 1)))


@st.composite
def receive_scenarios(draw: st.DrawFn) -> tuple[list[Message], int | None]:
    batch = draw(st.lists(messages, min_size=1, max_size=3))
    return batch, draw(limit_around(batch))


@hot_settings
@given(scenario=receive_scenarios(), kind=st.sampled_from(sorted(RECEIVERS)))
@example(scenario=([{"type": RECEIVE, "text": "ééé"}], 3), kind="text")
@example(scenario=([{"type": RECEIVE, "text": "ééé"}], 5), kind="json")
@example(scenario=([{"type": RECEIVE, "bytes": '["é"]'.encode()}], 5), kind="json")
@example(scenario=([{"type": RECEIVE, "bytes": b'"\xff"'}], None), kind="json")
@example(scenario=([{"type": RECEIVE, "bytes": b"[1]"}], None), kind="json-text")
@example(scenario=([{"type": RECEIVE, "text": "abcd"}], 3), kind="text")
@example(scenario=([{"type": RECEIVE, "text": "a", "bytes": None}], 4), kind="text")
@example(scenario=([{"type": RECEIVE, "bytes": b"ab", "text": None}], 2), kind="bytes")
@example(scenario=([{"type": RECEIVE, "bytes": bytearray(b"ab")}], 1), kind="bytes")
@example(scenario=([{"type": RECEIVE, "text": "a", "bytes": b""}], None), kind="text")
@example(scenario=([{"type": DISCONNECT, "code": 1001}], None), kind="text")
@example(scenario=([{"type": "websocket.connect"}], None), kind="bytes")
def test_a_typed_receive_gives_the_same_outcome_on_both_paths(
    scenario: tuple[list[Message], int | None], kind: str
) -> None:
    batch, limit = scenario
    fast, slow = RECEIVERS[kind]
    assert run_receives(batch, limit, fast) == run_receives(batch, limit, slow)


def loop_example(receive_type: str, *messages: Message, limit: int | None = None) -> Any:
    """An example of `async for` over `messages`, with metrics on."""
    return example(
        scenario=(list(messages), limit), receive_type=receive_type, caught=None, metrics=True
    )


def text_message(text: str) -> Message:
    return {"type": RECEIVE, "text": text}


def bytes_message(data: Any) -> Message:
    return {"type": RECEIVE, "bytes": data}


@hot_settings
@given(
    scenario=receive_scenarios(),
    receive_type=st.sampled_from(["text", "bytes", "json"]),
    caught=st.sampled_from([None, all, (), (1006,)]),
    metrics=st.booleans(),
)
@loop_example("bytes", bytes_message(b"ab"), bytes_message(b""), limit=2)
@loop_example("bytes", bytes_message(b"abc"), limit=2)  # over the limit: 1009
@loop_example("bytes", bytes_message(bytearray(b"ab")), bytes_message(memoryview(b"cd")))
@loop_example("bytes", bytes_message(b"ab"), text_message("ab"))  # the other kind: 1003
@loop_example("bytes", {"type": RECEIVE, "bytes": b"ab", "text": None, "extra": 1})
@loop_example("bytes", {"type": RECEIVE, "bytes": b"ab", "text": "ab"})
@loop_example("json", text_message('{"a":[1,2]}'), text_message("{"))  # invalid JSON
@loop_example("json", text_message("NaN"), text_message("1" * 5000))
@loop_example("json", text_message("[" * 300 + "]" * 300), text_message("[" * 100_000))
@loop_example("json", text_message('"\\ud800"'), text_message("\ud800"), text_message(""))
@loop_example("json", bytes_message(b"[1]"), bytes_message(b"\xff"))  # binary frames
@loop_example("json", text_message('"éé"'), limit=5)  # 6 bytes over the limit
@loop_example("json", text_message('"éé"'), limit=6)
@loop_example("json", {"type": RECEIVE, "text": "[1]", "bytes": b"[2]"})
@loop_example("text", text_message("ééé"), limit=5)
def test_async_for_gives_the_same_items_on_both_paths(
    scenario: tuple[list[Message], int | None], receive_type: str, caught: Any, metrics: bool
) -> None:
    batch, limit = scenario
    fast = run_loop(batch, limit, receive_type, caught, slow=False, metrics=metrics)
    assert fast == run_loop(batch, limit, receive_type, caught, slow=True, metrics=metrics)


class OriginalPath(WebSocket):
    """A WebSocket whose `async for` takes the original path: a subclass's receive of
    each kind is not inlined, and with a timeout (that never runs out) the base's
    goes through the state core."""

    async def receive_text(self, *, timeout: float | None = None) -> str:  # noqa: ASYNC109
        return await super().receive_text(timeout=SLOW)

    async def receive_bytes(self, *, timeout: float | None = None) -> bytes:  # noqa: ASYNC109
        return await super().receive_bytes(timeout=SLOW)

    async def receive_json(self, mode: Any = None, *, timeout: float | None = None) -> Any:  # noqa: ASYNC109
        return await super().receive_json(mode, timeout=SLOW)

    async def _receive_decoded(self, *, timeout: float | None = None) -> Any:  # noqa: ASYNC109
        return await super()._receive_decoded(timeout=SLOW)


#: The receive types of `async for`: the built-in kinds, and a type (a codec's path).
LOOP_TYPES: dict[str, Any] = {
    "text": "text",
    "bytes": "bytes",
    "json": "json",
    "list[int]": list[int],
}


def run_async_for(
    messages: list[Message],
    limit: int | None,
    receive_type: str,
    on_invalid: str,
    metrics: bool,
    websocket: type[WebSocket],
) -> list[tuple[Any, ...]]:
    """`async for` over a `websocket` (the class) under `on_invalid` ("skip": a
    function that notes the error and skips the message); every item, error and
    state, and with `metrics`, the counts."""
    server = Server(messages)

    async def main() -> list[tuple[Any, ...]]:
        skipped: list[tuple[Any, ...]] = []

        def skip(ws: WebSocket, error: Exception) -> None:
            skipped.append(describe_error(ws, error))

        ws = websocket(
            server.scope,
            server.receive,
            server.send,
            receive_type=LOOP_TYPES[receive_type],
            max_message_size=limit,
            on_invalid=skip if on_invalid == "skip" else on_invalid,
        )
        await ws.accept()
        assert (ws._inline is None) is (websocket is OriginalPath)
        if metrics:
            counted(ws)
        items: list[tuple[Any, ...]] = []
        try:
            async for item in ws:
                items.append(describe_value(item))
                items.append(snapshot(ws, server))
        except Exception as error:
            items.append(describe_error(ws, error))
        else:
            items.append(("ended",))
        return [*items, *skipped, snapshot(ws, server)]

    return anyio.run(main)


def policy_example(
    receive_type: str, on_invalid: str, *messages: Message, limit: int | None = None
) -> Any:
    """An example of `async for` over `messages` under `on_invalid`, with metrics on."""
    return example(
        scenario=(list(messages), limit),
        receive_type=receive_type,
        on_invalid=on_invalid,
        metrics=True,
    )


@hot_settings
@given(
    scenario=receive_scenarios(),
    receive_type=st.sampled_from(sorted(LOOP_TYPES)),
    on_invalid=st.sampled_from(["close", "raise", "reply", "skip"]),
    metrics=st.booleans(),
)
@policy_example("json", "reply", text_message("{"), bytes_message(b"[1]"), text_message("[2]"))
@policy_example("json", "close", text_message("["))  # 1007
@policy_example("bytes", "close", text_message("[1]"))  # 1003
@policy_example(
    "bytes", "skip", text_message("a"), bytes_message(b"ab"), bytes_message(b"abc"), limit=2
)
@policy_example("list[int]", "skip", text_message('["a"]'), bytes_message(b"[1]"), limit=4)
def test_async_for_gives_the_same_items_as_the_original_path_under_every_policy(
    scenario: tuple[list[Message], int | None], receive_type: str, on_invalid: str, metrics: bool
) -> None:
    batch, limit = scenario
    fast = run_async_for(batch, limit, receive_type, on_invalid, metrics, WebSocket)
    assert fast == run_async_for(batch, limit, receive_type, on_invalid, metrics, OriginalPath)


class Tagged(WebSocket):
    """A subclass whose receive() tags what the base's returns."""

    async def receive(self, *, timeout: float | None = None) -> Any:  # noqa: ASYNC109
        return ("tagged", await super().receive(timeout=timeout))


class Shouting(WebSocket):
    """A subclass whose receive of each kind changes what the base's returns."""

    async def receive_text(self, *, timeout: float | None = None) -> str:  # noqa: ASYNC109
        return (await super().receive_text(timeout=timeout)).upper()

    async def receive_bytes(self, *, timeout: float | None = None) -> bytes:  # noqa: ASYNC109
        return (await super().receive_bytes(timeout=timeout)).upper()

    async def receive_json(self, mode: Any = None, *, timeout: float | None = None) -> Any:  # noqa: ASYNC109
        return {"shouted": await super().receive_json(mode, timeout=timeout)}


@pytest.mark.parametrize(
    ("receive_type", "message", "tagged", "shouted"),
    [
        ("text", text_message("hi"), ("tagged", "hi"), "HI"),
        ("bytes", bytes_message(b"hi"), ("tagged", b"hi"), b"HI"),
        ("json", text_message("[1]"), ("tagged", [1]), {"shouted": [1]}),
    ],
)
def test_async_for_honours_a_subclass_receive_on_every_message(
    receive_type: str, message: Message, tagged: Any, shouted: Any
) -> None:
    # Every message after the first comes while the connection is open: where the
    # base's receive is inlined, a subclass's must still be called.
    async def items(websocket: type[WebSocket]) -> list[Any]:
        server = Server([message, message, message, {"type": DISCONNECT, "code": 1000}])
        ws = websocket(server.scope, server.receive, server.send, receive_type=receive_type)
        return [item async for item in ws]

    async def main() -> None:
        assert await items(Tagged) == [tagged] * 3
        assert await items(Shouting) == [shouted] * 3

    anyio.run(main)


# The sending side.

Sender = Callable[[WebSocket, Any], Awaitable[None]]

SENDERS: dict[str, Sender] = {
    "text": lambda ws, data: ws.send_text(data),
    "bytes": lambda ws, data: ws.send_bytes(data),
    "json": lambda ws, data: ws.send_json(data),
    "json-binary": lambda ws, data: ws.send_json(data, mode="binary"),
}


def unicode_error() -> UnicodeEncodeError:
    return UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed")


FAILURES: dict[str, Callable[[], BaseException] | None] = {
    "none": None,
    "OSError": lambda: OSError("connection lost"),
    "ConnectionResetError": ConnectionResetError,
    "BrokenPipeError": BrokenPipeError,
    "ClientDisconnected": ClientDisconnected,  # uvicorn's, an OSError
    "TimeoutError": TimeoutError,  # slow, not broken
    "UnicodeEncodeError": unicode_error,
    "RuntimeError": lambda: RuntimeError("server bug"),
}


class Color(enum.Enum):
    RED = "red"


@dataclass
class Move:
    x: int


json_leaves = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=2**64, max_value=2**70)
    | st.floats()
    | texts
    | st.uuids()
    | st.just(Color.RED)
)
json_values = st.recursive(
    json_leaves,
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(texts, children, max_size=3)
        | st.dictionaries(st.integers(), children, max_size=2)
    ),
    max_leaves=8,
)
NOT_JSON = [math.nan, math.inf, {1, 2}, object(), Move(1), datetime.date(2026, 1, 1), b"x"]
payloads = (
    texts
    | texts.map(Name)
    | bytes_like
    | json_values
    | st.sampled_from(NOT_JSON)
    | st.sampled_from([None, 1, ["a"], uuid.UUID(int=7)])
)
#: What the client says after connecting, read when a send finds the connection broken.
afterwards = st.lists(
    with_extra(st.fixed_dictionaries({"text": texts}))
    | st.builds(disconnect_message, close_codes, reasons, st.just("cr")),
    max_size=3,
)


def run_send(
    kind: str, data: Any, failure: str, incoming: list[Message], *, lazy: bool
) -> list[tuple[Any, ...]]:
    """Send `data` on an open connection, or before a pending lazy accept (`lazy`); then
    receive once, to see what the send left for receives."""
    server = Server(incoming, failure=FAILURES[failure], fail_from=1)  # the accept goes

    async def main() -> list[tuple[Any, ...]]:
        ws = server.websocket(auto_accept=True)
        if not lazy:
            await ws.accept()
        assert ws._core.open is not lazy
        sent = await outcome_of(ws, SENDERS[kind](ws, data))
        after_send = snapshot(ws, server)
        received = await outcome_of(ws, ws.receive_text())
        return [sent, after_send, received, snapshot(ws, server)]

    return anyio.run(main)


def same_except_a_refused_payload_before_the_accept(
    fast: list[tuple[Any, ...]], slow: list[tuple[Any, ...]]
) -> None:
    """The outcomes match; but a payload refused before the lazy accept leaves the
    handshake pending until the next call, so the state right after it differs."""
    assert fast[0] == slow[0]
    if slow[1][1] is CONNECTING:  # the send raised before accepting
        assert fast[0][0] == "raised"
        assert fast[0][1] is TypeError
        assert slow[1][6] == []  # nothing sent, not even the accept
        assert fast[1][6] == [typed({"type": ACCEPT, "subprotocol": None, "headers": []})]
    else:
        assert fast[1] == slow[1]
    assert fast[2:] == slow[2:]


@hot_settings
@given(
    kind=st.sampled_from(sorted(SENDERS)),
    data=payloads,
    failure=st.sampled_from(sorted(FAILURES)),
    incoming=afterwards,
)
@example(kind="text", data="\ud800", failure="none", incoming=[])
@example(kind="json", data=["\ud800", "é"], failure="none", incoming=[])
@example(kind="json", data=math.nan, failure="none", incoming=[])
@example(kind="bytes", data=memoryview(b"ab"), failure="none", incoming=[])
@example(kind="text", data="a", failure="OSError", incoming=[{"type": DISCONNECT, "code": 1001}])
@example(kind="json", data=[1], failure="OSError", incoming=[{"type": RECEIVE, "text": "x"}])
@example(kind="text", data="a", failure="UnicodeEncodeError", incoming=[])
@example(kind="json", data=1, failure="UnicodeEncodeError", incoming=[])
@example(kind="bytes", data=b"a", failure="TimeoutError", incoming=[])
def test_a_typed_send_gives_the_same_outcome_on_both_paths(
    kind: str, data: Any, failure: str, incoming: list[Message]
) -> None:
    fast = run_send(kind, data, failure, incoming, lazy=False)
    slow = run_send(kind, data, failure, incoming, lazy=True)
    same_except_a_refused_payload_before_the_accept(fast, slow)


# Specific behaviours of both paths.


def both_paths(run: Callable[[bool], Awaitable[Any]]) -> tuple[Any, Any]:
    """Run `run(slow)` for the hot path (False) and the original one (True)."""
    return anyio.run(run, False), anyio.run(run, True)


def test_a_lone_surrogate_in_send_text_is_a_type_error_on_both_paths() -> None:
    async def run(lazy: bool) -> tuple[Any, ...]:
        server = Server([])
        ws = server.websocket()
        if not lazy:
            await ws.accept()
        with pytest.raises(TypeError, match="not valid Unicode") as raised:
            await ws.send_text("a\ud800")
        assert isinstance(raised.value.__cause__, UnicodeEncodeError)
        await ws.send_text("still open")
        return (str(raised.value), server.sent)

    fast, slow = both_paths(run)
    assert fast == slow
    assert fast[1] == [
        {"type": ACCEPT, "subprotocol": None, "headers": []},
        {"type": SEND, "text": "still open"},
    ]


@pytest.mark.parametrize("kind", sorted(SENDERS))
def test_a_broken_send_reports_the_clients_close_code_on_both_paths(kind: str) -> None:
    async def run(lazy: bool) -> tuple[Any, ...]:
        server = Server(
            [{"type": RECEIVE, "text": "unread"}, {"type": DISCONNECT, "code": 1001}],
            failure=ClientDisconnected,
        )
        ws = server.websocket()
        if not lazy:
            await ws.accept()
        with pytest.raises(WebSocketDisconnect) as raised:
            await SENDERS[kind](ws, b"1" if kind == "bytes" else "1")
        assert raised.value.__suppress_context__
        # The client's message read while looking for its disconnect is still received.
        unread = await ws.receive_text()
        with pytest.raises(WebSocketDisconnect) as again:
            await ws.receive_text()
        return (raised.value.code, unread, again.value.code, ws.client_state)

    fast, slow = both_paths(run)
    assert fast == slow == (1001, "unread", 1001, DISCONNECTED)


class FailingReceiveServer(Server):
    """A server whose receive fails too once the client's script runs out."""

    async def receive(self) -> Message:
        if not self.incoming:
            raise OSError("the server's receive fails too")
        return self.incoming.popleft()


def test_a_send_broken_with_no_disconnect_to_read_is_1006_on_both_paths() -> None:
    async def run(lazy: bool) -> tuple[Any, ...]:
        server = FailingReceiveServer([], failure=OSError)
        ws = server.websocket()
        if not lazy:
            await ws.accept()
        with pytest.raises(WebSocketDisconnect) as raised:
            await ws.send_text("hello")
        return (raised.value.code, ws._core.lost, ws.client_state, server.types())

    fast, slow = both_paths(run)
    assert fast == slow == (1006, True, DISCONNECTED, [ACCEPT])


# The state core's side of the contract.


def open_core(denial_response: bool) -> ConnectionState:
    core = ConnectionState(denial_response=denial_response)
    core.receive({"type": "websocket.connect"})
    core.send({"type": ACCEPT})
    assert core.open
    return core


def state_of(core: ConnectionState) -> dict[str, Any]:
    return {name: getattr(core, name) for name in ConnectionState.__slots__}


def passes_the_hot_path(message: Message) -> bool:
    """The hot path's predicate, for receive_text() or receive_bytes() (no limit)."""
    if message.get("type") != RECEIVE:
        return False
    text, data = message.get("text"), message.get("bytes")
    return (text.__class__ is str and data is None) or (data.__class__ is bytes and text is None)


plain_data = st.one_of(
    with_extra(st.fixed_dictionaries({"text": texts}, optional={"bytes": st.none()})),
    with_extra(st.fixed_dictionaries({"bytes": st.binary()}, optional={"text": st.none()})),
)


@hot_settings
@given(message=plain_data | messages, denial_response=st.booleans())
def test_the_core_accepts_what_the_hot_path_passes_and_changes_nothing(
    message: Message, denial_response: bool
) -> None:
    if not passes_the_hot_path(message):
        return
    core = open_core(denial_response)
    before = state_of(core)
    core.receive(message)
    assert state_of(core) == before


CORE_STEPS: list[tuple[str, Any]] = [
    ("receive", {"type": "websocket.connect"}),
    ("receive", {"type": RECEIVE, "text": "a"}),
    ("receive", {"type": RECEIVE, "bytes": b"a", "text": "a"}),
    ("receive", {"type": DISCONNECT, "code": 1000}),
    ("receive", {"type": DISCONNECT, "code": "1000"}),
    ("send", {"type": ACCEPT}),
    ("send", {"type": ACCEPT, "subprotocol": 1}),
    ("send", {"type": SEND, "text": "a"}),
    ("send", {"type": SEND}),
    ("send", {"type": CLOSE}),
    ("send", {"type": CLOSE, "code": 403}),
    ("send", {"type": CLOSE, "code": 999}),
    ("send", {"type": "websocket.http.response.start", "status": 403}),
    ("send", {"type": "websocket.http.response.body", "body": b"", "more_body": True}),
    ("send", {"type": "websocket.http.response.body", "body": b""}),
    ("send", {"type": "websocket.bogus"}),
    ("lost", 1006),
]
OPENED = [CORE_STEPS[0], CORE_STEPS[5]]


@hot_settings
@given(
    steps=st.lists(
        st.sampled_from(CORE_STEPS) | st.tuples(st.just("receive"), messages), max_size=12
    ),
    denial_response=st.booleans(),
)
@example(steps=[*OPENED, ("send", {"type": CLOSE})], denial_response=False)
@example(steps=[*OPENED, ("receive", {"type": DISCONNECT})], denial_response=False)
@example(steps=[*OPENED, ("lost", 1006)], denial_response=False)
@example(steps=[CORE_STEPS[3], CORE_STEPS[5]], denial_response=False)  # accept after leaving
def test_the_open_flag_follows_every_transition(
    steps: list[tuple[str, Any]], denial_response: bool
) -> None:
    core = ConnectionState(denial_response=denial_response)
    assert core.open is False
    for action, argument in steps:
        try:
            if action == "receive":
                core.receive(argument)
            elif action == "send":
                core.send(argument)
            else:
                core.connection_lost(argument)
        except (ValueError, TypeError, RuntimeError):
            pass  # refused: nothing changed
        both_connected = core.client_state is CONNECTED and core.application_state is CONNECTED
        assert core.open is both_connected, (action, argument, core)


# Leaving the hot path.


def test_sends_after_the_application_closed_are_refused() -> None:
    async def main() -> None:
        server = Server([])
        ws = server.websocket()
        await ws.accept()
        await ws.close()
        for kind, data in [("text", "a"), ("bytes", b"a"), ("json", 1), ("json-binary", 1)]:
            with pytest.raises(WebSocketStateError, match="already closed"):
                await SENDERS[kind](ws, data)
        assert server.types() == [ACCEPT, CLOSE]

    anyio.run(main)


def test_sends_after_the_client_left_raise_its_disconnect() -> None:
    async def main() -> None:
        server = Server([{"type": DISCONNECT, "code": 1001, "reason": "bye"}])
        ws = server.websocket()
        await ws.accept()
        with pytest.raises(WebSocketDisconnect):
            await ws.receive_text()
        for kind, data in [("text", "a"), ("bytes", b"a"), ("json", 1), ("json-binary", 1)]:
            with pytest.raises(WebSocketDisconnect) as raised:
                await SENDERS[kind](ws, data)
            assert (raised.value.code, raised.value.reason) == (1001, "bye")
        assert server.types() == [ACCEPT]

    anyio.run(main)


def test_receives_after_the_client_left_are_refused_on_both_paths() -> None:
    async def run(slow: bool) -> list[str]:
        server = Server([{"type": DISCONNECT, "code": 1000}, {"type": RECEIVE, "text": "late"}])
        ws = server.websocket()
        await ws.accept()
        with pytest.raises(WebSocketDisconnect):
            await receive_on(ws, "text", slow)
        errors = []
        for kind in ["text", "bytes"]:
            with pytest.raises(WebSocketStateError) as raised:
                await receive_on(ws, kind, slow)
            errors.append(str(raised.value))
        assert len(server.incoming) == 1  # nothing more was read
        return errors

    fast, slow = both_paths(run)
    assert fast == slow


@pytest.mark.parametrize("payload", [bytearray(b"ab"), memoryview(b"ab"), b"ab"], ids=repr)
def test_send_bytes_hands_the_server_bytes_on_both_paths(payload: Any) -> None:
    async def run(lazy: bool) -> list[Any]:
        server = Server([])
        ws = server.websocket()
        if not lazy:
            await ws.accept()
        await ws.send_bytes(payload)
        return typed(server.sent[-1])

    fast, slow = both_paths(run)
    assert fast == slow == typed({"type": SEND, "bytes": b"ab"})


# max_message_size on a live WebSocket.

PATHS = pytest.mark.parametrize("slow", [False, True], ids=["hot", "original"])


async def receive_on(ws: WebSocket, kind: str, slow: bool) -> Any:
    receive = ws.receive_text if kind == "text" else ws.receive_bytes
    return await (receive(timeout=SLOW) if slow else receive())


@PATHS
@pytest.mark.parametrize("kind", ["text", "bytes"])
def test_lowering_max_message_size_on_a_live_websocket_applies_at_once(
    slow: bool, kind: str
) -> None:
    payload: Any = "abcd" if kind == "text" else b"abcd"
    message = {"type": RECEIVE, kind: payload}

    async def main() -> None:
        server = Server([message, message, {"type": DISCONNECT, "code": 1009}])
        ws = server.websocket()
        await ws.accept()
        assert await receive_on(ws, kind, slow) == payload
        ws.max_message_size = 3
        assert ws.max_message_size == 3
        with pytest.raises(MessageTooBig) as raised:
            await receive_on(ws, kind, slow)
        assert (raised.value.size, raised.value.limit) == (4, 3)
        assert server.sent[-1] == {"type": CLOSE, "code": 1009, "reason": "message too big"}

    anyio.run(main)


@PATHS
@pytest.mark.parametrize("new_limit", [None, 12, 2**40])
def test_raising_or_removing_max_message_size_lets_larger_messages_through(
    slow: bool, new_limit: int | None
) -> None:
    async def main() -> None:
        server = Server([{"type": RECEIVE, "text": "é" * 6}, {"type": RECEIVE, "bytes": b"x" * 12}])
        ws = server.websocket(max_message_size=1)
        await ws.accept()
        ws.max_message_size = new_limit
        assert await receive_on(ws, "text", slow) == "é" * 6
        assert await receive_on(ws, "bytes", slow) == b"x" * 12
        assert server.types() == [ACCEPT]

    anyio.run(main)


@PATHS
@pytest.mark.parametrize(
    ("payload", "limit", "size"),
    [
        ("é" * 6, 11, 12),  # 6 characters, 12 bytes
        ("😀" * 3, 11, 12),
        ("€" * 4, 11, 12),
        ("\ud800" * 4, 11, 12),  # as WTF-8
        ("aé", 2, 3),
    ],
)
def test_text_over_the_limit_in_utf8_but_not_in_length_is_too_big(
    slow: bool, payload: str, limit: int, size: int
) -> None:
    async def main() -> None:
        server = Server([{"type": RECEIVE, "text": payload}])
        ws = server.websocket()
        await ws.accept()
        ws.max_message_size = limit
        assert len(payload) <= limit
        with pytest.raises(MessageTooBig) as raised:
            await receive_on(ws, "text", slow)
        assert (raised.value.size, raised.value.limit) == (size, limit)
        assert ws.application_state is DISCONNECTED

    anyio.run(main)


@PATHS
@pytest.mark.parametrize(("payload", "limit"), [("é" * 6, 12), ("😀" * 3, 12), ("abc", 3)])
def test_text_at_the_limit_in_utf8_is_received(slow: bool, payload: str, limit: int) -> None:
    async def main() -> None:
        server = Server([{"type": RECEIVE, "text": payload}])
        ws = server.websocket()
        await ws.accept()
        ws.max_message_size = limit
        assert await receive_on(ws, "text", slow) == payload

    anyio.run(main)


@pytest.mark.parametrize("value", [0, -1, True, False, 1.5, "10", 10.0, [10]], ids=repr)
def test_a_bad_max_message_size_raises_as_at_construction_and_changes_nothing(value: Any) -> None:
    server = Server([{"type": RECEIVE, "text": "abcde"}])
    with pytest.raises((TypeError, ValueError)) as at_construction:
        server.websocket(max_message_size=value)
    ws = server.websocket(max_message_size=4)
    with pytest.raises(type(at_construction.value)) as on_the_property:
        ws.max_message_size = value
    assert str(on_the_property.value) == str(at_construction.value)
    assert ws.max_message_size == 4

    async def main() -> None:
        await ws.accept()
        with pytest.raises(MessageTooBig):  # the old limit still holds on the hot path
            await ws.receive_text()

    anyio.run(main)


def test_an_int_enum_max_message_size_is_a_limit() -> None:
    class Size(enum.IntEnum):
        SMALL = 3

    async def main() -> None:
        server = Server([{"type": RECEIVE, "text": "abcd"}])
        ws = server.websocket()
        await ws.accept()
        ws.max_message_size = Size.SMALL
        with pytest.raises(MessageTooBig):
            await ws.receive_text()

    anyio.run(main)
