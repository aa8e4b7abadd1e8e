"""Typed messages: a type as a message kind, read and written by pydantic or msgspec.

`value_type`, `receive_type` and `send_type` take a type as they take a kind's name or
a `Codec`: `codec_for()` hands it to `typed_codec()`, which makes its codec here. The
library does the work, straight from the frame to the value and back, with nothing
written by hand in between:

- a `msgspec.Struct` (or a type holding one, or any type with `library="msgspec"`):
  `msgspec.json.Decoder(T).decode()` and `msgspec.json.Encoder().encode()`;
- any other type pydantic's `TypeAdapter` takes (a model, a dataclass, a `TypedDict`,
  `list[...]`, an `Annotated` discriminated union ...): `TypeAdapter(T).validate_json()`
  and `dump_json()`.

Text and binary frames are both read; messages are sent in text frames. A payload
that is not JSON is an `InvalidJSON`, one that does not validate an `InvalidMessage`:
both carry the library's list of what is wrong (`errors`) and a close reason naming
the first bad field, neither repeats the input (the few library messages that quote
it are reworded). Neither library is imported until a type asks for it: without it,
declaring the type is a `TypeError` naming the extra to install.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import sys
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from ._codecs import Codec
from ._codes import MAX_REASON_BYTES
from ._exceptions import InvalidJSON, InvalidMessage

if TYPE_CHECKING:
    from pydantic_core import ValidationError

__all__ = [
    "LIBRARIES",
    "Library",
    "SchemaMode",
    "TypedJSON",
    "is_type_form",
    "json_schemas",
    "library_for",
    "typed_codec",
]

#: The libraries a typed kind is read and written with (the `codec` option).
Library = Literal["pydantic", "msgspec"]
LIBRARIES: tuple[Library, ...] = typing.get_args(Library)


def typed_codec(tp: Any, library: Library | None = None) -> Codec:
    """The codec of messages of type `tp`, in JSON.

    Made once per type (the same codec for each connection of a route).

    Parameters:
        tp: a class or a typing construct (`list[int]`, `Annotated[...]`).
        library: `"pydantic"` or `"msgspec"`; by default msgspec for a
            `msgspec.Struct` or a type holding one, pydantic for anything else.

    Raises:
        TypeError: the library is not installed (the message names the extra), or
            cannot read and write `tp`.
        ValueError: `library` is neither `"pydantic"` nor `"msgspec"`.

    Example:
        >>> class Point(pydantic.BaseModel):
        ...     x: int
        ...     y: int
        >>> codec = typed_codec(Point)
        >>> codec.decode(b'{"x": 1, "y": 2}')
        Point(x=1, y=2)
        >>> codec.encode(Point(x=1, y=2))
        '{"x":1,"y":2}'
    """
    if library not in (None, "pydantic", "msgspec"):
        raise ValueError(f"library must be 'pydantic' or 'msgspec', got {library!r}")
    try:
        hash(tp)
    except TypeError:  # an unhashable typing construct: made each time
        return _made(tp, library)
    return _made_once(tp, library)


def library_for(tp: Any, library: Library | None = None) -> Library:
    """The library that reads and writes `tp`: `library` if given, else msgspec for a
    `msgspec.Struct` or a type holding one, pydantic for anything else."""
    if library is not None:
        return library
    return "msgspec" if _holds_struct(tp) else "pydantic"


SchemaMode = Literal["validation", "serialization"]


def json_schemas(
    types: Sequence[Any],
    library: Library,
    prefix: str,
    modes: Sequence[SchemaMode] | None = None,
) -> tuple[list[Any], dict[str, Any]]:
    """The JSON Schemas of `types` by `library`'s own generator, all at once (each
    model named once, and referred to as `prefix` + its name wherever it is used), and
    the named schemas they refer to. `modes`: pydantic's, one per type (validation
    unless given); msgspec has one schema a type.

    Raises:
        TypeError: a type the library cannot describe in JSON Schema.
    """
    if library == "msgspec":
        import msgspec

        try:
            found, definitions = msgspec.json.schema_components(
                types, ref_template=prefix + "{name}"
            )
        except (TypeError, ValueError) as error:
            raise TypeError(str(error)) from error
        return list(found), dict(definitions)
    from pydantic import PydanticUserError, TypeAdapter

    kinds: Sequence[SchemaMode] = modes or ["validation"] * len(types)
    try:
        inputs = [
            (index, mode, TypeAdapter(tp))
            for index, (tp, mode) in enumerate(zip(types, kinds, strict=True))
        ]
        by_key, top = TypeAdapter.json_schemas(inputs, ref_template=prefix + "{model}")
    except PydanticUserError as error:  # a type with no JSON Schema
        raise TypeError(str(error).partition("\n")[0]) from error
    return [by_key[index, mode] for index, mode in enumerate(kinds)], dict(top.get("$defs", {}))


def _made(tp: Any, library: Library | None) -> Codec:
    if library_for(tp, library) == "msgspec":
        return _MsgspecCodec(tp)
    return _PydanticCodec(tp)


# A route checks its type when declared and each connection asks again: the codec
# (a TypeAdapter costs milliseconds to build) is made once.
_made_once = functools.lru_cache(maxsize=256)(_made)


def is_type_form(kind: object) -> bool:
    """Whether `kind` is a type for `typed_codec()`: a class, or a typing construct
    (`list[int]`, `int | None`, `Annotated[...]`, `Literal[...]`, `typing.Any` ...)."""
    return (
        isinstance(kind, type)
        or typing.get_origin(kind) is not None
        or type(kind).__module__ in ("typing", "typing_extensions")
    )


class TypedJSON(Codec):
    """The codecs of types: JSON read and written as a type (`iter_json()` yields
    values of it)."""


class _PydanticCodec(TypedJSON):
    """Messages of any type pydantic's `TypeAdapter` takes."""

    def __init__(self, tp: Any) -> None:
        self.name = _type_name(tp)
        try:
            from pydantic import BaseModel, PydanticUserError, TypeAdapter
            from pydantic_core import PydanticSerializationError, ValidationError
        except ImportError:
            raise _missing("pydantic", self.name) from None
        try:
            adapter = TypeAdapter(tp)
            if not getattr(adapter, "pydantic_complete", True):  # pydantic 2.10+ defers it
                adapter.rebuild(raise_errors=True)
        except (PydanticUserError, TypeError, NameError) as error:
            raise _unreadable("pydantic", self.name, error) from error
        # pydantic-core's validator and serializer, which the adapter's methods wrap:
        # the same work, without a Python layer of keyword arguments (1 us a message).
        self._validate_json = adapter.validator.validate_json
        self._dump_json = adapter.serializer.to_json
        self._validation_error = ValidationError
        self._serialization_error = PydanticSerializationError
        # pydantic writes any object with the model's fields: only an instance will do
        # (of the model, the dataclass, or one of a union of them).
        self._instances_of = _classes_checked(tp, BaseModel)

    def decode(self, data: str | bytes) -> Any:
        try:
            return self._validate_json(data)
        except self._validation_error as error:
            raise _pydantic_invalid(self.name, error, data) from None

    def encode(self, value: Any) -> str:
        try:
            if self._instances_of is not None:
                if not isinstance(value, self._instances_of):
                    raise _not_of_type(self.name, value)
                payload: bytes = self._dump_json(value)
            else:
                # A value of another type is a serialiser warning: made an error here
                # (which doubles the serialiser's cost: an instance check, when there
                # is a class to check, does it for less).
                payload = self._dump_json(value, warnings="error")
        except self._serialization_error as error:
            raise _unsendable(self.name, value, error) from None
        return payload.decode()


