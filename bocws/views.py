"""Turning functions and classes into ASGI WebSocket views.

A view is an `async def view(ws, **params)` function or a `WebSocketView` subclass.
`websocket_view()` wraps either in a `ViewEndpoint`: an ASGI application that builds
the `WebSocket` with the route's options, fills the view's parameters from the path
and the query string, and gives every connection the same lifecycle (closing codes,
logging, errors).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import math
import re
import sys
import time
import typing
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from types import NoneType, UnionType
from typing import Any, TypeVar, overload

import anyio
from starlette.exceptions import HTTPException
from starlette.types import Message, Receive, Scope, Send
from starlette.websockets import WebSocket as StarletteWebSocket

from ._codes import CloseCode, close_code_name
from ._exceptions import InvalidMessage, ParameterError
from ._options import (
    WEBSOCKET_OPTIONS,
    MessageType,
    check_options,
    class_options,
    merge_options,
)
from ._origins import OriginPolicy
from ._state import CONNECTING, DISCONNECT, DISCONNECTED, RESPONSE
from .websockets import WebSocket, WebSocketDisconnect, is_error_code

__all__ = ["ViewEndpoint", "WebSocketView", "websocket_view"]

logger = logging.getLogger("bocws")

_View = TypeVar("_View", bound="Callable[..., Awaitable[None]] | type[WebSocketView]")

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


def _view_name(view: object) -> str:
    return getattr(view, "__qualname__", None) or repr(view)


class WebSocketView:
    """A class-based view: one instance per connection, with hooks for its events.

    Route options are class attributes (`auto_accept`, `value_type`, `receive_type`,
    `send_type`, `caught_close_codes`, `max_message_size`, `idle_timeout`,
    `allowed_origins`); options given to `websocket_view()` or `App.websocket_route()`
    override them.

    Example:
        >>> @app.websocket_route("/echo")
        ... class Echo(WebSocketView):
        ...     value_type = "json"
        ...
        ...     async def on_message(self, ws, message):
        ...         await ws.send(message)
    """

    auto_accept: bool = True
    value_type: MessageType | None = None
    receive_type: MessageType | None = None
    send_type: MessageType | None = None
    caught_close_codes: Iterable[int] | Callable[..., Any] | None = None
    max_message_size: int | None = None
    idle_timeout: float | None = None
    allowed_origins: str | Iterable[str] | None = None

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
    endpoint)` (FastAPI calls it with its `websocket` argument).

    Parameters:
        view: an `async def view(ws, **params)` function or a `WebSocketView` subclass.
        defaults: options for those neither given here nor set by the view itself (an
            `App`'s `max_message_size` and `idle_timeout`).
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
        name = _view_name(view)
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
            self._parameters: list[_Parameter] = []
            self._var_keyword = False
        else:
            if not inspect.iscoroutinefunction(view):
                raise TypeError(
                    f"view {name!r} must be an async function (async def), "
                    f"got {type(view).__name__}"
                )
            self._parameters, self._var_keyword = _read_signature(name, view)
        self.view = view
        self.options = check_options(merge_options(self._defaults, options))
        self._websocket_options = {key: self.options[key] for key in WEBSOCKET_OPTIONS}
        self._idle_timeout: float | None = self.options["idle_timeout"]
        origins = self.options["allowed_origins"]
        self._origins = OriginPolicy(origins) if origins is not None else None
        self.__name__ = getattr(view, "__name__", type(view).__name__)
        self.__qualname__ = name
        self.__doc__ = view.__doc__
        self.__module__ = getattr(view, "__module__", __name__)
        # What FastAPI's dependency analysis sees: one argument, the Starlette WebSocket.
        self.__signature__ = _FASTAPI_SIGNATURE

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
        """Raise `TypeError` if the view cannot take the path parameters `names`."""
        if self._var_keyword or isinstance(self.view, type):
            return
        declared = {parameter.name for parameter in self._parameters}
        missing = [name for name in names if name not in declared]
        if missing:
            raise TypeError(
                f"view {self.__qualname__!r} does not take the path parameter(s) "
                f"{', '.join(missing)} of {path!r}: add them to its signature (or **params)"
            )

    async def __call__(
        self,
        scope: Scope | None = None,
        receive: Receive | None = None,
        send: Send | None = None,
        *,
        websocket: Any = None,
    ) -> None:
        if websocket is not None:
            # FastAPI's add_api_websocket_route: take over its untouched Starlette WebSocket.
            scope, receive, send = websocket.scope, websocket._receive, websocket._send
        if scope is None or receive is None or send is None:
            raise TypeError("a view endpoint is called with (scope, receive, send)")
        if self._idle_timeout is None:
            await self._serve(WebSocket(scope, receive, send, **self._websocket_options))
            return
        activity = _Activity(receive, send)
        ws = WebSocket(scope, activity.receive, activity.send, **self._websocket_options)
        await self._serve(ws, activity)

    async def _serve(self, ws: WebSocket, activity: _Activity | None = None) -> None:
        """Run the view over `ws` and end the connection, whatever happens."""
        try:
            if activity is None:
                await self._run(ws)
            else:
                await self._run_watched(ws, activity)
        except Exception as error:
            if await self._end_with_error(ws, error):
                # A bare raise: a frame in the error's traceback that held it (a
                # variable, an argument) would keep it, its frames and `ws` in a cycle.
                raise
            return
        if activity is not None and activity.expired:
            logger.info(
                "%r: closing the connection, idle for %s s (idle_timeout)",
                ws.scope.get("path"),
                self._idle_timeout,
            )
            await _finish(ws, CloseCode.NORMAL_CLOSURE, IDLE_REASON)
            return
        await _finish(ws, CloseCode.NORMAL_CLOSURE)

    async def _run(self, ws: WebSocket) -> None:
        """Check the handshake's origin and parameters, then run the view."""
        if self._origins is not None and not self._origins.allows(ws.scope):
            refuse_origin(ws.scope, "allowed_origins of view " + self.__qualname__)
            await ws.reject()
            return
        if isinstance(self.view, type):
            await self._run_class(ws, self.view())
            return
        try:
            kwargs = self._bind(ws)
        except ParameterError as error:
            logger.info("%r: rejecting the handshake: %s", ws.scope.get("path"), str(error))
            await ws.reject()
            return
        await self.view(ws, **kwargs)

    async def _run_watched(self, ws: WebSocket, activity: _Activity) -> None:
        """Run the view, cancelling it once no message has passed for `idle_timeout`."""
        assert self._idle_timeout is not None
        error: Exception | None = None
        view_scope = anyio.CancelScope()
        async with anyio.create_task_group() as watchers:
            watchers.start_soon(activity.watch, ws, self._idle_timeout, view_scope)
            try:
                with view_scope:
                    await self._run(ws)
            except Exception as exc:
                error = exc  # raised below, out of the task group, so not in a group
            finally:
                watchers.cancel_scope.cancel()
        # Idle only if the cancellation reached the view: one that returned first (a
        # long step without a checkpoint) ended by itself.
        activity.expired = view_scope.cancelled_caught
        if error is not None:
            try:
                raise error
            finally:
                del error  # this frame, in the error's traceback, must not hold it: a cycle

    async def _end_with_error(self, ws: WebSocket, error: Exception) -> bool:
        """End the connection after the view raised `error`; whether to re-raise it.

        The client's departure, its bad data and Starlette's `WebSocketException` end
        the connection with one log line (see `WebSocket._ending_of`, the rule shared
        with `async with`); anything else, even inside an exception group from a task
        group, is the application's: 1011, an ERROR line, and the error to the server.
        """
        ending = ws._ending_of(error)
        if ending.kind == "closed":
            return False  # the application closed first, and said so where it did
        path = ws.scope.get("path")
        if ending.kind == "departure":
            level = logging.WARNING if is_error_code(ending.code) else logging.INFO
            reason = f" {ending.reason!r}" if ending.reason else ""
            logger.log(
                level, "%r: the client left with %s%s", path, close_code_name(ending.code), reason
            )
            return False
        if ending.kind != "bug":
            try:
                if ending.kind == "refuse":
                    await ws.reject()
                else:
                    await _finish(ws, ending.code, ending.reason)
            except WebSocketDisconnect:
                pass  # the client has gone: nothing is left to close
            ws._log_close(f"view {self.__qualname__}: {ending.detail}")
            return False
        handled = _has_starlette_handler(ws.scope, error)
        if handled and ws.application_state is CONNECTING:
            return True  # Starlette's (or FastAPI's) handler answers the handshake
        await _finish(ws, CloseCode.INTERNAL_ERROR, ending.reason)
        # One line: the exception goes on to the server, which logs its traceback.
        logger.error(
            "%r: view %s raised %s: %s; %s",
            path,
            self.__qualname__,
            type(error).__name__,
            str(error),  # not the error: a handler keeping records would keep its frames
            ws._how_it_ended(),
        )
        # A handler would answer over a connection already closed: stop here.
        return not handled

    def _bind(self, ws: WebSocket) -> dict[str, Any]:
        """The view's keyword arguments, from the path and the query string.

        Raises:
            ParameterError: a required parameter is missing or a value does not convert.
        """
        path_params: dict[str, Any] = ws.scope.get("path_params") or {}
        kwargs: dict[str, Any] = {}
        query = None  # parsed only for a parameter the path does not give
        for parameter in self._parameters:
            name = parameter.name
            if name in path_params:
                kwargs[name] = parameter.value(path_params[name], "path")
                continue
            if query is None:
                query = ws.query_params
            if name in query:
                kwargs[name] = parameter.value(query[name], "query")
            elif parameter.required:
                raise ParameterError(f"missing query parameter {name!r}")
        if self._var_keyword:
            for name, value in path_params.items():
                kwargs.setdefault(name, value)
        return kwargs

    async def _run_class(self, ws: WebSocket, view: WebSocketView) -> None:
        await view.on_connect(ws)
        if ws.application_state is DISCONNECTED or ws.application_state is RESPONSE:
            return  # on_connect rejected or closed the connection
        event_mode = ws.receive_type == "event"
        try:
            while True:
                if ws.client_state is DISCONNECTED:  # a hook caught the disconnect itself
                    code = ws._client_gone().code
                    break
                message = await ws.receive()
                if event_mode and message["type"] == DISCONNECT:
                    code = int(message.get("code", CloseCode.NO_STATUS_RCVD))
                    break
                await view.on_message(ws, message)
        except (WebSocketDisconnect, InvalidMessage) as error:
            ending = ws._ending_of(error)
            if ending.kind == "bug":
                raise  # another connection's: the view's error
            # This connection's end: the client left, or sent bad data.
            await view.on_disconnect(ws, ending.code)
            if ending.kind == "close" or not ws._ends_quietly(ending):
                raise  # the lifecycle closes and logs
            return  # as `async for` ends on a caught code
        await view.on_disconnect(ws, code)


