"""The provably harmless dry run of pending migrations and raw SQL.

Everything runs in ONE transaction that is always rolled back, with a savepoint per
migration so each gets its own verdict and later ones still run after a failure. The
proof that nothing changed is measured from outside that transaction: the schema
fingerprint and exact row counts before and after must be identical.

Statements PostgreSQL refuses inside a transaction (CREATE INDEX CONCURRENTLY, VACUUM,
...) and transaction control (COMMIT would end the rollback-only transaction) are found
by reading the SQL first and are reported, never executed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from deploybook.config.impact import timeout_seconds as _seconds
from deploybook.core.checks import Check, Checks, Status
from deploybook.core.secrets import scrub
from deploybook.errors import DatabaseError
from deploybook.systems.postgres import db, fingerprint
from deploybook.systems.prisma import migrated
from deploybook.systems.prisma.diagnosis import (
    UnitResult,
    classify,
    drift_check,
    error_info,
    evidence,
    tables_created,
)
from deploybook.systems.prisma.lockclock import LockClock, LockHold
from deploybook.systems.prisma.lockwatch import LockWatch
from deploybook.systems.prisma.meter import (
    COMPLETED,
    OVERRUN,
    Meter,
    StatementRun,
    own_locks,
    table_sizes,
)
from deploybook.systems.prisma.migrated import MigratedState
from deploybook.systems.prisma.migrations import SECTION, LocalMigration
from deploybook.systems.prisma.schema import read_schema
from deploybook.systems.prisma.sqltext import (
    Statement,
    created_extensions,
    non_transactional,
    split_sql,
    touched_tables,
)

__all__ = ["DryRunReport", "MigratedState", "UnitResult", "dry_run"]

_RELATIONS = """
    SELECT CASE WHEN n.nspname = 'public' THEN c.relname ELSE n.nspname || '.' || c.relname END
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema'
"""


@dataclass
class DryRunReport:
    results: list[UnitResult]
    checks: Checks
    fingerprint_before: str
    fingerprint_after: str
    row_counts_before: dict[str, int]
    row_counts_after: dict[str, int]
    migrated: MigratedState | None = None
    # Each lock the dry run took, how long it was held (until the transaction or a failed
    # migration's savepoint ended), worst first: what traffic waited for on a live run.
    lock_holds: list[LockHold] = field(default_factory=list)
    # Each pending statement as measured (time, locks, rewrites, overruns): the impact.
    statements: list[StatementRun] = field(default_factory=list)
    tables: dict[str, dict[str, int | None]] = field(default_factory=dict)  # rows, bytes
    budget_s: float | None = None

    @property
    def harmless(self) -> bool:
        return (
            self.fingerprint_before == self.fingerprint_after
            and self.row_counts_before == self.row_counts_after
        )

    @property
    def ok(self) -> bool:
        return self.checks.ok

    def _repr_html_(self) -> str:
        return self.checks._repr_html_()


def _run_unit(
    conn: psycopg.Connection,
    unit: LocalMigration,
    stmts: list[Statement],
    res: UnitResult,
    server_num: int,
    available: set[str],
    clock: LockClock,
    meter: Meter,
) -> None:
    held = own_locks(conn)
    new: set[tuple[str, str, str]] = set()
    runnable = []
    for i, stmt in enumerate(stmts):
        why = non_transactional(stmt, server_num)
        if why:
            res.skipped.append(
                {
                    "statement_index": i + 1,
                    "line": stmt.line,
                    "reason": why,
                    "statement": stmt.sql[:200],
                }
            )
            meter.skipped(unit.name, i + 1, stmt)
        else:
            runnable.append((i, stmt))
    missing_ext = [e for s in stmts for e in created_extensions(s) if e not in available]
    res.missing_extensions = []
    tables: set[str] = set()
    try:
        with conn.transaction():  # a SAVEPOINT inside the dry run's transaction
            for n, (i, stmt) in enumerate(runnable):
                since = time.monotonic()
                try:
                    measured = meter.run(unit.name, i + 1, stmt)
                except psycopg.Error as exc:
                    res.error = error_info(exc, stmt, i)
                    if missing_ext and exc.sqlstate in {"0A000", "58P01", "42704"}:
                        res.missing_extensions = missing_ext
                        res.error["hint"] = (
                            f"extension(s) {', '.join(missing_ext)} not available "
                            "on this server (pg_available_extensions)"
                        )
                    raise
                tables |= {t.removeprefix("public.") for t in touched_tables(stmt)}
                if measured.outcome == OVERRUN:  # a finding: the rest is not proven
                    res.overrun = {
                        **measured.as_dict(),
                        "not_run": [j + 1 for j, _ in runnable[n + 1 :]],
                    }
                    for j, rest in runnable[n + 1 :]:
                        meter.skipped(unit.name, j + 1, rest)
                    break
                if measured.outcome == COMPLETED:
                    res.overrun = measured.as_dict()
                now = meter.held
                clock.taken(now, since, unit.name, i + 1)
                new |= now - held
    except psycopg.Error:
        # Rolled back to the savepoint (its locks with it); the next migration still runs.
        clock.released(own_locks(conn), time.monotonic(), "its savepoint was rolled back")
    res.locks = sorted({(rel, mode) for rel, mode, _ in new})
    tables |= {rel for rel, _, kind in new if kind in ("r", "p")}
    res.tables = sorted(tables)


def _retry(
    conn: psycopg.Connection,
    stmts: list[Statement],
    res: UnitResult,
    server_num: int,
    clock: LockClock,
) -> None:
    """Run a failed unit once more, after all the others, in its own savepoint: success
    means it only failed for its place in the order."""
    res.retried = True
    probe = UnitResult(res.name, res.kind)
    try:
        with conn.transaction():
            for i, stmt in enumerate(stmts):
                if non_transactional(stmt, server_num):
                    continue
                since = time.monotonic()
                try:
                    conn.execute(stmt.sql.encode())
                except psycopg.Error as exc:
                    probe.error = error_info(exc, stmt, i)
                    raise
                clock.taken(own_locks(conn), since, f"{res.name} (retried)", i + 1)
    except psycopg.Error:
        clock.released(own_locks(conn), time.monotonic(), "its retry's savepoint was rolled back")
    res.retry_error = probe.error


def _measure(conn: psycopg.Connection) -> tuple[dict, dict[str, int], dict[str, int | None]]:
    try:
        return fingerprint.schema_catalog(conn), db.row_counts(conn), db.sequences(conn)
    except DatabaseError as exc:
        raise DatabaseError(
            f"dry run could not measure the database (nothing was run): {exc}"
        ) from exc


def dry_run(
    url: str,
    pending: Sequence[LocalMigration],
    raw_sql: Sequence[LocalMigration] = (),
    *,
    lock_timeout: str | int = "5s",
    statement_timeout: str | int = "60s",
    progress: Callable[[str], None] | None = None,
    section: str = SECTION,
    schema: Path | None = None,
    history: Sequence[LocalMigration] | None = None,
    complete: bool = False,
) -> DryRunReport:
    """Apply ``pending`` then ``raw_sql`` in one rolled-back transaction; report each
    (ok / error with SQLSTATE, statement, line / skipped with reason, locks, tables), retry
    each failure once after all the others (ordering errors), record the migrated state
    (extensions, vector columns) before rolling back, and prove by fingerprint and row
    counts that the database is unchanged.

    ``schema`` (default: schema.prisma beside the migrations folder) and ``history`` (default:
    every migration.sql and loose .sql in that folder) tell missing tables that no migration
    creates (schema drift) from those a pending one should have created.

    ``statement_timeout`` is each statement's budget: one it stops is an overrun finding;
    ``complete`` (scratch copies only) lets it run on to measure its full time."""
    units = [*pending, *raw_sql]
    say = (lambda m: progress(scrub(m))) if progress else (lambda m: None)
    probe = db.connect(url, autocommit=True, application_name="deploybook dry run probe")
    try:
        # The before/after probes also give up on a held lock instead of hanging.
        probe.execute("SELECT set_config('lock_timeout', %s, false)", (str(lock_timeout),))
        say("fingerprinting the schema and counting rows (before)")
        cat_before, counts_before, seq_before = _measure(probe)
        server_num, _ = db.server_version(probe)
    except DatabaseError:
        probe.close()
        raise
    stmts = [split_sql(u.sql()) if u.sql_path.is_file() else [] for u in units]
    results = [
        UnitResult(u.name, u.kind, statements=len(s)) for u, s in zip(units, stmts, strict=True)
    ]
    conn = db.connect(url, application_name="deploybook dry run")
    watch = LockWatch(url, conn.info.backend_pid)
    try:
        available = {r[0] for r in conn.execute("SELECT name FROM pg_available_extensions")}
        existing = {r[0] for r in conn.execute(_RELATIONS)}
        clock = LockClock(existing)
        sizes = table_sizes(conn)
        meter = Meter(
            conn, existing, str(statement_timeout), _seconds(statement_timeout), complete, watch
        )
        with watch, conn.transaction(force_rollback=True):
            conn.execute(
                "SELECT set_config('lock_timeout', %s, true), "
                "set_config('statement_timeout', %s, true)",
                (str(lock_timeout), str(statement_timeout)),
            )
            ext_before = db.extensions(conn)
            for unit, unit_stmts, res in zip(units, stmts, results, strict=True):
                say(f"dry run: {unit.name}")
                t0 = time.perf_counter()
                _run_unit(conn, unit, unit_stmts, res, server_num, available, clock, meter)
                res.duration_s = round(time.perf_counter() - t0, 3)
            say("dry run: recording the migrated state (extensions, vector columns)")
            state = migrated.capture(
                conn, ext_before, counts_before, [r.name for r in results if r.error]
            )
            for unit_stmts, res in zip(stmts, results, strict=True):
                if res.error and not res.missing_extensions:
                    say(f"dry run: retrying {res.name} after all the others")
                    _retry(conn, unit_stmts, res, server_num, clock)
        holds = clock.end(time.monotonic())  # the rollback released every lock still held
        conn.close()  # the rolled-back transaction is gone; measure from outside it
        say("fingerprinting the schema and counting rows (after)")
        cat_after, counts_after, seq_after = _measure(probe)
    except psycopg.Error as exc:
        raise DatabaseError(scrub(f"dry run on {db.describe(url)}: {exc}")) from exc
    finally:
        conn.close()
        probe.close()
    folder = _folder(units)
    prisma_schema = read_schema(schema or (folder.parent / "schema.prisma" if folder else None))
    created = tables_created(
        split_sql(p.read_text(errors="replace")) for p in _history(history, folder)
    )
    classify(units, stmts, results, prisma_schema, created)
    for unit, res in zip(units, results, strict=True):
        if not unit.sql_path.is_file():
            res.status, res.note = Status.FAIL, f"{unit.sql_path} is missing: nothing to run"
    fp_before, fp_after = (
        fingerprint.fingerprint_of(cat_before),
        fingerprint.fingerprint_of(cat_after),
    )

    checks = Checks(
        Check(
            f"dry run: {r.name}" + (" (raw SQL)" if r.kind == "raw_sql" else ""),
            section,
            r.status,
            evidence(r),
            duration_s=r.duration_s,
            data=r.data(),
        )
        for r in results
    )
    if not units:
        checks.append(Check("dry run", section, Status.PASS, "no pending migrations or raw SQL"))
    if drift := drift_check(prisma_schema, created | tables_created(stmts), section):
        checks.append(drift)
    checks.append(state.check(section))
    changes = fingerprint.catalog_diff(cat_before, cat_after) + [
        f"rows {d}" for d in fingerprint.count_diff(counts_before, counts_after)
    ]
    checks.append(
        Check(
            "dry run changed nothing",
            section,
            Status.FAIL if changes else Status.PASS,
            ("database CHANGED: " + "; ".join(changes[:20]))
            if changes
            else f"schema fingerprint {fp_before[:16]}… before = after; exact row counts of "
            f"{len(counts_before)} tables identical ({sum(counts_before.values()):,} rows)",
            data={"fingerprint_before": fp_before, "fingerprint_after": fp_after},
        )
    )
    moved = fingerprint.count_diff(seq_before, seq_after)
    if moved:
        checks.append(
            Check(
                "dry run sequences",
                section,
                Status.WARN,
                "sequence values advanced (nextval is not rolled back; harmless gaps): "
                + "; ".join(moved),
                critical=False,
            )
        )
    report = DryRunReport(
        results, checks, fp_before, fp_after, counts_before, counts_after, state, holds
    )
    report.statements = meter.runs
    report.tables = {t: {"rows": n, "bytes": sizes.get(t)} for t, n in counts_before.items()}
    report.budget_s = meter.budget_s
    return report


def _folder(units: Sequence[LocalMigration]) -> Path | None:
    """The migrations folder the units come from (a migration's parent, a raw file's)."""
    return units[0].path.parent if units else None


def _history(history: Sequence[LocalMigration] | None, folder: Path | None) -> list[Path]:
    """SQL files of the whole history: ``history``'s, else every one in ``folder``."""
    if history is not None:
        return [u.sql_path for u in history if u.sql_path.is_file()]
    if folder is None or not folder.is_dir():
        return []
    return sorted([*folder.glob("*/migration.sql"), *folder.glob("*.sql")])
