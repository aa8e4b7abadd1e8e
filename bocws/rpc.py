"""JSON-RPC 2.0 over a WebSocket, in both directions: `JsonRpc` and `RpcError`.

A `JsonRpc` is a view (a `ViewEndpoint`): register it on a route like any other, and
the route's options (origins, limits, idle timeout, metrics) apply. It reads each
frame as JSON-RPC 2.0 (https://www.jsonrpc.org/specification): requests,
notifications and batches from the client, answers to the server's own calls
(`call()`), and writes the answers. Every mistake of the client's is answered with
the specification's error, and the connection stays open.

Parameters and results are typed by the methods' annotations: pydantic validates the
parameters (a model made once per method with `create_model`) and the answer is
written as the typed messages are (`bocws._json`); with `codec="msgspec"`, a
`msgspec.defstruct` per method and `msgspec.convert` do it. Without either library,
the parameters are only bound to the signature.

Requests of one connection run concurrently, at most `max_concurrency` at a time:
beyond that the reader waits for one to finish before it reads on (backpressure, never
an unbounded queue). A method written as a plain function cannot wait for anything,
so the reader runs it at once; an `async def` method runs in a task of its own, made
the cheapest way the event loop offers (`_Tasks`: asyncio's own tasks under asyncio,
a task group under anything else, trio through anyio).
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import logging
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from typing import Any, TypeVar, overload

import anyio

from . import _json
from ._baton import Baton
from ._codecs import Codec
from ._codes import CloseCode
from ._connection import ended_with
from ._exceptions import WebSocketDisconnect
from ._invalid import trimmed_errors
from ._options import check_codec
from ._parameters import resolved_annotations
from ._state import DISCONNECTED, RESPONSE
from ._typed import Library, json_schemas
from .views import ViewEndpoint
from .websockets import WebSocket

__all__ = [
    "INTERNAL_ERROR",
    "INVALID_PARAMS",
    "INVALID_REQUEST",
    "METHOD_NOT_FOUND",
    "PARSE_ERROR",
    "JsonRpc",
    "RpcError",
]

logger = logging.getLogger("bocws")

# The specification's errors.
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
_MESSAGES = {
    PARSE_ERROR: "Parse error",
    INVALID_REQUEST: "Invalid Request",
    METHOD_NOT_FOUND: "Method not found",
    INVALID_PARAMS: "Invalid params",
    INTERNAL_ERROR: "Internal error",
}
#: The OpenRPC version of the documents `rpc.discover` answers with.
OPENRPC_VERSION = "1.3.2"

_NO_DATA: Any = object()
_Function = TypeVar("_Function", bound=Callable[..., Any])
_Self = TypeVar("_Self", bound="_Tasks")


class RpcError(Exception):
    """A JSON-RPC error: raise it in a method to answer with it; `call()` raises it
    when the client answers with one.

    Parameters:
        code: the error's code (an integer; -32768 to -32000 are the specification's).
        message: a short description.
        data: anything JSON can carry, more about the error (left out if not given).

    Example:
        >>> @rpc.method
        ... async def withdraw(amount: int) -> int:
        ...     if amount > balance:
        ...         raise RpcError(1001, "insufficient funds", {"balance": balance})
    """

    def __init__(self, code: int, message: str, data: Any = _NO_DATA) -> None:
        super().__init__(code, message)
        self.code = code
        self.message = message
        self.data = data

    def __str__(self) -> str:
        return f"{self.message} ({self.code})"

    def error_object(self) -> dict[str, Any]:
        """The error as JSON-RPC's error object."""
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not _NO_DATA:
            error["data"] = self.data
        return error


def _error(code: int, data: Any = _NO_DATA) -> RpcError:
    return RpcError(code, _MESSAGES[code], data)


