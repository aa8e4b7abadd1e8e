"""The chat's rooms, shared by every process through a `bocws.Broadcast`.

Each process subscribes once to the channel of each room it has members in, and
hands the room's events to its members' outboxes. Who is in a room is gossiped on
the same channel: every process publishes its *roster* (the names it holds) with
each join and leave, answers a newcomer's question with its own, and repeats it
every `ANNOUNCE_EVERY` seconds; a process not heard from for `FORGET_AFTER`
seconds (it crashed, or lost Redis) drops out of the member lists.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import time
import uuid
from collections import OrderedDict, deque
from typing import Any

import anyio
import anyio.abc
import anyio.lowlevel

from bocws import Broadcast, BroadcastUnavailable, HistoryGap, SubscriptionOverflow, WebSocket
from bocws.broadcast import OLDEST, id_key

MAX_LAG = 5.0
"""Seconds the oldest event waiting for a member may have waited: a member that does
not drain its outbox for that long is too slow, and dropped (1013). A burst that fills
the outbox in one moment is not lag: a member that reads catches up."""
OUTBOX_SIZE = 1000
"""Events that may wait for a member at most, whatever their age (a memory bound); a
member further behind is dropped (1013)."""
ANNOUNCE_EVERY = 15.0
FORGET_AFTER = 3 * ANNOUNCE_EVERY
RATE = 5.0
BURST = 20
"""A member may send `BURST` messages at once, and `RATE` a second on average. So may
each display name, across its sockets and reconnections."""
ADDRESS_RATE = 15.0
ADDRESS_BURST = 60
"""What all the sockets from one client address may send together (several people
may share an address, behind a NAT)."""
TRACKED = 10_000
"""Names and addresses whose rate is remembered at most, the longest idle forgotten."""
JOIN_TIMEOUT = 5.0
"""Seconds a joining member waits for its own join to come back through the broadcast."""
HISTORY = 500
"""Events each room's channel keeps (`Broadcast(history=...)`), for pages that reconnect:
messages, and the rosters gossiped between processes."""
SEEN = 10_000
"""Messages per room whose client ids are remembered, to drop one sent again."""

log = logging.getLogger("examples.chat")
ROSTER_NUMBERS = itertools.count(1)

PROCESS = uuid.uuid4().hex
"""This process, among all those sharing the broadcast."""


class Bucket:
    """A token bucket: `burst` at once, `rate` a second on average."""

    __slots__ = ("burst", "counted", "rate", "tokens")

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = float(burst)
        self.counted = time.monotonic()

    def take(self) -> bool:
        """Whether one more is allowed now; count it if so."""
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.counted) * self.rate)
        self.counted = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class Buckets:
    """A `Bucket` for each key (a display name, a client address), `TRACKED` at most.

    The longest idle is forgotten first: a forgotten bucket would have refilled anyway
    unless its key sent again within the time it takes `TRACKED` others to send.
    """

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self._buckets: OrderedDict[str, Bucket] = OrderedDict()

    def take(self, key: str) -> bool:
        bucket = self._buckets.pop(key, None) or Bucket(self.rate, self.burst)
        self._buckets[key] = bucket  # the most recently used, last
        if len(self._buckets) > TRACKED:
            self._buckets.popitem(last=False)
        return bucket.take()


class Member:
    """A socket in a room, with its outbox: relaying never waits for a slow reader."""

    def __init__(self, ws: WebSocket, name: str) -> None:
        self.ws = ws
        self.name = name
        self.address = ws.client.host if ws.client is not None else ""
        self.id = uuid.uuid4().hex
        # The events waiting to be sent, each with the time it was queued.
        self._outbox: deque[tuple[float, dict[str, Any]]] = deque()
        self._queued = anyio.Event()
        self._closed = False
        self.joined = anyio.Event()  # its join came back: it receives the room's events
        self.too_slow = False
        self.tasks: anyio.abc.TaskGroup | None = None  # its view's: cancelled to drop it
        self.bucket = Bucket(RATE, BURST)
        self.join_id: str | None = None  # the id of its join on the room's channel

    def tell(self, event: dict[str, Any]) -> bool:
        """Queue `event`; `False` if the member is gone, or too far behind and now dropped.

        Too far behind: its oldest waiting event has waited over `MAX_LAG` seconds, or
        `OUTBOX_SIZE` events wait.
        """
        if self._closed:
            return False
        outbox = self._outbox
        now = time.monotonic()
        if outbox and (len(outbox) >= OUTBOX_SIZE or now - outbox[0][0] > MAX_LAG):
            self.drop()
            return False
        outbox.append((now, event))
        self._queued.set()
        return True

    def tell_after_first(self, events: list[dict[str, Any]]) -> None:
        """Queue `events` right after the first event queued (its own join): what it
        missed while away, before what came since it joined."""
        if self._closed:
            return
        now = time.monotonic()
        for index, event in enumerate(events, start=1):
            self._outbox.insert(index, (now, event))
        if events:
            self._queued.set()

    def lag(self) -> float:
        """Seconds the oldest event waiting for the member has waited (0: none waits)."""
        return time.monotonic() - self._outbox[0][0] if self._outbox else 0.0

    async def next_event(self) -> dict[str, Any] | None:
        """The next event to send the member, in order; `None` once its outbox closed."""
        while not self._outbox:
            if self._closed:
                return None
            self._queued = anyio.Event()
            await self._queued.wait()
        return self._outbox.popleft()[1]

    def close(self) -> None:
        """Queue nothing more: the events already queued are still sent."""
        self._closed = True
        self._queued.set()

    def drop(self) -> None:
        """Stop the member's view at once; it leaves the room and closes with 1013."""
        self.too_slow = True
        self.close()
        if self.tasks is not None:
            self.tasks.cancel_scope.cancel()


