"""Broadcast: channels and rooms across processes, over pluggable backends (memory, Redis ...)."""

from ._backends import Backend, BroadcastUnavailable, HistoryBackend
from ._broadcast import Broadcast
from ._history import OLDEST, HistoryGap, id_key
from ._subscription import Overflow, Subscription, SubscriptionOverflow

__all__ = [
    "OLDEST",
    "Backend",
    "Broadcast",
    "BroadcastUnavailable",
    "HistoryBackend",
    "HistoryGap",
    "Overflow",
    "Subscription",
    "SubscriptionOverflow",
    "id_key",
]
