"""bocws against an earlier commit of itself, side by side in one run: the hot path's
cost before and after a change.

The in-process echo of `inprocess.py` (`bocws`, `bocws-receive`, `bocws-view`: the
same fake server, messages and raw baseline) runs with two bocws in one interpreter: the one of
this tree, and the one of `REF`, extracted with `git archive` and imported under
another name (`bocws_before`; its modules import one another relatively, and the run
stops if importing it brought in any other bocws). Every round runs raw, before and
after, in rotated order; each figure is a ratio against raw in the same round, and
"after / before" the ratio of the two bocws figures, round by round.

Run: `python -m benchmarks.versions REF` (see `--help`).
"""

from __future__ import annotations

import argparse
import importlib
import statistics
import subprocess
import sys
import tempfile
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import Any

from .environments import ROOT
from .harness import Entry, alternate, comma_separated, write_json
from .worker import raw, time_run

KINDS = ["text", "bytes", "json"]
VARIANTS = ["bocws", "bocws-receive", "bocws-view"]
BEFORE = "bocws_before"


def load_before(ref: str, into: Path) -> tuple[str, ModuleType]:
    """bocws as it is at `ref`, imported as `bocws_before` from under `into`; with the
    commit's full hash.

    Raises:
        RuntimeError: a bocws was imported already, or importing the old one
            imported another (an absolute import inside it).
    """
    commit = subprocess.run(
        ["git", "rev-parse", "--verify", f"{ref}^{{commit}}"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    archive = subprocess.run(
        ["git", "archive", commit, "bocws"], cwd=ROOT, check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    (into / "bocws").rename(into / BEFORE)
    if "bocws" in sys.modules:
        raise RuntimeError("load the earlier bocws before this one, to tell them apart")
    sys.path.insert(0, str(into))
    module = importlib.import_module(BEFORE)
    if "bocws" in sys.modules:
        raise RuntimeError(f"bocws at {commit[:12]} imports bocws by name: cannot compare")
    return commit, module


def compare(
    variant: Any, before: ModuleType, after: ModuleType, kind: str, count: int, repeats: int
) -> dict[str, Any]:
    """The figures of `variant` (`variant(kind, bocws)` makes the echo of `inprocess.py`
    with the `bocws` module given) on `kind`, before and after, against raw and each
    other."""
    apps = {"raw": raw(kind), "before": variant(kind, before), "after": variant(kind, after)}
    baselines = {"raw": (), "before": ("raw",), "after": ("raw", "before")}
    entries = [
        Entry(name, partial(time_run, app, "echo", kind), baselines[name])
        for name, app in apps.items()
    ]
    return alternate(entries, count, repeats)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("ref", help="the earlier commit (any git revision)")
    parser.add_argument("--messages", type=int, default=100_000, help="messages a run")
    parser.add_argument("--rounds", type=int, default=15, help="rounds, each variant once")
    parser.add_argument("--kinds", type=comma_separated, default=KINDS)
    parser.add_argument("--variants", type=comma_separated, default=VARIANTS)
    parser.add_argument("--json", help="write the results here")
    options = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bocws-before-") as tree:
        commit, before = load_before(options.ref, Path(tree))
        from . import inprocess  # imports this tree's bocws, after the earlier one

        factories = {
            "bocws": lambda kind, bocws: inprocess.bocws(kind, bocws.WebSocket),
            "bocws-receive": lambda kind, bocws: inprocess.bocws_receive(kind, bocws.WebSocket),
            # Metrics off: the view lifecycle as every route without them runs it.
            "bocws-view": lambda kind, bocws: inprocess.bocws_view(kind, view=bocws.websocket_view),
        }
        results = {
            f"{variant}/{kind}": compare(
                factories[variant],
                before,
                sys.modules["bocws"],
                kind,
                options.messages,
                options.rounds,
            )
            for variant in options.variants
            for kind in options.kinds
        }
        files = [before.__file__, sys.modules["bocws"].__file__]
    print(f"bocws at {commit[:12]} (before) and this tree (after); median (min-max)")  # noqa: T201
    print(f"{'':22}{'before / raw':>21}{'after / raw':>21}{'after / before':>21}")  # noqa: T201
    for name, figures in results.items():
        cells = [
            figures["before"]["ratios"]["raw"],
            figures["after"]["ratios"]["raw"],
            figures["after"]["ratios"]["before"],
        ]
        text = "".join(f"{c['median']:>8.3f} ({c['min']:.2f}-{c['max']:.2f})" for c in cells)
        print(f"{name:22}{text}")  # noqa: T201
    if options.json:
        write_json(
            options.json,
            {
                "suite": "versions",
                "before": commit,
                "bocws_files": files,
                "messages": options.messages,
                "rounds": options.rounds,
                "after_over_before_median": statistics.median(
                    figures["after"]["ratios"]["before"]["median"] for figures in results.values()
                ),
                "results": results,
            },
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
