"""Close codes: the one home of their numbers, their names and the reasons bocws sends.

Whether a code may be sent, which codes report an error, and how a code is written in
the log are decided here, and nowhere else. Imports nothing of the project.
"""

from __future__ import annotations

from enum import IntEnum
from typing import TypeGuard

__all__ = [
    "ASGI2_CLOSE_NOTE",
    "ERROR_CLOSE_CODES",
    "MAX_REASON_BYTES",
    "REASONS",
    "REJECT_CODE",
    "CloseCode",
    "check_close",
    "close_code_name",
    "is_error_code",
    "is_int",
    "is_valid_close_code",
    "sendable_by_asgi2",
]

# The close code ASGI servers turn into an HTTP 403 when it closes a pending handshake.
REJECT_CODE = 403
MAX_REASON_BYTES = 123


class CloseCode(IntEnum):
    """The close codes of RFC 6455 (section 7.4.1) and the IANA registry, by name.

    The one place in bocws where these numbers live. Codes 4000-4999 are free for
    applications; 1005, 1006 and 1015 are only ever reported, never sent.

    Example:
        >>> await ws.close(CloseCode.POLICY_VIOLATION, "no token")
    """

    NORMAL_CLOSURE = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    UNSUPPORTED_DATA = 1003
    NO_STATUS_RCVD = 1005
    ABNORMAL_CLOSURE = 1006
    INVALID_PAYLOAD = 1007
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    MANDATORY_EXTENSION = 1010
    INTERNAL_ERROR = 1011
    SERVICE_RESTART = 1012
    TRY_AGAIN_LATER = 1013
    BAD_GATEWAY = 1014
    TLS_HANDSHAKE = 1015


#: The codes with which a peer reports an error (a protocol error, data it could not
#: take, a failure of its own); every other code is an ordinary end of a connection.
ERROR_CLOSE_CODES = frozenset(
    {
        CloseCode.PROTOCOL_ERROR,
        CloseCode.UNSUPPORTED_DATA,
        CloseCode.INVALID_PAYLOAD,
        CloseCode.POLICY_VIOLATION,
        CloseCode.MESSAGE_TOO_BIG,
        CloseCode.MANDATORY_EXTENSION,
        CloseCode.INTERNAL_ERROR,
        CloseCode.BAD_GATEWAY,
        CloseCode.TLS_HANDSHAKE,
    }
)


def is_error_code(code: int) -> bool:
    """Whether a peer closing with `code` reported an error (see `ERROR_CLOSE_CODES`)."""
    return code in ERROR_CLOSE_CODES


def close_code_name(code: int) -> str:
    """`code` with its name where it has one: `"1012 (SERVICE_RESTART)"`, `"4000"`."""
    try:
        return f"{code} ({CloseCode(code).name})"
    except ValueError:
        return str(code)


#: The reasons bocws sends with the codes it chooses itself.
REASONS: dict[int, str] = {
    CloseCode.UNSUPPORTED_DATA: "unsupported frame type",
    CloseCode.INVALID_PAYLOAD: "invalid JSON",
    CloseCode.MESSAGE_TOO_BIG: "message too big",
    CloseCode.INTERNAL_ERROR: "internal error",
}


def is_int(value: object) -> TypeGuard[int]:
    """Whether `value` is an int, including IntEnum codes (wsproto's, websockets'), not a bool."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_valid_close_code(code: int) -> bool:
    """Whether `code` may be sent in a close frame (RFC 6455 section 7.4, IANA registry)."""
    return (
        CloseCode.NORMAL_CLOSURE <= code <= CloseCode.UNSUPPORTED_DATA
        or CloseCode.INVALID_PAYLOAD <= code <= CloseCode.BAD_GATEWAY
        or 3000 <= code <= 4999
    )


def check_close(code: object, reason: object, *, handshake_pending: bool) -> None:
    """Raise `ValueError` (or `TypeError`) if a close `code` or `reason` may not be sent.

    Before the handshake is accepted the code never reaches the wire (the server answers
    HTTP 403), so `403` is accepted there too, as Bocadillo's `reject()` used it.
    """
    if not is_int(code):
        raise TypeError(f"close code must be an int, got {type(code).__name__}")
    if not is_valid_close_code(code) and not (handshake_pending and code == REJECT_CODE):
        raise ValueError(
            f"invalid close code {code}: use 1000-1003, 1007-1014 or 3000-4999 "
            "(4000-4999 are free for applications)"
        )
    if reason is None:
        return
    if not isinstance(reason, str):
        raise TypeError(f"close reason must be a str, got {type(reason).__name__}")
    size = len(reason.encode("utf-8"))
    if size > MAX_REASON_BYTES:
        raise ValueError(
            f"close reason is {size} bytes in UTF-8; the limit is {MAX_REASON_BYTES}: shorten it"
        )


#: Why a close code is replaced on an ASGI 2.0 server, for the log.
ASGI2_CLOSE_NOTE = (
    "this server speaks ASGI 2.0 (no spec_version in its scope, as daphne), which sends "
    "only close codes 1000 and 3000-4999"
)


def sendable_by_asgi2(code: int) -> int:
    """`code`, or the one to send instead on an ASGI 2.0 server (daphne's WebSocket layer
    raises for any code but 1000 and 3000-4999): 1001 (going away) becomes 1000, and the
    other codes of RFC 6455 become their private-use twin, the same last three digits
    in the 4000s (1011 is sent as 4011, 1009 as 4009), so that a client can still tell
    them apart."""
    if code == CloseCode.NORMAL_CLOSURE or 3000 <= code <= 4999:
        return code
    if code == CloseCode.GOING_AWAY:
        return int(CloseCode.NORMAL_CLOSURE)
    return 4000 + code % 1000
