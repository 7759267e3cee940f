"""Answers a lead already gave in this kernel: a form whose cell runs again keeps them.

Run All recreates every widget; without this, a sign-off or spot-check form answered a
minute ago would come back empty and the gate could never pass except cell by cell.
The memory lives as long as the kernel (a restarted kernel starts from empty forms).
"""

from __future__ import annotations

from typing import Any

_GIVEN: dict[tuple[Any, ...], Any] = {}


def remember(key: tuple[Any, ...], value: Any) -> None:
    """Keep what the lead recorded in the form identified by ``key``."""
    _GIVEN[key] = value


def recall(key: tuple[Any, ...], default: Any = None) -> Any:
    """What the lead recorded earlier in the form ``key`` (``default`` if nothing)."""
    return _GIVEN.get(key, default)