class JsonRpc(ViewEndpoint):
    """A view that speaks JSON-RPC 2.0: methods the client calls, and calls and
    notifications the server sends.

    Parameters:
        max_concurrency: requests of one connection running at once, at most; the
            reader waits for one to end before it reads on.
        codec: `"pydantic"` or `"msgspec"`, the library that validates parameters;
            `None` takes pydantic when it is installed.
        title: the service's name in its OpenRPC document (`rpc.discover`).
        version: the service's version in that document.
        options: route options, as for `websocket_view()` (not the message kinds:
            JSON-RPC decides them).

    Example:
        >>> rpc = JsonRpc()
        >>> @rpc.method
        ... async def add(a: int, b: int) -> int:
        ...     return a + b
        >>> app.add_websocket_route("/rpc", rpc)
    """

    def __init__(
        self,
        *,
        max_concurrency: int = 16,
        codec: Library | None = None,
        title: str = "bocws JSON-RPC service",
        version: str = "1.0.0",
        **options: Any,
    ) -> None:
        given = [kind for kind in ("value_type", "receive_type", "send_type") if kind in options]
        if given:
            raise TypeError(f"JsonRpc takes no {given[0]}: its messages are JSON-RPC's")
        if (
            not isinstance(max_concurrency, int)
            or isinstance(max_concurrency, bool)
            or max_concurrency < 1
        ):
            raise ValueError(f"max_concurrency must be a positive int, got {max_concurrency!r}")
        check_codec(codec)
        self.max_concurrency = max_concurrency
        self.title = title
        self.version = version
        self._library = codec if codec is not None else _default_library()
        self._methods: dict[str, _Method] = {}
        self._on_connect: list[Callable[[WebSocket], Awaitable[None]]] = []
        self._on_disconnect: list[Callable[[WebSocket, int], Awaitable[None]]] = []
        self._peers: dict[int, _Peer] = {}
        super().__init__(self._serve, receive_type=_PAYLOAD, send_type="text", **options)

    def __repr__(self) -> str:
        return f"<JsonRpc {self.title!r}: {', '.join(self._methods) or 'no methods'}>"

    # Declaring methods and hooks.

    @overload
    def method(self, function: _Function, /) -> _Function: ...

    @overload
    def method(self, name: str | None = None, /) -> Callable[[_Function], _Function]: ...

    def method(self, function: Any = None, /) -> Any:
        """Register a function as a method, under its name or the one given:
        `@rpc.method` or `@rpc.method("chat.say")`.

        Parameters come by position or by name, validated against the annotations;
        a parameter annotated `WebSocket` gets the connection instead. The return
        value is the result.

        Raises:
            TypeError: the name is taken or reserved (`rpc.` names), or the function
                takes `*args` or `**kwargs`.
        """
        if callable(function):
            return self._register(function, function.__name__)

        def register(decorated: _Function) -> _Function:
            return self._register(decorated, decorated.__name__ if function is None else function)

        return register

    def _register(self, function: _Function, name: str) -> _Function:
        if not isinstance(name, str) or not name:
            raise TypeError(f"a method's name is a non-empty str, got {name!r}")
        if name.startswith("rpc."):
            raise TypeError(f"method names beginning with 'rpc.' are reserved: {name!r}")
        if name in self._methods:
            raise TypeError(f"method {name!r} is registered already")
        self._methods[name] = _Method(name, function, self._library)
        return function

    def on_connect(self, hook: Callable[[WebSocket], Awaitable[None]]) -> Callable[..., Any]:
        """Register `async def hook(ws)`, run before any message is read: it may check
        the client and `reject()` it (or accept with a subprotocol)."""
        self._on_connect.append(hook)
        return hook

    def on_disconnect(
        self, hook: Callable[[WebSocket, int], Awaitable[None]]
    ) -> Callable[..., Any]:
        """Register `async def hook(ws, code)`, run once an accepted connection ended,
        with its close code; shielded from cancellation (keep it short)."""
        self._on_disconnect.append(hook)
        return hook

    # The server's side: notifications and calls to the client.

    async def notify(self, ws: WebSocket, method: str, params: Any = None) -> None:
        """Send the client a notification (no answer is expected).

        Raises:
            WebSocketDisconnect: the client has gone.
        """
        await ws.send_text(_json.dumps(_request(method, params)))

    async def call(
        self, ws: WebSocket, method: str, params: Any = None, *, timeout: float | None = None
    ) -> Any:
        """Call a method of the client's and return its result.

        Call it from a method or another task, not from `on_connect` (the answer is
        read by the connection's reader, which starts after it).

        Raises:
            RpcError: the client answered with an error.
            TimeoutError: no answer within `timeout` seconds.
            WebSocketDisconnect: the connection ended first.
            RuntimeError: `ws` is not a connection this `JsonRpc` serves.
        """
        peer = self._peers.get(id(ws))
        if peer is None or peer.ws is not ws:
            if ws.client_state is DISCONNECTED or ws.application_state is DISCONNECTED:
                raise WebSocketDisconnect(ended_with(ws) or CloseCode.ABNORMAL_CLOSURE)
            raise RuntimeError(f"{ws!r} is not a connection of {self!r}")
        return await peer.call(method, params, timeout)

    # The OpenRPC document.

    def openrpc(self) -> dict[str, Any]:
        """The OpenRPC document of this service's methods: what `rpc.discover`
        answers with."""
        # Every type at once, so that the library names each model once (two models
        # of one name get names of their own) and refers to it wherever it is used.
        types = [annotation for method in self._methods.values() for annotation in method.types()]
        schemas, components = _schemas(types, self._library)
        found = iter(schemas)
        methods = [method.describe(found) for method in self._methods.values()]
        document: dict[str, Any] = {
            "openrpc": OPENRPC_VERSION,
            "info": {"title": self.title, "version": self.version},
            "methods": methods,
        }
        if components:
            document["components"] = {"schemas": components}
        return document

    # Serving a connection.

    async def _serve(self, ws: WebSocket) -> None:
        for hook in self._on_connect:
            await hook(ws)
            if ws.application_state is DISCONNECTED or ws.application_state is RESPONSE:
                return  # the hook rejected or closed the connection
        code: int | None = None
        peer: _Peer | None = None
        try:
            async with _tasks() as tasks:
                peer = _Peer(self, ws, tasks)
                self._peers[id(ws)] = peer
                try:
                    # Under asyncio, tasks of their own read and run the requests (see
                    # _AsyncioTasks), and this one waits for the end; else it reads.
                    if not tasks.read_in_tasks(peer.read_on) and await peer.read_all():
                        peer.reading_ended()
                    await peer.read_to_the_end.wait()
                    failure, peer.failure = peer.failure, None  # no cycle through the peer
                    if failure is not None:
                        try:
                            raise failure  # the reader that took over ended with it
                        finally:
                            del failure  # nor through this frame
                except WebSocketDisconnect as disconnect:
                    code = disconnect.code
                    raise
                finally:
                    del self._peers[id(ws)]
                    tasks.cancel()  # the client has gone: no request can be answered
        finally:
            if code is None:
                code = ended_with(ws) or CloseCode.NO_STATUS_RCVD
            if peer is not None:
                peer.end(code)
            # Cleanup hooks run even when the view is cancelled (a server shutting
            # down, an idle timeout, a test client leaving).
            with anyio.CancelScope(shield=True):
                if ws.application_state is not RESPONSE:
                    for disconnected in self._on_disconnect:
                        await disconnected(ws, code)