IDLE_REASON = "idle timeout"
#: How long the lifecycle's own close may wait for the server to take it, in seconds.
#: A client that stopped reading leaves the server unable to write, and the close
#: would wait with it; the view is over, so its task is not kept for that.
CLOSE_TIMEOUT = 10.0


async def _finish(ws: WebSocket, code: int, reason: str | None = None) -> None:
    """Close the connection at the end of the view, waiting about `CLOSE_TIMEOUT` at most
    (up to a tenth more under asyncio: see `_CloseWatch`)."""
    if ws.application_state is DISCONNECTED or ws.client_state is DISCONNECTED:
        await ws.ensure_closed(code, reason)  # checks the code; nothing to send or wait for
        return
    try:
        task = asyncio.current_task()
    except RuntimeError:  # not asyncio (trio, through anyio)
        task = None
    if task is None:
        with anyio.move_on_after(CLOSE_TIMEOUT) as waited:
            await ws.ensure_closed(code, reason)
        gave_up = waited.cancelled_caught
    else:
        gave_up = await _close_within(ws, code, reason, task)
    if gave_up:
        logger.info(
            "%r: the client reads nothing; gave up sending the close (%d) after %s s",
            ws.scope.get("path"),
            code,
            CLOSE_TIMEOUT,
        )


