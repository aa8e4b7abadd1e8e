"""The options of a WebSocket and of a route: one table, its checks, and how options merge.

`WebSocket(...)` takes the first eight; routes (`websocket_view()`,
`App.websocket_route()`, a `WebSocketView`'s class attributes) take all eleven.
`tests/test_options.py` checks every one of those signatures against `OPTIONS`, so
that none drifts from the table.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Container, Iterable, Mapping
from typing import Any, NamedTuple

from ._codecs import codec_for
from ._codes import CloseCode, is_int
from ._invalid import ON_INVALID
from ._metrics import registry_for
from ._origins import OriginPolicy
from ._typed import LIBRARIES, is_type_form

__all__ = [
    "DEFAULT",
    "OPTIONS",
    "OPTION_DEFAULTS",
    "WEBSOCKET_OPTIONS",
    "check_codec",
    "check_on_invalid",
    "check_options",
    "check_seconds",
    "check_size_limit",
    "class_options",
    "merge_options",
    "normalize_caught",
]

DEFAULT_CAUGHT_CLOSE_CODES = (CloseCode.NORMAL_CLOSURE, CloseCode.GOING_AWAY)


class _AnyCode:
    """The `caught_close_codes` container that holds every close code."""

    __slots__ = ()

    def __contains__(self, code: object) -> bool:
        return True

    def __repr__(self) -> str:
        return "all"


_ANY_CODE = _AnyCode()
_DEFAULT_CAUGHT = frozenset(DEFAULT_CAUGHT_CLOSE_CODES)


def normalize_caught(codes: Iterable[int] | Callable[..., Any] | None) -> Container[int]:
    """The close codes `caught_close_codes` stands for, as a container to test with `in`."""
    if codes is None:
        return _DEFAULT_CAUGHT
    if codes is all or isinstance(codes, _AnyCode):
        return _ANY_CODE
    if callable(codes) or not isinstance(codes, Iterable):
        raise TypeError(
            "caught_close_codes must be None, the builtin all, or an iterable of ints, "
            f"got {codes!r}"
        )
    normalized = set()
    for code in codes:
        if not is_int(code):
            raise TypeError(f"caught_close_codes must hold ints, got {code!r}")
        normalized.add(int(code))
    return frozenset(normalized)


def check_size_limit(name: str, value: object) -> None:
    """Raise unless `value` is `None` or a positive int (a size in bytes)."""
    if value is None:
        return
    if not is_int(value):
        raise TypeError(f"{name} must be None or an int (bytes), got {type(value).__name__}")
    if value <= 0:
        raise ValueError(f"{name} must be a positive number of bytes, got {value}")


def check_seconds(name: str, value: object, *, zero: bool = True) -> None:
    """Raise unless `value` is a finite number of seconds (>= 0, or > 0 with `zero=False`)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise TypeError(f"{name} must be a number of seconds, got {type(value).__name__}")
    if not math.isfinite(value) or value < 0 or (value == 0 and not zero):
        expected = "0 or more" if zero else "more than 0"
        raise ValueError(f"{name} must be a finite number of seconds, {expected}, got {value}")


def _check_bool(name: str) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if not isinstance(value, bool):
            raise TypeError(f"{name} must be True or False, got {value!r}")
        return value

    return check


def _check_idle_timeout(value: Any) -> Any:
    if value is not None:
        check_seconds("idle_timeout", value, zero=False)
    return value


def _check_origins(value: Any) -> Any:
    if value is not None:
        OriginPolicy(value)  # raises for a malformed entry
    return value


def _check_metrics(value: Any) -> Any:
    registry_for(value)  # raises for what is not a bool or a registry, or without the extra
    return value


def _message_kind(name: str) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if value is not None and not is_type_form(value):
            codec_for(name, value)  # raises for what is neither a kind's name nor a codec
        return value  # a type: checked with the `codec` option (see check_options)

    return check


def check_codec(value: Any) -> Any:
    """Raise unless `value` is a `codec` option: `None`, `"pydantic"` or `"msgspec"`."""
    if value is not None and value not in LIBRARIES:
        raise ValueError(f"codec must be None, 'pydantic' or 'msgspec', got {value!r}")
    return value