class _Payload(Codec):
    """The frames as they come: JSON-RPC parses them itself, to answer what is not JSON."""

    name = "JSON-RPC"

    def decode(self, data: str | bytes) -> str | bytes:
        return data

    def encode(self, value: Any) -> str:
        return _json.dumps(value)


_PAYLOAD = _Payload()


class _Peer:
    """One connection of a `JsonRpc`: its reader's work, and the server's calls
    waiting for their answers."""

    def __init__(self, rpc: JsonRpc, ws: WebSocket, tasks: _Tasks) -> None:
        self.rpc = rpc
        self.ws = ws
        self.tasks = tasks
        self.limit = rpc.max_concurrency
        self.running = 0
        self.calling = 0  # the server's calls waiting for their answers
        self.room: anyio.Event | None = None  # set when a running request ends
        self.ids = itertools.count(1)
        # The server's calls waiting: id -> [event, answer].
        self.waiting: dict[int, list[Any]] = {}
        self.ended: int | None = None
        #: Set once the client's messages have ended (or their reader failed: `failure`).
        self.read_to_the_end = anyio.Event()
        self.failure: BaseException | None = None

    async def read_all(self) -> bool:
        """Read and answer messages until they end (`True`), or until another task
        took over the reading (`False`)."""
        async for payload in self.ws:
            if not await self.read(payload):
                return False
        return True

    async def read_on(self) -> None:
        """`read_all()` in a task that took over the reading."""
        try:
            if not await self.read_all():
                return
        except Exception as error:  # the connection's end: for its first task to raise
            self.failure = error
        self.reading_ended()

    def reading_ended(self) -> None:
        self.read_to_the_end.set()

    async def read(self, payload: str | bytes) -> bool:
        """Take one frame: answer what cannot be read, run the rest; whether this task
        is still the reader."""
        try:
            message = _json.loads(payload if isinstance(payload, str) else payload.decode())
        except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
            await self.send(_answer_error(None, _error(PARSE_ERROR)))
            return True
        if isinstance(message, dict):
            if _is_answer(message):
                self.answered(message)
                return True
            return await self.start(message)
        if isinstance(message, list) and message:
            requests = []
            for item in message:
                if isinstance(item, dict) and _is_answer(item):
                    self.answered(item)
                else:
                    requests.append(item)
            if requests:  # else a batch of answers to the server's calls
                return await self.start(requests)
            return True
        # A number, a string, an empty batch ...
        await self.send(_answer_error(None, _error(INVALID_REQUEST)))
        return True

    async def start(self, work: dict[str, Any] | list[Any]) -> bool:
        """Run `work`, a request or a batch, once fewer than `max_concurrency` run (see
        `_Tasks.run`); whether this task is still the reader.

        A request waiting for the client's answer to `call()` does not count: the
        reader must go on reading to find that answer.
        """
        while self.running - self.calling >= self.limit:  # backpressure
            if self.room is None:
                self.room = anyio.Event()
            await self.room.wait()
        self.running += 1
        return await self.tasks.run(self.run(work))

    async def run(self, work: dict[str, Any] | list[Any]) -> None:
        """Answer a request, or a batch: its requests one after the other, as one
        request against `max_concurrency`, answered together."""
        try:
            if isinstance(work, dict):
                answer = await self.answer(work)
            else:
                answers = [await self.answer(request) for request in work]
                given = [answer for answer in answers if answer is not None]
                # A batch of notifications only is answered with nothing.
                answer = f"[{','.join(given)}]" if given else None
            if answer is not None:
                await self.send_text(answer)
        except Exception:  # not a method's (answered): this connection's, past answering
            logger.exception("%r: a JSON-RPC request failed", self.ws.scope.get("path"))
        finally:
            self.running -= 1
            self.make_room()

    def make_room(self) -> None:
        """Wake the reader if it waits for room."""
        if self.room is not None:
            self.room.set()
            self.room = None

    async def answer(self, request: Any) -> str | None:
        """The answer to one request, as JSON, or `None` for a notification."""
        if not _is_request(request):
            return _json.dumps(_answer_error(None, _error(INVALID_REQUEST)))
        notification = "id" not in request
        request_id = request.get("id")
        name: str = request["method"]
        try:
            if name == "rpc.discover":
                result: Any = self.rpc.openrpc()
            else:
                method = self.rpc._methods.get(name)
                if method is None:
                    raise _error(METHOD_NOT_FOUND)
                result = await method.call(self.ws, request.get("params"))
        except RpcError as error:
            return None if notification else _json.dumps(_answer_error(request_id, error))
        except Exception:
            self.failed(name, "raised")
            internal = _error(INTERNAL_ERROR)
            return None if notification else _json.dumps(_answer_error(request_id, internal))
        if notification:
            return None
        try:
            return _json.dumps({"jsonrpc": "2.0", "result": result, "id": request_id})
        except (TypeError, ValueError):
            self.failed(name, "returned what JSON cannot write")
            return _json.dumps(_answer_error(request_id, _error(INTERNAL_ERROR)))

    def failed(self, name: str, what: str) -> None:
        """Log, with its traceback, that method `name` failed (answered as an internal
        error: the client learns nothing of it)."""
        logger.exception(
            "%r: JSON-RPC method %r %s; answered with an internal error",
            self.ws.scope.get("path"),
            name,
            what,
        )

    async def send(self, answer: dict[str, Any]) -> None:
        await self.send_text(_json.dumps(answer))

    async def send_text(self, answer: str) -> None:
        try:  # noqa: SIM105 - suppress() would cost a context manager an answer
            await self.ws.send_text(answer)
        except WebSocketDisconnect:
            pass  # gone: the reader ends the connection

    # The server's calls.

    async def call(self, method: str, params: Any, timeout: float | None) -> Any:
        if self.ended is not None:
            raise WebSocketDisconnect(self.ended)
        call_id = next(self.ids)
        waiting = self.waiting[call_id] = [anyio.Event(), None]
        self.calling += 1
        self.make_room()
        try:
            await self.ws.send_text(_json.dumps({**_request(method, params), "id": call_id}))
            with anyio.fail_after(timeout):
                await waiting[0].wait()
        finally:
            del self.waiting[call_id]
            self.calling -= 1
        answer = waiting[1]
        if isinstance(answer, BaseException):
            raise answer
        if "error" in answer:
            error = answer["error"]
            if not isinstance(error, dict):
                raise RpcError(INTERNAL_ERROR, "the client answered with a malformed error")
            raise RpcError(
                error.get("code", INTERNAL_ERROR),
                str(error.get("message", "")),
                error.get("data", _NO_DATA),
            )
        return answer.get("result")

    def answered(self, answer: dict[str, Any]) -> None:
        waiting = self.waiting.get(answer["id"]) if _hashable(answer["id"]) else None
        if waiting is None:
            logger.info(
                "%r: a JSON-RPC answer for no call of the server's (id %r); ignored",
                self.ws.scope.get("path"),
                answer["id"],
            )
            return
        waiting[1] = answer
        waiting[0].set()

    def end(self, code: int) -> None:
        """The connection ended with `code`: the calls still waiting fail."""
        self.ended = code
        for waiting in self.waiting.values():
            waiting[1] = WebSocketDisconnect(code)
            waiting[0].set()


