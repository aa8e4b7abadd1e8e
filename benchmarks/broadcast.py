"""Broadcast fan-out benchmark: one publisher, many subscribers, memory:// and Redis.

The bocws variants serve `benchmarks/broadcast_app.py` (a `bocws.App` whose `/feed`
view is `async with broadcast.room(ws, channel): async for _ in ws: pass`), the peers
their own apps, from uvicorn (the reference: its own server) on 127.0.0.1, all
started at once; a picows client in another process (`benchmarks/broadcast_client.py`)
holds the subscribers and has one of the server processes publish (`POST /publish`),
the variants taking turns, the order rotated each round:

- `memory`: `Broadcast("memory://")`, one uvicorn process holding every subscriber
  (the publisher is in it: memory:// cannot reach another process);
- `redis-1`: `Broadcast("redis://...")`, one process: the cost of Redis alone;
- `redis-2`: `Broadcast("redis://...")`, two processes (two ports) holding half the
  subscribers each, the first one publishing: the scaled-out set-up;
- `memory-history`, `redis-1-history`: `memory` and `redis-1` with
  `Broadcast(history=10_000)`: each message kept and delivered with its id (the
  cost of history against pub/sub alone);
- `raw`: raw ASGI fan-out by hand, the floor for an ASGI app,
  `starlette-broadcaster`: Starlette's WebSocket with encode/broadcaster's
  `memory://`, the ecosystem's usual recipe, and `socketio`: python-socketio's
  `ASGIApp`, each client in a room and every message emitted to it, its subscribers
  speaking Socket.IO over the WebSocket (`benchmarks/fanout_apps.py`);
- `websockets-broadcast`: the `websockets` library's own server (not uvicorn, not
  ASGI) with `broadcast()`, each message's frame built once and written to every
  connection (`benchmarks/websockets_broadcast.py`): a reference outside ASGI, the
  physical floor of a fan-out in Python, reported apart (marked `*`, `"reference":
  true` in the JSON) and never the baseline.

The Redis variants share one `redis-server` (Debian's, on a free port, no
persistence), each on a channel of its own. Per variant and round it measures, after
a warm-up batch: at a steady publishing `--rate` the same for all, delivery
latency (read by the client minus sent by the publisher) p50 and p99, the messages
lost, server CPU per delivery and the client's CPU share; then the capacity, the
deliveries per second while a `--burst` of messages published back to back drains
(fewer than a subscriber's queue holds, so nothing is dropped); then each server
process's RSS and Redis's `used_memory`. Figures are also given as a ratio to
`memory` in the same round. Every message must reach every subscriber: a loss fails
the run (exit status 1), after the report. `--gc freeze` has every server process call
`gc.freeze()` once started up (`BOCWS_BENCH_GC`), so that the objects made at start-up
are left out of every later collection; `--gc on` (the default) leaves the collector
as it is.

Run: `python -m benchmarks.broadcast` (see `--help`), `--quick` for a short look.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

from .broadcast_app import QUEUE_SIZE
from .environments import project_python
from .fanout_apps import GC_SETTINGS, GC_VARIABLE
from .harness import SetupError, comma_separated, write_json
from .servers import (
    READY_TIMEOUT,
    Server,
    Variant,
    check_modules,
    exit_with,
    format_spread,
    free_port,
    print_table,
    progress,
    raise_fd_limit,
    ratios,
    run_client,
    spread,
)
from .worker import installed_version

HISTORY = 10_000
"""Messages the `-history` variants keep per channel (`Broadcast(history=...)`)."""


@dataclass(frozen=True)
class Setup:
    """One variant: the broadcast's backend, how many server processes share the
    subscribers, and what they serve."""

    name: str
    backend: str  # "memory" or "redis"
    processes: int
    history: int = 0  # messages kept per channel (0: pub/sub alone)
    app: str = "benchmarks.broadcast_app:app"  # what uvicorn serves (a reference: the module)
    #: Where the subscribers connect, and what they speak there (`broadcast_client`):
    #: "websocket" (each message a text frame of JSON) or "socketio".
    feed: str = "/feed"
    protocol: str = "websocket"
    #: Not an ASGI app: `app` is a module that is its own server (`Variant.serves_itself`);
    #: reported apart, and never the baseline.
    reference: bool = False


SETUPS: dict[str, Setup] = {
    setup.name: setup
    for setup in (
        Setup("memory", "memory", 1),
        Setup("redis-1", "redis", 1),
        Setup("redis-2", "redis", 2),
        Setup("memory-history", "memory", 1, HISTORY),
        Setup("redis-1-history", "redis", 1, HISTORY),
        Setup("raw", "memory", 1, app="benchmarks.fanout_apps:raw"),
        Setup(
            "starlette-broadcaster", "memory", 1, app="benchmarks.fanout_apps:starlette_broadcaster"
        ),
        Setup(
            "socketio",
            "memory",
            1,
            app="benchmarks.fanout_apps:socketio",
            feed="/socket.io/?EIO=4&transport=websocket",
            protocol="socketio",
        ),
        Setup(
            "websockets-broadcast",
            "memory",
            1,
            app="benchmarks.websockets_broadcast",
            reference=True,
        ),
    )
}
#: Every figure is also given as a ratio to this variant's in the same round
#: (`--baseline` chooses another): raw ASGI, the floor of an ASGI app.
BASELINE = "raw"


class RedisServer:
    """Debian's `redis-server` on a free 127.0.0.1 port, no persistence, for one run."""

    def __init__(self, executable: str) -> None:
        self.port = free_port()
        self._directory = tempfile.TemporaryDirectory(prefix="bocws-bench-redis-")
        self._log: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 - closed by stop()
        command = [
            executable,
            *("--port", str(self.port), "--bind", "127.0.0.1"),
            *("--save", "", "--appendonly", "no", "--dir", self._directory.name),
            *("--daemonize", "no", "--loglevel", "warning", "--logfile", ""),
        ]
        self.process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log
        )

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def wait_ready(self, deadline: float) -> None:
        """Return once it answers PING, up to `deadline` (monotonic).

        Raises:
            RuntimeError: it exited, or did not answer in time; with its log.
        """
        while not self._answers_ping():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self._log.seek(0)
                log = self._log.read().decode(errors="replace")[-4000:]
                raise RuntimeError(f"redis-server on port {self.port} did not start:\n{log}")
            time.sleep(0.02)

    def _answers_ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1.0) as connection:
                connection.sendall(b"PING\r\n")
                return connection.recv(64) == b"+PONG\r\n"
        except OSError:
            return False

    def stop(self) -> None:
        """Kill it (there is nothing to save) and remove its directory."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)
        self._log.close()
        self._directory.cleanup()


@contextlib.contextmanager
def environment(**variables: str) -> Iterator[None]:
    """`variables` in this process's environment while the block runs (for the servers
    it starts to inherit)."""
    saved = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                del os.environ[name]
            else:
                os.environ[name] = value


def redis_executable() -> str:
    """The path of `redis-server`.

    Raises:
        SetupError: there is none, with what to do.
    """
    executable = shutil.which("redis-server")
    if executable is None:
        raise SetupError(
            "the redis variants need redis-server on PATH (Debian: apt-get install "
            "redis-server); or leave them out: --variants memory"
        )
    return executable


@contextlib.contextmanager
def serving(
    names: list[str], implementation: str, loop: str, gc: str = "on"
) -> Iterator[tuple[dict[str, list[Server]], RedisServer | None]]:
    """Start Redis (if a variant needs it) and every variant's servers at once, each
    told `gc` (see `fanout_apps.freeze_gc_if_asked`); wait until all listen; stop them
    all on every exit, Ctrl-C included."""
    raise_fd_limit()
    setups = [SETUPS[name] for name in names]
    python = project_python()
    check_modules(python, implementation, loop)
    redis: RedisServer | None = None
    servers: dict[str, list[Server]] = {}
    try:
        if any(setup.backend == "redis" for setup in setups):
            probe = [str(python), "-c", "import redis.asyncio"]
            if subprocess.run(probe, capture_output=True, timeout=60, check=False).returncode:
                raise SetupError(f"{python} lacks redis-py: {python} -m pip install redis")
            redis = RedisServer(redis_executable())
            redis.wait_ready(time.monotonic() + READY_TIMEOUT)
        for setup in setups:
            url = redis.url if redis is not None and setup.backend == "redis" else "memory://"
            variables = {
                "BOCWS_BENCH_BROADCAST": url,
                "BOCWS_BENCH_CHANNEL": f"bocws:bench:{setup.name}",
                "BOCWS_BENCH_HISTORY": str(setup.history),
                GC_VARIABLE: gc,
            }
            with environment(**variables):
                servers[setup.name] = [
                    Server(
                        Variant(
                            f"{setup.name}#{index}",
                            setup.app,
                            "on",
                            project_python,
                            serves_itself=setup.reference,
                        ),
                        implementation,
                        loop,
                    )
                    for index in range(setup.processes)
                ]
        deadline = time.monotonic() + READY_TIMEOUT
        for group in servers.values():
            for server in group:
                server.wait_ready(deadline)
        yield servers, redis
    finally:
        everyone = [server for group in servers.values() for server in group]
        for server in everyone:  # all at once: their shutdowns overlap
            server.terminate()
        for server in everyone:
            log = server.stop()
            if log.strip():
                print(f"[{server} wrote]\n{log}", file=sys.stderr)  # noqa: T201
        if redis is not None:
            redis.stop()


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, list[str]]:
    """The command line, `--quick` filling in the defaults of a short run; and the
    variants asked for, the baseline first."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, help="connections in all (1,000; quick 300)")
    parser.add_argument("--rounds", type=int, help="measurements of each variant (3; quick 1)")
    parser.add_argument(
        "--rate", type=float, default=20.0, help="steady publishing rate, messages/s (20)"
    )
    parser.add_argument("--duration", type=float, help="of the steady batch, seconds (6; quick 2)")
    parser.add_argument(
        "--burst", type=int, help="messages published back to back (200; quick 100)"
    )
    parser.add_argument("--warmup", type=int, default=10, help="warm-up messages (10)")
    parser.add_argument("--implementation", default="websockets-sansio", help="uvicorn --ws")
    parser.add_argument("--loop", default="uvloop", choices=["uvloop", "asyncio"])
    parser.add_argument(
        "--gc",
        default="on",
        choices=GC_SETTINGS,
        help="what every server does with Python's collector once started up: on (leave "
        "it), freeze (gc.freeze(): start-up's objects left out of later collections)",
    )
    parser.add_argument(
        "--timeout", type=float, default=30.0, help="for a batch to arrive once published, s"
    )
    parser.add_argument("--variants", default=",".join(SETUPS), help="comma-separated")
    parser.add_argument(
        "--baseline", default=BASELINE, help=f"the variant ratios are to ({BASELINE})"
    )
    defaults = {"subscribers": (1000, 300), "rounds": (3, 1), "duration": (6.0, 2.0)}
    defaults["burst"] = (200, 100)
    short = ", ".join(f"--{name} {quick:g}" for name, (_, quick) in defaults.items())
    parser.add_argument("--quick", action="store_true", help=f"a short run: {short}")
    parser.add_argument("--json", help="write every round's figures to this file")
    options = parser.parse_args(argv)
    for name, (full, quick) in defaults.items():
        if getattr(options, name) is None:
            setattr(options, name, quick if options.quick else full)
    names = comma_separated(options.variants)
    unknown = [name for name in names if name not in SETUPS]
    if unknown:
        parser.error(f"unknown variants {unknown}: choose among {', '.join(SETUPS)}")
    if options.rate <= 0:
        parser.error("--rate must be positive")
    if options.burst >= QUEUE_SIZE:
        parser.error(f"--burst must stay under a subscriber's queue_size ({QUEUE_SIZE:,})")
    baseline = options.baseline
    if baseline not in SETUPS:
        parser.error(f"unknown baseline {baseline!r}: choose among {', '.join(SETUPS)}")
    if SETUPS[baseline].reference:
        parser.error(
            f"{baseline!r} is a reference outside ASGI, not a baseline: choose an ASGI app"
        )
    return options, [baseline, *[name for name in dict.fromkeys(names) if name != baseline]]


