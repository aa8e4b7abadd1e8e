"""Memory benchmark: what one idle connection costs a uvicorn server, per variant.

Each round starts a fresh uvicorn process per variant (`--ws websockets-sansio`), and
the load client (`benchmarks/loadclient.py`) measures them in turn, the order
rotated each round: it warms the server up (a few connections opened, echoed once
and closed), reads its resident set size (psutil), opens N connections and echoes
once on each (so that every connection is accepted and its view is running), waits
for the RSS to settle (bounded), and reads it again. The cost of a connection is
(RSS after - RSS before) / N, also given as a difference to raw in the same round.
RSS it is: tracemalloc cannot see into another process, and counts nothing the
server's C parts (the event loop, the sockets' buffers) allocate.

Run: `python -m benchmarks.memory` (see `--help`), `--quick` for a short look.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from .harness import rounds, write_json
from .servers import (
    VARIANTS,
    differences,
    format_spread,
    parse_variants,
    raise_fd_limit,
    ratios,
    run_client,
    serving,
    spread,
)

#: The budget bocws aims at: raw ASGI's cost per connection plus this many bytes.
TARGET_OVER_RAW = 2048


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line, `--quick` filling in the defaults of a short run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short run (under a minute)")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated")
    parser.add_argument("--connections", type=int, help="idle connections (2,000; quick 500)")
    parser.add_argument("--rounds", type=int, help="fresh servers, each measured once (5; quick 2)")
    parser.add_argument("--implementation", default="websockets-sansio", help="uvicorn --ws")
    parser.add_argument("--loop", default="uvloop", choices=["uvloop", "asyncio"])
    parser.add_argument("--warmup", type=int, default=8, help="connections of the warm-up")
    parser.add_argument("--timeout", type=float, default=120.0, help="per measurement, seconds")
    parser.add_argument("--json", help="write every round's figures to this file")
    options = parser.parse_args(argv)
    if options.connections is None:
        options.connections = 500 if options.quick else 2000
    if options.rounds is None:
        options.rounds = 2 if options.quick else 5
    return options


def measure(names: list[str], options: argparse.Namespace) -> dict[str, list[dict[str, Any]]]:
    """Per variant, each round's RSS before and after the connections."""
    per_round: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    for index, order in enumerate(rounds(names, options.rounds)):
        started = time.monotonic()
        # Fresh servers every round: what one round leaves in a heap is not the next's.
        with serving(names, options.implementation, options.loop) as servers:
            jobs = [
                {
                    "mode": "memory",
                    "variant": name,
                    "url": servers[name].url,
                    "pid": servers[name].pid,
                    "size": 32,
                    "connections": options.connections,
                    "warmup": options.warmup,
                    "timeout": options.timeout,
                }
                for name in order
            ]
            for result in run_client(jobs, options.timeout * 2 * len(jobs)):
                per_round[result["variant"]].append(result)
        print(  # noqa: T201 - progress
            f"  round {index + 1}/{options.rounds} ({time.monotonic() - started:.1f} s)",
            file=sys.stderr,
            flush=True,
        )
    return per_round


def summarise(per_round: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Per variant: bytes per connection (median, range), and the difference to raw."""
    raw = [result["bytes_per_connection"] for result in per_round["raw"]]
    summary: dict[str, Any] = {}
    for name, results in per_round.items():
        values = [result["bytes_per_connection"] for result in results]
        summary[name] = {
            "bytes_per_connection": spread(values),
            "bytes_over_raw": differences(values, raw),
            "to_raw": ratios(values, raw),
            "rss_before": spread([result["rss_before"] for result in results]),
            "echoes_verified": sum(result["echoes_verified"] for result in results),
            "echoes_expected": sum(result["echoes_expected"] for result in results),
        }
    return summary


def report(summary: dict[str, Any], options: argparse.Namespace) -> None:
    """Print one line per variant: bytes per connection, and over raw, with ranges."""
    print(  # noqa: T201 - the benchmark's report
        f"\n{options.implementation}, {options.connections:,} idle connections, "
        f"{options.rounds} rounds; median [min, max] over the rounds "
        f"(bocws target: raw + {TARGET_OVER_RAW:,} B at most)",
        flush=True,
    )
    columns = ("bytes/connection", "over raw", "x raw", "RSS before")
    widths = (28, 26, 18, 13)
    print(  # noqa: T201
        f"{'variant':10}" + "".join(f"{c:>{w}}" for c, w in zip(columns, widths, strict=True))
    )
    for name, figures in summary.items():
        cells = (
            format_spread(figures["bytes_per_connection"], "7,.0f"),
            format_spread(figures["bytes_over_raw"], "+6,.0f"),
            format_spread(figures["to_raw"], "5.2f"),
            f"{figures['rss_before']['median'] / 2**20:.1f} MiB",
        )
        print(  # noqa: T201
            f"{name:10}" + "".join(f"{c:>{w}}" for c, w in zip(cells, widths, strict=True)),
            flush=True,
        )


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print its table, keep its figures (`--json`)."""
    options = parse_args(argv)
    names = parse_variants(options.variants)
    raise_fd_limit()
    started = time.monotonic()
    per_round = measure(names, options)
    summary = summarise(per_round)
    report(summary, options)
    print(f"\n{time.monotonic() - started:.0f} s", file=sys.stderr)  # noqa: T201
    settings = {
        "variants": names,
        "implementation": options.implementation,
        "loop": options.loop,
        "connections": options.connections,
        "rounds": options.rounds,
        "warmup": options.warmup,
        "target_over_raw": TARGET_OVER_RAW,
    }
    if options.json:
        write_json(options.json, {"settings": settings, "summary": summary, "rounds": per_round})
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # the servers and the client are stopped by then
        sys.exit(130)
