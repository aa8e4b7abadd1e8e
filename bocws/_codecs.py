"""Message kinds: how the values `receive()` returns and `send()` takes travel in frames.

A codec is one kind of message. `decode()` turns a frame's payload (a `str` for a
text frame, `bytes` for a binary one) into a value; `encode()` turns a value into a
payload. The built-in kinds are in `CODECS`, under the names `value_type`,
`receive_type` and `send_type` take; those options take any object that follows
`Codec`'s contract too, and a type (a pydantic model, a `msgspec.Struct`, a dataclass,
`list[int]` ...), whose codec `bocws._typed` makes. Adding a built-in kind is a change
here only: its codec, its entry in `MessageType` (a test checks both agree).

`WebSocket`'s methods for the built-in kinds (`receive_text()`, `send_json()` ...)
inline the common case of their codec's `decode()` or `encode()` on the hot path (a
call costs 5-12% a message) and call the codec for every other message; other kinds
always go through the codec.
"""

from __future__ import annotations

import json
from typing import Any, Literal, get_origin

from . import _json
from ._exceptions import InvalidJSON, MessageTypeError

__all__ = [
    "BYTES",
    "CODECS",
    "EVENT",
    "JSON",
    "TEXT",
    "Codec",
    "MessageKind",
    "MessageType",
    "codec_for",
    "payload_of",
]

#: The names of the built-in kinds, for type checkers; `CODECS` holds their codecs.
MessageType = Literal["text", "bytes", "json", "event"]


class Codec:
    """A kind of message: how its values are read from frames and written to them.

    Subclass it (or write any object with these three members) and pass an instance
    as `value_type`, `receive_type` or `send_type`.

    Attributes:
        name: what the kind is called in errors and logs.

    Example:
        >>> class Lines(Codec):
        ...     name = "lines"
        ...     def decode(self, data):
        ...         if not isinstance(data, str):
        ...             raise MessageTypeError("text", "bytes", "receive()")
        ...         return data.splitlines()
        ...     def encode(self, value):
        ...         return "\\n".join(value)
        >>> ws = WebSocket(scope, receive, send, value_type=Lines())
    """

    name: str = "codec"

    def decode(self, data: str | bytes) -> Any:
        """The value of a message whose payload is `data` (`str`: a text frame).

        Raises:
            InvalidMessage: the client's message is not of this kind: a
                `MessageTypeError` for a frame of the other kind (1003 if left to
                escape), `InvalidJSON` or `InvalidMessage` itself for a payload that
                does not decode (1007). Any other exception is the application's
                error (1011).
        """
        raise NotImplementedError

    def encode(self, value: Any) -> str | bytes:
        """The payload to send for `value`: a `str` goes in a text frame, `bytes` in
        a binary one.

        Raises:
            TypeError: `value` cannot be sent as this kind (nothing is sent).
        """
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<codec {self.name!r}>"


#: What `value_type`, `receive_type` and `send_type` take: a built-in kind's name, a
#: codec, or a type to validate messages with (`list[int]` and other typing constructs
#: too, which type checkers do not all count as types).
MessageKind = MessageType | Codec | type[Any]


class _Text(Codec):
    name = "text"

    def decode(self, data: str | bytes) -> str:
        if data.__class__ is not str:
            raise MessageTypeError("text", "bytes", "receive_text()")
        return data

    def encode(self, value: Any) -> str:
        if not isinstance(value, str):
            raise TypeError(
                f"send_text() takes a str, got {type(value).__name__}"
                + ("; use send_bytes() for bytes" if isinstance(value, bytes) else "")
            )
        return value


class _Bytes(Codec):
    name = "bytes"

    def decode(self, data: str | bytes) -> bytes:
        if isinstance(data, str):
            raise MessageTypeError("bytes", "text", "receive_bytes()")
        return data

    def encode(self, value: Any) -> bytes:
        if not isinstance(value, (bytes, bytearray, memoryview)):
            raise TypeError(
                f"send_bytes() takes bytes, got {type(value).__name__}"
                + ("; use send_text() for str" if isinstance(value, str) else "")
            )
        return value if value.__class__ is bytes else bytes(value)


