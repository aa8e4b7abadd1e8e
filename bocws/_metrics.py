"""Prometheus metrics of routes and broadcasts, through prometheus-client (an extra).

`metrics=` (a route option, `App(metrics=...)`, `Broadcast(metrics=...)`) is `False`,
`True` for prometheus-client's default registry, or a `CollectorRegistry`;
`registry_for()` reads it, once, where it is declared. The metric objects are made
once per registry (`ConnectionMetrics.of()`, `BroadcastMetrics.of()`), and their
children once per route (`ConnectionMetrics.route()`).

A connection is counted by a `Tally`: the connection itself counts its data messages
and their bytes there, in plain attributes (`Connection._tally`, set by `count_with()`;
on `WebSocket`'s hot paths inline, elsewhere as the state core passes them), and the
tally notes how the handshake went. It writes to the metric objects when the
connection ends (`Tally.flush()`), and, while it is open, when the registry is
scraped (`_OpenConnections`, which writes what every open connection counted since),
never per message. Without metrics, a connection's tally is `None`: one test on each
hot path.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from starlette.types import Message

from ._codes import CloseCode
from ._state import ACCEPT, CLOSE, RESPONSE_START, SEND

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry
else:
    # Annotations name it without importing prometheus-client, an optional extra.
    CollectorRegistry = Any

__all__ = [
    "EXTRA",
    "NO_ROUTE",
    "BroadcastMetrics",
    "CollectorRegistry",
    "ConnectionMetrics",
    "RefusalReason",
    "RouteMetrics",
    "Tally",
    "registry_for",
]

EXTRA = "pip install 'bocws[prometheus]'"
RefusalReason = Literal["origin", "no_route", "parameters", "rejected", "denied"]
#: The `route` label of handshakes refused before any route was found (no route
#: matched, or the application's `allowed_origins` refused them).
NO_ROUTE = ""
#: Closes the application makes for the client's bad input.
INVALID_INPUT_CODES = frozenset(
    {CloseCode.UNSUPPORTED_DATA, CloseCode.INVALID_PAYLOAD, CloseCode.MESSAGE_TOO_BIG}
)
#: Seconds: WebSocket connections last from a fraction of a second to days.
DURATION_BUCKETS = (0.1, 1.0, 10.0, 60.0, 300.0, 900.0, 3600.0, 14400.0, 86400.0)


def registry_for(value: object) -> CollectorRegistry | None:
    """The registry `metrics=value` stands for: `None` for `False`, prometheus-client's
    default registry for `True`, else `value`, which must be a `CollectorRegistry`.

    Raises:
        ImportError: prometheus-client is not installed (the `bocws[prometheus]` extra).
        TypeError: `value` is none of those.
    """
    if value is False:
        return None
    try:
        import prometheus_client
    except ImportError as error:
        if value is not True:
            raise TypeError(_not_a_registry(value)) from None
        raise ImportError(f"metrics=True needs prometheus-client: {EXTRA}") from error
    if value is True:
        return prometheus_client.REGISTRY
    if not isinstance(value, prometheus_client.CollectorRegistry):
        raise TypeError(_not_a_registry(value))
    return value


def _not_a_registry(value: object) -> str:
    return f"metrics must be True, False or a prometheus_client.CollectorRegistry, got {value!r}"


_Families = TypeVar("_Families", "ConnectionMetrics", "BroadcastMetrics")


def _once(
    cache: weakref.WeakKeyDictionary[Any, _Families],
    make: Callable[[CollectorRegistry], _Families],
    registry: CollectorRegistry,
) -> _Families:
    """The metric objects `make` registers in `registry`, made on the first call only
    (a registry refuses a second metric of the same name)."""
    families = cache.get(registry)
    if families is None:
        families = cache[registry] = make(registry)
    return families


class ConnectionMetrics:
    """The metrics of WebSocket connections in one registry; `of()` makes them once."""

    @classmethod
    def of(cls, registry: CollectorRegistry) -> ConnectionMetrics:
        """The connection metrics of `registry`, registered there on first use."""
        return _once(_CONNECTION_METRICS, cls, registry)

    def __init__(self, registry: CollectorRegistry) -> None:
        from prometheus_client import Counter, Gauge, Histogram

        self._routes: dict[str, RouteMetrics] = {}
        self._refusals: dict[tuple[str, ...], Any] = {}
        # Held while a tally writes its messages (a scrape may run in another thread).
        self.writing = threading.Lock()
        # First, so that a scrape writes the open connections' counts before the
        # registry reads the counters.
        registry.register(_OpenConnections(self._routes))
        route = ("route",)
        self.open = Gauge(
            "bocws_connections_open",
            "WebSocket connections accepted and not yet ended.",
            route,
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.connections = Counter(
            "bocws_connections_total",
            "WebSocket connections ended, by the close code they ended with.",
            ("route", "code"),
            registry=registry,
        )
        self.refused = Counter(
            "bocws_handshakes_refused_total",
            "WebSocket handshakes refused, by reason: origin, no_route, parameters, "
            "rejected (by the view), denied (a denial response).",
            ("route", "reason"),
            registry=registry,
        )
        self.received = Counter(
            "bocws_messages_received_total",
            "Data messages received from clients.",
            route,
            registry=registry,
        )
        self.sent = Counter(
            "bocws_messages_sent_total", "Data messages sent to clients.", route, registry=registry
        )
        self.received_bytes = Counter(
            "bocws_received_bytes_total",
            "Bytes of the data messages received (UTF-8 for text).",
            route,
            registry=registry,
        )
        self.sent_bytes = Counter(
            "bocws_sent_bytes_total",
            "Bytes of the data messages sent (UTF-8 for text).",
            route,
            registry=registry,
        )
        self.errors = Counter(
            "bocws_errors_total",
            "Connections ended by an application error (closed with 1011).",
            route,
            registry=registry,
        )
        self.invalid = Counter(
            "bocws_invalid_messages_total",
            "Connections closed for the client's bad input (1003, 1007, 1009), by code.",
            ("route", "code"),
            registry=registry,
        )
        self.duration = Histogram(
            "bocws_connection_duration_seconds",
            "How long WebSocket connections lasted, from accept to end.",
            route,
            registry=registry,
            buckets=DURATION_BUCKETS,
        )

    def route(self, route: str) -> RouteMetrics:
        """The metrics of the route whose path pattern is `route`, made on first use."""
        metrics = self._routes.get(route)
        if metrics is None:
            metrics = self._routes[route] = RouteMetrics(self, route)
        return metrics

    def refuse(self, route: str, reason: RefusalReason) -> None:
        """Count a handshake refused for `reason` at `route` (`NO_ROUTE` before routing)."""
        _child(self._refusals, self.refused, (route, reason)).inc()


def _child(children: dict[Any, Any], family: Any, labels: tuple[str, ...]) -> Any:
    """The child of `family` with `labels`, from `children` where it was made once."""
    child = children.get(labels)
    if child is None:
        child = children[labels] = family.labels(*labels)
    return child


class RouteMetrics:
    """One route's children of the connection metrics: the `.labels()` calls made once."""

    __slots__ = (
        "_codes",
        "_families",
        "_invalid",
        "duration",
        "errors",
        "live",
        "open",
        "received",
        "received_bytes",
        "route",
        "sent",
        "sent_bytes",
        "writing",
    )

    def __init__(self, families: ConnectionMetrics, route: str) -> None:
        self.route = route
        self._families = families
        self.open = families.open.labels(route)
        self.received = families.received.labels(route)
        self.sent = families.sent.labels(route)
        self.received_bytes = families.received_bytes.labels(route)
        self.sent_bytes = families.sent_bytes.labels(route)
        self.errors = families.errors.labels(route)
        self.duration = families.duration.labels(route)
        self.writing = families.writing
        #: The connections open now, whose counts a scrape writes.
        self.live: set[Tally] = set()
        # Labelled by code too: made as they come.
        self._codes: dict[tuple[str, ...], Any] = {}
        self._invalid: dict[tuple[str, ...], Any] = {}

    def refuse(self, reason: RefusalReason) -> None:
        """Count a handshake refused for `reason`."""
        self._families.refuse(self.route, reason)

    def end(self, code: int, application_closed: bool, failed: bool) -> None:
        """Count an accepted connection ended with `code` (the application's close if
        `application_closed`); `failed`: the view raised an application error."""
        labels = (self.route, str(code))
        _child(self._codes, self._families.connections, labels).inc()
        if failed or (application_closed and code == CloseCode.INTERNAL_ERROR):
            self.errors.inc()
        elif application_closed and code in INVALID_INPUT_CODES:
            _child(self._invalid, self._families.invalid, labels).inc()


