"""Applying migrations exactly as `prisma migrate deploy` does, so Prisma agrees afterwards.

Prisma's advisory lock (with a deadline instead of waiting forever), its table DDL, its
P3005/P3009 refusals, and its `_prisma_migrations` bookkeeping (prisma-engines'
`apply_migrations`): each migration's row is committed with `started_at` before its script
runs, the script runs in one transaction, then the row gets `applied_steps_count` and
`finished_at`; on an error, its `logs`. A crash in between (the process killed, the
connection lost) leaves a failed row, and the next apply refuses with P3009 until
`prisma migrate resolve` says what happened.
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
from deploybook.systems.prisma.migrations import AppliedRow, LocalMigration, LocalMigrations
from deploybook.systems.prisma.resolve import p3009, resolve_guidance
from deploybook.systems.prisma.sqltext import Statement, non_transactional, split_sql

PRISMA_LOCK_KEY = 72707369
_APP = "deploybook migrate"
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
        f"Database error code: {exc.sqlstate or 'none (the connection was lost)'}",
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
    lock_timeout: str | None = "5s",
    statement_timeout: str | None = "60s",
) -> list[AppliedMigration]:
    """Apply the migrations not yet applied, the way `prisma migrate deploy` does.

    Takes Prisma's advisory lock (LockHeld if another run keeps it past ``lock_wait_s``),
    creates `_prisma_migrations` with Prisma's DDL if missing, refuses on a failed row
    (P3009), then applies each pending migration in its own transaction after committing
    its row. A failure rolls the migration back, records the row as Prisma does
    (finished_at null, logs = the error) and raises MigrationFailed; a crash leaves the
    row failed without logs.

    Every migration runs under ``lock_timeout`` and ``statement_timeout`` (params'
    ``database``, as the dry run): a migration waiting for a lock gives up instead of
    queueing behind the holder and blocking everyone after it, even once our client is gone.
    """
    items = list(migrations.migrations if isinstance(migrations, LocalMigrations) else migrations)
    if missing := [m.name for m in items if m.checksum is None]:
        raise ConfigError(f"migration folders without migration.sql (Prisma P3015): {missing}")
    say = (lambda msg: logs_cb(scrub(msg))) if logs_cb else (lambda msg: None)
    where = db.describe(url)
    conn = db.connect(url, autocommit=True, application_name=_APP)
    done: list[AppliedMigration] = []
    try:
        if conn.info.server_version >= 140000:
            # Killed mid-migration, we leave a backend running the script and holding its
            # locks; this makes it notice the dead client within a second and roll back.
            conn.execute("SELECT set_config('client_connection_check_interval', '1s', false)")
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
                raise MigrationFailed(p3009(failed))
            applied = {r.migration_name for r in rows if r.applied}
            pending = [m for m in sorted(items, key=lambda m: m.name) if m.name not in applied]
            say(f"{len(items)} migrations found, {len(pending)} to apply on {where}")
            for m in pending:
                _set_timeouts(conn, lock_timeout, statement_timeout)
                done.append(_apply_one(conn, url, m, say))
            say(f"all {len(done)} migration(s) applied" if done else "no pending migrations")
        finally:
            if not conn.closed:
                conn.execute("SELECT pg_advisory_unlock(%s)", (PRISMA_LOCK_KEY,))
    except psycopg.Error as exc:
        raise DatabaseError(scrub(f"applying migrations on {where}: {exc}")) from exc
    finally:
        conn.close()
    return done


def _set_timeouts(
    conn: psycopg.Connection, lock_timeout: str | None, statement_timeout: str | None
) -> None:
    """The session's lock and statement timeouts for the next migration ("0" = none)."""
    conn.execute(
        "SELECT set_config('lock_timeout', %s, false), set_config('statement_timeout', %s, false)",
        (str(lock_timeout or "0"), str(statement_timeout or "0")),
    )


_START = (
    "INSERT INTO _prisma_migrations (id, checksum, migration_name, started_at, "
    "applied_steps_count) VALUES (%s, %s, %s, clock_timestamp(), 0) RETURNING started_at"
)
_FINISH = (
    "UPDATE _prisma_migrations SET applied_steps_count = applied_steps_count + 1, "
    "finished_at = clock_timestamp() WHERE id = %s RETURNING finished_at"
)


