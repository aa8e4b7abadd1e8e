"""How a view's connection ends: the close it calls for, bounded in time, and the idle timeout.

`views.ViewEndpoint` runs a view through `serve()`. Whatever the view does, the
connection is closed by the time `serve()` returns: with 1000 when the view returned
(the reason `idle timeout` when it was cancelled for being idle), with the close an
escaping exception calls for (`websockets.ending_of`, the rule `async with ws` shares),
and never waiting more than `CLOSE_TIMEOUT` seconds for a client that reads nothing.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
from starlette.exceptions import HTTPException
from starlette.types import Message, Receive, Scope, Send

from ._codes import CloseCode, close_code_name, is_error_code
from ._connection import ending_of, how_it_ended, log_close
from ._exceptions import WebSocketDisconnect
from ._state import CONNECTING, DISCONNECTED
from .websockets import WebSocket

__all__ = ["CLOSE_TIMEOUT", "IDLE_REASON", "Activity", "finish", "refuse_origin", "serve"]

logger = logging.getLogger("bocws")


async def serve(
    ws: WebSocket,
    run: Callable[[WebSocket], Awaitable[None]],
    name: str,
    activity: Activity | None = None,
    idle_timeout: float | None = None,
    on_error: Callable[[], None] | None = None,
) -> None:
    """Run the view (`run(ws)`, named `name` in the log) and end the connection,
    whatever happens; with an `activity` watch, cancel it after `idle_timeout`.
    `on_error()` is called if the view fails with an application error (the one
    logged at ERROR)."""
    try:
        if activity is None or idle_timeout is None:
            await run(ws)
        else:
            await _run_watched(ws, run, activity, idle_timeout)
    except Exception as error:
        if await end_with_error(ws, error, name, on_error):
            # A bare raise: a frame in the error's traceback that held it (a
            # variable, an argument) would keep it, its frames and `ws` in a cycle.
            raise
        return
    if activity is not None and activity.expired:
        logger.info(
            "%r: closing the connection, idle for %s s (idle_timeout)",
            ws.scope.get("path"),
            idle_timeout,
        )
        await finish(ws, CloseCode.NORMAL_CLOSURE, IDLE_REASON)
        return
    await finish(ws, CloseCode.NORMAL_CLOSURE)


async def _run_watched(
    ws: WebSocket,
    run: Callable[[WebSocket], Awaitable[None]],
    activity: Activity,
    idle_timeout: float,
) -> None:
    """Run the view, cancelling it once no message has passed for `idle_timeout`."""
    error: Exception | None = None
    view_scope = anyio.CancelScope()
    async with anyio.create_task_group() as watchers:
        watchers.start_soon(activity.watch, ws, idle_timeout, view_scope)
        try:
            with view_scope:
                await run(ws)
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


async def end_with_error(
    ws: WebSocket, error: Exception, name: str, on_error: Callable[[], None] | None = None
) -> bool:
    """End the connection after the view raised `error`; whether to re-raise it.

    The client's departure, its bad data and Starlette's `WebSocketException` end
    the connection with one log line (see `websockets.ending_of`, the rule shared
    with `async with`); anything else, even inside an exception group from a task
    group, is the application's: 1011, an ERROR line (and `on_error()`), and the
    error to the server.
    """
    ending = ending_of(ws, error)
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
                await finish(ws, ending.code, ending.reason)
        except WebSocketDisconnect:
            pass  # the client has gone: nothing is left to close
        log_close(ws, f"view {name}: {ending.detail}")
        return False
    handled = has_starlette_handler(ws.scope, error)
    if handled and ws.application_state is CONNECTING:
        return True  # Starlette's (or FastAPI's) handler answers the handshake
    if on_error is not None:
        on_error()
    await finish(ws, CloseCode.INTERNAL_ERROR, ending.reason)
    # One line: the exception goes on to the server, which logs its traceback.
    logger.error(
        "%r: view %s raised %s: %s; %s",
        path,
        name,
        type(error).__name__,
        str(error),  # not the error: a handler keeping records would keep its frames
        how_it_ended(ws),
    )
    # A handler would answer over a connection already closed: stop here.
    return not handled


IDLE_REASON = "idle timeout"
#: How long the lifecycle's own close may wait for the server to take it, in seconds.
#: A client that stopped reading leaves the server unable to write, and the close
#: would wait with it; the view is over, so its task is not kept for that.
CLOSE_TIMEOUT = 10.0


async def finish(ws: WebSocket, code: int, reason: str | None = None) -> None:
    """Close the connection at the end of the view, waiting about `CLOSE_TIMEOUT` at most
    (up to a tenth more under asyncio: see `_CloseWatch`)."""
    if ws.application_state is DISCONNECTED or ws.client_state is DISCONNECTED:
        await ws.ensure_closed(code, reason)  # checks the code; nothing to send or wait for
        return
    if await _bounded_close().close(ws, code, reason):
        logger.info(
            "%r: the client reads nothing; gave up sending the close (%d) after %s s",
            ws.scope.get("path"),
            code,
            CLOSE_TIMEOUT,
        )


def _bounded_close() -> _CloseWatch | _Deadline:
    """How the running event loop bounds a final close: asyncio's loop with its shared
    timer (`_CloseWatch`), any other (trio, through anyio) with a deadline of its own."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # not asyncio
        return _DEADLINE
    return _CloseWatch.of(loop)


