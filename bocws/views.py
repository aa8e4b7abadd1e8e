"""Turning functions and classes into ASGI WebSocket views.

A view is an `async def view(ws, **params)` function or a `WebSocketView` subclass.
`websocket_view()` wraps either in a `ViewEndpoint`: an ASGI application that builds
the `WebSocket` with the route's options, fills the view's parameters from the path
and the query string, and gives every connection the same lifecycle (closing codes,
logging, errors).
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, TypeVar, overload

from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket as StarletteWebSocket

from ._codecs import MessageKind
from ._codes import CloseCode
from ._connection import count_with, ended_with, ending_of, ends_quietly, gone_code
from ._exceptions import InvalidMessage, ParameterError, WebSocketDisconnect
from ._invalid import OnInvalid
from ._lifecycle import Activity, refuse_origin, serve
from ._metrics import CollectorRegistry, ConnectionMetrics, RouteMetrics, Tally, registry_for
from ._options import WEBSOCKET_OPTIONS, check_options, class_options, merge_options
from ._origins import OriginPolicy
from ._parameters import FASTAPI_VALUES, ViewParameters, connect_parameters, view_name
from ._state import DISCONNECT, DISCONNECTED, RESPONSE
from ._typed import Library
from .websockets import WebSocket

__all__ = ["ViewEndpoint", "WebSocketView", "websocket_view"]

logger = logging.getLogger("bocws")

_View = TypeVar("_View", bound="Callable[..., Awaitable[None]] | type[WebSocketView]")


class WebSocketView:
    """A class-based view: one instance per connection, with hooks for its events.

    Route options are class attributes (`auto_accept`, `value_type`, `receive_type`,
    `send_type`, `caught_close_codes`, `max_message_size`, `codec`, `on_invalid`,
    `idle_timeout`, `allowed_origins`, `metrics`); options given to `websocket_view()` or
    `App.websocket_route()` override them.

    Example:
        >>> @app.websocket_route("/echo")
        ... class Echo(WebSocketView):
        ...     value_type = "json"
        ...
        ...     async def on_message(self, ws, message):
        ...         await ws.send(message)
    """

    auto_accept: bool = True
    value_type: MessageKind | None = None
    receive_type: MessageKind | None = None
    send_type: MessageKind | None = None
    caught_close_codes: Iterable[int] | Callable[..., Any] | None = None
    max_message_size: int | None = None
    codec: Library | None = None
    on_invalid: OnInvalid = "close"
    idle_timeout: float | None = None
    allowed_origins: str | Iterable[str] | None = None
    metrics: bool | CollectorRegistry = False

    async def on_connect(self, ws: WebSocket) -> None:
        """Called first. The default accepts; override to check the client and `reject()`."""
        await ws.accept()

    async def on_message(self, ws: WebSocket, message: Any) -> None:
        """Called for each message, decoded according to `receive_type`. Does nothing."""

    async def on_disconnect(self, ws: WebSocket, code: int) -> None:
        """Called once an accepted connection ends, with its close code. Does nothing."""


class ViewEndpoint:
    """The ASGI application serving a view; made by `websocket_view()`.

    Use it wherever Starlette takes an ASGI endpoint: `bocws.App`, Starlette's
    `WebSocketRoute(path, endpoint)`, or FastAPI's `add_api_websocket_route(path,
    endpoint)` (FastAPI calls it with its `websocket` argument, and the values it solved
    for the view's FastAPI parameters: `Depends`, `Query` ...). A view with FastAPI
    parameters is served by FastAPI's routing only.

    Parameters:
        view: an `async def view(ws, **params)` function or a `WebSocketView` subclass.
        defaults: options for those neither given here nor set by the view itself (an
            `App`'s `max_message_size`, `idle_timeout` and `metrics`).
        options: route options, as for `websocket_view()`.

    Attributes:
        view: the function or `WebSocketView` subclass served.
        options: the complete route options, validated.
    """

    def __init__(
        self,
        view: Callable[..., Awaitable[None]] | type[WebSocketView],
        /,
        *,
        defaults: Mapping[str, Any] | None = None,
        **options: Any,
    ):
        name = view_name(view)
        self._given = options = merge_options({}, options)
        self._defaults = dict(defaults or {})
        if isinstance(view, type):
            if not issubclass(view, WebSocketView):
                raise TypeError(
                    f"view class {name!r} must subclass bocws.WebSocketView, or be a function"
                )
            for hook in ("on_connect", "on_message", "on_disconnect"):
                if not inspect.iscoroutinefunction(getattr(view, hook)):
                    raise TypeError(f"{name}.{hook} must be an async method (async def)")
            options = merge_options(class_options(view, WebSocketView), options)
            self._parameters: ViewParameters | None = None
            fastapi = connect_parameters(name + ".on_connect", view.on_connect)
        else:
            if not inspect.iscoroutinefunction(view):
                raise TypeError(
                    f"view {name!r} must be an async function (async def), "
                    f"got {type(view).__name__}"
                )
            self._parameters = ViewParameters(name, view)
            fastapi = self._parameters.fastapi
        self.view = view
        self.options = check_options(merge_options(self._defaults, options))
        self._websocket_options = {key: self.options[key] for key in WEBSOCKET_OPTIONS}
        self._idle_timeout: float | None = self.options["idle_timeout"]
        origins = self.options["allowed_origins"]
        self._origins = OriginPolicy(origins) if origins is not None else None
        registry = registry_for(self.options["metrics"])
        self._metrics = None if registry is None else ConnectionMetrics.of(registry)
        # The route the last connection came through (Starlette's), and its metrics.
        self._last_route: tuple[object, RouteMetrics] | None = None
        self.__name__ = getattr(view, "__name__", type(view).__name__)
        self.__qualname__ = name
        self.__doc__ = view.__doc__
        self.__module__ = getattr(view, "__module__", __name__)
        self._fastapi_names = tuple(parameter.name for parameter in fastapi)
        self.__signature__ = _fastapi_signature(name, fastapi)

    def __repr__(self) -> str:
        return f"<ViewEndpoint {self.__qualname__}>"

    def replace(self, *, defaults: Mapping[str, Any] | None = None, **options: Any) -> ViewEndpoint:
        """A new endpoint for the same view, with `options` overriding those given here.

        `defaults`, if given, replaces the defaults of this endpoint.
        """
        if defaults is None:
            defaults = self._defaults
        return ViewEndpoint(self.view, defaults=defaults, **merge_options(self._given, options))

    def check_path_parameters(self, names: Iterable[str], path: str) -> None:
        """Raise `TypeError` if the view cannot take the path parameters `names`, or has
        FastAPI parameters (`bocws.App`, which calls this, does not fill them)."""
        if self._fastapi_names:
            raise self._outside_fastapi()
        if self._parameters is not None:
            self._parameters.check_path(names, path)

    def _outside_fastapi(self) -> TypeError:
        """The error for a view with FastAPI parameters served without FastAPI's solver."""
        return TypeError(
            f"view {self.__qualname__!r} has FastAPI parameters "
            f"({', '.join(self._fastapi_names)}), which only FastAPI's routing fills: "
            "register it on a FastAPI app or APIRouter (@app.websocket(path) or "
            "add_api_websocket_route(path, view)), not on a bocws App, a Starlette "
            "WebSocketRoute or as an ASGI app of its own"
        )

    async def __call__(
        self,
        websocket: Scope | StarletteWebSocket,
        receive: Receive | None = None,
        send: Send | None = None,
        **solved: Any,
    ) -> None:
        # An ASGI app, called with (scope, receive, send); FastAPI calls it with its
        # Starlette WebSocket as `websocket=`, and what it solved for the view's FastAPI
        # parameters (see _fastapi_signature). A call without arguments fails at once:
        # uvicorn makes one to detect app factories.
        if isinstance(websocket, StarletteWebSocket):
            # Take over FastAPI's untouched Starlette WebSocket.
            scope, receive, send = websocket.scope, websocket._receive, websocket._send
        else:
            scope = websocket
        if receive is None or send is None:
            raise TypeError("a view endpoint is called with (scope, receive, send)")
        if self._fastapi_names:
            if not solved:  # not called by FastAPI
                raise self._outside_fastapi()
            scope[FASTAPI_VALUES] = solved
        name = self.__qualname__
        if self._metrics is not None:
            await self._serve_counted(self._metrics, scope, receive, send)
            return
        if self._idle_timeout is None:
            ws = WebSocket(scope, receive, send, **self._websocket_options)
            await serve(ws, self._run, name)
            return
        activity = Activity(receive, send)
        ws = WebSocket(scope, activity.receive, activity.send, **self._websocket_options)
        await serve(ws, self._run, name, activity, self._idle_timeout)

    async def _serve_counted(
        self, metrics: ConnectionMetrics, scope: Scope, receive: Receive, send: Send
    ) -> None:
        """Serve a connection with metrics on: its messages counted on the way (`Tally`),
        the counts written to the route's metrics once it has ended."""
        tally = Tally(self._route_metrics(metrics, scope))
        activity = None if self._idle_timeout is None else Activity(receive, send)
        if activity is not None:
            receive, send = activity.receive, activity.send
        ws = WebSocket(scope, receive, send, **self._websocket_options)
        count_with(ws, tally)
        run = functools.partial(self._run, tally=tally)
        try:
            await serve(ws, run, self.__qualname__, activity, self._idle_timeout, tally.fail)
        finally:
            tally.flush(ended_with(ws))

    def _route_metrics(self, metrics: ConnectionMetrics, scope: Scope) -> RouteMetrics:
        """The metrics of the route serving `scope`: labelled with its path pattern."""
        route = scope.get("route")
        last = self._last_route
        if last is not None and last[0] is route:
            return last[1]
        found = metrics.route(route_pattern(self, scope))
        if route is not None:
            self._last_route = (route, found)
        return found

    async def _run(self, ws: WebSocket, tally: Tally | None = None) -> None:
        """Check the handshake's origin and parameters (a refusal noted on `tally`, with
        metrics on), then run the view."""
        if self._origins is not None and not self._origins.allows(ws.scope):
            refuse_origin(ws.scope, "allowed_origins of view " + self.__qualname__)
            if tally is not None:
                tally.refuse("origin")
            await ws.reject()
            return
        view = self.view
        if isinstance(view, type):
            await self._run_class(ws, view())
            return
        assert self._parameters is not None  # a function view's
        try:
            kwargs = self._parameters.bind(ws)
        except ParameterError as error:
            logger.info("%r: rejecting the handshake: %s", ws.scope.get("path"), str(error))
            if tally is not None:
                tally.refuse("parameters")
            await ws.reject()
            return
        await view(ws, **kwargs)

    async def _run_class(self, ws: WebSocket, view: WebSocketView) -> None:
        if self._fastapi_names:
            await view.on_connect(ws, **ws.scope[FASTAPI_VALUES])
        else:
            await view.on_connect(ws)
        if ws.application_state is DISCONNECTED or ws.application_state is RESPONSE:
            return  # on_connect rejected or closed the connection
        event_mode = ws.receive_type == "event"
        try:
            while True:
                if ws.client_state is DISCONNECTED:  # a hook caught the disconnect itself
                    code = gone_code(ws)
                    break
                message = await ws.receive()
                if event_mode and message["type"] == DISCONNECT:
                    code = int(message.get("code", CloseCode.NO_STATUS_RCVD))
                    break
                await view.on_message(ws, message)
        except (WebSocketDisconnect, InvalidMessage) as error:
            ending = ending_of(ws, error)
            if ending.kind == "bug":
                raise  # another connection's: the view's error
            # This connection's end: the client left, or sent bad data.
            await view.on_disconnect(ws, ending.code)
            if ending.kind == "close" or not ends_quietly(ws, ending):
                raise  # the lifecycle closes and logs
            return  # as `async for` ends on a caught code
        await view.on_disconnect(ws, code)


def route_pattern(endpoint: ViewEndpoint, scope: Scope) -> str:
    """The path pattern (`/chat/{room}`) of the route serving `endpoint` for `scope`.

    Starlette (and FastAPI) put the route matched in the scope; else the route of the
    scope's router whose endpoint it is; else, outside any router, the view's qualified
    name. Never the path itself: a metric label per path would have no bound. Inside a
    `Mount`, the pattern after the mount's prefix.
    """
    pattern = _pattern_of(scope.get("route"), endpoint)
    for candidate in getattr(scope.get("router"), "routes", None) or ():
        if pattern is not None:
            break
        pattern = _pattern_of(candidate, endpoint)
    return endpoint.__qualname__ if pattern is None else pattern


def _pattern_of(route: object, endpoint: ViewEndpoint) -> str | None:
    """The path pattern of `route` if it serves `endpoint`."""
    path = getattr(route, "path", None)
    if getattr(route, "endpoint", None) is endpoint and isinstance(path, str):
        return path
    return None


def _fastapi_signature(name: str, fastapi: list[inspect.Parameter]) -> inspect.Signature:
    """The signature FastAPI's dependency solver reads from the endpoint of a view with
    the FastAPI parameters `fastapi`: FastAPI calls it as `endpoint(websocket=<Starlette
    WebSocket>, **<what it solved for them>)`.

    Raises:
        TypeError: a FastAPI parameter is named as an argument of `ViewEndpoint.__call__`.
    """
    taken = [parameter.name for parameter in fastapi if parameter.name in _CALL_ARGUMENTS]
    if taken:
        raise TypeError(
            f"view {name!r}: FastAPI parameter {taken[0]!r} has the name of an argument of "
            f"the view endpoint ({', '.join(_CALL_ARGUMENTS)}): rename it (a Query, Header "
            f"or Cookie keeps its name on the wire with alias={taken[0]!r})"
        )
    websocket = inspect.Parameter(
        "websocket", inspect.Parameter.KEYWORD_ONLY, annotation=StarletteWebSocket
    )
    return inspect.Signature([websocket, *fastapi])


_CALL_ARGUMENTS = ("websocket", "receive", "send")


@overload
def websocket_view(view: _View, /) -> ViewEndpoint: ...


@overload
def websocket_view(
    view: None = None,
    /,
    *,
    auto_accept: bool = ...,
    value_type: MessageKind | None = ...,
    receive_type: MessageKind | None = ...,
    send_type: MessageKind | None = ...,
    caught_close_codes: Iterable[int] | Callable[..., Any] | None = ...,
    max_message_size: int | None = ...,
    codec: Library | None = ...,
    on_invalid: OnInvalid = ...,
    idle_timeout: float | None = ...,
    allowed_origins: str | Iterable[str] | None = ...,
    metrics: bool | CollectorRegistry = ...,
) -> Callable[[_View], ViewEndpoint]: ...


def websocket_view(
    view: _View | None = None, /, **options: Any
) -> ViewEndpoint | Callable[[_View], ViewEndpoint]:
    """Turn an `async def view(ws, **params)` or a `WebSocketView` class into an ASGI endpoint.

    Use it bare (`@websocket_view`) or with route options (`@websocket_view(value_type=
    "json")`): `auto_accept`, `value_type`, `receive_type`, `send_type`,
    `caught_close_codes`, `max_message_size`, `codec` and `on_invalid`, as for
    `WebSocket`, and:

    - `idle_timeout`: seconds without a message, in either direction, after which the
      view is cancelled and the connection closed with 1000 "idle timeout";
    - `allowed_origins`: the browser origins that may connect (exact, `*.example.com`
      patterns, or `"*"`); another origin's handshake is refused with 403 before the
      view runs. Handshakes without an `Origin` header, and same-origin ones, pass;
    - `metrics`: count the route's connections, messages and refusals as Prometheus
      metrics (`True` in prometheus-client's default registry, or a `CollectorRegistry`;
      see the metrics guide); needs the `bocws[prometheus]` extra.

    Raises:
        TypeError: the view is not an async function or a `WebSocketView` subclass, an
            option is unknown, a parameter's annotation cannot be converted, or a
            FastAPI parameter is one a handshake cannot fill (`Body`) or is misnamed.
        ValueError: an unknown message type.
        ImportError: `metrics` without prometheus-client installed.

    Example:
        >>> @websocket_view(value_type="json")
        ... async def echo(ws):
        ...     async for message in ws:
        ...         await ws.send(message)
        >>> routes = [starlette.routing.WebSocketRoute("/echo", echo)]
    """
    if view is None:
        check_options(merge_options({}, options))  # a mistyped option fails here, not later
        return lambda view: ViewEndpoint(view, **options)
    return ViewEndpoint(view, **options)