class _Tasks:
    """How a connection's requests run beside its reader, the cheapest way the running
    event loop offers; `_tasks()` chooses. Either way the requests end with the
    connection (`cancel()`)."""

    async def __aenter__(self: _Self) -> _Self:
        raise NotImplementedError

    async def __aexit__(self, *exc_info: object) -> None:
        raise NotImplementedError

    def read_in_tasks(self, reader: Callable[[], Coroutine[Any, Any, None]]) -> bool:
        """Start `reader` in a task of its own, if that is how this event loop reads
        (then whether it was started); else the view's task reads."""
        raise NotImplementedError

    async def run(self, work: Coroutine[Any, Any, None]) -> bool:
        """Run `work`, a request, beside the reading; whether the calling task is
        still the reader."""
        raise NotImplementedError

    def cancel(self) -> None:
        """Cancel the tasks still running."""
        raise NotImplementedError


class _AsyncioTasks(_Tasks):
    """Under asyncio: a reader task runs each request itself, and hands the reading
    over to a new task only if the request waits for something (a slow database,
    the client's answer to `JsonRpc.call()`): see `Baton`. The view's own task only
    waits for the end. A request that completes without waiting costs no task, and
    keeps its task, its context and its cancel scopes.
    """

    def __init__(self) -> None:
        self._baton: Baton | None = None

    def read_in_tasks(self, reader: Callable[[], Coroutine[Any, Any, None]]) -> bool:
        # The view's task only waits: every request then runs in a task that can be
        # cancelled alone, once the connection ends.
        self._baton = Baton(reader)
        self._baton.start()
        return True

    async def __aenter__(self: _Self) -> _Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._baton is not None:
            await self._baton.wait()

    async def run(self, work: Coroutine[Any, Any, None]) -> bool:
        baton = self._baton
        assert baton is not None  # read_in_tasks() came first
        token = baton.hold()
        try:
            await work
        finally:
            leads = baton.release(token)
        return leads  # else another task reads now: this one is done

    def cancel(self) -> None:
        if self._baton is not None:
            self._baton.cancel()


