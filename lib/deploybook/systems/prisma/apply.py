"""Applying migrations exactly as `prisma migrate deploy` does, so Prisma agrees afterwards.

Prisma's advisory lock (with a deadline instead of waiting forever), its table DDL, its
P3005/P3009 refusals, one transaction per migration with its `_prisma_migrations` row,
and a failure recorded the way Prisma records it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import psycopg

from deploybook.core.secrets import scrub
from deploybook.errors import ConfigError, DatabaseError, LockHeld, MigrationFailed
from deploybook.systems.postgres import db
from deploybook.systems.prisma.migrations import (
    AppliedRow,
    LocalMigration,
    LocalMigrations,
    p3009,
)
from deploybook.systems.prisma.sqltext import Statement, non_transactional, split_sql

PRISMA_LOCK_KEY = 72707369
PRISMA_MIGRATIONS_DDL = """CREATE TABLE IF NOT EXISTS _prisma_migrations (
    id                      VARCHAR(36) PRIMARY KEY NOT NULL,
    checksum                VARCHAR(64) NOT NULL,
    finished_at             TIMESTAMPTZ,
    migration_name          VARCHAR(255) NOT NULL,
    logs                    TEXT,
    rolled_back_at          TIMESTAMPTZ,
    started_at              TIMESTAMPTZ NOT NULL DEFAULT now(),
    applied_steps_count     INTEGER NOT NULL DEFAULT 0
)"""


@dataclass(frozen=True)
class AppliedMigration:
    name: str
    id: str
    checksum: str
    started_at: datetime
    finished_at: datetime
    duration_s: float


def _lock(conn: psycopg.Connection, wait_s: float, where: str) -> None:
    """Prisma's advisory lock, but with a deadline instead of waiting forever."""
    deadline = time.monotonic() + wait_s
    while True:
        if conn.execute("SELECT pg_try_advisory_lock(%s)", (PRISMA_LOCK_KEY,)).fetchone()[0]:
            return
        if time.monotonic() >= deadline:
            break
        time.sleep(0.1)
    holder = conn.execute(
        "SELECT a.pid, a.application_name, a.usename, a.client_addr::text, a.backend_start "
        "FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' "
        "AND l.classid = 0 AND l.objid = %s AND l.objsubid = 1 AND l.granted",
        (PRISMA_LOCK_KEY,),
    ).fetchone()
    who = (
        f"pid {holder[0]} (application {holder[1]!r}, user {holder[2]}, from "
        f"{holder[3] or 'local socket'}, connected {holder[4]:%Y-%m-%d %H:%M:%S %Z})"
        if holder
        else "another session"
    )
    raise LockHeld(
        "another migration run holds Prisma's migration lock "
        f"(pg_advisory_lock({PRISMA_LOCK_KEY})) on {where}: {who}; "
        f"waited {wait_s:g}s. Let it finish, then rerun."
    )


def _prisma_logs(name: str, exc: psycopg.Error, stmt: Statement | None) -> str:
    """The `logs` text of a failed row, shaped like Prisma's (code, error, position)."""
    diag = exc.diag
    lines = [
        f"Migration name: {name}",
        "",
        f"Database error code: {exc.sqlstate}",
        "",
        "Database error:",
        f"ERROR: {diag.message_primary or str(exc).strip()}",
    ]
    if diag.message_detail:
        lines.append(f"DETAIL: {diag.message_detail}")
    if diag.message_hint:
        lines.append(f"HINT: {diag.message_hint}")
    if stmt is not None:
        pos = int(diag.statement_position) if diag.statement_position else None
        line_no = stmt.line_of(pos)
        text = stmt.sql.splitlines()[line_no - stmt.line] if stmt.sql else ""
        lines += ["", "Position:", f"  {line_no:>4} {text.rstrip()}"]
    return scrub("\n".join(lines))


