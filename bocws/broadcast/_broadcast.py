"""`Broadcast`: publish to channels, subscribe to them, and tie sockets to rooms."""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any, TypeVar

import anyio

from .._codes import CloseCode
from .._exceptions import WebSocketDisconnect, WebSocketStateError
from .._json import dumps_bytes, loads
from .._metrics import BroadcastMetrics, CollectorRegistry, registry_for
from ..websockets import WebSocket
from ._backends import Backend, backend_for_url, safe_url
from ._subscription import OVERFLOW_POLICIES, Overflow, Subscription, SubscriptionOverflow

__all__ = ["Broadcast", "decode", "encode"]

logger = logging.getLogger("bocws.broadcast")

if sys.version_info < (3, 11):  # pragma: no cover - Python 3.10
    from exceptiongroup import BaseExceptionGroup  # type: ignore[import-not-found,unused-ignore]

_Broadcast = TypeVar("_Broadcast", bound="Broadcast")

TOO_SLOW = CloseCode.TRY_AGAIN_LATER

# A message on the wire: one byte saying what it is, then its bytes.
TEXT, BYTES, JSON = b"t", b"b", b"j"


def encode(message: Any) -> bytes:
    """`message` as a payload: a str, bytes, or a value `json` can encode.

    Raises:
        TypeError: `message` is none of those.
    """
    if isinstance(message, str):
        return TEXT + message.encode("utf-8", "surrogatepass")
    if isinstance(message, (bytes, bytearray, memoryview)):
        return BYTES + bytes(message)
    return JSON + dumps_bytes(message)


def decode(payload: bytes) -> Any:
    """The message `encode()` made `payload` from.

    Raises:
        ValueError: `payload` was not made by `encode()`.
    """
    kind, body = payload[:1], payload[1:]
    if kind == TEXT:
        return body.decode("utf-8", "surrogatepass")
    if kind == BYTES:
        return body
    if kind == JSON:
        return loads(body.decode("utf-8"))
    raise ValueError(f"not a bocws broadcast message: {payload[:20]!r}")


