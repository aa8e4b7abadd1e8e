"""What the server benchmarks share: the variants, the servers, the load client, figures.

`benchmarks.endtoend` (round trips through a server) and `benchmarks.memory` (memory
per idle connection) both start one server process per variant on 127.0.0.1 (uvicorn
with one of its WebSocket implementations, or granian), drive them from a load client
in a process of its own (`benchmarks.loadclient`), and summarise each variant's
rounds against raw ASGI measured in the same round. A variant may also be a module that
is its own server (`Variant.serves_itself`), as the fan-out benchmark's reference is.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, NoReturn

from .environments import ROOT, bocadillo_python, project_python
from .harness import SetupError, interpreter, rounds

#: What the benchmarks can serve under: uvicorn's WebSocket implementations, and granian
#: (its own, in Rust).
IMPLEMENTATIONS = ("websockets-sansio", "wsproto", "granian")
#: The module each server, implementation and event loop needs in the serving interpreter.
MODULES = {
    "websockets-sansio": "websockets",
    "wsproto": "wsproto",
    "granian": "granian",
    "uvloop": "uvloop",
}
#: Bound on a server's start, from spawning to accepting TCP connections.
READY_TIMEOUT = 60.0
#: Bound on a server's graceful stop before it is killed.
STOP_TIMEOUT = 5.0


@dataclass(frozen=True)
class Variant:
    """One app and how to serve it."""

    name: str
    #: uvicorn's "module:attribute" of the app; or, when `serves_itself`, the module.
    app: str
    #: uvicorn's --lifespan: "on" for the frameworks with startup hooks, "off" for bare apps.
    lifespan: str
    #: The interpreter that serves it (Bocadillo needs its own virtualenv).
    python: Callable[[], Path]
    #: Not an ASGI app: `app` is a module that serves on its own, run as `python -m app
    #: --port N --loop LOOP` (in place of uvicorn or granian); it stops on SIGTERM.
    serves_itself: bool = False


VARIANTS: dict[str, Variant] = {
    variant.name: variant
    for variant in (
        Variant("raw", "benchmarks.apps:raw", "off", project_python),
        Variant("bocws", "benchmarks.apps:bocws", "off", project_python),
        Variant("bocws-view", "benchmarks.apps:bocws_view", "off", project_python),
        Variant("bocws-metrics", "benchmarks.apps:bocws_metrics", "off", project_python),
        Variant("starlette", "benchmarks.apps:starlette", "off", project_python),
        Variant("litestar", "benchmarks.apps:litestar", "on", project_python),
        Variant("bocadillo", "benchmarks.bocadillo_app:app", "on", bocadillo_python),
    )
}


def raise_fd_limit() -> int:
    """Lift this process's soft limit on open files to the hard one; return the new limit.

    One descriptor per connection: the memory benchmark holds thousands. Servers and
    clients started afterwards inherit the limit.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or soft < hard):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    return soft if soft != resource.RLIM_INFINITY else sys.maxsize


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def check_modules(python: Path, implementation: str, loop: str) -> None:
    """Make sure `python` has what uvicorn needs for `implementation` and `loop`.

    Raises:
        SetupError: a module is missing, with the command that installs it.
    """
    modules = [MODULES[name] for name in (implementation, loop) if name in MODULES]
    probe = "import importlib.util, sys; sys.exit(any(importlib.util.find_spec(m) is None "
    probe += f"for m in {modules!r}))"
    if subprocess.run([str(python), "-c", probe], timeout=60, check=False).returncode:
        raise SetupError(
            f"{python} lacks one of {modules}, which serving with {implementation} and "
            f"--loop={loop} needs: {python} -m pip install {' '.join(modules)}"
        )


def server_command(
    python: Path, variant: Variant, implementation: str, loop: str, port: int
) -> list[str]:
    """The command line serving `variant` on 127.0.0.1:`port` with one worker, quietly."""
    if variant.serves_itself:
        return [str(python), "-m", variant.app, f"--port={port}", f"--loop={loop}"]
    if implementation == "granian":
        # "asginl": ASGI without the lifespan protocol, for the bare apps.
        interface = "asgi" if variant.lifespan == "on" else "asginl"
        return [
            str(python),
            "-m",
            "granian",
            f"--interface={interface}",
            "--host=127.0.0.1",
            f"--port={port}",
            "--workers=1",
            f"--loop={loop}",
            "--no-access-log",
            "--log-level=warning",
            variant.app,
        ]
    return [
        str(python),
        "-m",
        "uvicorn",
        variant.app,
        "--host=127.0.0.1",
        f"--port={port}",
        "--workers=1",
        f"--loop={loop}",
        "--http=h11",  # uvicorn's own dependency: present in every interpreter
        f"--ws={implementation}",
        "--ws-per-message-deflate=false",
        f"--lifespan={variant.lifespan}",
        "--no-access-log",
        "--log-level=warning",
        "--timeout-graceful-shutdown=2",
    ]


