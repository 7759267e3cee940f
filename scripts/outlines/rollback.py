"""Outline of runbook 05-rollback: (kind, source) cells; markdown quotes the plan."""

from .common import GATE, PARAMETERS, start

NAME = "05-rollback"

# Empty by default: each service returns to the version the 03-rollout record saw before
# deploying. A value sends every service to that version instead.
_PARAMETERS = PARAMETERS.replace(
    'previous_release = "v1.3.0"',
    'previous_release = ""  # empty: each service\'s version from the 03-rollout record',
)

CELLS = [
    (
        "md",
        """
# 05 — Rollback

Deployment plan section **16 Rollback**.

> *If errors or SLAs stay breached for more than 10 minutes, roll back: revert web, API and
> services to the previous release, restore the database snapshot, announce, file the
> incident.*

What to roll back comes from the latest **03-rollout** record of this environment and
release (each service's previous version, the snapshot and its SHA-256, the migrations it
applied) and the breach from the latest **04-smoke** record. Parameters override them:
`previous_release` sends every service to one version, `snapshot` names a snapshot's
`.manifest.json`.

Nothing changes unless `execute = True`, and the database is restored only when
`confirm_restore` is the target database's name. Only one rollout or rollback runs per
environment at a time; a rerun with the same `run_id` resumes after the last finished step.
""",
    ),
    ("parameters", _PARAMETERS + 'confirm_restore = ""\nsnapshot = ""\n'),
    start("05-rollback"),
    (
        "md",
        """
## What will be rolled back

Each service's running version and the one it returns to, the command that does it, the
snapshot to restore and the trigger, with the record each fact came from.
""",
    ),
    (
        "code",
        """
plan = book.rollback.prefill(run, {"snapshot": snapshot, "previous_release": previous_release})
plan
""",
    ),
    (
        "md",
        """
## Confirm the restore

> *Restore the database snapshot.*

Exactly what will be overwritten: the database and its host (never the password), its row
counts now against the snapshot's, and the migrations the restore removes. Type the
database's name (interactive) or pass `confirm_restore` (headless) to allow the restore.
""",
    ),
    ("code", "confirmation = book.rollback.confirm(run, plan, confirm_restore)\nconfirmation"),
    (
        "md",
        """
## 16 Roll back

> *Revert web, API and services to the previous release; restore the database snapshot;
> announce.*

Before anything changes: the snapshot must match its recorded SHA-256 and the restore must
be confirmed. Then, holding the environment's lock: announce (webhook and email), revert
web, then the API, then the other services with the configured rollback commands, take a
safety snapshot of the current database beside this record, and restore the snapshot in
one transaction.
""",
    ),
    ("code", "recovery = book.rollback.revert_and_restore(run, plan, confirmation)\nrecovery"),
    (
        "md",
        """
## Verify

Health and smoke tests at the previous version, every service reporting its previous
version, and the database equal to the snapshot: tables, row counts, `_prisma_migrations`,
extensions, vector dimensions and sequences.
""",
    ),
    ("code", "book.rollback.verify(run, recovery)"),
    (
        "md",
        """
## 17 Incident report and announcement

> *Announce, file the incident.*

The report (timeline, trigger, what was reverted, recovery time, links to the records) is
written beside this record and sent to the incident targets; then the completion is
announced.
""",
    ),
    ("code", "book.rollback.file_incident(run, recovery)"),
    (
        "md",
        """
## 5 Recovery time

> *60-minute rollback window.*

From the start of this runbook to a verified rollback, against the params file's
`schedule.rollback_window_minutes`.
""",
    ),
    ("code", "book.rollback.timeline(run, recovery)"),
    *GATE,
]
