"""Prometheus metrics: a known sequence of connections, messages, refusals and closes,
scraped from `/metrics` (prometheus-client's ASGI app) and parsed with its parser,
through Starlette's TestClient and a real uvicorn; Broadcast's; metrics off; the extra.
"""

from __future__ import annotations

import sys
from types import SimpleNamespace
from typing import Any

import anyio
import httpx
import prometheus_client
import pytest
from fastapi import FastAPI
from prometheus_client import CollectorRegistry, make_asgi_app
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import WebSocketRoute
from starlette.testclient import TestClient, WebSocketDenialResponse

from bocws import (
    App,
    Broadcast,
    BroadcastUnavailable,
    Codec,
    WebSocket,
    WebSocketDisconnect,
    WebSocketView,
    websocket_view,
)
from bocws import _metrics as metrics_module
from bocws._metrics import ConnectionMetrics
from bocws._state import ACCEPT, SEND

from .fake import connected, disconnect, text
from .live_server import TIMEOUT, client, close_frame, recv, refused, running_server
from .redis_server import RedisServer

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(exposition: str) -> Samples:
    """The bocws samples of a scrape, by name and labels; without the `_created`
    timestamps, the histogram's time-dependent buckets and sums (the `+Inf` bucket and
    the count stay)."""
    samples: Samples = {}
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            name, labels = sample.name, dict(sample.labels)
            if not name.startswith("bocws_") or name.endswith(("_created", "_sum")):
                continue
            if name.endswith("_bucket") and labels.pop("le") != "+Inf":
                continue
            samples[name, tuple(sorted(labels.items()))] = sample.value
    return samples


def sample(name: str, value: float, **labels: str) -> tuple[Any, float]:
    return (name, tuple(sorted(labels.items()))), value


def route_samples(
    route: str,
    *,
    connections: dict[int, int],
    received: tuple[int, int] = (0, 0),
    sent: tuple[int, int] = (0, 0),
    errors: int = 0,
    invalid: dict[int, int] | None = None,
) -> Samples:
    """What one route's metrics should be: `connections` by close code, `received` and
    `sent` as (messages, bytes)."""
    ended = sum(connections.values())
    expected = dict(
        [
            sample("bocws_connections_open", 0, route=route),
            sample("bocws_messages_received_total", received[0], route=route),
            sample("bocws_received_bytes_total", received[1], route=route),
            sample("bocws_messages_sent_total", sent[0], route=route),
            sample("bocws_sent_bytes_total", sent[1], route=route),
            sample("bocws_errors_total", errors, route=route),
            sample("bocws_connection_duration_seconds_count", ended, route=route),
            sample("bocws_connection_duration_seconds_bucket", ended, route=route),
        ]
    )
    for code, count in connections.items():
        expected.update([sample("bocws_connections_total", count, route=route, code=str(code))])
    for code, count in (invalid or {}).items():
        expected.update(
            [sample("bocws_invalid_messages_total", count, route=route, code=str(code))]
        )
    return expected


def refusals(*counts: tuple[str, str, int]) -> Samples:
    return dict(
        sample("bocws_handshakes_refused_total", count, route=route, reason=reason)
        for route, reason, count in counts
    )


# The application under test: one route for each thing to count.


def make_app(registry: CollectorRegistry) -> App:
    app = App(metrics=registry, allowed_origins=["https://ok.example"])
    app.mount("/metrics", make_asgi_app(registry))

    @app.websocket_route("/text/{room}", max_message_size=64)
    async def chat(ws: WebSocket, room: str) -> None:
        async for message in ws:
            if message == "boom":
                raise RuntimeError("boom")
            if message == "close":
                await ws.close(4001, "bye")
                return
            await ws.send(message)

    @app.websocket_route("/json", value_type="json")
    async def echo_json(ws: WebSocket) -> None:
        async for message in ws:
            await ws.send(message)

    @app.websocket_route("/bytes", value_type="bytes")
    async def echo_bytes(ws: WebSocket) -> None:
        async for message in ws:
            await ws.send(message)

    @app.websocket_route("/private", allowed_origins=["https://admin.example"])
    async def private(ws: WebSocket) -> None:
        await ws.send("secret")  # pragma: no cover - every handshake is refused

    @app.websocket_route("/items/{item:int}")
    async def items(ws: WebSocket, item: int, count: int) -> None:
        await ws.send(str(item * count))

    @app.websocket_route("/guarded")
    async def guarded(ws: WebSocket) -> None:
        token = ws.query_params.get("token")
        if token == "deny":
            await ws.reject(PlainTextResponse("no", status_code=401))
        elif token != "ok":
            await ws.reject()
        else:
            await ws.send("welcome")

    return app