def _pydantic_invalid(name: str, error: ValidationError, data: str | bytes) -> InvalidMessage:
    """The `InvalidMessage` (an `InvalidJSON` for malformed JSON) for pydantic's
    `ValidationError` over `data`."""
    errors: list[dict[str, Any]] = [
        dict(entry) for entry in error.errors(include_url=False, include_input=False)
    ]
    for entry in errors:
        context = entry.pop("ctx", None) or {}
        entry["msg"] = _reworded(entry["type"], context, entry["msg"])
    first = errors[0]
    if first["type"] == "json_invalid":
        found = _PYDANTIC_POSITION.search(first["msg"])
        message = first["msg"][: found.start()] if found else first["msg"]
        offset = 0
        if found:
            offset = _line_start(data, int(found["line"])) + max(int(found["column"]) - 1, 0)
        return _malformed(message, data, offset, errors)
    return _invalid(name, errors)


# Pydantic's messages that quote the input: how they are written instead, from the
# error's context, and without it (should another pydantic version change it).
_PYDANTIC_REWORDED = {
    "union_tag_invalid": (
        "Input tag found using {discriminator} does not match any of the expected tags: "
        "{expected_tags}",
        "Input tag does not match any of the expected tags",
    ),
    "uuid_parsing": ("Input should be a valid UUID", "Input should be a valid UUID"),
    "timezone_offset": (
        "Timezone offset of {tz_expected} required",
        "Input has the wrong timezone offset",
    ),
}
_PYDANTIC_POSITION = re.compile(r" at line (?P<line>\d+) column (?P<column>\d+)$")


