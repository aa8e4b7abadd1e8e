"""Run every benchmark suite, keep the results under docs/benchmarks/, and plot them.

    python -m benchmarks quick    # every suite in its quick mode (a few minutes)
    python -m benchmarks full     # the full runs the docs quote

Each suite is a module of this package with `main(argv)` taking `--quick` and
`--json PATH`; one that is not there (yet) is reported and skipped, one that fails is
reported and the others still run. The machine's description goes with the results
(`machine.json`), so that the figures are never quoted without it.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import subprocess
import sys
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .environments import BOCADILLO_PYTHON, BOCADILLO_READY, ROOT
from .harness import QUICK_RESULTS, RESULTS, SetupError, Worker, write_json
from .worker import installed_version

#: The suites, in the order they run: the quick in-process ones first.
SUITES = (
    "inprocess",
    "typed",
    "rpc",
    "routing",
    "endtoend",
    "rpc_uvicorn",
    "memory",
    "broadcast",
)
#: The packages whose versions the figures depend on, in the project's interpreter.
PACKAGES = (
    "bocws",
    "starlette",
    "litestar",
    "uvicorn",
    "websockets",
    "wsproto",
    "uvloop",
    "picows",
    "orjson",
    "msgspec",
    "pydantic",
    "pydantic-core",
)
#: ...and in Bocadillo's.
BOCADILLO_PACKAGES = ("bocadillo", "starlette", "uvicorn", "orjson")


def run_suite(name: str, quick: bool, output: Path) -> dict[str, Any]:
    """Run one suite into `output/results-<name>.json`; what happened, and how long.

    A missing module is skipped, a failure (exception or non-zero exit) is recorded:
    neither stops the other suites.
    """
    started = time.monotonic()
    try:
        module = importlib.import_module(f"{__package__}.{name}")
    except ModuleNotFoundError as error:
        if error.name != f"{__package__}.{name}":
            raise  # the suite is there but one of its imports is not: a real error
        print(f"== {name}: benchmarks/{name}.py is absent, skipped", flush=True)  # noqa: T201
        return {"status": "absent"}
    argv = ["--json", str(output / f"results-{name}.json")]
    if quick:
        argv.insert(0, "--quick")
    print(f"== {name} {' '.join(argv)}", flush=True)  # noqa: T201 - progress
    try:
        code = module.main(argv)
    except (Exception, SystemExit) as error:  # one suite's failure must not lose the others
        traceback.print_exc()
        code = error.code if isinstance(error, SystemExit) else 1
    seconds = time.monotonic() - started
    status = "ok" if code in (0, None) else f"failed ({code})"
    print(f"== {name}: {status} in {seconds:.0f} s", flush=True)  # noqa: T201
    return {"status": status, "wall_seconds": round(seconds, 1)}


def cpu_model() -> str:
    """The CPU's model name, as the kernel reports it."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:  # not Linux
        pass
    return platform.processor() or platform.machine()


def bocadillo_versions() -> dict[str, Any] | None:
    """Python and package versions of the Bocadillo virtualenv, if it has been made.

    Not made here: only the suites that need it make it.
    """
    if not BOCADILLO_READY.exists():
        return None
    try:
        with Worker(BOCADILLO_PYTHON) as worker:
            return worker.versions(list(BOCADILLO_PACKAGES))
    except (SetupError, RuntimeError) as error:
        return {"error": str(error)}


def git_commit() -> str | None:
    """The commit the benchmarked code is at, `-dirty` when it has local changes."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        changes = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return commit + ("-dirty" if changes else "")


def machine_info() -> dict[str, Any]:
    """What the figures were measured on: CPU, cores, memory, OS, Python, packages."""
    info: dict[str, Any] = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "cpu_model": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "os": platform.platform(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "packages": {name: installed_version(name) for name in PACKAGES},
        "bocadillo_environment": bocadillo_versions(),
        "git_commit": git_commit(),
    }
    try:
        import psutil  # type: ignore[import-untyped,unused-ignore] # in the bench extra; the rest of the description does without

        info["physical_cores"] = psutil.cpu_count(logical=False)
        info["memory_bytes"] = psutil.virtual_memory().total
    except ImportError:
        pass
    return info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.splitlines()[0]
    )
    parser.add_argument("mode", choices=["quick", "full"])
    parser.add_argument(
        "--suites", default=",".join(SUITES), help=f"comma-separated, among {', '.join(SUITES)}"
    )
    parser.add_argument(
        "--output",
        type=Path,
        help=f"the results directory (full: {RESULTS.relative_to(ROOT)}, which the docs quote; "
        f"quick: {QUICK_RESULTS.relative_to(ROOT)})",
    )
    options = parser.parse_args(argv)
    if options.output is None:
        options.output = RESULTS if options.mode == "full" else QUICK_RESULTS
    suites = [name.strip() for name in options.suites.split(",") if name.strip()]
    unknown = sorted(set(suites) - set(SUITES))
    if unknown:
        parser.error(f"unknown suites {unknown}: choose among {', '.join(SUITES)}")
    started = time.monotonic()
    runs = {name: run_suite(name, options.mode == "quick", options.output) for name in suites}
    info = machine_info()
    info["run"] = {
        "mode": options.mode,
        "suites": runs,
        "wall_seconds": round(time.monotonic() - started, 1),
    }
    write_json(options.output / "machine.json", info)
    from . import plot  # matplotlib only once the measurements are done

    try:
        plotted = plot.main(["--results", str(options.output)])
    except Exception:  # the results are written: a figure that fails must not hide them
        traceback.print_exc()
        plotted = 1
    print(json.dumps(info["run"], indent=2))  # noqa: T201 - the summary
    failed = [name for name, run in runs.items() if run["status"] not in ("ok", "absent")]
    if options.output == RESULTS and not failed and set(suites) == set(SUITES):
        from . import report

        report.write()  # the tables of docs/benchmarks.md, from this run
        print(f"updated the tables of {report.PAGE.relative_to(ROOT)}")  # noqa: T201
    return 1 if failed or plotted else 0


if __name__ == "__main__":
    sys.exit(main())
