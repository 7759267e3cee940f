"""What applying the pending migrations will do to production, from the dry run's measures.

The dry run ran every pending statement on a full-size copy and measured its time and the
locks it took (`meter`). Production applies each migration in its own transaction (Prisma
runs a migration's SQL as written; 03 runs each raw SQL file in one), so a lock taken by
statement k is held until that migration ends: traffic waits for the time of statements
k..n. Per table, those spans add up over the migrations — what a lead needs to read:
"content_chunks: writes blocked ~74.20 s (CREATE INDEX … USING hnsw)".

Which traffic a mode blocks is PostgreSQL's conflict table ("Table-Level Locks"): only
ACCESS EXCLUSIVE conflicts with the ACCESS SHARE of a SELECT; SHARE, SHARE ROW EXCLUSIVE,
EXCLUSIVE and ACCESS EXCLUSIVE conflict with the ROW EXCLUSIVE of INSERT/UPDATE/DELETE;
every mode from SHARE UPDATE EXCLUSIVE up conflicts with other DDL and VACUUM.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from deploybook.systems.prisma.lockclock import mode_name

READS, WRITES, DDL = "reads", "writes", "DDL"
_BLOCKS: dict[str, tuple[str, ...]] = {
    "AccessExclusiveLock": (READS, WRITES, DDL),
    "ExclusiveLock": (WRITES, DDL),
    "ShareRowExclusiveLock": (WRITES, DDL),
    "ShareLock": (WRITES, DDL),
    "ShareUpdateExclusiveLock": (DDL,),
}
_STRENGTH = [
    "AccessShareLock",
    "RowShareLock",
    "RowExclusiveLock",
    "ShareUpdateExclusiveLock",
    "ShareLock",
    "ShareRowExclusiveLock",
    "ExclusiveLock",
    "AccessExclusiveLock",
]


def _whole(seconds: float) -> int:
    """Whole seconds, for ordering: what differs by a second matters, jitter does not (the
    same migrations list in the same order run after run; equal ones by name)."""
    return int(seconds)


def blocks(mode: str) -> tuple[str, ...]:
    """What ordinary traffic a lock mode makes wait: reads, writes, DDL (or nothing)."""
    return _BLOCKS.get(mode, ())


def strongest(modes: Iterable[str]) -> str | None:
    known = [m for m in modes if m in _STRENGTH]
    return max(known, key=_STRENGTH.index) if known else None


@dataclass
class TableImpact:
    """One existing table: how long the apply blocks its reads and writes, and by what."""

    table: str
    rows: int | None
    bytes: int | None
    writes_blocked_s: float = 0.0
    reads_blocked_s: float = 0.0
    at_least: bool = False  # an overrun not measured to its end is in it
    worst: str = ""  # the statement whose lock costs most of it (gist)
    worst_s: float = 0.0  # that lock's span
    where: str = ""  # its migration and statement

    def line(self) -> str:
        """``content_chunks: writes blocked ~74.20 s (CREATE INDEX … USING hnsw)``."""
        approx = "≥" if self.at_least else "~"
        parts = []
        if self.reads_blocked_s:
            parts.append(f"reads and writes blocked {approx}{self.reads_blocked_s:.2f} s")
        if self.writes_blocked_s > self.reads_blocked_s:
            what = "writes blocked" if not parts else "writes alone"
            parts.append(f"{what} {approx}{self.writes_blocked_s:.2f} s")
        return f"{self.table}: {', '.join(parts)} ({self.worst}; {self.where})"


@dataclass
class Impact:
    """Every measured statement, and per table the blocked time, worst first."""

    statements: list[dict[str, Any]]
    tables: list[TableImpact]
    total_s: float
    at_least: bool
    budget_s: float | None
    overruns: list[dict[str, Any]] = field(default_factory=list)

    def lines(self) -> list[str]:
        return [t.line() for t in self.tables]

    def as_dict(self) -> dict[str, Any]:
        return {
            "statements": self.statements,
            "tables": [asdict(t) for t in self.tables],
            "total_s": self.total_s,
            "at_least": self.at_least,
            "budget_s": self.budget_s,
            "overruns": self.overruns,
        }


def statement_rows(
    runs: Iterable[Mapping[str, Any]], tables: Mapping[str, Mapping[str, int | None]]
) -> list[dict[str, Any]]:
    """One row per measured statement: its table (size, rows), lock, what it blocks, time;
    worst first (whole seconds, overruns, blocking reads, then writes; then in order)."""
    rows = []
    for r in runs:
        if r["outcome"] == "not run":
            continue
        by_table: dict[str, list[str]] = {}
        for table, mode in r.get("locks", []):
            by_table.setdefault(table, []).append(mode)
        targets = by_table or {"": []}
        for table, modes in targets.items():
            mode = strongest(modes)
            facts = tables.get(table, {}) if table else {}
            rows.append(
                {
                    "migration": r["unit"],
                    "statement": r["index"],
                    "line": r["line"],
                    "gist": r["gist"],
                    "table": table or "—",
                    "rows": facts.get("rows"),
                    "bytes": facts.get("bytes"),
                    "lock": mode_name(mode) if mode else "—",
                    "blocks": ", ".join(blocks(mode or "")) or "nothing ordinary",
                    "duration_s": r["duration_s"],
                    "outcome": r["outcome"],
                    "rewrite": table in r.get("rewrites", []),
                    "observed": r.get("observed", True),
                }
            )
    severity = {READS: 2, WRITES: 1}
    return sorted(
        rows,
        key=lambda x: (
            -_whole(x["duration_s"]),
            x["outcome"] != "overrun",
            -max((severity.get(b.strip(), 0) for b in x["blocks"].split(",")), default=0),
            x["migration"],
            x["statement"],
        ),
    )


def impact(
    runs: Iterable[Mapping[str, Any]],
    tables: Mapping[str, Mapping[str, int | None]],
    budget_s: float | None = None,
) -> Impact:
    """Per table, the time production's apply blocks its reads and writes (each lock held
    from its statement to its migration's end), worst first; plus the statement rows."""
    runs = [dict(r) for r in runs]
    by_unit: dict[str, list[dict[str, Any]]] = {}
    for r in runs:
        by_unit.setdefault(r["unit"], []).append(r)
    found: dict[str, TableImpact] = {}
    for unit, unit_runs in by_unit.items():
        done = [r for r in unit_runs if r["outcome"] != "not run"]
        for kind in (WRITES, READS):
            spans: dict[str, int] = {}  # table -> first statement blocking it
            for pos, r in enumerate(done):
                for table, mode in r.get("locks", []):
                    if kind in blocks(mode):
                        spans.setdefault(table, pos)
            for table, first in spans.items():
                span = done[first:]
                cause = done[first]  # the statement that took the lock
                t = found.setdefault(
                    table,
                    TableImpact(table, *(tables.get(table, {}).get(k) for k in ("rows", "bytes"))),
                )
                held = round(sum(x["duration_s"] for x in span), 4)
                if kind == WRITES:
                    t.writes_blocked_s = round(t.writes_blocked_s + held, 4)
                else:
                    t.reads_blocked_s = round(t.reads_blocked_s + held, 4)
                t.at_least = t.at_least or any(x["outcome"] == "overrun" for x in span)
                if kind == WRITES and (not t.worst or _whole(held) > _whole(t.worst_s)):
                    t.worst, t.worst_s = cause["gist"], held
                    held_on = ", held to the migration's end" if len(span) > 1 else ""
                    t.where = f"{unit} statement {cause['index']}{held_on}"
    ordered = sorted(
        found.values(),
        key=lambda t: (
            -_whole(max(t.writes_blocked_s, t.reads_blocked_s)),
            not t.at_least,  # stopped by the budget: its true time is longer
            not t.reads_blocked_s,  # reads blocked is worse than writes alone
            t.table,
        ),
    )
    measured = [r for r in runs if r["outcome"] != "not run"]
    overruns = [r for r in measured if r["outcome"] in ("overrun", "overrun, completed")]
    return Impact(
        statement_rows(runs, tables),
        ordered,
        round(sum(r["duration_s"] for r in measured), 3),
        any(r["outcome"] == "overrun" for r in measured),
        budget_s,
        overruns,
    )
