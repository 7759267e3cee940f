"""Failed migrations as Prisma reports them: the P3009 refusal and `prisma migrate resolve`.

A `_prisma_migrations` row with neither `finished_at` nor `rolled_back_at` is a failed
migration: `prisma migrate deploy` refuses to apply anything (P3009) until an operator says
what really happened with `prisma migrate resolve --rolled-back` or `--applied`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from deploybook.systems.prisma.migrations import AppliedRow


def utc(value: datetime | str) -> str:
    """A timestamp as Prisma prints it (UTC, microseconds)."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f UTC")
    return str(value)


def resolve_guidance(name: str) -> str:
    """What `prisma migrate resolve` does with a failed migration, and when to use which."""
    return (
        f"Resolve it first: `prisma migrate resolve --rolled-back {name}` if none of its "
        "changes are in the database (a migration run in one transaction is rolled back whole "
        "when it fails or is killed; one run outside a transaction may have left part, which "
        "you revert by hand first), then fix it if needed: the next deploy applies it again; or "
        f"`prisma migrate resolve --applied {name}` if all its changes are there (finished by "
        "hand, or committed just before the crash): it is recorded as applied and never run."
    )


def _failed_detail(row: AppliedRow) -> str:
    logs = (row.logs or "").strip()
    return f"The `{row.migration_name}` migration started at {utc(row.started_at)} failed" + (
        f" with the following logs:\n\n{logs}"
        if logs
        else " (no logs: the process applying it stopped before recording an outcome - "
        "killed, or its connection lost)"
    )


def p3009(rows: Sequence[AppliedRow]) -> str:
    """Prisma's refusal text for the failed rows (so operators recognise it), then what
    to do about each."""
    return (
        "P3009: migrate found failed migrations in the target database, new migrations will not "
        "be applied. Read more about how to resolve migration issues in a production database: "
        "https://pris.ly/d/migrate-resolve\n"
        + "\n".join(_failed_detail(r) for r in rows)
        + "\n\nNothing was applied. "
        + " ".join(resolve_guidance(r.migration_name) for r in rows)
    )
