"""Argument checks shared by the public functions, so each one says the same thing."""

from __future__ import annotations

import math
from typing import Any

from ._exceptions import InvalidArgument


def is_seconds(value: Any, *, zero_ok: bool = False) -> bool:
    """Whether ``value`` is a finite number of seconds (> 0, or >= 0 with ``zero_ok``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    # nan compares false with everything, and inf would turn a deadline into "never".
    return math.isfinite(value) and (value >= 0 if zero_ok else value > 0)


def check_seconds(name: str, value: Any, *, zero_ok: bool = False) -> float:
    """``value`` as float seconds, or :class:`InvalidArgument` naming ``name``."""
    if not is_seconds(value, zero_ok=zero_ok):
        bound = ">= 0" if zero_ok else "> 0"
        raise InvalidArgument(
            f"expected {name} to be a finite number of seconds {bound}, got {value!r}"
        )
    return float(value)


def check_flag(name: str, value: Any) -> bool:
    """``value`` if it is a bool; a string such as ``"false"`` is refused, not read as true."""
    if not isinstance(value, bool):
        raise InvalidArgument(f"expected {name} to be True or False, got {value!r}")
    return value
