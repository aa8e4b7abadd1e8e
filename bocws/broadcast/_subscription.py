"""A subscriber's bounded queue of messages, and what happens when it overflows."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from typing import Any, Literal

import anyio

__all__ = ["Overflow", "Subscription", "SubscriptionOverflow"]

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
    """

    def __init__(self, channel: str, queue_size: int, overflow: Overflow) -> None:
        self.channel = channel
        self.queue_size = queue_size
        self.overflow = overflow
        #: Messages lost to `overflow="drop_oldest"`.
        self.dropped = 0
        self._queue: deque[Any] = deque()
        self._waiters: list[asyncio.Future[None]] = []  # tasks waiting, under asyncio
        self._wakeup: anyio.Event | None = None  # the same, under other event loops
        self._ended = False  # no more messages will come
        self._overflowed = False

    def __repr__(self) -> str:
        return f"<Subscription {self.channel!r}: {len(self._queue)} queued>"

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
        if self._waiters or self._wakeup is not None:
            self._wake()
        return True

    def end(self) -> None:
        """No more messages: the iteration stops once the queue is read."""
        self._ended = True
        self._wake()

    def _wake(self) -> None:
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._waiters.clear()
        if self._wakeup is not None:
            self._wakeup.set()
            self._wakeup = None

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
            # Under asyncio a bare future: half the cost of an anyio.Event per wait,
            # which fanning out to 1,000 subscribers pays 1,000 times per message.
            try:
                waiter = asyncio.get_running_loop().create_future()
            except RuntimeError:  # another event loop (trio): anyio's event
                if self._wakeup is None:
                    self._wakeup = anyio.Event()
                await self._wakeup.wait()
                continue
            self._waiters.append(waiter)
            try:
                await waiter
            except BaseException:  # cancelled: no longer waiting
                with contextlib.suppress(ValueError):  # unless a wake-up took it already
                    self._waiters.remove(waiter)
                raise
        return queue.popleft()