def job(
    name: str, group: list[Server], redis: RedisServer | None, options: argparse.Namespace
) -> dict[str, Any]:
    """The client's job for variant `name` (see `broadcast_client`)."""
    setup = SETUPS[name]
    uses_redis = setup.backend == "redis"
    return {
        "variant": name,
        "protocol": setup.protocol,
        "urls": [f"ws://127.0.0.1:{server.port}{setup.feed}" for server in group],
        "publish_url": f"http://127.0.0.1:{group[0].port}/publish",
        "pids": [server.pid for server in group],
        "redis_pid": redis.process.pid if redis and uses_redis else None,
        "redis_port": redis.port if redis and uses_redis else None,
        "subscribers": options.subscribers,
        "warmup": options.warmup,
        "warmup_rate": options.rate,
        "rate": options.rate,
        "duration": options.duration,
        "burst": options.burst,
        "timeout": options.timeout,
    }


def measure(names: list[str], options: argparse.Namespace) -> dict[str, list[dict[str, Any]]]:
    """Per variant, each round's figures."""
    per_round: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    # Bounded: connecting, then three batches, each published and waited for (see
    # `broadcast_client.run_batch`).
    budget = 120 + 6 * options.timeout + options.duration + options.warmup / options.rate
    with serving(names, options.implementation, options.loop, options.gc) as (servers, redis):
        for order in progress(names, options.rounds):
            jobs = [job(name, servers[name], redis, options) for name in order]
            for result in run_client(jobs, budget * len(jobs), "benchmarks.broadcast_client"):
                per_round[result["variant"]].append(result)
    return per_round