JSON_REPLY = '{"a":1}'  # bocws writes JSON compactly

#: What the sequence of `drive_test_client()` and `drive_uvicorn()` counts.
EXPECTED: Samples = {
    **route_samples(
        "/text/{room}",
        connections={1000: 1, 4000: 1, 4001: 1, 1011: 1, 1003: 1, 1009: 1},
        # hello, héllo (6 bytes), x, close, boom, 2 bytes, 65 characters; the first
        # three echoed
        received=(7, 5 + 6 + 1 + 5 + 4 + 2 + 65),
        sent=(3, 5 + 6 + 1),
        errors=1,
        invalid={1003: 1, 1009: 1},
    ),
    **route_samples(
        "/json",
        connections={1007: 1},
        received=(2, len('{"a": 1}') + len("{not json")),
        sent=(1, len(JSON_REPLY)),
        invalid={1007: 1},
    ),
    **route_samples("/bytes", connections={1001: 1}, received=(2, 3), sent=(2, 3)),
    **route_samples("/private", connections={}),
    **route_samples("/items/{item:int}", connections={1000: 1}, sent=(1, 1)),
    **route_samples("/guarded", connections={1000: 1}, sent=(1, len("welcome"))),
    **refusals(
        ("/private", "origin", 1),
        ("", "origin", 1),
        ("", "no_route", 1),
        ("/items/{item:int}", "parameters", 1),
        ("/guarded", "rejected", 1),
        ("/guarded", "denied", 1),
    ),
}
CONNECTIONS = 13  # ended or refused: what the sequence opens


def crash_the_view(test_client: TestClient) -> None:
    with test_client.websocket_connect("/text/d") as ws:
        ws.send_text("boom")
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_text()
        assert closed.value.code == 1011


def drive_test_client(test_client: TestClient) -> None:
    """The known sequence, through Starlette's TestClient."""
    with test_client.websocket_connect("/text/a") as ws:
        ws.send_text("hello")
        assert ws.receive_text() == "hello"
        ws.send_text("héllo")
        assert ws.receive_text() == "héllo"
        ws.close(1000)
    with test_client.websocket_connect("/text/b") as ws:
        ws.send_text("x")
        ws.close(4000)
    with test_client.websocket_connect("/text/c") as ws:
        ws.send_text("close")
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_text()
        assert closed.value.code == 4001
    with pytest.raises(RuntimeError, match="boom"):  # TestClient re-raises the view's error
        crash_the_view(test_client)
    for path, send, code in [
        ("/text/e", lambda ws: ws.send_bytes(b"\x00\x01"), 1003),
        ("/text/f", lambda ws: ws.send_text("x" * 65), 1009),
    ]:
        with test_client.websocket_connect(path) as ws:
            send(ws)
            with pytest.raises(WebSocketDisconnect) as closed:
                ws.receive_text()
            assert closed.value.code == code
    with test_client.websocket_connect("/json") as ws:
        ws.send_text('{"a": 1}')
        assert ws.receive_text() == JSON_REPLY
        ws.send_text("{not json")
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_text()
        assert closed.value.code == 1007
    with test_client.websocket_connect("/bytes") as ws:
        ws.send_bytes(b"abc")
        assert ws.receive_bytes() == b"abc"
        ws.send_bytes(b"")
        assert ws.receive_bytes() == b""
        ws.close(1001)
    for path, headers in [
        ("/private", {"origin": "https://ok.example"}),
        ("/text/g", {"origin": "https://evil.example"}),
        ("/nope", {}),
        ("/items/3", {}),
        ("/guarded", {}),
    ]:
        with (
            pytest.raises(WebSocketDisconnect),
            test_client.websocket_connect(path, headers=headers),
        ):
            pass  # pragma: no cover - refused
    with (
        pytest.raises(WebSocketDenialResponse),
        test_client.websocket_connect("/guarded?token=deny"),
    ):
        pass  # pragma: no cover - denied
    with test_client.websocket_connect("/items/3?count=2") as ws:
        assert ws.receive_text() == "6"
    with test_client.websocket_connect("/guarded?token=ok") as ws:
        assert ws.receive_text() == "welcome"


