"""Every exception bocws raises, in one tree.

    Exception
    ├── WebSocketDisconnect (Starlette's)   the client left; re-exported as is
    │   └── MessageTooBig                   over max_message_size: closed with 1009
    ├── ValueError
    │   ├── InvalidMessage                  the client sent what cannot be taken: 1007
    │   │   ├── MessageTypeError (TypeError) a frame of the other kind: 1003 if let out
    │   │   └── InvalidJSON (json.JSONDecodeError): not JSON: 1007 if let out
    │   └── ParameterError                  a view parameter missing or invalid: 403
    ├── RuntimeError
    │   ├── WebSocketStateError             a call or message illegal in this state
    │   └── DenialResponseUnsupported       the server has no websocket.http.response
    ├── BroadcastUnavailable                (bocws.broadcast) the broadcast's server is
    │                                       out of reach
    └── SubscriptionOverflow                (bocws.broadcast) a subscriber fell behind

Besides these, calls raise the built-in `TypeError` and `ValueError` for arguments
that cannot be used (each message says which and why; text holding a lone surrogate,
which no server can send, is `InvalidUnicode`, a `TypeError`), and receives
`TimeoutError`.
Imports nothing of the project but the close codes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, ClassVar

from starlette.websockets import WebSocketDisconnect

from ._codes import REASONS, CloseCode

__all__ = [
    "DenialResponseUnsupported",
    "InvalidJSON",
    "InvalidMessage",
    "InvalidUnicode",
    "MessageTooBig",
    "MessageTypeError",
    "ParameterError",
    "WebSocketDisconnect",
    "WebSocketStateError",
]


def _nobody() -> None:
    return None


class WebSocketStateError(RuntimeError):
    """An ASGI message, or a call that produces one, is not legal in the current state.

    The message names the current state, what was attempted and what to do instead.
    A refused message changes no state.

    Example:
        >>> await ws.close()
        >>> await ws.close()
        WebSocketStateError: cannot send 'websocket.close': the application already closed ...
    """


class InvalidMessage(ValueError):
    """The client sent a message that cannot be taken: the base of `MessageTypeError`
    and `InvalidJSON`, and what a `Codec` raises for a payload it cannot decode (a
    typed message that does not validate, say).

    Caught, it leaves the connection open. Left to escape `async with ws` or a view,
    it closes the connection with `close_code` and `reason` (the client's fault, so
    without an error in the log), as it would whatever the shape of the code.

    Parameters:
        *args: the message, as for any exception.
        errors: what is wrong, as the decoding library lists it (see `errors`).
        reason: the close reason, instead of the class's (at most 123 UTF-8 bytes).

    Attributes:
        close_code: the close code it calls for: 1007 (invalid payload data), 1003
            for a `MessageTypeError`.
        reason: the close reason sent with it: the class's (`"invalid message"`),
            or one naming the first bad field for a typed message.
        errors: the decoding library's own list of what is wrong, for a typed
            message (pydantic's `ValidationError.errors()`, or its equivalent for
            msgspec): dicts with at least `type`, `loc` and `msg`, never the input
            itself; empty when the codec gave none.

    Example:
        >>> raise InvalidMessage("not a msgpack document")  # in a Codec's decode()
    """

    close_code: ClassVar[CloseCode] = CloseCode.INVALID_PAYLOAD
    reason: str = "invalid message"
    #: The connection that raised it (weakly): only its own connection closes for it.
    source: Callable[[], object] = _nobody

    def __init__(
        self, *args: object, errors: list[dict[str, Any]] | None = None, reason: str | None = None
    ) -> None:
        super().__init__(*args)
        self.errors: list[dict[str, Any]] = [] if errors is None else errors
        if reason is not None:
            self.reason = reason


class MessageTypeError(InvalidMessage, TypeError):
    """A frame of one kind arrived where the other was expected (text vs. binary).

    Closes with 1003 (unsupported data) when left to escape.

    Attributes:
        expected: `"text"` or `"bytes"`, what the call expected.
        received: `"text"` or `"bytes"`, what the client sent.

    Example:
        >>> await ws.receive_text()  # the client sent a binary frame
        MessageTypeError: expected a text frame, received a binary frame ...
    """

    close_code = CloseCode.UNSUPPORTED_DATA
    reason = REASONS[CloseCode.UNSUPPORTED_DATA]

    def __init__(self, expected: str, received: str, call: str) -> None:
        self.expected = expected
        self.received = received
        names = {"text": "a text frame", "bytes": "a binary frame"}
        super().__init__(
            f"{call} expected {names[expected]}, received {names[received]}: "
            f"use receive_{received}() or set receive_type={received!r}"
            + (" (or receive_json() for JSON in either)" if call.startswith("receive_json") else "")
        )


class InvalidJSON(InvalidMessage, json.JSONDecodeError):
    """A message that is not JSON (or, in a binary frame, not UTF-8) where JSON was
    expected. A `json.JSONDecodeError`, so a `ValueError` too.

    Closes with 1007 (invalid payload data) when left to escape.

    Example:
        >>> await ws.receive_json()  # the client sent "{oops"
        InvalidJSON: Expecting property name enclosed in double quotes: line 1 column 2 ...
    """

    close_code = CloseCode.INVALID_PAYLOAD
    reason = REASONS[CloseCode.INVALID_PAYLOAD]


class MessageTooBig(WebSocketDisconnect):
    """The client sent a message over `max_message_size`; the connection was closed (1009).

    A `WebSocketDisconnect`, so loops and handlers that stop on a disconnect stop on
    it too: `async for` and `async with` end quietly, as after any close of the
    application's own.

    Attributes:
        code: 1009 (message too big).
        size: the size of the message, in bytes (UTF-8 bytes for text).
        limit: the `max_message_size` it went over.

    Example:
        >>> ws = WebSocket(scope, receive, send, max_message_size=4096)
        >>> await ws.receive_text()  # the client sent 5000 bytes
        MessageTooBig: a message of 5000 bytes is over max_message_size (4096)
    """

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(CloseCode.MESSAGE_TOO_BIG, REASONS[CloseCode.MESSAGE_TOO_BIG])
        self.size = size
        self.limit = limit
        #: The connection that raised it (weakly), so that a view tells its own apart.
        self.source: Callable[[], object] = _nobody

    def __str__(self) -> str:
        return f"a message of {self.size} bytes is over max_message_size ({self.limit})"


class InvalidUnicode(TypeError):
    """Text the server cannot encode, so cannot send: it holds a lone surrogate."""


class DenialResponseUnsupported(RuntimeError):
    """The server does not support the ASGI `websocket.http.response` extension.

    Raised by `WebSocket.send_denial_response()`; `reject(response)` falls back to a
    plain HTTP 403 instead.
    """


class ParameterError(ValueError):
    """A view parameter is missing from the request or does not convert (handshake refused)."""
