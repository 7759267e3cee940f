"""Outline of runbook 05-rollback: (kind, source) cells; markdown quotes the plan."""

from .common import GATE, PARAMETERS, start

NAME = "05-rollback"

CELLS = [
    (
        "md",
        """
# 05 — Rollback

Deployment plan section **16 Rollback**.

> *If errors or SLAs stay breached for more than 10 minutes, roll back: revert web, API and
> services to the previous release, restore the database snapshot, announce, file the
> incident.*
""",
    ),
    ("parameters", PARAMETERS),
    start("05-rollback"),
    *GATE,
]
