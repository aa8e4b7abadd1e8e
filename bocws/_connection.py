"""`Connection`: one WebSocket connection's ASGI messages, each judged by the state core.

The layer under `WebSocket`: the handshake (accept, reject, denial responses), closing,
raw events in both directions, receiving off the hot path, the rule for how the
connection ends for an exception, and what a broken connection reports. `WebSocket`
adds message kinds on top (see the class docstring for the members it uses).
"""

from __future__ import annotations

import functools
import logging
import weakref
from collections.abc import Callable, Container, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import anyio
from starlette.requests import HTTPConnection
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send
from starlette.websockets import WebSocketDisconnect

from . import _endings
from ._broken import DisconnectSearch
from ._codes import (
    ASGI2_CLOSE_NOTE,
    CloseCode,
    check_close,
    close_code_name,
    is_int,
    is_valid_close_code,
    sendable_by_asgi2,
)
from ._endings import Ending, what_the_client_got
from ._exceptions import (
    DenialResponseUnsupported,
    InvalidMessage,
    InvalidUnicode,
    MessageTooBig,
    WebSocketStateError,
)
from ._options import check_seconds, check_size_limit, normalize_caught
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
    oversize,
)

if TYPE_CHECKING:
    from ._metrics import Tally

__all__ = [
    "Connection",
    "count_with",
    "ended_with",
    "ending_of",
    "ends_quietly",
    "gone_code",
    "how_it_ended",
    "log_close",
]

logger = logging.getLogger("bocws")

DENIAL_EXTENSION = "websocket.http.response"
# The largest message the hot path passes without a limit: a one-digit int compares
# fastest, and anything larger goes through the slow path, still accepted.
_UNMEASURED = 2**30 - 1


@functools.lru_cache(maxsize=16)
def _spec_version(spec: object) -> tuple[int, ...]:
    """A server's `scope["asgi"]["spec_version"]` as numbers; (2, 0) if unreadable."""
    try:
        return tuple(int(part) for part in str(spec).split("."))
    except ValueError:
        return (2, 0)