def check_on_invalid(value: Any) -> Any:
    """Raise unless `value` is an `on_invalid` policy: a name of `ON_INVALID`, or a
    callable `(ws, error)`."""
    if isinstance(value, str):
        if value not in ON_INVALID:
            raise ValueError(
                f"unknown on_invalid {value!r}: use {', '.join(map(repr, ON_INVALID))}, "
                "or a function (ws, error)"
            )
    elif not callable(value):
        raise TypeError(
            f"on_invalid must be one of {', '.join(map(repr, ON_INVALID))} or a callable "
            f"(ws, error), got {value!r}"
        )
    return value


def _size_limit(value: Any) -> Any:
    check_size_limit("max_message_size", value)
    return value


class Option(NamedTuple):
    """One option: its name, its default, whether `WebSocket` itself takes it (else only
    routes do), and its check, which raises for a value it refuses and returns the value
    to use."""

    name: str
    default: Any
    websocket: bool
    check: Callable[[Any], Any]


#: Every option, in the order the signatures list them.
OPTIONS = (
    Option("auto_accept", True, True, _check_bool("auto_accept")),
    Option("value_type", None, True, _message_kind("value_type")),
    Option("receive_type", None, True, _message_kind("receive_type")),
    Option("send_type", None, True, _message_kind("send_type")),
    Option("caught_close_codes", None, True, normalize_caught),
    Option("max_message_size", None, True, _size_limit),
    Option("codec", None, True, check_codec),
    Option("on_invalid", "close", True, check_on_invalid),
    Option("idle_timeout", None, False, _check_idle_timeout),
    Option("allowed_origins", None, False, _check_origins),
    Option("metrics", False, False, _check_metrics),
)
#: The options `WebSocket` takes, with their defaults.
WEBSOCKET_OPTIONS: dict[str, Any] = {
    option.name: option.default for option in OPTIONS if option.websocket
}
#: Every route option with its default: the `WebSocket`'s, then the route's own.
OPTION_DEFAULTS: dict[str, Any] = {option.name: option.default for option in OPTIONS}
DIRECTIONS = frozenset({"receive_type", "send_type"})


class _Default:
    """The default of an option left out: the view's own setting, else `WebSocket`'s."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<default>"


#: Marks a route option that was not given (typed Any to stand in for any option type).
DEFAULT: Any = _Default()


def merge_options(base: Mapping[str, Any], given: Mapping[str, Any]) -> dict[str, Any]:
    """Route options `given` over those of `base` (a view's own); `DEFAULT`s are left out.

    A `receive_type` or `send_type` given alone overrides `base`'s `value_type` for
    that direction only.
    """
    given = {key: value for key, value in given.items() if value is not DEFAULT}
    merged = dict(base)
    value_type = merged.get("value_type")
    if value_type is not None and "value_type" not in given and given.keys() & DIRECTIONS:
        merged["receive_type"] = merged["send_type"] = value_type
        merged["value_type"] = None
    merged.update(given)
    return merged


def check_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """Validate route options once, when the view is declared; return them complete."""
    unknown = set(options) - set(OPTION_DEFAULTS)
    if unknown:
        raise TypeError(
            f"unknown view option(s) {', '.join(sorted(unknown))}: use {', '.join(OPTION_DEFAULTS)}"
        )
    merged = {**OPTION_DEFAULTS, **options}
    checked = {option.name: option.check(merged[option.name]) for option in OPTIONS}
    for name in ("value_type", "receive_type", "send_type"):
        kind = checked[name]
        if kind is not None and is_type_form(kind):
            # Made once here, with the library the route names: a type it cannot read,
            # or the extra missing, fails when the view is declared.
            codec_for(name, kind, checked["codec"])
    return checked


def class_options(view: type[Any], base: type[Any]) -> dict[str, Any]:
    """The options a class-based view (a subclass of `base`) sets as class attributes,
    base classes first.

    Each class is merged like route options over its bases', so a subclass's
    `receive_type` overrides an inherited `value_type` for receiving only.
    """
    options: dict[str, Any] = {}
    for cls in reversed(view.__mro__[: view.__mro__.index(base)]):
        own = {key: value for key, value in vars(cls).items() if key in OPTION_DEFAULTS}
        options = merge_options(options, own)
    return options