async def _close_within(
    ws: WebSocket, code: int, reason: str | None, task: asyncio.Task[Any]
) -> bool:
    """`ensure_closed()` under asyncio, cancelled after `CLOSE_TIMEOUT`; whether it was."""
    # Cancellations the task already had, not ours to take back (as asyncio.timeout).
    pending = 0
    if sys.version_info >= (3, 11):
        pending = task.cancelling()
    expiry = _Expiry(task, CLOSE_TIMEOUT)
    watch = _CloseWatch.of(task.get_loop())
    watch.add(expiry)
    try:
        await ws.ensure_closed(code, reason)
    except asyncio.CancelledError:
        # Ours only if the watch fired and no other cancellation came meanwhile. Python
        # 3.10 does not count cancellations: one from outside in the very loop iteration
        # of the expiry is taken for ours there.
        if not expiry.fired or (sys.version_info >= (3, 11) and task.uncancel() > pending):
            raise
        return True
    finally:
        watch.discard(expiry)
    if expiry.fired and sys.version_info >= (3, 11):
        # The server turned our cancellation into another error, which the close
        # absorbed: take the request back, so that the task is not left cancelling.
        task.uncancel()
    return expiry.fired


class _Expiry:
    """Cancel a task once its deadline has passed, remembering that it did."""

    __slots__ = ("deadline", "fired", "task")

    def __init__(self, task: asyncio.Task[Any], seconds: float) -> None:
        self.task = task
        self.deadline = task.get_loop().time() + seconds
        self.fired = False

    def fire(self) -> None:
        self.fired = True
        self.task.cancel()


