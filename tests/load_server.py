"""The server of the load test in tests/test_reliability.py: a bocws JSON echo and its stats.

The test runs it alone in a subprocess (`python -m uvicorn tests.load_server:app ...`) so
that its memory is its own. `GET /stats` reports what a leak would show: live `WebSocket`
objects and live uvicorn protocol objects after a full garbage collection, and how many
`WebSocket` objects only that collection freed (the server's automatic collector is off:
reference counting alone must free every connection), asyncio tasks, open file descriptors,
the resident set size (after `malloc_trim`, and before it) and its peak, tracemalloc's
figures when started with `BOCWS_TRACEMALLOC=1`, and how the echo views ended.
"""

from __future__ import annotations

import asyncio
import collections
import ctypes
import gc
import os
import resource
import tracemalloc
import weakref
from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import JSONResponse

from bocws import App, WebSocket


def _raise_fd_limit() -> None:
    # One descriptor per connection: lift the soft limit to the hard one.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if resource.RLIM_INFINITY not in (soft, hard) and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


_raise_fd_limit()
if os.environ.get("BOCWS_TRACEMALLOC") == "1":
    tracemalloc.start()


def _find_malloc_trim() -> Callable[[int], int] | None:
    # glibc keeps freed memory in its heap; malloc_trim hands it back to the kernel, so
    # that the RSS measured counts what is in use rather than what was once used.
    try:
        trim: Callable[[int], int] = ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # pragma: no cover - not glibc
        return None
    return trim


_malloc_trim = _find_malloc_trim()
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
PROTOCOL_CLASSES = {"WebSocketsSansIOProtocol", "WSProtocol", "WebSocketProtocol"}

# The cycle collector runs only in `/stats`, which counts the `WebSocket` objects only
# it could free: a connection that reference counting does not free is a leak until
# the collector happens to run (and its last message with it).
gc.disable()
freed_by_collector = 0

app = App()
views = {"started": 0, "ended": 0, "raised": 0}
echoed: collections.Counter[int] = collections.Counter()
"""How many connections echoed how many messages: {messages: connections}."""


@app.websocket_route("/echo", value_type="json", caught_close_codes=(1000,))
async def echo(ws: WebSocket) -> None:
    """Echo JSON messages; only the client's close with 1000 ends the loop quietly."""
    views["started"] += 1
    count = 0
    try:
        async for message in ws:
            await ws.send(message)
            count += 1
    except BaseException:
        views["raised"] += 1
        raise
    finally:
        echoed[count] += 1
    views["ended"] += 1


def _rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * PAGE_SIZE


def _peak_rss() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0  # pragma: no cover - every Linux kernel since 2.6 reports VmHWM


@app.route("/stats")
async def stats(request: Request) -> JSONResponse:
    """What the server holds now, after a full garbage collection (see above)."""
    global freed_by_collector
    sockets = [weakref.ref(item) for item in gc.get_objects() if isinstance(item, WebSocket)]
    gc.collect()
    freed_by_collector += sum(1 for socket in sockets if socket() is None)
    websockets = protocols = 0
    for item in gc.get_objects():
        if isinstance(item, WebSocket):
            websockets += 1
        elif type(item).__name__ in PROTOCOL_CLASSES:
            protocols += 1
    untrimmed = _rss()
    if _malloc_trim is not None:
        _malloc_trim(0)
    traced, traced_peak = tracemalloc.get_traced_memory()
    return JSONResponse(
        {
            "pid": os.getpid(),
            "loop": type(asyncio.get_running_loop()).__module__,
            "fd_limit": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
            "websockets": websockets,
            "freed_by_collector": freed_by_collector,
            "protocols": protocols,
            "tasks": len(asyncio.all_tasks()),
            "fds": len(os.listdir("/proc/self/fd")),
            "rss": _rss(),
            "rss_untrimmed": untrimmed,
            "peak_rss": _peak_rss(),
            "tracemalloc": tracemalloc.is_tracing(),
            "traced": traced,
            "traced_peak": traced_peak,
            "views": views,
            "echoed": {str(messages): count for messages, count in echoed.items()},
        }
    )