def figures(result: dict[str, Any]) -> dict[str, Any]:
    """The figures of one round kept in the summary, flat."""
    steady, burst = result["steady"], result["burst"]
    return {
        "capacity_per_s": burst["deliveries_per_s"],
        "capacity_messages_per_s": burst["deliveries_per_s"] / result["subscribers"],
        "burst_server_cpu_share": burst["server_cpu_share"],
        "burst_redis_cpu_share": burst["redis_cpu_share"],
        "burst_client_cpu_share": burst["client_cpu_share"],
        "steady_deliveries_per_s": steady["deliveries_per_s"],
        "p50_ms": steady["p50_ms"],
        "p99_ms": steady["p99_ms"],
        "max_ms": steady["max_ms"],
        "server_cpu_us": steady["server_cpu_us"],
        "server_cpu_share": steady["server_cpu_share"],
        "redis_cpu_share": steady["redis_cpu_share"],
        "client_cpu_share": steady["client_cpu_share"],
        "publisher_behind_ms": steady["publisher_behind_s"] * 1000,
        "rss_per_process_mib": max(result["rss"]) / 2**20,
    }


#: Figures also given as a ratio to the baseline in the same round.
RATIO_FIGURES = ("capacity_per_s", "p50_ms", "p99_ms", "server_cpu_us")


