"""Durations in params files: "2h", "90m", "1h30m", "45s"."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated

from pydantic import BeforeValidator

DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


def parse_duration(text: str) -> timedelta:
    """``"2h"``, ``"90m"``, ``"1h30m"``, ``"45s"`` as a timedelta (ValueError otherwise)."""
    match = DURATION.match(text.strip())
    h, m, s = (int(g or 0) for g in (match.groups() if match else (0, 0, 0)))
    if not (h or m or s):
        raise ValueError(f"a duration longer than zero like '2h', '90m' or '1h30m', not {text!r}")
    return timedelta(hours=h, minutes=m, seconds=s)


# A params duration: a timedelta, or text such as "2h", "90m", "1h30m" (`parse_duration`).
Duration = Annotated[
    timedelta, BeforeValidator(lambda v: parse_duration(v) if isinstance(v, str) else v)
]
