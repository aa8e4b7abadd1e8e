"""`Broadcast`: publish to channels, subscribe to them, and tie sockets to rooms."""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any, TypeVar

import anyio

from .._json import dumps_bytes, loads
from .._metrics import BroadcastMetrics, CollectorRegistry, registry_for
from ..websockets import WebSocket
from ._backends import Backend, HistoryBackend, backend_for_url, safe_url
from ._history import OLDEST, PAGE, HistoryGap, HistorySetting, id_key
from ._rooms import Envelope, Fanout, Member, fanout_for, relay
from ._subscription import (
    OVERFLOW_POLICIES,
    HistorySubscription,
    Overflow,
    Subscription,
    report_overflow,
)

__all__ = ["Broadcast", "decode", "encode"]

logger = logging.getLogger("bocws.broadcast")

if sys.version_info < (3, 11):  # pragma: no cover - Python 3.10
    from exceptiongroup import BaseExceptionGroup  # type: ignore[import-not-found,unused-ignore]

_Broadcast = TypeVar("_Broadcast", bound="Broadcast")

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
            (needs the `bocws[redis]` extra); Redis behind Sentinel,
            `"redis+sentinel://host:port[,host:port...]/service[/db]"`; Redis Cluster,
            `"redis+cluster://host:port[,host:port...]"`.
        backend: instead of a URL, any object that does what `Backend` says, such as
            a backend for another server (as httpx takes `transport=`).
        history: messages kept per channel, for subscribers that resume
            (`subscribe(channel, since=...)`): an int for every channel, or a
            function of the channel's name, such as `lambda channel: 100 if
            channel.startswith("room:") else 0`; 0 (the default) keeps none. With
            Redis, kept in a stream per channel, trimmed approximately (a few more
            may be kept). Needs a backend with history (`HistoryBackend`).
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
        ValueError: an unsupported URL, `queue_size`, `overflow` or `history`.
        TypeError: both a URL and a backend, options with a backend, a backend
            without `Backend`'s methods (or `history` with a backend without
            `HistoryBackend`'s), Redis's `decode_responses`, or `metrics` neither a
            bool nor a registry.
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
        history: HistorySetting = 0,
        queue_size: int = 1000,
        overflow: Overflow = "close",
        metrics: bool | CollectorRegistry = False,
        **options: Any,
    ) -> None:
        _check_queue(queue_size, overflow)
        if not callable(history):
            _check_history(history)
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
        if history != 0 and not isinstance(backend, HistoryBackend):
            raise TypeError(
                f"Broadcast(history=...) needs a backend that keeps history (the methods "
                f"of bocws.broadcast.HistoryBackend); {backend!r} has none"
            )
        #: Messages kept per channel: an int, or a function of the channel's name.
        self.history = history
        # The subscribers here, by channel: those of subscribe() (and of room() under
        # trio); under asyncio, a room's socket is a member of its channel's fan-out.
        self._subscribers: dict[str, set[Subscription]] = {}
        self._fanouts: dict[str, Fanout] = {}
        # For the channels with history subscribed to here: the order of the last
        # message delivered, to drop one delivered again (a backend catching up).
        self._delivered: dict[str, tuple[int, int]] = {}
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
        fanouts = list(self._fanouts.values())
        self._fanouts.clear()
        for fanout in fanouts:
            await fanout.closed()
        self._joined.clear()
        self._delivered.clear()
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

    async def publish(self, channel: str, message: Any) -> str | None:
        """Send `message` (str, bytes, or a JSON value) to the subscribers of `channel`;
        on a channel with history, keep it, and return its id (else `None`).

        Delivery is at most once: a subscriber that is cut off from the backend when
        the message passes, or that falls too far behind, does not get it live; on a
        channel with history, it can resume from the last id it got.

        Raises:
            TypeError: `message` is not a str, bytes, or a value `json` can encode.
            BroadcastUnavailable: the backend cannot be reached. Nothing was published,
                unless the connection failed while Redis was already relaying it.
        """
        self._check_connected("publish()")
        _check_channel(channel)
        payload = encode(message)
        keep = self._keep(channel)
        metrics = self._metrics
        try:
            if keep:
                message_id: str | None = await self._backend.append(channel, payload, keep)  # type: ignore[attr-defined]
            else:
                await self._backend.publish(channel, payload)
                message_id = None
        except Exception:
            if metrics is not None:
                metrics.publish_failures.inc()
            raise
        if metrics is not None:
            metrics.published.inc()
        return message_id

    def _keep(self, channel: str) -> int:
        """How many messages of `channel` are kept (0: none)."""
        history = self.history
        if not callable(history):
            return history
        keep = history(channel)
        _check_history(keep, channel)
        return keep

    @asynccontextmanager
    async def subscribe(
        self,
        channel: str,
        *,
        since: str | None = None,
        queue_size: int | None = None,
        overflow: Overflow | None = None,
    ) -> AsyncIterator[Subscription]:
        """Subscribe to `channel` within the block: every message published from then on,
        and with `since`, first every message kept after the id `since`.

        `since` (a channel with history only) is the id of the last message the
        subscriber got, or `OLDEST` (`"0"`) for every message kept. The kept messages
        come first, then the live ones, without a gap or a duplicate between them.
        When messages after `since` are no longer kept, the block raises `HistoryGap`
        as it starts, before any message. `subscription.last_id` is the id of the
        last message yielded (on a channel with history, with or without `since`).

        `queue_size` and `overflow` override the broadcast's for this subscriber
        (live messages that come while it catches up count in its queue).
        The subscription is active when the block starts (with Redis: confirmed by
        the server, or after 5 s without an answer, or at once when the server is
        unreachable; it is made once the connection is back).

        Raises:
            HistoryGap: messages after `since` are no longer kept (or `since` is not
                an id of this channel).
            ValueError: `since` on a channel without history.
        """
        subscription = self._subscription(channel, since, queue_size, overflow)
        subscribers = self._subscribers.get(channel)
        if subscribers is None:
            subscribers = self._subscribers[channel] = set()
        subscribers.add(subscription)
        try:
            async with self._joined_to(channel, subscription, since):
                yield subscription
        finally:
            subscribers.discard(subscription)
            await self._leave(channel)

    def _subscription(
        self, channel: str, since: str | None, queue_size: int | None, overflow: Overflow | None
    ) -> Subscription:
        """A subscription to `channel`, its arguments checked (see `subscribe()`)."""
        self._check_connected("subscribe()")
        _check_channel(channel)
        queue_size = self.queue_size if queue_size is None else queue_size
        overflow = self.overflow if overflow is None else overflow
        _check_queue(queue_size, overflow)
        keep = self._keep(channel)
        if since is not None:
            _check_since(channel, since, keep)
        if keep:
            self._delivered.setdefault(channel, (-1, -1))
            return HistorySubscription(channel, queue_size, overflow)
        return Subscription(channel, queue_size, overflow)

    @asynccontextmanager
    async def _joined_to(
        self, channel: str, subscription: Subscription, since: str | None
    ) -> AsyncIterator[None]:
        """Within the block, the backend is subscribed to `channel` (and `subscription`,
        already among its subscribers here, has what was kept after `since`)."""
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
            if since is not None:
                assert isinstance(subscription, HistorySubscription)
                await self._catch_up_from(subscription, since)
            if metrics is not None:
                metrics.subscriptions.inc()
                counted = True
            yield
        finally:
            if counted and metrics is not None:
                metrics.subscriptions.dec()
            subscription.end()

    async def _catch_up_from(self, subscription: HistorySubscription, since: str) -> None:
        """Give `subscription` the kept messages after `since`, page by page as it reads
        them; raise `HistoryGap` if some are no longer kept. The live ones queue
        meanwhile."""
        channel = subscription.channel
        backend: HistoryBackend = self._backend  # type: ignore[assignment] # checked
        messages, complete = await backend.history(channel, since, PAGE)
        if not complete and since != OLDEST:
            raise HistoryGap(channel, since)
        cursor = messages[-1][0] if messages else since  # the last id read

        async def more() -> list[tuple[str, Any]] | None:
            """The next page, decoded; `None` when there is no more (or the broadcast
            disconnected meanwhile)."""
            nonlocal cursor
            if not self._connected:
                return None
            page, complete = await backend.history(channel, cursor, PAGE)
            if not complete:  # trimmed past what the subscriber has read
                raise HistoryGap(channel, cursor)
            if not page:
                return None
            cursor = page[-1][0]
            return self._decoded(channel, page)

        subscription.catch_up(
            (-1, -1) if since == OLDEST else id_key(since),
            self._decoded(channel, messages),
            more if len(messages) >= PAGE else None,
        )

    def _decoded(self, channel: str, messages: list[tuple[str, bytes]]) -> list[tuple[str, Any]]:
        """`(id, message)` of each kept message that decodes; the others logged, and left out."""
        decoded = []
        for message_id, payload in messages:
            try:
                decoded.append((message_id, decode(payload)))
            except (ValueError, RecursionError) as error:
                logger.warning("dropped a kept message on channel %r: %s", channel, error)
        return decoded

    async def _leave(self, channel: str) -> None:
        """A subscriber of `channel` left: if it was the last one here, unsubscribe."""
        if not self._connected:
            return  # the broadcast disconnected: every subscription has ended
        fanout = self._fanouts.get(channel)
        if fanout is not None and not fanout.members:
            del self._fanouts[channel]
            await fanout.closed()
        if self._subscribers.get(channel) or channel in self._fanouts:
            return
        self._subscribers.pop(channel, None)
        self._delivered.pop(channel, None)
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

    def _deliver(self, channel: str, payload: bytes, message_id: str | None = None) -> None:
        """Queue a message that arrived on `channel` for each of its subscribers here;
        with its id, on a channel with history."""
        subscribers = self._subscribers.get(channel)
        fanout = self._fanouts.get(channel)
        if not subscribers and fanout is None:
            return
        delivered = self._delivered.get(channel)  # None: a channel without history
        try:
            message = decode(payload)
            if delivered is not None and message_id is not None:
                key = id_key(message_id)
                if key <= delivered:
                    return  # delivered already: the backend caught up after reconnecting
                self._delivered[channel] = key
        except (ValueError, RecursionError) as error:  # nesting too deep for `json`
            logger.warning("dropped a message on channel %r: %s", channel, error)
            if self._metrics is not None:
                self._metrics.dropped.inc()
            return
        if delivered is not None:
            message = (message_id, message)  # what a HistorySubscription queues
        if fanout is not None:
            fanout.put(message)  # it counts its own deliveries
        if not subscribers:
            return
        if self._metrics is None:
            overflowed = [each for each in subscribers if not each.put(message)]
        else:
            overflowed = _put_counted(self._metrics, subscribers, message)
        for subscription in overflowed:
            report_overflow(subscription)
            subscribers.discard(subscription)  # the backend's subscription ends with the last

    # Rooms.

    @asynccontextmanager
    async def room(
        self,
        ws: WebSocket,
        channel: str,
        *,
        since: str | None = None,
        envelope: Envelope | None = None,
        queue_size: int | None = None,
        overflow: Overflow | None = None,
    ) -> AsyncIterator[Subscription]:
        """Relay every message of `channel` to `ws` while the block runs; with `since`,
        first those kept after it (see `subscribe()`, which raises `HistoryGap` here too).

        `envelope(message_id, message)`, if given, makes what is sent for each message,
        so that the client learns the ids to resume from: for example `lambda
        message_id, message: {**message, "id": message_id}` for dict messages. The id
        is `None` on a channel without history. Sockets given the same function may
        share what it made for a message (it is called once for them all).

        The view goes on receiving from `ws` in the block; the messages are sent as
        `ws.send()` sends them, as the socket's `send_type` says, and encoded once
        for every socket of the same `send_type`. Under asyncio, one task sends each
        message to every socket of the channel that is ready; a socket whose last
        send has not completed gets its messages queued, and sent in order by a task
        of its own. The room is left when the block ends, however it ends, and an
        exception raised in the block comes out of it unchanged. A socket's close is
        seen by receiving: a view that only sends should still receive in the block
        (`async for _ in ws: pass`).

        The relaying stops quietly when the client is gone or the view has closed
        the socket; when it falls behind with `overflow="close"`, the socket is
        closed with 1013, as when, catching up, it finds that the messages it has
        not read yet are no longer kept, or that the backend cannot be reached; a
        message that cannot be sent (a `TypeError` for the socket's `send_type`) is
        logged, and stops the relaying.
        """
        subscription = self._subscription(channel, since, queue_size, overflow)
        history = isinstance(subscription, HistorySubscription)
        fanout = self._fanouts.get(channel) or fanout_for(channel, history, self._metrics)
        member: Member | None = None
        if fanout is None:  # not asyncio: the socket's relay sends every message
            self._subscribers.setdefault(channel, set()).add(subscription)
        else:
            self._fanouts[channel] = fanout
            member = fanout.join(ws, subscription, envelope)
        try:
            async with (
                self._joined_to(channel, subscription, since),
                _relaying(ws, subscription, envelope, member),
            ):
                yield subscription
        finally:
            if fanout is None:
                self._subscribers.get(channel, set()).discard(subscription)
            else:
                await fanout.leave(member)  # type: ignore[arg-type] # a member of it
            await self._leave(channel)


@asynccontextmanager
async def _relaying(
    ws: WebSocket, subscription: Subscription, envelope: Envelope | None, member: Member | None
) -> AsyncIterator[None]:
    """`relay()` in a task of its own while the block runs; what the block raises
    comes out of it unchanged."""
    try:
        async with anyio.create_task_group() as group:
            group.start_soon(relay, ws, subscription, envelope, member)
            try:
                yield
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


def _check_history(keep: object, channel: str | None = None) -> None:
    if not isinstance(keep, int) or isinstance(keep, bool) or keep < 0:
        where = "history" if channel is None else f"history({channel!r})"
        raise ValueError(f"{where} must be an int of at least 0, got {keep!r}")


def _check_since(channel: str, since: object, keep: int) -> None:
    if not isinstance(since, str):
        raise TypeError(f"since is a message id (a str), got {type(since).__name__}")
    if not keep:
        raise ValueError(
            f"since={since!r}: channel {channel!r} keeps no history (Broadcast(history=...))"
        )
    if since != OLDEST:
        try:
            id_key(since)
        except ValueError:
            raise HistoryGap(channel, since) from None
