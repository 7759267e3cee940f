"""Runbook 05: roll back a release (plan section 16), one function per notebook cell.

- `prefill` reads what to roll back from the latest 03-rollout record (previous version
  of each service, the snapshot and its SHA-256, the migrations applied) and the latest
  04-smoke breach; parameters override each fact (`rollback_plan`).
- `confirm` shows exactly what the restore overwrites and asks for the database's name
  (`confirm`).
- `revert_and_restore` refuses before changing anything (snapshot SHA-256, confirmation,
  the rollout's lock), then announces, reverts web, API and services, states what the
  restore discards and restores the database — by swap (parallel restore into a new
  database, verified, renamed over the target; the old one kept) or in place — as
  resumable steps of one attempt per release (`steps`, `database`, `attempts`).
- `verify` checks health, smoke at the previous version and the database against the
  snapshot; `file_incident` writes and sends the incident report and glues the
  ``rollback`` scrap; `timeline` plots the recovery against the rollback window
  (`rollback_report`).

Nothing changes without ``execute=True``, and the restore also needs ``confirm_restore``
equal to the target database's name.
"""

from deploybook.core.render import describe_breach
from deploybook.runbooks.rollback.confirm import Overwrite, confirm, overwrite_preview
from deploybook.runbooks.rollback.plan import (
    Revert,
    RollbackPlan,
    prefill,
    snapshot_from_path,
)
from deploybook.runbooks.rollback.report import file_incident, plot_recovery, timeline
from deploybook.runbooks.rollback.steps import Recovery, revert_and_restore, verify
from deploybook.runbooks.smoke.suite import running_versions

__all__ = [
    "Overwrite",
    "Recovery",
    "Revert",
    "RollbackPlan",
    "confirm",
    "describe_breach",
    "file_incident",
    "overwrite_preview",
    "plot_recovery",
    "prefill",
    "revert_and_restore",
    "running_versions",
    "snapshot_from_path",
    "timeline",
    "verify",
]
