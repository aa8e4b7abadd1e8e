"""A smoke run of the benchmark harness, so that it cannot rot: tiny sizes, no thresholds
(speed is measured by the benchmarks themselves, never asserted in tests)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from benchmarks import __main__ as runner
from benchmarks import (
    environments,
    harness,
    inprocess,
    plot,
    routing,
    rpc,
    rpc_uvicorn,
    typed,
    worker,
)

BOCADILLO_READY = environments.bocadillo_ready()
needs_bocadillo = pytest.mark.skipif(not BOCADILLO_READY, reason=environments.NO_BOCADILLO)
#: Every variant that can run here: Bocadillo only once its virtualenv exists (making
#: it takes the network and a while; CI does it first).
IN_PROCESS = inprocess.ALL_VARIANTS if BOCADILLO_READY else list(inprocess.VARIANTS)
ROUTING = routing.ALL_VARIANTS if BOCADILLO_READY else list(routing.VARIANTS)


@pytest.fixture(scope="module")
def bocadillo() -> Iterator[harness.Worker]:
    """One Bocadillo worker for the module's tests: starting one takes a while."""
    if not BOCADILLO_READY:
        pytest.skip(environments.NO_BOCADILLO)
    with harness.start_worker("bocadillo") as started:
        yield started


# In process.


def test_the_in_process_benchmark_runs_every_variant_and_kind(tmp_path: Path) -> None:
    output = tmp_path / "results.json"
    # Two kinds are enough here (each run costs a full garbage collection); every kind
    # of every variant is checked by the echo tests below.
    argv = ["--messages", "50", "--repeats", "2", "--kinds", "bytes,json"]
    assert inprocess.main([*argv, "--variants", ",".join(IN_PROCESS), "--json", str(output)]) == 0
    results = json.loads(output.read_text())["results"]
    assert set(results) == {"bytes", "json"}
    expected = set(IN_PROCESS) | ({"raw@bocadillo"} if BOCADILLO_READY else set())
    for by_variant in results.values():
        assert set(by_variant) == expected
        for figures in by_variant.values():
            assert len(figures["ns"]) == 2
            assert figures["median_ns"] > 0
        assert "ratio_median" not in by_variant["raw"]  # the baseline of the others
        assert by_variant["bocws"]["baseline"] == "raw"
        assert len(by_variant["bocws"]["ratios"]["raw"]["ratios"]) == 2
        if BOCADILLO_READY:
            assert by_variant["bocadillo"]["baseline"] == "raw@bocadillo"
            assert by_variant["raw@bocadillo"]["baseline"] == "raw"


@pytest.mark.skipif(
    not (environments.ROOT / ".git").exists(),
    reason="benchmarks.versions compares commits: it needs the git checkout, absent here",
)
def test_the_versions_benchmark_measures_an_earlier_commit_beside_this_tree(
    tmp_path: Path,
) -> None:
    output = tmp_path / "versions.json"
    argv = ["HEAD", "--messages", "50", "--rounds", "2", "--kinds", "text,json"]
    # In a process of its own: it must import the earlier bocws before this one.
    command = [sys.executable, "-m", "benchmarks.versions", *argv, "--variants", "bocws"]
    subprocess.run([*command, "--json", str(output)], cwd=environments.ROOT, check=True)
    document = json.loads(output.read_text())
    before, after = document["bocws_files"]
    assert before.endswith("bocws_before/__init__.py")
    assert "bocws-before-" in before
    assert after == str(environments.ROOT / "bocws" / "__init__.py")
    assert set(document["results"]) == {"bocws/text", "bocws/json"}
    for figures in document["results"].values():
        assert figures["before"]["baseline"] == "raw"
        assert len(figures["after"]["ratios"]["before"]["ratios"]) == 2
    assert document["after_over_before_median"] > 0


def assert_echoes(sent: list[dict[str, Any]], kind: str, count: int) -> None:
    assert sent[0]["type"] == "websocket.accept"
    echoes = [message for message in sent if message["type"] == "websocket.send"]
    payload = worker.PAYLOADS[kind]
    assert len(echoes) == count
    for echo in echoes:
        if kind == "json":
            assert json.loads(echo["text"]) == json.loads(payload["text"])
        else:
            assert echo.get(kind) == payload[kind]


@pytest.mark.parametrize("kind", inprocess.KINDS)
@pytest.mark.parametrize("name", list(inprocess.VARIANTS))
def test_every_variant_echoes_every_message_unchanged(name: str, kind: str) -> None:
    sent = worker.transcript(inprocess.VARIANTS[name](kind), "echo", kind, 5)
    assert_echoes(sent, kind, 5)


