"""bocws: Bocadillo's high-level WebSocket API for any ASGI application."""

from ._state import WebSocketState, WebSocketStateError
from .app import App
from .broadcast import Broadcast, BroadcastUnavailable, Subscription, SubscriptionOverflow
from .views import ViewEndpoint, WebSocketView, websocket_view
from .websockets import (
    DenialResponseUnsupported,
    MessageTooBig,
    MessageTypeError,
    WebSocket,
    WebSocketDisconnect,
)

__version__ = "0.1.0"

__all__ = [
    "App",
    "Broadcast",
    "BroadcastUnavailable",
    "DenialResponseUnsupported",
    "MessageTooBig",
    "MessageTypeError",
    "Subscription",
    "SubscriptionOverflow",
    "ViewEndpoint",
    "WebSocket",
    "WebSocketDisconnect",
    "WebSocketState",
    "WebSocketStateError",
    "WebSocketView",
    "__version__",
    "websocket_view",
]
