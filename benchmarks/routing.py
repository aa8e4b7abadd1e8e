"""Routing benchmark: the cost of one connection through an app with 50 WebSocket routes.

Each connection goes through the whole lifecycle, in process over fake ASGI
callables: the client connects, the router finds the route, the view accepts and the
connection closes. The same 50 routes (static paths and `{param}` paths, see
`worker.ROUTES`) are registered in each framework, and connections go to the last
route (every pattern tried first: the worst case) and to one in the middle. Variants
take turns as in `inprocess`; each figure is also a ratio to a bare ASGI app that
accepts and closes with no routing, and to Starlette's `Router`.

Run: `python -m benchmarks.routing` (see `--help`).
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
from collections.abc import Callable

from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.routing import Router, WebSocketRoute
from starlette.websockets import WebSocket as StarletteWebSocket

from bocws import App as BocwsApp

from .harness import WORKER_INTERPRETERS, comma_separated, measure_and_report, suite_options
from .worker import ROUTES, TARGETS, App, idle_view, raw_connect, run_connections


def bocws(metrics: bool | CollectorRegistry = False) -> App:
    """`bocws.App` with the routes, each view doing nothing: the lifecycle accepts
    (lazily, at its close) and closes; with `metrics`, counted for Prometheus."""
    app = BocwsApp(metrics=metrics)
    for pattern, parameters in ROUTES:
        app.websocket_route(pattern)(idle_view(parameters))
    return app


async def _accept_and_close(ws: StarletteWebSocket) -> None:
    # Starlette has no lifecycle: the endpoint accepts and closes itself.
    await ws.accept()
    await ws.close()


def _starlette_routes() -> list[WebSocketRoute]:
    return [WebSocketRoute(pattern, _accept_and_close) for pattern, _ in ROUTES]


def starlette() -> App:
    """Starlette's `Router` alone with the routes: routing and nothing else."""
    return Router(routes=_starlette_routes())


def starlette_app() -> App:
    """A `Starlette` application with the routes: what `bocws.App` builds on, with its
    default middleware (error and exception handling) around the router."""
    return Starlette(routes=_starlette_routes())


#: The variants run in this interpreter, by name: each makes its app with the routes.
VARIANTS: dict[str, Callable[[], App]] = {
    "raw": lambda: raw_connect,
    "bocws": bocws,
    "bocws-metrics": lambda: bocws(CollectorRegistry()),
    "starlette": starlette,
    "starlette-app": starlette_app,
}
#: Every variant, those in a worker of their own interpreter included.
ALL_VARIANTS = [*VARIANTS, *WORKER_INTERPRETERS]


def profile(name: str, target: str, count: int, lines: int = 30) -> None:
    """Print where one run of the local variant `name` spends its time (cProfile).

    The profiler's own cost per call inflates code made of many small calls, so
    compare variants by the ratios above and read this for the split of the time.
    """
    app = VARIANTS[name]()
    path = TARGETS[target]
    run_connections(app, path, min(count, 1000))  # warm up, as the measured runs do
    profiler = cProfile.Profile()
    profiler.runcall(run_connections, app, path, count)
    print(f"\ncProfile of {name}, {count} connections to {path}:")  # noqa: T201
    pstats.Stats(profiler, stream=sys.stdout).sort_stats("cumulative").print_stats(lines)


def main(argv: list[str] | None = None) -> int:
    """Measure connections to every target, print the report, keep the figures (`--json`)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, help="per run (20,000; quick 3,000)")
    parser.add_argument("--repeats", type=int, help="runs of each variant (7; quick 5)")
    parser.add_argument(
        "--targets", type=comma_separated, default=list(TARGETS), help="comma-separated"
    )
    parser.add_argument(
        "--profile", choices=list(VARIANTS), help="only profile this variant (cProfile), no timing"
    )
    defaults = {"connections": (20_000, 3_000), "repeats": (7, 5)}
    options, names = suite_options(parser, argv, ALL_VARIANTS, defaults)
    if options.profile:
        for target in options.targets:
            profile(options.profile, target, min(options.connections, 5_000))
        return 0
    if "starlette" not in names:  # the second baseline of every ratio
        names.insert(1, "starlette")
    document = {
        "suite": "routing",
        "routes": len(ROUTES),
        "paths": {target: TARGETS[target] for target in options.targets},
        "connections": options.connections,
        "repeats": options.repeats,
    }
    return measure_and_report(
        "connect",
        VARIANTS,
        options.targets,
        names,
        options.connections,
        options.repeats,
        document=document,
        json_path=options.json,
        second_baseline="starlette",
    )


if __name__ == "__main__":
    sys.exit(main())
