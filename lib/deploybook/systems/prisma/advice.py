"""The standard fixes for what the dry run measured, each naming its migration and statement.

Only where the fix is standard practice: an index built without CONCURRENTLY on a table
with rows (it blocks writes for the whole build), a table rewritten under ACCESS EXCLUSIVE
(reads and writes wait for the whole copy), a foreign key validated while it blocks writes.
Prisma runs each migration's SQL as written — a one-statement migration outside a
transaction block — so ``CREATE INDEX CONCURRENTLY`` works when it is alone in its migration.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from deploybook.systems.prisma.sqltext import bare_name, index_build, split_sql

_FOREIGN_KEY = re.compile(
    r'^ALTER TABLE (?:IF EXISTS )?(?:ONLY )?((?:(?:"[^"]+"|\w+)\.)?(?:"[^"]+"|\w+)) '
    r"(?!.*\bNOT VALID\b).*\bADD (?:CONSTRAINT \S+ )?FOREIGN KEY\b",
    re.I,
)


def _rows(tables: Mapping[str, Mapping[str, int | None]], table: str) -> int:
    return int(tables.get(table, {}).get("rows") or 0)


def advise(
    runs: Iterable[Mapping[str, Any]],
    tables: Mapping[str, Mapping[str, int | None]],
    big_table_rows: int = 100_000,
) -> list[dict[str, Any]]:
    """One piece of advice per statement that needs it: what, where, why, the fix."""
    out: list[dict[str, Any]] = []
    for r in runs:
        stmts = split_sql(r.get("sql") or "")
        if not stmts or r["outcome"] == "not run":
            continue
        stmt, where = stmts[0], f"{r['unit']} statement {r['index']} (line {r['line']})"
        took = f"{r['duration_s']:.2f} s" + (" or more" if r["outcome"] == "overrun" else "")
        built = index_build(stmt)
        if built and not built[1] and _rows(tables, built[0]):
            table = built[0]
            out.append(
                {
                    "kind": "concurrent index",
                    "migration": r["unit"],
                    "statement": r["index"],
                    "table": table,
                    "advice": f"{where}: {r['gist']} builds on {table} "
                    f"({_rows(tables, table):,} rows) under SHARE, blocking writes for the "
                    f"whole build ({took} on the full-size copy). Use CREATE INDEX "
                    "CONCURRENTLY in a migration of its own (Prisma runs a one-statement "
                    "migration outside a transaction block, as CONCURRENTLY requires)",
                }
            )
        for table in r.get("rewrites", []):
            if _rows(tables, table) >= big_table_rows:
                out.append(
                    {
                        "kind": "expand/contract",
                        "migration": r["unit"],
                        "statement": r["index"],
                        "table": table,
                        "advice": f"{where}: {r['gist']} rewrites {table} "
                        f"({_rows(tables, table):,} rows) under ACCESS EXCLUSIVE, blocking "
                        f"reads and writes for {took}. Expand/contract instead: add the new "
                        "column, backfill it in batches, switch the code to it, and drop the "
                        "old one in a later release",
                    }
                )
        if (fk := _FOREIGN_KEY.search(stmt.code)) and _rows(tables, bare_name(fk[1])):
            table = bare_name(fk[1])
            out.append(
                {
                    "kind": "foreign key NOT VALID",
                    "migration": r["unit"],
                    "statement": r["index"],
                    "table": table,
                    "advice": f"{where}: the new foreign key is checked against every one of "
                    f"{table}'s {_rows(tables, table):,} rows while writes wait ({took}). Add it "
                    "NOT VALID, then VALIDATE CONSTRAINT in a later migration (that only "
                    "blocks DDL)",
                }
            )
    return out
