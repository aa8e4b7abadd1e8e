"""Property-based fuzzing: `WebSocket` and views against random clients and random calls.

Hypothesis drives both sides of a fake ASGI server:

- the client side: `websocket.connect`, text (lone surrogates included), bytes (invalid
  UTF-8 included), valid, invalid and deeply nested JSON as text or bytes, messages
  with one or both keys, `websocket.disconnect` with any code (IntEnum members too)
  and reason, and pauses; for a misbehaving server, events out of order, duplicated,
  malformed or of unknown types. A pause makes the server's `receive()` block only
  while the application receives with a `timeout=`, which must end it; otherwise the
  client speaks again at once. When the script runs out, the client has gone:
  `receive()` returns a 1006 disconnect, so a hang is always bocws' fault. A silent
  client waits instead, until the application closes: in the two-task test, and for
  views with an `idle_timeout`, which must end the wait;
- the server: with or without the `websocket.http.response` extension, a `send`
  that may raise `OSError` (a broken connection) from a random message on, and an
  `Origin` header (none, this host's, listed or not);
- the application: random sequences of `WebSocket` calls (accept, reject, denial
  responses, close, ensure_closed, typed and raw receives with or without a
  `timeout=` (0, tiny, `None`, or invalid: -1, NaN, infinity, a string), sends with
  good and bad payloads, `async with`, `async for`) under random options (a small
  `max_message_size` among them), function views (`websocket_view`, with an
  `idle_timeout` and `allowed_origins` on some routes) and `WebSocketView` classes
  served through `ViewEndpoint`, a sender and a receiver task sharing one
  connection, and runs of mostly receives against a client that pauses often (with
  a `max_message_size` of its first message's size, or a byte either side).

Invariants checked on every example:

1. Only documented exceptions escape a call (`ALLOWED`, per call); a
   `WebSocketDisconnect` carries the client's code. An endpoint re-raises exactly
   the view's own exception, or nothing when the connection's own end caused it
   (client data, `WebSocketException`, the client leaving with any code, a message
   too big, an idle timeout), logging one ERROR line only when it re-raises; the
   client's departure is one line at most, INFO or, for the codes that report an
   error, WARNING. `async with` closes with 1003 or 1007 for the client's bad data
   and swallows it, and with 1011 "internal error" for any other error, let out.
2. What the application sends is legal ASGI, judged by `check_trace`, a checker
   written here independently of `bocws._state`; bocws never awaits a message that
   cannot come.
3. A connection ends with exactly one close or one complete denial response once a
   view returns, `async with` exits or `ensure_closed()` is called (none needed when
   the client left first), with the documented close code. A handshake from an
   origin the route does not allow is refused (one close, 403) before the view runs.
4. No call hangs: every await runs under `bounded()`, whose timeout fails the test.
5. Limits: a message over `max_message_size` (UTF-8 bytes for text) makes the
   receive raise `MessageTooBig` (1009) and close with 1009 "message too big", unless
   the application had closed; `async for`, `async with` and views end quietly on it,
   and a class view's `on_disconnect` gets 1009 (and 1003 or 1007 for bad data).
   Smaller messages arrive unchanged. An invalid `timeout=` raises `ValueError` or
   `TypeError` before anything is received or sent; a valid one raises
   `TimeoutError` only when the client was silent or the time was up before the wait
   began (0), consuming nothing and changing no state. A view idle for its
   `idle_timeout` is cancelled and closed with 1000 "idle timeout", nothing raised.
   A receive that fails for any reason but the client's data loses none of it.

The bugs this file found, all fixed, keep a regression test each at the end.
`BOCWS_FUZZ_EXAMPLES` overrides the number of examples for a longer run.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

import anyio
import anyio.lowlevel
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.exceptions import WebSocketException
from starlette.responses import PlainTextResponse, StreamingResponse

from bocws import (
    DenialResponseUnsupported,
    InvalidJSON,
    MessageTooBig,
    MessageTypeError,
    WebSocket,
    WebSocketDisconnect,
    WebSocketState,
    WebSocketStateError,
    WebSocketView,
    websocket_view,
)
from bocws._codecs import CODECS
from bocws.views import ViewEndpoint

from .fake import websocket_scope

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup, ExceptionGroup

#: Examples per property test (the docs quote this number).
FUZZ_EXAMPLES = 200
CALL_TIMEOUT = 2.0  # seconds for one call: nothing here waits on a real network
RUN_TIMEOUT = 10.0

fuzz = settings(
    max_examples=int(os.environ.get("BOCWS_FUZZ_EXAMPLES", FUZZ_EXAMPLES)),
    deadline=None,  # a first run pays imports and JSON nested 100,000 deep
)

CONNECT = "websocket.connect"
RECEIVE = "websocket.receive"
DISCONNECT = "websocket.disconnect"
ACCEPT = "websocket.accept"
SEND = "websocket.send"
CLOSE = "websocket.close"
RESPONSE_START = "websocket.http.response.start"
RESPONSE_BODY = "websocket.http.response.body"

CONNECTING = WebSocketState.CONNECTING
DISCONNECTED = WebSocketState.DISCONNECTED

MESSAGE_TYPES = tuple(CODECS)
OFFERED = ("chat.v2", "chat.v1")
#: The code of a WebSocketDisconnect from another connection; no client of ours uses it.
FOREIGN_CODE = 3999
#: In a client's script: the client says nothing for a while (never delivered).
PAUSE: dict[str, Any] = {"type": "fuzz.pause"}
#: What a receive raises for the client's bad data (`async with` and the lifecycle close
#: 1003, 1007).
CLIENT_DATA_ERRORS = (MessageTypeError, InvalidJSON)
#: The codes with which a client reports an error: its departure is logged at WARNING.
ERROR_CLOSE_CODES = frozenset({1002, 1003, 1007, 1008, 1009, 1010, 1011, 1014, 1015})
#: The close that ends a connection after a message over `max_message_size`.
TOO_BIG_CLOSE = {"type": CLOSE, "code": 1009, "reason": "message too big"}

Message = dict[str, Any]
WSD = WebSocketDisconnect
WSE = WebSocketStateError
DOCUMENTED: tuple[type[Exception], ...] = (
    WSD,
    WSE,
    MessageTypeError,
    InvalidJSON,
    ValueError,
    TypeError,
    DenialResponseUnsupported,
    MessageTooBig,
    TimeoutError,
)
#: What each call may raise with a well-behaved server, from the docstrings and docs.
#: A call that accepts lazily may also meet a client gone (WebSocketDisconnect). A
#: receive raises TimeoutError only with a `timeout=` (see `check_timeout`), and
#: ValueError or TypeError only for an invalid one (added by `check_error`).
ALLOWED: dict[str, tuple[type[Exception], ...]] = {
    "accept": (WSD, WSE, ValueError, TypeError),
    "reject": (WSD, WSE),
    "send_denial_response": (WSD, WSE, DenialResponseUnsupported),
    "close": (WSD, WSE, ValueError, TypeError),
    "ensure_closed": (ValueError, TypeError),
    "receive_text": (WSD, WSE, MessageTypeError, MessageTooBig, TimeoutError),
    "receive_bytes": (WSD, WSE, MessageTypeError, MessageTooBig, TimeoutError),
    "receive_json": (WSD, WSE, MessageTypeError, InvalidJSON, MessageTooBig, TimeoutError),
    "receive_event": (WSD, WSE, MessageTooBig, TimeoutError),
    "send_text": (WSD, WSE, TypeError),
    "send_bytes": (WSD, WSE, TypeError),
    "send_json": (WSD, WSE, TypeError),
    "send_event": (WSD, WSE, ValueError, TypeError),
}


class ClientCode(IntEnum):
    """Close codes as a server's enum reports them (wsproto's CloseReason is one)."""

    NORMAL_CLOSURE = 1000
    GOING_AWAY = 1001
    ABNORMAL_CLOSURE = 1006
    SERVICE_RESTART = 1012


class AppCode(IntEnum):
    ROOM_CLOSED = 4000
    NOT_A_CLOSE_CODE = 999


class ViewBug(Exception):
    """An application error raised by a fuzzed view."""


def is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def valid_close_code(code: object) -> bool:
    """RFC 6455 section 7.4: the codes an endpoint may put in a close frame."""
    return is_int(code) and (
        1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999  # type: ignore[operator]
    )


def encodable(text: str) -> bool:
    """Whether `text` is valid Unicode (no lone surrogate), as a server must send it."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def valid_reason(reason: object) -> bool:
    if reason is None:
        return True
    return isinstance(reason, str) and encodable(reason) and len(reason.encode("utf-8")) <= 123


def message_size(message: Message | None) -> int | None:
    """What `max_message_size` limits: the UTF-8 bytes of text (3 for a lone surrogate,
    as WTF-8), the length of bytes; `None` for anything but a data message."""
    if message is None or message.get("type") != RECEIVE:
        return None
    text = message.get("text")
    if text is not None:
        return len(text.encode("utf-8", "surrogatepass"))
    return len(message.get("bytes") or b"")


def timeout_error(keywords: dict[str, Any]) -> type[Exception] | None:
    """The error a receive's `timeout=` must raise before anything else, if invalid."""
    seconds = keywords.get("timeout")
    if seconds is None:
        return None
    if not isinstance(seconds, (int, float)) or isinstance(seconds, bool):
        return TypeError
    return None if 0 <= seconds < math.inf else ValueError  # NaN compares false


@contextlib.contextmanager
def bounded(seconds: float, what: str) -> Iterator[None]:
    """Invariant 4: fail the example if the block takes over `seconds`.

    An AssertionError, which nothing here catches: a TimeoutError would pass for a
    receive's own timeout, or for an error the view raised.
    """
    with anyio.move_on_after(seconds) as scope:
        yield
    if scope.cancelled_caught:
        raise AssertionError(f"{what} hung for {seconds} s")


# The fake server.


@dataclass
class Entry:
    """One message in the trace: `in` from the server, `out` from the application."""

    direction: str
    message: Message
    outcome: str = "ok"  # out only: "ok", "broken" (OSError) or "unencodable"


