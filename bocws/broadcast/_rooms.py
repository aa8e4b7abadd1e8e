"""Rooms: a channel's messages sent to sockets, each message encoded once and sent
to every socket that is ready by one task.

Each socket in a room (`Member`) has a subscription, the messages waiting for it,
and a relay task of its own that sends them. Under asyncio, a `Fanout` per channel
adds a fast path: a socket with nothing waiting is *direct*, and the fan-out's
task sends it each new message itself, encoded once for every socket of the same
send type, as raw ASGI code sends to a list of connections: no task woken per
socket. A socket that is not direct (catching up with history, or whose last send
has not completed) gets the message queued, and its relay sends the queue in
order, then makes it direct again. A send that waits (a client that does not read)
holds up no other socket: the fan-out's task hands its work over to a new task
(`Baton`), and finishes that one send alone.

Under another event loop (trio), every message is queued for every socket, and
each relay sends its own: `fanout_for()` chooses, once.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from typing import Any

import anyio

from .._baton import Baton
from .._codes import CloseCode
from .._exceptions import WebSocketDisconnect, WebSocketStateError
from .._metrics import BroadcastMetrics
from .._state import SEND
from ..websockets import WebSocket, encoded, encoder_of, plain_send, send_failed
from ._backends import BroadcastUnavailable
from ._history import HistoryGap
from ._subscription import Subscription, SubscriptionOverflow, Wakeup, report_overflow

__all__ = ["Fanout", "Member", "fanout_for", "relay"]

logger = logging.getLogger("bocws.broadcast")

TOO_SLOW = CloseCode.TRY_AGAIN_LATER

#: Messages taken at once when several wait (a burst): each goes to every member in
#: turn, and the batch costs one hand-over check and one loop turn for them all.
BATCH = 32

_UNSEEN = object()  # no member's envelope or codec

Envelope = Callable[[str | None, Any], Any]

# A member's state: who sends to its socket next.
DIRECT = 0  # nothing waits for it: the fan-out's task sends it the next message itself
QUEUED = 1  # messages wait for it: its relay sends them, in order
OVERFLOWED = 2  # it fell `queue_size` behind: its relay sends what was queued, then closes
GONE = 3  # it left the room, or its relaying stopped: nothing more is sent


class Member:
    """A socket in a room: its subscription (the messages waiting for it), who sends
    to it next (`state`), and the fan-out's task sending to it now (`sender`)."""

    __slots__ = (
        "codec",
        "core",
        "envelope",
        "first",
        "sender",
        "server_send",
        "settled",
        "state",
        "subscription",
        "ws",
    )

    def __init__(
        self, ws: WebSocket, subscription: Subscription, envelope: Envelope | None, first: int
    ) -> None:
        self.ws = ws
        self.subscription = subscription
        self.envelope = envelope
        # The codec of its send type, to encode a message once for every socket of
        # that codec (None: its own `send()` for each message).
        self.codec = encoder_of(ws)
        # What its sends do on their hot path, for the fan-out to do it itself (None:
        # each message through its own sends).
        self.core, self.server_send = plain_send(ws)
        # Its relay sends first: it makes the member direct once nothing waits for it.
        self.state = QUEUED
        self.first = first  # the number of the first message put after it joined
        self.sender: asyncio.Task[Any] | None = None
        self.settled = Wakeup()  # its relay, waiting for the fan-out's send to end

    def __repr__(self) -> str:
        return f"<Member {self.ws.url.path!r}, state {self.state}: {self.subscription!r}>"

    def stop(self) -> None:
        """Send it nothing more: its subscription ends, and its relay with it."""
        self.state = GONE
        self.subscription.end()
        self.settled.wake()