class _TaskGroupTasks(_Tasks):
    """Under any other event loop (trio, through anyio): a task per request, in an
    anyio task group; the reader stays the reader."""

    _group: anyio.abc.TaskGroup

    def __init__(self) -> None:
        self._group = anyio.create_task_group()

    async def __aenter__(self) -> _TaskGroupTasks:  # noqa: PYI034 - final in effect
        await self._group.__aenter__()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._group.__aexit__(None, None, None)

    def read_in_tasks(self, reader: Callable[[], Coroutine[Any, Any, None]]) -> bool:
        return False

    async def run(self, work: Coroutine[Any, Any, None]) -> bool:
        async def request() -> None:
            await work

        self._group.start_soon(request)
        return True

    def cancel(self) -> None:
        self._group.cancel_scope.cancel()


def _tasks() -> _Tasks:
    try:
        asyncio.get_running_loop()
    except RuntimeError:  # not asyncio
        return _TaskGroupTasks()
    return _AsyncioTasks()


def _request(method: str, params: Any) -> dict[str, Any]:
    if not isinstance(method, str):
        raise TypeError(f"a method's name is a str, got {type(method).__name__}")
    request: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if params is not None:
        if not isinstance(params, (list, tuple, dict)):
            raise TypeError("params must be a list, a tuple or a dict (by position or by name)")
        request["params"] = list(params) if isinstance(params, tuple) else params
    return request