class _JSON(Codec):
    """JSON in text frames and in UTF-8 binary frames; written as text.

    Reading refuses what cannot be written back (NaN, infinities, numbers too large
    for a float, documents nested over `_json.MAX_DEPTH` levels): see `bocws._json`.
    """

    name = "json"

    def decode(self, data: str | bytes) -> Any:
        return self.parse(data if isinstance(data, str) else self.utf8(data))

    def encode(self, value: Any) -> str:
        # Lone surrogates (say, echoed from a client's "\ud800") are sent \u-escaped,
        # which JSON allows; other text is sent as it is.
        return _json.dumps(value)

    @staticmethod
    def parse(text: str) -> Any:
        """The JSON value of `text`; `InvalidJSON` for what is not valid JSON."""
        try:
            return _json.loads(text)
        except json.JSONDecodeError as error:
            raise InvalidJSON(error.msg, error.doc, error.pos) from None
        except RecursionError:  # "[[[[..." from a client: bad input, not a server bug
            raise InvalidJSON("JSON nested too deeply", "", 0) from None
        except ValueError as error:  # an integer over Python's 4,300-digit limit
            raise InvalidJSON(f"JSON {error}", "", 0) from None

    @staticmethod
    def utf8(data: bytes) -> str:
        """The text of a binary frame carrying JSON; `InvalidJSON` if it is not UTF-8."""
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as error:
            raise InvalidJSON(
                f"message is not valid UTF-8 ({error.reason})",
                data.decode("utf-8", "replace"),
                error.start,
            ) from None


class _Event(Codec):
    """Raw ASGI events, validated by the state core: `receive()` returns every event,
    `websocket.disconnect` included, and `send()` takes any event legal now."""

    name = "event"

    def decode(self, data: str | bytes) -> Any:
        raise TypeError("the event kind has no payloads: receive_event() returns events")

    def encode(self, value: Any) -> str | bytes:
        raise TypeError("the event kind has no payloads: send_event() takes events")


TEXT: Codec = _Text()
BYTES: Codec = _Bytes()
JSON = _JSON()
EVENT: Codec = _Event()
#: The built-in kinds, by name.
CODECS: dict[str, Codec] = {codec.name: codec for codec in (TEXT, BYTES, JSON, EVENT)}


def codec_for(option: str, kind: object, library: str | None = None) -> Codec:
    """The codec a `value_type`, `receive_type` or `send_type` (`option`) stands for.

    A type is typed JSON, read and written by pydantic or msgspec, or by `library`
    when given (the `codec` option; see `bocws._typed.typed_codec`).

    Raises:
        ValueError: an unknown kind name.
        TypeError: neither a name, a codec nor a type; a `Codec` class instead of an
            instance; a type its library cannot read, or whose library is not installed.
    """
    if isinstance(kind, str):
        try:
            return CODECS[kind]
        except KeyError:
            raise ValueError(
                f"unknown {option} {kind!r}: use one of {', '.join(CODECS)}, a Codec or a type"
            ) from None
    if isinstance(kind, Codec):
        return kind
    from ._typed import is_type_form, typed_codec  # which builds on Codec: imported here

    if is_type_form(kind):
        # (list[int] passes for a class on Python 3.10, where issubclass() refuses it.)
        if isinstance(kind, type) and get_origin(kind) is None and issubclass(kind, Codec):
            raise TypeError(f"{option} takes a Codec instance: {kind.__name__}(), not the class")
        return typed_codec(kind, library)  # type: ignore[arg-type]  # checked there
    if all(callable(getattr(kind, method, None)) for method in ("decode", "encode")):
        return kind  # type: ignore[return-value]  # follows the contract
    raise TypeError(
        f"{option} must be one of {', '.join(map(repr, CODECS))}, a Codec or a type "
        f"(a pydantic model, a msgspec.Struct, a dataclass ...), got {kind!r}"
    )


def payload_of(message: Any) -> str | bytes:
    """The payload of a `websocket.receive` message: its text, else its bytes."""
    text: str | None = message.get("text")
    if text is not None:
        return text
    data = message["bytes"]
    return data if data.__class__ is bytes else bytes(data)