class FuzzServer:
    """An in-memory ASGI server playing a scripted client, recording both directions.

    Well-behaved (`chaos=False`), it delivers `websocket.connect` first, data only once
    the handshake is accepted, and a disconnect once the script runs out (1006, or the
    echo of the application's close code for a `silent` client, which waits for it).
    A `PAUSE` in the script blocks a receive made with a `timeout=` (`timed`, set by
    `perform`) until it is cancelled, and is then over; other receives skip it. With
    `chaos=True`, it delivers the script as it is, whatever the state.
    """

    def __init__(
        self,
        client: list[Message],
        *,
        chaos: bool = False,
        denial: bool = True,
        subprotocols: tuple[str, ...] = OFFERED,
        break_at: int | None = None,
        silent: bool = False,
        query: bytes = b"",
    ) -> None:
        self.client = deque(client)
        self.chaos = chaos
        self.break_at = break_at
        self.silent = silent
        self.trace: list[Entry] = []
        self.problems: list[str] = []
        self.sent = 0
        self.connected = False
        self.accepted = False
        self.answered = False  # accepted, closed, or a denial response started
        self.responding = False
        self.finished = False  # a close or a final response body was sent
        self.close_code: Any = None
        self.broken = False
        self.disconnected = False
        self.gone_code: int | None = None
        self.gone_reason = ""
        self.app_done = anyio.Event()
        self.timed = False  # the receive under way has a timeout: the client may pause
        self.blocked = False  # a timed receive found the client silent
        self.scope = websocket_scope(
            "/fuzz", query_string=query, subprotocols=subprotocols, denial_response=denial
        )

    @property
    def gone(self) -> bool:
        """Whether the client has gone: a disconnect was delivered or a send broke."""
        return self.gone_code is not None

    def terminal_count(self) -> int:
        return sum(1 for entry in self.trace if entry.direction == "out" and is_terminal(entry))

    def last_in(self) -> Message | None:
        return next((e.message for e in reversed(self.trace) if e.direction == "in"), None)

    async def receive(self) -> Message:
        # After a broken send, receiving is fine: it gives the disconnect (and its code).
        if self.disconnected:
            self.problems.append("receive() awaited after websocket.disconnect was delivered")
        elif (
            not self.broken
            and not self.chaos
            and self.connected
            and (not self.answered or self.responding)
        ):
            self.problems.append(
                "receive() awaited while no message can come (handshake unanswered or a "
                "denial response under way): a real server would block"
            )
        if self.timed:
            # As a real server's queue: a message waiting is handed over without
            # yielding, so a tiny timeout gets it (timeout=0 is cancelled here).
            await anyio.lowlevel.checkpoint_if_cancelled()
        else:
            await anyio.lowlevel.checkpoint()
        message = await self._next_event()
        self.trace.append(Entry("in", message))
        message_type = message.get("type")
        if message_type == CONNECT:
            self.connected = True
        elif message_type == DISCONNECT:
            self.disconnected = True
            if self.gone_code is None:
                self.gone_code = int(message.get("code", 1005))
                self.gone_reason = message.get("reason") or ""
        return message

    async def _next_event(self) -> Message:
        if self.broken or self.disconnected:
            return disconnect_message(1006)
        if self.chaos:
            return dict(self.client.popleft()) if self.client else disconnect_message(1006)
        if not self.connected:
            return {"type": CONNECT}
        if not self.accepted:
            # Refused, or waiting for an answer: no data can come, only the client leaving.
            final = next((m for m in self.client if m["type"] == DISCONNECT), None)
            return dict(final) if final is not None else disconnect_message(1006)
        while self.client and self.client[0] == PAUSE:
            if not self.timed:
                self.client.popleft()  # an untimed receive waits the pause out
                continue
            self.blocked = True
            try:
                await anyio.sleep_forever()  # only the receive's own timeout ends it
            finally:
                self.client.popleft()  # the pause is over: the client speaks again
        if self.client:
            return dict(self.client.popleft())
        if self.silent:
            if not self.app_done.is_set():
                self.blocked = self.blocked or self.timed
            await self.app_done.wait()
            if self.broken or self.close_code is None:
                return disconnect_message(1006)
            return disconnect_message(int(self.close_code))  # the client echoes the close
        return disconnect_message(1006)

    async def send(self, message: Message) -> None:
        # Recorded when called: the order in which the application decided.
        self.trace.append(entry := Entry("out", dict(message)))
        text = message.get("text") if message.get("type") == SEND else None
        if isinstance(text, str) and not encodable(text):
            entry.outcome = "unencodable"
            text.encode("utf-8")  # raises UnicodeEncodeError, as a real server's framing does
        breaking = self.break_at is not None and self.sent >= self.break_at
        if self.broken or breaking:
            entry.outcome = "broken"
            self._record_answer(message)
            if not self.broken:
                self.broken = True
                if self.gone_code is None:
                    self.gone_code, self.gone_reason = 1006, ""
                self.app_done.set()
            raise OSError("connection reset by peer")  # at once: the transport is closed
        self.sent += 1
        self._record_answer(message)
        await anyio.lowlevel.checkpoint()

    def _record_answer(self, message: Message) -> None:
        message_type = message.get("type")
        if message_type == ACCEPT:
            self.accepted = self.answered = True
        elif message_type == CLOSE:
            self.answered = self.finished = True
            self.close_code = message.get("code", 1000) if self.accepted else None
            self.app_done.set()
        elif message_type == RESPONSE_START:
            self.answered = self.responding = True
        elif message_type == RESPONSE_BODY and not message.get("more_body", False):
            self.responding = False
            self.finished = True
            self.app_done.set()

    def websocket(self, **options: Any) -> WebSocket:
        return WebSocket(self.scope, self.receive, self.send, **options)


def disconnect_message(code: int, reason: str = "") -> Message:
    return {"type": DISCONNECT, "code": code, "reason": reason}


def is_terminal(entry: Entry) -> bool:
    message = entry.message
    if message.get("type") == CLOSE:
        return True
    return message.get("type") == RESPONSE_BODY and not message.get("more_body", False)


# The ASGI checker: written from the spec, sharing nothing with bocws._state.


def check_headers(headers: object, where: str, problems: list[str]) -> None:
    if headers is None:
        return
    if not isinstance(headers, (list, tuple)):
        problems.append(f"{where}: headers must be a list of pairs, got {headers!r}")
        return
    for pair in headers:
        if not (
            isinstance(pair, (list, tuple))
            and len(pair) == 2
            and all(isinstance(part, bytes) for part in pair)
        ):
            problems.append(f"{where}: header {pair!r} is not a (bytes, bytes) pair")
        elif pair[0] != pair[0].lower():
            problems.append(f"{where}: header name {pair[0]!r} is not lowercase")
        elif pair[0] == b"sec-websocket-protocol" and ACCEPT in where:
            problems.append(f"{where}: sec-websocket-protocol header instead of 'subprotocol'")


def check_trace(server: FuzzServer) -> list[str]:
    """The ways the recorded conversation breaks the ASGI WebSocket spec (or bocws' docs)."""
    problems = list(server.problems)
    connected = disconnected = broken = False
    accepted = responding = finished = False
    for index, entry in enumerate(server.trace):
        message = entry.message
        message_type = message.get("type")
        if entry.direction == "in":
            if message_type == CONNECT:
                connected = True
            elif message_type == DISCONNECT:
                disconnected = True
            continue
        where = f"message #{index} {message_type!r}"
        if broken:
            problems.append(f"{where} sent after send() raised OSError")
        if disconnected:
            problems.append(f"{where} sent after websocket.disconnect was delivered")
        if finished:
            problems.append(f"{where} sent after the connection was closed")
        if message_type == ACCEPT:
            if not connected:
                problems.append(f"{where} before websocket.connect was received")
            if accepted or responding:
                problems.append(f"{where}: the handshake was already answered")
            subprotocol = message.get("subprotocol")
            if subprotocol is not None and subprotocol not in server.scope["subprotocols"]:
                problems.append(f"{where}: subprotocol {subprotocol!r} was not offered")
            check_headers(message.get("headers"), where, problems)
            accepted = True
        elif message_type == SEND:
            if not accepted:
                problems.append(f"{where} before websocket.accept")
            text, data = message.get("text"), message.get("bytes")
            if (text is None) == (data is None):
                problems.append(f"{where} must carry exactly one of text and bytes")
            elif text is not None and not isinstance(text, str):
                problems.append(f"{where}: text is a {type(text).__name__}")
            elif data is not None and type(data) is not bytes:
                problems.append(f"{where}: bytes is a {type(data).__name__}")
        elif message_type == CLOSE:
            if responding:
                problems.append(f"{where} in the middle of a denial response")
            code = message.get("code", 1000)
            if not valid_close_code(code) and (accepted or code != 403):
                problems.append(f"{where}: close code {code!r} may not be sent")
            if not valid_reason(message.get("reason")):
                problems.append(f"{where}: invalid reason {message.get('reason')!r}")
            finished = True
        elif message_type == RESPONSE_START:
            if "websocket.http.response" not in server.scope["extensions"]:
                problems.append(f"{where}: the server has no denial response extension")
            if accepted or responding:
                problems.append(f"{where}: the handshake was already answered")
            status = message.get("status")
            if not is_int(status) or not 100 <= status <= 599:
                problems.append(f"{where}: status {status!r}")
            check_headers(message.get("headers"), where, problems)
            responding = True
        elif message_type == RESPONSE_BODY:
            if not responding:
                problems.append(f"{where} without websocket.http.response.start")
            if not isinstance(message.get("body", b""), bytes):
                problems.append(f"{where}: body is not bytes")
            if not message.get("more_body", False):
                responding = False
                finished = True
        else:
            problems.append(f"{where}: not an ASGI WebSocket message")
        if entry.outcome == "broken":
            broken = True
    return problems


def assert_legal(server: FuzzServer) -> None:
    problems = check_trace(server)
    assert not problems, "\n".join(problems + ["trace:"] + [repr(e) for e in server.trace])


def assert_ended(server: FuzzServer) -> None:
    """Invariant 3: exactly one close or denial response, or none once the client left."""
    count = server.terminal_count()
    assert count <= 1, f"{count} closes or denial responses: {server.trace}"
    assert count == 1 or server.gone, f"the connection was left open: {server.trace}"


def outs_since(server: FuzzServer, mark: int) -> list[Message]:
    return [entry.message for entry in server.trace[mark:] if entry.direction == "out"]