class Room:
    """A room as this process sees it: its own members, and every process's roster."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.channel = f"chat:{name}"
        self.members: dict[str, Member] = {}  # this process's, by id
        # By process: its names, when last heard, and its roster's number (a newer one
        # may overtake an older one on the way: the older one is then ignored).
        self.rosters: dict[str, tuple[list[str], float, int]] = {}
        self.ready = anyio.Event()  # subscribed to the channel
        self.scope = anyio.CancelScope()
        # Messages heard, by (user, client id): their ids, the oldest forgotten first.
        self.seen: OrderedDict[tuple[str, str], str] = OrderedDict()

    def first_time(self, event: dict[str, Any], event_id: str | None) -> bool:
        """Whether message `event` is new here (not one with the same sender and client
        id heard before); remember it. Every process hears the channel in the same
        order, so all of them keep the first and drop the same duplicates."""
        cid = event.get("cid")
        if not isinstance(cid, str):
            return True
        key = (str(event.get("user")), cid)
        if key in self.seen:
            return False
        self.seen[key] = event_id or ""
        if len(self.seen) > SEEN:
            self.seen.popitem(last=False)
        return True

    def everyone(self) -> list[str]:
        """Every member's name, from all processes, sorted; one open twice appears twice."""
        names = [name for roster, _heard, _number in self.rosters.values() for name in roster]
        return sorted(names, key=str.casefold)

    def roster(self, **fields: Any) -> dict[str, Any]:
        names = [member.name for member in self.members.values()]
        number = next(ROSTER_NUMBERS)
        return {"type": "roster", "process": PROCESS, "n": number, "members": names, **fields}

    def tell_everyone(self, event: dict[str, Any]) -> None:
        """Queue `event` for this process's joined members, dropping those too far behind.

        A dropped member stays listed until its view leaves, which tells the others.
        """
        for member in self.members.values():
            if member.joined.is_set() and not member.too_slow:
                member.tell(event)