def _reworded(error_type: str, context: Mapping[str, Any], message: str) -> str:
    if error_type not in _PYDANTIC_REWORDED:
        return message
    template, fallback = _PYDANTIC_REWORDED[error_type]
    try:
        return template.format_map(context)
    except (KeyError, ValueError):
        return fallback


def _line_start(data: str | bytes, line: int) -> int:
    """The offset, in UTF-8 bytes, of the start of `line` (from 1) of `data`."""
    raw = _utf8(data)
    start = 0
    for _ in range(line - 1):
        start = raw.find(b"\n", start) + 1
        if not start:
            return len(raw)
    return start


class _MsgspecCodec(TypedJSON):
    """Messages of a `msgspec.Struct`, or of any type msgspec decodes."""

    def __init__(self, tp: Any) -> None:
        self.name = _type_name(tp)
        try:
            import msgspec
        except ImportError:
            raise _missing("msgspec", self.name) from None
        try:
            decoder = msgspec.json.Decoder(tp)
            custom = _custom_type(msgspec.inspect.type_info(tp))
        except (TypeError, NameError, ValueError) as error:
            raise _unreadable("msgspec", self.name, error) from error
        if custom is not None:  # msgspec reads those only through a dec_hook
            raise _unreadable("msgspec", self.name, f"{_type_name(custom)} is not a type it knows")
        self._type = tp
        self._decode = decoder.decode
        self._encode = msgspec.json.Encoder().encode
        self._convert = msgspec.convert
        self._validation_error = msgspec.ValidationError
        self._decode_error = msgspec.DecodeError
        self._instances_of = _classes_checked(tp, msgspec.Struct)

    def decode(self, data: str | bytes) -> Any:
        try:
            return self._decode(data)
        except self._validation_error as error:
            raise _msgspec_invalid(self.name, str(error)) from None
        except self._decode_error as error:  # malformed JSON
            found = _MSGSPEC_POSITION.search(str(error))
            message = str(error)[: found.start()] if found else str(error)
            detail = {"type": "json_invalid", "loc": (), "msg": str(error)}
            raise _malformed(message, data, int(found["byte"]) if found else 0, [detail]) from None
        except UnicodeEncodeError as error:  # text with a lone surrogate
            message = "message is not valid Unicode (a lone surrogate)"
            detail = {"type": "json_invalid", "loc": (), "msg": message}
            raise _malformed(message, data, len(_utf8(data[: error.start])), [detail]) from None
        except RecursionError:
            message = "JSON nested too deeply"
            detail = {"type": "json_invalid", "loc": (), "msg": message}
            raise _malformed(message, data, 0, [detail]) from None

    def encode(self, value: Any) -> str:
        if self._instances_of is not None:
            if not isinstance(value, self._instances_of):
                raise _not_of_type(self.name, value)
        else:  # msgspec writes whatever it can: converting checks the shape
            try:
                self._convert(value, self._type)
            except self._validation_error as error:
                raise _unsendable(self.name, value, error) from None
        try:
            payload: bytes = self._encode(value)
        except (TypeError, ValueError) as error:  # a lone surrogate is a UnicodeEncodeError
            raise _unsendable(self.name, value, error) from None
        return payload.decode()


def _msgspec_invalid(name: str, message: str) -> InvalidMessage:
    """The `InvalidMessage` for msgspec's `ValidationError` message."""
    message, at, path = message.rpartition(" - at `")
    if not at:  # no path: an error at the top
        message, path = path, "$`"
    loc = tuple(
        int(index) if index.isdigit() else index or key
        for key, index in _MSGSPEC_PATH_PART.findall(path[1:-1])
    )
    message = _MSGSPEC_QUOTING_INPUT.sub(r"\1", message)
    return _invalid(name, [{"type": "validation", "loc": loc, "msg": message}])


_MSGSPEC_POSITION = re.compile(r" \(byte (?P<byte>\d+)\)$")
# "$.user.tags[2]", "$.scores[...]" (a key of a dict, which msgspec does not name).
_MSGSPEC_PATH_PART = re.compile(r"\.([^.\[]+)|\[(\d+|\.\.\.)\]")
# msgspec's messages that quote the input: "Invalid enum value 'x'", "Invalid value 3".
_MSGSPEC_QUOTING_INPUT = re.compile(r"^(Invalid (?:enum )?value) .*$", re.DOTALL)


def _custom_type(info: Any) -> Any:
    """The first type in msgspec's `type_info` tree it reads only through a hook."""
    import msgspec

    seen: set[int] = set()
    pending = [info]
    while pending:
        node = pending.pop()
        if id(node) in seen:  # a recursive Struct
            continue
        seen.add(id(node))
        if isinstance(node, msgspec.inspect.CustomType):
            return node.cls
        if isinstance(node, (list, tuple)):
            pending.extend(node)
        elif isinstance(node, (msgspec.inspect.Type, msgspec.inspect.Field)):
            pending.extend(getattr(node, field) for field in node.__struct_fields__)
    return None