class Fanout:
    """The rooms of one channel in one `Broadcast`, under asyncio: a subscriber of
    the channel (`put()`) that sends each message to every member's socket.

    One task at a time sends (see `Baton`): it takes the messages waiting (up to
    `BATCH` at a time), and sends each to every direct member in turn (as the
    members' own sends would, a socket's typed send inlined: `plain_send()`), or
    queues it for the others, where its overflow policy applies as to any
    subscriber. The messages
    put here and not taken yet wait in one queue for all: at most as many as the
    largest `queue_size` of the members; when a message comes and it is full, the
    oldest one waiting is lost to each member that has not had it, as its policy
    says (dropped, or the member is closed as too slow).
    """

    def __init__(self, channel: str, history: bool, metrics: BroadcastMetrics | None) -> None:
        self.channel = channel
        self.history = history  # messages come as (id, message)
        self.metrics = metrics
        #: The members, in the order they joined.
        self.members: dict[Member, None] = {}
        self._round: tuple[Member, ...] = ()  # `members` as the message's sending started
        self._changed = False  # members joined or left since `_round` was taken
        self._pending: deque[tuple[int, Any]] = deque()  # put, not sent: (number, message)
        self._published = 0  # the messages put so far
        self._limit = 1  # messages that may wait in `_pending`: see the class docstring
        # The messages being sent, (number, id, value) each; the place in the batch of
        # the one being sent, and the index of the next member to send it to.
        self._batch: list[tuple[int, str | None, Any]] | None = None
        self._position = 0
        self._index = 0
        self._wakeup = Wakeup()  # the task with nothing to send
        self._baton = Baton(self._carry)
        self._baton.start()

    def __repr__(self) -> str:
        members, waiting = len(self.members), len(self._pending)
        return f"<Fanout {self.channel!r}: {members} members, {waiting} waiting>"

    def join(self, ws: WebSocket, subscription: Subscription, envelope: Envelope | None) -> Member:
        """A member for `ws`: it gets every message put from now on."""
        member = Member(ws, subscription, envelope, self._published)
        self.members[member] = None
        self._changed = True
        self._limit = max(self._limit, subscription.queue_size)
        return member

    async def leave(self, member: Member) -> None:
        """`member` gets nothing more; a send to it under way is cancelled, and has
        ended when this returns."""
        self._drop(member)
        member.stop()
        sender = member.sender
        if sender is not None:
            self._baton.pass_on(sender)  # the others' messages go on, from another task
            sender.cancel()
            with anyio.CancelScope(shield=True):
                await asyncio.wait([sender])

    # The channel's side.

    def put(self, message: Any) -> bool:
        """Send `message` to every member (`Broadcast._deliver` calls it, as it queues a
        message for a subscriber)."""
        pending = self._pending
        if len(pending) >= self._limit:  # this task is that far behind: shed the oldest
            self._shed(pending.popleft()[0])
        pending.append((self._published, message))
        self._published += 1
        self._wakeup.wake()
        return True

    async def closed(self) -> None:
        """Stop every member and the tasks, and wait for the tasks' end."""
        for member in self.members:
            member.stop()
        self.members.clear()
        self._baton.cancel()
        with anyio.CancelScope(shield=True):
            await self._baton.wait()

    # The fan-out's task.

    async def _carry(self) -> None:
        """Send each batch of messages to each member, until another task takes over
        (this one then finishes its send alone, and ends)."""
        baton = self._baton
        me = asyncio.current_task()
        while True:
            if self._batch is None:
                if not self._pending:
                    await self._wakeup.wait()
                    continue
                # Messages published in a burst join the batch: wait a loop turn at a
                # time while they come (a publish lets the loop turn once).
                waiting = len(self._pending)
                while waiting < BATCH:
                    await asyncio.sleep(0)
                    if len(self._pending) == waiting:
                        break
                    waiting = len(self._pending)
                self._next_batch()
            # Else: taking over from a task whose send waits, where it left off. The
            # member it sends to has that task as `sender`: it gets the next messages
            # queued, and its relay sends them once that send is over.
            batch = self._batch
            assert batch is not None
            token = baton.hold()
            members = self._round
            count = len(members)
            delivered = 0
            while self._position < len(batch):
                number, message_id, message = batch[self._position]
                # The message as the last (envelope, codec) seen sends it.
                envelope: Any = _UNSEEN
                codec: Any = _UNSEEN
                send: Any = None
                payload: Any = None
                frame: str | None = None
                index = self._index
                while index < count:
                    member = members[index]
                    index += 1
                    if (
                        member.state != DIRECT
                        or member.sender is not None
                        or member.envelope is not envelope
                        or member.codec is not codec
                        or number < member.first
                    ):
                        # Off the fast path: gone, queued, joined since, or another
                        # envelope or codec than the member before.
                        if member.state >= OVERFLOWED or number < member.first:
                            continue
                        if member.state != DIRECT or member.sender is not None:
                            delivered += self._queue(member, message_id, message)
                            continue
                        envelope, codec = member.envelope, member.codec
                        try:
                            value = message if envelope is None else envelope(message_id, message)
                            send, payload, frame = encoded(codec, value)
                        except Exception:  # a message it cannot send: as `relay` does
                            envelope = codec = _UNSEEN  # the next member tries again
                            self._failed(member)
                            continue
                    # Direct: sent from here, encoded once for the members alike.
                    if message_id is not None:
                        subscription = member.subscription
                        subscription.last_id = subscription.message_id = message_id
                    self._index = index  # where a task taking over goes on
                    member.sender = me
                    try:
                        core = member.core
                        if frame is not None and core is not None and core.open:
                            # What send_text() or send_bytes() would do: the hot path.
                            try:
                                await member.server_send({"type": SEND, frame: payload})
                            except Exception as error:
                                raise await send_failed(member.ws, error)  # noqa: B904
                        else:
                            await send(member.ws, payload)
                        delivered += 1
                    except (WebSocketDisconnect, WebSocketStateError):
                        member.stop()  # the client left, or the view closed the socket
                    except Exception:
                        self._failed(member)
                    finally:
                        member.sender = None
                    if baton.leader is not token:  # another task took over meanwhile
                        if member.state != DIRECT:  # messages were queued for it
                            member.settled.wake()
                        self._count(delivered)
                        return
                    if member.state != DIRECT:  # messages were queued for it meanwhile
                        member.settled.wake()
                self._index = 0
                self._position += 1
            self._batch = None
            self._count(delivered)
            baton.release(token)

    def _next_batch(self) -> None:
        """Start sending the next messages put, up to `BATCH`."""
        pending = self._pending
        batch = []
        for _ in range(min(len(pending), BATCH)):
            number, message = pending.popleft()
            message_id, value = message if self.history else (None, message)
            batch.append((number, message_id, value))
        self._batch = batch
        self._position = 0
        self._index = 0
        if self._changed:
            self._changed = False
            self._round = tuple(self.members)

    def _queue(self, member: Member, message_id: str | None, message: Any) -> int:
        """Queue the message for `member`'s relay: 1 if it was, 0 if the member
        overflowed (`queue_size` messages behind)."""
        subscription = member.subscription
        before = subscription.dropped
        if subscription.put((message_id, message) if self.history else message):
            member.state = QUEUED  # its relay sends it, after any send under way
            self._count_dropped(subscription.dropped - before)
            return 1
        self._overflowed(member)
        return 0

    def _overflowed(self, member: Member) -> None:
        member.state = OVERFLOWED  # its relay sends what was queued, then closes
        self._drop(member)
        report_overflow(member.subscription)
        if self.metrics is not None:
            self.metrics.overflows.inc()

    def _shed(self, number: int) -> None:
        """The message `number` is lost: to each member that has not had it, as its
        overflow policy says."""
        dropped = 0
        for member in list(self.members):
            if member.first > number or member.state >= OVERFLOWED:
                continue
            subscription = member.subscription
            if subscription.overflow == "drop_oldest":
                subscription.dropped += 1
                dropped += 1
            else:
                subscription.overflow_now()
                self._overflowed(member)
        self._count_dropped(dropped)

    def _drop(self, member: Member) -> None:
        if member in self.members:
            del self.members[member]
            self._changed = True

    def _failed(self, member: Member) -> None:
        logger.exception(
            "%r: could not relay a message of channel %r; stopped relaying",
            member.ws.url.path,
            self.channel,
        )
        member.stop()

    def _count(self, delivered: int) -> None:
        if delivered and self.metrics is not None:
            self.metrics.delivered.inc(delivered)

    def _count_dropped(self, dropped: int) -> None:
        if dropped and self.metrics is not None:
            self.metrics.dropped.inc(dropped)


