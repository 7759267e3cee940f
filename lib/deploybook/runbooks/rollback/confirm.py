"""Runbook 05, before anything changes: what the restore overwrites, and its confirmation.

`overwrite_preview` reads (never writes) the target database's row counts and migrations
next to the snapshot's; `confirm` shows them and asks for the database's name, which the
restore in `deploybook.runbooks.rollback.steps` requires.
"""

from __future__ import annotations

from dataclasses import dataclass

from deploybook.core import render
from deploybook.runbooks.rollback.plan import RollbackPlan
from deploybook.session import runbook as session
from deploybook.session.approvals import Confirmation
from deploybook.session.approvals import confirm as ask
from deploybook.systems.postgres import db


@dataclass
class Overwrite:
    """Exactly what the restore replaces: the database, its rows now and the snapshot's."""

    plan: RollbackPlan
    current_counts: dict[str, int]
    current_migrations: list[str]

    @property
    def snapshot_counts(self) -> dict[str, int]:
        return dict((self.plan.snapshot.inventory or {}).get("row_counts") or {})

    @property
    def removed_migrations(self) -> list[str]:
        """Migrations in the database now that the snapshot does not have."""
        rows = (self.plan.snapshot.inventory or {}).get("prisma_migrations") or []
        kept = {row[0] for row in rows}
        return [m for m in self.current_migrations if m not in kept]

    def rows(self) -> list[tuple[str, int | None, int | None]]:
        names = sorted(set(self.current_counts) | set(self.snapshot_counts))
        return [(t, self.current_counts.get(t), self.snapshot_counts.get(t)) for t in names]

    def to_text(self) -> str:
        return render.overwrite_text(self)

    __repr__ = to_text

    def _repr_html_(self) -> str:
        return render.overwrite_html(self)


def overwrite_preview(run: session.Runbook, plan: RollbackPlan) -> Overwrite:
    """Read (never write) the target's row counts and migrations, next to the snapshot's."""
    url = run.database_url()
    rows = db.prisma_rows(url) or []
    return Overwrite(plan, db.row_counts(url), [r["migration_name"] for r in rows])


def confirm(run: session.Runbook, plan: RollbackPlan, given: str | None) -> Confirmation:
    """Show what the restore overwrites, then ask for the database's name.

    ``given`` is the ``confirm_restore`` parameter; empty means "not given": headless the
    restore is then refused, interactive shows a box to type the name into.
    """
    session.show(overwrite_preview(run, plan))
    return ask(
        f"Type the name of the database to overwrite ({plan.database_at}) to confirm the restore",
        plan.database,
        given or None,
    )
