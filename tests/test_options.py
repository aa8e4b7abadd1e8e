"""The option table (`bocws._options.OPTIONS`) and the five places that list options.

`WebSocket.__init__`, `WebSocketView`'s class attributes, `websocket_view()`'s keyword
overload and `App.websocket_route()` each spell the options out (for type checkers,
editors and the API reference); these tests hold each of them to the table, names,
order and defaults, so that adding an option fails here until every list has it.
"""

from __future__ import annotations

import inspect
import typing
from typing import Any

import pytest

from bocws import App, WebSocket, WebSocketView, websocket_view
from bocws._options import DEFAULT, OPTIONS, check_options

ROUTE_OPTIONS = [(option.name, option.default) for option in OPTIONS]
WEBSOCKET_OPTIONS = [(option.name, option.default) for option in OPTIONS if option.websocket]


def keyword_only(function: Any) -> list[tuple[str, Any]]:
    return [
        (parameter.name, parameter.default)
        for parameter in inspect.signature(function).parameters.values()
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY
    ]


def test_websocket_takes_the_websocket_options_with_their_defaults() -> None:
    assert keyword_only(WebSocket.__init__) == WEBSOCKET_OPTIONS


def test_class_views_take_every_option_as_a_class_attribute() -> None:
    attributes = [(name, getattr(WebSocketView, name)) for name, _ in ROUTE_OPTIONS]
    assert attributes == ROUTE_OPTIONS
    annotated = list(typing.get_type_hints(WebSocketView))
    assert annotated == [name for name, _ in ROUTE_OPTIONS]


def test_websocket_view_lists_every_option() -> None:
    overloads = typing.get_overloads(websocket_view)
    with_options = [keyword_only(overload) for overload in overloads if keyword_only(overload)]
    assert [[name for name, _ in options] for options in with_options] == [
        [name for name, _ in ROUTE_OPTIONS]
    ]


def test_app_websocket_route_lists_every_option_then_the_name() -> None:
    options = keyword_only(App.websocket_route)
    assert [name for name, _ in options] == [*(name for name, _ in ROUTE_OPTIONS), "name"]
    assert all(default is DEFAULT for name, default in options if name != "name")


@pytest.mark.parametrize("function", [WebSocket.__init__, websocket_view])
def test_each_docstring_names_every_option_it_takes(function: Any) -> None:
    names = {name for name, _ in keyword_only(function)}
    for overload in typing.get_overloads(function):
        names |= {name for name, _ in keyword_only(overload)}
    owner = WebSocket if function is WebSocket.__init__ else function
    documented = inspect.getdoc(owner) or ""
    assert [name for name in names if name not in documented] == []
    # App.websocket_route() refers to websocket_view() for them.
    assert "websocket_view()" in (inspect.getdoc(App.websocket_route) or "")


def test_check_options_checks_each_option_with_the_tables_check() -> None:
    checked = check_options({})
    assert list(checked) == [name for name, _ in ROUTE_OPTIONS]
    with pytest.raises(TypeError, match="unknown view option"):
        check_options({"max_size": 1})
    with pytest.raises(TypeError, match="auto_accept must be True or False"):
        check_options({"auto_accept": "yes"})
    with pytest.raises(ValueError, match="unknown receive_type"):
        check_options({"receive_type": "xml"})
    with pytest.raises(ValueError, match="idle_timeout"):
        check_options({"idle_timeout": 0})
