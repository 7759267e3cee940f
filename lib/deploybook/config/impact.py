"""What the dry run measures for production (``database.impact``): the per-statement budget,
whether an overrun is measured to the end, and when the migrations crowd the window.

The dry run runs on a full-size copy, so a statement's time there is what the apply will
cost production. A statement over the budget is a finding ("exceeds 60 s — at least 60 s of
SHARE on content_chunks"), not an SQL error; `run_to_completion` lets it finish on the
scratch copy so the record shows its full time (it then competes with the server's other
work for as long as it runs: on the production server that is production's CPU and I/O).
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field

_TIMEOUT = re.compile(r"^(\d+(?:\.\d+)?)\s*(ms|s|min)?$")
_UNIT_S = {"ms": 0.001, "s": 1.0, "min": 60.0, None: 0.001}  # PostgreSQL: bare = ms


def timeout_seconds(value: str | int | float) -> float:
    """A PostgreSQL timeout setting ("60s", "500ms", "1min", 5000 = ms) in seconds."""
    if isinstance(value, int | float):
        return float(value) / 1000
    match = _TIMEOUT.match(str(value).strip())
    if not match:
        raise ValueError(f"a timeout like '60s', '500ms' or '2min', not {value!r}")
    return float(match[1]) * _UNIT_S[match[2]]


class ImpactSpec(BaseModel):
    """``database.impact``: the dry run's budget per statement and the window warning."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # How long one statement may run in the dry run before it is an overrun finding
    # (a PostgreSQL timeout: "60s", "500ms", "2min"); unset: database.statement_timeout.
    statement_budget: str | None = Field(None, pattern=r"^\d+(ms|s|min)?$")
    # Let an overrun finish on the scratch copy (never on the live database) to measure it.
    run_to_completion: bool = False
    # Warn when the migrations alone take more than this share of the deployment window.
    window_share_warn: float = Field(0.25, gt=0, le=1)
    # A table rewrite (ALTER … TYPE, a volatile default) on at least this many rows gets
    # the expand/contract advice.
    big_table_rows: int = Field(100_000, ge=0)
