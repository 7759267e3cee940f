"""Outline of runbook 03-rollout: (kind, source) cells; markdown quotes the plan."""

from .common import GATE, PARAMETERS, start

NAME = "03-rollout"

CELLS = [
    (
        "md",
        """
# 03 — Rollout

Deployment plan sections **11 Staging rollout**, **13 Production rollout**,
**17 Communications** and **18 Sign-offs**.

> *Staging: build, test, migrate, start services, smoke. Production: announce, scale up,
> apply migrations, deploy API/services, deploy web, flip flags, production smoke.*

Nothing changes unless `execute = True`.
""",
    ),
    ("parameters", PARAMETERS),
    start("03-rollout"),
    *GATE,
]
