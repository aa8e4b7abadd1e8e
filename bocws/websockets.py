"""`WebSocket`: Bocadillo's high-level WebSocket API over any ASGI server.

The object moves messages between the ASGI callables and the user, as the kinds it
was built with (`_codecs.py`) say; its base, `Connection` (`_connection.py`), has
every message, in both directions, judged by the state core (`_state.py`).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from types import TracebackType
from typing import Any, Literal, TypeVar, cast

from starlette.types import Message, Receive, Scope, Send
from starlette.websockets import WebSocketDisconnect

from . import _json
from ._codecs import BYTES, EVENT, JSON, TEXT, Codec, MessageKind, codec_for, payload_of
from ._codes import CloseCode
from ._connection import Connection, logger
from ._exceptions import InvalidMessage, MessageTypeError, WebSocketStateError
from ._invalid import OnInvalid, invalid_reply
from ._metrics import size_of, utf8_size
from ._options import check_codec, check_on_invalid
from ._state import CONNECTING, DISCONNECTED, RECEIVE, SEND, ConnectionState
from ._typed import Library, TypedJSON

__all__ = ["WebSocket"]

_WebSocket = TypeVar("_WebSocket", bound="WebSocket")
_Message = TypeVar("_Message")

JSONMode = Literal["text", "binary"]


class WebSocket(Connection):
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
        value_type: the kind of messages in both directions: `"text"`, `"bytes"`,
            `"json"`, `"event"`, a `Codec`, or a type: JSON messages read and written
            as that type by pydantic (a model, a dataclass, `list[int]` ...) or by
            msgspec (a `msgspec.Struct`). Overrides `receive_type` and `send_type`.
        receive_type: the kind `receive()` returns. Defaults to `"text"`.
        send_type: the kind `send()` takes. Defaults to `"text"`.
        caught_close_codes: close codes of `WebSocketDisconnect` silenced by
            `async with` and `async for`. `None` means `(1000, 1001)`; the builtin
            `all` means every code; `()` means none.
        max_message_size: the largest message accepted from the client, in bytes
            (UTF-8 bytes for text). A larger one closes the connection with 1009 and
            raises `MessageTooBig`. `None` (the default) leaves the limit to the
            server (uvicorn's `--ws-max-size`, 16 MiB by default).
        codec: the library that reads and writes a type given as a kind: `"pydantic"`
            or `"msgspec"`; `None` (the default) takes msgspec for a `msgspec.Struct`
            (or a type holding one) and pydantic for anything else.
        on_invalid: what `receive()`, `async for` and class views do with a message
            that is not of `receive_type` (a frame of the other kind, invalid JSON, a
            typed message that does not validate): `"close"` (the default) closes
            with 1007 (1003 for the frame kind) and a reason naming the first bad
            field, and raises the `InvalidMessage` (`async for` closes at once;
            `receive()`'s error closes as it leaves the view); `"reply"` sends the client
            `{"type": "error", "error": "invalid message", "detail": [...]}` and skips
            the message; `"raise"` raises the `InvalidMessage` and leaves the
            connection open; a callable `(ws, error)`, awaited, skips the message
            when it returns. `receive_text()`, `receive_json()` ... always raise.

    Raises:
        ValueError: for an unknown message kind or a scope that is not a WebSocket's.

    Example:
        >>> async def app(scope, receive, send):
        ...     ws = WebSocket(scope, receive, send, value_type="json")
        ...     async with ws:
        ...         async for message in ws:
        ...             await ws.send({"echo": message})
    """

    def __init__(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        *,
        auto_accept: bool = True,
        value_type: MessageKind | None = None,
        receive_type: MessageKind | None = None,
        send_type: MessageKind | None = None,
        caught_close_codes: Iterable[int] | Callable[..., Any] | None = None,
        max_message_size: int | None = None,
        codec: Library | None = None,
        on_invalid: OnInvalid = "close",
    ) -> None:
        super().__init__(scope, (receive, send), auto_accept, caught_close_codes, max_message_size)
        if codec is not None:
            check_codec(codec)
        self._receive_codec = self._send_codec = TEXT
        if value_type is not None or receive_type is not None or send_type is not None:
            value_codec = codec_for("value_type", value_type or "text", codec)
            self._receive_codec = codec_for("receive_type", receive_type or "text", codec)
            self._send_codec = codec_for("send_type", send_type or "text", codec)
            if value_type is not None:
                receive_type = send_type = value_type
                self._receive_codec = self._send_codec = value_codec
        self._receive_type = receive_type or "text"
        self._send_type = send_type or "text"
        if on_invalid != "close":
            self._on_invalid = check_on_invalid(on_invalid)
        # What receive() and `async for` call for one message: a plain function (a
        # bound method kept here would be a reference cycle).
        self._receive_next = self._receive_function(type(self))
        # A subclass's receive() decides what `async for` yields.
        self._own_receive = type(self).receive is not WebSocket.receive
        # The codec whose receive `async for` inlines (see __anext__); None when a
        # subclass overrides receive() or that receive, which then decide, and for the
        # event kind.
        self._inline: Codec | None = None
        if (
            not self._own_receive
            and self._receive_next is self._receive_function(WebSocket)
            and self._receive_codec is not EVENT
        ):
            self._inline = self._receive_codec
        # The shortcuts, bound once here so that receive()/send() cost no lookup per
        # message (unless a subclass overrides them); dropped once the connection ends,
        # which leaves no reference cycle through the instance (see _release). Assigned,
        # not written into self.__dict__: that would give the instance a dict of its
        # own, on which CPython 3.11 reads every attribute of the hot paths slower (a
        # quarter of `async for`'s cost).
        if not self._own_receive:
            # receive() itself raises for an invalid message under "close" and "raise":
            # then it is the kind's own receive, without the layer that skips messages.
            skips = self._on_invalid != "close" and self._on_invalid != "raise"
            shortcut = self._receive_value if skips else self._receive_next.__get__(self)
            self.receive = shortcut  # type: ignore[method-assign]
        if type(self).send is WebSocket.send:
            self.send = self._sender()  # type: ignore[method-assign,assignment]

    async def receive(self, *, timeout: float | None = None) -> Any:
        """Receive a message of `receive_type`: `receive_text()`, `receive_bytes()`,
        `receive_json()`, `receive_event()`, or the value a `Codec` or a type decodes.

        A message that is not of that kind gets what `on_invalid` says: by default,
        the `InvalidMessage` is raised, and closes the connection (1007, or 1003 for a
        frame of the other kind) if it leaves the view. `timeout` applies to each
        message awaited.
        """
        return await self._receive_value(timeout=timeout)

    async def _receive_value(self, *, timeout: float | None = None) -> Any:
        # `receive()`, bound to the instance by __init__ (a lookup less per message).
        while True:
            try:
                return await self._receive_next(self, timeout=timeout)
            except InvalidMessage as error:
                await self._invalid(error)  # raises, or skips the message

    # Invalid messages: see `_invalid.py`.
    _on_invalid: OnInvalid = "close"
    _invalid_logged = False

    async def _invalid(self, error: InvalidMessage, iterating: bool = False) -> None:
        """Do what `on_invalid` says for `error`, raised for a message the client sent
        (to `async for` if `iterating`): raise, or return to skip the message."""
        policy = self._on_invalid
        try:
            if error.source() is not self or policy == "raise":
                raise error  # not this connection's (a codec's own bug, say): as it is
            if policy == "close":
                if iterating:  # `async for` cannot go on: close now (logged as the view ends)
                    await self.ensure_closed(error.close_code, error.reason)
                raise error  # from receive(): closes as it leaves the view, if it does
            if not self._invalid_logged:  # once a connection: a client may send thousands
                self._invalid_logged = True
                logger.info(
                    "%r: invalid message from the client (%s); on_invalid=%r",
                    self.scope.get("path"),
                    error.reason,
                    policy,
                )
            if policy == "reply":
                await self.send_json(invalid_reply(error))
                return
            assert callable(policy)
            outcome = policy(self, error)
            if inspect.isawaitable(outcome):
                await outcome
        finally:
            del error  # this frame, in the error's traceback, must not hold it: a cycle

    async def send(self, data: Any) -> None:
        """Send a message of `send_type`: `send_text()`, `send_bytes()`, `send_json()`,
        `send_event()`, or a value a `Codec` or a type encodes."""
        await self._sender()(data)

    def _receive_function(self, cls: type[WebSocket]) -> Callable[..., Awaitable[Any]]:
        """What receives one message of `receive_type` in class `cls`, to call with the
        instance: the built-in kinds have receives of their own, with the hot path
        inlined."""
        codec = self._receive_codec
        if codec is TEXT:
            return cls.receive_text
        if codec is BYTES:
            return cls.receive_bytes
        if codec is JSON:
            return cls.receive_json
        if codec is EVENT:
            return cls.receive_event
        return cls._receive_decoded

    def _sender(self) -> Callable[[Any], Awaitable[None]]:
        send: Callable[[Any], Awaitable[None]] = getattr(self, _send_name(self._send_codec))
        return send

    @property
    def receive_type(self) -> MessageKind:
        """What `receive()` returns: `"text"`, `"bytes"`, `"json"`, `"event"`, or the
        `Codec` given."""
        return self._receive_type

    @property
    def send_type(self) -> MessageKind:
        """What `send()` takes: `"text"`, `"bytes"`, `"json"`, `"event"`, or the `Codec`
        given."""
        return self._send_type

    def _decode(self, codec: Codec, message: Message) -> Any:
        """The value `codec` decodes from a `websocket.receive` message; the client's
        bad data raises as this connection's (see `_bad_input`)."""
        try:
            return codec.decode(payload_of(message))
        except InvalidMessage as error:
            self._bad_input(error)
            raise

    async def _receive_decoded(self, *, timeout: float | None = None) -> Any:
        """Receive a message of a `Codec`'s kind (not one of the built-in ones), or of
        a type: the hot path of the built-in kinds, then the codec."""
        if timeout is None and self._core.open:
            self._receiving += 1
            try:
                message = await self._receive()
            finally:
                self._receiving -= 1
            if not self._is_plain(message):
                message = await self._judge(message, True)
        else:
            message = await self._next_message(True, timeout)
        return self._decode(self._receive_codec, message)

    def _is_plain(self, message: Message) -> bool:
        """Whether `message` is what the hot paths pass without the state core: a
        `websocket.receive` of one payload, which cannot be over the size limit (then
        counted, with metrics on)."""
        text = message.get("text")
        if text is not None:
            if (
                text.__class__ is not str
                or len(text) > self._fast_text_limit
                or message.get("bytes") is not None
            ):
                return False
            payload: str | bytes = text
        else:
            data = message.get("bytes")
            if data.__class__ is not bytes or len(data) > self._fast_bytes_limit:
                return False
            payload = data
        if message.get("type") != RECEIVE:
            return False
        tally = self._tally
        if tally is not None:
            tally.received += 1
            tally.received_bytes += size_of(payload)
        return True

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
                tally = self._tally
                if tally is not None:  # metrics on: count it (inlined, as the rest)
                    tally.received += 1
                    tally.received_bytes += len(text) if text.isascii() else utf8_size(text)
                return text
            return await self._text_after(message)
        decoded: str = self._decode(TEXT, await self._next_message(True, timeout))
        return decoded

    async def _text_after(self, message: Message) -> str:
        """`receive_text()` off the hot path, for a message already received."""
        text: str = self._decode(TEXT, await self._judge(message, True))
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
            data: bytes | None = message.get("bytes")
            if (
                data.__class__ is bytes
                and len(data) <= self._fast_bytes_limit
                and message.get("type") == RECEIVE
                and message.get("text") is None
            ):
                tally = self._tally
                if tally is not None:
                    tally.received += 1
                    tally.received_bytes += len(data)
                return data
            message = await self._judge(message, True)
        else:
            message = await self._next_message(True, timeout)
        decoded: bytes = self._decode(BYTES, message)
        return decoded

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
        if mode is not None and mode != "text" and mode != "binary":
            raise ValueError(f"unknown JSON mode {mode!r}: use None, 'text' or 'binary'")
        if (mode is None or mode == "text") and timeout is None and self._core.open:
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
                tally = self._tally
                if tally is not None:
                    tally.received += 1
                    tally.received_bytes += len(text) if text.isascii() else utf8_size(text)
                try:
                    return _json.loads(text)  # the JSON codec's decode(), inlined
                except (ValueError, RecursionError):
                    return self._decode(JSON, message)  # which says why, as InvalidJSON
            message = await self._judge(message, True)
        else:
            message = await self._next_message(True, timeout)
        if mode is not None:  # a frame of one kind only
            expected = "text" if mode == "text" else "bytes"
            received = "bytes" if message.get("text") is None else "text"
            if received != expected:
                call = f"receive_json(mode={mode!r})"
                raise self._bad_input(MessageTypeError(expected, received, call))
        return self._decode(JSON, message)

    async def send_text(self, data: str) -> None:
        """Send a text message.

        Raises:
            TypeError: `data` is not a `str`, or holds a lone surrogate (not valid
                Unicode; nothing is sent).
            WebSocketDisconnect: the client has gone.
        """
        if data.__class__ is not str:
            data = cast(str, TEXT.encode(data))  # raises for what is not a str
        if not self._core.open:
            await self._before_send()
        tally = self._tally
        if tally is not None:
            tally.sent += 1
            tally.sent_bytes += len(data) if data.isascii() else utf8_size(data)
        try:
            await self._send({"type": SEND, "text": data})
        except Exception as error:
            raise await self._send_failed(error)  # noqa: B904 - it sets the cause itself

    async def send_bytes(self, data: bytes) -> None:
        """Send a binary message.

        Raises:
            TypeError: `data` is not bytes-like.
            WebSocketDisconnect: the client has gone.
        """
        if data.__class__ is not bytes:
            data = cast(bytes, BYTES.encode(data))  # bytes-like data as bytes, or raises
        if not self._core.open:
            await self._before_send()
        tally = self._tally
        if tally is not None:
            tally.sent += 1
            tally.sent_bytes += len(data)
        try:
            await self._send({"type": SEND, "bytes": data})
        except Exception as error:
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
        payload: str | bytes
        if mode == "text":
            # The JSON codec's encode(), inlined.
            payload = _json.dumps(data)
            message: Message = {"type": SEND, "text": payload}
        elif mode == "binary":
            payload = _json.dumps_bytes(data)
            message = {"type": SEND, "bytes": payload}
        else:
            raise ValueError(f"unknown JSON mode {mode!r}: use 'text' or 'binary'")
        if not self._core.open:
            await self._before_send()
        tally = self._tally
        if tally is not None:
            tally.sent += 1
            tally.sent_bytes += len(payload) if payload.isascii() else size_of(payload)
        try:
            await self._send(message)
        except Exception as error:
            raise await self._send_failed(error)  # noqa: B904 - it sets the cause itself

    async def _send_encoded(self, value: Any) -> None:
        """Send `value` as a `Codec` (not one of the built-in ones) encodes it."""
        codec = self._send_codec
        payload = codec.encode(value)
        if payload.__class__ is str:
            message: Message = {"type": SEND, "text": payload}
        elif isinstance(payload, (bytes, bytearray, memoryview)):
            message = {"type": SEND, "bytes": bytes(payload)}
        else:
            raise _not_a_payload(codec, payload)
        # As send_text() and the others: the send here, not in a helper (a coroutine
        # layer less for each typed message).
        if not self._core.open:
            await self._before_send()
        tally = self._tally
        if tally is not None:
            tally.sent += 1
            tally.sent_bytes += size_of(payload)
        try:
            await self._send(message)
        except Exception as error:
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
        """Yield messages parsed as JSON until the client disconnects; see `iter_text()`.

        With a type as `receive_type`, and no `mode`, yield values of that type, as
        `async for` does (`on_invalid` applies)."""
        if mode is None and isinstance(self._receive_codec, TypedJSON):
            return self._iterate(self._receive_value)
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
        while True:  # until a message to yield: on_invalid may skip some
            try:
                try:
                    # The receive of the receive type, inlined: a coroutine layer less
                    # per message in the commonest loop (about 15% of its cost). A plain
                    # message passes as that receive passes it; any other goes through
                    # the core, as there.
                    codec = self._inline
                    if codec is not None and self._core.open:
                        self._receiving += 1
                        try:
                            message = await self._receive()
                        finally:
                            self._receiving -= 1
                        if codec is TEXT or codec is JSON:
                            text = message.get("text")
                            if (
                                text.__class__ is str
                                and len(text) <= self._fast_text_limit
                                and message.get("type") == RECEIVE
                                and message.get("bytes") is None
                            ):
                                tally = self._tally
                                if tally is not None:  # metrics on: count it (inlined, as the rest)
                                    tally.received += 1
                                    tally.received_bytes += (
                                        len(text) if text.isascii() else utf8_size(text)
                                    )
                                if codec is TEXT:
                                    return text
                                try:
                                    return _json.loads(text)  # the JSON codec's decode()
                                except (ValueError, RecursionError):
                                    return self._decode(JSON, message)  # says why: InvalidJSON
                        elif codec is BYTES:
                            data = message.get("bytes")
                            if (
                                data.__class__ is bytes
                                and len(data) <= self._fast_bytes_limit
                                and message.get("type") == RECEIVE
                                and message.get("text") is None
                            ):
                                tally = self._tally
                                if tally is not None:
                                    tally.received += 1
                                    tally.received_bytes += len(data)
                                return data
                        elif self._is_plain(message):  # a type's or a codec's
                            return self._decode(codec, message)
                        return self._decode(codec, await self._judge(message, True))
                    if self._own_receive:
                        return await self.receive()
                    return await self._receive_next(self)
                except InvalidMessage as error:
                    # What a reply raises (the client gone) goes to the handlers below.
                    await self._invalid(error, iterating=True)  # raises, or skips it
            except WebSocketDisconnect as disconnect:
                if self._ends_quietly(disconnect):
                    raise StopAsyncIteration from None
                raise
            except WebSocketStateError:
                # Event mode yields the websocket.disconnect event itself, then ends.
                if self._core.client_state is DISCONNECTED and self._receive_codec is EVENT:
                    raise StopAsyncIteration from None
                raise


