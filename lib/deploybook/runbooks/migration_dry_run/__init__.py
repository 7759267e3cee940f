"""Runbook 02-migration-dry-run: plan section 7, one function per cell."""

from deploybook.runbooks.migration_dry_run.cells import (
    dry_run,
    lint,
    migration_status,
    take_snapshot,
    vector_dimensions,
    verify_snapshot_restore,
)
from deploybook.runbooks.migration_dry_run.impact import impact
from deploybook.runbooks.migration_dry_run.standby import settle as settle_standby

__all__ = [
    "dry_run",
    "impact",
    "lint",
    "migration_status",
    "settle_standby",
    "take_snapshot",
    "vector_dimensions",
    "verify_snapshot_restore",
]
