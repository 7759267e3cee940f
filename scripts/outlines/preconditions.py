"""Outline of runbook 01-preconditions: (kind, source) cells; markdown quotes the plan."""

from .common import GATE, PARAMETERS, start

NAME = "01-preconditions"

CELLS = [
    (
        "md",
        """
# 01 — Preconditions

Deployment plan sections **5 Schedule**, **6 Preconditions**, **8 Artifacts**,
**9 Configuration & secrets** and **10 Pre-deploy checklist**.

> *All Epic stories DONE, zero test failures, required secrets configured, external rate
> limits reviewed* — nothing is deployed until every critical check below passes.

This runbook changes nothing. Set the parameters below, or pass them with
`deploybook run 01-preconditions --env ENV --release vX.Y.Z -p NAME VALUE`.
""",
    ),
    ("parameters", PARAMETERS + 'rate_limits_reviewed_by = ""\n'),
    start("01-preconditions"),
    (
        "md",
        """
## 6 — Required secrets configured

> *Secrets configured: DATABASE_URL, OPENAI_API_KEY, GEMINI_API_KEY, CHATMOCK_URL.*

Read from the environment only; reported as set / missing / placeholder / malformed,
never shown.
""",
    ),
    ("code", "run.record(db.preconditions.secrets_configured(run.params))"),
    (
        "md",
        """
## 10 — Health endpoints answering

> *Pre-deploy checklist: health endpoints answering.*
""",
    ),
    ("code", "run.record(db.preconditions.health_endpoints(run.params))"),
    *GATE,
]