def apply_pending(
    url: str,
    migrations: LocalMigrations | Sequence[LocalMigration],
    logs_cb: Callable[[str], None] | None = None,
    *,
    lock_wait_s: float = 10.0,
) -> list[AppliedMigration]:
    """Apply the migrations not yet applied, the way `prisma migrate deploy` does.

    Takes Prisma's advisory lock (LockHeld if another run keeps it past ``lock_wait_s``),
    creates `_prisma_migrations` with Prisma's DDL if missing, refuses on a failed row
    (P3009), then applies each pending migration in its own transaction together with
    its row. A failure rolls the migration back, records the row as Prisma does
    (finished_at null, logs = the error) and raises MigrationFailed.
    """
    items = list(migrations.migrations if isinstance(migrations, LocalMigrations) else migrations)
    if missing := [m.name for m in items if m.checksum is None]:
        raise ConfigError(f"migration folders without migration.sql (Prisma P3015): {missing}")
    say = (lambda msg: logs_cb(scrub(msg))) if logs_cb else (lambda msg: None)
    where = db.describe(url)
    conn = db.connect(url, autocommit=True, application_name="deploybook migrate")
    done: list[AppliedMigration] = []
    try:
        _lock(conn, lock_wait_s, where)
        try:
            exists = conn.execute("SELECT to_regclass('_prisma_migrations')").fetchone()[0]
            if exists is None:
                n = len(db.tables(conn))
                if n:
                    raise MigrationFailed(
                        f"P3005: the database schema of {where} is not empty ({n} tables) and has "
                        "no _prisma_migrations table: baseline it first (prisma migrate resolve "
                        "--applied …); nothing was applied"
                    )
                conn.execute(PRISMA_MIGRATIONS_DDL)
            rows = [AppliedRow(**r) for r in db.prisma_rows(conn) or []]
            if failed := [r for r in rows if r.failed]:
                raise MigrationFailed(p3009(failed[0]))
            applied = {r.migration_name for r in rows if r.applied}
            pending = [m for m in sorted(items, key=lambda m: m.name) if m.name not in applied]
            say(f"{len(items)} migrations found, {len(pending)} to apply on {where}")
            for m in pending:
                done.append(_apply_one(conn, m, say))
            say(f"all {len(done)} migration(s) applied" if done else "no pending migrations")
        finally:
            if not conn.closed:
                conn.execute("SELECT pg_advisory_unlock(%s)", (PRISMA_LOCK_KEY,))
    except psycopg.Error as exc:
        raise DatabaseError(scrub(f"applying migrations on {where}: {exc}")) from exc
    finally:
        conn.close()
    return done


def _apply_one(
    conn: psycopg.Connection, m: LocalMigration, say: Callable[[str], None]
) -> AppliedMigration:
    script = m.sql()
    mid = str(uuid.uuid4())
    started_wall = time.perf_counter()
    started = conn.execute("SELECT clock_timestamp()").fetchone()[0]
    insert = (
        "INSERT INTO _prisma_migrations (id, checksum, migration_name, started_at, "
        "applied_steps_count) VALUES (%s, %s, %s, %s, 0)"
    )
    finish = (
        "UPDATE _prisma_migrations SET finished_at = clock_timestamp(), "
        "applied_steps_count = 1 WHERE id = %s RETURNING finished_at"
    )
    # Statements PostgreSQL refuses in a transaction block, or explicit BEGIN/COMMIT:
    # run the file as Prisma does (one simple query, the server's implicit transaction).
    # Otherwise run it statement by statement in our transaction, to name the failing one.
    stmts = split_sql(script)
    prisma_style = any(non_transactional(s) for s in stmts)
    say(
        f"applying {m.name}" + (" (outside a transaction, as Prisma would)" if prisma_style else "")
    )
    current: Statement | None = stmts[0] if prisma_style and len(stmts) == 1 else None
    try:
        if prisma_style:
            conn.execute(insert, (mid, m.checksum, m.name, started))
            conn.execute(script.encode())
            finished = conn.execute(finish, (mid,)).fetchone()[0]
        else:
            with conn.transaction():
                conn.execute(insert, (mid, m.checksum, m.name, started))
                for current in stmts:
                    conn.execute(current.sql.encode())
                current = None
                finished = conn.execute(finish, (mid,)).fetchone()[0]
    except psycopg.Error as exc:
        logs = _prisma_logs(m.name, exc, current)
        if not prisma_style:  # the transaction took the row with it: record the failure
            conn.execute(insert, (mid, m.checksum, m.name, started))
        conn.execute("UPDATE _prisma_migrations SET logs = %s WHERE id = %s", (logs, mid))
        first = (exc.diag.message_primary or str(exc)).strip()
        where = (
            f" at line {current.line_of(None)}: {current.sql.splitlines()[0][:120]}"
            if current
            else ""
        )
        say(f"FAILED {m.name}: {exc.sqlstate} {first}{where}")
        err = MigrationFailed(
            scrub(
                f"migration {m.name} failed ({exc.sqlstate}): {first}{where}; it was rolled back "
                "and recorded as failed in _prisma_migrations (fix it, then `prisma migrate "
                f"resolve --rolled-back {m.name}`)"
            )
        )
        err.migration = m.name  # type: ignore[attr-defined]
        err.sqlstate = exc.sqlstate  # type: ignore[attr-defined]
        err.logs = logs  # type: ignore[attr-defined]
        raise err from None
    took = time.perf_counter() - started_wall
    say(f"applied {m.name} in {took:.2f}s")
    return AppliedMigration(m.name, mid, m.checksum or "", started, finished, round(took, 3))
