"""The method of the in-process suites: variants taking turns, medians, ratios.

A suite is a set of `Entry`s, each a way to time one run of one variant. They run in
rounds, the order rotated each round so that no variant always runs first (after a
garbage collection, or with the caches warmest), and each figure is also divided by
its baseline's figure from the same round: on a noisy shared machine the absolute
times drift, the ratios much less.

Every suite, in process or through servers, also takes its common options from here
(`suite_options`).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from .environments import ROOT, VENVS, bocadillo_python
from .worker import App, build, time_run

#: Where the results land, for the docs to cite.
RESULTS = ROOT / "docs" / "benchmarks"
#: Where quick runs go, so that they never replace the full run the docs quote.
QUICK_RESULTS = ROOT / "benchmarks" / "results-quick"
#: What one iteration is, per suite of the worker, for the report.
UNITS = {"echo": "message", "connect": "connection"}

_Worker = TypeVar("_Worker", bound="Worker")


class SetupError(RuntimeError):
    """A variant cannot be run here (its interpreter could not be made or started)."""


@dataclass(frozen=True)
class Entry:
    """One variant of a suite: `run(count)` times `count` iterations, in ns each."""

    name: str
    run: Callable[[int], float]
    #: Names of the entries this one's ratios are taken against, in the same round.
    baselines: tuple[str, ...] = ()


def rounds(names: list[str], count: int) -> Iterator[list[str]]:
    """The order of each round: rotated, so that no variant always runs first."""
    for shift in range(count):
        yield names[shift % len(names) :] + names[: shift % len(names)]


def alternate(entries: list[Entry], count: int, repeats: int) -> dict[str, dict[str, Any]]:
    """Per entry: ns per iteration in each of `repeats` rounds, and its ratios.

    Every entry first runs once on a few iterations, so that imports, caches and
    first-call costs stay out of the measured rounds.
    """
    by_name = {entry.name: entry for entry in entries}
    for entry in entries:
        entry.run(min(count, 1000))
    timings: dict[str, list[float]] = {entry.name: [] for entry in entries}
    for order in rounds(list(by_name), repeats):
        for name in order:
            timings[name].append(by_name[name].run(count))
    return {
        entry.name: summary(
            timings[entry.name],
            {base: timings[base] for base in entry.baselines if base in timings},
        )
        for entry in entries
    }


def summary(values: list[float], baselines: dict[str, list[float]]) -> dict[str, Any]:
    """Median, min and max of `values`, and per baseline the ratios round by round.

    The first baseline's ratios are also given flat (`ratio_median`...), as the figure
    to quote.
    """
    figures: dict[str, Any] = {
        "ns": values,
        "median_ns": statistics.median(values),
        "min_ns": min(values),
        "max_ns": max(values),
    }
    ratios: dict[str, dict[str, Any]] = {}
    for name, base_values in baselines.items():
        each = [value / base for value, base in zip(values, base_values, strict=True)]
        ratios[name] = {
            "ratios": each,
            "median": statistics.median(each),
            "min": min(each),
            "max": max(each),
        }
    if ratios:
        first = next(iter(ratios.values()))
        figures.update(
            baseline=next(iter(ratios)),
            ratio_median=first["median"],
            ratio_min=first["min"],
            ratio_max=first["max"],
            ratios=ratios,
        )
    return figures


def write_json(path: str | Path, document: dict[str, Any]) -> None:
    """Write a suite's results, making the directory if needed."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")


