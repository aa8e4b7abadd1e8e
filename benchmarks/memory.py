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

from .harness import suite_options, write_json
from .servers import (
    VARIANTS,
    differences,
    echo_counts,
    exit_with,
    format_spread,
    job,
    print_table,
    progress,
    ratios,
    run_client,
    serving,
    spread,
)

#: The budget bocws aims at: raw ASGI's cost per connection plus this many bytes.
TARGET_OVER_RAW = 2048


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, list[str]]:
    """The command line, `--quick` filling in the defaults of a short run; and the
    variants asked for, raw first."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, help="idle connections (2,000; quick 500)")
    parser.add_argument("--rounds", type=int, help="fresh servers, each measured once (5; quick 2)")
    parser.add_argument("--implementation", default="websockets-sansio", help="uvicorn --ws")
    parser.add_argument("--loop", default="uvloop", choices=["uvloop", "asyncio"])
    parser.add_argument("--warmup", type=int, default=8, help="connections of the warm-up")
    parser.add_argument("--timeout", type=float, default=120.0, help="per measurement, seconds")
    defaults = {"connections": (2000, 500), "rounds": (5, 2)}
    return suite_options(parser, argv, list(VARIANTS), defaults)


def measure(names: list[str], options: argparse.Namespace) -> dict[str, list[dict[str, Any]]]:
    """Per variant, each round's RSS before and after the connections."""
    per_round: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    for order in progress(names, options.rounds):
        # Fresh servers every round: what one round leaves in a heap is not the next's.
        with serving(names, options.implementation, options.loop) as servers:
            jobs = [
                job(
                    "memory",
                    name,
                    servers[name],
                    options.connections,
                    options.timeout,
                    warmup=options.warmup,
                )
                for name in order
            ]
            for result in run_client(jobs, options.timeout * 2 * len(jobs)):
                per_round[result["variant"]].append(result)
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
            **echo_counts(results),
        }
    return summary


def report(summary: dict[str, Any], options: argparse.Namespace) -> None:
    """Print one line per variant: bytes per connection, and over raw, with ranges."""
    title = (
        f"\n{options.implementation}, {options.connections:,} idle connections, "
        f"{options.rounds} rounds; median [min, max] over the rounds "
        f"(bocws target: raw + {TARGET_OVER_RAW:,} B at most)"
    )
    columns = ("bytes/connection", "over raw", "x raw", "RSS before")
    rows = {
        name: (
            format_spread(figures["bytes_per_connection"], "7,.0f"),
            format_spread(figures["bytes_over_raw"], "+6,.0f"),
            format_spread(figures["to_raw"], "5.2f"),
            f"{figures['rss_before']['median'] / 2**20:.1f} MiB",
        )
        for name, figures in summary.items()
    }
    print_table(title, columns, (28, 26, 18, 13), rows)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print its table, keep its figures (`--json`)."""
    options, names = parse_args(argv)
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
    exit_with(main)