class Tally:
    """What one connection counted, and how its handshake went; `flush()` writes it
    all at the end, and a scrape what was counted until then (`write()`).

    The connection counts its data messages here itself (`Connection._tally`): on its
    hot paths in plain attributes (`received`, `received_bytes`, `sent`,
    `sent_bytes`), elsewhere through `took()` and `sending()`. A message sent is
    counted as it is handed to the server, one received as the server delivers it to
    the application.
    """

    __slots__ = (
        "_written",
        "accepted_at",
        "application_closed",
        "failed",
        "received",
        "received_bytes",
        "refusal",
        "route",
        "sent",
        "sent_bytes",
    )

    def __init__(self, route: RouteMetrics) -> None:
        self.route = route
        self.received = self.received_bytes = self.sent = self.sent_bytes = 0
        #: `time.monotonic()` when the handshake was accepted; `None` until then.
        self.accepted_at: float | None = None
        #: Why the handshake was refused, once it was.
        self.refusal: RefusalReason | None = None
        #: Whether the application's close went to the client (it closed first).
        self.application_closed = False
        #: Whether the view raised an application error (see `_lifecycle.serve`).
        self.failed = False
        # What the metric objects have of the four counts already.
        self._written = (0, 0, 0, 0)

    def took(self, message: Message) -> None:
        """Count a `websocket.receive` message the state core passed."""
        text = message.get("text")
        self.received += 1
        self.received_bytes += size_of(message["bytes"] if text is None else text)

    def sending(self, message: Message) -> None:
        """Note a message (checked by the state core) about to be handed to the server."""
        message_type = message["type"]
        if message_type == SEND:
            text = message.get("text")
            self.sent += 1
            self.sent_bytes += size_of(message["bytes"] if text is None else text)
        elif message_type == ACCEPT:
            self.accepted_at = time.monotonic()
            self.route.open.inc()
            self.route.live.add(self)
        elif message_type == CLOSE:
            if self.accepted_at is None:
                self.refusal = self.refusal or "rejected"
            else:
                self.application_closed = True
        elif message_type == RESPONSE_START:
            self.refusal = "denied"

    def refuse(self, reason: RefusalReason) -> None:
        """Note why bocws is about to refuse the handshake (before the view ran)."""
        self.refusal = reason

    def fail(self) -> None:
        """Note that the view raised an application error."""
        self.failed = True

    def flush(self, code: int | None) -> None:
        """Write what was counted to the route's metrics, once the connection ended
        with `code` (`None`: no close was recorded, the connection was dropped)."""
        route = self.route
        if self.accepted_at is None:
            if self.refusal is not None:
                route.refuse(self.refusal)
            if self.failed:
                route.errors.inc()
            return  # never opened: the client left during the handshake, or was refused
        route.live.discard(self)
        route.open.dec()
        route.duration.observe(time.monotonic() - self.accepted_at)
        code = CloseCode.ABNORMAL_CLOSURE if code is None else code
        route.end(code, self.application_closed, self.failed)
        self.write()

    def write(self) -> None:
        """Add what was counted since the last write to the route's counters."""
        route = self.route
        with route.writing:  # once per count, should a scrape's thread write too
            before = self._written
            now = self._written = (self.received, self.received_bytes, self.sent, self.sent_bytes)
        received, received_bytes = now[0] - before[0], now[1] - before[1]
        sent, sent_bytes = now[2] - before[2], now[3] - before[3]
        if received:
            route.received.inc(received)
            route.received_bytes.inc(received_bytes)
        if sent:
            route.sent.inc(sent)
            route.sent_bytes.inc(sent_bytes)


