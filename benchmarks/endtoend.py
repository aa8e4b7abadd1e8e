"""End-to-end benchmark: echo round trips through uvicorn and granian, per variant.

Every variant (`benchmarks/apps.py`, `benchmarks/bocadillo_app.py`) runs in its own
server process (uvicorn with one of its WebSocket implementations, or granian), all
started at once; a picows load client in another process
(`benchmarks/loadclient.py`) drives them in turn, the order rotated each round, so
that idle servers cost nothing and every round compares the variants under the same
conditions. Per (server, message size, variant, round) it measures round trips per
second, the server's CPU time per round trip over the measured window only
(connection set-up excluded), and the client's CPU share, which shows whether the
client kept up. Every echo is checked, count and content.

Run: `python -m benchmarks.endtoend` (see `--help`), `--quick` for a short look.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from .harness import comma_separated, suite_options, write_json
from .servers import (
    IMPLEMENTATIONS,
    VARIANTS,
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

#: The figures kept per round, and summarised per variant.
FIGURES = (
    "round_trips_per_s",
    "server_cpu_us",
    "server_cpu_share",
    "client_cpu_us",
    "client_cpu_share",
)
#: Figures also given as a ratio to raw in the same round.
RATIO_FIGURES = ("round_trips_per_s", "server_cpu_us")


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, list[str]]:
    """The command line, `--quick` filling in the defaults of a short run; and the
    variants asked for, raw first."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="32,256,8192", help="text message sizes, bytes")
    parser.add_argument(
        "--implementations",
        type=comma_separated,
        default=list(IMPLEMENTATIONS),
        help="uvicorn --ws implementations, or granian, comma-separated",
    )
    parser.add_argument("--loop", default="uvloop", choices=["uvloop", "asyncio"])
    parser.add_argument("--round-trips", type=int, help="per measurement (100,000; quick 20,000)")
    parser.add_argument("--rounds", type=int, help="measurements of each variant (5; quick 2)")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--in-flight", type=int, default=8, help="messages per connection")
    parser.add_argument("--timeout", type=float, default=120.0, help="per measurement, seconds")
    defaults = {"round_trips": (100_000, 20_000), "rounds": (5, 2)}
    options, names = suite_options(parser, argv, list(VARIANTS), defaults)
    unknown = set(options.implementations) - set(IMPLEMENTATIONS)
    if unknown:
        parser.error(f"unknown implementations {sorted(unknown)}: choose among {IMPLEMENTATIONS}")
    return options, names


def measure_implementation(
    implementation: str, names: list[str], sizes: list[int], options: argparse.Namespace
) -> dict[int, dict[str, list[dict[str, Any]]]]:
    """Per size and variant, each round's figures under one server (implementation)."""
    per_round: dict[int, dict[str, list[dict[str, Any]]]] = {
        size: {name: [] for name in names} for size in sizes
    }
    with serving(names, implementation, options.loop) as servers:

        def jobs(order: list[str], trips: int) -> list[dict[str, Any]]:
            return [
                job(
                    "echo",
                    name,
                    servers[name],
                    options.connections,
                    options.timeout,
                    size=size,
                    in_flight=options.in_flight,
                    round_trips=trips,
                )
                for size in sizes
                for name in order
            ]

        # Warm-up, not kept: first-connection costs, lazy imports, the allocator's growth.
        warmup = jobs(names, max(options.connections, options.round_trips // 10))
        run_client(warmup, options.timeout * len(warmup))
        for order in progress(names, options.rounds, f"{implementation}: "):
            measured = jobs(order, options.round_trips)
            for result in run_client(measured, options.timeout * len(measured)):
                per_round[result["size"]][result["variant"]].append(result)
    return per_round


def summarise(by_variant: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Per variant: each figure's median and range over the rounds, ratios to raw."""
    raw = by_variant["raw"]
    summary: dict[str, Any] = {}
    for name, results in by_variant.items():
        figures: dict[str, Any] = {
            figure: spread([result[figure] for result in results]) for figure in FIGURES
        }
        for figure in RATIO_FIGURES:
            figures[f"{figure}_to_raw"] = ratios(
                [result[figure] for result in results], [result[figure] for result in raw]
            )
        summary[name] = {**figures, **echo_counts(results)}
    return summary


def report(
    implementation: str, size: int, summary: dict[str, Any], options: argparse.Namespace
) -> None:
    """Print one table: a line per variant, medians with their range over the rounds."""
    title = (
        f"\n{implementation}, {size} B text, {options.connections} connections x "
        f"{options.in_flight} in flight, {options.round_trips:,} round trips, "
        f"{options.rounds} rounds; median [min, max] over the rounds; server and client "
        "CPU as a share of wall time"
    )
    columns = ("round trips/s", "x raw", "server CPU us/rt", "x raw", "server", "client")
    rows = {
        name: (
            format_spread(figures["round_trips_per_s"], "8,.0f"),
            format_spread(figures["round_trips_per_s_to_raw"], "5.2f"),
            format_spread(figures["server_cpu_us"], "6.1f"),
            format_spread(figures["server_cpu_us_to_raw"], "5.2f"),
            f"{figures['server_cpu_share']['median']:.0%}",
            f"{figures['client_cpu_share']['median']:.0%}",
        )
        for name, figures in summary.items()
    }
    print_table(title, columns, (27, 18, 20, 18, 7, 7), rows)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print its tables, keep its figures (`--json`)."""
    options, names = parse_args(argv)
    sizes = [int(size) for size in options.sizes.split(",")]
    results: dict[str, Any] = {}
    started = time.monotonic()
    for implementation in options.implementations:
        per_round = measure_implementation(implementation, names, sizes, options)
        results[implementation] = {}
        for size in sizes:
            summary = summarise(per_round[size])
            results[implementation][str(size)] = {"summary": summary, "rounds": per_round[size]}
            report(implementation, size, summary, options)
    print(f"\n{time.monotonic() - started:.0f} s", file=sys.stderr)  # noqa: T201
    settings = {
        "variants": names,
        "sizes": sizes,
        "implementations": list(results),
        **{
            key: getattr(options, key)
            for key in ("loop", "round_trips", "rounds", "connections", "in_flight")
        },
    }
    if options.json:
        write_json(options.json, {"settings": settings, "results": results})
    return 0


if __name__ == "__main__":
    exit_with(main)