def test_a_scrape_counts_exactly_what_happened_through_test_client() -> None:
    registry = CollectorRegistry()
    app = make_app(registry)
    with TestClient(app) as test_client:
        assert parse(test_client.get("/metrics/").text) == {}
        drive_test_client(test_client)
        scraped = test_client.get("/metrics")  # Starlette redirects to /metrics/
    assert scraped.status_code == 200
    assert parse(scraped.text) == EXPECTED
    durations = registry.get_sample_value(
        "bocws_connection_duration_seconds_sum", {"route": "/text/{room}"}
    )
    assert durations is not None
    assert durations > 0


async def drive_uvicorn(base: str) -> None:
    """The known sequence, through a real uvicorn and the websockets client."""
    async with client(base + "/text/a") as ws:
        await ws.send("hello")
        assert await recv(ws) == "hello"
        await ws.send("héllo")
        assert await recv(ws) == "héllo"
    async with client(base + "/text/b") as ws:
        await ws.send("x")
        await ws.close(4000)
    for path, message, code in [
        ("/text/c", "close", 4001),
        ("/text/d", "boom", 1011),
        ("/text/e", b"\x00\x01", 1003),
        ("/text/f", "x" * 65, 1009),
    ]:
        async with client(base + path) as ws:
            await ws.send(message)
            assert (await close_frame(ws))[0] == code
    async with client(base + "/json") as ws:
        await ws.send('{"a": 1}')
        assert await recv(ws) == JSON_REPLY
        await ws.send("{not json")
        assert (await close_frame(ws))[0] == 1007
    async with client(base + "/bytes") as ws:
        await ws.send(b"abc")
        assert await recv(ws) == b"abc"
        await ws.send(b"")
        assert await recv(ws) == b""
        await ws.close(1001)
    assert (
        await refused(base + "/private", origin="https://ok.example")
    ).response.status_code == 403
    assert (
        await refused(base + "/text/g", origin="https://evil.example")
    ).response.status_code == 403
    for path, status in [("/nope", 403), ("/items/3", 403), ("/guarded", 403)]:
        assert (await refused(base + path)).response.status_code == status
    assert (await refused(base + "/guarded?token=deny")).response.status_code == 401
    async with client(base + "/items/3?count=2") as ws:
        assert await recv(ws) == "6"
        assert (await close_frame(ws))[0] == 1000
    async with client(base + "/guarded?token=ok") as ws:
        assert await recv(ws) == "welcome"
        assert (await close_frame(ws))[0] == 1000


def ended(samples: Samples) -> float:
    """Connections ended or refused, as far as the scrape says."""
    return sum(
        value
        for (name, _labels), value in samples.items()
        if name in ("bocws_connections_total", "bocws_handshakes_refused_total")
    )


@pytest.mark.anyio
async def test_a_scrape_counts_exactly_what_happened_through_uvicorn() -> None:
    registry = CollectorRegistry()
    app = make_app(registry)
    async with running_server(app, "websockets-sansio") as base:
        await drive_uvicorn(base)
        url = base.replace("ws://", "http://") + "/metrics/"
        async with httpx.AsyncClient() as http:
            # A view's counts are written once it has ended, which may be just after
            # the client saw the close: poll, bounded, until every connection is in.
            with anyio.fail_after(TIMEOUT):
                while True:
                    samples = parse((await http.get(url)).text)
                    if ended(samples) >= CONNECTIONS:
                        break
                    await anyio.sleep(0.01)
    assert samples == EXPECTED


# Where the route label comes from.


def test_a_websocket_view_in_a_starlette_app_is_labelled_with_its_pattern() -> None:
    registry = CollectorRegistry()

    @websocket_view(metrics=registry)
    async def echo(ws: WebSocket, room: str) -> None:
        await ws.send(room)

    app = Starlette(routes=[WebSocketRoute("/rooms/{room}", echo)])
    with TestClient(app).websocket_connect("/rooms/lobby") as ws:
        assert ws.receive_text() == "lobby"
    assert registry.get_sample_value("bocws_messages_sent_total", {"route": "/rooms/{room}"}) == 1
    labels = registry.get_sample_value(
        "bocws_connections_total", {"route": "/rooms/{room}", "code": "1000"}
    )
    assert labels == 1


