"""What a rollback's restore discards: the live database against the snapshot's inventory.

A restore puts every table back as it was dumped, so rows written since then are gone
from the target (they survive only in the kept pre-rollback database or the safety dump).
Before restoring, `account()` states it per table: exact row counts now and in the
snapshot, and — where a table has ``created_at``/``updated_at`` columns (snake_case, or
Prisma's camelCase ``createdAt``/``updatedAt`` when a model does not ``@map`` them) — how
many rows were written or updated after the snapshot's newest value, and the newest now.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from psycopg import sql

from deploybook.systems.postgres import db

TIME_COLUMNS = ("created_at", "updated_at", "createdAt", "updatedAt")
_TIME_TYPES = ("timestamp without time zone", "timestamp with time zone", "date")


def time_columns(target: db.Conn | str) -> dict[tuple[str, str], list[str]]:
    """{(schema, table): [time columns]} for user tables that have any."""
    found: dict[tuple[str, str], list[str]] = {}
    with db.using(target) as conn:
        rows = conn.execute(
            "SELECT table_schema, table_name, column_name FROM information_schema.columns "
            "WHERE column_name = ANY(%s) AND data_type = ANY(%s) "
            "AND table_schema NOT IN ('pg_catalog', 'information_schema') "
            "ORDER BY 1, 2, ordinal_position",
            (list(TIME_COLUMNS), list(_TIME_TYPES)),
        ).fetchall()
        tables = set(db.tables(conn))
    for schema, table, column in rows:
        if (schema, table) in tables:
            found.setdefault((schema, table), []).append(column)
    return found


def newest(target: db.Conn | str) -> dict[str, dict[str, str | None]]:
    """{table: {time column: newest value (ISO) or None}}: recorded in each snapshot so a
    rollback can count what was written after it."""
    out: dict[str, dict[str, str | None]] = {}
    with db.using(target) as conn:
        for (schema, table), columns in time_columns(conn).items():
            query = sql.SQL("SELECT {} FROM {}").format(
                sql.SQL(", ").join(sql.SQL("max({})").format(sql.Identifier(c)) for c in columns),
                sql.Identifier(schema, table),
            )
            values = conn.execute(query).fetchone()
            out[db.qualname(schema, table)] = {
                c: (v.isoformat() if v is not None else None)
                for c, v in zip(columns, values, strict=True)
            }
    return out


@dataclass
class DataLoss:
    """Per table: what the restore discards, and where it is kept."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    kept_in: str = ""

    @property
    def discards(self) -> list[dict[str, Any]]:
        return [r for r in self.rows if r["discarded"] or r["written_after"]]

    def summary(self) -> str:
        if not self.discards:
            return "nothing: every table has the snapshot's row count and no newer writes"
        parts = []
        for r in self.discards:
            bits = []
            if r["snapshot_rows"] is None:
                bits.append(f"table not in the snapshot, {r['live_rows']:,} rows")
            else:
                bits.append(f"{r['snapshot_rows']:,} → {r['live_rows']:,} rows")
            if r["written_after"]:
                bits.append(f"{r['written_after']:,} written/updated after the snapshot")
            if r["newest"]:
                bits.append(f"newest {r['newest']}")
            parts.append(f"{r['table']} ({', '.join(bits)})")
        kept = f"; kept in {self.kept_in}" if self.kept_in else ""
        return "; ".join(parts) + kept

    def as_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "kept_in": self.kept_in}


def account(url: str, inventory: dict[str, Any], snapshot_at: str, kept_in: str = "") -> DataLoss:
    """Compare the live database with a snapshot's inventory (see the module docstring).

    Rows counted as "written after" have any time column newer than the snapshot's newest
    value of that column (recorded at dump time), or than ``snapshot_at`` for a snapshot
    that did not record it; a table empty in the snapshot counts every dated row."""
    recorded = inventory.get("newest") or {}
    counts = inventory.get("row_counts") or {}
    loss = DataLoss(kept_in=kept_in)
    with db.using(url) as conn:
        live_counts = db.row_counts(conn)
        columns = time_columns(conn)
        for name in sorted(set(live_counts) | set(counts)):
            live, before = live_counts.get(name), counts.get(name)
            row: dict[str, Any] = {
                "table": name,
                "snapshot_rows": before,
                "live_rows": live if live is not None else 0,
                "discarded": max(0, (live or 0) - (before or 0)),
                "written_after": 0,
                "newest": None,
            }
            key = next((k for k in columns if db.qualname(*k) == name), None)
            if key is not None and live:
                cols = columns[key]
                was = recorded.get(name, {}) if name in recorded else None
                conds = []
                for c in cols:
                    cutoff = was.get(c) if was is not None else snapshot_at
                    conds.append(
                        sql.SQL("{} IS NOT NULL").format(sql.Identifier(c))
                        if cutoff is None
                        else sql.SQL("{} > {}").format(sql.Identifier(c), sql.Literal(cutoff))
                    )
                query = sql.SQL("SELECT count(*) FILTER (WHERE {}), {} FROM {}").format(
                    sql.SQL(" OR ").join(conds),
                    sql.SQL("GREATEST({})").format(
                        sql.SQL(", ").join(
                            sql.SQL("max({})").format(sql.Identifier(c)) for c in cols
                        )
                    ),
                    sql.Identifier(*key),
                )
                after, latest = conn.execute(query).fetchone()
                row["written_after"] = int(after)
                row["newest"] = latest.isoformat() if latest is not None else None
            loss.rows.append(row)
    return loss
