"""`WebSocket`: Bocadillo's high-level WebSocket API over any ASGI server.

The object only moves messages between the ASGI callables and the user; every
message, in both directions, is judged by the state core (`bocws._state`).
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import sys
import weakref
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Container, Iterable, Mapping
from types import TracebackType
from typing import Any, Literal, NamedTuple, TypeVar

import anyio
from starlette.exceptions import WebSocketException
from starlette.requests import HTTPConnection
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send
from starlette.websockets import WebSocketDisconnect

from . import _json
from ._codes import REASONS, REJECT_CODE, CloseCode, check_close, close_code_name
from ._exceptions import (
    DenialResponseUnsupported,
    InvalidJSON,
    InvalidMessage,
    MessageTooBig,
    MessageTypeError,
    WebSocketStateError,
)
from ._options import (
    MessageType,
    check_message_type,
    check_seconds,
    check_size_limit,
    normalize_caught,
)
from ._state import (
    ACCEPT,
    CLOSE,
    CONNECTED,
    CONNECTING,
    DISCONNECT,
    DISCONNECTED,
    RECEIVE,
    RESPONSE,
    RESPONSE_BODY,
    SEND,
    ConnectionState,
    WebSocketState,
)

# anyio, a Starlette dependency, brings the backport before Python 3.11.
if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup  # type: ignore[import-not-found,unused-ignore]

__all__ = ["WebSocket"]

logger = logging.getLogger("bocws")

_WebSocket = TypeVar("_WebSocket", bound="WebSocket")
_Message = TypeVar("_Message")

JSONMode = Literal["text", "binary"]
DENIAL_EXTENSION = "websocket.http.response"
#: How long a send that found the connection broken waits for the server's own
#: `websocket.disconnect` (servers queue it before failing sends), for its close code.
DISCONNECT_GRACE = 0.25
#: The most unread client messages kept while looking for that disconnect.
DISCONNECT_SEARCH = 64
# The largest message the hot path passes without a limit: a one-digit int compares
# fastest, and anything larger goes through the slow path, still accepted.
_UNMEASURED = 2**30 - 1


def _oversize(message: Message, limit: int) -> int:
    """The size in bytes (UTF-8 for text) of a `websocket.receive` payload over `limit`,
    else 0. Text is encoded only when its length cannot tell."""
    text = message.get("text")
    if text is None:
        size = len(message["bytes"])
        return size if size > limit else 0
    length = len(text)
    if length * 4 <= limit or (length <= limit and text.isascii()):
        return 0  # at most 4 UTF-8 bytes a character
    size = length if text.isascii() else len(text.encode("utf-8", "surrogatepass"))
    return size if size > limit else 0


class _InvalidUnicode(TypeError):
    """Text the server cannot encode: it holds a lone surrogate."""


EndingKind = Literal["departure", "closed", "close", "refuse", "bug"]


class Ending(NamedTuple):
    """How a connection ends for an exception that escaped `async with ws` or a view.

    Kinds:
        departure: the client left (`code` is the one it sent or the server reported).
        closed: the application had closed first; the disconnect completes its close.
        close: close with `code` and `reason`: the client's bad data, or Starlette's
            `WebSocketException`.
        refuse: refuse the pending handshake (`WebSocketException` before accept).
        bug: an application error: close with 1011 "internal error".
    """

    kind: EndingKind
    code: int
    reason: str = ""
    detail: str = ""


_BUG = Ending("bug", CloseCode.INTERNAL_ERROR, REASONS[CloseCode.INTERNAL_ERROR])
# Which ending wins when an exception group holds several.
_WEIGHT = {"closed": 0, "departure": 1, "close": 2, "refuse": 2, "bug": 3}


def exception_leaves(error: BaseException) -> list[BaseException]:
    """The exceptions inside `error`, through nested exception groups (task groups)."""
    if isinstance(error, BaseExceptionGroup):
        return [leaf for member in error.exceptions for leaf in exception_leaves(member)]
    return [error]


class WebSocket(HTTPConnection):
    """A WebSocket connection, with Bocadillo's high-level API.

    Connection information comes from Starlette's `HTTPConnection`: `url`, `headers`,
    `query_params`, `path_params`, `cookies`, `client`, `session`, `user`, `auth`,
    `state`, and the scope as a mapping (`ws["path"]`).

    Parameters:
        scope: the ASGI scope (of type `"websocket"`).
        receive: the ASGI receive callable.
        send: the ASGI send callable.
        auto_accept: accept the handshake lazily, on the first operation that needs an
            open connection (a send or receive, `close()`, `async for`, `async with`).
            With `False`, call `accept()` (or enter `async with`) yourself.
        value_type: the type of messages in both directions: `"text"`, `"bytes"`,
            `"json"` or `"event"`. Overrides `receive_type` and `send_type`.
        receive_type: the type `receive()` returns. Defaults to `"text"`.
        send_type: the type `send()` takes. Defaults to `"text"`.
        caught_close_codes: close codes of `WebSocketDisconnect` silenced by
            `async with` and `async for`. `None` means `(1000, 1001)`; the builtin
            `all` means every code; `()` means none.
        max_message_size: the largest message accepted from the client, in bytes
            (UTF-8 bytes for text). A larger one closes the connection with 1009 and
            raises `MessageTooBig`. `None` (the default) leaves the limit to the
            server (uvicorn's `--ws-max-size`, 16 MiB by default).

    Raises:
        ValueError: for an unknown message type or a scope that is not a WebSocket's.

    Example:
        >>> async def app(scope, receive, send):
        ...     ws = WebSocket(scope, receive, send, value_type="json")
        ...     async with ws:
        ...         async for message in ws:
        ...             await ws.send({"echo": message})
    """

    # Per-connection state that most connections never change, as class defaults: an
    # instance gets its own value only when it does (cheaper to build, smaller).
    # A lazy accept under way: True, or the event other tasks wait on for it.
    _accepting: anyio.Event | bool = False
    # Receives waiting on the server now, and the event failed sends wait on for the
    # client's disconnect (see _connection_broken).
    _receiving = 0
    _disconnect_seen: anyio.Event | None = None
    # After a send found the connection broken: the client's messages read while
    # looking for its disconnect, still to be received, and whether a receive was told
    # of the disconnect.
    _unread: deque[Message] | None = None
    _loss_told = False

    def __init__(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        *,
        auto_accept: bool = True,
        value_type: MessageType | None = None,
        receive_type: MessageType | None = None,
        send_type: MessageType | None = None,
        caught_close_codes: Iterable[int] | Callable[..., Any] | None = None,
        max_message_size: int | None = None,
    ) -> None:
        if scope.get("type") != "websocket":
            raise ValueError(f"WebSocket needs a 'websocket' scope, got {scope.get('type')!r}")
        super().__init__(scope)
        if value_type is not None or receive_type is not None or send_type is not None:
            check_message_type("value_type", value_type)
            check_message_type("receive_type", receive_type)
            check_message_type("send_type", send_type)
        if max_message_size is not None:
            check_size_limit("max_message_size", max_message_size)
        if value_type is not None:
            receive_type = send_type = value_type
        self._receive_type: MessageType = receive_type or "text"
        self._send_type: MessageType = send_type or "text"
        self.auto_accept = auto_accept
        self.caught_close_codes: Container[int] = normalize_caught(caught_close_codes)
        self._set_size_limit(max_message_size)
        self._receive = receive
        self._send = send
        self._core = ConnectionState(
            denial_response=DENIAL_EXTENSION in (scope.get("extensions") or {})
        )
        # Lazy auto-accept: cleared by the first accept, close or rejection.
        self._accept_pending = auto_accept
        # The shortcuts, bound once here so that receive()/send() cost no lookup per
        # message (unless a subclass overrides them); dropped once the connection ends,
        # which leaves no reference cycle through the instance (see _release).
        if type(self).receive is WebSocket.receive:
            self.__dict__["receive"] = getattr(self, "receive_" + self._receive_type)
        # Whether `async for` may inline receive_text(): not if a subclass overrides it.
        self._inline_text = (
            self._receive_type == "text" and type(self).receive_text is WebSocket.receive_text
        )
        if type(self).send is WebSocket.send:
            self.__dict__["send"] = getattr(self, "send_" + self._send_type)

    async def receive(self, *, timeout: float | None = None) -> Any:
        """Receive a message of `receive_type`: `receive_text()`, `receive_bytes()`,
        `receive_json()` or `receive_event()`, chosen once at construction."""
        receive: Callable[..., Awaitable[Any]] = getattr(self, "receive_" + self._receive_type)
        return await receive(timeout=timeout)

    async def send(self, data: Any) -> None:
        """Send a message of `send_type`: `send_text()`, `send_bytes()`, `send_json()` or
        `send_event()`, chosen once at construction."""
        send: Callable[[Any], Awaitable[None]] = getattr(self, "send_" + self._send_type)
        await send(data)

    def _release(self) -> None:
        """Drop the shortcuts bound at construction, once the connection has ended.

        A bound method stored on the instance is a reference cycle through it: until
        the cycle collector ran, a closed connection and the last message it read
        would stay in memory. Without them, reference counting frees both at once;
        `receive()` and `send()` go on working through the class's methods.
        """
        shortcuts = self.__dict__
        for name in ("receive", "send"):
            bound = shortcuts.get(name)
            # Only the shortcut bound here: a value the user stored instead stays.
            if getattr(bound, "__self__", None) is self:
                del shortcuts[name]

    def __repr__(self) -> str:
        return (
            f"<WebSocket {self.scope.get('path', '')!r} client={self.client_state.name} "
            f"application={self.application_state.name}>"
        )

    @property
    def max_message_size(self) -> int | None:
        """The largest message accepted from the client, in bytes; `None`: no limit."""
        return self._max_message_size

    @max_message_size.setter
    def max_message_size(self, value: int | None) -> None:
        check_size_limit("max_message_size", value)
        self._set_size_limit(value)

    def _set_size_limit(self, limit: int | None) -> None:
        self._max_message_size = limit
        # What the hot path lets through unmeasured: text of at most limit // 4
        # characters (UTF-8 takes up to 4 bytes a character), binary of at most limit.
        # Larger messages take the slow path, which measures them against the limit.
        self._fast_text_limit = _UNMEASURED if limit is None else min(limit // 4, _UNMEASURED)
        self._fast_bytes_limit = _UNMEASURED if limit is None else min(limit, _UNMEASURED)

    @property
    def receive_type(self) -> MessageType:
        """What `receive()` returns: `"text"`, `"bytes"`, `"json"` or `"event"`."""
        return self._receive_type

    @property
    def send_type(self) -> MessageType:
        """What `send()` takes: `"text"`, `"bytes"`, `"json"` or `"event"`."""
        return self._send_type

    # Connection information.

    @property
    def subprotocols(self) -> list[str]:
        """The subprotocols the client offered, in its order of preference."""
        return list(self.scope.get("subprotocols") or ())

    @property
    def client_state(self) -> WebSocketState:
        """The client side: CONNECTING, CONNECTED or DISCONNECTED."""
        return self._core.client_state

    @property
    def application_state(self) -> WebSocketState:
        """The application side: CONNECTING, CONNECTED, RESPONSE or DISCONNECTED."""
        return self._core.application_state

    # Handshake.

    async def accept(
        self, subprotocol: str | None = None, headers: Iterable[tuple[bytes, bytes]] | None = None
    ) -> None:
        """Accept the handshake, receiving the client's `websocket.connect` first if needed.

        Parameters:
            subprotocol: one of `subprotocols`, to tell the client which was chosen.
            headers: extra response headers, as `(bytes, bytes)` pairs.

        Raises:
            ValueError: the client did not offer `subprotocol`.
            WebSocketStateError: the handshake was already accepted or refused.
            WebSocketDisconnect: the client left during the handshake.
        """
        # Always a headers list, as Starlette sends: some servers expect the key.
        message: Message = {
            "type": ACCEPT,
            "subprotocol": subprotocol,
            "headers": []
            if headers is None
            else [
                (name.lower(), value) if isinstance(name, bytes) else (name, value)
                for name, value in headers
            ],
        }
        if self._accepting:
            await self._accept_done()  # another task's lazy accept goes first
        await self._send_accept(message)

    async def _send_accept(self, message: Message) -> None:
        """Send a `websocket.accept`, receiving the client's `websocket.connect` first."""
        subprotocol = message.get("subprotocol")
        if subprotocol is not None and subprotocol not in self.subprotocols:
            raise ValueError(
                f"subprotocol {subprotocol!r} was not offered by the client; "
                f"it offered {self.subprotocols!r}"
            )
        if self._core.client_state is CONNECTING:
            if self._core.application_state is not CONNECTING:
                raise self._core.refusal(ACCEPT)
            event = await self._receive()
            self._core.receive(event)
        await self._forward(message)

    async def _accept_now(self) -> None:
        # Only reached while the lazy auto-accept is still pending. Two tasks may get
        # here at once (a sender and a receiver): one accepts, the other waits for it.
        if self._accepting:
            while self._accepting:
                await self._accept_done()
            if self._core.application_state is not CONNECTING:
                return  # the other task accepted (or closed); else it was cancelled: go on
        self._accepting = True  # an event only if another task comes to wait
        try:
            await self._send_accept({"type": ACCEPT, "subprotocol": None, "headers": []})
        finally:
            accepting = self._accepting
            self._accepting = False
            if isinstance(accepting, anyio.Event):
                accepting.set()

    async def _accept_done(self) -> None:
        """Wait for the lazy accept another task has under way."""
        accepting = self._accepting
        if not isinstance(accepting, anyio.Event):
            self._accepting = accepting = anyio.Event()
        await accepting.wait()

    async def reject(self, response: Response | None = None) -> None:
        """Refuse the connection.

        While the handshake is pending: without `response`, close it so that the server
        answers HTTP 403; with a Starlette `Response`, send it as a denial response
        (falling back to the plain 403, with a warning in the log, when the server lacks
        the `websocket.http.response` extension). After accept: close with 1008
        (policy violation).

        Raises:
            WebSocketStateError: the connection is already closed.
            WebSocketDisconnect: the server reported the connection broken (1006).
        """
        core = self._core
        if core.application_state is CONNECTING:
            if response is not None:
                if core.denial_response:
                    await self.send_denial_response(response)
                    return
                logger.warning(
                    "the server does not support WebSocket denial responses; "
                    "rejecting %r with a plain HTTP 403 instead",
                    self.scope.get("path", ""),
                )
            await self._forward({"type": CLOSE, "code": 403, "reason": ""})
            return
        if response is not None and core.application_state is CONNECTED:
            logger.warning(
                "reject(response) after accept cannot send an HTTP response; closing with 1008"
            )
        await self._forward({"type": CLOSE, "code": int(CloseCode.POLICY_VIOLATION), "reason": ""})

    async def send_denial_response(self, response: Response) -> None:
        """Answer the pending handshake with an HTTP `response` instead of accepting it.

        Raises:
            DenialResponseUnsupported: the server lacks the `websocket.http.response`
                extension; use `reject()` for a plain 403.
            WebSocketStateError: the handshake is no longer pending.
            WebSocketDisconnect: the server reported the connection broken (1006).
        """
        if not self._core.denial_response:
            raise DenialResponseUnsupported(
                "this server does not support the ASGI websocket.http.response extension: "
                "use reject() without a response for a plain HTTP 403"
            )
        if self._core.application_state is not CONNECTING:
            raise self._core.refusal("websocket.http.response.start")
        await response(self.scope, self._receive, self._forward)

    # Closing.

    def _closes_handshake(self) -> bool:
        # A close now would refuse the handshake rather than end an open connection.
        return self._core.application_state is CONNECTING and not self._accept_pending

    async def close(self, code: int = CloseCode.NORMAL_CLOSURE, reason: str | None = None) -> None:
        """Close the connection with `code` and `reason`.

        A pending auto-accept happens first, so the client sees the code. Once the
        client has disconnected, the close is recorded and nothing is sent.

        Raises:
            ValueError: an invalid close code, or a reason over 123 UTF-8 bytes
                (nothing is sent).
            WebSocketStateError: the application already closed the connection.
            WebSocketDisconnect: the server reported the connection broken (1006).
        """
        check_close(code, reason, handshake_pending=self._closes_handshake())
        await self._send_close(code, reason)

    async def _send_close(self, code: int, reason: str | None) -> None:
        """`close()` once the code and reason are checked."""
        if self._accept_pending:
            await self._accept_now()
        await self._forward({"type": CLOSE, "code": int(code), "reason": reason or ""})

    async def ensure_closed(
        self, code: int = CloseCode.NORMAL_CLOSURE, reason: str | None = None
    ) -> None:
        """Close the connection unless either side already has; never raises for that.

        A denial response under way is finished with an empty body.

        Raises:
            ValueError: an invalid close code or reason.
        """
        core = self._core
        check_close(code, reason, handshake_pending=self._closes_handshake())
        if core.application_state is DISCONNECTED or core.client_state is DISCONNECTED:
            return
        try:
            if core.application_state is RESPONSE:
                await self._forward({"type": RESPONSE_BODY, "body": b"", "more_body": False})
            else:
                await self._send_close(code, reason)
        except WebSocketDisconnect:
            pass  # the client left meanwhile: the connection is closed either way

    # Receiving.
    #
    # The hot path: while both sides are connected (`core.open`) and no timeout is
    # asked, a typed receive awaits the server itself and returns a plain message of
    # its kind at once. The state core holds such a message legal and changes nothing
    # for it; anything else (a disconnect, the other kind, a malformed message, one
    # possibly over the limit) goes to `_judge()`, through the core, as before.

    async def _next_message(self, data: bool, timeout: float | None) -> Message:
        """The next message from the server, judged by the core (see `_judge`).

        `data` marks a text, bytes or JSON receive: a disconnect then raises.
        """
        if timeout is not None:
            check_seconds("timeout", timeout)
        if self._accept_pending:
            await self._accept_now()
        core = self._core
        try:
            core.check_receive(data=data)
        except WebSocketStateError:
            if not core.lost or self._loss_told:
                raise
            message = self._after_loss()
        else:
            self._receiving += 1
            try:
                if timeout is None:
                    message = await self._receive()
                else:
                    # Cancelling the server's receive() loses nothing: the message stays
                    # queued in uvicorn and in Starlette's TestClient.
                    with anyio.fail_after(timeout):
                        message = await self._receive()
            finally:
                self._receiving -= 1
        return await self._judge(message, data)

    async def _judge(self, message: Message, data: bool) -> Message:
        """Have the core validate a message the server delivered; raise for a disconnect
        (with `data`) and for a message over `max_message_size`."""
        self._core.receive(message)
        if message["type"] == DISCONNECT:
            self._release()
            self._disconnect_known()
            if data:
                raise self._client_gone()
        limit = self._max_message_size
        if limit is not None and message["type"] == RECEIVE:
            size = _oversize(message, limit)
            if size:
                await self._refuse_message(MessageTooBig(size, limit))
        return message

    def _after_loss(self) -> Message:
        """What a receive gets once a send found the connection broken: the client's
        messages read meanwhile, then its disconnect, once."""
        if self._unread:
            return self._unread.popleft()
        self._loss_told = True
        core = self._core
        return {"type": DISCONNECT, "code": core.disconnect_code, "reason": core.disconnect_reason}

    async def _refuse_message(self, error: MessageTooBig) -> None:
        """Close with 1009 for a message over the limit, and raise `error`."""
        error.source = weakref.ref(self)  # the application's own close: see _ending_of
        await self.ensure_closed(CloseCode.MESSAGE_TOO_BIG, error.reason)  # unless closing
        self._log_close(str(error))
        try:
            raise error
        finally:
            del error  # this frame, in the error's traceback, must not hold it: a cycle

    async def receive_event(self, *, timeout: float | None = None) -> Message:
        """Receive a raw ASGI event, validated by the state core.

        Returns `websocket.disconnect` events rather than raising.

        Parameters:
            timeout: seconds to wait at most; `None` waits as long as it takes.

        Raises:
            WebSocketStateError: nothing can be received now (before accept with
                `auto_accept=False`, or after the client disconnected).
            TimeoutError: no event came within `timeout` (the connection stays usable).
            MessageTooBig: a message over `max_message_size` (closed with 1009).
        """
        return await self._next_message(False, timeout)

    async def receive_text(self, *, timeout: float | None = None) -> str:
        """Receive a text message.

        Parameters:
            timeout: seconds to wait at most; `None` waits as long as it takes.

        Raises:
            MessageTypeError: the client sent a binary frame.
            WebSocketDisconnect: the client closed the connection.
            TimeoutError: no message came within `timeout` (the connection stays usable).
            MessageTooBig: a message over `max_message_size` (closed with 1009).
        """
        if timeout is None and self._core.open:
            self._receiving += 1
            try:
                message = await self._receive()
            finally:
                self._receiving -= 1
            text: str | None = message.get("text")
            if (
                text.__class__ is str
                and len(text) <= self._fast_text_limit
                and message.get("type") == RECEIVE
                and message.get("bytes") is None
            ):
                return text
            return await self._text_after(message)
        return self._text_of(await self._next_message(True, timeout))

    async def _text_after(self, message: Message) -> str:
        """`receive_text()` off the hot path, for a message already received."""
        return self._text_of(await self._judge(message, True))

    def _text_of(self, message: Message) -> str:
        text: str | None = message.get("text")
        if text is None:
            raise self._bad_input(MessageTypeError("text", "bytes", "receive_text()"))
        return text

    async def receive_bytes(self, *, timeout: float | None = None) -> bytes:
        """Receive a binary message.

        Parameters:
            timeout: seconds to wait at most; `None` waits as long as it takes.

        Raises:
            MessageTypeError: the client sent a text frame.
            WebSocketDisconnect: the client closed the connection.
            TimeoutError: no message came within `timeout` (the connection stays usable).
            MessageTooBig: a message over `max_message_size` (closed with 1009).
        """
        if timeout is None and self._core.open:
            self._receiving += 1
            try:
                message = await self._receive()
            finally:
                self._receiving -= 1
            data = message.get("bytes")
            if (
                data.__class__ is bytes
                and len(data) <= self._fast_bytes_limit
                and message.get("type") == RECEIVE
                and message.get("text") is None
            ):
                return data
            return self._bytes_of(await self._judge(message, True))
        return self._bytes_of(await self._next_message(True, timeout))

    def _bytes_of(self, message: Message) -> bytes:
        data: bytes | None = message.get("bytes")
        if data is None:
            raise self._bad_input(MessageTypeError("bytes", "text", "receive_bytes()"))
        return bytes(data)

    async def receive_json(
        self, mode: JSONMode | None = None, *, timeout: float | None = None
    ) -> Any:
        """Receive a message and parse it as JSON.

        Parameters:
            mode: `None` (the default) takes JSON in text frames and in UTF-8 binary
                frames alike; `"text"` expects text frames, `"binary"` binary frames.
            timeout: seconds to wait at most; `None` waits as long as it takes.

        Raises:
            InvalidJSON: the message is not valid JSON (or not UTF-8); a
                `json.JSONDecodeError`.
            MessageTypeError: the frame is not of the kind `mode` expects.
            WebSocketDisconnect: the client closed the connection.
            TimeoutError: no message came within `timeout` (the connection stays usable).
            MessageTooBig: a message over `max_message_size` (closed with 1009).
        """
        if mode is None:
            if timeout is None and self._core.open:
                # receive_text()'s hot path, for text frames.
                self._receiving += 1
                try:
                    message = await self._receive()
                finally:
                    self._receiving -= 1
                text = message.get("text")
                if (
                    text.__class__ is str
                    and len(text) <= self._fast_text_limit
                    and message.get("type") == RECEIVE
                    and message.get("bytes") is None
                ):
                    return self._parse_json(text)
                message = await self._judge(message, True)
            else:
                message = await self._next_message(True, timeout)
            text = message.get("text")
            return self._parse_json(self._utf8_of(message["bytes"]) if text is None else text)
        if mode == "text":
            try:
                text = await self.receive_text(timeout=timeout)
            except MessageTypeError:  # named after this call, for the hint it gives
                raise self._bad_input(
                    MessageTypeError("text", "bytes", "receive_json(mode='text')")
                ) from None
            return self._parse_json(text)
        if mode != "binary":
            raise ValueError(f"unknown JSON mode {mode!r}: use None, 'text' or 'binary'")
        data = (await self._next_message(True, timeout)).get("bytes")
        if data is None:
            raise self._bad_input(MessageTypeError("bytes", "text", "receive_json(mode='binary')"))
        return self._parse_json(self._utf8_of(data))

    def _utf8_of(self, data: bytes) -> str:
        """The text of a binary frame carrying JSON; `InvalidJSON` if it is not UTF-8."""
        try:
            return bytes(data).decode("utf-8")
        except UnicodeDecodeError as error:
            raise self._bad_input(
                InvalidJSON(
                    f"message is not valid UTF-8 ({error.reason})",
                    bytes(data).decode("utf-8", "replace"),
                    error.start,
                )
            ) from None

    def _parse_json(self, text: str) -> Any:
        try:
            return _json.loads(text)
        except json.JSONDecodeError as error:
            raise self._bad_input(InvalidJSON(error.msg, error.doc, error.pos)) from None
        except RecursionError:  # "[[[[..." from a client: bad input, not a server bug
            raise self._bad_input(InvalidJSON("JSON nested too deeply", "", 0)) from None
        except ValueError as error:  # an integer over Python's 4,300-digit limit
            raise self._bad_input(InvalidJSON(f"JSON {error}", "", 0)) from None

    def _bad_input(self, error: InvalidMessage) -> InvalidMessage:
        """Mark `error` as raised by this connection over the client's data; return it.

        Weakly: a connection keeps no reference to the error (nor its traceback).
        """
        error.source = weakref.ref(self)
        return error

    # How a connection ends for an exception: the one rule, for `async with` and views.

    def _ending_of(self, error: BaseException) -> Ending:
        """How this connection ends for `error` (an exception group: for its members).

        An application error anywhere in a group outweighs a close the client's data
        calls for, which outweighs the client's departure.
        """
        endings = [self._ending_of_one(leaf) for leaf in exception_leaves(error)]
        return max(endings, key=lambda ending: _WEIGHT[ending.kind])

    def _ending_of_one(self, error: BaseException) -> Ending:
        core = self._core
        if isinstance(error, MessageTooBig):
            if error.source() is self:
                return Ending("closed", error.code, error.reason, str(error))
        elif isinstance(error, WebSocketDisconnect):
            # A disconnect raised by another WebSocket (a chat peer that left) is not
            # this connection's: it is an error of the application's like any other.
            if core.client_state is DISCONNECTED and error.code == core.disconnect_code:
                kind: EndingKind = "departure" if core.close_code is None else "closed"
                return Ending(kind, error.code, error.reason or "")
        elif isinstance(error, InvalidMessage):
            if error.source() is self:
                detail = f"the client sent bad data: {error}"
                return Ending("close", error.close_code, error.reason, detail)
        elif isinstance(error, WebSocketException):
            # As in Starlette: before anything was accepted, refuse the handshake.
            if core.application_state is CONNECTING:
                detail = f"WebSocketException({error.code}) before accept"
                return Ending("refuse", REJECT_CODE, "", detail)
            try:  # a code or reason that cannot be sent makes it the view's error
                check_close(error.code, error.reason, handshake_pending=False)
            except (TypeError, ValueError):
                return _BUG
            return Ending("close", error.code, error.reason or "", "WebSocketException")
        return _BUG

    def _ends_quietly(self, disconnect: WebSocketDisconnect | Ending) -> bool:
        """Whether this connection's own `disconnect` is a normal end, to silence.

        It is when its code is caught, or when the application closed: the client's
        disconnect then only completes the closing handshake the application started,
        usually echoing the application's own code.
        """
        return (
            disconnect.code in self.caught_close_codes
            or self._core.application_state is DISCONNECTED
        )

    async def _end(self, ending: Ending) -> None:
        """Close as a "close" or "refuse" `ending` says, and log what the client got."""
        if ending.kind == "refuse":
            await self.reject()
        else:
            await self.ensure_closed(ending.code, ending.reason)
        self._log_close(ending.detail)

    def _log_close(self, detail: str) -> None:
        logger.info("%r: %s: %s", self.scope.get("path", ""), self._how_it_ended(), detail)

    def _how_it_ended(self) -> str:
        """What the client received, in words: the close, the refusal, or nothing."""
        core = self._core
        if core.close_code is not None:
            reason = f" {core.close_reason!r}" if core.close_reason else ""
            return f"closed with {close_code_name(core.close_code)}{reason}"
        if core.client_state is DISCONNECTED:
            code = core.disconnect_code or CloseCode.NO_STATUS_RCVD
            return f"not closed: the client had left with {close_code_name(code)}"
        if core.application_state is DISCONNECTED:
            return "refused the handshake"
        if core.application_state is RESPONSE:
            return "sent a denial response"
        return "still open"

    # Sending.
    #
    # The hot path: while both sides are connected (`core.open`), a typed send hands
    # the message it built to the server at once; the state core holds it legal.
    # Otherwise `_before_send()` does a pending accept and asks the core first.

    async def _before_send(self) -> None:
        """Ready a typed send off the hot path: a pending accept, then the core's verdict."""
        if self._accept_pending:
            await self._accept_now()
        if not self._core.send_data():
            raise self._client_gone()

    async def _send_failed(self, error: OSError | UnicodeEncodeError) -> Exception:
        """The error to raise after the server's send raised `error`."""
        if isinstance(error, UnicodeEncodeError):  # a lone surrogate: the server cannot encode it
            invalid = _InvalidUnicode(f"text is not valid Unicode and cannot be sent: {error}")
            invalid.__cause__ = error
            return invalid
        if isinstance(error, TimeoutError):
            return error  # an OSError too, but a slow send, not a broken connection
        disconnect = await self._connection_broken()
        disconnect.__suppress_context__ = True  # the server's own error tells nothing more
        return disconnect

    async def _forward(self, message: Message) -> None:
        """Send `message` after the core validated it; map a broken connection to 1006."""
        core = self._core
        forward = core.send(message)
        if core.application_state is not CONNECTING:
            self._accept_pending = False
            if core.application_state is DISCONNECTED:
                self._release()
        if not forward:
            if message["type"] in (SEND, ACCEPT):
                raise self._client_gone()
            return  # a close or denial response for a client that is gone: done
        try:
            await self._send(message)
        except TimeoutError:
            raise  # an OSError too, but a slow send, not a broken connection
        except OSError:
            raise await self._connection_broken() from None

    def _client_gone(self) -> WebSocketDisconnect:
        """The error for a client the core knows has disconnected, with its code."""
        code = self._core.disconnect_code
        # The core records a code with every disconnect; 1006 only satisfies the type.
        return WebSocketDisconnect(
            CloseCode.ABNORMAL_CLOSURE if code is None else code, self._core.disconnect_reason
        )

    async def _connection_broken(self) -> WebSocketDisconnect:
        """The disconnect to raise after the server's send raised `OSError`.

        Servers queue the client's `websocket.disconnect` before they fail sends, so
        its code is read (briefly, bounded by `DISCONNECT_GRACE`) rather than guessed:
        a client that closed normally gives its 1000, not 1006. A receive already
        waiting gets it, and this waits for that; otherwise this receives it, keeping
        the client's unread messages for later receives. With none in time, the
        connection is recorded as lost with 1006 (abnormal closure).
        """
        core = self._core
        if core.client_state is CONNECTED:
            with anyio.move_on_after(DISCONNECT_GRACE):
                if self._receiving:
                    # A receive (or another failed send) is reading the disconnect.
                    if self._disconnect_seen is None:
                        self._disconnect_seen = anyio.Event()
                    await self._disconnect_seen.wait()
                else:
                    await self._find_disconnect()
        core.connection_lost(CloseCode.ABNORMAL_CLOSURE)  # does nothing once the disconnect came
        self._release()
        self._disconnect_known()
        return self._client_gone()

    async def _find_disconnect(self) -> None:
        """Receive until the server's `websocket.disconnect`, keeping the client's
        messages on the way for later receives."""
        self._receiving += 1
        try:
            for _ in range(DISCONNECT_SEARCH):
                try:
                    message = await self._receive()
                except Exception:  # the server's receive fails too: 1006 it is
                    return
                if message.get("type") == RECEIVE:
                    if self._unread is None:
                        self._unread = deque()
                    self._unread.append(message)
                elif message.get("type") == DISCONNECT:
                    with contextlib.suppress(TypeError):  # a malformed code: 1006 instead
                        self._core.disconnect_found_by_send(message)
                    return
        finally:
            self._receiving -= 1

    def _disconnect_known(self) -> None:
        """Wake the failed sends waiting for the client's disconnect."""
        if self._disconnect_seen is not None:
            self._disconnect_seen.set()

    async def send_event(self, event: Message) -> None:
        """Send a raw ASGI event, validated by the state core.

        A pending auto-accept happens first for `websocket.send`; handshake events
        (`websocket.accept`, `websocket.close`, denial responses) are sent as given.

        Raises:
            WebSocketStateError: the event is not legal in the current state.
            ValueError: the event is malformed.
            TypeError: the event is not a mapping.
            WebSocketDisconnect: the client has gone.
        """
        if not isinstance(event, Mapping):
            raise TypeError(f"send_event() takes an ASGI event dict, got {type(event).__name__}")
        event_type = event.get("type")
        if event_type == ACCEPT:
            if self._accepting:
                await self._accept_done()  # another task's lazy accept goes first
            await self._send_accept(event)
            return
        if self._accept_pending and event_type == SEND:
            await self._accept_now()
        await self._forward(event)

    async def send_text(self, data: str) -> None:
        """Send a text message.

        Raises:
            TypeError: `data` is not a `str`, or holds a lone surrogate (not valid
                Unicode; nothing is sent).
            WebSocketDisconnect: the client has gone.
        """
        if not isinstance(data, str):
            raise TypeError(
                f"send_text() takes a str, got {type(data).__name__}"
                + ("; use send_bytes() for bytes" if isinstance(data, bytes) else "")
            )
        if not self._core.open:
            await self._before_send()
        try:
            await self._send({"type": SEND, "text": data})
        except (OSError, UnicodeEncodeError) as error:
            raise await self._send_failed(error)  # noqa: B904 - it sets the cause itself

    async def send_bytes(self, data: bytes) -> None:
        """Send a binary message.

        Raises:
            TypeError: `data` is not bytes-like.
            WebSocketDisconnect: the client has gone.
        """
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(
                f"send_bytes() takes bytes, got {type(data).__name__}"
                + ("; use send_text() for str" if isinstance(data, str) else "")
            )
        if data.__class__ is not bytes:
            data = bytes(data)
        if not self._core.open:
            await self._before_send()
        try:
            await self._send({"type": SEND, "bytes": data})
        except OSError as error:
            raise await self._send_failed(error)  # noqa: B904 - it sets the cause itself

    async def send_json(self, data: Any, mode: JSONMode = "text") -> None:
        """Serialise `data` to JSON and send it.

        Parameters:
            mode: `"text"` for a text frame, `"binary"` for a UTF-8 binary frame.

        Raises:
            TypeError: `data` cannot be serialised (nothing is sent; the connection
                stays usable).
            WebSocketDisconnect: the client has gone.
        """
        # Lone surrogates (say, echoed from a client's "\ud800") are sent \u-escaped,
        # which JSON allows; other text is sent as it is.
        if mode == "text":
            message: Message = {"type": SEND, "text": _json.dumps(data)}
        elif mode == "binary":
            message = {"type": SEND, "bytes": _json.dumps_bytes(data)}
        else:
            raise ValueError(f"unknown JSON mode {mode!r}: use 'text' or 'binary'")
        if not self._core.open:
            await self._before_send()
        try:
            await self._send(message)
        except OSError as error:
            raise await self._send_failed(error)  # noqa: B904 - it sets the cause itself

    # Lifecycle helpers.

    async def __aenter__(self: _WebSocket) -> _WebSocket:
        if self._core.application_state is CONNECTING:
            await self._accept_now()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool:
        if exc is None:
            await self.ensure_closed(CloseCode.NORMAL_CLOSURE)
            return False
        if not isinstance(exc, Exception):
            return False  # a cancellation: not an end of this connection's
        ending = self._ending_of(exc)
        if ending.kind == "departure" or ending.kind == "closed":
            return self._ends_quietly(ending)
        if ending.kind == "bug":
            await self.ensure_closed(CloseCode.INTERNAL_ERROR, ending.reason)
            return False
        await self._end(ending)  # the client's bad data, or Starlette's WebSocketException
        return True

    def iter_text(self) -> AsyncIterator[str]:
        """Yield text messages until the client disconnects, as Starlette's `iter_text()`.

        A disconnect whose code is in `caught_close_codes` ends the iteration; any
        other is raised, as by `async for`.
        """
        return self._iterate(self.receive_text)

    def iter_bytes(self) -> AsyncIterator[bytes]:
        """Yield binary messages until the client disconnects; see `iter_text()`."""
        return self._iterate(self.receive_bytes)

    def iter_json(self, mode: JSONMode | None = None) -> AsyncIterator[Any]:
        """Yield messages parsed as JSON until the client disconnects; see `iter_text()`."""
        return self._iterate(functools.partial(self.receive_json, mode))

    async def _iterate(self, receive: Callable[[], Awaitable[_Message]]) -> AsyncIterator[_Message]:
        while True:
            try:
                message = await receive()
            except WebSocketDisconnect as disconnect:
                if self._ends_quietly(disconnect):
                    return
                raise
            yield message

    def __aiter__(self: _WebSocket) -> _WebSocket:
        return self

    async def __anext__(self) -> Any:
        # receive_text()'s hot path again, for the default receive type: a coroutine
        # layer less per message in the commonest loop (about 15% of its cost).
        if self._inline_text and self._core.open:
            self._receiving += 1
            try:
                message = await self._receive()
            finally:
                self._receiving -= 1
            text = message.get("text")
            if (
                text.__class__ is str
                and len(text) <= self._fast_text_limit
                and message.get("type") == RECEIVE
                and message.get("bytes") is None
            ):
                return text
            received: Awaitable[Any] = self._text_after(message)
        else:
            received = self.receive()
        try:
            return await received
        except WebSocketDisconnect as disconnect:
            if self._ends_quietly(disconnect):
                raise StopAsyncIteration from None
            raise
        except WebSocketStateError:
            # Event mode yields the websocket.disconnect event itself, then ends.
            if self._core.client_state is DISCONNECTED and self._receive_type == "event":
                raise StopAsyncIteration from None
            raise


# The interface of the view lifecycle (`_lifecycle.py`, `views.py`) to a connection: how
# it ends for an exception, whether that end is quiet, what the client got. Internal.


def ending_of(ws: WebSocket, error: BaseException) -> Ending:
    """How `ws` ends for `error` (see `Ending`): the rule `async with ws` follows too."""
    return ws._ending_of(error)


def ends_quietly(ws: WebSocket, ending: Ending) -> bool:
    """Whether a departure `ending` is a normal end for `ws` (its code is caught, or the
    application had closed)."""
    return ws._ends_quietly(ending)


def how_it_ended(ws: WebSocket) -> str:
    """What the client of `ws` received, in words, for the log."""
    return ws._how_it_ended()


def log_close(ws: WebSocket, detail: str) -> None:
    """Log, at INFO, what the client of `ws` received, and why (`detail`)."""
    ws._log_close(detail)


def gone_code(ws: WebSocket) -> int:
    """The close code of a client known to have left `ws`."""
    return ws._client_gone().code