class Server:
    """One server process (uvicorn, granian, or a variant that serves itself) serving one
    variant on 127.0.0.1, one worker."""

    def __init__(self, variant: Variant, implementation: str, loop: str) -> None:
        self.variant = variant
        self.implementation = implementation
        self.port = free_port()
        python = interpreter(variant.name, variant.python)
        # A file rather than a pipe: a server that logs a lot can never block on it.
        self._log: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 - closed by stop()
        command = server_command(python, variant, implementation, loop, self.port)
        self.process = subprocess.Popen(
            command, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log
        )

    @property
    def pid(self) -> int:
        """The id of the process that serves, whose CPU time and memory the benchmarks
        read: uvicorn's own, or that of a variant that serves itself; granian's one
        worker, a child of a process that only supervises (read once the server
        listens)."""
        if self.implementation != "granian" or self.variant.serves_itself:
            return self.process.pid
        import psutil  # type: ignore[import-untyped,unused-ignore] # in the bench extra

        workers = psutil.Process(self.process.pid).children()
        if len(workers) != 1:
            raise RuntimeError(f"{self}: expected one granian worker, found {len(workers)}")
        worker_pid: int = workers[0].pid
        return worker_pid

    @property
    def url(self) -> str:
        """The WebSocket URL of the echo."""
        return f"ws://127.0.0.1:{self.port}/"

    def wait_ready(self, deadline: float) -> None:
        """Poll the port until the server accepts connections, up to `deadline` (monotonic).

        Raises:
            RuntimeError: the server exited, or did not listen in time; with its log.
        """
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self} exited with {self.process.returncode}:\n{self.log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{self} did not listen in time:\n{self.log()}") from None
                time.sleep(0.05)

    def log(self, limit: int = 4000) -> str:
        """The end of what the server wrote (it writes nothing at all when all goes well)."""
        self._log.seek(0)
        return self._log.read().decode(errors="replace")[-limit:]

    def terminate(self) -> None:
        """Ask the server to stop (SIGTERM: a graceful shutdown)."""
        if self.process.poll() is None:
            self.process.terminate()

    def stop(self) -> str:
        """Stop the server (terminate, then kill if it lingers); return what it wrote."""
        self.terminate()
        try:
            self.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(STOP_TIMEOUT)
        finally:
            log = self.log()
            self._log.close()
        return log

    def __str__(self) -> str:
        served = self.variant.app if self.variant.serves_itself else self.implementation
        return f"{self.variant.name} ({served}, port {self.port})"


@contextlib.contextmanager
def serving(names: Sequence[str], implementation: str, loop: str) -> Iterator[dict[str, Server]]:
    """Start one server per variant at once, wait until all listen; stop them all after.

    The servers are stopped on every exit, Ctrl-C included. Whatever a server wrote to
    its log (a traceback from a view, say) is reported on stderr when it stops. The
    limit on open files is lifted first, for the servers and the load client to inherit.
    """
    raise_fd_limit()
    servers: dict[str, Server] = {}
    for python in {interpreter(name, VARIANTS[name].python) for name in names}:
        check_modules(python, implementation, loop)
    try:
        for name in names:
            servers[name] = Server(VARIANTS[name], implementation, loop)
        deadline = time.monotonic() + READY_TIMEOUT
        for server in servers.values():
            server.wait_ready(deadline)
        yield servers
    finally:
        for server in servers.values():  # all at once: their shutdowns overlap
            server.terminate()
        for server in servers.values():
            log = server.stop()
            if log.strip():
                print(f"[{server} wrote]\n{log}", file=sys.stderr)  # noqa: T201


def job(
    mode: str,
    name: str,
    server: Server,
    connections: int,
    timeout: float,
    size: int = 32,
    **settings: int,
) -> dict[str, Any]:
    """A load client's job (see `loadclient`): `mode` on `connections` connections to
    `server`, serving variant `name`, with `size`-byte messages and the mode's `settings`."""
    return {
        "mode": mode,
        "variant": name,
        "url": server.url,
        "pid": server.pid,
        "size": size,
        "connections": connections,
        **settings,
        "timeout": timeout,
    }


def run_client(
    jobs: list[dict[str, Any]], timeout: float, module: str = "benchmarks.loadclient"
) -> list[dict[str, Any]]:
    """Run `jobs` in a client process of its own (`python -m module`: the load client,
    or another that reads jobs as JSON on stdin and prints a JSON line for each);
    one result per job, in order.

    Raises:
        RuntimeError: the client failed (a lost or altered message, a timeout), with its error.
    """
    command = [str(project_python()), "-m", module]
    with subprocess.Popen(
        command,
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    ) as client:
        try:
            output, errors = client.communicate(json.dumps(jobs), timeout=timeout)
        except BaseException:  # a timeout, Ctrl-C: the client must not outlive the run
            client.kill()
            client.communicate()
            raise
    results = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    if client.returncode != 0 or len(results) != len(jobs):
        raise RuntimeError(
            f"{module} failed ({client.returncode}, {len(results)}/{len(jobs)} jobs):"
            f"\n{errors.strip()[-4000:]}"
        )
    return results


def progress(names: list[str], count: int, label: str = "") -> Iterator[list[str]]:
    """`harness.rounds`, each round's end and duration reported on stderr."""
    for index, order in enumerate(rounds(names, count)):
        started = time.monotonic()
        yield order
        print(  # noqa: T201 - progress
            f"  {label}round {index + 1}/{count} ({time.monotonic() - started:.1f} s)",
            file=sys.stderr,
            flush=True,
        )


def echo_counts(results: Sequence[dict[str, Any]]) -> dict[str, int]:
    """The echoes the load client verified over `results`, and those it expected."""
    return {
        "echoes_verified": sum(result["echoes_verified"] for result in results),
        "echoes_expected": sum(result["echoes_expected"] for result in results),
    }


def spread(values: Sequence[float]) -> dict[str, Any]:
    """The median of `values`, their range, and the values themselves (None if none)."""
    if not values:
        return {"median": None, "min": None, "max": None, "values": []}
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "values": list(values),
    }