def test_a_websocket_view_in_a_fastapi_app_is_labelled_with_its_pattern() -> None:
    registry = CollectorRegistry()

    @websocket_view(metrics=registry)
    async def echo(ws: WebSocket, room: str) -> None:
        await ws.send(room)

    app = FastAPI()
    app.add_api_websocket_route("/rooms/{room}", echo)
    with TestClient(app).websocket_connect("/rooms/lobby") as ws:
        assert ws.receive_text() == "lobby"
    assert registry.get_sample_value("bocws_messages_sent_total", {"route": "/rooms/{room}"}) == 1


def test_a_route_found_through_the_router_when_the_scope_has_none() -> None:
    registry = CollectorRegistry()

    @websocket_view(metrics=registry)
    async def echo(ws: WebSocket) -> None:
        await ws.send("hi")

    route = WebSocketRoute("/echo", echo)

    server = connected()
    # A router of an older Starlette: it does not put the route in the scope.
    server.scope["router"] = SimpleNamespace(routes=[route])
    anyio.run(echo, server.scope, server.receive, server.send)
    assert registry.get_sample_value("bocws_messages_sent_total", {"route": "/echo"}) == 1


def test_a_view_outside_any_router_is_labelled_with_its_name_never_its_path() -> None:
    registry = CollectorRegistry()

    @websocket_view(metrics=registry)
    async def echo(ws: WebSocket) -> None:
        await ws.send("hi")

    for path in ("/a/1", "/a/2"):
        server = connected()
        server.scope["path"] = path
        anyio.run(echo, server.scope, server.receive, server.send)
    name = echo.__qualname__
    assert registry.get_sample_value("bocws_messages_sent_total", {"route": name}) == 2
    assert "/a/1" not in prometheus_client.generate_latest(registry).decode()


def test_a_class_view_takes_metrics_as_a_class_attribute() -> None:
    registry = CollectorRegistry()

    class Echo(WebSocketView):
        metrics = registry

        async def on_message(self, ws: WebSocket, message: Any) -> None:
            await ws.send(message)

    app = App()
    app.add_websocket_route("/echo", Echo)
    with TestClient(app).websocket_connect("/echo") as ws:
        ws.send_text("hi")
        assert ws.receive_text() == "hi"
    assert registry.get_sample_value("bocws_messages_received_total", {"route": "/echo"}) == 1


def test_a_routes_own_metrics_option_overrides_the_apps() -> None:
    registry = CollectorRegistry()
    app = App(metrics=registry)

    @app.websocket_route("/quiet", metrics=False)
    async def quiet(ws: WebSocket) -> None:
        await ws.send("hi")

    with TestClient(app).websocket_connect("/quiet") as ws:
        assert ws.receive_text() == "hi"
    assert "/quiet" not in prometheus_client.generate_latest(registry).decode()


def test_the_idle_timeout_counts_too() -> None:
    registry = CollectorRegistry()
    app = App(metrics=registry)

    @app.websocket_route("/idle", idle_timeout=0.05)
    async def idle(ws: WebSocket) -> None:
        async for message in ws:
            await ws.send(message)  # pragma: no cover - the client sends nothing

    with TestClient(app).websocket_connect("/idle") as ws:
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_text()
        assert closed.value.code == 1000
    value = registry.get_sample_value("bocws_connections_total", {"route": "/idle", "code": "1000"})
    assert value == 1


def test_a_connection_dropped_without_a_close_counts_as_1006() -> None:
    registry = CollectorRegistry()

    @websocket_view(metrics=registry)
    async def hang(ws: WebSocket) -> None:
        await ws.accept()
        raise anyio.get_cancelled_exc_class()()  # as the server cancelling the view

    server = connected()

    async def main() -> None:
        with pytest.raises(anyio.get_cancelled_exc_class()):
            await hang(server.scope, server.receive, server.send)

    anyio.run(main)
    route = hang.__qualname__  # outside any router
    assert registry.get_sample_value("bocws_connections_open", {"route": route}) == 0
    labels = {"route": route, "code": "1006"}
    assert registry.get_sample_value("bocws_connections_total", labels) == 1


# Metrics off, and the extra missing.