def lost(results: list[dict[str, Any]]) -> dict[str, int]:
    """Messages lost or out of order over every batch of `results`, and closed sockets."""
    batches = [result[key] for result in results for key in ("warmup", "steady", "burst")]
    return {
        "expected": sum(batch["expected"] for batch in batches),
        "lost": sum(batch["lost"] for batch in batches),
        "disordered": sum(batch["disordered"] for batch in batches),
        "strays": sum(result["strays"] for result in results),
        "closed": sum(result["closed"] for result in results),
    }


def summarise(
    per_round: dict[str, list[dict[str, Any]]], baseline: str = BASELINE
) -> dict[str, Any]:
    """Per variant: each figure's median and range over the rounds, ratios to the
    baseline, and what was lost."""
    base = [figures(result) for result in per_round[baseline]]
    summary: dict[str, Any] = {}
    for name, results in per_round.items():
        rounds = [figures(result) for result in results]
        entry: dict[str, Any] = {key: spread([each[key] for each in rounds]) for key in rounds[0]}
        for key in RATIO_FIGURES:
            entry[f"{key}_to_{baseline}"] = ratios(
                [each[key] for each in rounds], [each[key] for each in base]
            )
        used = [r["redis_used_memory"] for r in results if r["redis_used_memory"] is not None]
        entry["redis_used_memory"] = spread(used)
        entry["processes"] = SETUPS[name].processes
        entry["backend"] = SETUPS[name].backend
        entry["reference"] = SETUPS[name].reference
        entry.update(lost(results))
        summary[name] = entry
    return summary