def ratios(values: Sequence[float], raw_values: Sequence[float]) -> dict[str, Any]:
    """`spread` of each round's value over raw's value in the same round.

    Rounds where raw measured 0 are left out: on a very short run the server's CPU
    time, counted in clock ticks (10 ms), can be 0.
    """
    pairs = zip(values, raw_values, strict=True)
    return spread([value / raw for value, raw in pairs if raw])


def differences(values: Sequence[float], raw_values: Sequence[float]) -> dict[str, Any]:
    """`spread` of each round's value minus raw's value in the same round."""
    return spread([value - raw for value, raw in zip(values, raw_values, strict=True)])


def format_spread(figures: dict[str, Any], spec: str) -> str:
    """`median [min, max]` of a `spread`, each formatted with `spec`; n/a when empty."""
    if figures["median"] is None:
        return "n/a"
    median, low, high = (format(figures[key], spec) for key in ("median", "min", "max"))
    return f"{median} [{low.strip()}, {high.strip()}]"


def print_table(
    title: str, columns: Sequence[str], widths: Sequence[int], rows: Mapping[str, Sequence[str]]
) -> None:
    """Print `title`, then a line of `columns` and one per row: the row's name, in a column
    as wide as the longest (10 at least), then each cell right-aligned in its width."""
    name_width = max([10, *(len(name) + 1 for name in rows)])

    def line(name: str, cells: Sequence[str]) -> str:
        aligned = (f"{cell:>{width}}" for cell, width in zip(cells, widths, strict=True))
        return f"{name:{name_width}}" + "".join(aligned)

    print(title, flush=True)  # noqa: T201 - the benchmark's report
    print(line("variant", columns))  # noqa: T201
    for name, cells in rows.items():
        print(line(name, cells), flush=True)  # noqa: T201


def exit_with(main: Callable[[], int]) -> NoReturn:
    """Exit with `main()`'s status; with 130 on Ctrl-C, the servers and the client stopped
    by then (see `serving`, `run_client`)."""
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
