"""Broadcast: channels and rooms across processes, in memory or through Redis pub/sub."""

from ._backends import BroadcastUnavailable
from ._broadcast import Broadcast
from ._subscription import Overflow, Subscription, SubscriptionOverflow

__all__ = ["Broadcast", "BroadcastUnavailable", "Overflow", "Subscription", "SubscriptionOverflow"]
