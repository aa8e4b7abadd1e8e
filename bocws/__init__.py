"""bocws: Bocadillo's high-level WebSocket API for any ASGI application."""

from importlib import metadata as _metadata

from ._codecs import Codec
from ._codes import CloseCode
from ._exceptions import (
    DenialResponseUnsupported,
    InvalidJSON,
    InvalidMessage,
    MessageTooBig,
    MessageTypeError,
    WebSocketDisconnect,
    WebSocketStateError,
)
from ._invalid import invalid_reply
from ._state import WebSocketState
from .app import App
from .broadcast import (
    Backend,
    Broadcast,
    BroadcastUnavailable,
    HistoryGap,
    Subscription,
    SubscriptionOverflow,
)
from .rpc import JsonRpc, RpcError
from .views import ViewEndpoint, WebSocketView, websocket_view
from .websockets import WebSocket

try:
    __version__ = _metadata.version("bocws")
except _metadata.PackageNotFoundError:  # pragma: no cover - a source tree never installed
    __version__ = "0+unknown"

__all__ = [
    "App",
    "Backend",
    "Broadcast",
    "BroadcastUnavailable",
    "CloseCode",
    "Codec",
    "DenialResponseUnsupported",
    "HistoryGap",
    "InvalidJSON",
    "InvalidMessage",
    "JsonRpc",
    "MessageTooBig",
    "MessageTypeError",
    "RpcError",
    "Subscription",
    "SubscriptionOverflow",
    "ViewEndpoint",
    "WebSocket",
    "WebSocketDisconnect",
    "WebSocketState",
    "WebSocketStateError",
    "WebSocketView",
    "__version__",
    "invalid_reply",
    "websocket_view",
]