class Connection(HTTPConnection):
    """A WebSocket connection's messages, through the state core; `WebSocket`'s base.

    Parameters are `WebSocket`'s, but for the message kinds, and with the server's
    `receive` and `send` as one pair (`asgi`).

    Its interface to `WebSocket`, which inlines its common cases on the hot path:
    `_core` (the state core: `core.open` while both sides are connected),
    `_receive` and `_send` (the server's callables), `_receiving` (receives waiting
    on the server), `_accept_pending` and `_accept_now()` (the lazy accept),
    `_fast_text_limit` and `_fast_bytes_limit` (what passes unmeasured),
    `_next_message()` and `_judge()` (receiving through the core), `_bad_input()`,
    `_before_send()` and `_send_failed()` (sending off the hot path), `_release()`,
    and the ending rule: `_ending_of()`, `_ends_quietly()`, `_end()`.
    """

    # Per-connection state that most connections never change, as class defaults: an
    # instance gets its own value only when it does (cheaper to build, smaller).
    # A lazy accept under way: True, or the event other tasks wait on for it.
    _accepting: anyio.Event | bool = False
    # Receives waiting on the server now (a failed send then waits for theirs to get
    # the client's disconnect).
    _receiving = 0
    # From the first send that found the connection broken: the search for the
    # client's disconnect, and the messages read on the way (see `_broken.py`).
    _search: DisconnectSearch | None = None
    # What the server's ASGI version says of it (see `_adapt_to`): which exceptions of
    # its send() mean the connection is broken, and whether it speaks ASGI 2.0.
    _broken_send_errors: tuple[type[Exception], ...] = (OSError,)
    _asgi2 = False

    def __init__(
        self,
        scope: Scope,
        asgi: tuple[Receive, Send],
        auto_accept: bool,
        caught_close_codes: Iterable[int] | Callable[..., Any] | None,
        max_message_size: int | None,
    ) -> None:
        if scope.get("type") != "websocket":
            raise ValueError(f"WebSocket needs a 'websocket' scope, got {scope.get('type')!r}")
        super().__init__(scope)
        if max_message_size is not None:
            check_size_limit("max_message_size", max_message_size)
        self.auto_accept = auto_accept
        self.caught_close_codes: Container[int] = normalize_caught(caught_close_codes)
        self._set_size_limit(max_message_size)
        self._receive, self._send = asgi
        # With metrics on, what counts this connection's messages (see `count_with`);
        # an attribute of the instance: the hot paths read it for every message.
        self._tally: Tally | None = None
        self._core = ConnectionState(
            denial_response=DENIAL_EXTENSION in (scope.get("extensions") or {})
        )
        # Lazy auto-accept: cleared by the first accept, close or rejection.
        self._accept_pending = auto_accept
        spec = (scope.get("asgi") or {}).get("spec_version")
        # A server that names no version but offers extensions (Starlette's TestClient)
        # is taken at its word for those and left alone; one that says nothing is 2.0.
        if spec is not None:
            self._adapt_to(_spec_version(spec))
        elif not scope.get("extensions"):
            self._adapt_to((2, 0))

    def _adapt_to(self, spec: tuple[int, ...]) -> None:
        """Adapt to what a server of ASGI version `spec` does and does not promise.

        Before 2.4, a send on a closed connection need not raise `OSError`: daphne's
        raises a `RuntimeError` (autobahn's `Disconnected`) during the closing
        handshake, which is the client leaving too. A server of ASGI 2.0 (daphne, the
        one that declares no version) sends only close codes 1000 and 3000-4999, and
        drops empty messages without a word: such codes are replaced (see
        `sendable_by_asgi2`), and an empty message is refused with `ValueError`.
        """
        if spec < (2, 4):
            self._broken_send_errors = (OSError, RuntimeError)
        if spec < (2, 1):
            self._asgi2 = True
            self._send = _refusing_empty(self._send)

    def _release(self) -> None:
        """Drop the shortcuts `WebSocket` bound at construction (`receive`, `send`),
        once the connection has ended.

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
            f"<{type(self).__name__} {self.scope.get('path', '')!r} "
            f"client={self.client_state.name} "
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
    # `WebSocket`'s typed receives have a hot path: while both sides are connected
    # (`core.open`) and no timeout is asked, they await the server themselves and
    # return a plain message of their kind at once. The state core holds such a
    # message legal and changes nothing for it; anything else (a disconnect, the
    # other kind, a malformed message, one possibly over the limit) comes here, to
    # `_judge()`, through the core.

    async def _next_message(self, data: bool, timeout: float | None) -> Message:
        """The next message from the server, judged by the core (see `_judge`).

        `data` marks a receive of messages (not events): a disconnect then raises.
        """
        if timeout is not None:
            check_seconds("timeout", timeout)
        if self._accept_pending:
            await self._accept_now()
        core = self._core
        try:
            core.check_receive(data=data)
        except WebSocketStateError:
            search = self._search
            if not core.lost or search is None or search.told:
                raise
            message = search.next_message()
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
        if self._tally is not None and message["type"] == RECEIVE:
            self._tally.took(message)
        if message["type"] == DISCONNECT:
            self._release()
            if self._search is not None:
                self._search.found()
            if data:
                raise self._client_gone()
        limit = self._max_message_size
        if limit is not None and message["type"] == RECEIVE:
            size = oversize(message, limit)
            if size:
                await self._refuse_message(MessageTooBig(size, limit))
        return message

    async def _refuse_message(self, error: MessageTooBig) -> None:
        """Close with 1009 for a message over the limit, and raise `error`."""
        error.source = weakref.ref(self)  # the application's own close: see _endings.py
        await self.ensure_closed(CloseCode.MESSAGE_TOO_BIG, error.reason)  # unless closing
        self._log_close(str(error))
        try:
            raise error
        finally:
            del error  # this frame, in the error's traceback, must not hold it: a cycle

    def _bad_input(self, error: InvalidMessage) -> InvalidMessage:
        """Mark `error` as raised by this connection over the client's data; return it.

        Weakly: a connection keeps no reference to the error (nor its traceback).
        """
        error.source = weakref.ref(self)
        return error

    async def wait_closed(self) -> int:
        """Wait until the client has left; return its close code.

        For views that only send (feeds): run it beside the sends, and it returns the
        moment the client leaves, on every server (only some make a send raise once
        the client has gone). What the client sends meanwhile is read and dropped.
        A message over `max_message_size` closes the connection with 1009, which is
        returned.

        Raises:
            WebSocketStateError: before accept with `auto_accept=False`.
        """
        while True:
            try:
                message = await self._next_message(False, None)
            except WebSocketDisconnect as departure:  # MessageTooBig: closed with 1009
                return departure.code
            except WebSocketStateError:
                if self._core.client_state is not DISCONNECTED:
                    raise
                return self._client_gone().code  # it had left already
            if message["type"] == DISCONNECT:
                return self._client_gone().code

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

    # How a connection ends for an exception: the one rule, for `async with` and views.

    def _ending_of(self, error: BaseException) -> Ending:
        """How this connection ends for `error` (see `_endings.py`)."""
        return _endings.ending_of(self._core, self, error)

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
        path = self.scope.get("path", "")
        logger.info("%r: %s: %s", path, what_the_client_got(self._core), detail)

    # Sending.
    #
    # `WebSocket`'s typed sends have a hot path: while both sides are connected
    # (`core.open`), they hand the message they built to the server at once; the
    # state core holds it legal. Otherwise `_before_send()` does a pending accept
    # and asks the core first.

    async def _before_send(self) -> None:
        """Ready a typed send off the hot path: a pending accept, then the core's verdict."""
        if self._accept_pending:
            await self._accept_now()
        if not self._core.send_data():
            raise self._client_gone()

    async def _send_failed(self, error: Exception) -> Exception:
        """The error to raise after the server's send raised `error`."""
        if isinstance(error, UnicodeEncodeError):  # a lone surrogate: the server cannot encode it
            invalid = InvalidUnicode(f"text is not valid Unicode and cannot be sent: {error}")
            invalid.__cause__ = error
            return invalid
        if isinstance(error, TimeoutError) or not isinstance(error, self._broken_send_errors):
            return error  # a slow send (an OSError too), or not the connection's failure
        disconnect = await self._connection_broken()
        disconnect.__suppress_context__ = True  # the server's own error tells nothing more
        return disconnect

    async def _forward(self, message: Message) -> None:
        """Send `message` after the core validated it; map a broken connection to 1006."""
        core = self._core
        if self._asgi2 and message.get("type") == CLOSE:
            message = self._asgi2_close(message)  # before the core records its code
        forward = core.send(message)
        if core.application_state is not CONNECTING:
            self._accept_pending = False
            if core.application_state is DISCONNECTED:
                self._release()
        if not forward:
            if message["type"] in (SEND, ACCEPT):
                raise self._client_gone()
            return  # a close or denial response for a client that is gone: done
        if self._tally is not None:
            self._tally.sending(message)
        try:
            await self._send(message)
        except Exception as error:
            raise await self._send_failed(error)  # noqa: B904 - it sets the cause itself

    def _asgi2_close(self, message: Message) -> Message:
        """The close `message` as an ASGI 2.0 server can send it (see `_adapt_to`); one
        that ends an open connection, with a valid code (the core refuses the others)."""
        core = self._core
        code = message.get("code", CloseCode.NORMAL_CLOSURE)
        if (
            core.application_state is not CONNECTED
            or core.client_state is not CONNECTED
            or not is_int(code)
            or not is_valid_close_code(code)
        ):
            return message  # a refused handshake's 403, or for the core to judge
        sent = sendable_by_asgi2(code)
        if sent == code:
            return message
        logger.info(
            "%r: closing with %s instead of %s: %s",
            self.scope.get("path", ""),
            close_code_name(sent),
            close_code_name(code),
            ASGI2_CLOSE_NOTE,
        )
        return {**message, "code": sent}

    def _client_gone(self) -> WebSocketDisconnect:
        """The error for a client the core knows has disconnected, with its code."""
        code = self._core.disconnect_code
        # The core records a code with every disconnect; 1006 only satisfies the type.
        return WebSocketDisconnect(
            CloseCode.ABNORMAL_CLOSURE if code is None else code, self._core.disconnect_reason
        )

    async def _connection_broken(self) -> WebSocketDisconnect:
        """The disconnect to raise after the server's send raised `OSError`: with the
        client's own close code when the server has it (see `_broken.py`), else 1006."""
        search = self._search
        if search is None:
            search = self._search = DisconnectSearch(self._receive, self._core)
        await search.wait(self._receiving)
        self._release()
        return self._client_gone()

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