class Broadcast:
    """Channels that carry messages to every subscriber, in this process or in all of them.

    Args:
        url: `"memory://"` (the default) for one process, or a Redis URL,
            `"redis://host:port/db"`, for all the processes connected to that server
            (needs the `bocws[redis]` extra).
        backend: instead of a URL, any object that does what `Backend` says, such as
            a backend for another server (as httpx takes `transport=`).
        queue_size: messages that may wait for one subscriber.
        overflow: what happens to a subscriber `queue_size` messages behind:
            `"close"` (the default) unsubscribes it, and `room()` closes its socket
            with 1013; `"drop_oldest"` drops its oldest queued message.
        metrics: count subscriptions, publishes, deliveries, drops, overflows and
            the backend's reconnections as Prometheus metrics (`True` in
            prometheus-client's default registry, or a `CollectorRegistry`; see the
            metrics guide); needs the `bocws[prometheus]` extra.
        **options: for the URL's backend; for Redis, options of
            `redis.asyncio.Redis.from_url()` (but `decode_responses`: the payloads
            are bytes).

    Raises:
        ValueError: an unsupported URL, `queue_size` or `overflow`.
        TypeError: both a URL and a backend, options with a backend, a backend
            without `Backend`'s methods, Redis's `decode_responses`, or `metrics`
            neither a bool nor a registry.
        ImportError: `metrics` without prometheus-client installed.

    Connect before use and disconnect after: `async with broadcast:`, or in an
    app, `app.on_startup(broadcast.connect)` and `app.on_shutdown(broadcast.disconnect)`.

    Example:
        >>> broadcast = Broadcast("memory://")
        >>> async def main():
        ...     async with broadcast, broadcast.subscribe("news") as news:
        ...         await broadcast.publish("news", {"headline": "hello"})
        ...         return await anext(news)

    With a backend object (`Backend`'s docstring has a complete one for one process):

        >>> broadcast = Broadcast(backend=LocalBackend())
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        backend: Backend | None = None,
        queue_size: int = 1000,
        overflow: Overflow = "close",
        metrics: bool | CollectorRegistry = False,
        **options: Any,
    ) -> None:
        _check_queue(queue_size, overflow)
        registry = registry_for(metrics)
        self._metrics = None if registry is None else BroadcastMetrics.of(registry)
        if backend is None:
            url = "memory://" if url is None else url
            backend = backend_for_url(url, options)
        else:
            _check_backend(backend, url, options)
        #: The URL the broadcast was made with; `None` when given a backend object.
        self.url = url
        self.queue_size = queue_size
        self.overflow = overflow
        self._backend = backend
        self._subscribers: dict[str, set[Subscription]] = {}
        # The channels the backend is subscribed to, and those it is joining or leaving
        # now (with the event set when it is done): one backend call at a time a channel.
        self._joined: set[str] = set()
        self._changing: dict[str, anyio.Event] = {}
        self._connected = False

    def __repr__(self) -> str:
        state = "connected" if self._connected else "not connected"
        where = f"backend={self._backend!r}" if self.url is None else repr(safe_url(self.url))
        return f"<Broadcast {where}: {state}>"

    # Lifecycle.

    async def connect(self) -> None:
        """Connect to the backend (for Redis, check that it answers).

        Raises:
            BroadcastUnavailable: the backend's server (Redis) cannot be reached.
        """
        if self._connected:
            raise RuntimeError("this Broadcast is already connected")
        report_reconnects = getattr(self._backend, "report_reconnects", None)
        if self._metrics is not None and callable(report_reconnects):
            report_reconnects(self._metrics.reconnects.inc)  # optional: see `Backend`
        await self._backend.connect(self._deliver)
        self._connected = True

    async def disconnect(self) -> None:
        """Disconnect; every subscription ends after the messages already queued."""
        if not self._connected:
            return
        self._connected = False
        for subscribers in self._subscribers.values():
            for subscription in subscribers:
                subscription.end()
        self._subscribers.clear()
        self._joined.clear()
        await self._backend.disconnect()

    async def __aenter__(self: _Broadcast) -> _Broadcast:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.disconnect()

    # Publishing and subscribing.

    def _check_connected(self, call: str) -> None:
        if not self._connected:
            raise RuntimeError(
                f"{call} on a Broadcast that is not connected: call connect() first, "
                "e.g. app.on_startup(broadcast.connect)"
            )

    async def publish(self, channel: str, message: Any) -> None:
        """Send `message` (str, bytes, or a JSON value) to the subscribers of `channel`.

        Delivery is at most once: a subscriber that is cut off from the backend when
        the message passes, or that falls too far behind, does not get it.

        Raises:
            TypeError: `message` is not a str, bytes, or a value `json` can encode.
            BroadcastUnavailable: the backend cannot be reached. Nothing was published,
                unless the connection failed while Redis was already relaying it.
        """
        self._check_connected("publish()")
        _check_channel(channel)
        payload = encode(message)
        metrics = self._metrics
        if metrics is None:
            await self._backend.publish(channel, payload)
            return
        try:
            await self._backend.publish(channel, payload)
        except Exception:
            metrics.publish_failures.inc()
            raise
        metrics.published.inc()

    @asynccontextmanager
    async def subscribe(
        self, channel: str, *, queue_size: int | None = None, overflow: Overflow | None = None
    ) -> AsyncIterator[Subscription]:
        """Subscribe to `channel` within the block: every message published from then on.

        `queue_size` and `overflow` override the broadcast's for this subscriber.
        The subscription is active when the block starts (with Redis: confirmed by
        the server, or after 5 s without an answer, or at once when the server is
        unreachable; it is made once the connection is back).
        """
        self._check_connected("subscribe()")
        _check_channel(channel)
        queue_size = self.queue_size if queue_size is None else queue_size
        overflow = self.overflow if overflow is None else overflow
        _check_queue(queue_size, overflow)
        subscription = Subscription(channel, queue_size, overflow)
        subscribers = self._subscribers.get(channel)
        if subscribers is None:
            subscribers = self._subscribers[channel] = set()
        subscribers.add(subscription)
        metrics = self._metrics
        counted = False
        try:
            # Another subscriber may be joining the channel (or the last one leaving
            # it): wait for that, then join if it is not joined, which the first
            # subscriber's join may have failed to do, or been cancelled before.
            while channel not in self._joined:
                changing = self._changing.get(channel)
                if changing is not None:
                    await changing.wait()
                    continue
                async with self._change(channel):
                    await self._backend.subscribe(channel)
                    self._joined.add(channel)
            if metrics is not None:
                metrics.subscriptions.inc()
                counted = True
            yield subscription
        finally:
            if counted and metrics is not None:
                metrics.subscriptions.dec()
            subscription.end()
            await self._leave(channel, subscription)

    async def _leave(self, channel: str, subscription: Subscription) -> None:
        subscribers = self._subscribers.get(channel)
        if subscribers is None:
            return  # the broadcast disconnected
        subscribers.discard(subscription)
        if subscribers:
            return
        del self._subscribers[channel]
        if channel not in self._joined:
            return  # the last subscriber left before any join succeeded
        self._joined.discard(channel)
        with anyio.CancelScope(shield=True):
            async with self._change(channel):
                await self._backend.unsubscribe(channel)

    @asynccontextmanager
    async def _change(self, channel: str) -> AsyncIterator[None]:
        """A backend call on `channel` under way: subscribers who come meanwhile wait."""
        done = self._changing[channel] = anyio.Event()
        try:
            yield
        finally:
            del self._changing[channel]
            done.set()

    def _deliver(self, channel: str, payload: bytes) -> None:
        """Queue a message that arrived on `channel` for each of its subscribers here."""
        subscribers = self._subscribers.get(channel)
        if not subscribers:
            return
        try:
            message = decode(payload)
        except (ValueError, RecursionError) as error:  # nesting too deep for `json`
            logger.warning("dropped a message on channel %r: %s", channel, error)
            if self._metrics is not None:
                self._metrics.dropped.inc()
            return
        if self._metrics is None:
            overflowed = [each for each in subscribers if not each.put(message)]
        else:
            overflowed = _put_counted(self._metrics, subscribers, message)
        for subscription in overflowed:
            logger.info(
                "channel %r: unsubscribed a subscriber %d messages behind (queue_size)",
                channel,
                subscription.queue_size,
            )
            subscribers.discard(subscription)  # the backend's subscription ends with the last

    # Rooms.

    @asynccontextmanager
    async def room(
        self,
        ws: WebSocket,
        channel: str,
        *,
        queue_size: int | None = None,
        overflow: Overflow | None = None,
    ) -> AsyncIterator[Subscription]:
        """Relay every message of `channel` to `ws` while the block runs.

        The view goes on receiving from `ws` in the block; the messages are sent
        with `ws.send()`, as the socket's `send_type` says. The room is left when
        the block ends, however it ends, and an exception raised in the block comes
        out of it unchanged. A socket's close is seen by receiving: a view that only
        sends should still receive in the block (`async for _ in ws: pass`).

        The relaying stops quietly when the client is gone or the view has closed
        the socket; when it falls behind with `overflow="close"`, the socket is
        closed with 1013; a message that cannot be sent (a `TypeError` for the
        socket's `send_type`) is logged, and stops the relaying.
        """
        async with self.subscribe(channel, queue_size=queue_size, overflow=overflow) as subscribed:
            try:
                async with anyio.create_task_group() as group:
                    group.start_soon(_relay, ws, subscribed)
                    try:
                        yield subscribed
                    finally:
                        group.cancel_scope.cancel()
            except BaseExceptionGroup as errors:
                # anyio wraps what the block raised; the view catches what it raised.
                if len(errors.exceptions) != 1:
                    raise
                error = errors.exceptions[0]
                context, cause = error.__context__, error.__cause__
                suppress = error.__suppress_context__
                try:
                    raise error  # the block's own error, with its own context
                finally:
                    error.__context__, error.__cause__ = context, cause
                    error.__suppress_context__ = suppress


def _put_counted(
    metrics: BroadcastMetrics, subscribers: set[Subscription], message: Any
) -> list[Subscription]:
    """Queue `message` for each of `subscribers`, counting deliveries, drops and
    overflows; return the subscribers that overflowed."""
    overflowed = []
    delivered = dropped = 0
    for subscription in subscribers:
        before = subscription.dropped
        if subscription.put(message):
            delivered += 1
            dropped += subscription.dropped - before
        else:
            overflowed.append(subscription)
    if delivered:
        metrics.delivered.inc(delivered)
    if dropped:
        metrics.dropped.inc(dropped)
    if overflowed:
        metrics.overflows.inc(len(overflowed))
    return overflowed


async def _relay(ws: WebSocket, subscription: Subscription) -> None:
    try:
        async for message in subscription:
            await ws.send(message)
    except SubscriptionOverflow:
        await ws.ensure_closed(TOO_SLOW, "too slow: try again later")
    except (WebSocketDisconnect, WebSocketStateError):
        pass  # the client left, or the view closed the socket: nothing more to send
    except Exception:
        logger.exception(
            "%r: could not relay a message of channel %r; stopped relaying",
            ws.url.path,
            subscription.channel,
        )


def _check_backend(backend: object, url: object, options: dict[str, Any]) -> None:
    if url is not None:
        raise TypeError(
            f"Broadcast() takes a URL or a backend, not both: got {url!r} and {backend!r}"
        )
    if options:
        raise TypeError(
            f"Broadcast(backend=...) takes no backend options, got {sorted(options)}: "
            "configure the backend object itself"
        )
    if isinstance(backend, type) or not isinstance(backend, Backend):
        raise TypeError(
            "a broadcast backend is an object with the methods of bocws.broadcast.Backend "
            f"(connect, disconnect, subscribe, unsubscribe, publish), got {backend!r}"
        )


def _check_channel(channel: object) -> None:
    if not isinstance(channel, str):
        raise TypeError(f"a channel is named by a str, got {type(channel).__name__}")


def _check_queue(queue_size: object, overflow: object) -> None:
    if not isinstance(queue_size, int) or isinstance(queue_size, bool) or queue_size < 1:
        raise ValueError(f"queue_size must be an int of at least 1, got {queue_size!r}")
    if overflow not in OVERFLOW_POLICIES:
        raise ValueError(f"overflow must be one of {OVERFLOW_POLICIES}, got {overflow!r}")
