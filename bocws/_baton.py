"""`Baton`: work done by one task at a time, handed to a new task when that one waits.

Under asyncio, a loop of short pieces of work (answering requests, sending a message
to many sockets) costs least when one task does them all, one after the other; but
a piece that waits (a slow database, a socket whose client does not read) must not
hold up the pieces after it. The task doing the work, the leader, holds the baton
while it works (`hold()`), and keeps one call of `_pass()` scheduled at the event
loop's next turn. That call can only run while the leader is not running: if the
leader is then still holding the baton, it waits inside a piece of work, and a new
task takes over (it runs `lead()` again, and goes on where the work left off); the
old one finishes its piece, learns from `release()` that it no longer leads, and
ends. A piece that completes without waiting costs two attributes set, not a task.

Nothing moves between tasks: each piece keeps its task, its context and its cancel
scopes. Made for asyncio only (it schedules calls and tasks on the running loop);
under another event loop, the caller runs its work in tasks of its own instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

__all__ = ["Baton"]


class Baton:
    """The leader of a loop of work, handed over to a new task when the leader waits.

    Args:
        lead: makes the coroutine a new leader runs: it goes on with the work, and
            returns once `release()` says it no longer leads, or `leader` is another
            task (or when there is nothing more to do; `start()` makes another).

    Made in, and for, the running asyncio event loop.

    Example:
        >>> async def lead():
        ...     while work:
        ...         piece = work.popleft()
        ...         token = baton.hold()
        ...         await piece()
        ...         if not baton.release(token):
        ...             return  # another task took over meanwhile
        >>> baton = Baton(lead)
        >>> baton.start()
    """

    def __init__(self, lead: Callable[[], Coroutine[Any, Any, None]]) -> None:
        self._loop = asyncio.get_running_loop()
        self._lead = lead
        #: The tasks still running: the leader and the ones finishing a piece.
        self.running: set[asyncio.Task[None]] = set()
        self._armed = False  # a call of _pass() is scheduled
        self._busy = False  # the leader holds the baton
        #: The leader's task: the token `hold()` gives it (read only).
        self.leader: object = object()
        self._cancelled = False

    def start(self) -> None:
        """Start a task running `lead()`."""
        task = self._loop.create_task(self._lead())
        self.leader = task
        self.running.add(task)
        task.add_done_callback(self.running.discard)

    def hold(self) -> object:
        """The leader starts a piece of work that may wait: the token to give
        `release()` once it is done (the leader's task itself, as `leader` is)."""
        if not self._armed:
            self._armed = True
            self._loop.call_soon(self._pass)
        self._busy = True
        return self.leader

    def release(self, token: object) -> bool:
        """The piece of work `hold()` gave `token` for is done: whether the task still
        leads (else another took over meanwhile, and this one should end)."""
        if self.leader is token:
            self._busy = False
            return True
        return False

    def pass_on(self, token: object) -> None:
        """The holder of `token` is to stop (it is about to be cancelled): if it leads
        and holds the baton, a new task takes over now."""
        if self.leader is token and self._busy:
            self._hand_over()

    def _pass(self) -> None:
        self._armed = False
        if self._busy:  # the leader waits inside a piece of work
            self._hand_over()

    def _hand_over(self) -> None:
        self._busy = False
        self.leader = object()
        if not self._cancelled:
            self.start()

    def cancel(self) -> None:
        """Cancel every task still running; no new one starts."""
        self._cancelled = True
        for task in self.running:
            task.cancel()

    async def wait(self) -> None:
        """Return once every task has ended (the cancelled ones after their cleanup)."""
        while self.running:
            await asyncio.wait(list(self.running))