@pytest.mark.parametrize("library", typed.LIBRARIES)
@pytest.mark.parametrize("name", list(typed.VARIANTS))
def test_every_typed_variant_echoes_the_typed_message_unchanged(name: str, library: str) -> None:
    sent = worker.transcript(typed.VARIANTS[name](library), "echo", library, 5)
    echoes = [message for message in sent if message["type"] == "websocket.send"]
    assert len(echoes) == 5
    for echo in echoes:
        assert json.loads(echo["text"]) == json.loads(worker.TYPED_PAYLOAD["text"])


@pytest.mark.parametrize("name", list(rpc.VARIANTS))
def test_every_rpc_variant_answers_every_call(name: str) -> None:
    sent = worker.transcript(rpc.VARIANTS[name]("rpc"), "echo", "rpc", 5)
    answers = [
        json.loads(message["text"]) for message in sent if message["type"] == "websocket.send"
    ]
    assert answers == [{"jsonrpc": "2.0", "result": 42, "id": 1}] * 5


def test_the_rpc_suite_through_uvicorn_runs_and_writes_its_figures(tmp_path: Path) -> None:
    output = tmp_path / "rpc-uvicorn.json"
    assert rpc_uvicorn.main(["--calls", "50", "--rounds", "1", "--json", str(output)]) == 0
    results = json.loads(output.read_text())["results"]
    assert {name: len(rounds) for name, rounds in results.items()} == {
        "raw": 1,
        "bocws": 1,
        "socketio": 1,
    }


def test_the_typed_suite_runs_and_writes_its_figures(tmp_path: Path) -> None:
    output = tmp_path / "typed.json"
    argv = ["--messages", "200", "--repeats", "1", "--json", str(output)]
    assert typed.main(argv) == 0
    results = json.loads(output.read_text())["results"]
    assert set(results) == set(typed.LIBRARIES)


@pytest.mark.parametrize("kind", inprocess.KINDS)
@pytest.mark.parametrize("name", ["raw", "bocadillo"])
def test_the_bocadillo_worker_echoes_every_message_unchanged(
    bocadillo: harness.Worker, name: str, kind: str
) -> None:
    assert_echoes(bocadillo.transcript("echo", name, kind, 5), kind, 5)


def test_a_worker_reports_a_failed_run_and_keeps_serving(bocadillo: harness.Worker) -> None:
    with pytest.raises(RuntimeError, match="no echo variant 'no-such-variant'"):
        bocadillo.run("echo", "no-such-variant", "text", 10)
    assert bocadillo.run("echo", "raw", "text", 10) > 0


@needs_bocadillo
def test_the_worker_runs_the_same_raw_baseline_as_the_harness(
    bocadillo: harness.Worker,
) -> None:
    versions = bocadillo.versions(["bocadillo"])
    assert versions["packages"] == {"bocadillo": "0.18.3"}
    assert versions["json_backend"] == worker.JSON_BACKEND


def test_an_unknown_variant_is_refused_with_the_known_ones() -> None:
    with pytest.raises(SystemExit, match="choose among raw, bocws"):
        inprocess.main(["--variants", "bocws,nope"])