def test_without_metrics_nothing_is_registered_and_the_websocket_is_plain(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_metrics(registry: object) -> ConnectionMetrics:  # pragma: no cover - must not run
        raise AssertionError("metrics made without metrics=")

    monkeypatch.setattr(ConnectionMetrics, "of", no_metrics)
    seen: list[WebSocket] = []

    @websocket_view
    async def echo(ws: WebSocket) -> None:
        seen.append(ws)
        async for message in ws:
            await ws.send(message)

    server = connected(text("hi"), disconnect(1000))
    anyio.run(echo, server.scope, server.receive, server.send)
    ws = seen[0]
    # The server's own callables, with nothing in between.
    assert ws._receive == server.receive
    assert ws._send == server.send
    assert echo._metrics is None
    app = App()
    app.add_websocket_route("/echo", echo)
    with TestClient(app).websocket_connect("/echo") as session:
        session.send_text("hi")
        assert session.receive_text() == "hi"


def test_without_metrics_the_default_registry_gets_no_bocws_metric() -> None:
    before = set(metrics_module._CONNECTION_METRICS)
    app = App()

    @app.websocket_route("/echo")
    async def echo(ws: WebSocket) -> None:
        await ws.send("hi")

    with TestClient(app).websocket_connect("/echo") as session:
        assert session.receive_text() == "hi"
    assert set(metrics_module._CONNECTION_METRICS) == before


@pytest.fixture
def without_prometheus(monkeypatch: pytest.MonkeyPatch) -> None:
    """prometheus-client cannot be imported, as without the extra."""
    monkeypatch.setitem(sys.modules, "prometheus_client", None)


@pytest.mark.usefixtures("without_prometheus")
def test_metrics_without_prometheus_client_fails_at_declaration_naming_the_extra() -> None:
    extra = r"pip install 'bocws\[prometheus\]'"
    with pytest.raises(ImportError, match=extra):
        App(metrics=True)
    with pytest.raises(ImportError, match=extra):
        websocket_view(metrics=True)
    app = App()
    with pytest.raises(ImportError, match=extra):

        @app.websocket_route("/ws", metrics=True)
        async def view(ws: WebSocket) -> None: ...  # pragma: no cover

    with pytest.raises(ImportError, match=extra):
        Broadcast(metrics=True)
    App(metrics=False)  # off needs nothing
    Broadcast(metrics=False)


def test_metrics_takes_a_bool_or_a_registry() -> None:
    for wrong in ("yes", None, 1, prometheus_client.REGISTRY.__class__):
        with pytest.raises(TypeError, match="metrics must be True, False or a prometheus"):
            App(metrics=wrong)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="metrics must be True"):
        Broadcast(metrics="yes")  # type: ignore[arg-type]


def test_the_metric_objects_are_made_once_per_registry() -> None:
    registry = CollectorRegistry()
    app = App(metrics=registry)
    for path in ("/a", "/b"):

        @app.websocket_route(path)
        async def view(ws: WebSocket) -> None:
            await ws.send("hi")

    second = App(metrics=registry)  # a registry refuses a metric twice: made once
    assert ConnectionMetrics.of(registry) is ConnectionMetrics.of(registry)
    assert second is not app


# Broadcast.


class LocalBackend:
    """A backend for one process that the test can break: publishes fail while `down`;
    `deliver_raw()` hands over a payload as it comes; `reconnect()` reports a reconnection."""

    def __init__(self) -> None:
        self.down = False
        self.reconnected: Any = None

    async def connect(self, deliver: Any) -> None:
        self.deliver, self.channels = deliver, set()

    async def disconnect(self) -> None:
        self.channels.clear()

    async def subscribe(self, channel: str) -> None:
        self.channels.add(channel)

    async def unsubscribe(self, channel: str) -> None:
        self.channels.discard(channel)

    async def publish(self, channel: str, payload: bytes) -> None:
        await anyio.lowlevel.checkpoint()
        if self.down:
            raise BroadcastUnavailable("the test's backend is down")
        if channel in self.channels:
            self.deliver(channel, payload)

    def report_reconnects(self, callback: Any) -> None:
        self.reconnected = callback


def broadcast_samples(registry: CollectorRegistry) -> dict[str, float]:
    text = prometheus_client.generate_latest(registry).decode()
    return {name: value for (name, _labels), value in parse(text).items() if "broadcast" in name}


