"""Deadline overrun: how far past ``timeout`` each scenario of the fault matrix ends.

Usage: ``python bench/deadline.py RUNS`` (prints JSON). The scenarios are those of
``tests/deadline_matrix.py`` (a stalled get, subscription or token endpoint, 429/503 with
``Retry-After: 30`` on each route, a slow bare-id probe, a refused connection, keep-alives just
under the deadline, a stream that drips bytes without completing an event, the token lock held
by another thread), each waited for with ``timeout=2`` and the library's default retries,
``RUNS`` times, by each of the waits (``wait_for``, ``wait_all`` of two jobs, and both on the
asyncio driver); the refused connection also with ``timeout=None``. For each: seconds taken,
the exception, and the client connections left open afterwards.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from common import emit

from tests.deadline_matrix import SCENARIOS, WAITS, run_scenario

TIMEOUT = 2.0


def main() -> None:
    """Run the matrix and print the JSON results."""
    logging.disable(logging.WARNING)  # the retries' warnings are expected here
    runs = int(sys.argv[1])
    results: dict[str, Any] = {"timeout": TIMEOUT, "scenarios": []}
    for scenario in SCENARIOS:
        for wait in WAITS:
            outcomes = [run_scenario(scenario, TIMEOUT, wait) for _ in range(runs)]
            results["scenarios"].append(
                {
                    "name": scenario.name,
                    "wait": wait,
                    "expected": scenario.expected.__name__,
                    "elapsed": [o.elapsed for o in outcomes],
                    "errors": [type(o.error).__name__ for o in outcomes],
                    "left_open": max(o.left_open for o in outcomes),
                }
            )
    refused = next(s for s in SCENARIOS if s.refused)
    unbounded = [run_scenario(refused, None) for _ in range(runs)]
    results["refused_no_timeout"] = {
        "elapsed": [o.elapsed for o in unbounded],
        "errors": [type(o.error).__name__ for o in unbounded],
        "left_open": max(o.left_open for o in unbounded),
    }
    emit(results)


if __name__ == "__main__":
    main()