class _CloseWatch:
    """The final closes under way in one event loop, and the one timer that cancels
    those past their deadline.

    A timer per close (`loop.call_later`, cancelled once the close is sent) cost
    about 4 us per connection: cancelled timers stay in the loop's heap until it is
    cleaned up. Here a close costs a set insertion and removal; a timer runs only
    while closes are under way, every tenth of `CLOSE_TIMEOUT` (so a close is given up
    between 1 and 1.1 times `CLOSE_TIMEOUT` after it started).
    """

    __slots__ = ("loop", "pending", "ticking")

    _current: _CloseWatch | None = None

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.pending: set[_Expiry] = set()
        self.ticking = False

    @classmethod
    def of(cls, loop: asyncio.AbstractEventLoop) -> _CloseWatch:
        """The watch of `loop` (one at a time: a new loop gets a new watch)."""
        watch = cls._current
        if watch is None or watch.loop is not loop:
            cls._current = watch = cls(loop)
        return watch

    def add(self, expiry: _Expiry) -> None:
        self.pending.add(expiry)
        if not self.ticking:
            self.ticking = True
            self.loop.call_later(CLOSE_TIMEOUT / 10, self.tick)

    def discard(self, expiry: _Expiry) -> None:
        self.pending.discard(expiry)

    def tick(self) -> None:
        now = self.loop.time()
        for expiry in [expiry for expiry in self.pending if expiry.deadline <= now]:
            self.pending.discard(expiry)
            expiry.fire()
        if self.pending:
            self.loop.call_later(CLOSE_TIMEOUT / 10, self.tick)
            return
        self.ticking = False
        if _CloseWatch._current is self:
            _CloseWatch._current = None  # keep no loop alive once its closes are done


def refuse_origin(scope: Scope, setting: str) -> None:
    """Log the refusal of a handshake whose `Origin` `setting` does not allow."""
    origin = next((value for name, value in scope["headers"] if name == b"origin"), b"")
    logger.info(
        "%r: refusing a handshake from origin %r: not in the %s",
        scope.get("path"),
        origin.decode("latin-1"),
        setting,
    )


class _Activity:
    """The ASGI callables of one connection, noting when a message last passed."""

    __slots__ = ("_receive", "_send", "expired", "last")

    def __init__(self, receive: Receive, send: Send) -> None:
        self._receive = receive
        self._send = send
        self.last = time.monotonic()
        self.expired = False

    async def receive(self) -> Message:
        message = await self._receive()
        self.last = time.monotonic()
        return message

    async def send(self, message: Message) -> None:
        await self._send(message)
        self.last = time.monotonic()

    async def watch(self, ws: WebSocket, seconds: float, view_scope: anyio.CancelScope) -> None:
        """Cancel `view_scope` once no message has passed on `ws` for `seconds`.

        Once either side has closed, the connection is no longer idle but over: the
        view's own clean-up is left alone.
        """
        while True:
            remaining = self.last + seconds - time.monotonic()
            if remaining <= 0:
                break
            await anyio.sleep(remaining)
        if ws.client_state is DISCONNECTED or ws.application_state is DISCONNECTED:
            return
        view_scope.cancel()


