"""A function view's parameters: read from its signature, filled from the request.

`async def view(ws, room: str, limit: int = 10)` declares `room` and `limit`; each
connection fills them from the path parameters, then the query string, converted by
their annotations. A value that is missing or does not convert refuses the handshake
(`ParameterError`, HTTP 403) before the view runs.

A parameter marked for FastAPI (`user=Depends(get_user)`, `Annotated[str, Header()]`,
`Security`, `Query`, `Path`, `Cookie`) is FastAPI's to fill: the view endpoint shows it
to FastAPI's dependency solver in its signature, and keeps the values FastAPI solved
in the scope (`FASTAPI_VALUES`), where `bind()` takes them from.
"""

from __future__ import annotations

import inspect
import math
import re
import typing
import uuid
from collections.abc import Callable, Iterable
from types import NoneType, UnionType
from typing import Any

from starlette.requests import HTTPConnection

from ._exceptions import ParameterError

__all__ = [
    "FASTAPI_VALUES",
    "MAX_NUMBER_LENGTH",
    "ViewParameters",
    "connect_parameters",
    "resolved_annotations",
    "view_name",
]

FASTAPI_VALUES = "bocws.fastapi_values"
"""The scope key of the values FastAPI solved for a view's FastAPI parameters."""


class ViewParameters:
    """The keyword parameters of a function view after its first (the WebSocket).

    `parameters` are bocws's to fill; `fastapi` are those FastAPI fills, as the
    parameters of the endpoint's signature.

    Raises:
        TypeError: the view does not take the WebSocket first, a parameter cannot be
            passed by name, is marked with a FastAPI object other than `Depends`,
            `Security`, `Query`, `Path`, `Header` or `Cookie`, or is annotated with a
            type bocws cannot convert to.
    """

    def __init__(self, name: str, view: Callable[..., Any]) -> None:
        self.view_name = name
        self.parameters, self.fastapi, self.var_keyword = _read_signature(name, view)

    def check_path(self, names: Iterable[str], path: str) -> None:
        """Raise `TypeError` if the view cannot take the path parameters `names`."""
        if self.var_keyword:
            return
        declared = {parameter.name for parameter in self.parameters}
        missing = [name for name in names if name not in declared]
        if missing:
            raise TypeError(
                f"view {self.view_name!r} does not take the path parameter(s) "
                f"{', '.join(missing)} of {path!r}: add them to its signature (or **params)"
            )

    def bind(self, connection: HTTPConnection) -> dict[str, Any]:
        """The view's keyword arguments, from the path and the query string, and those
        FastAPI solved.

        Raises:
            ParameterError: a required parameter is missing or a value does not convert.
        """
        path_params: dict[str, Any] = connection.scope.get("path_params") or {}
        kwargs: dict[str, Any] = {}
        query = None  # parsed only for a parameter the path does not give
        for parameter in self.parameters:
            name = parameter.name
            if name in path_params:
                kwargs[name] = parameter.value(path_params[name], "path")
                continue
            if query is None:
                query = connection.query_params
            if name in query:
                kwargs[name] = parameter.value(query[name], "query")
            elif parameter.required:
                raise ParameterError(f"missing query parameter {name!r}")
        if self.fastapi:
            kwargs.update(connection.scope[FASTAPI_VALUES])
        if self.var_keyword:
            for name, value in path_params.items():
                kwargs.setdefault(name, value)
        return kwargs


def connect_parameters(name: str, on_connect: Callable[..., Any]) -> list[inspect.Parameter]:
    """The parameters FastAPI fills of a class view's `on_connect(self, ws, ...)`.

    Raises:
        TypeError: as `ViewParameters`, for a parameter marked for FastAPI.
    """
    signature = inspect.signature(on_connect)
    _, marked = resolved_annotations(on_connect, signature)
    found = []
    for parameter in list(signature.parameters.values())[2:]:
        annotation = marked.get(parameter.name, parameter.annotation)
        fastapi = _fastapi_parameter(name, parameter, annotation)
        if fastapi is not None:
            found.append(fastapi)
    return found


def view_name(view: object) -> str:
    return getattr(view, "__qualname__", None) or repr(view)


def _read_signature(
    name: str, view: Callable[..., Any]
) -> tuple[list[_Parameter], list[inspect.Parameter], bool]:
    """The keyword parameters of a function view after its first (the WebSocket): those
    bocws fills, those FastAPI fills, and whether it takes `**params`."""
    signature = inspect.signature(view)
    hints, marked = resolved_annotations(view, signature)
    parameters = list(signature.parameters.values())
    if not parameters or parameters[0].kind not in (
        inspect.Parameter.POSITIONAL_ONLY,
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
        inspect.Parameter.VAR_POSITIONAL,
    ):
        raise TypeError(f"view {name!r} must take the WebSocket as its first argument")
    filled: list[_Parameter] = []
    fastapi: list[inspect.Parameter] = []
    var_keyword = False
    for parameter in parameters[1:]:
        annotation = marked.get(parameter.name, parameter.annotation)
        solved = _fastapi_parameter(name, parameter, annotation)
        if solved is not None:
            fastapi.append(solved)
        elif parameter.kind is inspect.Parameter.VAR_KEYWORD:
            var_keyword = True
        elif parameter.kind is inspect.Parameter.POSITIONAL_ONLY:
            if parameter.default is inspect.Parameter.empty:
                raise TypeError(
                    f"view {name!r}: parameter {parameter.name!r} is positional-only and "
                    "cannot be passed by name; make it a keyword parameter"
                )
        elif parameter.kind is not inspect.Parameter.VAR_POSITIONAL:
            annotation = hints.get(parameter.name, parameter.annotation)
            filled.append(_Parameter(name, parameter, annotation))
    return filled, fastapi, var_keyword


