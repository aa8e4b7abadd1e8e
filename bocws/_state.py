"""The strict state core: which ASGI WebSocket message is legal now, and what follows.

Pure and synchronous (sans-I/O): this module never awaits and never touches a socket;
of the project it imports only the close codes and the exceptions. `WebSocket` moves
messages; this decides.

Two sides are tracked:

- the client side (what the server reported): CONNECTING -> CONNECTED -> DISCONNECTED;
- the application side (what the app sent): CONNECTING -> CONNECTED | RESPONSE ->
  DISCONNECTED.

The application side follows what the application did even once the client has
gone; the verdict of `ConnectionState.send` then says whether the message is still
worth forwarding to the server.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Starlette's own enum, so that code written for Starlette compares states as before:
# `ws.client_state == starlette.websockets.WebSocketState.CONNECTED`.
from starlette.websockets import WebSocketState

from ._codes import CloseCode, check_close, is_int
from ._exceptions import WebSocketStateError

__all__ = ["ConnectionState", "WebSocketState"]

CONNECT = "websocket.connect"
RECEIVE = "websocket.receive"
DISCONNECT = "websocket.disconnect"
ACCEPT = "websocket.accept"
SEND = "websocket.send"
CLOSE = "websocket.close"
RESPONSE_START = "websocket.http.response.start"
RESPONSE_BODY = "websocket.http.response.body"

INCOMING_TYPES = (CONNECT, RECEIVE, DISCONNECT)
OUTGOING_TYPES = (ACCEPT, SEND, CLOSE, RESPONSE_START, RESPONSE_BODY)

BYTES_LIKE = (bytes, bytearray, memoryview)


CONNECTING = WebSocketState.CONNECTING
CONNECTED = WebSocketState.CONNECTED
DISCONNECTED = WebSocketState.DISCONNECTED
RESPONSE = WebSocketState.RESPONSE


def _describe(client_state: WebSocketState, application_state: WebSocketState) -> str:
    return f"client {client_state.name}, application {application_state.name}"


def _check_headers(headers: object, message_type: str) -> None:
    if headers is None:
        return
    # A list or tuple only: validating any other iterable would consume what is forwarded.
    if not isinstance(headers, (list, tuple)):
        raise TypeError(
            f"{message_type!r} headers must be a list of (bytes, bytes) pairs, "
            f"got {type(headers).__name__}"
        )
    for pair in headers:
        if not (
            isinstance(pair, (tuple, list))
            and len(pair) == 2
            and isinstance(pair[0], bytes)
            and isinstance(pair[1], bytes)
        ):
            raise TypeError(
                f"{message_type!r} headers must be (bytes, bytes) pairs, got {pair!r}: "
                "encode names and values, e.g. (b'x-token', b'abc')"
            )
        name = pair[0]
        if name != name.lower():
            raise ValueError(f"{message_type!r} header names must be lowercase, got {name!r}")
        if message_type == ACCEPT and name == b"sec-websocket-protocol":
            raise ValueError(
                "do not send a sec-websocket-protocol header: pass the chosen subprotocol "
                "as accept(subprotocol=...) (the 'subprotocol' key)"
            )


def check_data_fields(
    message: Mapping[str, Any], message_type: str, bytes_types: tuple[type, ...] = BYTES_LIKE
) -> None:
    """Raise `ValueError` unless `message` carries exactly one of `text` (str) or `bytes`."""
    text = message.get("text")
    data = message.get("bytes")
    if (text is None) == (data is None):
        raise ValueError(
            f"{message_type!r} must carry exactly one of 'text' or 'bytes', "
            f"got {'both' if text is not None else 'neither'}"
        )
    if text is not None and not isinstance(text, str):
        raise ValueError(f"{message_type!r} 'text' must be a str, got {type(text).__name__}")
    if data is not None and not isinstance(data, bytes_types):
        raise ValueError(f"{message_type!r} 'bytes' must be bytes, got {type(data).__name__}")


def oversize(message: Mapping[str, Any], limit: int) -> int:
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


class ConnectionState:
    """The state machine of one WebSocket connection, in both directions.

    Feed it every message: `receive(message)` for what the server delivered,
    `send(message)` for what the application is about to send. Each call either
    raises (`WebSocketStateError` for a message illegal now, `ValueError`/`TypeError`
    for a malformed one) and changes nothing, or records the transition.

    Parameters:
        denial_response: whether the server supports the `websocket.http.response`
            extension (WebSocket denial responses).
    """

    __slots__ = (
        "application_state",
        "client_state",
        "close_code",
        "close_reason",
        "denial_response",
        "disconnect_code",
        "disconnect_reason",
        "lost",
        "open",
    )

    def __init__(self, *, denial_response: bool = False) -> None:
        self.client_state = CONNECTING
        self.application_state = CONNECTING
        self.denial_response = denial_response
        #: The code and reason of the client's `websocket.disconnect`, once it came.
        self.disconnect_code: int | None = None
        self.disconnect_reason = ""
        #: The code and reason of the application's `websocket.close`, once one went to
        #: a client still connected (`None`: the application has not closed first).
        self.close_code: int | None = None
        self.close_reason = ""
        #: Whether a send learnt of the disconnect (it found the connection broken)
        #: rather than a receive: later receives then report it instead of refusing.
        self.lost = False
        #: Both sides CONNECTED: data may flow both ways. Kept by every transition so
        #: that the hot path asks one question (see `WebSocket.receive_text`).
        self.open = False

    def __repr__(self) -> str:
        return f"<ConnectionState {_describe(self.client_state, self.application_state)}>"

    # Incoming: server -> application.

    def check_receive(self, *, data: bool = False) -> None:
        """Raise if awaiting the next server message now would be illegal or hang forever.

        With `data=True` (a text, bytes or JSON receive), the server's `websocket.connect`
        is not an acceptable answer either: the handshake must have been accepted.
        """
        client_state = self.client_state
        application_state = self.application_state
        if client_state is CONNECTED and application_state is not CONNECTING:
            if application_state is RESPONSE:
                raise WebSocketStateError(
                    f"cannot receive ({_describe(client_state, application_state)}): a denial "
                    "response is being sent; finish it with a final websocket.http.response.body"
                )
            return
        if client_state is CONNECTING and not data:
            return
        if client_state is DISCONNECTED:
            raise WebSocketStateError(
                f"cannot receive ({_describe(client_state, application_state)}): the client "
                f"already disconnected with code {self.disconnect_code}; stop receiving once "
                "WebSocketDisconnect has been raised"
            )
        if application_state is DISCONNECTED:
            raise WebSocketStateError(
                f"cannot receive ({_describe(client_state, application_state)}): the handshake "
                "was refused (reject() or close() before accept), so no message will arrive"
            )
        raise WebSocketStateError(
            f"cannot receive ({_describe(client_state, application_state)}): no message arrives "
            "before the handshake is accepted; call accept() first or use auto_accept=True"
        )

    def receive(self, message: Mapping[str, Any]) -> None:
        """Validate a message delivered by the server and record the transition."""
        message_type = message.get("type")
        client_state = self.client_state
        if client_state is CONNECTED:
            if message_type == RECEIVE:
                application_state = self.application_state
                if application_state is CONNECTING or application_state is RESPONSE:
                    raise WebSocketStateError(
                        f"server sent {RECEIVE!r} while "
                        f"{_describe(client_state, application_state)}: "
                        "no message may arrive before the handshake is accepted"
                    )
                check_data_fields(message, RECEIVE)
                return
            if message_type == DISCONNECT:
                self._record_disconnect(message)
                return
        elif client_state is CONNECTING:
            if message_type == CONNECT:
                self.client_state = CONNECTED
                return
            if message_type == DISCONNECT:
                self._record_disconnect(message)
                return
        elif self.lost and message_type in (DISCONNECT, RECEIVE):
            # A receive that was already waiting when a send found the connection
            # broken: the server's late word changes nothing (the code stays 1006).
            if message_type == RECEIVE:
                check_data_fields(message, RECEIVE)
            return
        if message_type not in INCOMING_TYPES:
            raise ValueError(
                f"server sent an unknown WebSocket message type {message_type!r}; "
                f"expected one of {', '.join(INCOMING_TYPES)}"
            )
        raise WebSocketStateError(
            f"server sent {message_type!r} while "
            f"{_describe(client_state, self.application_state)}: "
            + _incoming_hint(client_state, message_type)
        )

    def _record_disconnect(self, message: Mapping[str, Any]) -> None:
        code = message.get("code", CloseCode.NO_STATUS_RCVD)
        reason = message.get("reason") or ""
        if not is_int(code):
            raise TypeError(f"{DISCONNECT!r} 'code' must be an int, got {type(code).__name__}")
        if not isinstance(reason, str):
            raise TypeError(f"{DISCONNECT!r} 'reason' must be a str, got {type(reason).__name__}")
        self.client_state = DISCONNECTED
        self.open = False
        self.disconnect_code = int(code)  # a plain int, whatever enum the server used
        self.disconnect_reason = reason

    def disconnect_found_by_send(self, message: Mapping[str, Any]) -> None:
        """Record the server's `websocket.disconnect`, read after a send found the
        connection broken; later receives report it (see `lost`)."""
        if self.client_state is not CONNECTED or message.get("type") != DISCONNECT:
            raise WebSocketStateError(
                f"a disconnect found by a send needs a connected client and a {DISCONNECT!r} "
                f"message; got {message.get('type')!r} while "
                f"{_describe(self.client_state, self.application_state)}"
            )
        self._record_disconnect(message)
        self.lost = True

    def connection_lost(self, code: int = CloseCode.ABNORMAL_CLOSURE) -> None:
        """Record that the server reported the connection broken (a send raised `OSError`)."""
        if self.client_state is not DISCONNECTED:
            self.client_state = DISCONNECTED
            self.open = False
            self.disconnect_code = code
            self.disconnect_reason = ""
            self.lost = True

    # Outgoing: application -> server.

    def send_data(self) -> bool:
        """Check a `websocket.send` built by a typed method; return whether to forward it.

        The fast path of `send`: the payload was built by `WebSocket` and needs no check.
        `False` means the client is gone: raise `WebSocketDisconnect` instead of sending.
        """
        if self.application_state is CONNECTED:
            return self.client_state is not DISCONNECTED
        raise self.refusal(SEND)

    def send(self, message: Mapping[str, Any]) -> bool:
        """Validate a message the application is about to send and record the transition.

        Returns whether the message should be forwarded to the server: `False` once
        the client has disconnected, where there is no one left to send it to.
        """
        message_type = message.get("type")
        application_state = self.application_state
        if message_type == CLOSE and (
            application_state is CONNECTING or application_state is CONNECTED
        ):
            # Before accept the close refuses the handshake, so 403 is allowed there.
            check_close(
                message.get("code", CloseCode.NORMAL_CLOSURE),
                message.get("reason"),
                handshake_pending=application_state is CONNECTING,
            )
            self.application_state = DISCONNECTED
            self.open = False
            if application_state is CONNECTED and self.client_state is not DISCONNECTED:
                self.close_code = int(message.get("code", CloseCode.NORMAL_CLOSURE))
                self.close_reason = message.get("reason") or ""
        elif application_state is CONNECTING:
            if message_type == ACCEPT:
                if self.client_state is CONNECTING:
                    raise self.refusal(ACCEPT)
                subprotocol = message.get("subprotocol")
                if subprotocol is not None and not isinstance(subprotocol, str):
                    raise TypeError(
                        f"{ACCEPT!r} 'subprotocol' must be a str or None, "
                        f"got {type(subprotocol).__name__}"
                    )
                _check_headers(message.get("headers"), ACCEPT)
                self.application_state = CONNECTED
                self.open = self.client_state is CONNECTED
            elif message_type == RESPONSE_START:
                if not self.denial_response:
                    raise WebSocketStateError(
                        f"cannot send {RESPONSE_START!r}: the server does not support the "
                        "websocket.http.response extension; close the handshake instead "
                        "(reject() without a response answers HTTP 403)"
                    )
                status = message.get("status")
                if not is_int(status) or not 100 <= status <= 599:
                    raise ValueError(
                        f"{RESPONSE_START!r} 'status' must be an int HTTP status, got {status!r}"
                    )
                _check_headers(message.get("headers"), RESPONSE_START)
                self.application_state = RESPONSE
            else:
                raise self.refusal(message_type)
        elif application_state is CONNECTED:
            if message_type != SEND:
                raise self.refusal(message_type)
            # The ASGI spec wants a byte string here; servers may not take a memoryview.
            check_data_fields(message, SEND, (bytes,))
        elif application_state is RESPONSE and message_type == RESPONSE_BODY:
            body = message.get("body", b"")
            if not isinstance(body, BYTES_LIKE):
                raise ValueError(
                    f"{RESPONSE_BODY!r} 'body' must be bytes, got {type(body).__name__}"
                )
            if not message.get("more_body", False):
                self.application_state = DISCONNECTED
        else:
            raise self.refusal(message_type)
        return self.client_state is not DISCONNECTED

    def refusal(self, message_type: object) -> Exception:
        """The error explaining why `message_type` cannot be sent now (not raised here)."""
        if message_type not in OUTGOING_TYPES:
            return ValueError(
                f"unknown WebSocket message type {message_type!r}; "
                f"expected one of {', '.join(OUTGOING_TYPES)}"
            )
        assert isinstance(message_type, str)
        return WebSocketStateError(
            f"cannot send {message_type!r} "
            f"({_describe(self.client_state, self.application_state)}): "
            + _outgoing_hint(self.client_state, self.application_state, message_type)
        )


def _incoming_hint(client_state: WebSocketState, message_type: str) -> str:
    if client_state is DISCONNECTED:
        return "the client already disconnected; nothing may follow websocket.disconnect"
    if message_type == CONNECT:
        return "websocket.connect comes once, first"
    return "websocket.connect must come first"


def _outgoing_hint(
    client_state: WebSocketState, application_state: WebSocketState, message_type: str
) -> str:
    if application_state is DISCONNECTED:
        return "the application already closed the connection; nothing more can be sent"
    if application_state is RESPONSE:
        return (
            "a denial response is under way; finish it with websocket.http.response.body "
            "(more_body=False)"
        )
    if application_state is CONNECTED:
        if message_type == ACCEPT:
            return "the connection is already accepted; accept() only once"
        return "a denial response can only be sent before the handshake is accepted"
    # Application CONNECTING.
    if message_type == ACCEPT:
        return "receive websocket.connect first (accept() does it for you)"
    if message_type == RESPONSE_BODY:
        return "send websocket.http.response.start first (send_denial_response() does both)"
    return "the handshake is still pending; call accept() first or use auto_accept=True"