# Sending one message to many sockets (`Broadcast.room()`): encoded once, then sent to
# each socket of the same codec as `send()` would send it.

#: What sends an encoded payload to a socket: `await send(ws, payload)`.
PayloadSender = Callable[[WebSocket, Any], Awaitable[None]]


def encoder_of(ws: WebSocket) -> Codec | None:
    """The codec `ws.send()` encodes a message with, to encode it once with
    `encoded()` for every socket of that codec; `None` when `send()` is not a codec's
    encoding and sending: the event kind, or a `send()` of a subclass's or replaced
    on the instance (each message then goes through that `send()`)."""
    codec = ws._send_codec
    if codec is EVENT:
        return None
    # The shortcut __init__ bound (see _sender), unless replaced since. (Read as an
    # attribute: reading `ws.__dict__` would give the instance a dict of its own, on
    # which CPython reads every attribute of the send path slower.)
    send = ws.send
    own = getattr(WebSocket, _send_name(codec))
    if getattr(send, "__func__", None) is not own or getattr(send, "__self__", None) is not ws:
        return None
    return codec


def _send_name(codec: Codec) -> str:
    """The name of what `WebSocket.send()` calls for `codec` (compared by identity: a
    codec may not be hashable)."""
    if codec is TEXT:
        return "send_text"
    if codec is BYTES:
        return "send_bytes"
    if codec is JSON:
        return "send_json"
    if codec is EVENT:
        return "send_event"
    return "_send_encoded"