def fanout_for(channel: str, history: bool, metrics: BroadcastMetrics | None) -> Fanout | None:
    """A `Fanout` for `channel` under asyncio; `None` under another event loop, where
    each member's relay sends every message."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:  # not asyncio's loop
        return None
    return Fanout(channel, history, metrics)


async def relay(
    ws: WebSocket,
    subscription: Subscription,
    envelope: Envelope | None,
    member: Member | None = None,
) -> None:
    """Send `ws` the messages queued for it until the subscription ends; for a
    `member` of a `Fanout`, make it direct whenever nothing waits for it."""
    try:
        while True:
            if member is not None:
                if member.state == QUEUED and subscription.idle:
                    member.state = DIRECT  # the fan-out's task sends the next one itself
                await subscription.ready()
                # A send of the fan-out's under way goes first; the message it sends
                # counts, as the one this task would be sending, in `queue_size`.
                while member.sender is not None:
                    await member.settled.wait()
                if member.state == GONE:
                    return
            message = await subscription.__anext__()
            if envelope is not None:
                message = envelope(subscription.message_id, message)
            await ws.send(message)
    except StopAsyncIteration:
        pass
    except SubscriptionOverflow:
        await ws.ensure_closed(TOO_SLOW, "too slow: try again later")
    except HistoryGap:  # found while catching up: what was missed can no longer be had
        await ws.ensure_closed(TOO_SLOW, "missed messages are no longer kept: resynchronise")
    except BroadcastUnavailable:  # while catching up
        await ws.ensure_closed(TOO_SLOW, "the broadcast is unavailable: try again later")
    except (WebSocketDisconnect, WebSocketStateError):
        pass  # the client left, or the view closed the socket: nothing more to send
    except Exception:
        logger.exception(
            "%r: could not relay a message of channel %r; stopped relaying",
            ws.url.path,
            subscription.channel,
        )
    finally:
        if member is not None:
            member.stop()
