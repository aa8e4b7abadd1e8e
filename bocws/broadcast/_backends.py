"""Where published messages travel: this process's memory, or a Redis server's pub/sub.

A backend moves encoded payloads (`bytes`) on named channels between processes;
`Broadcast` does the rest: encoding, each subscriber's queue, rooms. `Backend` says
what a backend must do, for one written elsewhere and passed as `Broadcast(backend=...)`;
`SCHEMES`, at the end, says which backend a `Broadcast(url)` makes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any, Protocol, runtime_checkable
from urllib.parse import unquote

import anyio
import anyio.lowlevel

from ._history import OLDEST, PAGE, MemoryHistory, id_key

__all__ = [
    "SCHEMES",
    "Backend",
    "BroadcastUnavailable",
    "ClusterBackend",
    "Deliver",
    "HistoryBackend",
    "MemoryBackend",
    "RedisBackend",
    "SentinelBackend",
    "backend_for_url",
    "safe_url",
]

logger = logging.getLogger("bocws.broadcast")

Deliver = Callable[..., None]
"""`deliver(channel, payload)`, or `deliver(channel, payload, message_id)` for a message
of a channel with history: what a backend calls for each message that reaches it."""


class BroadcastUnavailable(Exception):
    """The broadcast's server cannot be reached: the message was not published.

    Messages published elsewhere while this process was cut off are lost too:
    pub/sub delivers at most once. The connection comes back by itself.
    """


@runtime_checkable
class Backend(Protocol):
    """What `Broadcast` needs from a backend: publish payloads, and deliver those of
    the channels this process subscribes to.

    Pass any object with these five methods as `Broadcast(backend=...)`, as httpx takes
    `transport=`; `memory://` and Redis URLs make one of the built-in ones.
    Payloads are `bytes`, passed through unchanged (`Broadcast` encodes and decodes
    them); channels are `str`, matched exactly.

    `Broadcast` calls `connect()` first, and `disconnect()` last, once for each
    `connect()` that returned; it may connect the same backend again afterwards. In
    between it calls the other three from any of its tasks, concurrently: `publish()`
    for each message; `subscribe(channel)` when a channel gets its first subscriber
    in this process, `unsubscribe(channel)` when it has none left. For one channel,
    one `subscribe()` or `unsubscribe()` at a time: the next waits for the last to
    return, and a `subscribe()` that raised or was cancelled is made again for the
    subscribers still waiting. All of them run in the event loop's thread.

    What every backend guarantees (and `Broadcast`, to its users):

    - **Order**: the messages of one channel are delivered in the order the server
      received them, the same in every process: those one process publishes one after
      another (each `publish()` awaited), in that order.
    - **At most once**: each message is delivered at most once to each process that
      subscribes to its channel, however many subscribers it has there; none is
      delivered twice, and none is delivered again after reconnecting.
    - **No history**: a message published before `subscribe()` was called is not
      delivered (one still on its way may be); one published after it returned is,
      unless the connection to the server is lost meanwhile.
    - **Reconnecting by itself**: when the connection to the server breaks, the backend
      makes it again, with a growing delay between attempts, and subscribes again to
      the channels subscribed to and not unsubscribed from. Messages published in
      between are lost (at most once). `RedisBackend` logs a WARNING on the
      `"bocws.broadcast"` logger when the connection is lost and when it is back.
    - **Unreachable server**: `connect()` and `publish()` raise `BroadcastUnavailable`
      (chaining the client's error); `subscribe()` and `unsubscribe()` do not raise,
      and take effect once the connection is back. Other errors reach the caller of
      `Broadcast.connect()`, `publish()` or `subscribe()` as they are.

    Optionally, a backend that reconnects by itself may report it, for the
    `bocws_broadcast_reconnects_total` metric: give it a method
    `report_reconnects(callback)`. A `Broadcast` with metrics on calls it before each
    `connect()`, with a plain function; call `callback()`, from the event loop's
    thread, each time the connection to the server is made again after it was lost
    (not for the first connection). `RedisBackend` has it; a backend without it is
    counted as never reconnecting.

    Example, a backend for one process, as `memory://` is:

        import anyio.lowlevel

        class LocalBackend:
            async def connect(self, deliver):
                self.deliver, self.channels = deliver, set()

            async def disconnect(self):
                self.channels.clear()

            async def subscribe(self, channel):
                self.channels.add(channel)

            async def unsubscribe(self, channel):
                self.channels.discard(channel)

            async def publish(self, channel, payload):
                await anyio.lowlevel.checkpoint()  # as a network call would
                if channel in self.channels:
                    self.deliver(channel, payload)

        broadcast = Broadcast(backend=LocalBackend())
    """

    async def connect(self, deliver: Deliver) -> None:
        """Get ready to publish and subscribe; from then on, deliver messages with `deliver`.

        Called by `Broadcast.connect()`, before any other method, and again after
        `disconnect()` when the broadcast connects again. Keep `deliver` and call it
        as `deliver(channel, payload)` for each message of a channel subscribed to:
        a plain function that queues the message for the channel's subscribers and
        returns at once, without raising. Call it from the event loop's thread, never
        from another (hand a client thread's messages over with
        `anyio.from_thread.run_sync`): from a reader task of the backend's own, or,
        in one process, from `publish()` itself. Messages of a channel
        `Broadcast` no longer has subscribers for are dropped: one that arrives
        just after `unsubscribe()` does no harm. Between messages that come in a
        burst, let the subscribers' tasks run (`await anyio.lowlevel.checkpoint()`),
        or one with a short queue overflows although it keeps up.

        A task that reads from the server must outlive `connect()`, and
        `Broadcast.connect()` and `Broadcast.disconnect()` may be called from
        different tasks (an application's startup and shutdown): start it as a task
        of its own (`RedisBackend` uses asyncio's `loop.create_task()`), not in a task
        group entered here.

        Raises:
            BroadcastUnavailable: the server cannot be reached. Then, or when this
                call is cancelled, leave nothing running: `disconnect()` is not called.
        """
        ...

    async def disconnect(self) -> None:
        """Stop: deliver nothing more, stop the backend's tasks, close its connections.

        Called by `Broadcast.disconnect()`, once for each `connect()` that returned,
        after every subscription has ended; it does not call `unsubscribe()` first.
        Forget the channels subscribed to: the next `connect()` starts with none.
        Return promptly, even when the server cannot be reached.
        """
        ...

    async def subscribe(self, channel: str) -> None:
        """Deliver the messages of `channel` from now on.

        Called when `channel` gets its first subscriber in this process. Return once
        the subscription is in place (the server has confirmed it), so that every
        message published after this returns, by this process or another, is
        delivered. A backend may stop waiting for a confirmation that does not come
        (`RedisBackend` waits 5 s). When the server cannot be reached, return at once
        without raising, and subscribe once the connection is back.

        It may be called for a channel already subscribed to (when the channel's only
        subscriber overflowed and another one came before it left), and while an
        `unsubscribe()` of the same channel is still running: keep the channels in a
        set, and let the latest call decide. It may be cancelled; `unsubscribe()`
        follows once the channel has no subscribers.
        """
        ...

    async def unsubscribe(self, channel: str) -> None:
        """Stop delivering the messages of `channel`.

        Called when the last subscriber to `channel` in this process leaves, shielded
        from cancellation. Do not raise when the server cannot be reached: a
        connection made again later does not subscribe to `channel`.
        """
        ...

    async def publish(self, channel: str, payload: bytes) -> None:
        """Send `payload` to the subscribers of `channel`, in every process.

        Called by `Broadcast.publish()`, from many tasks at once; return once the
        server has the message (or, in one process, once it is delivered). Let
        other tasks run at least once (`await anyio.lowlevel.checkpoint()`), as a
        network call would: a task that publishes in a loop should not fill its
        subscribers' queues before they can read them.

        Raises:
            BroadcastUnavailable: the server cannot be reached (name it, without its
                password). Nothing was published, as far as this process knows.
        """
        ...


@runtime_checkable
class HistoryBackend(Backend, Protocol):
    """A backend that keeps the last messages of channels, for `Broadcast(history=...)`.

    Two methods more than `Backend`'s; `memory://` and Redis have them. The history
    contract (what `Broadcast` promises on top of it: a resume without gap or
    duplicate) holds if:

    - **Ids**: each message published with `append()` has an id `"<int>-<int>"`
      (Redis Streams' form), greater than every earlier id of its channel in the
      order of `bocws.broadcast.id_key()`, the same in every process.
    - **Delivery**: a message published with `append()` is delivered, as `publish()`'s
      are, but with its id: `deliver(channel, payload, message_id)`, in the order of
      the ids.
    - **History**: `history()` returns what `append()` kept, in the order of the ids.
    """

    async def append(self, channel: str, payload: bytes, keep: int) -> str:
        """Publish `payload` as `publish()` does, and keep it among the last `keep`
        (at least) messages of `channel`; return its id.

        Assigning the id and publishing must be one step as seen from other
        processes: subscribers must receive a channel's messages in the order of
        their ids (Redis: one script for both).

        Raises:
            BroadcastUnavailable: as `publish()`.
        """
        ...

    async def history(
        self, channel: str, since: str, count: int
    ) -> tuple[list[tuple[str, bytes]], bool]:
        """The first `count` messages kept of `channel` whose ids come after `since`, as
        `(id, payload)`, oldest first; and whether every message published on
        `channel` after `since` is still kept (`False`: some were trimmed or lost, or
        `since` is not an id of this channel's history as it is now).

        `since` is an id, or `"0"` (`OLDEST`): from the oldest kept, and then the flag
        is `True`.

        Raises:
            BroadcastUnavailable: the server cannot be reached.
        """
        ...


class MemoryBackend:
    """One process: a publish is delivered before `publish()` returns. History is kept
    in this process's memory, for as long as the backend lives (across a `Broadcast`'s
    `disconnect()` and `connect()`), and lost with the process."""

    def __init__(self) -> None:
        self._deliver: Deliver | None = None
        self._channels: set[str] = set()
        self._history = MemoryHistory()

    async def connect(self, deliver: Deliver) -> None:
        self._deliver = deliver

    async def disconnect(self) -> None:
        self._deliver = None
        self._channels.clear()

    async def subscribe(self, channel: str) -> None:
        self._channels.add(channel)

    async def unsubscribe(self, channel: str) -> None:
        self._channels.discard(channel)

    async def publish(self, channel: str, payload: bytes) -> None:
        # A checkpoint, as a network publish would be: a loop of publishes lets the
        # subscribers' tasks run, rather than filling their queues first.
        await anyio.lowlevel.checkpoint()
        if self._deliver is not None and channel in self._channels:
            self._deliver(channel, payload)

    async def append(self, channel: str, payload: bytes, keep: int) -> str:
        await anyio.lowlevel.checkpoint()
        message_id = self._history.append(channel, payload, keep)
        if self._deliver is not None and channel in self._channels:
            self._deliver(channel, payload, message_id)
        return message_id

    async def history(
        self, channel: str, since: str, count: int
    ) -> tuple[list[tuple[str, bytes]], bool]:
        await anyio.lowlevel.checkpoint()
        return self._history.after(channel, since, count)


RETRY_FIRST = 0.1
RETRY_MAX = 5.0
"""Seconds between attempts to reach Redis again: doubling from the first to the most."""
PING_EVERY = 15.0
"""Seconds of silence after which the subscribing connection is pinged; twice that
without an answer, and it is taken for dead and made again."""
SOCKET_TIMEOUT = 5.0
"""Seconds a command (or making a connection) may take before Redis counts as lost."""
PUBLISHING_AT_ONCE = 64
"""Publishes in flight at once, per process; more wait for one to finish."""
SUBSCRIBE_TIMEOUT = 5.0
"""Seconds `subscribe()` waits for Redis to confirm a subscription before going on."""


HISTORY_PREFIX = "bocws:history:"
"""The Redis key of a channel's history stream: this, then the channel's name."""
# Publishes a message of a channel with history: kept in the channel's stream, and sent
# on its pub/sub channel as "@<id> <payload>", in one step, so that the messages
# subscribers receive come in the order of their ids.
_APPEND = """
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'p', ARGV[2])
redis.call('PUBLISH', ARGV[3], '@' .. id .. ' ' .. ARGV[2])
return id
"""
ID_MARK = b"@"
"""The first byte of a message of a channel with history on the wire (`_APPEND`)."""


class RedisBackend:
    """Redis pub/sub through redis-py's asyncio client (the `bocws[redis]` extra).

    One connection from the pool publishes; one more, held by a reader task,
    subscribes to every channel this process has subscribers for. When it breaks,
    the reader connects again, with backoff, and subscribes to them all again; for
    channels with history, it then delivers what was kept meanwhile.

    History: a Redis stream per channel (`HISTORY_PREFIX` and the channel's name),
    each message added with `XADD ... MAXLEN ~ keep` and published in the same script.
    """

    def __init__(self, url: str, **options: Any) -> None:
        try:
            from redis import asyncio as redis
        except ImportError as error:  # pragma: no cover - depends on the environment
            raise ImportError(
                f"Broadcast({url!r}) needs redis-py: pip install 'bocws[redis]'"
            ) from error
        from redis.asyncio.retry import Retry
        from redis.backoff import ExponentialBackoff, NoBackoff

        self._errors = (redis.ConnectionError, redis.TimeoutError, OSError)
        self._refused = redis.ResponseError
        options.setdefault("socket_connect_timeout", SOCKET_TIMEOUT)
        options.setdefault("socket_timeout", SOCKET_TIMEOUT)  # redis-py < 8 has none
        options.setdefault("socket_keepalive", True)
        # Fail fast while Redis is away (redis-py's default tries for seconds): a
        # publish that cannot be made should say so while the sender still cares.
        options.setdefault("retry", Retry(ExponentialBackoff(cap=0.2, base=0.05), 1))
        self._client = self._new_client(url, options)
        if self._client.get_connection_kwargs().get("decode_responses"):  # type: ignore[no-untyped-call,unused-ignore]
            raise TypeError(
                "Broadcast moves bytes through Redis: decode_responses (an option or in "
                "the URL) would turn every payload into a str; leave it out"
            )
        # The reader's own client, which never retries: a broken subscribing connection
        # must reach _read(), to be logged and made again with the channels of now.
        reader_options = {**options, "retry": Retry(NoBackoff(), 0), "max_connections": 1}
        self._reader_client = self._new_client(url, reader_options)
        # redis-py's pool refuses (rather than waits) beyond its size: wait here instead.
        self._publishing = anyio.CapacityLimiter(PUBLISHING_AT_ONCE)
        self._url = url
        self._deliver: Deliver | None = None
        self._channels: set[str] = set()
        # A channel of its own, so that the reader's connection always has a subscription.
        self._own_channel = f"bocws:broadcast:{uuid.uuid4().hex}"
        self._pubsub: Any = None  # the reader's redis PubSub, while connected
        self._pending: dict[str, tuple[int, anyio.Event]] = {}  # unconfirmed subscribes
        self._reader: asyncio.Task[None] | None = None
        self._up = anyio.Event()
        self._reconnected: Callable[[], None] | None = None
        self._append = self._client.register_script(self.APPEND)
        # The id of the last message delivered on each channel with history: where
        # the reader resumes after reconnecting.
        self._last_ids: dict[str, str] = {}

    def _new_client(self, url: str, options: dict[str, Any]) -> Any:
        """A redis-py client for `url`, with `options` (one for publishing, one for the
        reader)."""
        from redis import asyncio as redis

        return redis.Redis.from_url(url, **options)

    # What differs between a Redis server and a Redis Cluster: its pub/sub commands.

    APPEND = _APPEND
    """The script that keeps and publishes a message of a channel with history."""
    PINGS = True
    """Whether the reader pings a quiet connection, to find one that stopped answering."""

    async def _publish(self, channel: str, payload: bytes) -> None:
        await self._client.publish(channel, payload)

    async def _join(self, pubsub: Any, *channels: str) -> None:
        await pubsub.subscribe(*channels)

    async def _leave(self, pubsub: Any, *channels: str) -> None:
        await pubsub.unsubscribe(*channels)

    async def _next_message(self, pubsub: Any) -> dict[str, Any] | None:
        """The next message of the reader's connection, or `None` after a second."""
        message: dict[str, Any] | None = await pubsub.get_message(timeout=1.0)
        return message

    async def _forget_pooled_connections(self) -> None:
        """Drop the publishing connections from before an outage: they are dead, and
        redis-py will not retry a publish on them (it might have gone through)."""
        await self._client.connection_pool.disconnect(inuse_connections=False)

    def report_reconnects(self, callback: Callable[[], None]) -> None:
        """Call `callback()` each time the subscribing connection is made again after
        it was lost (see `Backend`)."""
        self._reconnected = callback

    async def connect(self, deliver: Deliver) -> None:
        self._deliver = deliver
        try:
            await self._client.ping()
        except self._errors as error:
            message = f"cannot reach Redis at {self._safe_url}: {error}"
            raise BroadcastUnavailable(message) from error
        # redis-py is asyncio's: so is the reader. A task of its own, not a task group,
        # so that connect() and disconnect() may run in different tasks.
        self._up = anyio.Event()
        self._reader = asyncio.get_running_loop().create_task(self._read())
        try:
            with anyio.move_on_after(SUBSCRIBE_TIMEOUT):
                await self._up.wait()
        except BaseException:  # cancelled: no reader may outlive this connect()
            with anyio.CancelScope(shield=True):
                await self.disconnect()
            raise

    async def disconnect(self) -> None:
        reader, self._reader = self._reader, None
        if reader is not None:
            # redis-py may swallow a cancellation while it connects: insist, bounded.
            with anyio.move_on_after(SUBSCRIBE_TIMEOUT):
                while not reader.done():
                    reader.cancel()
                    await asyncio.wait([reader], timeout=0.1)  # keeps its CancelledError
            if not reader.done():  # pragma: no cover - redis-py ignoring cancellation
                logger.warning("the Redis reader did not stop within %g s", SUBSCRIBE_TIMEOUT)
        self._deliver = None
        self._channels.clear()
        self._last_ids.clear()
        await self._client.aclose()
        await self._reader_client.aclose()

    @property
    def _safe_url(self) -> str:
        return safe_url(self._url)

    async def subscribe(self, channel: str) -> None:
        self._channels.add(channel)
        pubsub = self._pubsub
        if pubsub is None:
            return  # the reader subscribes once it is connected again
        count, confirmed = self._pending.get(channel, (0, anyio.Event()))
        self._pending[channel] = (count + 1, confirmed)
        try:
            await self._join(pubsub, channel)
        except self._errors:
            return  # the reader notices too, and subscribes again once connected
        with anyio.move_on_after(SUBSCRIBE_TIMEOUT):
            await confirmed.wait()
        await self._note_newest(channel)

    async def _note_newest(self, channel: str) -> None:
        """Remember the newest message kept of `channel` (if it keeps history), for the
        reader to catch up from, should the connection be lost before another comes."""
        if channel in self._last_ids:
            return
        try:
            newest = await self._client.xrevrange(self.history_key(channel), count=1)
        except (*self._errors, ValueError):  # unreachable, or no history in a cluster
            return
        if channel in self._channels:
            self._last_ids.setdefault(channel, newest[0][0].decode() if newest else OLDEST)

    async def unsubscribe(self, channel: str) -> None:
        self._channels.discard(channel)
        self._last_ids.pop(channel, None)
        pubsub = self._pubsub
        if pubsub is not None:
            with contextlib.suppress(*self._errors):  # a new connection will not subscribe to it
                await self._leave(pubsub, channel)

    @contextlib.contextmanager
    def _unavailable(self, doing: str) -> Iterator[None]:
        """Turn the client's connection errors into `BroadcastUnavailable`, saying
        what could not be done (`doing`: "publish to 'room'")."""
        try:
            yield
        except self._errors as error:
            raise BroadcastUnavailable(
                f"cannot {doing}: Redis at {self._safe_url} is unreachable ({error})"
            ) from error

    async def publish(self, channel: str, payload: bytes) -> None:
        with self._unavailable(f"publish to {channel!r}"):
            async with self._publishing:
                await self._publish(channel, payload)

    async def append(self, channel: str, payload: bytes, keep: int) -> str:
        with self._unavailable(f"publish to {channel!r}"):
            async with self._publishing:
                message_id = await self._append(
                    keys=[self.history_key(channel)], args=[keep, payload, channel]
                )
        return message_id.decode() if isinstance(message_id, bytes) else str(message_id)

    async def history(
        self, channel: str, since: str, count: int
    ) -> tuple[list[tuple[str, bytes]], bool]:
        key = self.history_key(channel)
        start = "-" if since == OLDEST else f"({since}"
        with self._unavailable(f"read the history of {channel!r}"):
            async with self._client.pipeline(transaction=False) as pipe:
                pipe.xinfo_stream(key)
                pipe.xrange(key, min=start, max="+", count=count)
                info, entries = await pipe.execute(raise_on_error=False)
        if isinstance(info, Exception):  # no such key: nothing kept (or all of it lost)
            return [], since == OLDEST
        if isinstance(entries, Exception):
            if not isinstance(entries, self._refused):
                raise entries
            entries = []  # an id Redis will not range from (the greatest): none after it
        messages = [(entry_id.decode(), fields[b"p"]) for entry_id, fields in entries]
        if since == OLDEST:
            return messages, True
        # Trimming leaves no trace of the ids it removed: an id before the first kept
        # may have been trimmed, or be another stream's (Redis restarted without
        # persistence); either way, what follows it may be gone. An id after the
        # newest is no id of this stream either.
        newest = id_key(info["last-generated-id"].decode())
        first = info.get("first-entry")
        horizon = id_key(first[0].decode()) if first else newest
        return messages, horizon <= id_key(since) <= newest

    def history_key(self, channel: str) -> str:
        """The key of `channel`'s history stream."""
        return HISTORY_PREFIX + channel

    async def _catch_up(self) -> None:
        """Deliver what the channels with history kept while the connection was lost,
        after the last message delivered on each (the live ones repeat some: `Broadcast`
        drops those)."""
        for channel, last_id in list(self._last_ids.items()):
            since = last_id
            while channel in self._channels:
                try:
                    messages, complete = await self.history(channel, since, PAGE)
                except BroadcastUnavailable as error:  # lost again: for _read() to handle
                    raise error.__cause__ or error from None
                except Exception:  # this channel's, not the connection's: the others go on
                    logger.exception("channel %r: could not catch up after reconnecting", channel)
                    break
                if since == last_id and since != OLDEST and not complete:
                    logger.warning(
                        "channel %r: messages published while the connection to Redis "
                        "was lost are no longer kept; subscribers here missed some",
                        channel,
                    )
                for message_id, payload in messages:
                    self._deliver_kept(channel, payload, message_id)
                if not messages:
                    break
                since = messages[-1][0]
                await anyio.lowlevel.checkpoint()

    def _deliver_kept(self, channel: str, payload: bytes, message_id: str) -> None:
        if channel in self._channels:
            self._last_ids[channel] = message_id
            if self._deliver is not None:
                self._deliver(channel, payload, message_id)

    async def _read(self) -> None:
        """Hold the subscribing connection: read from it, and make it again when it breaks."""
        delay = RETRY_FIRST
        lost = False
        while True:
            pubsub = None
            try:
                pubsub = self._reader_client.pubsub()
                channels = [self._own_channel, *self._channels]
                await self._join(pubsub, *channels)
                self._pubsub = pubsub
                # Channels that came or went while this connection was being made.
                if added := self._channels.difference(channels):
                    await self._join(pubsub, *added)
                if removed := set(channels[1:]).difference(self._channels):
                    await self._leave(pubsub, *removed)
                if lost:
                    await self._forget_pooled_connections()
                    logger.warning(
                        "connected to Redis at %s again; subscribed to %d channels",
                        self._safe_url,
                        len(self._channels),
                    )
                    if self._reconnected is not None:
                        self._reconnected()
                    await self._catch_up()
                lost = False
                delay = RETRY_FIRST
                self._up.set()
                heard = time.monotonic()
                pinged = False
                while True:
                    message = await self._next_message(pubsub)
                    now = time.monotonic()
                    if message is not None:
                        heard, pinged = now, False
                        try:
                            self._handle(message)
                        except Exception:  # a bug must not stop this process's messages
                            logger.exception("could not handle a message from Redis")
                        # redis-py hands out a whole read's messages without waiting:
                        # let the subscribers run between them, or a burst overflows them.
                        await anyio.lowlevel.checkpoint()
                    elif not self.PINGS:
                        pass
                    elif now - heard > 2 * PING_EVERY:
                        raise TimeoutError(f"no answer from Redis for {2 * PING_EVERY:g} s")
                    elif now - heard > PING_EVERY and not pinged:
                        await pubsub.ping()  # a quiet connection must still answer
                        pinged = True
            except self._errors as error:
                if not lost:
                    logger.warning(
                        "lost the connection to Redis at %s (%s); reconnecting. Messages "
                        "published meanwhile do not reach this process.",
                        self._safe_url,
                        error,
                    )
                lost = True
            except Exception:  # not the network's doing: say so, and carry on all the same
                logger.exception("the Redis reader failed; reconnecting")
                lost = True
            finally:
                self._pubsub = None
                for _count, confirmed in self._pending.values():
                    confirmed.set()  # nobody waits for a connection that is gone
                self._pending.clear()
                if pubsub is not None:
                    with anyio.CancelScope(shield=True):
                        await pubsub.aclose()  # type: ignore[no-untyped-call,unused-ignore]
            await anyio.sleep(delay)
            delay = min(RETRY_MAX, delay * 2)

    def _handle(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        channel = message["channel"]
        if isinstance(channel, bytes):
            channel = channel.decode()
        if kind in ("message", "smessage"):
            data = message["data"]
            if data[:1] == ID_MARK:  # a message of a channel with history: "@<id> <payload>"
                raw_id, _, payload = data[1:].partition(b" ")
                message_id = raw_id.decode(errors="replace")
                try:
                    id_key(message_id)
                except ValueError:
                    logger.warning("dropped a message on channel %r: a bad id", channel)
                    return
                self._deliver_kept(channel, payload, message_id)
            elif self._deliver is not None and channel in self._channels:
                self._deliver(channel, data)
        elif kind in ("subscribe", "ssubscribe"):
            pending = self._pending.get(channel)
            if pending is not None:
                count, confirmed = pending
                if count <= 1:
                    del self._pending[channel]
                    confirmed.set()
                else:
                    self._pending[channel] = (count - 1, confirmed)


class SentinelBackend(RedisBackend):
    """Redis behind Sentinel: `redis+sentinel://host:port[,host:port...]/service[/db]`.

    The master of `service` is found through the sentinels, by redis-py's
    `redis.asyncio.sentinel.Sentinel`, and found again after a failover: a command
    that fails on the old master makes the next one ask the sentinels. Meanwhile
    publishes raise `BroadcastUnavailable`; the reader connects to the new master and
    subscribes again, as after any lost connection, and delivers what the channels
    with history kept (what the new master had from the old one: replication is
    asynchronous, and the last writes acknowledged by a master that dies may be lost).

    A password in the URL (`redis+sentinel://:secret@host:port/service`) is the
    master's; `sentinel_kwargs` (an option) configures the connections to the
    sentinels themselves.
    """

    def __init__(self, url: str, **options: Any) -> None:
        self._sentinel_clients: list[Any] = []  # filled by _new_client(), for disconnect()
        super().__init__(url, **options)

    def _new_client(self, url: str, options: dict[str, Any]) -> Any:
        from redis.asyncio.sentinel import Sentinel

        addresses, service, db, credentials = parse_sentinel_url(url)
        options = {**credentials, **options}
        sentinel_kwargs = options.pop("sentinel_kwargs", None)
        if sentinel_kwargs is None:
            sentinel_kwargs = {
                name: options[name]
                for name in ("socket_timeout", "socket_connect_timeout")
                if name in options
            }
        sentinel = Sentinel(addresses, sentinel_kwargs=sentinel_kwargs, **options)
        self._sentinel_clients.extend(sentinel.sentinels)
        return sentinel.master_for(service, db=db)

    async def disconnect(self) -> None:
        await super().disconnect()
        for client in self._sentinel_clients:  # the connections to the sentinels
            await client.aclose()


# A message of a channel with history, in a cluster: the stream's key and the shard
# channel share a hash slot (see ClusterBackend.history_key), as a script requires.
_SHARDED_APPEND = _APPEND.replace("'PUBLISH'", "'SPUBLISH'")


class ClusterBackend(RedisBackend):
    """Redis Cluster: `redis+cluster://host:port[,host:port...]`, any of its nodes.

    redis-py's `RedisCluster` finds the others and routes each command to the node
    that owns its key's slot. Channels are sharded (`SPUBLISH`, `SSUBSCRIBE`: Redis
    7): a channel's messages go through the node that owns its slot only, not through
    every node. The reader holds one connection per node that owns channels this
    process subscribes to (redis-py's `ClusterPubSub`, which follows a channel whose
    slot moves), and polls them in turn, each for a few milliseconds (`POLL` in all):
    a message may wait that long before it is read.

    A channel's history is a stream whose key shares the channel's hash slot:
    `bocws:history:{channel}`, or `bocws:history:tagged:channel` when the channel has a
    hash tag of its own (`room:{42}`). A channel with braces that make no hash tag
    (`a{}b`, `x}y`) cannot keep history in a cluster: `ValueError` from `publish()` and
    `subscribe(since=...)`.
    """

    APPEND = _SHARDED_APPEND
    PINGS = False  # ClusterPubSub finds broken connections, and reconnects, itself
    POLL = 0.03
    """Seconds the reader waits for a message at most, across all the nodes, per call."""

    def _new_client(self, url: str, options: dict[str, Any]) -> Any:
        from redis.asyncio.cluster import ClusterNode, RedisCluster

        addresses, credentials = parse_cluster_url(url)
        nodes = [ClusterNode(host, port) for host, port in addresses]
        settings: dict[str, Any] = {**credentials, **options}
        return RedisCluster(startup_nodes=nodes, **settings)

    async def _publish(self, channel: str, payload: bytes) -> None:
        await self._client.spublish(channel, payload)

    async def _join(self, pubsub: Any, *channels: str) -> None:
        await pubsub.ssubscribe(*channels)

    async def _leave(self, pubsub: Any, *channels: str) -> None:
        await pubsub.sunsubscribe(*channels)

    async def _next_message(self, pubsub: Any) -> dict[str, Any] | None:
        message: dict[str, Any] | None = await pubsub.get_sharded_message(timeout=self.POLL)
        return message

    async def _forget_pooled_connections(self) -> None:
        for node in self._client.get_nodes():
            await node.disconnect_free_connections()

    def history_key(self, channel: str) -> str:
        from redis.crc import key_slot

        # Two shapes that no channel's key can share: `lobby` and `{lobby}` differ.
        if _hash_tag(channel):
            key = HISTORY_PREFIX + "tagged:" + channel
        else:
            key = HISTORY_PREFIX + "{" + channel + "}"
        if key_slot(key.encode()) != key_slot(channel.encode()):
            raise ValueError(
                f"channel {channel!r} cannot keep history in Redis Cluster: its braces "
                "make no hash tag that a stream's key could share; rename it"
            )
        return key


def _hash_tag(name: str) -> bool:
    """Whether `name` has a Redis Cluster hash tag: `{...}`, not empty."""
    start = name.find("{")
    end = name.find("}", start + 1) if start >= 0 else -1
    return end > start + 1


def parse_cluster_url(url: str) -> tuple[list[tuple[str, int]], dict[str, str]]:
    """`redis+cluster://[[user]:password@]host:port[,host:port...]`: the nodes to start
    from, and the credentials.

    Raises:
        ValueError: `url` is not of that form.
    """
    rest = url.removeprefix("redis+cluster://")
    userinfo, at, rest = rest.rpartition("@")
    hosts = rest.rstrip("/")
    try:
        if not hosts or "/" in hosts:
            raise ValueError
        addresses = _addresses(hosts, 6379)
    except ValueError:
        raise ValueError(
            "a Redis Cluster URL is redis+cluster://host:port[,host:port...], "
            f"got {safe_url(url)!r}"
        ) from None
    return addresses, _credentials(userinfo) if at else {}


def _addresses(hosts: str, default_port: int) -> list[tuple[str, int]]:
    """`host:port,host:port...` (a port may be left out) as pairs; `ValueError` for an
    empty host or a port that is not a number."""
    addresses = []
    for host in hosts.split(","):
        name, colon, port = host.rpartition(":")
        if not colon:
            name, port = host, ""
        name = name.strip("[]")
        if not name or (port and not (port.isascii() and port.isdigit())):
            raise ValueError(host)
        addresses.append((name, int(port or default_port)))
    return addresses


def _credentials(userinfo: str) -> dict[str, str]:
    username, _, password = userinfo.partition(":")
    credentials = {}
    if username:
        credentials["username"] = unquote(username)
    if password:
        credentials["password"] = unquote(password)
    return credentials


def parse_sentinel_url(url: str) -> tuple[list[tuple[str, int]], str, int, dict[str, str]]:
    """`redis+sentinel://[[user]:password@]host:port[,host:port...]/service[/db]`:
    the sentinels' addresses, the service, the database, and the master's credentials.

    Raises:
        ValueError: `url` is not of that form.
    """
    rest = url.removeprefix("redis+sentinel://")
    userinfo, at, rest = rest.rpartition("@")
    hosts, _, path = rest.partition("/")
    parts = [part for part in path.split("/") if part]
    credentials = _credentials(userinfo) if at else {}
    try:
        addresses = _addresses(hosts, 26379)
        if not 1 <= len(parts) <= 2 or "?" in path or "#" in path:
            raise ValueError
        if len(parts) == 2 and not (parts[1].isascii() and parts[1].isdigit()):
            raise ValueError
        db = int(parts[1]) if len(parts) == 2 else 0
    except ValueError:
        raise ValueError(
            f"a Sentinel URL is redis+sentinel://host:port[,host:port...]/service[/db], "
            f"got {safe_url(url)!r}"
        ) from None
    return addresses, unquote(parts[0]), db, credentials


def memory(url: str, **options: Any) -> MemoryBackend:
    """The backend of `"memory://"`: this process only."""
    if url != "memory://":
        raise unsupported(url)
    if options:
        raise TypeError(f"memory:// takes no options, got {sorted(options)}")
    return MemoryBackend()


SCHEMES: dict[str, Callable[..., Backend]] = {
    "memory": memory,
    "redis": RedisBackend,
    "rediss": RedisBackend,  # TLS
    "unix": RedisBackend,  # a Unix socket: unix:///path/redis.sock
    "redis+sentinel": SentinelBackend,
    "redis+cluster": ClusterBackend,
}
"""The schemes `Broadcast(url, **options)` knows, each with what makes its backend:
called as `factory(url, **options)`. Any other backend is passed as an object."""


def backend_for_url(url: str, options: dict[str, Any]) -> Backend:
    """The backend `Broadcast(url, **options)` uses, picked by the URL's scheme in `SCHEMES`.

    Raises:
        ValueError: no backend has that scheme.
        TypeError: `url` is not a str, or the backend does not take an option.
    """
    if not isinstance(url, str):
        raise TypeError(
            f"a broadcast URL is a str, got {type(url).__name__}: pass a backend object "
            "as Broadcast(backend=...)"
        )
    scheme, separator, _rest = url.partition("://")
    factory = SCHEMES.get(scheme) if separator else None
    if factory is None:
        raise unsupported(url)
    return factory(url, **options)


def safe_url(url: str) -> str:
    """`url` without its user and password, for logs, errors and reprs."""
    return url.split("@")[-1]


def unsupported(url: str) -> ValueError:
    schemes = ", ".join(f"{scheme}://" for scheme in SCHEMES)
    return ValueError(
        f"unsupported broadcast URL {url!r}: use one of {schemes} (such as "
        "'redis://host:port/db'), or pass a backend object as Broadcast(backend=...)"
    )