# Shared by both libraries.


def _invalid(name: str, errors: list[dict[str, Any]]) -> InvalidMessage:
    """An `InvalidMessage` for `errors` (the library's list, never empty), its message
    and close reason naming the first."""
    first = errors[0]
    where = _where(first["loc"])
    about = f"{where}: {first['msg']}" if where else first["msg"]
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return InvalidMessage(
        f"invalid {name}: {about}{more}",
        errors=errors,
        reason=_close_reason(f"invalid message: {about}"),
    )


def _malformed(
    message: str, data: str | bytes, offset: int, errors: list[dict[str, Any]]
) -> InvalidJSON:
    """An `InvalidJSON` for what the library says of malformed JSON at byte `offset`."""
    text = data if isinstance(data, str) else data.decode("utf-8", "replace")
    position = len(_utf8(data)[:offset].decode("utf-8", "replace"))
    detail = message.split(": ", 1)[-1]  # "Invalid JSON: EOF while ..." -> "EOF while ..."
    return InvalidJSON(
        message,
        text,
        min(position, len(text)),
        errors=errors,
        reason=_close_reason(f"invalid JSON: {detail}"),
    )


def _where(loc: Iterable[object]) -> str:
    """A location as a path: `address.zip`, `tags[1]`, `scores[...]`."""
    parts = (f"[{part}]" if isinstance(part, int) or part == "..." else f".{part}" for part in loc)
    return "".join(parts).lstrip(".")


def _close_reason(text: str) -> str:
    """`text` as a close reason: at most 123 UTF-8 bytes, cut on a character."""
    encoded = text.encode("utf-8", "replace")  # a lone surrogate (a client's key) as "?"
    if len(encoded) > MAX_REASON_BYTES:
        return encoded[: MAX_REASON_BYTES - 3].decode("utf-8", "ignore") + "…"
    return encoded.decode()


def _utf8(data: str | bytes) -> bytes:
    return data if isinstance(data, bytes) else data.encode("utf-8", "surrogatepass")


def _not_of_type(name: str, value: Any) -> TypeError:
    return TypeError(f"{name} messages take a {name} instance, got {type(value).__name__}")


def _unsendable(name: str, value: Any, error: object) -> TypeError:
    return TypeError(f"cannot send {type(value).__name__} as {name}: {error}")


def _unreadable(library: str, name: str, error: object) -> TypeError:
    return TypeError(f"{library} cannot read messages of type {name}: {error}")


def _missing(library: str, name: str) -> TypeError:
    return TypeError(
        f"messages of type {name} need {library}, which cannot be imported: "
        f"pip install 'bocws[{library}]'"
    )


def _classes_checked(tp: Any, base: type) -> tuple[type, ...] | None:
    """The classes values to send are checked as instances of, if `tp` is one or a
    union of some: subclasses of `base` (models, Structs) or dataclasses."""
    if typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    union = typing.get_origin(tp) in (typing.Union, types.UnionType)
    members = typing.get_args(tp) if union else (tp,)
    if all(
        _is_class(member) and (issubclass(member, base) or dataclasses.is_dataclass(member))
        for member in members
    ):
        return members
    return None


def _holds_struct(tp: Any) -> bool:
    """Whether `tp` is a `msgspec.Struct`, or a typing construct holding one."""
    msgspec = sys.modules.get("msgspec")  # a Struct exists only once msgspec is imported
    if msgspec is None:
        return False
    if _is_class(tp) and issubclass(tp, msgspec.Struct):
        return True
    return any(_holds_struct(argument) for argument in typing.get_args(tp))


def _is_class(tp: Any) -> bool:
    # list[int] passes for a class on Python 3.10, where issubclass() refuses it.
    return isinstance(tp, type) and typing.get_origin(tp) is None


def _type_name(tp: Any) -> str:
    """How `tp` is called in messages: `Point`, `list[Point]`, `Cat | Dog`."""
    origin = typing.get_origin(tp)
    arguments = typing.get_args(tp)
    if origin is None or not arguments:
        if tp is None or tp is type(None):
            return "None"
        if tp is Ellipsis:
            return "..."
        name = getattr(tp, "__name__", None)
        return name if isinstance(name, str) else repr(tp)
    if origin is typing.Annotated:
        return _type_name(arguments[0])
    if origin is typing.Union or origin is types.UnionType:
        return " | ".join(map(_type_name, arguments))
    if origin is Literal:
        return f"Literal[{', '.join(map(repr, arguments))}]"
    return f"{_type_name(origin)}[{', '.join(map(_type_name, arguments))}]"
