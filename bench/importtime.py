"""Where the cold start goes: ``python -X importtime`` of ``coldstart.py ours``, as a table.

Usage, from the repository root: ``.venv/bin/python bench/importtime.py [RUNS] [ROOT]``
(default 7 runs; ROOT: a checkout of another version to measure, default this one).
Starts the bench server, runs ``coldstart.py ours`` once to warm the caches, then RUNS times
under ``-X importtime`` and prints a markdown table of the median self and cumulative
milliseconds of the modules that matter (requests, waylay_jobs and what it imports beyond
requests), in import order; the dots show how deep each import is nested.
"""

from __future__ import annotations

import re
import statistics
import subprocess
import sys

from common import BENCH, ROOT, bench_server

WATCHED = ("requests", "waylay_jobs", "dataclasses_json", "marshmallow", "sseclient")
LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \| (\s*)(\S+)")


def main() -> None:
    """Print the table."""
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    env = {"PYTHONPATH": sys.argv[2] if len(sys.argv) > 2 else str(ROOT)}
    argv = [sys.executable, "-X", "importtime", "coldstart.py", "ours"]
    rows: dict[str, list[tuple[int, int]]] = {}
    depth: dict[str, int] = {}
    with bench_server() as base:
        subprocess.run([*argv, base], cwd=BENCH, env=env, capture_output=True, check=True)
        for _ in range(runs):
            err = subprocess.run(
                [*argv, base], cwd=BENCH, env=env, capture_output=True, text=True, check=True
            ).stderr
            for match in LINE.finditer(err):
                own, total, indent, name = match.groups()
                rows.setdefault(name, []).append((int(own), int(total)))
                depth.setdefault(name, len(indent) // 2)
    print(f"| module (`-X importtime`, median of {runs}) | self ms | cumulative ms |")
    print("|---|---|---|")
    for name, values in rows.items():
        top = name.split(".")[0]
        if top not in WATCHED or (top == "requests" and name != "requests"):
            continue
        total = statistics.median(t for _, t in values) / 1000
        if total < 1.0 and top != "waylay_jobs":
            continue
        own = statistics.median(s for s, _ in values) / 1000
        print(f"| {'. ' * depth[name]}`{name}` | {own:.1f} | {total:.1f} |")


if __name__ == "__main__":
    main()
