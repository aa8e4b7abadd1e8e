"""`App`: WebSocket views and HTTP endpoints over Starlette's routing."""

from __future__ import annotations

import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from starlette._exception_handler import wrap_app_handling_exceptions
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Match, Route, Router, WebSocketRoute
from starlette.types import ASGIApp, Lifespan, Receive, Scope, Send
from starlette.websockets import WebSocket as StarletteWebSocket

from ._asyncapi import DEFAULT_TITLE, DEFAULT_VERSION, asyncapi_document
from ._codecs import MessageKind
from ._invalid import OnInvalid
from ._lifecycle import refuse_origin
from ._metrics import NO_ROUTE, CollectorRegistry, ConnectionMetrics, registry_for
from ._options import DEFAULT, check_options
from ._origins import OriginPolicy
from ._servers import server_message_limit
from ._typed import Library
from .views import ViewEndpoint, WebSocketView
from .websockets import WebSocket

__all__ = ["DEFAULT_MAX_MESSAGE_SIZE", "App"]

DEFAULT_MAX_MESSAGE_SIZE = 1024 * 1024
"""The `max_message_size` of an `App`'s routes unless said otherwise: 1 MiB."""
#: A server that assembles messages more than this many times larger than the largest
#: a route takes is worth a warning: it holds what bocws will refuse.
FAR_ABOVE = 4

logger = logging.getLogger("bocws")

_View = TypeVar("_View", bound="Callable[..., Awaitable[None]] | type[WebSocketView]")
_Endpoint = TypeVar("_Endpoint", bound=Callable[..., Any])
_Hook = TypeVar("_Hook", bound=Callable[[], Any])