def encoded(codec: Codec | None, message: Any) -> tuple[PayloadSender, Any, str | None]:
    """`message` encoded by `codec` (an `encoder_of()` a socket), and what sends the
    payload to a socket of that codec as `ws.send(message)` would: `(send, payload,
    frame)`, `frame` the payload's key in a `websocket.send` message (`"text"` or
    `"bytes"`), for a sender that hands it to the server itself (see `plain_send()`).
    With `None`, the message itself, each socket's own `send()`, and no frame.

    Raises:
        TypeError: `codec` cannot encode `message` (nothing is sent).
    """
    if codec is None:
        return _send_value, message, None
    payload = codec.encode(message)
    if payload.__class__ is str:
        return WebSocket.send_text, payload, "text"
    if isinstance(payload, (bytes, bytearray, memoryview)):
        return WebSocket.send_bytes, bytes(payload), "bytes"
    raise _not_a_payload(codec, payload)


def plain_send(ws: WebSocket) -> tuple[ConnectionState | None, Send]:
    """For a sender of many messages to `ws` (a room's fan-out), what its typed sends
    do on their hot path: `(core, send)`, the state core and the server's `send`.
    While `core.open`, a message `{"type": "websocket.send", frame: payload}` (see
    `encoded()`) may go to that `send` as `ws.send()` would send it, a failure of
    which `send_failed()` says what it means; otherwise `ws`'s own sends decide.
    `core` is `None` when they decide every time: `ws` counts its messages (metrics
    on).
    """
    return (ws._core if ws._tally is None else None), ws._send


async def send_failed(ws: WebSocket, error: Exception) -> Exception:
    """What to raise after the server's `send` (from `plain_send()`) raised `error`."""
    return await ws._send_failed(error)


def _not_a_payload(codec: Codec, payload: object) -> TypeError:
    return TypeError(
        f"{codec!r}.encode() returned {type(payload).__name__}: a codec's encode() "
        "returns a str (a text frame) or bytes (a binary frame)"
    )


def _send_value(ws: WebSocket, message: Any) -> Awaitable[None]:
    return ws.send(message)
