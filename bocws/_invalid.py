"""What happens to a message from the client that cannot be taken: `on_invalid`.

A message that is not of the kind the connection receives (a frame of the other kind,
a payload that is not JSON, a typed message that does not validate) raises an
`InvalidMessage` where it is decoded. `receive()`, `async for` and class views then
do what the connection's `on_invalid` option says (`WebSocket._invalid()` applies it):

- `"close"` (the default): close with the error's code (1007, 1003 for a frame of the
  other kind) and its reason, then raise the error;
- `"reply"`: send the client `invalid_reply(error)`, skip the message, go on receiving;
- `"raise"`: raise the error, the connection left open;
- a callable `(ws, error)`, awaited if it returns an awaitable: returning skips the
  message, raising raises.

The explicit receives of one kind (`receive_text()`, `receive_json()` ...) always
raise, and leave the connection open: the caller asked for that kind.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, Literal

from . import _json
from ._exceptions import InvalidJSON, InvalidMessage, MessageTypeError

__all__ = ["ON_INVALID", "OnInvalid", "details_of", "invalid_reply", "trimmed_errors"]

#: The policies `on_invalid` names.
ON_INVALID = ("close", "reply", "raise")
#: What `on_invalid` takes: a policy's name, or a callable `(ws, error)`.
OnInvalid = (
    Literal["close", "reply", "raise"] | Callable[[Any, InvalidMessage], Awaitable[None] | None]
)


def invalid_reply(error: InvalidMessage) -> dict[str, Any]:
    """The message `on_invalid="reply"` sends for `error`, as JSON:
    `{"type": "error", "error": "invalid message", "detail": [...]}`, where `detail`
    is the decoding library's list of what is wrong, trimmed (`trimmed_errors()`),
    and never holds the input.

    Build on it in an `on_invalid` function of your own:

        >>> async def tell(ws, error):
        ...     await ws.send_json({**invalid_reply(error), "hint": "see /docs"})
    """
    detail = trimmed_errors(details_of(error))
    return {"type": "error", "error": "invalid message", "detail": detail}


def details_of(error: InvalidMessage) -> list[dict[str, Any]]:
    """What is wrong with the message `error` was raised for, as a list in the shape of
    pydantic's errors (`type`, `loc`, `msg`): the library's own, else one entry."""
    if error.errors:
        return error.errors
    if isinstance(error, MessageTypeError):
        kinds = {"text": "a text frame", "bytes": "a binary frame"}
        message = f"expected {kinds.get(error.expected, error.expected)}, got " + kinds.get(
            error.received, error.received
        )
        return [{"type": "frame_type", "loc": [], "msg": message}]
    if isinstance(error, InvalidJSON):  # its msg says what is wrong, without the input
        return [{"type": "json_invalid", "loc": [], "msg": f"Invalid JSON: {error.msg}"}]
    return [{"type": "invalid_message", "loc": [], "msg": error.reason}]


def trimmed_errors(
    errors: Iterable[Mapping[str, Any]], max_entries: int = 10, max_bytes: int = 4096
) -> list[dict[str, Any]]:
    """`errors` (an `InvalidMessage`'s) as they may be sent to the client.

    Each entry keeps its `type`, `loc` and `msg` only (never the input, nor the
    context, which may hold exceptions), its texts cut to 200 characters; the first
    `max_entries` entries are kept while the list, JSON-encoded, fits in `max_bytes`.

    Example:
        >>> trimmed_errors(error.errors)
        [{'type': 'int_parsing', 'loc': ['age'], 'msg': 'Input should be a valid integer'}]
    """
    trimmed: list[dict[str, Any]] = []
    size = 2  # the brackets
    for entry in errors:
        if len(trimmed) >= max_entries:
            break
        item = {
            "type": _cut(str(entry.get("type", ""))),
            "loc": [_loc_part(part) for part in entry.get("loc", ())],
            "msg": _cut(str(entry.get("msg", ""))),
        }
        item_size = len(_json.dumps_bytes(item)) + (1 if trimmed else 0)  # and a comma
        if size + item_size > max_bytes:
            break
        trimmed.append(item)
        size += item_size
    return trimmed


_MAX_TEXT = 200


def _cut(text: str) -> str:
    return text if len(text) <= _MAX_TEXT else text[: _MAX_TEXT - 1] + "…"


def _loc_part(part: object) -> int | str:
    return part if isinstance(part, int) and not isinstance(part, bool) else _cut(str(part))
