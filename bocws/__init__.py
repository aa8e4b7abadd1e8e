"""bocws: Bocadillo's high-level WebSocket API for any ASGI application."""

from ._state import WebSocketState, WebSocketStateError
from .websockets import (
    DenialResponseUnsupported,
    MessageTypeError,
    WebSocket,
    WebSocketDisconnect,
)

__version__ = "0.1.0"

__all__ = [
    "DenialResponseUnsupported",
    "MessageTypeError",
    "WebSocket",
    "WebSocketDisconnect",
    "WebSocketState",
    "WebSocketStateError",
    "__version__",
]
