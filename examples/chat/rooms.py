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
from typing import Any

import anyio
import anyio.abc

from bocws import Broadcast, BroadcastUnavailable, SubscriptionOverflow, WebSocket

OUTBOX_SIZE = 100
"""Events that may wait for a member; a member further behind is dropped (1013)."""
ANNOUNCE_EVERY = 15.0
FORGET_AFTER = 3 * ANNOUNCE_EVERY
RATE = 5.0
BURST = 20
"""A member may send `BURST` messages at once, and `RATE` a second on average."""
JOIN_TIMEOUT = 5.0
"""Seconds a joining member waits for its own join to come back through the broadcast."""

log = logging.getLogger("examples.chat")
ROSTER_NUMBERS = itertools.count(1)

PROCESS = uuid.uuid4().hex
"""This process, among all those sharing the broadcast."""


class Member:
    """A socket in a room, with its outbox: relaying never waits for a slow reader."""

    def __init__(self, ws: WebSocket, name: str) -> None:
        self.ws = ws
        self.name = name
        self.id = uuid.uuid4().hex
        self.outbox, self.inbox = anyio.create_memory_object_stream[dict[str, Any]](OUTBOX_SIZE)
        self.joined = anyio.Event()  # its join came back: it receives the room's events
        self.too_slow = False
        self.tasks: anyio.abc.TaskGroup | None = None  # its view's: cancelled to drop it
        self._allowance = float(BURST)
        self._counted = time.monotonic()

    def tell(self, event: dict[str, Any]) -> bool:
        """Queue `event`; `False` if the member is gone, or too far behind and now dropped."""
        try:
            self.outbox.send_nowait(event)
        except anyio.WouldBlock:
            self.drop()
            return False
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            return False
        return True

    def drop(self) -> None:
        """Stop the member's view at once; it leaves the room and closes with 1013."""
        self.too_slow = True
        self.outbox.close()
        if self.tasks is not None:
            self.tasks.cancel_scope.cancel()

    def may_speak(self) -> bool:
        """Whether the member is within its rate (a token bucket); count one message."""
        now = time.monotonic()
        self._allowance = min(BURST, self._allowance + (now - self._counted) * RATE)
        self._counted = now
        if self._allowance < 1:
            return False
        self._allowance -= 1
        return True


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

    async def run(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Hold the rooms' listeners, and announce the rosters, until cancelled."""
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
        room = self.rooms.get(name)
        first = room is None
        if room is None:
            room = self.rooms[name] = Room(name)
            if self._tasks is None:
                raise RuntimeError("the rooms are not running: start Rooms.run() first")
            self._tasks.start_soon(self._listen, room)
        room.members[member.id] = member
        try:
            await room.ready.wait()
            change = {"type": "join", "user": member.name, "id": member.id}
            # The first member here asks the other processes who they hold.
            await self.broadcast.publish(room.channel, room.roster(change=change, ask=first))
            with anyio.fail_after(JOIN_TIMEOUT):
                await member.joined.wait()
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
            member.outbox.close()
            return
        self._remove(room, member)
        change = {"type": "leave", "user": member.name, "id": member.id}
        # Unreachable, the others forget this process's members after FORGET_AFTER.
        with anyio.move_on_after(JOIN_TIMEOUT), contextlib.suppress(BroadcastUnavailable):
            await self.broadcast.publish(room.channel, room.roster(change=change))

    def _remove(self, room: Room, member: Member) -> None:
        room.members.pop(member.id, None)
        member.outbox.close()
        if not room.members and self.rooms.get(room.name) is room:
            del self.rooms[room.name]
            room.scope.cancel()  # its listener unsubscribes

    async def _listen(self, room: Room) -> None:
        with room.scope:
            subscribed = self.broadcast.subscribe(room.channel, queue_size=10 * OUTBOX_SIZE)
            try:
                async with subscribed as events:
                    room.ready.set()
                    async for event in events:
                        self._heard(room, event)
            except SubscriptionOverflow:
                # This process fell behind the room: its members try again later.
                log.warning("room %r: this process fell behind; dropping its members", room.name)
                if self.rooms.get(room.name) is room:
                    del self.rooms[room.name]
                for member in list(room.members.values()):
                    member.drop()
        room.ready.set()  # a joiner waiting for a room that closed meanwhile gives up

    def _heard(self, room: Room, event: Any) -> None:
        """Handle one event of the room's channel; ignore what is not the chat's."""
        if not isinstance(event, dict):
            log.warning("room %r: ignored an event that is not an object", room.name)
        elif event.get("type") == "roster":
            try:
                self._heard_roster(room, event)
            except (KeyError, TypeError, ValueError) as error:
                log.warning("room %r: ignored a malformed roster (%r)", room.name, error)
        elif event.get("type") == "message":
            room.tell_everyone(event)

    def _heard_roster(self, room: Room, event: dict[str, Any]) -> None:
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
                    member.joined.set()  # from now on it gets the room's events: this one first
            room.tell_everyone(
                {"type": change["type"], "user": change["user"], "members": room.everyone()}
            )
        elif room.everyone() != before:
            room.tell_everyone({"type": "members", "members": room.everyone()})
        if event.get("ask") and process != PROCESS and room.members and self._tasks:
            self._tasks.start_soon(self._announce, room)  # not in the way of the events

    async def _announce(self, room: Room) -> None:
        with contextlib.suppress(BroadcastUnavailable):  # the next announcement makes up
            await self.broadcast.publish(room.channel, room.roster())
