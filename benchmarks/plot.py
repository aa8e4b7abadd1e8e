"""Render the benchmark figure of the docs from the results under docs/benchmarks/.

The left panel is the in-process cost of one message per framework, as a ratio to
raw ASGI measured in the same round (the bar is the median over the rounds, the
error bar the range); the right one, drawn when the end-to-end results exist, is the
server's CPU time per round trip through uvicorn.

Run: `python -m benchmarks.plot` (see `--help`); `python -m benchmarks` calls it last.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display: render to a file, also on a headless machine

import matplotlib.pyplot as plt
from matplotlib.axes import Axes

from .harness import RESULTS

KIND_COLOURS = {"text": "#4c72b0", "bytes": "#55a868", "json": "#c44e52"}


def load(path: Path) -> dict[str, Any] | None:
    """A results file, or `None` when it does not exist."""
    if not path.exists():
        return None
    document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return document


def frameworks(results: dict[str, dict[str, Any]]) -> list[str]:
    """The variants to show, in the order measured; the raw baselines are the 1.0 line."""
    names: list[str] = []
    for by_variant in results.values():
        for name in by_variant:
            if name != "raw" and not name.startswith("raw@") and name not in names:
                names.append(name)
    return names


def plot_in_process(axes: Axes, document: dict[str, Any]) -> None:
    """Grouped bars: per framework, one bar per message kind, ratio to raw."""
    results: dict[str, dict[str, Any]] = document["results"]
    names = frameworks(results)
    kinds = list(results)
    width = 0.8 / max(len(kinds), 1)
    for index, kind in enumerate(kinds):
        positions, medians, below, above = [], [], [], []
        for position, name in enumerate(names):
            figures = results[kind].get(name)
            if figures is None or "ratio_median" not in figures:
                continue
            positions.append(position + (index - (len(kinds) - 1) / 2) * width)
            medians.append(figures["ratio_median"])
            below.append(figures["ratio_median"] - figures["ratio_min"])
            above.append(figures["ratio_max"] - figures["ratio_median"])
        axes.bar(
            positions,
            medians,
            width,
            yerr=[below, above],
            capsize=2,
            label=kind,
            color=KIND_COLOURS.get(kind),
        )
    axes.axhline(1.0, color="black", linewidth=0.8)
    axes.set_xticks(range(len(names)))
    axes.set_xticklabels(names, rotation=30, ha="right")
    axes.set_ylabel("time per message / raw ASGI's")
    messages = document.get("messages")
    per_run = f", {messages:,} per run" if isinstance(messages, int) else ""
    axes.set_title(
        f"In process: the cost of one message{per_run}\n"
        "(median and range over the rounds; Bocadillo against raw in its own interpreter)",
        fontsize=9,
    )
    _legend_above_the_bars(axes, "message")


def _legend_above_the_bars(axes: Axes, title: str) -> None:
    """A legend in a band of its own at the top, so that it hides no bar."""
    bottom, top = axes.get_ylim()
    axes.set_ylim(bottom, top * 1.3)
    axes.legend(title=title, fontsize=7, title_fontsize=8, ncol=3, loc="upper center")


def end_to_end_series(document: dict[str, Any]) -> dict[str, dict[str, dict[str, float]]]:
    """`{"<implementation> <size> B": {variant: {median, min, max}}}` of the server's
    CPU time per round trip, in microseconds."""
    series: dict[str, dict[str, dict[str, float]]] = {}
    for implementation, by_size in document["results"].items():
        for size, measured in by_size.items():
            summary = measured.get("summary", measured)
            series[f"{implementation} {size} B"] = {
                name: figures["server_cpu_us"] for name, figures in summary.items()
            }
    return series


def plot_end_to_end(axes: Axes, document: dict[str, Any]) -> None:
    """Grouped bars: per framework, one bar per (uvicorn implementation, size)."""
    series = end_to_end_series(document)
    names: list[str] = []
    for by_variant in series.values():
        names += [name for name in by_variant if name not in names]
    width = 0.8 / max(len(series), 1)
    for index, (label, by_variant) in enumerate(series.items()):
        positions, medians, below, above = [], [], [], []
        for position, name in enumerate(names):
            if name not in by_variant:
                continue
            figures = by_variant[name]
            positions.append(position + (index - (len(series) - 1) / 2) * width)
            medians.append(figures["median"])
            below.append(figures["median"] - figures["min"])
            above.append(figures["max"] - figures["median"])
        axes.bar(positions, medians, width, yerr=[below, above], capsize=2, label=label)
    axes.set_xticks(range(len(names)))
    axes.set_xticklabels(names, rotation=30, ha="right")
    axes.set_ylabel("server CPU time per round trip (µs)")
    axes.set_title(
        "End to end through uvicorn: server CPU per echo\n(median and range over the rounds)",
        fontsize=9,
    )
    _legend_above_the_bars(axes, "uvicorn --ws, text size")


def render(in_process: dict[str, Any], end_to_end: dict[str, Any] | None, output: Path) -> None:
    """Draw the figure into `output` (PNG)."""
    panels = 1 if end_to_end is None else 2
    figure, axes = plt.subplots(1, panels, figsize=(6.5 * panels, 4.8), squeeze=False)
    plot_in_process(axes[0][0], in_process)
    if end_to_end is not None:
        try:
            plot_end_to_end(axes[0][1], end_to_end)
        except (KeyError, TypeError, AttributeError) as error:  # a results file of another shape
            axes[0][1].set_axis_off()
            message = f"end-to-end results not plotted: unexpected shape ({error!r})"
            print(message, file=sys.stderr)  # noqa: T201 - a warning, the rest is drawn
    figure.tight_layout()
    output.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(output, dpi=120)
    plt.close(figure)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--results", type=Path, default=RESULTS, help="the directory of results-*.json"
    )
    parser.add_argument("--output", type=Path, help="the PNG (default: RESULTS/per-message.png)")
    options = parser.parse_args(argv)
    in_process = load(options.results / "results-inprocess.json")
    if in_process is None:
        print(  # noqa: T201 - the CLI's message
            f"error: no {options.results / 'results-inprocess.json'}: "
            "run python -m benchmarks quick (or full) first",
            file=sys.stderr,
        )
        return 1
    output = options.output or options.results / "per-message.png"
    render(in_process, load(options.results / "results-endtoend.json"), output)
    print(f"wrote {output}")  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