class Worker:
    """A long-lived `benchmarks.worker` process in another interpreter.

    Parameters:
        python: the interpreter to run it with.

    Raises:
        SetupError: the process could not start, or stopped answering.

    Example:
        >>> with Worker(bocadillo_python()) as worker:
        ...     worker.run("echo", "bocadillo", "text", 1000)
    """

    def __init__(self, python: Path) -> None:
        self.python = python
        try:
            self._process = subprocess.Popen(
                [str(python), "-m", "benchmarks.worker"],
                cwd=ROOT,  # `-m` finds this package from here, whatever the interpreter
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
        except OSError as error:
            raise SetupError(f"cannot start a benchmark worker with {python}: {error}") from error

    def ask(self, request: dict[str, Any]) -> dict[str, Any]:
        """Send one request; the worker's answer.

        Raises:
            SetupError: the worker has exited.
            RuntimeError: the worker failed to do what was asked (its error inside).
        """
        assert self._process.stdin is not None
        assert self._process.stdout is not None
        try:
            self._process.stdin.write(json.dumps(request) + "\n")
            self._process.stdin.flush()
        except BrokenPipeError as error:
            raise SetupError(f"the worker of {self.python} has exited") from error
        line = self._process.stdout.readline()
        if not line:
            raise SetupError(
                f"the worker of {self.python} exited (code {self._process.poll()}); "
                "its stderr above says why"
            )
        reply: dict[str, Any] = json.loads(line)
        if "error" in reply:
            raise RuntimeError(f"worker of {self.python}, {request}: {reply['error']}")
        return reply

    def run(self, suite: str, variant: str, key: str, count: int) -> float:
        """Ns per message (`echo`, `key` a kind) or per connection (`connect`, `key` a
        target) for one run of `variant`."""
        request = {"op": "run", "suite": suite, "variant": variant, "key": key, "count": count}
        return float(self.ask(request)["ns"])

    def transcript(self, suite: str, variant: str, key: str, count: int) -> list[dict[str, Any]]:
        """Every message `variant` sends for one run, bytes restored."""
        request = {
            "op": "transcript",
            "suite": suite,
            "variant": variant,
            "key": key,
            "count": count,
        }
        sent: list[dict[str, Any]] = self.ask(request)["sent"]
        return [
            {
                name: bytes.fromhex(value["hex"]) if isinstance(value, dict) else value
                for name, value in message.items()
            }
            for message in sent
        ]

    def versions(self, packages: list[str]) -> dict[str, Any]:
        """The worker's Python version and the versions of `packages` there."""
        return self.ask({"op": "versions", "packages": packages})

    def close(self) -> None:
        """End the worker: it stops at the end of its input."""
        if self._process.stdin is not None:
            self._process.stdin.close()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        if self._process.stdout is not None:
            self._process.stdout.close()

    def __enter__(self: _Worker) -> _Worker:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


#: The variants that run in another interpreter, with the function giving it.
WORKER_INTERPRETERS: dict[str, Callable[[], Path]] = {"bocadillo": bocadillo_python}


def interpreter(variant: str, make: Callable[[], Path]) -> Path:
    """The interpreter `make()` gives `variant`, making its virtualenv if needed.

    Raises:
        SetupError: the virtualenv could not be made, with what to do instead.
    """
    try:
        return make()
    except (OSError, subprocess.CalledProcessError) as error:
        raise SetupError(
            f"the {variant!r} variant needs its own virtualenv under {VENVS}, and making it "
            f"failed: {error}. Leave {variant!r} out of --variants, or make it by hand: "
            "python -m benchmarks.environments"
        ) from error


def start_worker(variant: str) -> Worker:
    """A worker in the interpreter of `variant`, making its virtualenv if needed.

    Raises:
        SetupError: the virtualenv could not be made, with what to do instead.
    """
    return Worker(interpreter(variant, WORKER_INTERPRETERS[variant]))


@contextmanager
def workers_for(names: list[str]) -> Iterator[dict[str, Worker]]:
    """A worker for each of `names` that runs in an interpreter of its own, all ended
    on exit.

    Raises:
        SetupError: an interpreter could not be made or started.
    """
    with ExitStack() as stack:
        yield {
            name: stack.enter_context(start_worker(name))
            for name in names
            if name in WORKER_INTERPRETERS
        }


def worker_raw(variant: str) -> str:
    """The name of the raw baseline measured in `variant`'s interpreter."""
    return f"raw@{variant}"


def suite_entries(
    suite: str,
    key: str,
    names: list[str],
    factories: Mapping[str, Callable[..., App]],
    workers: Mapping[str, Worker],
    second_baseline: str | None = None,
) -> list[Entry]:
    """The entries of one measurement of `suite` ("echo" or "connect", see `worker`) on
    `key`: each variant of `names` against raw (and `second_baseline`); a worker's
    variant against the raw of its own worker, that raw itself against the harness's.

    A local variant's app is made by `factories[name]` once, outside the timed runs.
    """
    extra = () if second_baseline is None else (second_baseline,)
    result: list[Entry] = []
    for name in names:
        if name in workers:
            run = partial(workers[name].run, suite)
            result.append(Entry(worker_raw(name), partial(run, "raw", key), ("raw",)))
            result.append(Entry(name, partial(run, name, key), (worker_raw(name), *extra)))
        else:
            app = build(factories[name], suite, key)
            baselines = () if name == "raw" else tuple(b for b in ("raw", *extra) if b != name)
            result.append(Entry(name, partial(time_run, app, suite, key), baselines))
    return result


def measure_and_report(
    suite: str,
    factories: Mapping[str, Callable[..., App]],
    keys: list[str],
    names: list[str],
    count: int,
    repeats: int,
    *,
    document: dict[str, Any],
    json_path: str | None,
    second_baseline: str | None = None,
) -> int:
    """Measure `names` on each of `keys`, `count` iterations a run and `repeats` rounds
    (see `suite_entries`), print the report, and write `document` with the results to
    `json_path` if given. The workers the variants need run for the measurement only.

    Returns the command's exit status: 2 when a variant's interpreter could not be made
    or started, with the reason on stderr.
    """
    try:
        with workers_for(names) as workers:
            results = {
                key: alternate(
                    suite_entries(suite, key, names, factories, workers, second_baseline),
                    count,
                    repeats,
                )
                for key in keys
            }
    except SetupError as error:
        print(f"error: {error}", file=sys.stderr)  # noqa: T201 - the CLI's message
        return 2
    report(results, UNITS[suite])
    if json_path:
        write_json(json_path, {**document, "results": results})
    return 0


def comma_separated(text: str) -> list[str]:
    """The names of a comma-separated option, blanks left out."""
    return [name.strip() for name in text.split(",") if name.strip()]


def variant_names(requested: str, known: Sequence[str]) -> list[str]:
    """The requested variants (comma-separated), raw first: every ratio needs it.

    Raises:
        SystemExit: a name is unknown, with the known ones.
    """
    names = comma_separated(requested)
    unknown = [name for name in names if name not in known]
    if unknown:
        raise SystemExit(f"unknown variants {unknown}: choose among {', '.join(known)}")
    return ["raw", *[name for name in dict.fromkeys(names) if name != "raw"]]


def suite_options(
    parser: argparse.ArgumentParser,
    argv: list[str] | None,
    variants: Sequence[str],
    defaults: Mapping[str, tuple[int, int]],
) -> tuple[argparse.Namespace, list[str]]:
    """Parse `argv` with a suite's own options and those of every suite: `--variants`,
    `--quick` and `--json`.

    `defaults` gives each option it names, when left out, a value for a full run and
    one for a quick run. Returns the options and the variants asked for, raw first.

    Raises:
        SystemExit: the command line is wrong, or names an unknown variant.
    """
    short_run = ", ".join(
        f"--{name.replace('_', '-')} {short:,}" for name, (_, short) in defaults.items()
    )
    parser.add_argument("--variants", default=",".join(variants), help="comma-separated")
    parser.add_argument("--quick", action="store_true", help=f"a short run: {short_run}")
    parser.add_argument("--json", help="write every round's figures to this file")
    options = parser.parse_args(argv)
    for name, (full, short) in defaults.items():
        if getattr(options, name) is None:
            setattr(options, name, short if options.quick else full)
    return options, variant_names(options.variants, variants)


def report(results: dict[str, dict[str, Any]], unit: str) -> None:
    """Print each variant's median and its ratios to its baselines, with their range."""
    for key, by_variant in results.items():
        for name, figures in by_variant.items():
            line = f"{key:6} {name:20} {figures['median_ns']:9.0f} ns/{unit}"
            for base, ratio in figures.get("ratios", {}).items():
                line += f"  {ratio['median']:5.2f}x {base} ({ratio['min']:.2f}-{ratio['max']:.2f})"
            print(line)  # noqa: T201 - the benchmark's report