def test_an_environment_that_cannot_be_made_fails_only_when_asked_for(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def cannot_make() -> Path:
        raise subprocess.CalledProcessError(1, ["pip", "install", "bocadillo==0.18.3"])

    monkeypatch.setitem(harness.WORKER_INTERPRETERS, "bocadillo", cannot_make)
    argv = ["--messages", "20", "--repeats", "1", "--kinds", "text"]
    assert inprocess.main([*argv, "--variants", "bocws,bocadillo"]) == 2
    error = capsys.readouterr().err
    assert "'bocadillo' variant needs its own virtualenv" in error
    assert "Leave 'bocadillo' out of --variants" in error
    assert inprocess.main([*argv, "--variants", "bocws"]) == 0


# Routing.


def test_the_routing_benchmark_runs_every_variant_and_target(tmp_path: Path) -> None:
    output = tmp_path / "routing.json"
    argv = ["--connections", "20", "--repeats", "2", "--variants", ",".join(ROUTING)]
    assert routing.main([*argv, "--json", str(output)]) == 0
    document = json.loads(output.read_text())
    assert document["routes"] == 50
    assert set(document["results"]) == {"last", "middle"}
    for by_variant in document["results"].values():
        assert by_variant["bocws"]["baseline"] == "raw"
        assert set(by_variant["bocws"]["ratios"]) == {"raw", "starlette"}
        assert set(by_variant["starlette"]["ratios"]) == {"raw"}
        if BOCADILLO_READY:
            assert set(by_variant["bocadillo"]["ratios"]) == {"raw@bocadillo", "starlette"}


def test_the_routes_mix_static_and_parametrised_paths_and_the_targets_are_deep() -> None:
    patterns = [pattern for pattern, _ in worker.ROUTES]
    assert len(set(patterns)) == 50
    assert any("{" not in pattern for pattern in patterns)
    assert any("{" in pattern for pattern in patterns)
    assert patterns[-1] == "/room/49/{name}"
    assert patterns[25] == "/room/25/{name}"


@pytest.mark.parametrize("target", list(worker.TARGETS))
@pytest.mark.parametrize("name", list(routing.VARIANTS))
def test_every_routing_variant_accepts_then_closes(name: str, target: str) -> None:
    sent = worker.transcript(routing.VARIANTS[name](), "connect", target, 3)
    assert [message["type"] for message in sent] == ["websocket.accept", "websocket.close"] * 3


@pytest.mark.parametrize("target", list(worker.TARGETS))
def test_bocadillo_routes_accept_then_close(bocadillo: harness.Worker, target: str) -> None:
    sent = bocadillo.transcript("connect", "bocadillo", target, 3)
    assert [message["type"] for message in sent] == ["websocket.accept", "websocket.close"] * 3


@pytest.mark.parametrize("name", ["bocws", "starlette", "starlette-app"])
def test_every_one_of_the_50_routes_is_reachable(name: str) -> None:
    app = routing.VARIANTS[name]()

    async def connect_to_every_route() -> None:
        for pattern, parameters in worker.ROUTES:
            path = pattern.format(**dict.fromkeys(parameters, "x"))
            client = worker.Handshake()
            await app(worker.scope_for(path), client.receive, client.send)
            assert (client.accepted, client.closed) == (1, 1), path

    asyncio.run(connect_to_every_route())


# The runner and the plot.


def small_in_process_results() -> dict[str, Any]:
    raw = [100.0, 110.0]
    results = {
        kind: {
            "raw": harness.summary(raw, {}),
            "bocws": harness.summary([200.0, 230.0], {"raw": raw}),
            "starlette": harness.summary([300.0, 310.0], {"raw": raw}),
        }
        for kind in inprocess.KINDS
    }
    return {"suite": "inprocess", "messages": 50, "repeats": 2, "results": results}


def small_end_to_end_results() -> dict[str, Any]:
    def cpu(median: float) -> dict[str, Any]:
        return {"server_cpu_us": {"median": median, "min": median - 1, "max": median + 1}}

    summary = {"raw": cpu(20.0), "bocws": cpu(24.0), "starlette": cpu(27.0)}
    return {"results": {"wsproto": {"32": {"summary": summary, "rounds": {}}}}}


@pytest.mark.parametrize("end_to_end", [False, True])
def test_the_plot_renders_a_png(tmp_path: Path, end_to_end: bool) -> None:
    harness.write_json(tmp_path / "results-inprocess.json", small_in_process_results())
    if end_to_end:
        harness.write_json(tmp_path / "results-endtoend.json", small_end_to_end_results())
    output = tmp_path / "figure.png"
    assert plot.main(["--results", str(tmp_path), "--output", str(output)]) == 0
    assert output.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_the_plot_without_results_says_what_to_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert plot.main(["--results", str(tmp_path)]) == 1
    assert "run python -m benchmarks quick" in capsys.readouterr().err


def test_the_runner_skips_a_suite_that_is_not_there(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert runner.run_suite("not_yet_written", True, tmp_path) == {"status": "absent"}
    assert "benchmarks/not_yet_written.py is absent, skipped" in capsys.readouterr().out


def test_the_machine_description_names_the_cpu_python_and_packages() -> None:
    info = runner.machine_info()
    assert info["cpu_model"]
    assert info["logical_cpus"] >= 1
    assert info["python"].count(".") == 2
    assert set(runner.PACKAGES) <= set(info["packages"])
    assert info["packages"]["bocws"] is not None
    if BOCADILLO_READY:
        assert info["bocadillo_environment"]["packages"]["bocadillo"] == "0.18.3"


def test_the_report_fills_the_pages_tables_from_the_committed_results(tmp_path: Path) -> None:
    from benchmarks import report

    page = tmp_path / "benchmarks.md"
    original = report.PAGE.read_text(encoding="utf-8")
    page.write_text(original, encoding="utf-8")
    report.write(page)
    # The committed page holds the tables of the committed results: writing changes nothing.
    assert page.read_text(encoding="utf-8") == original
    for name in report.SECTIONS:
        assert f"<!-- results: {name} -->\n" in original
        assert f"<!-- results: {name} -->\n<!-- end -->" not in original
    start = original.index("<!-- results: routing -->\n") + len("<!-- results: routing -->\n")
    emptied = original[:start] + original[original.index("<!-- end -->", start) :]
    page.write_text(emptied, encoding="utf-8")
    report.write(page)
    assert page.read_text(encoding="utf-8") == original
    page.write_text(original.replace("<!-- results: memory -->", ""), encoding="utf-8")
    with pytest.raises(SystemExit, match="memory"):
        report.write(page)