class _Deadline:
    """A final close under anyio's own deadline: a cancel scope per close."""

    async def close(self, ws: WebSocket, code: int, reason: str | None) -> bool:
        """`ensure_closed()`, given up after `CLOSE_TIMEOUT`; whether it was."""
        with anyio.move_on_after(CLOSE_TIMEOUT) as waited:
            await ws.ensure_closed(code, reason)
        return waited.cancelled_caught


_DEADLINE = _Deadline()


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
    """The final closes under way in one asyncio event loop, and the one timer that
    cancels those past their deadline.

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

    async def close(self, ws: WebSocket, code: int, reason: str | None) -> bool:
        """`ensure_closed()`, cancelled after `CLOSE_TIMEOUT`; whether it was."""
        task = asyncio.current_task()
        assert task is not None  # a coroutine of the loop's, so in a task
        # Cancellations the task already had, not ours to take back (as asyncio.timeout).
        pending = 0
        if sys.version_info >= (3, 11):
            pending = task.cancelling()
        expiry = _Expiry(task, CLOSE_TIMEOUT)
        self.add(expiry)
        try:
            await ws.ensure_closed(code, reason)
        except asyncio.CancelledError:
            # Ours only if the watch fired and no other cancellation came meanwhile.
            # Python 3.10 does not count cancellations: one from outside in the very
            # loop iteration of the expiry is taken for ours there.
            if not expiry.fired or (sys.version_info >= (3, 11) and task.uncancel() > pending):
                raise
            return True
        finally:
            self.pending.discard(expiry)
        if expiry.fired and sys.version_info >= (3, 11):
            # The server turned our cancellation into another error, which the close
            # absorbed: take the request back, so that the task is not left cancelling.
            task.uncancel()
        return expiry.fired

    def add(self, expiry: _Expiry) -> None:
        self.pending.add(expiry)
        if not self.ticking:
            self.ticking = True
            self.loop.call_later(CLOSE_TIMEOUT / 10, self.tick)

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


class Activity:
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


def has_starlette_handler(scope: Scope, error: Exception) -> bool:
    """Whether the Starlette (or FastAPI) app around the view has a handler for `error`."""
    handlers = scope.get("starlette.exception_handlers")
    if not handlers:
        return False
    exception_handlers, status_handlers = handlers
    if isinstance(error, HTTPException) and error.status_code in status_handlers:
        return True
    return any(cls in exception_handlers for cls in type(error).__mro__)
