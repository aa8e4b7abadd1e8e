"""Markdown tables of the results under docs/benchmarks/, for docs/benchmarks.md.

Run: `python -m benchmarks.report` prints them; `--write` puts them in
docs/benchmarks.md between its `<!-- results: NAME -->` and `<!-- end -->` markers, so
that the page quotes the last full run and nothing else.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .harness import RESULTS

PAGE = RESULTS.parent / "benchmarks.md"
IN_PROCESS_ORDER = ["bocws", "bocws-receive", "bocws-view", "bocws-metrics", "starlette"]
IN_PROCESS_ORDER += ["starlette-endpoint", "litestar"]
IN_PROCESS_ORDER += ["litestar-listener", "bocadillo"]


def _load(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((RESULTS / f"results-{name}.json").read_text())
    return document


def _spread(median: float, low: float, high: float, digits: int = 2) -> str:
    return f"{median:.{digits}f}x ({low:.{digits}f}-{high:.{digits}f})"


def _ratio(figures: dict[str, Any]) -> str:
    return _spread(figures["ratio_median"], figures["ratio_min"], figures["ratio_max"])


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def in_process() -> str:
    results = _load("inprocess")["results"]
    kinds = list(results)
    header = ["Variant", *[f"{kind}: x raw" for kind in kinds]]
    raw = [
        "raw (ns per message)",
        *[f"{results[kind]['raw']['median_ns']:.0f} ns" for kind in kinds],
    ]
    rows = [raw]
    for name in IN_PROCESS_ORDER:
        if all(name in results[kind] for kind in kinds):
            rows.append([name, *[_ratio(results[kind][name]) for kind in kinds]])
    return _table(header, rows)


def routing() -> str:
    document = _load("routing")
    results = document["results"]
    targets = list(results)
    header = ["Variant", *[f"{target} route: µs, x Starlette's Router" for target in targets]]
    rows = []
    for name in ["bocws", "bocws-metrics", "starlette", "starlette-app", "bocadillo"]:
        if all(name not in results[target] for target in targets):
            continue  # not measured in this run
        cells = [name]
        for target in targets:
            figures = results[target].get(name)
            if figures is None:
                cells.append("")
                continue
            time = f"{figures['median_ns'] / 1000:.1f} µs"
            if name == "starlette":
                cells.append(time)
            else:
                ratios = figures["ratios"]["starlette"]
                cells.append(f"{time}, {_spread(ratios['median'], ratios['min'], ratios['max'])}")
        rows.append(cells)
    return _table(header, rows)


def end_to_end() -> str:
    results = _load("endtoend")["results"]
    sections = []
    for implementation, by_size in results.items():
        sizes = list(by_size)
        header = ["Variant", *[f"{size} B" for size in sizes]]
        names = list(by_size[sizes[0]]["summary"])
        rows = []
        for name in names:
            cells = [name]
            for size in sizes:
                figures = by_size[size]["summary"][name]
                cpu = figures["server_cpu_us"]
                cell = f"{cpu['median']:.1f} µs"
                if name != "raw":
                    to_raw = figures["server_cpu_us_to_raw"]
                    speed = figures["round_trips_per_s_to_raw"]["median"]
                    cell += f", {_spread(to_raw['median'], to_raw['min'], to_raw['max'])}"
                    cell += f"; {speed:.2f}x the round trips"
                cells.append(cell)
            rows.append(cells)
        sections.append(f"`--ws {implementation}`:\n\n" + _table(header, rows))
    return "\n\n".join(sections)


def memory() -> str:
    summary = _load("memory")["summary"]
    rows = []
    for name, figures in summary.items():
        per = figures["bytes_per_connection"]
        over = figures["bytes_over_raw"]
        rows.append(
            [
                name,
                f"{per['median']:,.0f} B ({per['min']:,.0f}-{per['max']:,.0f})",
                ""
                if name == "raw"
                else f"{over['median']:+,.0f} B ({over['min']:+,.0f} to {over['max']:+,.0f})",
            ]
        )
    return _table(["Variant", "Per idle connection", "Over raw"], rows)


def _median_range(figures: dict[str, Any], spec: str) -> str:
    median, low, high = (format(figures[key], spec) for key in ("median", "min", "max"))
    return f"{median} ({low}-{high})"


def broadcast() -> str:
    document = _load("broadcast")
    settings, summary = document["settings"], document["summary"]
    baseline = settings.get("baseline", "memory")  # runs before the baseline was kept
    steady = f"{settings['rate']:g} messages/s"
    caption = (
        f"{settings['subscribers']:,} subscribers; steady: {steady} for "
        f"{settings['duration']:g} s ({settings['rate'] * settings['subscribers']:,.0f} "
        f"deliveries/s); burst: {settings['burst']} messages back to back; "
        f"{settings['rounds']} rounds, `--ws {settings['implementation']}`, "
        f"gc {settings.get('gc', 'on')}; ratios to `{baseline}` round by round."
    )
    header = ["Variant", f"Burst: deliveries/s, x {baseline}", "Server CPU in the burst"]
    header += [f"At {steady}: p50, x {baseline}", f"p99, x {baseline}"]
    header += [f"Server CPU per delivery, x {baseline}", "Lost"]
    header += ["RSS per process", "Redis `used_memory`", "Client CPU (steady, burst)"]
    rows = []
    references = []
    for name, figures in summary.items():
        cells = {
            "capacity_per_s": _median_range(figures["capacity_per_s"], ",.0f"),
            "p50_ms": _median_range(figures["p50_ms"], ".1f") + " ms",
            "p99_ms": _median_range(figures["p99_ms"], ".1f") + " ms",
            "server_cpu_us": _median_range(figures["server_cpu_us"], ".1f") + " µs",
        }
        if name != baseline:  # each figure also as a ratio to the baseline's
            for key in cells:
                ratio = figures[f"{key}_to_{baseline}"]
                cells[key] += f", **{_spread(ratio['median'], ratio['min'], ratio['max'])}**"
        used = figures["redis_used_memory"]
        processes = figures["processes"]
        label = f"{name} ({processes} process{'es' if processes > 1 else ''})"
        if figures.get("reference"):
            label += " *"
            references.append(name)
        rows.append(
            [
                label,
                cells["capacity_per_s"],
                f"{figures['burst_server_cpu_share']['median']:.2f} cores",
                cells["p50_ms"],
                cells["p99_ms"],
                cells["server_cpu_us"],
                f"{figures['lost']} of {figures['expected']:,}",
                f"{figures['rss_per_process_mib']['median']:.0f} MiB",
                "" if used["median"] is None else f"{used['median'] / 2**20:.1f} MiB",
                f"{figures['client_cpu_share']['median']:.0%}, "
                f"{figures['burst_client_cpu_share']['median']:.0%}",
            ]
        )
    table = caption + "\n\n" + _table(header, rows)
    if references:
        table += (
            "\n\n\\* A reference outside ASGI (its own server, not an ASGI app): the floor"
            " of a fan-out in Python, not a peer."
        )
    return table


SECTIONS: dict[str, Callable[[], str]] = {
    "inprocess": in_process,
    "routing": routing,
    "endtoend": end_to_end,
    "memory": memory,
    "broadcast": broadcast,
}


def _filled(table: str) -> Callable[[re.Match[str]], str]:
    return lambda match: match[1] + table + "\n" + match[2]


def write(page: Path = PAGE) -> None:
    """Replace each `<!-- results: NAME -->` ... `<!-- end -->` block of `page`."""
    text = page.read_text(encoding="utf-8")
    for name, render in SECTIONS.items():
        # The block's lines, never reaching into the next block.
        pattern = re.compile(
            rf"(<!-- results: {name} -->\n)(?:(?!<!-- results:).)*?(<!-- end -->)", re.DOTALL
        )
        # A function as the replacement: the table is taken as it is, backslashes too.
        text, count = pattern.subn(_filled(render()), text)
        if count != 1:
            raise SystemExit(f"{page}: no single '<!-- results: {name} -->' block")
    page.write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help=f"update {PAGE.name}")
    options = parser.parse_args(argv)
    if options.write:
        write()
        return 0
    for name, render in SECTIONS.items():
        print(f"## {name}\n\n{render()}\n")  # noqa: T201 - the report
    return 0


if __name__ == "__main__":
    sys.exit(main())
