"""JSON for `send_json`/`receive_json`: the standard library's, through orjson when installed.

The semantics are the standard library's in both cases: compact output
(`separators=(",", ":")`), non-ASCII text kept as it is, NaN and infinities refused,
Python's parsing of big integers, `NaN` literals and lone surrogates. orjson is only a
faster road to the same result: wherever it would answer differently (a float it
writes as `null` or spells otherwise, an integer over 64 bits it reads as a float, a
type it does not take), the standard library answers instead. Both also serialise
`uuid.UUID` (as its string) and `enum.Enum` members (as their value), as orjson does
natively, and what pydantic and msgspec write in their own JSON: a pydantic model as
`model.model_dump(mode="json")`, a `msgspec.Struct` as `msgspec.to_builtins()`, a
dataclass as an object of its fields, `datetime`, `date` and `time` in ISO 8601 (`Z`
for UTC) and `Decimal` as its string. These go through the standard library's
`default` hook only (`_default`), so plain documents take the same road as ever;
pydantic and msgspec are never imported here (a model exists only once its library
is).

What is read can be written back: `loads` refuses what `dumps` could not write,
whichever library does the work. `NaN` and `Infinity` literals, numbers too large
for a float (`1e999`), and documents nested deeper than `MAX_DEPTH` levels are
refused with `ValueError`, as the standard library's `loads(..., allow_nan=False)`
would refuse them if it could. One difference remains, documented: an
`orjson.Fragment` is written as it is (only orjson's users make one).
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import json
import math
import sys
import uuid
from typing import Any

try:
    import orjson
except ImportError:  # the optional extra: bocws[orjson]
    orjson = None  # type: ignore[assignment]

__all__ = ["BACKEND", "MAX_DEPTH", "dumps", "dumps_bytes", "loads"]

#: Which library does the work: "orjson" or "json".
BACKEND = "json" if orjson is None else "orjson"

#: The deepest nesting of arrays and objects read: deeper documents are refused. What
#: is read can be written back (orjson writes 254 levels, and the standard library,
#: which bocws falls back to, several hundred more).
MAX_DEPTH = 256


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (math.inf, -math.inf):
        raise ValueError(f"number {text[:40]} is too large for a float")
    return value


# The standard library, held to what can be written back: no NaN, no infinities.
_DECODER = json.JSONDecoder(parse_constant=_refuse_constant, parse_float=_finite_float)


def _standard_loads(text: str) -> Any:
    if text.startswith("\ufeff"):  # as json.loads says it
        raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
    try:
        value = _DECODER.decode(text)
    except json.JSONDecodeError:
        raise
    except ValueError:  # NaN, an infinity: unless the document is malformed anyway
        json.loads(text)  # raises as json.loads does for a malformed document
        raise
    return _check_depth(text, value)


def _check_depth(text: str, value: Any) -> Any:
    """`value`, parsed from `text`, unless it is nested deeper than `MAX_DEPTH`."""
    # A document MAX_DEPTH levels deep has at least that many "[" or "{": most texts
    # are too short, or have too few, to need the walk.
    if len(text) <= MAX_DEPTH or text.count("[") + text.count("{") <= MAX_DEPTH:
        return value
    level = [(value, 1)]
    while level:
        item, depth = level.pop()
        if depth > MAX_DEPTH:
            raise ValueError(f"nested deeper than {MAX_DEPTH} levels")
        if isinstance(item, dict):
            level.extend((member, depth + 1) for member in item.values())
        elif isinstance(item, list):
            level.extend((member, depth + 1) for member in item)
    return value


# 19 digits in a row may be an integer over 64 bits, which orjson reads as a float.
# Found by turning every digit into "0" (bytes.translate: a regular expression costs
# about 8 ns a character) and looking for 19 of them.
_ALL_DIGITS_ZERO = bytes(48 if 48 <= code <= 57 else code for code in range(256))
_LONG_NUMBER = b"0" * 19


def _default(value: Any) -> Any:
    """The JSON-ready stand-in for a value neither encoder takes as it is (the same
    for both, so that their outputs agree)."""
    # What orjson serialises natively and the standard library does not.
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    # What pydantic's and msgspec's JSON write.
    if isinstance(value, (datetime.datetime, datetime.time)):
        return _iso_time(value)
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    # Pydantic models and dataclasses: their own serialiser, as model_dump(mode="json").
    serializer = getattr(type(value), "__pydantic_serializer__", None)
    if serializer is not None:
        return serializer.to_python(value, mode="json")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {field.name: getattr(value, field.name) for field in dataclasses.fields(value)}
    msgspec = sys.modules.get("msgspec")  # a Struct exists only once msgspec is imported
    if msgspec is not None and isinstance(value, msgspec.Struct):
        return msgspec.to_builtins(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _iso_time(value: datetime.datetime | datetime.time) -> str:
    """`value` in ISO 8601 as pydantic writes it: `Z` for UTC, an offset in minutes."""
    offset = value.utcoffset()
    if offset is None:
        return value.isoformat()
    text = value.replace(tzinfo=None).isoformat()
    # Pydantic rounds the offset to the second (half away from zero), then drops the
    # seconds: -00:00 for -30 s, +00:01 for 59.5 s.
    microseconds = offset // datetime.timedelta(microseconds=1)
    seconds = (abs(microseconds) + 500_000) // 1_000_000
    if not seconds:
        return text + "Z"
    sign = "-" if microseconds < 0 else "+"
    return f"{text}{sign}{seconds // 3600:02}:{seconds // 60 % 60:02}"


def _standard(data: Any, ascii: bool) -> str:
    try:
        return json.dumps(
            data, separators=(",", ":"), ensure_ascii=ascii, allow_nan=False, default=_default
        )
    except ValueError as error:  # NaN/Infinity, circular references
        raise TypeError(f"cannot serialise to JSON: {error}") from error
    except RecursionError:
        raise TypeError("cannot serialise to JSON: nested too deeply") from None


def _standard_text(data: Any) -> str:
    text = _standard(data, False)
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: send it \u-escaped, as JSON allows
            return _standard(data, True)
    return text


if orjson is None:

    def dumps(data: Any) -> str:
        """`data` as compact JSON text; `TypeError` if it cannot be serialised."""
        return _standard_text(data)

    def dumps_bytes(data: Any) -> bytes:
        """`data` as compact JSON in UTF-8; `TypeError` if it cannot be serialised."""
        return _standard_text(data).encode("utf-8")

    def loads(text: str) -> Any:
        """Parse JSON text, raising as `json.loads` does (and `ValueError` for what
        cannot be written back: see the module's docstring)."""
        return _standard_loads(text)

else:
    # Subclasses of str, int, dict and list, dataclasses and datetimes go to the standard
    # library, which takes the first (as it always did) and the others through
    # `_default`, as it does models and Structs, which orjson refuses. (Giving orjson
    # `_default` too would cost every plain document a few nanoseconds.)
    _OPTIONS = (
        orjson.OPT_PASSTHROUGH_SUBCLASS
        | orjson.OPT_PASSTHROUGH_DATACLASS
        | orjson.OPT_PASSTHROUGH_DATETIME
    )
    _dumps = orjson.dumps
    _loads = orjson.loads
    _Error = orjson.JSONEncodeError
    _DecodeError = orjson.JSONDecodeError

    def dumps(data: Any) -> str:
        """`data` as compact JSON text; `TypeError` if it cannot be serialised."""
        try:
            text: str = _dumps(data, option=_OPTIONS).decode()
        except _Error:
            return _standard_text(data)
        # Where orjson's text may differ from Python's: "null" may be a NaN or an
        # infinity; "e-" and "0.0000" a float under 1e-4, which orjson spells 1e-7 and
        # 0.00001 where Python writes 1e-07 and 1e-05. (Searched in the str: `in` on
        # bytes costs four times as much.)
        if "null" in text or "e-" in text or "0.0000" in text:
            return _standard_text(data)
        return text

    def dumps_bytes(data: Any) -> bytes:
        """`data` as compact JSON in UTF-8; `TypeError` if it cannot be serialised."""
        return dumps(data).encode()

    def loads(text: str) -> Any:
        """Parse JSON text, raising as `json.loads` does (and `ValueError` for what
        cannot be written back: see the module's docstring)."""
        try:
            payload = text.encode()
        except UnicodeEncodeError:  # a lone surrogate: Python decides
            return _standard_loads(text)
        if payload.translate(_ALL_DIGITS_ZERO).find(_LONG_NUMBER) < 0:
            try:
                value = _loads(payload)
            except _DecodeError:
                pass  # NaN, 1e400, a lone surrogate escape, or bad JSON: Python decides
            else:
                # _check_depth()'s first test, inlined: most texts are too short to need it.
                return value if len(text) <= MAX_DEPTH else _check_depth(text, value)
        return _standard_loads(text)
