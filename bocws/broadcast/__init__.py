"""Broadcast: channels and rooms across processes, over pluggable backends (memory, Redis ...)."""

from ._backends import Backend, BroadcastUnavailable
from ._broadcast import Broadcast
from ._subscription import Overflow, Subscription, SubscriptionOverflow

__all__ = [
    "Backend",
    "Broadcast",
    "BroadcastUnavailable",
    "Overflow",
    "Subscription",
    "SubscriptionOverflow",
]
