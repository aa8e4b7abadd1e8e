"""A smoke run of the server benchmarks (end to end through uvicorn and granian, memory
per connection), so that they cannot rot: tiny sizes, real servers and client, no
thresholds (speed and memory are measured by the benchmarks themselves, never asserted
in tests)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import endtoend, environments, memory

VARIANTS = ["raw", "bocws", "bocadillo"]


@pytest.fixture(autouse=True)
def _bocadillo_virtualenv() -> None:
    # Making Bocadillo's virtualenv takes the network and a while: CI does it first.
    if not environments.bocadillo_ready():
        pytest.skip(environments.NO_BOCADILLO)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("server", ["websockets-sansio", "granian"])
def test_the_end_to_end_benchmark_measures_and_verifies_every_variant(
    tmp_path: Path, server: str
) -> None:
    output = tmp_path / "endtoend.json"
    arguments = [
        *("--variants", ",".join(VARIANTS)),
        *("--sizes", "32", "--implementations", server),
        *("--round-trips", "300", "--rounds", "1", "--connections", "8", "--in-flight", "2"),
        *("--json", str(output)),
    ]
    assert endtoend.main(arguments) == 0
    results = json.loads(output.read_text())["results"][server]["32"]
    assert set(results["summary"]) == set(VARIANTS)
    for name in VARIANTS:
        figures = results["summary"][name]
        assert figures["echoes_verified"] == figures["echoes_expected"] > 300
        assert figures["round_trips_per_s"]["median"] > 0
        assert figures["server_cpu_us"]["median"] >= 0  # of the serving process
        assert len(results["rounds"][name]) == 1
        assert results["rounds"][name][0]["round_trips"] == 300
    assert results["summary"]["raw"]["server_cpu_us_to_raw"]["values"] in ([1.0], [])


@pytest.mark.timeout(120)
def test_the_memory_benchmark_measures_and_verifies_every_variant(tmp_path: Path) -> None:
    output = tmp_path / "memory.json"
    arguments = ["--variants", ",".join(VARIANTS), "--connections", "20", "--rounds", "1"]
    assert memory.main([*arguments, "--json", str(output)]) == 0
    document = json.loads(output.read_text())
    assert set(document["summary"]) == set(VARIANTS)
    for name in VARIANTS:
        figures = document["summary"][name]
        assert figures["echoes_verified"] == figures["echoes_expected"] == 20
        (result,) = document["rounds"][name]
        assert result["rss_before"] > 0
        assert result["rss_after"] > 0
        assert result["bytes_per_connection"] == ((result["rss_after"] - result["rss_before"]) / 20)
    assert document["summary"]["raw"]["bytes_over_raw"]["values"] == [0]
