"""Comparing a database's inventory with the one recorded in its snapshot.

Shared by restore verification (02), the parallel restore into a new database (05's swap)
and 05's final check: one definition of "this database equals the snapshot".
"""

from __future__ import annotations

from typing import Any

from deploybook.core.checks import Check, Checks, Status
from deploybook.systems.postgres import fingerprint
from deploybook.systems.postgres.snapshot import SECTION


def compare_inventory(source: dict[str, Any], restored: dict[str, Any], origin: str) -> Checks:
    """Tables, exact row counts, extensions, vector dimensions, `_prisma_migrations` and
    sequences of ``restored`` against ``source``; each a check."""
    checks = Checks()

    def add(name: str, ok: bool, good: str, bad: str, data: Any = None) -> None:
        checks.append(
            Check(
                f"restore: {name}",
                SECTION,
                Status.PASS if ok else Status.FAIL,
                good if ok else bad,
                data=data,
            )
        )

    st, rt = set(source["tables"]), set(restored["tables"])
    add(
        "tables",
        st == rt,
        f"{len(st)} tables in both ({origin})",
        f"missing after restore: {sorted(st - rt)}; unexpected: {sorted(rt - st)}",
    )
    diffs = fingerprint.count_diff(source["row_counts"], restored["row_counts"])
    total = sum(source["row_counts"].values())
    add(
        "row counts",
        not diffs,
        f"{len(source['row_counts'])} tables, {total:,} rows, every count equal",
        "row counts differ: " + "; ".join(diffs),
        data=restored["row_counts"],
    )
    add(
        "extensions",
        source["extensions"] == restored["extensions"],
        ", ".join(f"{k} {v}" for k, v in source["extensions"].items()),
        f"source {source['extensions']} vs restored {restored['extensions']}",
    )
    sv = [list(v) for v in source["vector_columns"]]
    rv = [list(v) for v in restored["vector_columns"]]
    add(
        "vector dimensions",
        sv == rv,
        ", ".join(f"{t}.{c}=vector({d})" for t, c, d in sv) or "no vector columns",
        f"source {sv} vs restored {rv}",
    )
    sp, rp = source["prisma_migrations"], restored["prisma_migrations"]
    if sp is None and rp is None:
        checks.append(
            Check(
                "restore: _prisma_migrations", SECTION, Status.SKIP, "no _prisma_migrations table"
            )
        )
    else:
        add(
            "_prisma_migrations",
            sp == rp,
            f"{len(sp or [])} rows identical",
            f"source has {len(sp or [])} rows, restored {len(rp or [])}; they differ",
        )
    seq_diff = fingerprint.count_diff(source["sequences"], restored["sequences"])
    add(
        "sequences",
        not seq_diff,
        f"{len(source['sequences'])} sequence values equal",
        "sequence values differ: " + "; ".join(seq_diff),
    )
    return checks
