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

Nothing changes unless `execute = True`: a dry run shows every step with the exact command
it would run. `stage` is empty to follow the params file's role (`staging` or
`production`). `resume = True` lets a rerun after a failure or an interruption continue
after the last finished step; no finished step is repeated.
""",
    ),
    ("parameters", PARAMETERS + 'stage = ""\nresume = True\n'),
    start("03-rollout"),
    (
        "md",
        """
## 18 Sign-offs

> *Sign-offs: PM, Web, API, Services, QA — recorded with names and times.*

Headless, the `approvals` parameter gives them (`{"PM": "name", ...}`); in JupyterLab a
form appears: fill it in and click *Record* before running the next cell. Production
needs every role, signed by someone other than the operator.
""",
    ),
    ("code", "signoffs = book.rollout.signoffs(run, approvals)"),
    (
        "md",
        """
## Gates

Production refuses to start unless the same release passed its staging rollout (with the
same artifact SHAs when both 01 records hold them), every sign-off is given, the
approver is not the operator, 02-migration-dry-run took the snapshot the rollback would
restore, the checkout is at the release tag and (when scheduled) now is inside the
deployment window. With `execute = True` a failed gate stops here, before any step.
""",
    ),
    ("code", "gates = book.rollout.check_gates(run, signoffs, stage)"),
    (
        "md",
        """
## 17 Release notes

> *Announce the release with its notes.*

Generated from the status file at the release tag (the epic's Done rows with dates and
points, the decisions since the previous release) and the implementation guide named in
params; written beside this record and attached to the start announcement.
""",
    ),
    ("code", "notes = book.rollout.release_notes(run)"),
    (
        "md",
        """
## 11 / 13 The plan

> *Staging: build web, run web tests, build api and run pytest, migrate the database,
> start services (ChatMock, OCR), smoke. Production: announce start, scale up services
> for warm-up, apply migrations, deploy API/services, deploy web, flip flags, production
> smoke, announce completion.*

Before anything is deployed the running version of every service is recorded (the
rollback reads it). Migrations are applied as `prisma migrate deploy` does, so Prisma
agrees afterwards.
""",
    ),
    ("code", "plan = book.rollout.plan(run, gates.stage, notes)"),
    (
        "md",
        """
## Execute

Under the environment lock (one rollout or rollback per environment at a time); each
step prints its start, end, duration and status, and its command's output, scrubbed.
""",
    ),
    ("code", "result = book.rollout.execute(run, plan, gates, resume=resume)"),
    ("md", "## Summary"),
    ("code", "result"),
    ("code", "result.plot(run.params)"),
    *GATE,
]