class App(Starlette):
    """An ASGI application for WebSocket views, built on Starlette.

    Everything Starlette's application offers works as usual (`routes`, `mount()`,
    `add_middleware()`, `url_path_for()`, `state`, exception handlers, `lifespan`);
    `App` adds Bocadillo-style decorators for views, HTTP endpoints and start-up and
    shut-down hooks. A WebSocket connection that no WebSocket route matches is
    refused with HTTP 403.

    Parameters:
        routes: Starlette routes to start with.
        middleware: Starlette `Middleware` to wrap the application in.
        exception_handlers: as for Starlette, for HTTP endpoints and WebSocket views.
        lifespan: an async context manager factory `lifespan(app)`, as for Starlette;
            it runs inside the `on_startup`/`on_shutdown` hooks.
        debug: show tracebacks in HTTP 500 responses.
        max_message_size: the default of the bocws views registered here, through the
            decorators or `routes` (see `WebSocket`): 1 MiB unless given; `None` for no
            limit but the server's. Mounted apps keep their own. At start-up, an
            `App` whose routes all take far smaller messages than the server assembles
            (uvicorn's `--ws-max-size`, where it can be read) logs one WARNING.
        on_invalid: likewise: what the routes do with a message that is not of their
            kind (see `WebSocket`); `"close"` unless given.
        idle_timeout: likewise (see `websocket_view()`).
        allowed_origins: the browser origins that may open a WebSocket to any route of
            the application, mounted apps included; another origin's handshake is
            refused with 403 before routing. A route's own `allowed_origins` applies on
            top (a handshake must pass both). `None` (the default) checks nothing.
        metrics: Prometheus metrics for every route registered here, as for
            `websocket_view()` (`True` for prometheus-client's default registry, or a
            `CollectorRegistry`); handshakes refused before routing (no WebSocket
            route, or `allowed_origins`) are counted with the `route` label `""`.
            Serve them with prometheus-client's ASGI app: `app.mount("/metrics",
            prometheus_client.make_asgi_app())`.
        asyncapi_url: where to serve `asyncapi()`'s document, as JSON (`"/asyncapi.json"`);
            `None` (the default) serves none.

    Example:
        >>> app = App()
        >>> @app.websocket_route("/echo/{name}", value_type="json")
        ... async def echo(ws, name: str):
        ...     async for message in ws:
        ...         await ws.send({"to": name, "echo": message})
    """

    def __init__(
        self,
        *,
        routes: Sequence[BaseRoute] | None = None,
        middleware: Sequence[Middleware] | None = None,
        exception_handlers: Mapping[Any, Any] | None = None,
        lifespan: Lifespan[Any] | None = None,
        debug: bool = False,
        max_message_size: int | None = DEFAULT_MAX_MESSAGE_SIZE,
        on_invalid: OnInvalid = "close",
        idle_timeout: float | None = None,
        allowed_origins: str | Iterable[str] | None = None,
        metrics: bool | CollectorRegistry = False,
        asyncapi_url: str | None = None,
    ) -> None:
        self._route_defaults = {
            "max_message_size": max_message_size,
            "on_invalid": on_invalid,
            "idle_timeout": idle_timeout,
            "metrics": metrics,
        }
        check_options(self._route_defaults)  # a wrong default fails here, not at the first route
        routes = [self._with_defaults(route) for route in routes or ()]
        super().__init__(
            debug=debug,
            middleware=middleware,
            exception_handlers=exception_handlers,
            lifespan=lifespan,
        )
        self.router = _Router(routes, lifespan=lifespan)
        if asyncapi_url is not None:
            self.router.routes.append(Route(asyncapi_url, self._serve_asyncapi, methods=["GET"]))
        self._startup_hooks: list[Callable[[], Any]] = []
        self._shutdown_hooks: list[Callable[[], Any]] = []
        self._user_lifespan = self.router.lifespan_context
        self.router.lifespan_context = self._lifespan
        self.router.default = self._not_found
        self._origins = OriginPolicy(allowed_origins) if allowed_origins is not None else None
        # What WebSocket connections go through, built with Starlette's middleware stack:
        # `_WebSocketExceptions`, or None where the stack has middleware of the user's.
        self._websockets: ASGIApp | None = None
        registry = registry_for(metrics)
        # Where handshakes refused before routing are counted, with metrics on.
        self._metrics = None if registry is None else ConnectionMetrics.of(registry)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        origins = self._origins
        if origins is not None and scope["type"] == "websocket" and not origins.allows(scope):
            refuse_origin(scope, "application's allowed_origins")
            if self._metrics is not None:
                self._metrics.refuse(NO_ROUTE, "origin")
            await WebSocket(scope, receive, send, auto_accept=False).reject()
            return
        if scope["type"] == "websocket":
            if self.middleware_stack is None:
                self.middleware_stack = self.build_middleware_stack()
            websockets = self._websockets
            if websockets is not None:
                scope["app"] = self
                await websockets(scope, receive, send)
                return
        await super().__call__(scope, receive, send)

    def build_middleware_stack(self) -> ASGIApp:
        """Starlette's middleware stack; and, when it has no middleware of the user's,
        `_WebSocketExceptions` for WebSocket connections: Starlette's stack would only
        pass them through its `ServerErrorMiddleware` and its `ExceptionMiddleware`."""
        self._websockets = None
        if not self.user_middleware:
            handlers = {
                key: handler
                for key, handler in self.exception_handlers.items()
                if key not in (500, Exception)  # ServerErrorMiddleware's: HTTP only
            }
            self._websockets = _WebSocketExceptions(self.router, handlers, self.debug)
        return super().build_middleware_stack()

    # Routes.

    def _with_defaults(self, route: BaseRoute) -> BaseRoute:
        """`route`, its bocws view given this application's defaults where it has none."""
        if (
            isinstance(route, WebSocketRoute)
            and isinstance(route.endpoint, ViewEndpoint)
            and route.app is route.endpoint  # not wrapped in route middleware
        ):
            route.endpoint = route.app = route.endpoint.replace(defaults=self._route_defaults)
        return route

    def websocket_route(
        self,
        pattern: str,
        *,
        auto_accept: bool = DEFAULT,
        value_type: MessageKind | None = DEFAULT,
        receive_type: MessageKind | None = DEFAULT,
        send_type: MessageKind | None = DEFAULT,
        caught_close_codes: Iterable[int] | Callable[..., Any] | None = DEFAULT,
        max_message_size: int | None = DEFAULT,
        codec: Library | None = DEFAULT,
        on_invalid: OnInvalid = DEFAULT,
        idle_timeout: float | None = DEFAULT,
        allowed_origins: str | Iterable[str] | None = DEFAULT,
        metrics: bool | CollectorRegistry = DEFAULT,
        name: str | None = None,
    ) -> Callable[[_View], _View]:
        """Register a WebSocket view (function or `WebSocketView` class) at `pattern`.

        `pattern` uses Starlette's syntax (`/chat/{room}`, `/items/{id:int}`); the view's
        path parameters arrive as keyword arguments. Options are those of
        `websocket_view()`; those left out keep the view's own (a `WebSocketView`'s
        class attributes, the options of `websocket_view()`), else the application's
        (`max_message_size`, `on_invalid`, `idle_timeout`, `metrics`), else `WebSocket`'s
        defaults. The
        decorator returns the view unchanged.

        Raises:
            TypeError: the view is not async, or does not take a path parameter.

        Example:
            >>> @app.websocket_route("/chat/{room}", value_type="json")
            ... async def chat(ws, room: str): ...
        """
        options = {
            "auto_accept": auto_accept,
            "value_type": value_type,
            "receive_type": receive_type,
            "send_type": send_type,
            "caught_close_codes": caught_close_codes,
            "max_message_size": max_message_size,
            "codec": codec,
            "on_invalid": on_invalid,
            "idle_timeout": idle_timeout,
            "allowed_origins": allowed_origins,
            "metrics": metrics,
        }

        def register(view: _View) -> _View:
            self.add_websocket_route(pattern, view, name=name, **options)
            return view

        return register

    def add_websocket_route(
        self,
        path: str,
        view: Callable[..., Awaitable[None]] | type[WebSocketView] | ViewEndpoint,
        name: str | None = None,
        **options: Any,
    ) -> None:
        """Register a view at `path`, like `websocket_route()` without the decorator.

        `view` may already be a `ViewEndpoint` from `websocket_view()`; options given
        here override its own.
        """
        if isinstance(view, ViewEndpoint):
            endpoint = view.replace(defaults=self._route_defaults, **options)
        else:
            endpoint = ViewEndpoint(view, defaults=self._route_defaults, **options)
        route = WebSocketRoute(path, endpoint, name=name)
        endpoint.check_path_parameters(route.param_convertors, path)
        self.router.routes.append(route)

    def route(
        self, pattern: str, methods: Sequence[str] | None = None, name: str | None = None
    ) -> Callable[[_Endpoint], _Endpoint]:
        """Register a Starlette HTTP endpoint (`request -> Response`) at `pattern`.

        Example:
            >>> @app.route("/")
            ... async def home(request):
            ...     return HTMLResponse(PAGE)
        """

        def register(endpoint: _Endpoint) -> _Endpoint:
            self.router.routes.append(Route(pattern, endpoint, methods=methods, name=name))
            return endpoint

        return register

    def asyncapi(
        self,
        *,
        title: str = DEFAULT_TITLE,
        version: str = DEFAULT_VERSION,
        description: str | None = None,
        servers: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """An AsyncAPI 3.0 document of the application's WebSocket routes, mounted apps'
        included: for each, its address, path and query parameters, and the messages it
        receives and sends with their JSON Schemas. Made anew at each call.

        Parameters:
            title: the document's `info.title`.
            version: the API's version (`info.version`).
            description: `info.description`, if given.
            servers: AsyncAPI Server Objects by name (`{"production": {"host":
                "example.com", "protocol": "wss"}}`), none unless given.

        Example:
            >>> document = app.asyncapi(title="Chat", version="2.1.0")
            >>> document["channels"]["chat"]["address"]
            '/chat/{room}'
        """
        return asyncapi_document(
            self, title=title, version=version, description=description, servers=servers
        )

    async def _serve_asyncapi(self, request: Request) -> JSONResponse:
        return JSONResponse(self.asyncapi())

    async def _not_found(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            logger.info("%r: no WebSocket route matches; refusing with 403", scope.get("path"))
            if self._metrics is not None:
                self._metrics.refuse(NO_ROUTE, "no_route")
            await WebSocket(scope, receive, send, auto_accept=False).reject()
            return
        await self.router.not_found(scope, receive, send)

    # Lifespan.

    def on_startup(self, hook: _Hook) -> _Hook:
        """Run `hook()` (sync or async) when the server starts, in registration order.

        Example:
            >>> @app.on_startup
            ... async def connect():
            ...     await broadcast.connect()
        """
        self._startup_hooks.append(hook)
        return hook

    def on_shutdown(self, hook: _Hook) -> _Hook:
        """Run `hook()` (sync or async) when the server stops, in registration order."""
        self._shutdown_hooks.append(hook)
        return hook

    @asynccontextmanager
    async def _lifespan(self, app: Any) -> AsyncIterator[Any]:
        self._check_server_limit()
        for hook in self._startup_hooks:
            await _call(hook)
        started = False
        try:
            async with self._user_lifespan(app) as state:
                started = True
                yield state
        finally:
            if started:  # shut down only what started completely, after the lifespan's exit
                for hook in self._shutdown_hooks:
                    await _call(hook)

    def _check_server_limit(self) -> None:
        """Warn once if the server assembles messages far larger than any route takes."""
        found = server_message_limit()
        largest = self._largest_message()
        if found is None or largest is None:
            return
        setting, limit = found
        if limit > FAR_ABOVE * largest:
            logger.warning(
                "the server assembles WebSocket messages of up to %d bytes (%s) before "
                "bocws can refuse them, but no route of this app takes more than %d: "
                "set the server's limit to %d (see the reliability guide, message size)",
                limit,
                setting,
                largest,
                largest,
            )

    def _largest_message(self) -> int | None:
        """The largest `max_message_size` of this app's views (mounted apps' too), `None`
        if a view takes messages of any size, or if there is no view."""
        largest = 0
        routes = list(self.router.routes)
        while routes:
            route = routes.pop()
            endpoint = getattr(route, "endpoint", None)
            if isinstance(endpoint, ViewEndpoint):
                size = endpoint.options["max_message_size"]
                if size is None:
                    return None
                largest = max(largest, size)
            routes.extend(getattr(getattr(route, "app", None), "routes", None) or ())
        return largest or None


class _WebSocketExceptions(ExceptionMiddleware):
    """Starlette's `ExceptionMiddleware` for WebSocket connections, that leaves them the
    server's `send`.

    Starlette's wraps `send` in a coroutine of its own, for HTTP's sake (to know
    whether a response has started), which every message sent then goes through:
    about 0.3 µs each where the benchmarks ran, nearly what a room's fan-out adds to
    a delivery over raw ASGI. Here the handlers are made known to the view as
    Starlette's are (`scope["starlette.exception_handlers"]`), and an exception that
    leaves the app goes through Starlette's own handling.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["starlette.exception_handlers"] = (self._exception_handlers, self._status_handlers)
        try:
            await self.app(scope, receive, send)
        except Exception as error:
            connection = StarletteWebSocket(scope, receive, send)
            handling = wrap_app_handling_exceptions(_raising(error), connection)
            del error  # this frame, in the error's traceback, must not hold it: a cycle
            await handling(scope, receive, send)


def _raising(error: Exception) -> ASGIApp:
    """An ASGI app that raises `error`, once: it then holds it no longer (a frame
    holding the app, in the error's traceback, would make a cycle)."""
    errors = [error]

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise errors.pop()

    return app


class _Router(Router):
    """Starlette's `Router`, quicker to route a WebSocket handshake.

    A `WebSocketRoute` matches only paths that start with its pattern's static part
    (what comes before the first `{`), after the `root_path`: so routes whose static
    part is nowhere in the path are passed over without running their regular
    expression. Everything else (order, first full match wins, partial matches,
    mounts, hosts, the default) is Starlette's.
    """

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            await super().app(scope, receive, send)
            return
        if "router" not in scope:
            scope["router"] = self
        path = scope["path"]
        partial: BaseRoute | None = None
        partial_scope: Scope = {}
        for route in self.routes:
            if route.__class__ is WebSocketRoute and route.path.partition("{")[0] not in path:
                continue
            match, child_scope = route.matches(scope)
            if match is Match.FULL:
                scope["route"] = route
                scope.update(child_scope)
                await route.handle(scope, receive, send)
                return
            if match is Match.PARTIAL and partial is None:
                partial, partial_scope = route, child_scope
        if partial is not None:
            scope["route"] = partial
            scope.update(partial_scope)
            await partial.handle(scope, receive, send)
            return
        await self.default(scope, receive, send)


async def _call(hook: Callable[[], Any]) -> None:
    result = hook()
    if inspect.isawaitable(result):
        await result
