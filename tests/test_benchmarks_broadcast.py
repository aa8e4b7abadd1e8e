"""A smoke run of the broadcast fan-out benchmark, so that it cannot rot: tiny sizes, real
uvicorn servers, redis-server and client, no thresholds (speed, latency and memory are
measured by the benchmark itself, never asserted in tests)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from benchmarks import broadcast, history

SUBSCRIBERS = 12


def variants() -> list[str]:
    """Every variant, the baseline first; without redis-server, those on memory://
    alone, except under CI."""
    names = [broadcast.BASELINE, *[name for name in broadcast.SETUPS if name != broadcast.BASELINE]]
    if shutil.which("redis-server") is None and not os.environ.get("CI"):
        # The Redis variants need Debian's redis-server (CI installs it).
        return [name for name in names if broadcast.SETUPS[name].backend != "redis"]
    return names


@pytest.mark.timeout(120)
def test_the_broadcast_benchmark_delivers_every_message_to_every_subscriber(
    tmp_path: Path,
) -> None:
    names = variants()
    output = tmp_path / "broadcast.json"
    arguments = [
        *("--variants", ",".join(names), "--subscribers", str(SUBSCRIBERS)),
        *("--rounds", "1", "--rate", "50", "--duration", "0.2", "--burst", "10"),
        *("--warmup", "3", "--timeout", "10", "--json", str(output)),
    ]
    assert broadcast.main(arguments) == 0
    document = json.loads(output.read_text())
    assert document["settings"]["variants"] == names
    assert set(document["summary"]) == set(names)
    for name in names:
        figures = document["summary"][name]
        # Warm-up 3, steady 50/s for 0.2 s, burst 10: each to every subscriber, once.
        assert figures["expected"] == SUBSCRIBERS * (3 + 10 + 10)
        assert (figures["lost"], figures["disordered"], figures["strays"]) == (0, 0, 0)
        assert figures["closed"] == 0
        for key in ("capacity_per_s", "p50_ms", "p99_ms", "rss_per_process_mib"):
            assert figures[key]["median"] > 0
        assert figures["server_cpu_us"]["median"] >= 0
        (result,) = document["rounds"][name]
        processes = broadcast.SETUPS[name].processes
        assert len(result["urls"]) == len(result["rss"]) == processes
        for batch in ("warmup", "steady", "burst"):
            assert result[batch]["delivered"] == result[batch]["expected"]
        if broadcast.SETUPS[name].backend == "redis":
            assert figures["redis_used_memory"]["median"] > 0
        else:
            assert figures["redis_used_memory"]["median"] is None
    assert document["summary"]["raw"]["capacity_per_s_to_raw"]["values"] == [1.0]
    assert document["settings"]["baseline"] == "raw"


@pytest.mark.timeout(60)
def test_the_catch_up_benchmark_reads_every_message_back_in_order(tmp_path: Path) -> None:
    backends = "memory" if variants() == ["memory"] else "memory,redis"
    output = tmp_path / "history.json"
    arguments = ["--messages", "1500", "--rounds", "1", "--backends", backends]
    assert history.main([*arguments, "--json", str(output)]) == 0
    document = json.loads(output.read_text())
    assert set(document["results"]) == set(backends.split(","))
    for figures in document["results"].values():
        # 1,500 messages: more than a page of history (1,000), read back in order.
        assert len(figures["seconds"]) == 1
        assert figures["messages_per_s"] > 0