def _apply_one(
    conn: psycopg.Connection, url: str, m: LocalMigration, say: Callable[[str], None]
) -> AppliedMigration:
    """One migration as prisma-engines' `apply_migrations` does it: the row is committed
    with started_at first (record_migration_started), then the script runs, then the row
    gets applied_steps_count and finished_at (or, on an error, the logs)."""
    script = m.sql()
    # Statements PostgreSQL refuses in a transaction block, or explicit BEGIN/COMMIT:
    # run the file as Prisma does (one simple query, the server's implicit transaction).
    # Otherwise run it statement by statement in one transaction, to name the failing one.
    stmts = split_sql(script)
    prisma_style = any(non_transactional(s) for s in stmts)
    say(
        f"applying {m.name}" + (" (outside a transaction, as Prisma would)" if prisma_style else "")
    )
    mid = str(uuid.uuid4())
    started_wall = time.perf_counter()
    # Committed before the script runs: a crash from here on (kill -9, connection lost)
    # leaves a failed row (finished_at NULL), so the next deploy refuses with P3009.
    started = conn.execute(_START, (mid, m.checksum, m.name)).fetchone()[0]
    current: Statement | None = stmts[0] if prisma_style and len(stmts) == 1 else None
    committing = False
    try:
        if prisma_style:
            conn.execute(script.encode())
        else:
            with conn.transaction():
                for current in stmts:
                    conn.execute(current.sql.encode())
                committing = True
            current = None
    except psycopg.Error as exc:
        raise _failure(conn, url, m, mid, exc, current, prisma_style, committing, say) from None
    try:
        finished = conn.execute(_FINISH, (mid,)).fetchone()[0]
    except psycopg.Error as exc:
        raise _migration_failed(
            m.name,
            f"migration {m.name} was committed but its _prisma_migrations row could not be "
            f"marked finished ({_first_line(exc)}): the row is left failed (finished_at NULL), "
            f"so the next deploy refuses with P3009. Check its changes are in the database, "
            f"then `prisma migrate resolve --applied {m.name}`",
            exc,
            "",
        ) from None
    took = time.perf_counter() - started_wall
    say(f"applied {m.name} in {took:.2f}s")
    return AppliedMigration(m.name, mid, m.checksum or "", started, finished, round(took, 3))


def _first_line(exc: psycopg.Error) -> str:
    return ((exc.diag.message_primary if exc.diag else None) or str(exc)).strip().splitlines()[0]


def _lost(conn: psycopg.Connection) -> bool:
    return conn.closed or conn.broken


def _record_failed_step(conn: psycopg.Connection, url: str, mid: str, logs: str) -> bool:
    """Prisma's record_failed_step (the row's logs); over a new connection when the
    migration's own was lost. False when the row could not be reached (it stays failed)."""
    sql = "UPDATE _prisma_migrations SET logs = %s WHERE id = %s"
    try:
        if not _lost(conn):
            conn.execute(sql, (logs, mid))
            return True
        with db.connect(url, autocommit=True, application_name=_APP, timeout=5) as again:
            again.execute(sql, (logs, mid))
        return True
    except (psycopg.Error, DatabaseError):
        return False


def _failure(
    conn: psycopg.Connection,
    url: str,
    m: LocalMigration,
    mid: str,
    exc: psycopg.Error,
    current: Statement | None,
    prisma_style: bool,
    committing: bool,
    say: Callable[[str], None],
) -> MigrationFailed:
    """Record the failure on the row as Prisma does and say what to do about it."""
    lost = _lost(conn)
    logs = _prisma_logs(m.name, exc, None if committing else current)
    recorded = _record_failed_step(conn, url, mid, logs)
    first = _first_line(exc)
    where = (
        f" at line {current.line_of(None)}: {current.sql.splitlines()[0][:120]}"
        if current and not committing
        else ""
    )
    say(f"FAILED {m.name}: {exc.sqlstate or 'connection'} {first}{where}")
    row = (
        "recorded as failed in _prisma_migrations (finished_at NULL, logs = the error)"
        if recorded
        else "left as failed in _prisma_migrations (finished_at NULL, no logs: the database "
        "could not be reached to record the error)"
    )
    if lost and committing:
        fate = "the connection was lost while committing it: it may or may not have committed"
    elif lost:
        fate = "the connection was lost; PostgreSQL rolls back its open transaction"
        if prisma_style:
            fate = "the connection was lost; it ran outside a transaction, so part may be applied"
    elif prisma_style:
        fate = "it ran outside a transaction, so the statements before the failing one stay"
    else:
        fate = "it was rolled back"
    return _migration_failed(
        m.name,
        f"migration {m.name} failed ({exc.sqlstate or 'connection lost'}): {first}{where}; "
        f"{fate}; {row}, so the next deploy refuses with P3009 until it is resolved. "
        + resolve_guidance(m.name),
        exc,
        logs,
    )


def _migration_failed(name: str, message: str, exc: psycopg.Error, logs: str) -> MigrationFailed:
    err = MigrationFailed(scrub(message))
    err.migration = name  # type: ignore[attr-defined]
    err.sqlstate = exc.sqlstate  # type: ignore[attr-defined]
    err.logs = logs  # type: ignore[attr-defined]
    return err
