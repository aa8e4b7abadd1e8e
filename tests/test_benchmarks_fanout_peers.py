"""The fan-out benchmark's peers beyond raw ASGI and its `--gc` option: python-socketio's
room emit (its subscribers speaking Socket.IO), the `websockets` library's own server as
a reference outside ASGI, and `gc.freeze()` in every server. Tiny sizes, real servers
and client, no thresholds (the benchmark measures; tests only check that it can)."""

from __future__ import annotations

import asyncio
import gc
import http.client
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import connect

from benchmarks import broadcast, fanout_apps
from benchmarks.environments import project_python
from benchmarks.servers import READY_TIMEOUT, Server, Variant

SUBSCRIBERS = 12
PEERS = ["raw", "socketio", "websockets-broadcast"]


@pytest.mark.timeout(120)
def test_socketio_and_the_websockets_reference_deliver_every_message_with_gc_frozen(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "peers.json"
    arguments = [
        *("--variants", ",".join(PEERS), "--baseline", "raw", "--gc", "freeze"),
        *("--subscribers", str(SUBSCRIBERS), "--rounds", "1", "--rate", "50"),
        *("--duration", "0.2", "--burst", "10", "--warmup", "3", "--timeout", "10"),
        *("--json", str(output)),
    ]
    assert broadcast.main(arguments) == 0
    document = json.loads(output.read_text())
    assert document["settings"]["gc"] == "freeze"
    for name in PEERS:
        figures = document["summary"][name]
        # Warm-up 3, steady 50/s for 0.2 s, burst 10: each to every subscriber, once.
        assert figures["expected"] == SUBSCRIBERS * (3 + 10 + 10)
        assert (figures["lost"], figures["disordered"], figures["strays"]) == (0, 0, 0)
        assert figures["closed"] == 0
        assert figures["reference"] is (name == "websockets-broadcast")
    (socketio_round,) = document["rounds"]["socketio"]
    assert socketio_round["protocol"] == "socketio"
    assert all("/socket.io/?EIO=4&transport=websocket" in url for url in socketio_round["urls"])
    lines = capsys.readouterr().out.splitlines()
    assert any(", gc freeze;" in line for line in lines)  # the title
    rows = [line.split() for line in lines if line.split() and line.split()[0] in PEERS]
    assert [row[0] for row in rows] == PEERS  # the reference last ...
    assert rows[-1][1] == "*"  # ... and marked, with its note after the table
    assert lines[-1].startswith("* a reference outside ASGI")


def test_a_reference_outside_asgi_cannot_be_the_baseline(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        broadcast.parse_args(["--baseline", "websockets-broadcast"])
    assert exit_info.value.code == 2
    assert "reference outside ASGI, not a baseline" in capsys.readouterr().err


@pytest.fixture
def unfrozen() -> Iterator[None]:
    """Start with nothing frozen, and leave nothing frozen for the tests after."""
    gc.unfreeze()
    yield
    gc.unfreeze()


@pytest.mark.usefixtures("unfrozen")
@pytest.mark.parametrize("setting", ["on", "freeze"])
def test_freeze_gc_if_asked_freezes_only_when_asked(
    monkeypatch: pytest.MonkeyPatch, setting: str
) -> None:
    monkeypatch.setenv(fanout_apps.GC_VARIABLE, setting)
    fanout_apps.freeze_gc_if_asked()
    assert (gc.get_freeze_count() > 0) is (setting == "freeze")


def test_an_unknown_gc_setting_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(fanout_apps.GC_VARIABLE, "off")
    with pytest.raises(ValueError, match="BOCWS_BENCH_GC='off': expected one of on, freeze"):
        fanout_apps.freeze_gc_if_asked()


@pytest.mark.usefixtures("unfrozen")
@pytest.mark.parametrize(
    "app", ["fanout_apps.raw", "fanout_apps.socketio", "fanout_apps.starlette_broadcaster"]
)
def test_the_asgi_peers_freeze_the_collector_before_their_startup_is_complete(
    monkeypatch: pytest.MonkeyPatch, app: str
) -> None:
    monkeypatch.setenv(fanout_apps.GC_VARIABLE, "freeze")
    asgi_app = getattr(fanout_apps, app.split(".")[1])
    events = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])
    frozen_when: dict[str, int] = {}

    async def receive() -> dict[str, Any]:
        return next(events)

    async def send(message: dict[str, Any]) -> None:
        frozen_when[message["type"]] = gc.get_freeze_count()

    scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
    asyncio.run(asgi_app(scope, receive, send))
    assert frozen_when["lifespan.startup.complete"] > 0
    assert "lifespan.shutdown.complete" in frozen_when


@pytest.mark.timeout(60)
def test_the_websockets_reference_publishes_to_its_feed_and_stops_on_sigterm() -> None:
    variant = Variant(
        "websockets-broadcast",
        "benchmarks.websockets_broadcast",
        "on",
        project_python,
        serves_itself=True,
    )
    server = Server(variant, "websockets-sansio", "asyncio")
    try:
        server.wait_ready(time.monotonic() + READY_TIMEOUT)
        assert server.pid == server.process.pid
        with connect(f"ws://127.0.0.1:{server.port}/feed", compression=None) as feed:
            status, content_type, body = post(server.port, "/publish?count=2&rate=0&batch=7")
            messages = [json.loads(feed.recv(timeout=10)) for _ in range(2)]
        assert (status, content_type) == (200, "application/json")
        assert json.loads(body)["published"] == 2
        assert [(m["batch"], m["seq"]) for m in messages] == [(7, 0), (7, 1)]
        assert post(server.port, "/elsewhere")[0] == 404
    finally:
        log = server.stop()
    assert server.process.returncode == 0, log
    assert log == ""


def post(port: int, target: str) -> tuple[int, str | None, bytes]:
    """POST `target` to 127.0.0.1:`port`: the status, the content type and the body."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("POST", target, headers={"Content-Length": "0"})
        response = connection.getresponse()
        return response.status, response.getheader("Content-Type"), response.read()
    finally:
        connection.close()