def report(summary: dict[str, Any], options: argparse.Namespace) -> None:
    """Print the table: a line per variant, medians with their range over the rounds;
    the references outside ASGI last, marked."""
    title = (
        f"\n{options.subscribers:,} subscribers, {options.implementation}, gc "
        f"{options.gc}; steady: {options.rate:g} messages/s for {options.duration:g} s; "
        f"burst: {options.burst} messages; {options.rounds} rounds; median [min, max] over "
        "the rounds; CPU: server (burst) and client (steady/burst), as a share of wall time"
    )
    baseline = options.baseline
    columns: tuple[str, ...] = ("burst: deliveries/s", f"x {baseline}", "server")
    columns += ("steady: p50 ms", "p99 ms", "us/delivery", f"x {baseline}", "lost", "RSS MiB")
    columns += ("Redis MiB", "client")
    rows = {}
    for name, entry in sorted(summary.items(), key=lambda item: bool(item[1]["reference"])):
        redis = entry["redis_used_memory"]
        rows[f"{name} *" if entry["reference"] else name] = (
            format_spread(entry["capacity_per_s"], "8,.0f"),
            format_spread(entry[f"capacity_per_s_to_{baseline}"], "4.2f"),
            f"{entry['burst_server_cpu_share']['median']:.0%}",
            format_spread(entry["p50_ms"], "5.1f"),
            format_spread(entry["p99_ms"], "5.1f"),
            format_spread(entry["server_cpu_us"], "5.1f"),
            format_spread(entry[f"server_cpu_us_to_{baseline}"], "4.2f"),
            f"{entry['lost']}",
            f"{entry['rss_per_process_mib']['median']:.0f}",
            "" if redis["median"] is None else f"{redis['median'] / 2**20:.1f}",
            f"{entry['client_cpu_share']['median']:.0%}/"
            f"{entry['burst_client_cpu_share']['median']:.0%}",
        )
    print_table(title, columns, (30, 18, 8, 22, 22, 20, 18, 6, 9, 11, 9), rows)
    if any(entry["reference"] for entry in summary.values()):
        print(  # noqa: T201 - the report's note
            "* a reference outside ASGI (its own server, not an ASGI app): the floor of a "
            "fan-out in Python, not a peer"
        )


def redis_versions(names: list[str]) -> dict[str, str | None]:
    """redis-py's version, and redis-server's when a variant uses it."""
    versions = {"redis-py": installed_version("redis"), "redis-server": None}
    executable = shutil.which("redis-server")
    if executable and any(SETUPS[name].backend == "redis" for name in names):
        answer = subprocess.run(
            [executable, "--version"], capture_output=True, text=True, timeout=30, check=False
        ).stdout
        versions["redis-server"] = next(
            (word[2:] for word in answer.split() if word.startswith("v=")), answer.strip()
        )
    return versions


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print its table, keep its figures (`--json`)."""
    options, names = parse_args(argv)
    started = time.monotonic()
    try:
        per_round = measure(names, options)
    except SetupError as error:
        print(f"error: {error}", file=sys.stderr)  # noqa: T201 - the CLI's message
        return 2
    summary = summarise(per_round, options.baseline)
    report(summary, options)
    print(f"\n{time.monotonic() - started:.0f} s", file=sys.stderr)  # noqa: T201
    settings = {
        "variants": names,
        "processes": {name: SETUPS[name].processes for name in names},
        **{
            key: getattr(options, key)
            for key in ("subscribers", "rounds", "rate", "duration", "burst", "warmup")
        },
        "baseline": options.baseline,
        "implementation": options.implementation,
        "loop": options.loop,
        "gc": options.gc,
        "queue_size": QUEUE_SIZE,
        "cpus": os.cpu_count(),
        "versions": redis_versions(names),
    }
    if options.json:
        write_json(options.json, {"settings": settings, "summary": summary, "rounds": per_round})
    failed = {name: entry for name, entry in summary.items() if entry["lost"] or entry["closed"]}
    for name, entry in failed.items():
        print(  # noqa: T201
            f"error: {name}: {entry['lost']} of {entry['expected']:,} deliveries lost, "
            f"{entry['closed']} sockets closed by the server",
            file=sys.stderr,
        )
    return 1 if failed else 0


if __name__ == "__main__":
    exit_with(main)