def ins_since(server: FuzzServer, mark: int) -> list[Message]:
    return [entry.message for entry in server.trace[mark:] if entry.direction == "in"]


@dataclass
class Snapshot:
    """What the server knew when the application's own part ended."""

    mark: int
    gone: bool
    finished: bool
    responding: bool
    accepted: bool
    app_state: WebSocketState

    @classmethod
    def of(cls, server: FuzzServer, ws: WebSocket) -> Snapshot:
        return cls(
            len(server.trace),
            server.gone,
            server.finished,
            server.responding,
            server.accepted,
            ws.application_state,
        )


def expected_end(snap: Snapshot, code: object, reason: str, *, pending: bool) -> list[tuple]:
    """The messages `ensure_closed(code, reason)` sends from `snap` (pending: auto-accept)."""
    if snap.gone or snap.finished:
        return []
    if snap.responding:
        return [(RESPONSE_BODY, None, None)]
    if snap.accepted:
        return [(CLOSE, code, reason)]
    if pending:
        return [(ACCEPT, None, None), (CLOSE, code, reason)]
    return [(CLOSE, code, reason)]


def assert_sent(server: FuzzServer, mark: int, expected: list[tuple], what: str) -> None:
    """The messages since `mark` are `expected`, or a prefix of it cut by a broken send."""
    sent = outs_since(server, mark)
    described = [(m.get("type"), m.get("code"), m.get("reason")) for m in sent]
    assert len(sent) <= len(expected), f"{what}: sent {described}, expected {expected}"
    for message, (message_type, code, reason) in zip(sent, expected, strict=False):
        assert message.get("type") == message_type, f"{what}: sent {described}, not {expected}"
        if message_type == CLOSE:
            assert message.get("code") == code, f"{what}: closed with {described}, not {code}"
            assert message.get("reason") == reason, f"{what}: reason {described}, not {reason!r}"
    assert len(sent) == len(expected) or server.gone, f"{what}: sent {described}, not {expected}"


# Strategies: what the client sends.