def resolved_annotations(
    function: Callable[..., Any], signature: inspect.Signature
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The resolved annotations of `function`: without `Annotated`'s extras (the types
    bocws converts to), and with them (where FastAPI's markers may be)."""
    try:
        return typing.get_type_hints(function), typing.get_type_hints(function, include_extras=True)
    except Exception:  # e.g. `ws: WebSocket` imported only under TYPE_CHECKING
        hints = _resolve_each(function, signature)
        return hints, hints


def _fastapi_parameter(
    view_name: str, parameter: inspect.Parameter, annotation: Any
) -> inspect.Parameter | None:
    """`parameter` as FastAPI's solver is to read it, if it is marked for FastAPI: by
    its default (`Depends(get_user)`) or in `Annotated[..., Header()]`.

    Raises:
        TypeError: it cannot be passed by name, or is marked with a FastAPI object
            that says nothing a handshake carries (a `Body`, a security scheme).
    """
    markers = [parameter.default]
    if typing.get_origin(annotation) is typing.Annotated:
        markers.extend(typing.get_args(annotation)[1:])
    marker = next((m for m in markers if type(m).__module__.startswith("fastapi.")), None)
    if marker is None:
        return None
    from fastapi import params  # only once a FastAPI object is seen: FastAPI is installed

    what = f"view {view_name!r}: parameter {parameter.name!r}"
    if not isinstance(marker, (params.Depends, params.Param)):  # a Body, Form, File ...
        raise TypeError(
            f"{what} is marked with a FastAPI {type(marker).__name__}, which a WebSocket "
            "handshake cannot fill: declare it with Depends, Security, Query, Path, Header "
            "or Cookie"
        )
    if parameter.kind not in (
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
        inspect.Parameter.KEYWORD_ONLY,
    ):
        raise TypeError(f"{what} is FastAPI's and must be passed by name; make it a keyword one")
    return parameter.replace(kind=inspect.Parameter.KEYWORD_ONLY, annotation=annotation)


def _resolve_each(view: Callable[..., Any], signature: inspect.Signature) -> dict[str, Any]:
    """Resolve string annotations one by one, leaving out those that do not resolve.

    Only the parameters bocws fills need resolving; the WebSocket's may name a type
    imported for type checkers only.
    """
    namespace = getattr(inspect.unwrap(view), "__globals__", {})
    hints: dict[str, Any] = {}
    for parameter in signature.parameters.values():
        annotation = parameter.annotation
        if isinstance(annotation, str):
            try:
                annotation = eval(annotation, namespace)  # what get_type_hints does, per name
            except Exception:
                continue
        hints[parameter.name] = annotation
    return hints


_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def _to_str(raw: str) -> str:
    return raw


#: The longest number a parameter converts, in characters: a value is parsed in time
#: linear in its length, and a longer one is refused before any parsing.
MAX_NUMBER_LENGTH = 400
_INTEGER = re.compile(r"-?[0-9]+")
# Each character can be matched one way only (digits, then an optional fraction, then
# an optional exponent): no backtracking, so matching takes linear time.
_NUMBER = re.compile(r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")


def _to_int(raw: str) -> int:
    # Stricter than int(): ASCII digits only, no spaces, underscores or "+".
    if len(raw) > MAX_NUMBER_LENGTH or _INTEGER.fullmatch(raw) is None:
        raise ValueError
    return int(raw)


def _to_float(raw: str) -> float:
    # Stricter than float(): no spaces, underscores, "+", nan or infinity.
    if len(raw) > MAX_NUMBER_LENGTH or _NUMBER.fullmatch(raw) is None:
        raise ValueError
    value = float(raw)
    if not math.isfinite(value):  # 1e999
        raise ValueError
    return value


def _to_bool(raw: str) -> bool:
    lowered = raw.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError


_CONVERTERS: dict[Any, tuple[Callable[[str], Any], str]] = {
    str: (_to_str, "a string"),
    int: (_to_int, "an integer"),
    float: (_to_float, "a finite number"),
    bool: (_to_bool, "a boolean (true/false, 1/0, yes/no, on/off)"),
    uuid.UUID: (uuid.UUID, "a UUID"),
}


class _Parameter:
    """One keyword parameter of a function view, and how to fill it."""

    __slots__ = ("convert", "description", "name", "optional", "required")

    def __init__(self, view_name: str, parameter: inspect.Parameter, annotation: Any) -> None:
        self.name = parameter.name
        self.required = parameter.default is inspect.Parameter.empty
        self.optional = False
        if annotation is inspect.Parameter.empty or annotation is Any:
            annotation = str
        # `int | None` and `Optional[int]` convert as `int`; an empty value is None.
        if isinstance(annotation, UnionType) or typing.get_origin(annotation) is typing.Union:
            members = [arg for arg in typing.get_args(annotation) if arg is not NoneType]
            if len(members) == 1:
                self.optional = members[0] is not annotation
                annotation = members[0]
        if annotation not in _CONVERTERS:
            raise TypeError(
                f"parameter {self.name!r} of view {view_name!r} is annotated {annotation!r}: "
                "bocws fills view parameters from the path and the query string and converts "
                "them to str, int, float, bool or uuid.UUID; read anything else from "
                "ws.query_params"
            )
        self.convert, self.description = _CONVERTERS[annotation]

    def value(self, raw: Any, source: str) -> Any:
        if not isinstance(raw, str):
            return raw  # already converted by a Starlette path convertor, e.g. {id:int}
        if not raw and self.optional:
            return None  # `?n=` for `n: int | None`
        try:
            return self.convert(raw)
        except ValueError:
            raise ParameterError(
                f"{source} parameter {self.name!r} must be {self.description}, got {raw!r}"
            ) from None
