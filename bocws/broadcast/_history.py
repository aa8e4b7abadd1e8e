"""A channel's history: message ids, how a resume finds a gap, and the ring `memory://` keeps.

A channel with history gives each message an id: `"<milliseconds>-<sequence>"`, the
form of Redis Streams' ids, ordered within the channel (`id_key()` orders them). A
subscriber resuming after an id gets the messages retained since, unless some of
them are no longer retained: then `HistoryGap`.
"""

from __future__ import annotations

import bisect
import time
from collections import deque
from collections.abc import Callable

__all__ = [
    "MEMORY_CHANNELS",
    "OLDEST",
    "PAGE",
    "HistoryGap",
    "HistorySetting",
    "MemoryHistory",
    "id_key",
]

OLDEST = "0"
"""`since=OLDEST`: every message retained, from the oldest; never a gap."""
PAGE = 1000
"""Messages of history read from a backend at once, while catching up."""
MEMORY_CHANNELS = 10_000
"""Channels `memory://` keeps history for at most: the one published to least recently
is forgotten first (a resume from one of its ids is then a `HistoryGap`)."""

HistorySetting = int | Callable[[str], int]
"""`Broadcast(history=...)`: messages kept per channel, or a function of the channel."""


class HistoryGap(LookupError):
    """Messages after the id a subscriber resumes from are no longer retained.

    Raised by `Broadcast.subscribe(channel, since=...)` and `Broadcast.room(...,
    since=...)` as the block starts, before any message: the history was trimmed
    past `since` (more than `history` messages were published since), lost (a Redis
    restart without persistence, a `memory://` process restarted), or `since` is not
    an id of this channel. Resynchronise (send the client the state from your
    database), then subscribe again with `since=OLDEST`, or without `since`.
    """

    def __init__(self, channel: str, since: str) -> None:
        super().__init__(
            f"channel {channel!r}: messages after {since!r} are no longer retained; "
            "resynchronise, then subscribe with since=OLDEST or without since"
        )
        self.channel = channel
        self.since = since


def id_key(message_id: str) -> tuple[int, int]:
    """The order of a message id: `"1700000000000-3"` as `(1700000000000, 3)`.

    Raises:
        ValueError: `message_id` is not of that form.
    """
    milliseconds, separator, sequence = message_id.partition("-")
    if not _digits(milliseconds) or (separator and not _digits(sequence)):
        raise ValueError(f"not a message id: {message_id!r}")
    if len(milliseconds) > _DIGITS or len(sequence) > _DIGITS:  # zeros in front too
        raise ValueError(f"not a message id: {message_id!r}")
    key = int(milliseconds), int(sequence) if separator else 0
    if key[0] > _MAX or key[1] > _MAX:  # beyond what Redis Streams can number
        raise ValueError(f"not a message id: {message_id!r}")
    return key


_MAX = 2**64 - 1
_DIGITS = len(str(_MAX))


def _digits(text: str) -> bool:
    return text.isascii() and text.isdigit()


class MemoryHistory:
    """The histories of `memory://`: a ring of the last messages of each channel.

    Ids are made as Redis makes a stream's: the clock's milliseconds, and a sequence
    number within the same millisecond, never going back.
    """

    def __init__(self) -> None:
        # Each channel's last messages, oldest first: (order, id, payload).
        self._rings: dict[str, deque[tuple[tuple[int, int], str, bytes]]] = {}
        # The order of the newest message trimmed from each channel's ring.
        self._trimmed: dict[str, tuple[int, int]] = {}
        self._last = (0, 0)

    def append(self, channel: str, payload: bytes, keep: int) -> str:
        """Keep `payload` as the newest of `channel`'s last `keep` messages; its id."""
        milliseconds = time.time_ns() // 1_000_000
        last = self._last
        key = self._last = (last[0], last[1] + 1) if milliseconds <= last[0] else (milliseconds, 0)
        message_id = f"{key[0]}-{key[1]}"
        ring = self._rings.pop(channel, None)  # then last: the most recently used
        if ring is None:
            ring = deque()
            if len(self._rings) >= MEMORY_CHANNELS:
                forgotten = next(iter(self._rings))
                del self._rings[forgotten]
                self._trimmed.pop(forgotten, None)
        self._rings[channel] = ring
        while len(ring) >= keep:
            self._trimmed[channel] = ring.popleft()[0]
        ring.append((key, message_id, payload))
        return message_id

    def after(self, channel: str, since: str, count: int) -> tuple[list[tuple[str, bytes]], bool]:
        """At most `count` messages of `channel` after `since`, oldest first, and whether
        every message after `since` is still retained (see `Backend.history`)."""
        ring = self._rings.get(channel)
        if ring is None:
            return [], since == OLDEST
        if since == OLDEST:
            after, complete = (-1, -1), True
        else:
            after = id_key(since)
            # Nothing trimmed: an id older than the first ever kept is another ring's;
            # one newer than the newest is none of this ring's either.
            complete = self._trimmed.get(channel, ring[0][0]) <= after <= ring[-1][0]
        messages = list(ring)
        start = bisect.bisect_right(messages, after, key=lambda message: message[0])
        return [
            (message_id, payload) for _, message_id, payload in messages[start : start + count]
        ], complete