class _OpenConnections:
    """A collector of no metric of its own: at each scrape, it has the connections
    still open write what they counted since, so that the message counters move while
    long connections last (in prometheus-client's multiprocess mode, only those of the
    process that answers the scrape: the others' count when they end)."""

    def __init__(self, routes: dict[str, RouteMetrics]) -> None:
        self._routes = routes

    def describe(self) -> list[Any]:
        return []  # no names: it clashes with nothing

    def collect(self) -> list[Any]:
        for route in list(self._routes.values()):
            for tally in list(route.live):
                tally.write()
        return []


def utf8_size(text: str) -> int:
    """The size in bytes of `text` encoded as UTF-8 (a lone surrogate as 3 bytes)."""
    return len(text.encode("utf-8", "surrogatepass"))


def size_of(payload: str | bytes | bytearray | memoryview) -> int:
    """The size in bytes of a message's payload (UTF-8 for text)."""
    if isinstance(payload, str):
        return len(payload) if payload.isascii() else utf8_size(payload)
    if isinstance(payload, memoryview):
        return payload.nbytes
    return len(payload)


class BroadcastMetrics:
    """The metrics of broadcasts in one registry (no channel label: channel names are
    unbounded); `of()` makes them once."""

    @classmethod
    def of(cls, registry: CollectorRegistry) -> BroadcastMetrics:
        """The broadcast metrics of `registry`, registered there on first use."""
        return _once(_BROADCAST_METRICS, cls, registry)

    def __init__(self, registry: CollectorRegistry) -> None:
        from prometheus_client import Counter, Gauge

        self.subscriptions = Gauge(
            "bocws_broadcast_subscriptions",
            "Subscriptions to broadcast channels in this process (subscribe() and room() "
            "blocks running).",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.published = Counter(
            "bocws_broadcast_published_total",
            "Messages published (the backend took them).",
            registry=registry,
        )
        self.publish_failures = Counter(
            "bocws_broadcast_publish_failures_total",
            "Publishes that failed (the backend raised, as BroadcastUnavailable).",
            registry=registry,
        )
        self.delivered = Counter(
            "bocws_broadcast_delivered_total",
            "Messages queued for a subscriber in this process, or sent to a room's socket, "
            "once per subscriber.",
            registry=registry,
        )
        self.dropped = Counter(
            "bocws_broadcast_dropped_total",
            "Messages lost in this process: a subscriber's oldest queued one "
            '(overflow="drop_oldest"), or one that could not be decoded.',
            registry=registry,
        )
        self.overflows = Counter(
            "bocws_broadcast_overflows_total",
            'Subscribers unsubscribed for falling queue_size messages behind (overflow="close").',
            registry=registry,
        )
        self.reconnects = Counter(
            "bocws_broadcast_reconnects_total",
            "Times the backend made its connection to the server again after losing it.",
            registry=registry,
        )


# The metric objects made in each registry, for as long as it lives.
_CONNECTION_METRICS: weakref.WeakKeyDictionary[Any, ConnectionMetrics] = weakref.WeakKeyDictionary()
_BROADCAST_METRICS: weakref.WeakKeyDictionary[Any, BroadcastMetrics] = weakref.WeakKeyDictionary()
