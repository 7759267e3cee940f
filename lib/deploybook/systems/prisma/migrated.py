"""The database as the pending migrations leave it, measured inside the dry run.

The dry run records, before it rolls back, which extensions exist and every `vector`
column and index with its dimension. Section 7's "pgvector installed" and "dims = 1536"
are judged on this state: a pending migration that creates the extension passes, one
that adds a column of the wrong dimension fails — neither shows on the database as it is.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import psycopg

from deploybook.core.checks import Check, Checks, Status
from deploybook.systems.postgres import db
from deploybook.systems.postgres.db import VectorColumn, VectorIndex

CHECK_NAME = "dry run: migrated state"


@dataclass
class MigratedState:
    """Extensions, vector columns and indexes after the pending migrations (dry run)."""

    extensions: dict[str, str]
    extensions_before: dict[str, str]
    vector_columns: list[VectorColumn]
    vector_indexes: list[VectorIndex]
    row_counts: dict[str, int] = field(default_factory=dict)  # the dry-run database, before
    not_applied: list[str] = field(default_factory=list)  # units that failed in the dry run

    @property
    def new_extensions(self) -> dict[str, str]:
        return {k: v for k, v in self.extensions.items() if k not in self.extensions_before}

    def data(self) -> dict[str, Any]:
        """JSON-able, for the check's data (what the vector and lint cells read back)."""
        d = asdict(self)
        d["vector_columns"] = [c._asdict() for c in self.vector_columns]
        d["vector_indexes"] = [i._asdict() for i in self.vector_indexes]
        return d

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> MigratedState:
        return cls(
            dict(data["extensions"]),
            dict(data.get("extensions_before", {})),
            [VectorColumn(**c) for c in data["vector_columns"]],
            [VectorIndex(**i) for i in data["vector_indexes"]],
            dict(data.get("row_counts", {})),
            list(data.get("not_applied", [])),
        )

    def check(self, section: str) -> Check:
        """The state as a non-critical check, so later cells find it on the run."""
        new = ", ".join(f"{k} {v}" for k, v in self.new_extensions.items())
        cols = ", ".join(f"{c.table}.{c.column}=vector({c.dim or ''})" for c in self.vector_columns)
        skipped = (
            f"; not included (failed in the dry run): {', '.join(self.not_applied)}"
            if self.not_applied
            else ""
        )
        return Check(
            CHECK_NAME,
            section,
            Status.PASS,
            "after the pending migrations, before the rollback: extensions "
            + ", ".join(f"{k} {v}" for k, v in self.extensions.items())
            + (f" (created by the migrations: {new})" if new else "")
            + f"; vector columns: {cols or 'none'}{skipped}",
            critical=False,
            data=self.data(),
        )


def capture(
    conn: psycopg.Connection,
    extensions_before: dict[str, str],
    row_counts: dict[str, int],
    not_applied: list[str],
) -> MigratedState:
    """Measure the state inside the dry run's transaction (before it is rolled back)."""
    return MigratedState(
        db.extensions(conn),
        extensions_before,
        db.vector_columns(conn),
        db.vector_indexes(conn),
        row_counts,
        not_applied,
    )


def vector_checks(state: MigratedState, expected_dim: int, section: str) -> Checks:
    """pgvector present, every vector column ``expected_dim``, every index able to hold it."""
    where = "after the pending migrations (dry run)"
    if "vector" not in state.extensions:
        return Checks(
            [
                Check(
                    "pgvector installed",
                    section,
                    Status.FAIL,
                    f"extension vector is not installed {where}: add "
                    '`CREATE EXTENSION IF NOT EXISTS "vector";` to a migration',
                )
            ]
        )
    made = state.new_extensions.get("vector")
    checks = Checks(
        [
            Check(
                "pgvector installed",
                section,
                Status.PASS,
                f"vector {state.extensions['vector']}"
                + (" (created by a pending migration)" if made else " (already installed)"),
            )
        ]
    )
    checks.extend(
        db.judge_vectors(state.vector_columns, state.vector_indexes, expected_dim, section, where)
    )
    return checks