# The interface of the view lifecycle (`_lifecycle.py`, `views.py`) to a connection: how
# it ends for an exception, whether that end is quiet, what the client got. Internal.


def ending_of(ws: Connection, error: BaseException) -> Ending:
    """How `ws` ends for `error` (see `Ending`): the rule `async with ws` follows too."""
    return ws._ending_of(error)


def ends_quietly(ws: Connection, ending: Ending) -> bool:
    """Whether a departure `ending` is a normal end for `ws` (its code is caught, or the
    application had closed)."""
    return ws._ends_quietly(ending)


def how_it_ended(ws: Connection) -> str:
    """What the client of `ws` received, in words, for the log."""
    return what_the_client_got(ws._core)


def log_close(ws: Connection, detail: str) -> None:
    """Log, at INFO, what the client of `ws` received, and why (`detail`)."""
    ws._log_close(detail)


def ended_with(ws: Connection) -> int | None:
    """The close code `ws` ended with: the application's close, else the client's
    disconnect; `None` while it is open, or when the handshake was refused."""
    core = ws._core
    return core.close_code if core.close_code is not None else core.disconnect_code


def count_with(ws: Connection, tally: Tally) -> None:
    """Have `ws` count its messages on `tally` (metrics on), from the first."""
    ws._tally = tally


def gone_code(ws: Connection) -> int:
    """The close code of a client known to have left `ws`."""
    return ws._client_gone().code


def _refusing_empty(send: Send) -> Send:
    """`send`, refusing the empty messages an ASGI 2.0 server would drop unsaid."""

    async def send_unless_empty(message: Message) -> None:
        if message["type"] == SEND and not (message.get("text") or message.get("bytes")):
            raise ValueError(
                "cannot send an empty message: this server speaks ASGI 2.0 (no "
                "spec_version in its scope, as daphne) and drops empty messages; "
                "nothing was sent"
            )
        await send(message)

    return send_unless_empty