@pytest.mark.anyio
async def test_broadcast_metrics_count_what_happened() -> None:
    registry = CollectorRegistry()
    backend = LocalBackend()
    broadcast = Broadcast(backend=backend, metrics=registry)
    async with (
        broadcast,
        broadcast.subscribe("news", queue_size=10) as roomy,
        broadcast.subscribe("news", queue_size=1, overflow="drop_oldest") as dropping,
        broadcast.subscribe("news", queue_size=1, overflow="close") as closing,
    ):
        assert broadcast_samples(registry)["bocws_broadcast_subscriptions"] == 3
        for number in range(3):
            await broadcast.publish("news", number)
        # roomy: 3; dropping: 3, 2 of them dropped; closing: 1, then it overflowed.
        backend.deliver("news", b"not a bocws payload")  # dropped: it cannot be decoded
        backend.down = True
        with pytest.raises(BroadcastUnavailable):
            await broadcast.publish("news", "lost")
        backend.reconnected()
        backend.reconnected()
        assert [await anext(roomy) for _ in range(3)] == [0, 1, 2]
        assert await anext(dropping) == 2
        assert dropping.dropped == 2
        assert await anext(closing) == 0
    assert broadcast_samples(registry) == {
        "bocws_broadcast_subscriptions": 0,
        "bocws_broadcast_published_total": 3,
        "bocws_broadcast_publish_failures_total": 1,
        "bocws_broadcast_delivered_total": 3 + 3 + 1,
        "bocws_broadcast_dropped_total": 2 + 1,
        "bocws_broadcast_overflows_total": 1,
        "bocws_broadcast_reconnects_total": 2,
    }


@pytest.mark.anyio
async def test_broadcast_without_metrics_does_not_ask_the_backend_for_reconnects() -> None:
    backend = LocalBackend()
    async with Broadcast(backend=backend):
        pass
    assert backend.reconnected is None


@pytest.mark.anyio
async def test_redis_reports_its_reconnections(redis_server: RedisServer) -> None:
    registry = CollectorRegistry()
    async with (
        Broadcast(redis_server.url, metrics=registry) as broadcast,
        broadcast.subscribe("news") as news,
    ):
        redis_server.stop(kill=True)
        redis_server.start()
        with anyio.fail_after(TIMEOUT):
            # Bounded polling: the reader reconnects with backoff, on its own.
            while True:
                if registry.get_sample_value("bocws_broadcast_reconnects_total"):
                    break
                await anyio.sleep(0.05)
            while True:
                try:
                    await broadcast.publish("news", "back")
                except BroadcastUnavailable:  # pragma: no cover - the publisher's pool lags
                    await anyio.sleep(0.05)
                    continue
                break
            assert await anext(news) == "back"
    assert registry.get_sample_value("bocws_broadcast_reconnects_total") == 1


def test_an_application_error_before_accept_is_counted_with_the_refusal() -> None:
    registry = CollectorRegistry()

    @websocket_view(auto_accept=False, metrics=registry)
    async def fails(ws: WebSocket) -> None:
        raise RuntimeError("before accept")

    server = connected()
    with pytest.raises(RuntimeError, match="before accept"):
        anyio.run(fails, server.scope, server.receive, server.send)
    assert server.types() == ["websocket.close"]  # the handshake refused
    route = fails.__qualname__
    assert registry.get_sample_value("bocws_errors_total", {"route": route}) == 1
    refused = {"route": route, "reason": "rejected"}
    assert registry.get_sample_value("bocws_handshakes_refused_total", refused) == 1
    assert (
        registry.get_sample_value("bocws_connection_duration_seconds_count", {"route": route}) == 0
    )


def test_metrics_true_stands_for_the_default_registry() -> None:
    assert metrics_module.registry_for(True) is prometheus_client.REGISTRY
    assert metrics_module.registry_for(False) is None


@pytest.mark.usefixtures("without_prometheus")
def test_a_wrong_metrics_value_says_so_without_prometheus_client_too() -> None:
    with pytest.raises(TypeError, match="metrics must be True, False or a prometheus"):
        App(metrics="yes")  # type: ignore[arg-type]


def test_payloads_are_measured_in_bytes_whatever_holds_them() -> None:
    assert [metrics_module.size_of(data) for data in (b"ab", bytearray(b"abc"))] == [2, 3]
    assert metrics_module.size_of(memoryview(b"abcd").cast("I")) == 4  # one item of 4 bytes
    # Text in UTF-8: a lone surrogate (legal in a message sent) as the 3 bytes it is.
    assert [metrics_module.size_of(text) for text in ("ab", "\u00e9", "\ud800")] == [2, 2, 3]


