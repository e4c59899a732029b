"""Pytest fixtures for the fake registry (register with ``pytest_plugins`` or ``pytest11``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Callable

import pytest

from ._server import FakeRegistry

#: Defaults of the fixtures: fast scripts (a 1 s step takes 10 ms) and a short heartbeat.
FAST = {"speed": 0.01, "keepalive_interval": 1.0}


@pytest.fixture
def fake_registry() -> Iterator[FakeRegistry]:
    """A started :class:`FakeRegistry` with fast lifecycles; stopped after the test."""
    with FakeRegistry(**FAST) as registry:  # type: ignore[arg-type]
        yield registry


@pytest.fixture
def make_fake_registry() -> Iterator[Callable[..., FakeRegistry]]:
    """A factory: ``make_fake_registry(**options)`` starts a registry (fast defaults,
    overridable); every one is stopped after the test."""
    started: list[FakeRegistry] = []

    def make(**options: Any) -> FakeRegistry:
        registry = FakeRegistry(**{**FAST, **options}).start()
        started.append(registry)
        return registry

    yield make
    for registry in reversed(started):
        registry.stop()
