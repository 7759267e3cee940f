"""Outline of runbook 02-migration-dry-run: (kind, source) cells; markdown quotes the plan."""

from .common import GATE, PARAMETERS, start

NAME = "02-migration-dry-run"

CELLS = [
    (
        "md",
        """
# 02 — Migration dry run

Deployment plan section **7 Migrations & backups**.

> *Full snapshot (`pg_dump`) verified by restoring it; Prisma migration status; dry run of
> the pending migrations and raw SQL inside a transaction that is rolled back; pgvector
> dimensions = 1536.*
""",
    ),
    ("parameters", PARAMETERS),
    start("02-migration-dry-run"),
    *GATE,
]
