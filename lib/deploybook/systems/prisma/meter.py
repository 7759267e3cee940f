"""One statement of the dry run, run and measured for what it will cost production.

Each statement runs under its own savepoint, timed, with the locks it took read from
pg_locks (its own session's after it ran; a `LockWatch`'s while it ran when the budget
stopped it) and the tables it rewrote (their relfilenode changed). A statement stopped by
the dry run's ``statement_timeout`` is an overrun — a finding, not an SQL error: the apply
would hold its lock for at least the budget. With ``run_to_completion`` it runs again
without the limit, on the scratch copy only, so its full time is measured.

The dry run is ONE transaction, so a lock an earlier migration took is already held when a
later one needs it and does not show as new; production commits each migration on its
own, so there the lock the SQL needs (`sqltext.expected_locks`) counts again.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

import psycopg

from deploybook.systems.prisma.lockwatch import Lock, LockWatch
from deploybook.systems.prisma.sqltext import Statement, expected_locks, gist

OVERRUN, COMPLETED, OK, ERROR, NOT_RUN = "overrun", "overrun, completed", "ok", "error", "not run"
TABLE_KINDS = ("r", "p", "m")

_OWN_LOCKS = """
    SELECT CASE WHEN n.nspname = 'public' THEN c.relname
                ELSE coalesce(n.nspname || '.', '') || coalesce(c.relname, l.relation::text) END,
           l.mode, coalesce(c.relkind::text, '?')
    FROM pg_locks l LEFT JOIN pg_class c ON c.oid = l.relation
    LEFT JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE l.pid = pg_backend_pid() AND l.locktype = 'relation' AND l.granted
      AND coalesce(n.nspname, '') NOT LIKE 'pg\\_%'
      AND coalesce(n.nspname, '') <> 'information_schema'
"""
_FILES = """
    SELECT CASE WHEN n.nspname = 'public' THEN c.relname ELSE n.nspname || '.' || c.relname END,
           c.relfilenode
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'm') AND n.nspname NOT LIKE 'pg\\_%'
      AND n.nspname <> 'information_schema'
"""


_SIZES = """
    SELECT CASE WHEN n.nspname = 'public' THEN c.relname ELSE n.nspname || '.' || c.relname END,
           pg_total_relation_size(c.oid)
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p', 'm') AND n.nspname NOT LIKE 'pg\\_%'
      AND n.nspname <> 'information_schema'
"""


def table_sizes(conn: psycopg.Connection) -> dict[str, int]:
    """Each table's size on disk with its indexes and TOAST (pg_total_relation_size)."""
    return {r[0]: r[1] for r in conn.execute(_SIZES)}


@dataclass
class StatementRun:
    """One pending statement as the dry run measured it."""

    unit: str
    index: int  # 1-based, in its migration
    line: int
    gist: str
    duration_s: float
    outcome: str = OK
    # (table, pg_locks mode) on tables that existed before the dry run: what traffic meets
    locks: list[tuple[str, str]] = field(default_factory=list)
    observed: bool = True  # False: the locks come from the SQL (held already / not seen)
    rewrites: list[str] = field(default_factory=list)
    new_relations: list[str] = field(default_factory=list)
    budget_s: float | None = None
    sql: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def own_locks(conn: psycopg.Connection) -> set[Lock]:
    """The relation locks this session holds now (system catalogs left out)."""
    return {(r[0], r[1], r[2]) for r in conn.execute(_OWN_LOCKS)}


def _files(conn: psycopg.Connection) -> dict[str, int]:
    return {r[0]: r[1] for r in conn.execute(_FILES)}


def _is_overrun(exc: psycopg.Error) -> bool:
    return exc.sqlstate == "57014" and "statement timeout" in str(exc)


class Meter:
    """Runs and measures statements on the dry run's connection; keeps every `StatementRun`."""

    def __init__(
        self,
        conn: psycopg.Connection,
        existing: set[str],
        budget: str,
        budget_s: float,
        complete: bool = False,
        watch: LockWatch | None = None,
    ) -> None:
        self.conn, self.existing, self.watch = conn, existing, watch
        self.budget, self.budget_s, self.complete = budget, budget_s, complete
        self.runs: list[StatementRun] = []
        self.held: set[Lock] = set()  # own locks after the last statement

    def run(self, unit: str, index: int, stmt: Statement) -> StatementRun:
        """Run ``stmt`` (1-based ``index`` in ``unit``) and measure it. An SQL error is
        recorded and re-raised; an overrun is returned (outcome OVERRUN: not finished)."""
        conn = self.conn
        before, files = own_locks(conn), _files(conn)
        seen: set[Lock] = set()
        outcome = OK
        if self.watch:
            self.watch.begin()
        t0 = time.perf_counter()
        try:
            with conn.transaction():
                conn.execute(stmt.sql.encode())
        except psycopg.Error as exc:
            took = time.perf_counter() - t0
            seen = self.watch.end() if self.watch else set()
            if not _is_overrun(exc):
                self._keep(unit, index, stmt, took, ERROR, before, seen, set(), files, files)
                raise
            if not self.complete:
                self.held = before
                return self._keep(
                    unit, index, stmt, took, OVERRUN, before, seen, set(), files, files
                )
            conn.execute("SELECT set_config('statement_timeout', '0', true)")
            t0, outcome = time.perf_counter(), COMPLETED
            conn.execute(stmt.sql.encode())  # an error here fails the migration as usual
            conn.execute("SELECT set_config('statement_timeout', %s, true)", (self.budget,))
        took = time.perf_counter() - t0
        if self.watch:
            seen |= self.watch.end()
        self.held = own_locks(conn)
        return self._keep(
            unit, index, stmt, took, outcome, before, seen, self.held, files, _files(conn)
        )

    def skipped(self, unit: str, index: int, stmt: Statement) -> StatementRun:
        """A statement the dry run did not run (not allowed in a transaction, after an overrun)."""
        run = StatementRun(unit, index, stmt.line, gist(stmt), 0.0, NOT_RUN, sql=stmt.sql[:300])
        self.runs.append(run)
        return run

    def _keep(
        self,
        unit: str,
        index: int,
        stmt: Statement,
        took: float,
        outcome: str,
        before: set[Lock],
        seen: set[Lock],
        after: set[Lock],
        files: dict[str, int],
        files_after: dict[str, int],
    ) -> StatementRun:
        new = (after | seen) - before
        locks = {
            (rel, mode) for rel, mode, kind in new if kind in TABLE_KINDS and rel in self.existing
        }
        held = {rel for rel, _, _ in before}
        guessed = {
            (t, m) for t, m in expected_locks(stmt).items() if t in self.existing and t in held
        }
        if outcome != OK and not locks:  # stopped before the watch saw it: what the SQL needs
            guessed |= {(t, m) for t, m in expected_locks(stmt).items() if t in self.existing}
        run = StatementRun(
            unit,
            index,
            stmt.line,
            gist(stmt),
            round(took, 4),
            outcome,
            sorted(locks | guessed),
            observed=not (guessed - locks),
            rewrites=sorted(
                t for t, f in files.items() if t in self.existing and files_after.get(t, f) != f
            ),
            new_relations=sorted({rel for rel, _, _ in new if rel not in self.existing}),
            budget_s=self.budget_s if outcome in (OVERRUN, COMPLETED) else None,
            sql=stmt.sql[:300],
        )
        self.runs.append(run)
        return run
