"""A smoke run of the benchmark harness, so that it cannot rot: tiny sizes, no thresholds
(speed is measured by the benchmarks themselves, never asserted in tests)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from benchmarks import inprocess


def test_the_in_process_benchmark_runs_every_variant_and_kind(tmp_path: Path) -> None:
    output = tmp_path / "results.json"
    assert inprocess.main(["--messages", "50", "--repeats", "2", "--json", str(output)]) == 0
    results = json.loads(output.read_text())["results"]
    assert set(results) == {"text", "bytes", "json"}
    for by_variant in results.values():
        assert set(by_variant) == set(inprocess.VARIANTS)
        for figures in by_variant.values():
            assert len(figures["ns_per_message"]) == 2
            assert figures["median_ns"] > 0
        assert by_variant["raw"]["ratio_median"] == 1.0


@pytest.mark.parametrize("kind", ["text", "bytes", "json"])
@pytest.mark.parametrize("name", list(inprocess.VARIANTS))
def test_every_variant_echoes_every_message_unchanged(name: str, kind: str) -> None:
    server = inprocess.FakeServer(kind, 5)
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(inprocess.VARIANTS[name](kind)(dict(inprocess.SCOPE), server.receive, send))
    assert sent[0]["type"] == "websocket.accept"
    echoes = [message for message in sent if message["type"] == "websocket.send"]
    payload = inprocess.PAYLOADS[kind]
    assert len(echoes) == 5
    for echo in echoes:
        if kind == "json":
            assert json.loads(echo["text"]) == json.loads(payload["text"])
        else:
            assert echo.get(kind) == payload[kind]
