"""A subscriber's bounded queue of messages, and what happens when it overflows."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Literal

import anyio

from ._history import id_key

__all__ = ["HistorySubscription", "Overflow", "Subscription", "SubscriptionOverflow"]

logger = logging.getLogger("bocws.broadcast")

Overflow = Literal["close", "drop_oldest"]
OVERFLOW_POLICIES: tuple[Overflow, ...] = ("close", "drop_oldest")


class SubscriptionOverflow(Exception):
    """A subscriber fell `queue_size` messages behind, with `overflow="close"`.

    Raised by the subscription's iteration once the messages queued before the
    overflow have been read; `Broadcast.room()` closes the socket with 1013.
    """

    def __init__(self, channel: str, queue_size: int) -> None:
        super().__init__(
            f"the subscriber to {channel!r} fell {queue_size} messages behind (queue_size); "
            "it was unsubscribed and missed the messages published since"
        )
        self.channel = channel
        self.queue_size = queue_size


class Subscription:
    """Messages published on one channel since subscribing, in order.

    Iterate with `async for message in subscription`. The queue
    holds at most `queue_size` messages: a subscriber that falls further behind
    loses the oldest (`overflow="drop_oldest"`, counted in `dropped`) or is
    unsubscribed (`overflow="close"`: it reads what was queued, then gets
    `SubscriptionOverflow`). The iteration ends when the subscription is left or
    the broadcast disconnects.

    On a channel with history, a subscriber catching up (`since`) reads the kept
    messages from the backend page by page: its iteration may then raise
    `BroadcastUnavailable` (the backend could not be reached) or `HistoryGap` (it
    read so slowly that the messages it had not read yet were trimmed meanwhile).
    """

    def __init__(self, channel: str, queue_size: int, overflow: Overflow) -> None:
        self.channel = channel
        self.queue_size = queue_size
        self.overflow = overflow
        #: Messages lost to `overflow="drop_oldest"`.
        self.dropped = 0
        #: The id of the last message yielded, on a channel with history (else `None`).
        self.last_id: str | None = None
        #: The id of the message just yielded (`None` for one published without).
        self.message_id: str | None = None
        self._queue: deque[Any] = deque()
        self._wakeup = Wakeup()  # the tasks waiting for a message
        self._ended = False  # no more messages will come
        self._overflowed = False

    def __repr__(self) -> str:
        queued, waiting = len(self._queue), self._wakeup.waiting
        return f"<Subscription {self.channel!r}: {queued} queued, {waiting} waiting>"

    def put(self, message: Any) -> bool:
        """Queue `message` without waiting; `False` if the subscriber overflowed now."""
        if self._ended:
            return True
        queue = self._queue
        if len(queue) >= self.queue_size:
            if self.overflow == "close":
                self._overflowed = True
                self.end()
                return False
            queue.popleft()
            self.dropped += 1
        queue.append(message)
        self._wakeup.wake()
        return True

    def end(self) -> None:
        """No more messages: the iteration stops once the queue is read."""
        self._ended = True
        self._wakeup.wake()

    def overflow_now(self) -> None:
        """Messages for it were lost before they could be queued (`Fanout`): as `put()`
        does when its queue is full, with `overflow="close"`."""
        self._overflowed = True
        self.end()

    @property
    def idle(self) -> bool:
        """Whether nothing waits to be read, and more may come."""
        return not self._queue and not self._ended

    async def ready(self) -> None:
        """Return once the iteration has a message to give (or its end to raise),
        without taking it."""
        while not self._queue and not self._ended:
            await self._wakeup.wait()

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Any:
        """The next message; wait for it.

        Raises:
            SubscriptionOverflow: the subscriber fell behind (`overflow="close"`).
        """
        queue = self._queue
        while not queue:
            if self._overflowed:
                raise SubscriptionOverflow(self.channel, self.queue_size)
            if self._ended:
                raise StopAsyncIteration
            await self._wakeup.wait()
        return queue.popleft()


class HistorySubscription(Subscription):
    """A subscription to a channel with history: its messages come with their ids
    (`last_id`), and with `since`, the kept ones come first.

    Queued live messages are `(id, message)`. While it catches up, the kept messages
    come from a backlog, read page by page from the backend; then the live ones
    queued meanwhile, but those at or before the last one yielded (or `since`).
    """

    def __init__(self, channel: str, queue_size: int, overflow: Overflow) -> None:
        super().__init__(channel, queue_size, overflow)
        self._backlog: deque[tuple[str, Any]] = deque()
        self._more: Callable[[], Awaitable[list[tuple[str, Any]] | None]] | None = None
        # While live messages may repeat what the backlog gave: the order of `since`;
        # `None` once live messages come after the last message yielded.
        self._since: tuple[int, int] | None = None

    def catch_up(
        self,
        since: tuple[int, int],
        backlog: list[tuple[str, Any]],
        more: Callable[[], Awaitable[list[tuple[str, Any]] | None]] | None,
    ) -> None:
        """Yield `backlog` (the kept messages after the id of order `since`) first, then
        what `more()` returns, page after page, until `more` is `None` or returns
        `None`; then the live messages after them."""
        self._backlog.extend(backlog)
        self._more = more
        self._since = since

    @property
    def idle(self) -> bool:
        # Caught up, and past the seam: a live message needs no look at its id.
        return not self._backlog and self._more is None and self._since is None and super().idle

    async def ready(self) -> None:
        if not self._backlog and self._more is None:
            await super().ready()

    async def __anext__(self) -> Any:
        while True:
            backlog = self._backlog
            if backlog:
                message_id, message = backlog.popleft()
                self.last_id = self.message_id = message_id
                return message
            if self._more is not None:
                page = await self._more()
                if page is None:
                    self._more = None
                else:
                    backlog.extend(page)
                continue
            message_id, message = await super().__anext__()
            if self._since is not None and message_id is not None:
                # At the seam only: the last id the backlog gave, else `since`.
                last = self.last_id
                floor = self._since if last is None else id_key(last)
                if id_key(message_id) <= floor:
                    continue  # the backlog gave it, or it came before `since`
                self._since = None  # live from now on: each id after the last
            self.message_id = message_id
            if message_id is not None:
                self.last_id = message_id
            return message


def report_overflow(subscription: Subscription) -> None:
    """Log that `subscription` was unsubscribed for falling behind."""
    logger.info(
        "channel %r: unsubscribed a subscriber %d messages behind (queue_size)",
        subscription.channel,
        subscription.queue_size,
    )


class Wakeup:
    """Tasks waiting for something to happen: each `await wait()` returns at the next `wake()`.

    Made for the event loop that runs when it is made, as `anyio.Event()` is: under
    asyncio, each waiting task awaits a bare future, half the cost of an `anyio.Event`
    (which fanning out to 1,000 subscribers pays 1,000 times per message); under
    another loop (trio), an `anyio.Event`. The choice is made here, once, and nowhere else.
    """

    def __new__(cls) -> Wakeup:  # noqa: PYI034 - a subclass, picked for the event loop
        if cls is Wakeup:
            try:
                asyncio.get_running_loop()
            except RuntimeError:  # not asyncio's loop: trio's, or none yet
                cls = _EventWakeup
            else:
                cls = _FutureWakeup
        return object.__new__(cls)

    @property
    def waiting(self) -> int:
        """How many tasks wait now."""
        raise NotImplementedError  # pragma: no cover - each kind has its own

    def wait(self) -> Awaitable[None]:
        """What to await until the next `wake()`."""
        raise NotImplementedError  # pragma: no cover - each kind has its own

    def wake(self) -> None:
        """Wake the tasks waiting now; cheap when none is."""
        raise NotImplementedError  # pragma: no cover - each kind has its own


class _FutureWakeup(Wakeup):
    """Under asyncio: a future per waiting task."""

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._futures: list[asyncio.Future[None]] = []

    @property
    def waiting(self) -> int:
        return sum(not future.done() for future in self._futures)

    def wait(self) -> Awaitable[None]:
        futures = self._futures
        if futures:  # waits cancelled since the last wake-up (or other tasks waiting)
            futures[:] = [future for future in futures if not future.done()]
        future = self._loop.create_future()
        futures.append(future)
        return future  # awaited as it is: no coroutine in between

    def wake(self) -> None:
        futures = self._futures
        if futures:
            for future in futures:
                if not future.done():
                    future.set_result(None)
            futures.clear()


class _EventWakeup(Wakeup):
    """Under any other event loop: one `anyio.Event` per round of waiting."""

    def __init__(self) -> None:
        self._event: anyio.Event | None = None

    @property
    def waiting(self) -> int:
        return 0 if self._event is None else self._event.statistics().tasks_waiting

    def wait(self) -> Awaitable[None]:
        if self._event is None:
            self._event = anyio.Event()
        return self._event.wait()

    def wake(self) -> None:
        if self._event is not None:
            self._event.set()
            self._event = None