def test_a_scrape_counts_the_messages_of_connections_still_open() -> None:
    registry = CollectorRegistry()
    app = make_app(registry)
    received = ("bocws_messages_received_total", (("route", "/text/{room}"),))
    sent_bytes = ("bocws_sent_bytes_total", (("route", "/text/{room}"),))
    with TestClient(app) as test_client, test_client.websocket_connect("/text/long") as ws:
        for number in range(3):
            ws.send_text("hello")
            assert ws.receive_text() == "hello"
            samples = parse(test_client.get("/metrics/").text)
            assert samples[received] == number + 1  # not waiting for the end
            assert samples[sent_bytes] == 5 * (number + 1)
        assert samples["bocws_connections_open", (("route", "/text/{room}"),)] == 1
        ws.close(1000)
    # The end adds only what the scrapes had not: each message is counted once.
    assert (
        registry.get_sample_value("bocws_messages_received_total", {"route": "/text/{room}"}) == 3
    )
    assert registry.get_sample_value("bocws_sent_bytes_total", {"route": "/text/{room}"}) == 15


def test_the_guides_example_serves_its_metrics_at_slash_metrics() -> None:
    from tests.test_docs import example

    app = example("metrics.md", "app = App(metrics=True)\napp.mount")["app"]
    received = ("bocws_messages_received_total", (("route", "/chat/{room}"),))
    with TestClient(app) as test_client:
        before = parse(test_client.get("/metrics/").text).get(received, 0)
        with test_client.websocket_connect("/chat/lobby") as ws:
            ws.send_text("hi")
            assert ws.receive_text() == "hi"
        after = parse(test_client.get("/metrics/").text)[received]
    assert after - before == 1  # the default registry: other tests count there too


class Shout(Codec):
    """A kind of message of the test's own: text, upper-cased on the way out."""

    name = "shout"

    def decode(self, data: str | bytes) -> str:
        return data if isinstance(data, str) else data.decode()

    def encode(self, value: str) -> str:
        return value.upper()


def test_every_way_of_receiving_and_sending_counts_each_message_once() -> None:
    """The hot paths count inline, the others through the state core: each message
    once, whichever method moved it (`é` is 2 bytes, `€` 3)."""
    registry = CollectorRegistry()
    finished: list[bool] = []

    @websocket_view(metrics=registry, value_type=Shout())
    async def view(ws: WebSocket) -> None:
        assert await ws.receive() == "é"  # a codec's receive
        await ws.send("é")  # É: 2 bytes
        assert await ws.receive_text() == "ab"  # the hot path
        await ws.send_text("€")
        assert await ws.receive_text(timeout=5) == "abc"  # the core's way
        await ws.send_bytes(b"\xff")
        assert await ws.receive_bytes() == b"abcd"
        await ws.send_json(["€"], mode="binary")  # ["€"]: 7 bytes
        assert await ws.receive_bytes(timeout=5) == b"abcde"
        await ws.send_json({})
        assert await ws.receive_json() == [1]
        await ws.send_event({"type": "websocket.send", "text": "€€"})
        assert await ws.receive_json(mode="binary") == [2]
        event = await ws.receive_event()
        assert event["text"] == "x" * 100  # longer than the text hot path takes: the core
        await ws.wait_closed()  # reads and drops the rest: each counted
        finished.append(True)

    sizes_in = [2, 2, 3, 4, 5, 3, 3, 100, 1]
    server = connected(
        text("é"),
        text("ab"),
        text("abc"),
        {"type": "websocket.receive", "bytes": b"abcd"},
        {"type": "websocket.receive", "bytes": b"abcde"},
        text("[1]"),
        {"type": "websocket.receive", "bytes": b"[2]"},
        text("x" * 100),
        text("z"),  # dropped by wait_closed()
        disconnect(1000),
    )
    anyio.run(view, server.scope, server.receive, server.send)
    assert finished == [True]  # the view went to its end (its asserts held)
    assert [message["type"] for message in server.sent] == [ACCEPT] + [SEND] * 6
    sizes_out = [2, 3, 1, 7, 2, 6]

    def value(name: str) -> float | None:
        return registry.get_sample_value(name, {"route": view.__qualname__})

    assert (value("bocws_messages_received_total"), value("bocws_received_bytes_total")) == (
        len(sizes_in),
        sum(sizes_in),
    )
    assert (value("bocws_messages_sent_total"), value("bocws_sent_bytes_total")) == (
        len(sizes_out),
        sum(sizes_out),
    )