def weighted(*choices: tuple[int, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """One of the strategies, each drawn `weight` times as often (one_of would dedupe)."""
    pool = [strategy for weight, strategy in choices for _ in range(weight)]
    return st.sampled_from(pool).flatmap(lambda strategy: strategy)


lone_surrogates = st.text(st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1)
texts = st.one_of(
    st.text(max_size=12),
    st.tuples(st.text(max_size=4), lone_surrogates, st.text(max_size=4)).map("".join),
)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | texts,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=6,
)


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


json_texts = st.one_of(
    json_values.map(json.dumps),
    json_values.map(lambda value: json.dumps(value, ensure_ascii=False)),
    # 400 parses and serialises again; 5,000 and 100,000 exceed the recursion limit.
    st.sampled_from([1, 64, 400, 5000, 100_000]).map(nested),
    st.sampled_from(["", "{", "[1,", "nul", "NaN", "-Infinity", '"\\ud800"', "01", "1 2"]),
    st.text(max_size=8),
    # A valid JSON integer too long for Python's int(): bad data all the same.
    st.just("1" * 5000),
)
client_bytes = st.one_of(
    st.binary(max_size=12),
    json_texts.map(lambda text: text.encode("utf-8", "surrogatepass")),
    st.sampled_from(
        [b"\xff\xfe", b"\xc3", b"\xed\xa0\x80", b"\x80abc", '{"a":1}'.encode("utf-16")]
    ),
)
data_messages = st.one_of(
    st.builds(
        lambda text, both: {"type": RECEIVE, "text": text, **({"bytes": None} if both else {})},
        texts | json_texts,
        st.booleans(),
    ),
    st.builds(
        lambda data, both: {"type": RECEIVE, "bytes": data, **({"text": None} if both else {})},
        client_bytes,
        st.booleans(),
    ),
)
client_codes = st.one_of(
    st.sampled_from([1000, 1001, 1005, 1006, 1012, 3000, 4999, 1002, 1011]),
    st.sampled_from(list(ClientCode)),
    st.integers(min_value=1, max_value=2**63).map(lambda code: code + (code == FOREIGN_CODE)),
    st.integers(min_value=-(2**63), max_value=-1),
    st.just(0),
)


def make_disconnect(code: int | None, reason: str | None, with_reason: bool) -> Message:
    message: Message = {"type": DISCONNECT}
    if code is not None:
        message["code"] = code
    if with_reason:
        message["reason"] = reason
    return message


disconnects = st.builds(
    make_disconnect,
    st.none() | client_codes,
    st.none() | st.text(max_size=10),
    st.booleans(),
)
clients = st.builds(
    lambda messages, end: messages + ([end] if end is not None else []),
    st.lists(weighted((5, data_messages), (1, st.just(PAUSE))), max_size=5),
    st.none() | disconnects,
)
malformed = st.sampled_from(
    [
        {"type": RECEIVE},
        {"type": RECEIVE, "text": "a", "bytes": b"a"},
        {"type": RECEIVE, "text": 5},
        {"type": RECEIVE, "bytes": "x"},
        {"type": "websocket.bogus"},
        {"type": "http.request", "body": b""},
        {},
    ]
)
chaos_clients = st.lists(
    st.one_of(st.just({"type": CONNECT}), data_messages, disconnects, malformed), max_size=8
)


# Strategies: what the application does.


def circular() -> list[Any]:
    items: list[Any] = []
    items.append(items)
    return items


def deep_list(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


close_codes = st.one_of(
    st.sampled_from([1000, 1001, 1003, 1007, 1011, 1014, 3000, 4000, 4999]),
    st.sampled_from([403, 0, 999, 1004, 1005, 1006, 1015, 2999, 5000, -1, 2**70]),
    st.sampled_from(list(AppCode)),
    st.sampled_from(["1000", 1000.0, True, None]),
)
close_reasons = st.one_of(
    st.none(),
    st.text(max_size=8),
    st.sampled_from(["", "x" * 123, "é" * 62, "\ud800", b"bye"]),
)
unserialisable = st.one_of(
    st.sampled_from([{1, 2}, float("nan"), float("-inf"), object(), {(1, 2): 3}]),
    st.builds(circular),
    # Nested deeper than the recursion limit.
    st.builds(deep_list, st.just(5000)),
)
headers = st.sampled_from(
    [
        None,
        [],
        [(b"x-token", b"abc")],
        [(b"X-Upper", b"1")],
        ((b"x-tuple", b"1"),),
        [("x-str", "1")],
        [(b"sec-websocket-protocol", b"chat.v2")],
        [(b"x-short",)],
        5,
    ]
)


class Chunks:
    """An async iterable of body chunks for a StreamingResponse (no async generator)."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = list(chunks)

    def __aiter__(self) -> Chunks:
        return self

    async def __anext__(self) -> bytes:
        if not self.chunks:
            raise StopAsyncIteration
        return self.chunks.pop(0)


denials = st.one_of(
    st.builds(
        lambda status, body: PlainTextResponse(body, status_code=status),
        st.sampled_from([200, 401, 403, 500]),
        st.text(max_size=5),
    ),
    st.builds(
        lambda chunks: StreamingResponse(Chunks(chunks), status_code=401),
        st.lists(st.binary(min_size=1, max_size=3), max_size=3),
    ),
)
raw_events = st.one_of(
    st.fixed_dictionaries(
        {"type": st.just(ACCEPT)},
        optional={
            "subprotocol": st.sampled_from([None, "chat.v2", "unoffered", 5]),
            "headers": headers,
        },
    ),
    st.fixed_dictionaries(
        {"type": st.just(SEND)},
        optional={
            "text": st.none() | texts | st.integers(),
            "bytes": st.none()
            | st.binary(max_size=4)
            | st.builds(bytearray, st.binary(max_size=4))
            | st.builds(memoryview, st.binary(max_size=4))
            | st.text(max_size=2),
        },
    ),
    st.fixed_dictionaries(
        {"type": st.just(CLOSE)}, optional={"code": close_codes, "reason": close_reasons}
    ),
    st.fixed_dictionaries(
        {"type": st.just(RESPONSE_START)},
        optional={"status": st.integers(0, 700) | st.just("401"), "headers": headers},
    ),
    st.fixed_dictionaries(
        {"type": st.just(RESPONSE_BODY)},
        optional={"body": st.binary(max_size=4) | st.text(max_size=2), "more_body": st.booleans()},
    ),
    st.sampled_from(
        [{"type": "websocket.bogus"}, {"type": CONNECT}, {"type": "http.response.start"}, {}]
    ),
)
payloads = st.one_of(
    texts,
    st.binary(max_size=8),
    st.builds(bytearray, st.binary(max_size=4)),
    st.builds(memoryview, st.binary(max_size=4)),
    json_values,
    unserialisable,
    raw_events,
)
json_modes = st.sampled_from(["text", "text", "binary", "binary", "yaml"])
#: receive_json() also takes None (its default): JSON in text and binary frames alike.
receive_json_modes = st.sampled_from([None, None, "text", "binary", "yaml"])


def timeout_keyword(seconds: object) -> dict[str, Any]:
    return {"timeout": seconds}


#: A receive's keyword arguments: none, or a `timeout=` (tiny, 0, None, or invalid).
timeouts = weighted(
    (4, st.just({})),
    (3, st.sampled_from([0.001, 0.01]).map(timeout_keyword)),
    (1, st.sampled_from([0, None]).map(timeout_keyword)),
    (1, st.sampled_from([-1, math.nan, math.inf, "1"]).map(timeout_keyword)),
)


def mostly(good: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """`good` three times in four, any payload otherwise."""
    return weighted((3, good), (1, payloads))


#: The arguments of each call; a call's weight is how many times it is listed.
ARGUMENTS: dict[str, st.SearchStrategy[tuple]] = {
    "receive_text": st.tuples(timeouts),
    "receive_bytes": st.tuples(timeouts),
    "receive_json": st.tuples(receive_json_modes, timeouts),
    "receive_event": st.tuples(timeouts),
    "receive": st.tuples(timeouts),
    "send_text": st.tuples(mostly(texts)),
    "send_bytes": st.tuples(mostly(st.binary(max_size=8))),
    "send_json": st.tuples(mostly(json_values), json_modes),
    "send_event": st.tuples(raw_events),
    "send": st.tuples(payloads),
    "accept": st.tuples(st.sampled_from([None, None, "chat.v2", "chat.v1", "unoffered"]), headers),
    "reject": st.tuples(st.none() | denials),
    "send_denial_response": st.tuples(denials),
    "close": st.tuples(close_codes, close_reasons),
    "ensure_closed": st.tuples(close_codes, close_reasons),
}
RECEIVE_NAMES = ["receive_text", "receive_bytes", "receive_json", "receive_event", "receive"]
CALL_NAMES = [
    *RECEIVE_NAMES * 3,
    *["send_text", "send_bytes", "send_json", "send_event", "send"] * 2,
    *["accept", "accept", "reject", "send_denial_response", "close", "ensure_closed"],
]


def calls_of(names: list[str]) -> st.SearchStrategy[tuple]:
    return st.sampled_from(names).flatmap(
        lambda name: ARGUMENTS[name].map(lambda arguments: (name, *arguments))
    )


#: Let a documented error out of the block or view about one time in four.
let_outs = st.integers(0, 3).map(lambda draw: draw == 0)
calls = st.tuples(st.just("call"), calls_of(CALL_NAMES), let_outs)
loops = st.tuples(
    st.just("for"), st.integers(1, 4), st.booleans(), st.lists(calls, max_size=2), let_outs
)
blocks = st.tuples(
    st.just("with"),
    st.lists(weighted((3, calls), (1, loops)), max_size=4),
    st.sampled_from([None, None, "bug", "foreign"]),
)
steps = st.lists(weighted((6, calls), (2, loops), (1, blocks)), max_size=8)
caught_options = st.sampled_from(
    [None, all, (), (1000,), (1000, 1001, 1006, 4000), (ClientCode.SERVICE_RESTART, 4999)]
)
websocket_options = st.fixed_dictionaries(
    {},
    optional={
        "auto_accept": st.booleans(),
        "value_type": st.none() | st.sampled_from(MESSAGE_TYPES),
        "receive_type": st.none() | st.sampled_from(MESSAGE_TYPES),
        "send_type": st.none() | st.sampled_from(MESSAGE_TYPES),
        "caught_close_codes": caught_options,
        # Mostly about the size of the client's messages, else as large as a server's.
        "max_message_size": weighted(
            (1, st.none()), (2, st.integers(1, 16)), (1, st.sampled_from([64, 4096, 2**24]))
        ),
    },
)


def caught_model(option: Any) -> Callable[[int], bool]:
    """The docs' meaning of a `caught_close_codes` option."""
    if option is None:
        return lambda code: code in (1000, 1001)
    if option is all:
        return lambda code: True
    codes = {int(code) for code in option}
    return lambda code: code in codes


def types_model(base: dict[str, Any], given: dict[str, Any]) -> tuple[str, str]:
    """The docs' receive and send types for options `given` over a view's `base`."""
    merged = dict(base)
    value_type = merged.get("value_type")
    directions = {"receive_type", "send_type"} & given.keys()
    if value_type is not None and "value_type" not in given and directions:
        merged["receive_type"] = merged["send_type"] = value_type
        merged["value_type"] = None
    merged.update(given)
    if merged.get("value_type") is not None:
        return merged["value_type"], merged["value_type"]
    return merged.get("receive_type") or "text", merged.get("send_type") or "text"


# Running calls and checking each one.


class Run:
    """One connection under test: the server, the WebSocket and what was observed."""

    def __init__(
        self,
        server: FuzzServer,
        ws: WebSocket,
        caught: Callable[[int], bool],
        limit: int | None = None,
    ) -> None:
        self.server = server
        self.ws = ws
        self.chaos = server.chaos
        self.caught = caught
        self.limit = limit  # max_message_size, as the options given set it
        #: Errors raised by this WebSocket's receive calls (held: identity matters).
        self.receive_errors: list[BaseException] = []
        self.disconnect_events = 0
        #: A call saw the client leave without letting it out (class-view hooks).
        self.in_hook = False
        #: Another task receives meanwhile, and may close with 1009 (two-task test).
        self.shared = False

    def from_receive(self, error: BaseException) -> bool:
        return any(error is seen for seen in self.receive_errors)

    def own_disconnect(self, error: BaseException) -> bool:
        if isinstance(error, MessageTooBig):
            # This connection's end, closed with 1009, whatever bad data came after
            # (test_message_too_big_after_more_bad_data_regression).
            return self.from_receive(error)
        server = self.server
        return isinstance(error, WSD) and server.gone and error.code == server.gone_code

    def too_big(self, message: Message | None) -> bool:
        size = message_size(message)
        return self.limit is not None and size is not None and size > self.limit


def resolve(ws: WebSocket, name: str) -> str:
    if name == "receive":
        return "receive_" + ws.receive_type
    if name == "send":
        return "send_" + ws.send_type
    return name


async def invoke(ws: WebSocket, call: tuple) -> Any:
    name, *args = call
    if name == "accept":
        return await ws.accept(args[0], args[1])
    if name in ("reject", "send_denial_response", "send_event"):
        return await getattr(ws, name)(args[0])
    if name in ("close", "ensure_closed", "send_json"):
        return await getattr(ws, name)(args[0], args[1])
    if name == "receive_json":
        return await ws.receive_json(args[0], **args[1])
    if name.startswith("receive"):
        return await getattr(ws, name)(**args[0])
    return await getattr(ws, name)(*args)


def keywords_of(call: tuple) -> dict[str, Any]:
    """A receive call's keyword arguments (`timeout=`); none for a loop's receives."""
    return call[-1] if call[0].startswith("receive") and len(call) > 1 else {}


def check_error(run: Run, call: tuple, error: Exception) -> None:
    """Invariant 1 for one call that raised `error`, and 5 for a receive's."""
    name = resolve(run.ws, call[0])
    allowed = DOCUMENTED if run.chaos else ALLOWED[name]
    modes = {"send_json": call[2:3], "receive_json": call[1:2]}.get(call[0], ())
    known = (None, "text", "binary") if call[0] == "receive_json" else ("text", "binary")
    unknown_mode = any(mode not in known for mode in modes)
    if unknown_mode:
        allowed = (*allowed, ValueError)
    invalid_timeout = timeout_error(keywords_of(call))
    if invalid_timeout is not None:  # refused before anything else, whatever the state
        allowed = (invalid_timeout, ValueError) if unknown_mode else (invalid_timeout,)
    assert isinstance(error, allowed), (
        f"{call[0]}() ({name}) raised an undocumented {type(error).__name__}: {error!r}; "
        f"documented: {', '.join(cls.__name__ for cls in allowed)}"
    )
    if isinstance(error, TimeoutError):
        assert keywords_of(call).get("timeout") is not None, f"{name}() timed out, no timeout"
    if isinstance(error, CLIENT_DATA_ERRORS):
        last = run.server.last_in()
        assert not run.too_big(last), (
            f"{name}() raised {error!r} for a message of {message_size(last)} bytes: "
            f"over max_message_size {run.limit}, it should raise MessageTooBig first"
        )
    if isinstance(error, MessageTooBig):
        assert name.startswith("receive"), f"{name}() raised {error!r}"
        check_too_big(run, error)
    elif isinstance(error, WSD):
        server = run.server
        assert server.gone, f"{name}() raised {error!r} but the client is still connected"
        assert error.code == server.gone_code, f"{error!r}: the client left with {server.gone_code}"
        assert error.reason == server.gone_reason, f"{error!r}: reason {server.gone_reason!r}"
    if isinstance(error, MessageTypeError) and not run.chaos:
        last = run.server.last_in() or {}
        kind = "text" if last.get("text") is not None else "bytes"
        assert (error.received, error.expected) == (kind, "bytes" if kind == "text" else "text")


def check_too_big(run: Run, error: MessageTooBig | None) -> None:
    """Invariant 5 after a receive raised `error` (or ended `async for` quietly) over the
    last data message: it is over the limit, and the one close since is 1009."""
    trace = run.server.trace
    data = [
        i for i, e in enumerate(trace) if e.direction == "in" and e.message.get("type") == RECEIVE
    ]
    assert data, "MessageTooBig before any message was received"
    index = data[-1]
    received = trace[index].message
    assert run.too_big(received), f"MessageTooBig for {received!r}, limit {run.limit}"
    if error is not None:
        described = (error.code, error.reason, error.size, error.limit)
        expected = (1009, "message too big", message_size(received), run.limit)
        assert described == expected, f"MessageTooBig{described}, expected {expected}"
    # The application's own close or denial response came first: no 1009 then.
    closed = any(entry.direction == "out" and is_terminal(entry) for entry in trace[:index])
    sent = [entry.message for entry in trace[index + 1 :] if entry.direction == "out"]
    assert sent == ([] if closed else [TOO_BIG_CLOSE]), (
        f"after a message of {message_size(received)} bytes over {run.limit}: sent {sent}"
    )


def check_timeout(
    run: Run, call: tuple, error: Exception | None, mark: int, before: tuple[Any, Any], took: float
) -> None:
    """Invariant 5 for a receive's `timeout=`: `before` are the states at `mark`, and the
    call took `took` seconds."""
    server, ws = run.server, run.ws
    keywords = keywords_of(call)
    states = (ws.client_state, ws.application_state)
    if timeout_error(keywords) is not None:
        assert error is not None, f"{call[0]}(**{keywords}) took an invalid timeout"
        assert len(server.trace) == mark, f"{error!r} after {server.trace[mark:]}"
        assert states == before, f"{error!r}, and the states went from {before} to {states}"
        return
    if server.blocked:  # the server delivered nothing, and never will
        assert isinstance(error, TimeoutError), f"{call[0]}(**{keywords}) ended with {error!r}"
    if not isinstance(error, TimeoutError):
        return
    # A message was waiting: only a timeout already over may miss it (0, or a process
    # stalled for as long, as a garbage collection can, before the wait began).
    assert server.blocked or took >= keywords["timeout"], "timed out while a message was waiting"
    received, sent = ins_since(server, mark), outs_since(server, mark)
    # Only a pending auto-accept may have happened: the timeout covers the wait after it.
    assert all(message.get("type") == CONNECT for message in received), f"lost {received}"
    assert all(message.get("type") == ACCEPT for message in sent), f"timed out, sent {sent}"
    connected = WebSocketState.CONNECTED
    assert states == ((connected, connected) if sent else before), (
        f"timed out, and the states went from {before} to {states}"
    )


def check_event(run: Run, event: Any) -> None:
    assert isinstance(event, dict), f"receive_event() returned {event!r}"
    assert event.get("type") in (CONNECT, RECEIVE, DISCONNECT), f"returned {event!r}"
    assert not run.too_big(event), f"{event!r} is over max_message_size {run.limit}"
    if event["type"] == DISCONNECT:
        run.disconnect_events += 1
        assert run.disconnect_events == 1, "a second websocket.disconnect event"
        if not run.server.broken:
            assert event == run.server.last_in(), f"{event!r} is not what the server sent"
    elif not run.chaos:
        assert event == run.server.last_in(), f"{event!r} is not what the server sent"


def check_result(run: Run, call: tuple, result: Any, mark: int) -> None:
    """What a call that returned did: the value received, or what it sent since `mark`."""
    ws, server = run.ws, run.server
    name = resolve(ws, call[0])
    last_in = server.last_in() or {}
    sent = outs_since(server, mark)
    if run.shared:
        sent = [message for message in sent if message != TOO_BIG_CLOSE]  # the receiver's
    if name in ("receive_text", "receive_bytes", "receive_json"):
        size = message_size(last_in)
        assert not run.too_big(last_in), f"{name}() returned {size} bytes, over {run.limit}"
    if name == "receive_event":
        check_event(run, result)
    elif name == "receive_text":
        assert isinstance(result, str), result
        assert result == last_in.get("text"), (result, last_in)
    elif name == "receive_bytes":
        assert type(result) is bytes, result
        assert result == bytes(last_in.get("bytes")), (result, last_in)
    elif name == "receive_json":
        # ("receive",) on a JSON route is receive_json() with mode None.
        mode = call[1] if call[0] == "receive_json" else None
        text = last_in.get("text")
        binary = mode == "binary" or (mode is None and text is None)
        source = last_in.get("bytes") if binary else text
        if not run.chaos:
            assert source is not None, f"receive_json(mode={mode!r}) took {last_in!r}"
        if source is not None and len(source) < 64:
            parsed = json.loads(bytes(source).decode("utf-8") if binary else source)
            assert repr(result) == repr(parsed), f"receive_json() gave {result!r} for {source!r}"
    elif name in ("send_text", "send_bytes", "send_json"):
        assert sent, f"{name}() returned without sending"
        assert sent[-1].get("type") == SEND, f"{name}() returned, sending {sent}"
        message = sent[-1]
        if name == "send_text":
            assert message.get("text") == call[1]
        elif name == "send_bytes":
            assert message.get("bytes") == bytes(call[1])
        else:
            binary = len(call) > 2 and call[2] == "binary"
            assert isinstance(message.get("bytes" if binary else "text"), bytes if binary else str)
    elif name == "send_event":
        if sent:
            assert sent[-1] == call[1], f"send_event() sent {sent[-1]!r}, not {call[1]!r}"
        else:  # recorded, not forwarded: legal for a close or a response once the client left
            assert server.gone, f"send_event({call[1]!r}) sent nothing"
            assert call[1].get("type") not in (SEND, ACCEPT), f"{call[1]!r} was not sent"
    elif name == "accept":
        assert sent, "accept() returned without sending"
        assert sent[-1].get("type") == ACCEPT, f"accept() returned, sending {sent}"
        assert sent[-1].get("subprotocol") == call[1]
    elif name == "ensure_closed":
        assert server.gone or server.finished, "ensure_closed() returned, the connection open"
    elif name in ("close", "reject", "send_denial_response"):
        assert server.gone or server.finished or server.responding, f"{name}() sent {sent}"
        if name == "close" and not server.gone:
            assert sent, "close() returned without sending"
            assert sent[-1].get("code") == call[1], f"close() sent {sent}"
            assert sent[-1].get("reason") == (call[2] or "")


async def perform(run: Run, call: tuple) -> Exception | None:
    """Make one call under a timeout; check what it raised or did; return its error."""
    server, ws = run.server, run.ws
    mark = len(server.trace)
    before = (ws.client_state, ws.application_state)
    keywords = keywords_of(call)
    server.timed = keywords.get("timeout") is not None and timeout_error(keywords) is None
    server.blocked = False
    started = time.monotonic()
    try:
        with bounded(CALL_TIMEOUT, f"{call[0]}()"):
            try:
                result = await invoke(ws, call)
            except AssertionError:
                raise
            except Exception as error:
                caught: Exception | None = error
            else:
                caught = None
    finally:
        server.timed = False
    if call[0].startswith("receive"):
        check_timeout(run, call, caught, mark, before, time.monotonic() - started)
    if caught is not None:
        check_error(run, call, caught)
        if resolve(run.ws, call[0]).startswith("receive"):
            run.receive_errors.append(caught)
            if not run.chaos and not isinstance(caught, (*CLIENT_DATA_ERRORS, MessageTooBig)):
                # An error not about the client's data: its data was not taken and lost.
                taken = [m for m in ins_since(server, mark) if m.get("type") == RECEIVE]
                assert not taken, f"{call[0]}() raised {caught!r}, losing {taken}"
        return caught
    check_result(run, call, result, mark)
    return None


async def execute(run: Run, step: tuple) -> None:
    """Run one step; raise the error it lets out (the very object), if any."""
    kind = step[0]
    if kind == "call":
        error = await perform(run, step[1])
        if error is not None and step[2]:
            raise error
    elif kind == "for":
        await run_loop(run, *step[1:])
    elif kind == "with":
        error = await run_block(run, step[1], step[2])
        if error is not None:
            raise error
    else:
        raise AssertionError(f"unknown step {step!r}")


async def run_loop(run: Run, limit: int, echo: bool, body: list[tuple], let_out: bool) -> None:
    """`async for message in ws`, echoing and making calls, `limit` times at most."""
    ws = run.ws
    count = 0
    in_body = False
    mark = len(run.server.trace)
    loop_error: Exception | None = None
    try:
        with bounded(CALL_TIMEOUT * (1 + limit * (1 + len(body))), "async for"):
            async for message in ws:
                in_body = True
                if ws.receive_type == "event":
                    check_event(run, message)
                    if run.disconnect_events > 1:
                        return
                else:
                    check_result(run, ("receive",), message, mark)
                if echo:
                    await execute(run, ("call", ("send", message), let_out))
                for call in body:
                    await execute(run, call)
                in_body = False
                mark = len(run.server.trace)
                count += 1
                if count >= limit:
                    return
    except AssertionError:
        raise
    except Exception as error:
        if in_body:
            raise  # a call in the body let it out, already checked
        loop_error = error
    if loop_error is not None:
        check_error(run, ("receive",), loop_error)
        run.receive_errors.append(loop_error)
        assert not isinstance(loop_error, MessageTooBig), f"async for let {loop_error!r} out"
        if isinstance(loop_error, WSD):
            assert not run.caught(loop_error.code), f"async for raised {loop_error!r}, caught"
            assert ws.application_state is not DISCONNECTED, "async for raised after close()"
        if let_out:
            raise loop_error
        return
    # The loop ended by itself: on a message too big, the client left with a caught
    # code, after close(), or in event mode (which yields the disconnect itself).
    server = run.server
    if any(run.too_big(message) for message in ins_since(server, mark)):
        check_too_big(run, None)
        return
    assert server.gone, "async for ended while the client is still connected"
    assert (
        ws.receive_type == "event"
        or run.caught(server.gone_code or 0)
        or ws.application_state is DISCONNECTED
    ), f"async for ended quietly on code {server.gone_code}, which is not caught"


def client_data_close(run: Run, error: BaseException) -> tuple[int, str] | None:
    """The close for `error` if this connection's receive raised it over the client's
    data (1003 or 1007, with the documented reason); `None` for any other error."""
    if not run.from_receive(error):
        return None
    if isinstance(error, MessageTypeError):
        return 1003, "unsupported frame type"
    if isinstance(error, InvalidJSON):
        return 1007, "invalid JSON"
    return None


def make_error(kind: str) -> Exception:
    if kind == "bug":
        return ViewBug("a bug in the view")
    return WebSocketDisconnect(FOREIGN_CODE, "another connection left")


async def run_block(run: Run, body: list[tuple], raise_kind: str | None) -> Exception | None:
    """`async with ws:` around `body`; check how it ends; return what escaped it."""
    ws, server = run.ws, run.server
    entered = False
    inner: Exception | None = None
    snap: Snapshot | None = None
    escaped: Exception | None = None
    try:
        with bounded(RUN_TIMEOUT, "async with"):
            async with ws:
                entered = True
                try:
                    for step in body:
                        await execute(run, step)
                    if raise_kind is not None:
                        raise make_error(raise_kind)
                except AssertionError:
                    raise
                except Exception as error:
                    inner = error
                    raise
                finally:
                    snap = Snapshot.of(server, ws)
    except AssertionError:
        raise
    except Exception as error:
        escaped = error
    if not entered:
        assert escaped is not None
        check_error(run, ("accept", None, None), escaped)  # entering accepts
        return escaped
    assert snap is not None
    if run.chaos:
        assert escaped is None or escaped is inner or isinstance(escaped, DOCUMENTED)
        return escaped
    pending = ws.auto_accept and snap.app_state is CONNECTING
    if inner is None:
        assert escaped is None, f"async with raised {escaped!r} after a normal exit"
        expected = expected_end(snap, 1000, "", pending=pending)
    elif isinstance(inner, WSD) and run.own_disconnect(inner):
        quiet = run.caught(inner.code) or snap.app_state is DISCONNECTED
        assert escaped is (None if quiet else inner), f"async with let out {escaped!r}"
        expected = []
    elif (close := client_data_close(run, inner)) is not None:
        # The client's bad data: closed with its code and reason, and swallowed.
        assert escaped is None, f"async with let out {escaped!r}, the client's bad data"
        expected = expected_end(snap, *close, pending=pending)
    else:
        assert escaped is inner, f"async with raised {escaped!r} instead of {inner!r}"
        expected = expected_end(snap, 1011, "internal error", pending=pending)
    assert_sent(server, snap.mark, expected, "leaving async with")
    assert_ended(server)
    return escaped


async def check_ensure_closed(run: Run) -> None:
    """`ensure_closed()` at the end of a run: it closes, whatever came before."""
    error: Exception | None = None
    with bounded(CALL_TIMEOUT, "ensure_closed()"):
        try:
            await run.ws.ensure_closed()
        except AssertionError:
            raise
        except Exception as raised:
            error = raised
    if error is None:
        assert_ended(run.server)
    else:  # only a misbehaving server's junk, met while accepting first
        assert run.chaos, f"ensure_closed() raised {error!r}"
        assert isinstance(error, DOCUMENTED), f"ensure_closed() raised {error!r}"


# Invariants 1 to 4 on a bare WebSocket.


def run_websocket(
    client: list[Message],
    options: dict[str, Any],
    script: list[tuple],
    *,
    chaos: bool,
    denial: bool,
    subprotocols: tuple[str, ...],
    break_at: int | None,
) -> FuzzServer:
    server = FuzzServer(
        client, chaos=chaos, denial=denial, subprotocols=subprotocols, break_at=break_at
    )

    async def main() -> None:
        ws = server.websocket(**options)
        caught = caught_model(options.get("caught_close_codes"))
        run = Run(server, ws, caught, options.get("max_message_size"))
        for step in script:
            try:
                await execute(run, step)
            except AssertionError:
                raise
            except Exception:
                pass  # let out of a step, already checked
        await check_ensure_closed(run)

    anyio.run(main)
    assert_legal(server)
    return server


@fuzz
@given(
    client=clients,
    options=websocket_options,
    script=steps,
    denial=st.booleans(),
    subprotocols=st.sampled_from([(), ("chat.v2",), OFFERED]),
    break_at=st.none() | st.integers(0, 6),
)
def test_websocket_calls_against_a_random_client(
    client: list[Message],
    options: dict[str, Any],
    script: list[tuple],
    denial: bool,
    subprotocols: tuple[str, ...],
    break_at: int | None,
) -> None:
    run_websocket(
        client,
        options,
        script,
        chaos=False,
        denial=denial,
        subprotocols=subprotocols,
        break_at=break_at,
    )


@fuzz
@given(
    client=chaos_clients,
    options=websocket_options,
    script=steps,
    denial=st.booleans(),
    break_at=st.none() | st.integers(0, 6),
)
def test_websocket_calls_against_a_misbehaving_server(
    client: list[Message],
    options: dict[str, Any],
    script: list[tuple],
    denial: bool,
    break_at: int | None,
) -> None:
    run_websocket(
        client,
        options,
        script,
        chaos=True,
        denial=denial,
        subprotocols=OFFERED,
        break_at=break_at,
    )


#: Mostly receives, so that they meet the client's messages and pauses before it leaves.
receive_steps = st.lists(
    weighted(
        (6, st.tuples(st.just("call"), calls_of([*RECEIVE_NAMES, "accept"]), let_outs)),
        (1, st.tuples(st.just("for"), st.integers(1, 3), st.booleans(), st.just([]), let_outs)),
    ),
    max_size=10,
)


@fuzz
@given(
    client=st.builds(
        lambda messages, end: messages + ([end] if end is not None else []),
        st.lists(weighted((3, data_messages), (2, st.just(PAUSE))), max_size=8),
        st.none() | disconnects,
    ),
    options=websocket_options,
    script=receive_steps,
    break_at=st.none() | st.integers(1, 6),
    # A max_message_size of the first message's size, one byte less, or one more.
    at_limit=st.none() | st.integers(-1, 1),
)
def test_receive_timeouts_and_limits_against_a_pausing_client(
    client: list[Message],
    options: dict[str, Any],
    script: list[tuple],
    break_at: int | None,
    at_limit: int | None,
) -> None:
    sizes = [size for size in map(message_size, client) if size]
    if at_limit is not None and sizes:
        options = {**options, "max_message_size": max(1, sizes[0] + at_limit)}
    run_websocket(
        client,
        options,
        script,
        chaos=False,
        denial=True,
        subprotocols=OFFERED,
        break_at=break_at,
    )


# Views: the lifecycle.


@dataclass
class ViewRecord:
    """What a fuzzed view did, as seen from inside it."""

    called: bool = False
    run: Run | None = None
    error: BaseException | None = None
    snap: Snapshot | None = None
    loop_entered: bool = False
    hook_raised: bool = False
    #: The class view's loop ended on a message over max_message_size.
    too_big: bool = False
    #: The class view's loop ended on the client's bad data: the close code it calls for.
    bad_data: int | None = None
    #: Cancelled: the route's idle_timeout ended the view.
    cancelled: bool = False
    disconnect_codes: list[int] = field(default_factory=list)
    disconnect_gone: list[bool] = field(default_factory=list)
    #: The class view's loop receive, which records what it raises.
    loop_receive: Callable[..., Any] | None = None


class LogLines(logging.Handler):
    """The records of the "bocws" logger, from INFO up."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def errors(self) -> list[logging.LogRecord]:
        return [record for record in self.records if record.levelno >= logging.ERROR]

    def departures(self) -> list[logging.LogRecord]:
        return [r for r in self.records if "the client left with" in r.getMessage()]


def leaves(error: BaseException) -> list[BaseException]:
    if isinstance(error, BaseExceptionGroup):
        return [leaf for member in error.exceptions for leaf in leaves(member)]
    return [error]


def lifecycle_model(record: ViewRecord) -> tuple[bool, tuple | None]:
    """The docs' lifecycle: (re-raised?, the close the lifecycle sends: (code, reason)).

    A close of `None` sends nothing; `(403, "")` refuses the handshake without accepting.
    """
    run, snap, error = record.run, record.snap, record.error
    assert run is not None
    assert snap is not None
    if record.cancelled:
        return False, (1000, "idle timeout")
    if error is None:
        return False, (1000, "")
    verdicts: list[Any] = []
    for leaf in leaves(error):
        if isinstance(leaf, WSD):
            # The client's departure, whatever its code, is never re-raised; another
            # connection's disconnect is the application's error.
            verdicts.append("gone" if run.own_disconnect(leaf) else "bug")
        elif isinstance(leaf, WebSocketException):
            if snap.app_state is CONNECTING:
                verdicts.append((403, ""))
            elif valid_close_code(leaf.code) and valid_reason(leaf.reason or None):
                verdicts.append((leaf.code, leaf.reason or ""))
            else:
                verdicts.append("bug")
        elif (close := client_data_close(run, leaf)) is not None:
            verdicts.append(close)
        else:
            verdicts.append("bug")
    if "bug" in verdicts:
        return True, (1011, "internal error")
    closes = [verdict for verdict in verdicts if verdict != "gone"]
    return False, closes[0] if closes else None


def departs(run: Run, record: ViewRecord) -> bool:
    """Whether the client's own departure ends the view: what it let out is one, and the
    application had not closed first (the client's disconnect would only answer it)."""
    error, snap = record.error, record.snap
    assert snap is not None
    return (
        error is not None
        and snap.app_state is not DISCONNECTED
        and all(
            isinstance(leaf, WSD)
            and not isinstance(leaf, MessageTooBig)
            and run.own_disconnect(leaf)
            for leaf in leaves(error)
        )
    )


def check_view_end(
    server: FuzzServer,
    record: ViewRecord,
    escaped: BaseException | None,
    lines: LogLines,
    *,
    function_view: bool,
) -> None:
    """Invariants 1 and 3 for a view served through its endpoint."""
    assert_legal(server)
    errors = lines.errors()
    if not record.called:  # a handshake refused before the view ran: no error
        assert escaped is None, f"the endpoint raised {escaped!r}"
        assert not errors, [r.getMessage() for r in errors]
        return
    run, snap = record.run, record.snap
    assert run is not None
    assert snap is not None
    reraised, close = lifecycle_model(record)
    if run.chaos and escaped is not record.error:
        # Ending the connection may itself meet the server's junk (accepting first).
        assert escaped is None or isinstance(escaped, DOCUMENTED), f"raised {escaped!r}"
        return
    expected_error = record.error if reraised else None
    assert escaped is expected_error, (
        f"the endpoint raised {escaped!r}; the view raised {record.error!r}, so it should "
        f"{'re-raise it' if reraised else 'end quietly'}"
    )
    assert len(errors) == (1 if reraised else 0), [r.getMessage() for r in errors]
    if run.chaos:
        return
    # A departure is one line, never an ERROR: WARNING for the codes that report an error.
    departures = lines.departures()
    assert len(departures) <= 1, [r.getMessage() for r in departures]
    if function_view and departs(run, record):  # a class view's loop may end on it instead
        assert len(departures) == 1, f"{record.error!r} ended the view, logging no departure"
    for line in departures:
        code = server.gone_code
        assert line.getMessage().startswith(f"'/fuzz': the client left with {code}"), line
        expected_level = logging.WARNING if code in ERROR_CLOSE_CODES else logging.INFO
        assert line.levelno == expected_level, (line.levelname, line.getMessage())
    if close is None:
        expected: list[tuple] = []
    elif close[0] == 403 and snap.app_state is CONNECTING:
        expected = [] if snap.gone else [(CLOSE, 403, "")]
    else:
        pending = run.ws.auto_accept and snap.app_state is CONNECTING
        expected = expected_end(snap, close[0], close[1], pending=pending)
    assert_sent(server, snap.mark, expected, "ending the view")
    assert_ended(server)


def serve(
    server: FuzzServer, endpoint: ViewEndpoint, record: ViewRecord, *, function_view: bool
) -> None:
    lines = LogLines()
    logger = logging.getLogger("bocws")
    level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(lines)

    async def main() -> BaseException | None:
        with bounded(RUN_TIMEOUT, "the endpoint"):
            try:
                await endpoint(server.scope, server.receive, server.send)
            except AssertionError:
                raise
            except BaseExceptionGroup as group:
                if any(isinstance(leaf, AssertionError) for leaf in leaves(group)):
                    raise
                return group
            except Exception as error:
                return error
        return None

    try:
        escaped = anyio.run(main)
    finally:
        logger.removeHandler(lines)
        logger.setLevel(level)
    check_view_end(server, record, escaped, lines, function_view=function_view)


raise_steps = st.none() | st.tuples(
    st.sampled_from(["bug", "foreign", "ws_exception"]), close_codes, close_reasons
)
queries = st.sampled_from([b"", b"", b"", b"n=2", b"n=1&n=-7", b"other=1", b"n=x", b"n="])
#: `Origin` headers of this host's own pages (the scope's Host is 127.0.0.1:8000)...
SAME_ORIGINS = ("http://127.0.0.1:8000", "https://127.0.0.1:8000")
#: ...and of others.
OTHER_ORIGINS = (
    "https://chat.example.com",
    "https://a.example.org",
    "https://example.org",
    "http://chat.example.com",
    "https://chat.example.com:8443",
    "http://127.0.0.1",
    "http://127.0.0.1:9000",
    "https://evil.test",
    "null",
)
#: Route `allowed_origins` settings, each with the other origins it lets in; no Origin
#: header and the same origin always pass (docs/reliability.md, "Allowed origins").
ORIGIN_POLICIES: list[tuple[Any, frozenset[str]]] = [
    ("*", frozenset(OTHER_ORIGINS)),
    ("https://chat.example.com", frozenset({"https://chat.example.com"})),
    (
        ("https://chat.example.com", "*.example.org"),
        frozenset({"https://chat.example.com", "https://a.example.org"}),
    ),
    ((), frozenset()),
]
REFUSAL = {"type": CLOSE, "code": 403, "reason": ""}


def final_error(spec: tuple) -> Exception:
    kind, code, reason = spec
    if kind == "ws_exception":
        return WebSocketException(code, reason if isinstance(reason, str) else None)
    return make_error(kind)


@fuzz
@given(
    client=clients,
    chaos_client=weighted((3, st.none()), (1, chaos_clients)),
    options=websocket_options,
    # One view in three is the classic echo, letting out what the loop raises.
    script=weighted((2, steps), (1, st.just([("for", 8, True, [], True)]))),
    final=raise_steps,
    group=st.booleans(),
    query=queries,
    denial=st.booleans(),
    break_at=st.none() | st.integers(0, 6),
    decorate=st.sampled_from(["websocket_view", "ViewEndpoint"]),
    # An idle timeout (first: Hypothesis favours it) makes the client go silent once its
    # script is over.
    idle=st.sampled_from([0.01, None, 0.03]),
    origins=st.none() | st.sampled_from(ORIGIN_POLICIES),
    origin=st.sampled_from([None, *SAME_ORIGINS, *OTHER_ORIGINS]),
)
def test_function_views_end_every_connection(
    client: list[Message],
    chaos_client: list[Message] | None,
    options: dict[str, Any],
    script: list[tuple],
    final: tuple | None,
    group: bool,
    query: bytes,
    denial: bool,
    break_at: int | None,
    decorate: str,
    idle: float | None,
    origins: tuple[Any, frozenset[str]] | None,
    origin: str | None,
) -> None:
    chaos = chaos_client is not None
    silent = idle is not None and not chaos
    if silent:
        client = [message for message in client if message["type"] != DISCONNECT]
        script = [*script, ("for", 8, True, [], True)]  # then wait on the silent client
    server = FuzzServer(
        chaos_client if chaos else client,
        chaos=chaos,
        denial=denial,
        break_at=break_at,
        silent=silent,
        query=query,
    )
    if origin is not None:
        server.scope["headers"].append((b"origin", origin.encode()))
    route = dict(options)
    if silent:
        route["idle_timeout"] = idle
    if origins is not None:
        route["allowed_origins"] = origins[0]
    record = ViewRecord()
    caught = caught_model(options.get("caught_close_codes"))

    async def view(ws: WebSocket, n: int = 0) -> None:
        record.called = True
        assert (ws.receive_type, ws.send_type) == types_model({}, options)
        assert ws.auto_accept is options.get("auto_accept", True)
        run = record.run = Run(server, ws, caught, options.get("max_message_size"))
        try:
            for step in script:
                await execute(run, step)
            if final is not None:
                raise final_error(final)
        except AssertionError:
            raise
        except Exception as error:
            record.snap = Snapshot.of(server, ws)
            record.error = ExceptionGroup("view tasks", [error]) if group else error
            raise record.error from None
        except BaseException:
            # Cancelled, which only the idle timeout may do (checked below).
            record.cancelled = True
            record.snap = Snapshot.of(server, ws)
            raise
        record.snap = Snapshot.of(server, ws)

    if decorate == "websocket_view":
        endpoint = websocket_view(**route)(view) if route else websocket_view(view)
    else:
        endpoint = ViewEndpoint(view, **route)
    serve(server, endpoint, record, function_view=True)
    assert silent or not record.cancelled, "the view was cancelled without an idle_timeout"
    admitted = origins is None or origin is None or origin in SAME_ORIGINS or origin in origins[1]
    valid_query = query.split(b"&")[-1] not in (b"n=x", b"n=")
    assert record.called is (admitted and valid_query), (
        f"origin {origin!r}, query {query!r}: view called: {record.called}"
    )
    if not record.called:
        # A refused handshake (origin, then parameters): HTTP 403, nothing accepted.
        assert outs_since(server, 0) == [REFUSAL], server.trace
        assert_ended(server)


# Views: class-based.

class_options = websocket_options
hook_steps = st.lists(calls | loops, max_size=3)


@fuzz
@given(
    client=clients,
    attributes=class_options,
    options=class_options,
    on_connect=st.none() | hook_steps,
    on_message=hook_steps,
    on_disconnect=hook_steps,
    final=st.none() | st.sampled_from(["on_connect", "on_message", "on_disconnect"]),
    denial=st.booleans(),
    break_at=st.none() | st.integers(0, 6),
)
def test_class_views_end_every_connection(
    client: list[Message],
    attributes: dict[str, Any],
    options: dict[str, Any],
    on_connect: list[tuple] | None,
    on_message: list[tuple],
    on_disconnect: list[tuple],
    final: str | None,
    denial: bool,
    break_at: int | None,
) -> None:
    server = FuzzServer(client, denial=denial, break_at=break_at)
    record = ViewRecord()
    merged = {**attributes, **options}
    caught = caught_model(merged.get("caught_close_codes"))

    async def hook(name: str, ws: WebSocket, script: list[tuple] | None) -> None:
        run = record.run
        assert run is not None
        run.in_hook = True
        try:
            # No on_connect script: what WebSocketView's default does, accept().
            for step in script if script is not None else [("call", ("accept", None, None), True)]:
                await execute(run, step)
            if final == name:
                raise ViewBug(f"a bug in {name}")
        except AssertionError:
            raise
        except Exception as error:
            record.error = error
            bad_data = client_data_close(run, error)
            if not (run.own_disconnect(error) or bad_data) or name == "on_connect":
                record.hook_raised = True
            elif name == "on_message" and isinstance(error, MessageTooBig):
                record.too_big = True  # it ends the loop as the loop's own receive would
            elif name == "on_message" and bad_data is not None:
                record.bad_data = bad_data[0]  # so does the client's bad data
            raise
        finally:
            run.in_hook = False
            record.snap = Snapshot.of(server, ws)
            if record.loop_receive is not None:
                # Set again: a connection that ends drops what its instance holds
                # (WebSocket._release), the loop's receive set on it below too.
                ws.receive = record.loop_receive  # type: ignore[method-assign]

    class Fuzzed(WebSocketView):
        async def on_connect(self, ws: WebSocket) -> None:
            record.called = True
            assert (ws.receive_type, ws.send_type) == types_model(attributes, options)
            run = record.run = Run(server, ws, caught, merged.get("max_message_size"))
            plain_receive = ws.receive

            async def receive(**keywords: Any) -> Any:
                # The view loop's own receives: what they raise ends the view.
                mark = len(server.trace)
                try:
                    message = await plain_receive(**keywords)
                except Exception as error:
                    if not run.in_hook:
                        record.error = error
                        record.snap = Snapshot.of(server, ws)
                        run.receive_errors.append(error)
                        check_error(run, ("receive",), error)
                        record.too_big = isinstance(error, MessageTooBig)
                        bad_data = client_data_close(run, error)
                        record.bad_data = None if bad_data is None else bad_data[0]
                    raise
                if not run.in_hook:
                    record.error = None
                    record.snap = Snapshot.of(server, ws)
                    if ws.receive_type == "event":
                        check_event(run, message)
                    else:
                        check_result(run, ("receive",), message, mark)
                return message

            ws.receive = record.loop_receive = receive  # type: ignore[method-assign]
            await hook("on_connect", ws, on_connect)
            record.loop_entered = ws.application_state not in (
                DISCONNECTED,
                WebSocketState.RESPONSE,
            )

        async def on_message(self, ws: WebSocket, message: Any) -> None:
            await hook("on_message", ws, on_message)

        async def on_disconnect(self, ws: WebSocket, code: int) -> None:
            record.disconnect_codes.append(code)
            record.disconnect_gone.append(server.gone)
            await hook("on_disconnect", ws, on_disconnect)

    for name, value in attributes.items():
        setattr(Fuzzed, name, value)
    serve(server, websocket_view(Fuzzed, **options), record, function_view=False)
    # on_disconnect: once at most, with 1009 when the loop met a message too big, 1003
    # or 1007 when it met the client's bad data...
    assert len(record.disconnect_codes) <= 1, record.disconnect_codes
    if record.too_big:
        assert record.disconnect_codes == [1009], record.disconnect_codes
        return
    if record.bad_data is not None:
        assert record.disconnect_codes == [record.bad_data], record.disconnect_codes
        return
    # ...else with the client's code, only once it has left...
    if record.disconnect_codes:
        assert record.loop_entered
        assert all(record.disconnect_gone)
        assert record.disconnect_codes == [server.gone_code], record.disconnect_codes
    # ...and always when it left during the loop, unless a hook raised.
    run = record.run
    assert run is not None
    snap = record.snap
    if record.loop_entered and snap is not None and snap.gone and not record.hook_raised:
        assert record.disconnect_codes == [server.gone_code], (
            f"the client left ({server.gone_code}) but on_disconnect was not called"
        )


# Two tasks on one connection.

sender_calls = st.tuples(
    st.just("call"),
    calls_of(["send_text", "send_bytes", "send_json", "send_event", "send", "close"]),
    st.just(False),
)


@fuzz
@given(
    client=clients,
    silent=st.booleans(),
    receive_type=st.sampled_from(MESSAGE_TYPES),
    send_type=st.sampled_from(MESSAGE_TYPES),
    sender=st.lists(sender_calls, max_size=5),
    limit=st.integers(1, 6),
    break_at=st.none() | st.integers(0, 4),
    max_size=st.none() | st.integers(1, 64),
)
def test_a_sender_and_a_receiver_task_share_a_connection(
    client: list[Message],
    silent: bool,
    receive_type: str,
    send_type: str,
    sender: list[tuple],
    limit: int,
    break_at: int | None,
    max_size: int | None,
) -> None:
    if silent:
        client = [message for message in client if message["type"] != DISCONNECT]
    server = FuzzServer(client, break_at=break_at, silent=silent)
    outcome: dict[str, BaseException] = {}

    async def main() -> None:
        # The model's async for raises for bad data and leaves the connection to the
        # sender: on_invalid="raise" (the default "close" closes at once).
        ws = server.websocket(
            receive_type=receive_type,
            send_type=send_type,
            caught_close_codes=all,
            max_message_size=max_size,
            on_invalid="raise",
        )
        run = Run(server, ws, caught_model(all), max_size)
        run.shared = True

        async def receive_all() -> None:
            try:
                await run_loop(run, limit, False, [], True)
            except AssertionError:
                raise
            except Exception as error:
                outcome["receiver"] = error

        async def send_all() -> None:
            for step in sender:
                await execute(run, step)
            await check_ensure_closed(run)

        with bounded(RUN_TIMEOUT, "two tasks"):
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(receive_all)
                tasks.start_soon(send_all)
        await check_ensure_closed(run)

    anyio.run(main)
    assert_legal(server)
    error = outcome.get("receiver")
    # With caught_close_codes=all only the client's bad data may end the loop with an
    # error, or a handshake the sender refused (a raw close or denial response).
    refused = server.answered and not server.accepted
    assert (
        error is None
        or isinstance(error, CLIENT_DATA_ERRORS)
        or (refused and isinstance(error, WSE))
    ), f"the receiver's async for raised {error!r}"


# Regression tests for the bugs found by fuzzing (strict: they fail once fixed).


@pytest.mark.anyio
async def test_receive_json_of_a_huge_integer_regression() -> None:
    # Valid JSON that Python's int() refuses (over 4300 digits) is the client's bad data:
    # receive_json() should raise JSONDecodeError and a view should close with 1007.
    server = FuzzServer([{"type": RECEIVE, "text": "1" * 5000}])

    @websocket_view(value_type="json")
    async def echo(ws: WebSocket) -> None:
        async for message in ws:
            await ws.send(message)

    await echo(server.scope, server.receive, server.send)  # raises ValueError today
    assert outs_since(server, 0)[-1] == {"type": CLOSE, "code": 1007, "reason": "invalid JSON"}


@pytest.mark.anyio
async def test_send_json_nested_deeply_regression() -> None:
    server = FuzzServer([])
    ws = server.websocket()
    with pytest.raises(TypeError):  # documented: data JSON cannot represent
        await ws.send_json(deep_list(5000))  # raises RecursionError today


@pytest.mark.anyio
async def test_disconnect_code_zero_is_reported_regression() -> None:
    server = FuzzServer([disconnect_message(0)])
    ws = server.websocket(caught_close_codes=all)
    with pytest.raises(WebSocketDisconnect) as info:
        await ws.receive_text()
    assert info.value.code == 0  # 1006 today, so the lifecycle takes it for another's


@pytest.mark.anyio
async def test_receive_in_progress_when_a_send_breaks_regression() -> None:
    # One task awaits receive() while another's send() finds the connection broken; the
    # server then delivers websocket.disconnect to the receiver, as the ASGI spec says.
    # Found by fuzzing at 7964ea8 (WebSocketStateError: the core refused that late
    # disconnect); fixed by 4d3b273.
    server = FuzzServer([], silent=True, break_at=1)  # the send after the accept breaks
    ws = server.websocket(caught_close_codes=all)
    await ws.accept()
    result: list[object] = []

    async def receiver() -> None:
        try:
            async for _message in ws:
                pass
            result.append("ended quietly")
        except Exception as error:
            result.append(error)

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(receiver)
        await anyio.lowlevel.checkpoint()
        await anyio.lowlevel.checkpoint()  # the receiver now waits in receive()
        with pytest.raises(WebSocketDisconnect):
            await ws.send_text("hello")  # OSError: the client has gone
    assert result == ["ended quietly"]


@pytest.mark.anyio
async def test_event_loop_ends_after_a_broken_send_regression() -> None:
    # Once a send found the connection broken, every raw receive returns another
    # websocket.disconnect, so an event-mode `async for` never ends: a busy loop that
    # never awaits (no timeout can stop it) without the bound below.
    server = FuzzServer([{"type": RECEIVE, "text": "a"}], break_at=1)  # after the accept
    ws = server.websocket(receive_type="event")
    events = []
    async for event in ws:
        events.append(event["type"])
        with contextlib.suppress(WebSocketDisconnect):
            await ws.send_text("x")  # breaks: the client has gone
        if len(events) > 3:
            break
    assert events.count(DISCONNECT) <= 1, events  # [receive, disconnect, disconnect, ...]


@pytest.mark.anyio
async def test_send_event_of_a_non_mapping_regression() -> None:
    server = FuzzServer([])
    ws = server.websocket(send_type="event")
    with pytest.raises(TypeError):  # as send_text(), send_bytes(): AttributeError today
        await ws.send("hello")


@pytest.mark.anyio
async def test_class_view_hook_that_catches_the_disconnect_regression() -> None:
    # on_message reads a follow-up message and catches the client's disconnect; the loop
    # then receives again and raises WebSocketStateError to the server (ERROR, 1011).
    server = FuzzServer([{"type": RECEIVE, "text": "header"}, disconnect_message(1000)])
    codes: list[int] = []

    class Upload(WebSocketView):
        async def on_message(self, ws: WebSocket, message: Any) -> None:
            with contextlib.suppress(WebSocketDisconnect):  # the client gave up
                await ws.receive()  # the body that should follow the header

        async def on_disconnect(self, ws: WebSocket, code: int) -> None:
            codes.append(code)

    await websocket_view(Upload)(server.scope, server.receive, server.send)
    assert codes == [1000]


@pytest.mark.anyio
async def test_accept_while_another_task_accepts_lazily_regression() -> None:
    # A reader task starts `async for` (a lazy accept, awaiting websocket.connect) and the
    # view then accepts with a subprotocol: accept() receives too, and swallows the
    # client's first message.
    server = FuzzServer([{"type": RECEIVE, "text": "hello"}, disconnect_message(1000)])
    ws = server.websocket()
    received: list[str] = []

    async def reader() -> None:
        async for message in ws:
            received.append(message)

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(reader)
        await anyio.lowlevel.checkpoint()  # the reader awaits websocket.connect
        with contextlib.suppress(WebSocketStateError):  # "already accepted" is fine
            await ws.accept("chat.v2")
    assert received == ["hello"]  # [] today: accept() consumed it


@pytest.mark.anyio
async def test_websocket_exception_before_accept_on_a_lost_connection_regression() -> None:
    # A view refuses the handshake with WebSocketException before accepting, and the
    # server's send raises OSError: the client has gone. The lifecycle should end quietly
    # (as it does for a refusal over a parameter); WebSocketDisconnect(1006) escapes today.
    server = FuzzServer([], break_at=0)

    @websocket_view
    async def private(ws: WebSocket) -> None:
        raise WebSocketException(1008, "no token")

    await private(server.scope, server.receive, server.send)


@pytest.mark.anyio
async def test_websocket_exception_code_none_regression() -> None:
    # After accept, a WebSocketException whose code may not be sent is the view's error:
    # 1011 and re-raised (lifecycle docs). With code None it is closed with 1008 instead
    # and silenced, as if the view had asked to refuse the handshake.
    server = FuzzServer([])
    error = WebSocketException(None, "no code")  # type: ignore[arg-type]

    @websocket_view
    async def view(ws: WebSocket) -> None:
        await ws.send("hello")
        raise error

    with pytest.raises(WebSocketException):
        await view(server.scope, server.receive, server.send)
    assert outs_since(server, 0)[-1] == {"type": CLOSE, "code": 1011, "reason": "internal error"}


# More bugs found by fuzzing the limits and timeouts, fixed.


@pytest.mark.anyio
async def test_message_too_big_after_more_bad_data_regression() -> None:
    # A class view's loop meets a message over max_message_size and closes with 1009;
    # on_disconnect reads one more frame and catches its MessageTypeError. The view
    # should still end quietly, not log an ERROR and re-raise the MessageTooBig to the
    # server. Found by fuzzing; see Run.own_disconnect.
    server = FuzzServer([{"type": RECEIVE, "text": "too long"}, {"type": RECEIVE, "text": "x"}])
    codes: list[int] = []

    class Lines(WebSocketView):
        max_message_size = 4

        async def on_disconnect(self, ws: WebSocket, code: int) -> None:
            codes.append(code)
            with contextlib.suppress(MessageTypeError):
                await ws.receive_bytes()  # a last binary frame? the client sent text

    await websocket_view(Lines)(server.scope, server.receive, server.send)
    assert codes == [1009]
    assert outs_since(server, 0)[-1] == TOO_BIG_CLOSE


@pytest.mark.anyio
async def test_a_view_returning_late_without_yielding_closes_without_a_reason_regression() -> None:
    # A view that never yields and returns after more than its idle_timeout (a long
    # synchronous step, or an event loop busy with other connections): the watcher's
    # first step comes after the view returned, finds the time up, and the lifecycle
    # closes with "idle timeout" although the view was never cancelled. Found by fuzzing
    # a view that did nothing, on a loaded machine; the fuzzed idle views now wait on
    # their client in the end, so they are cancelled instead and do not flake on it.
    server = FuzzServer([])

    @websocket_view(idle_timeout=0.01)
    async def view(ws: WebSocket) -> None:
        busy_until = time.monotonic() + 0.02  # a synchronous step longer than idle_timeout
        while time.monotonic() < busy_until:
            pass

    await view(server.scope, server.receive, server.send)
    assert outs_since(server, 0)[-1] == {"type": CLOSE, "code": 1000, "reason": ""}