def _answer_error(request_id: Any, error: RpcError) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "error": error.error_object(), "id": request_id}


def _is_answer(message: dict[str, Any]) -> bool:
    """Whether `message` answers a call (a response object), rather than asks."""
    return (
        "method" not in message and "id" in message and ("result" in message or "error" in message)
    )


def _is_request(request: Any) -> bool:
    if not isinstance(request, dict) or request.get("jsonrpc") != "2.0":
        return False
    if not isinstance(request.get("method"), str):
        return False
    if "params" in request and not isinstance(request["params"], (list, dict)):
        return False
    if "id" in request:
        request_id = request["id"]
        if request_id is not None and (
            isinstance(request_id, bool) or not isinstance(request_id, (str, int, float))
        ):
            return False
    return True  # other members are left alone, as the specification does not forbid them


def _hashable(value: Any) -> bool:
    return isinstance(value, (str, int, float)) and not isinstance(value, bool)


def _default_library() -> Library | None:
    try:
        import pydantic  # noqa: F401
    except ImportError:
        return None
    return "pydantic"


class _Method:
    """A registered method: its function, and how its parameters are checked."""

    def __init__(self, name: str, function: Callable[..., Any], library: Library | None) -> None:
        self.name = name
        self.function = function
        #: An `async def` method runs in a task of its own; a plain function at once.
        self.is_async = inspect.iscoroutinefunction(function)
        signature = inspect.signature(function)
        # With Annotated's extras: the constraints pydantic checks (`Field(gt=0)`).
        _, hints = resolved_annotations(function, signature)
        self.ws_parameter: str | None = None
        self.parameters: list[inspect.Parameter] = []
        for parameter in signature.parameters.values():
            if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
                raise TypeError(f"method {name!r}: *args and **kwargs cannot be described")
            annotation = hints.get(parameter.name, parameter.annotation)
            if _is_websocket(annotation):
                self.ws_parameter = parameter.name
                continue
            if annotation is inspect.Parameter.empty:
                annotation = Any
            self.parameters.append(parameter.replace(annotation=annotation))
        self.names = [parameter.name for parameter in self.parameters]
        # A method taking some by position only is called with them so.
        self.positional_only = [
            parameter.name
            for parameter in signature.parameters.values()
            if parameter.kind is parameter.POSITIONAL_ONLY
        ]
        self.result = hints.get("return", signature.return_annotation)
        self.library = library
        self.doc = inspect.getdoc(function) or ""
        self._validate = self._validator(library)

    def _validator(self, library: Library | None) -> Callable[[dict[str, Any]], dict[str, Any]]:
        names = self.names
        if library == "pydantic":
            # A TypedDict of the parameters: pydantic checks the params where they are,
            # a dict, and gives back a dict, with no model to build and take apart; its
            # keys may be any name (`_private`, `json`), and those with a default may be
            # left out, for the function's default to apply.
            from pydantic import ConfigDict, TypeAdapter, ValidationError
            from typing_extensions import NotRequired, TypedDict

            params = TypedDict(  # type: ignore[misc] # one made at run time
                "params",
                {
                    parameter.name: parameter.annotation
                    if parameter.default is inspect.Parameter.empty
                    else NotRequired[parameter.annotation]
                    for parameter in self.parameters
                },
            )
            params.__pydantic_config__ = ConfigDict(extra="forbid")  # type: ignore[attr-defined]
            validate = TypeAdapter(params).validator.validate_python

            def check_pydantic(arguments: dict[str, Any]) -> dict[str, Any]:
                try:
                    validated: dict[str, Any] = validate(arguments)
                except ValidationError as error:
                    details = error.errors(include_url=False, include_input=False)
                    raise _error(INVALID_PARAMS, trimmed_errors(details)) from None
                return validated

            return check_pydantic
        # msgspec's fields are named p0, p1 ... after the parameters, which they read
        # as aliases: a Struct's field may not start with an underscore.
        fields = [
            (
                f"p{index}",
                parameter.name,
                parameter.annotation,
                ... if parameter.default is inspect.Parameter.empty else parameter.default,
            )
            for index, parameter in enumerate(self.parameters)
        ]
        if library == "msgspec":
            import msgspec

            struct = msgspec.defstruct(
                "params",
                [
                    (field, annotation) if default is ... else (field, annotation, default)
                    for field, _, annotation, default in fields
                ],
                forbid_unknown_fields=True,
                rename={field: name for field, name, _, _ in fields},
            )
            attributes = [field for field, _, _, _ in fields]

            def check_msgspec(arguments: dict[str, Any]) -> dict[str, Any]:
                try:
                    validated = msgspec.convert(arguments, struct)
                except msgspec.ValidationError as error:
                    detail = [{"type": "validation", "loc": [], "msg": str(error)}]
                    raise _error(INVALID_PARAMS, trimmed_errors(detail)) from None
                return {
                    name: getattr(validated, field)
                    for name, field in zip(names, attributes, strict=True)
                }

            return check_msgspec
        # Checked as if every parameter were a keyword (the positional-only ones too).
        bind = inspect.Signature(
            [
                parameter.replace(kind=inspect.Parameter.KEYWORD_ONLY)
                for parameter in self.parameters
            ]
        ).bind

        def check(arguments: dict[str, Any]) -> dict[str, Any]:
            try:
                bind(**arguments)
            except TypeError as error:
                detail = [{"type": "binding", "loc": [], "msg": str(error)}]
                raise _error(INVALID_PARAMS, detail) from None
            return arguments

        return check

    async def call(self, ws: WebSocket, params: Any) -> Any:
        if params is None:
            arguments: dict[str, Any] = {}
        elif isinstance(params, list):
            if len(params) > len(self.names):
                detail = [
                    {
                        "type": "too_many_params",
                        "loc": [],
                        "msg": f"takes {len(self.names)} params, got {len(params)}",
                    }
                ]
                raise _error(INVALID_PARAMS, detail)
            arguments = dict(zip(self.names, params))  # noqa: B905 - fewer may come
        else:
            arguments = params
        kwargs = self._validate(arguments)
        if self.ws_parameter is not None:
            kwargs[self.ws_parameter] = ws
        if self.positional_only:
            args: list[Any] = []
            for name in self.positional_only:
                if name not in kwargs:
                    break  # left to its default, and so are those after it
                args.append(kwargs.pop(name))
            result = self.function(*args, **kwargs)
        else:
            result = self.function(**kwargs)
        return await result if self.is_async else result

    def types(self) -> list[Any]:
        """The types `describe()` takes the schemas of, in its order: each
        parameter's, then the result's."""
        result = Any if self.result is inspect.Signature.empty else self.result
        return [*(parameter.annotation for parameter in self.parameters), result]

    def describe(self, schemas: Iterator[Any]) -> dict[str, Any]:
        """The method as OpenRPC describes it, with the schemas of `types()`."""
        params = [
            {
                "name": parameter.name,
                "schema": next(schemas),
                "required": parameter.default is inspect.Parameter.empty,
            }
            for parameter in self.parameters
        ]
        described: dict[str, Any] = {
            "name": self.name,
            "params": params,
            "result": {"name": "result", "schema": next(schemas)},
        }
        if self.doc:
            summary, _, description = self.doc.partition("\n")
            described["summary"] = summary.strip()
            if description.strip():
                described["description"] = description.strip()
        return described


def _schemas(types: list[Any], library: Library | None) -> tuple[list[Any], dict[str, Any]]:
    """The JSON Schemas of `types`, by the library's own generator (`json_schemas()`),
    and the definitions they refer to (as `#/components/schemas/...`); a type it cannot
    describe is any JSON (`{}`)."""
    if library is None or not types:
        return [{} for _ in types], {}
    try:
        return json_schemas(types, library, "#/components/schemas/")
    except TypeError:  # one of them: each on its own
        if len(types) == 1:
            return [{}], {}
        pairs = [_schemas([tp], library) for tp in types]
        merged: dict[str, Any] = {}
        for _, found_components in pairs:
            merged.update(found_components)
        return [schema for (schema,), _ in pairs], merged


def _is_websocket(annotation: Any) -> bool:
    if isinstance(annotation, str):
        return annotation.rsplit(".", 1)[-1] == "WebSocket"
    return isinstance(annotation, type) and issubclass(annotation, WebSocket)
