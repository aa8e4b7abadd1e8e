"""Catch-up benchmark: a subscriber resuming 10,000 messages behind, memory:// and Redis.

For each backend, `Broadcast(history=...)` on a channel of its own: the messages are
published first (`{"seq": n, "text": 32 characters}`), then each round a subscriber
resumes from the id of the message published just before them
(`subscribe(channel, since=...)`) and reads them
all, checking each one's order; the time is from entering the block to the last
message read. Redis is Debian's `redis-server` on a free port, no persistence, in
the same process's event loop as the subscriber (one connection each way).

The issue's target: a catch-up of 10,000 messages in under a second on this machine.
The cost of history per delivery, against pub/sub, is measured by the fan-out
benchmark (`python -m benchmarks.broadcast`: its `-history` variants).

Run: `python -m benchmarks.history` (see `--help`).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

from bocws import Broadcast
from bocws.broadcast import OLDEST

from .broadcast import RedisServer, redis_executable
from .harness import write_json
from .servers import READY_TIMEOUT


async def catch_up(url: str, messages: int, rounds: int) -> list[float]:
    """Seconds each round took to resume `messages` behind and read them all."""
    channel = f"bocws:bench:history:{time.time_ns()}"
    async with Broadcast(url, history=messages + 1) as broadcast:
        # A subscriber's last message, then the `messages` it missed.
        since = await broadcast.publish(channel, {"seq": -1})
        assert since is not None
        for seq in range(messages):
            await broadcast.publish(channel, {"seq": seq, "text": "x" * 32})
        durations = []
        for _ in range(rounds):
            started = time.perf_counter()
            async with broadcast.subscribe(channel, since=since) as subscription:
                for seq in range(messages):
                    message = await anext(subscription)
                    if message["seq"] != seq:
                        raise AssertionError(f"expected message {seq}, got {message!r}")
            durations.append(time.perf_counter() - started)
        # Every message kept, from the oldest: none trimmed.
        async with broadcast.subscribe(channel, since=OLDEST) as subscription:
            assert (await anext(subscription))["seq"] == -1
        return durations


def main(argv: list[str] | None = None) -> int:
    """Measure, print the report, keep the figures (`--json`)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000, help="behind (10,000)")
    parser.add_argument("--rounds", type=int, default=5, help="resumes per backend (5)")
    parser.add_argument("--backends", default="memory,redis", help="comma-separated")
    parser.add_argument("--json", help="write the figures there")
    options = parser.parse_args(argv)
    results: dict[str, Any] = {}
    for backend in options.backends.split(","):
        redis = None
        try:
            if backend == "redis":
                redis = RedisServer(redis_executable())
                redis.wait_ready(time.monotonic() + READY_TIMEOUT)
                url = redis.url
            else:
                url = "memory://"
            durations = asyncio.run(catch_up(url, options.messages, options.rounds))
        finally:
            if redis is not None:
                redis.stop()
        median = statistics.median(durations)
        results[backend] = {
            "seconds": durations,
            "median_s": median,
            "messages_per_s": options.messages / median,
        }
        print(  # noqa: T201 - the report
            f"{backend:8} catch-up of {options.messages:,} messages: median {median:.3f} s "
            f"({min(durations):.3f}-{max(durations):.3f}), "
            f"{options.messages / median:,.0f} messages/s"
        )
    if options.json:
        write_json(
            options.json,
            {
                "suite": "history",
                "messages": options.messages,
                "rounds": options.rounds,
                "results": results,
            },
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
