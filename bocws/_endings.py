"""How a connection ends for an exception: the one rule `async with ws` and views follow.

`ending_of()` sorts an exception that escaped into an `Ending`: the client left, the
application had closed, the client's bad data calls for a close, Starlette's
`WebSocketException` asks for one, or the application failed (1011). `what_the_client_got()`
puts the result in words for the log. Both read only the state core.
"""

from __future__ import annotations

import sys
from typing import Literal, NamedTuple

from starlette.exceptions import WebSocketException
from starlette.websockets import WebSocketDisconnect

from ._codes import REASONS, REJECT_CODE, CloseCode, check_close, close_code_name
from ._exceptions import InvalidMessage, MessageTooBig
from ._state import CONNECTING, DISCONNECTED, RESPONSE, ConnectionState

# anyio, a Starlette dependency, brings the backport before Python 3.11.
if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup  # type: ignore[import-not-found,unused-ignore]

__all__ = ["Ending", "EndingKind", "ending_of", "exception_leaves", "what_the_client_got"]

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


def ending_of(core: ConnectionState, connection: object, error: BaseException) -> Ending:
    """How `connection` (whose state core is `core`) ends for `error`; for an exception
    group, for its members.

    An application error anywhere in a group outweighs a close the client's data
    calls for, which outweighs the client's departure.
    """
    endings = [_ending_of_one(core, connection, leaf) for leaf in exception_leaves(error)]
    return max(endings, key=lambda ending: _WEIGHT[ending.kind])


def _ending_of_one(core: ConnectionState, connection: object, error: BaseException) -> Ending:
    if isinstance(error, MessageTooBig):
        if error.source() is connection:
            return Ending("closed", error.code, error.reason, str(error))
    elif isinstance(error, WebSocketDisconnect):
        # A disconnect raised by another WebSocket (a chat peer that left) is not
        # this connection's: it is an error of the application's like any other.
        if core.client_state is DISCONNECTED and error.code == core.disconnect_code:
            kind: EndingKind = "departure" if core.close_code is None else "closed"
            return Ending(kind, error.code, error.reason or "")
    elif isinstance(error, InvalidMessage):
        if error.source() is connection:
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


def what_the_client_got(core: ConnectionState) -> str:
    """What the client received, in words: the close, the refusal, or nothing."""
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