class Rooms:
    """The rooms this process has members in, over `broadcast`."""

    def __init__(self, broadcast: Broadcast) -> None:
        self.broadcast = broadcast
        self.rooms: dict[str, Room] = {}
        self._tasks: anyio.abc.TaskGroup | None = None
        self._by_name = Buckets(RATE, BURST)
        self._by_address = Buckets(ADDRESS_RATE, ADDRESS_BURST)

    def may_speak(self, member: Member) -> bool:
        """Whether `member` is within its rate, its name's (across its sockets and
        reconnections) and its address's; count one message."""
        return (
            member.bucket.take()
            and self._by_name.take(member.name.casefold())
            and self._by_address.take(member.address)
        )

    async def run(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Hold the rooms' listeners, and announce the rosters, until cancelled."""
        self._by_name = Buckets(RATE, BURST)
        self._by_address = Buckets(ADDRESS_RATE, ADDRESS_BURST)
        async with anyio.create_task_group() as tasks:
            self._tasks = tasks
            task_status.started()
            try:
                while True:
                    await anyio.sleep(ANNOUNCE_EVERY)
                    await self._announce_all()
            finally:
                self._tasks = None
                tasks.cancel_scope.cancel()

    async def _announce_all(self) -> None:
        for room in list(self.rooms.values()):
            self._forget_silent(room)
            await self._announce(room)

    def _forget_silent(self, room: Room) -> None:
        before = room.everyone()
        cutoff = time.monotonic() - FORGET_AFTER
        for process, (_names, heard, _number) in list(room.rosters.items()):
            if heard < cutoff and process != PROCESS:
                del room.rosters[process]
        if room.everyone() != before:
            room.tell_everyone({"type": "members", "members": room.everyone()})

    async def join(self, name: str, member: Member) -> Room:
        """Add `member` to room `name`, tell every process, and wait until it is in.

        Raises:
            BroadcastUnavailable: the broadcast cannot be reached (or did not answer).
        """
        if self._tasks is None:  # Rooms.run() is not running (or failed)
            raise BroadcastUnavailable("the chat's rooms are not running")
        room = self.rooms.get(name)
        first = room is None
        if room is None:
            room = self.rooms[name] = Room(name)
            self._tasks.start_soon(self._listen, room)
        room.members[member.id] = member
        try:
            await room.ready.wait()
            change = {"type": "join", "user": member.name, "id": member.id}
            # The first member here asks the other processes who they hold.
            await self.broadcast.publish(room.channel, room.roster(change=change, ask=first))
            with anyio.fail_after(JOIN_TIMEOUT):
                await member.joined.wait()
            if first:
                await self._recall(room, member)
        except (BroadcastUnavailable, TimeoutError) as error:
            with anyio.CancelScope(shield=True):
                await self.leave(room, member)  # the join may have reached the others
            raise BroadcastUnavailable(f"could not join {name!r}: {error}") from error
        except BaseException:  # cancelled: out of the room, quietly
            self._remove(room, member)
            raise
        return room

    async def leave(self, room: Room, member: Member) -> None:
        """Take `member` out of `room` and tell every process; close the room if empty.

        Leaving twice tells the others once.
        """
        if room.members.get(member.id) is not member:
            member.close()
            return
        self._remove(room, member)
        change = {"type": "leave", "user": member.name, "id": member.id}
        # Unreachable, the others forget this process's members after FORGET_AFTER.
        with anyio.move_on_after(JOIN_TIMEOUT), contextlib.suppress(BroadcastUnavailable):
            await self.broadcast.publish(room.channel, room.roster(change=change))

    def _remove(self, room: Room, member: Member) -> None:
        room.members.pop(member.id, None)
        member.close()
        if not room.members and self.rooms.get(room.name) is room:
            del self.rooms[room.name]
            room.scope.cancel()  # its listener unsubscribes

    async def _listen(self, room: Room) -> None:
        """Hand the room's events to its members until the room closes.

        Whatever goes wrong here ends this room only, never the others: its members
        are dropped (1013: try again later) and may come back to a new listener.
        """
        with room.scope:
            subscribed = self.broadcast.subscribe(room.channel, queue_size=10 * OUTBOX_SIZE)
            try:
                async with subscribed as events:
                    room.ready.set()
                    async for event in events:
                        self._heard(room, event, events.message_id)
                        # Let the members' senders run between events: a burst does
                        # not pile up in every outbox before any of them can drain.
                        await anyio.lowlevel.checkpoint()
            except SubscriptionOverflow:
                log.warning("room %r: this process fell behind; dropping its members", room.name)
                self._close_room(room)
            except Exception:
                log.exception("room %r: its listener failed; dropping its members", room.name)
                self._close_room(room)
        room.ready.set()  # a joiner waiting for a room that closed meanwhile gives up

    def _close_room(self, room: Room) -> None:
        """Forget `room` and drop its members: they try again later (1013)."""
        if self.rooms.get(room.name) is room:
            del self.rooms[room.name]
        for member in list(room.members.values()):
            member.drop()

    def _heard(self, room: Room, event: Any, event_id: str | None = None) -> None:
        """Handle one event of the room's channel, `event_id` its id; ignore what is
        not the chat's.

        Other programs may publish on the channel (see docs/scaling.md): whatever they
        send, it is logged and dropped, and the room goes on.
        """
        if not isinstance(event, dict):
            log.warning("room %r: ignored an event that is not an object", room.name)
        elif event.get("type") == "roster":
            try:
                self._heard_roster(room, event, event_id)
            except Exception as error:  # anyone may publish anything here
                log.warning("room %r: ignored a malformed roster (%.200r)", room.name, error)
        elif event.get("type") == "message" and room.first_time(event, event_id):
            room.tell_everyone({**event, "id": event_id})

    async def _recall(self, room: Room, member: Member) -> None:
        """Remember the messages `room` kept from before `member` (its first here) joined,
        so that one sent again is dropped here too: this process may have just started,
        or its last member may have left the room a moment ago."""
        try:
            kept = await self.missed(room, member, OLDEST, dedupe=False)
        except (HistoryGap, SubscriptionOverflow, TimeoutError, BroadcastUnavailable) as error:
            log.info("room %r: could not recall the messages kept: %s", room.name, error)
            return
        for event in kept:
            room.first_time(event, event.get("id"))

    async def missed(
        self, room: Room, member: Member, since: str, *, dedupe: bool = True
    ) -> list[dict[str, Any]]:
        """The messages of `room` after the event `since` and before `member`'s join, for
        a page that reconnects: what was said while it was away, each once.

        Raises:
            HistoryGap: some are no longer kept (or `since` is no id of the room's).
            SubscriptionOverflow: the room was too busy to read them back in time.
            TimeoutError: the broadcast did not give them back in time.
        """
        assert member.join_id is not None, "joined members only"
        until = id_key(member.join_id)
        try:
            after = (-1, -1) if since == OLDEST else id_key(since)
        except ValueError:
            raise HistoryGap(room.channel, since) from None
        if after > until:  # no id of this room's yet
            raise HistoryGap(room.channel, since)
        if after == until:
            return []
        found: list[dict[str, Any]] = []
        heard: set[tuple[str, str]] = set()
        with anyio.fail_after(JOIN_TIMEOUT):
            async with self.broadcast.subscribe(room.channel, since=since) as events:
                async for event in events:
                    if events.last_id is None or id_key(events.last_id) >= until:
                        break
                    if isinstance(event, dict) and event.get("type") == "message":
                        cid = event.get("cid")
                        key = (str(event.get("user")), cid)
                        if dedupe and isinstance(cid, str) and key in heard:
                            continue  # sent twice: told once
                        heard.add(key)
                        found.append({**event, "id": events.message_id})
        return found

    def _heard_roster(self, room: Room, event: dict[str, Any], event_id: str | None = None) -> None:
        before = room.everyone()
        process, names = str(event["process"]), [str(name) for name in event["members"]]
        number = int(event["n"])
        known = room.rosters.get(process)
        if known is None or number > known[2]:
            # Kept when empty: an older roster still on its way must not bring names back.
            room.rosters[process] = (names, time.monotonic(), number)
        change = event.get("change")
        if change is not None:
            if process == PROCESS and change["type"] == "join":
                member = room.members.get(change["id"])
                if member is not None:
                    member.join_id = event_id
                    member.joined.set()  # from now on it gets the room's events: this one first
            told = {"type": change["type"], "user": change["user"], "members": room.everyone()}
            room.tell_everyone({**told, "id": event_id})
        elif room.everyone() != before:
            room.tell_everyone({"type": "members", "members": room.everyone()})
        if event.get("ask") and process != PROCESS and room.members and self._tasks:
            self._tasks.start_soon(self._announce, room)  # not in the way of the events

    async def _announce(self, room: Room) -> None:
        with contextlib.suppress(BroadcastUnavailable):  # the next announcement makes up
            await self.broadcast.publish(room.channel, room.roster())
