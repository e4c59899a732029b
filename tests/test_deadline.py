"""One deadline for every request of a wait: the fault matrix on the real fake registry.

Each scenario must end with the right exception within the contract's bound (the timeout plus
0.25 s: every read, lock and pause of a wait is cut to the time left, so only the scheduling of
the last step can overrun; measured at 1-35 ms, ``bench/run.py`` reports the figures), and
leave no connection open.
"""

from __future__ import annotations

import pytest

from waylay_jobs import TransportError, WaitTimeout

from .deadline_matrix import SCENARIOS, WAITS, Scenario, run_scenario

#: Short, to keep CI short (the matrix runs the full timeout 56 times): 1 s is still many
#: keep-alives, drips and retries; ``bench/run.py`` runs the same matrix with 2 s.
TIMEOUT = 1.0
#: The contract's bound on how far past its deadline a wait may end.
SLACK = 0.25


@pytest.mark.parametrize("wait", WAITS)
@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_the_wait_ends_at_its_deadline(scenario: Scenario, wait: str) -> None:
    outcome = run_scenario(scenario, TIMEOUT, wait)
    assert isinstance(outcome.error, scenario.expected), outcome.error
    assert outcome.elapsed < TIMEOUT + SLACK
    assert outcome.left_open == 0
    if isinstance(outcome.error, WaitTimeout):
        assert outcome.error.timeout == TIMEOUT
        assert outcome.error.job_type == (None if scenario.bare_id else "build")


@pytest.mark.parametrize(
    "scenario",
    [s for s in SCENARIOS if "Retry-After" in s.name],
    ids=[s.name for s in SCENARIOS if "Retry-After" in s.name],
)
def test_a_retry_after_beyond_the_deadline_ends_the_wait_at_once(scenario: Scenario) -> None:
    outcome = run_scenario(scenario, TIMEOUT)
    assert isinstance(outcome.error, WaitTimeout)
    assert "the server asked to retry after 30s" in str(outcome.error)
    # At once: not at the deadline, and certainly not 30 s later.
    assert outcome.elapsed < TIMEOUT


def test_a_gateway_that_never_answers_is_an_error_without_a_timeout() -> None:
    refused = next(s for s in SCENARIOS if s.refused)
    outcome = run_scenario(refused, None)
    assert isinstance(outcome.error, TransportError)
    assert outcome.error.connect_failed
    assert "ConnectionError" in str(outcome.error)
    assert outcome.elapsed < 10.0
    assert outcome.left_open == 0