def _has_starlette_handler(scope: Scope, error: Exception) -> bool:
    """Whether the Starlette (or FastAPI) app around the view has a handler for `error`."""
    handlers = scope.get("starlette.exception_handlers")
    if not handlers:
        return False
    exception_handlers, status_handlers = handlers
    if isinstance(error, HTTPException) and error.status_code in status_handlers:
        return True
    return any(cls in exception_handlers for cls in type(error).__mro__)


# FastAPI reads this to call the endpoint as endpoint(websocket=<Starlette WebSocket>).
_FASTAPI_SIGNATURE = inspect.Signature(
    [inspect.Parameter("websocket", inspect.Parameter.KEYWORD_ONLY, annotation=StarletteWebSocket)]
)


def _read_signature(name: str, view: Callable[..., Any]) -> tuple[list[_Parameter], bool]:
    """The keyword parameters of a function view after its first (the WebSocket)."""
    signature = inspect.signature(view)
    try:
        hints = typing.get_type_hints(view)
    except Exception:  # e.g. `ws: WebSocket` imported only under TYPE_CHECKING
        hints = _resolve_each(view, signature)
    parameters = list(signature.parameters.values())
    if not parameters or parameters[0].kind not in (
        inspect.Parameter.POSITIONAL_ONLY,
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
        inspect.Parameter.VAR_POSITIONAL,
    ):
        raise TypeError(f"view {name!r} must take the WebSocket as its first argument")
    filled: list[_Parameter] = []
    var_keyword = False
    for parameter in parameters[1:]:
        if parameter.kind is inspect.Parameter.VAR_KEYWORD:
            var_keyword = True
        elif parameter.kind is inspect.Parameter.POSITIONAL_ONLY:
            if parameter.default is inspect.Parameter.empty:
                raise TypeError(
                    f"view {name!r}: parameter {parameter.name!r} is positional-only and "
                    "cannot be passed by name; make it a keyword parameter"
                )
        elif parameter.kind is not inspect.Parameter.VAR_POSITIONAL:
            if type(parameter.default).__module__.startswith("fastapi."):
                raise TypeError(
                    f"view {name!r}: parameter {parameter.name!r} defaults to a FastAPI "
                    f"{type(parameter.default).__name__}, which bocws does not resolve (the "
                    "client could fill it from the query string); declare dependencies on the "
                    "route instead: add_api_websocket_route(path, view, dependencies=[...])"
                )
            annotation = hints.get(parameter.name, parameter.annotation)
            filled.append(_Parameter(name, parameter, annotation))
    return filled, var_keyword


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


@overload
def websocket_view(view: _View, /) -> ViewEndpoint: ...


@overload
def websocket_view(
    view: None = None,
    /,
    *,
    auto_accept: bool = ...,
    value_type: MessageType | None = ...,
    receive_type: MessageType | None = ...,
    send_type: MessageType | None = ...,
    caught_close_codes: Iterable[int] | Callable[..., Any] | None = ...,
    max_message_size: int | None = ...,
    idle_timeout: float | None = ...,
    allowed_origins: str | Iterable[str] | None = ...,
) -> Callable[[_View], ViewEndpoint]: ...


def websocket_view(
    view: _View | None = None, /, **options: Any
) -> ViewEndpoint | Callable[[_View], ViewEndpoint]:
    """Turn an `async def view(ws, **params)` or a `WebSocketView` class into an ASGI endpoint.

    Use it bare (`@websocket_view`) or with route options (`@websocket_view(value_type=
    "json")`): `auto_accept`, `value_type`, `receive_type`, `send_type`,
    `caught_close_codes` and `max_message_size`, as for `WebSocket`, and:

    - `idle_timeout`: seconds without a message, in either direction, after which the
      view is cancelled and the connection closed with 1000 "idle timeout";
    - `allowed_origins`: the browser origins that may connect (exact, `*.example.com`
      patterns, or `"*"`); another origin's handshake is refused with 403 before the
      view runs. Handshakes without an `Origin` header, and same-origin ones, pass.

    Raises:
        TypeError: the view is not an async function or a `WebSocketView` subclass, an
            option is unknown, or a parameter's annotation cannot be converted.
        ValueError: an unknown message type.

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
