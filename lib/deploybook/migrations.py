"""Prisma migrations: the folder, `_prisma_migrations`, status, apply (as `migrate deploy`), lint.

Prisma's rules this module follows so that `prisma migrate status` agrees afterwards:
- a migration is a folder in `prisma/migrations`, ordered by name, holding `migration.sql`;
  its checksum is the SHA-256 (lowercase hex) of that file's bytes (a CRLF/LF-only
  difference still matches, as in prisma-engines' `script_matches_checksum`);
- applied = a row with finished_at set and rolled_back_at null; failed = a row with both
  null, which makes `migrate deploy` refuse to run (P3009);
- `migrate deploy` holds `pg_advisory_lock(72707369)` while it works.

The dry run lives in `deploybook.dryrun` and is re-exported here.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
import time
import tomllib
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from . import db
from .checks import Check, Checks, Status
from .errors import ConfigError, DatabaseError, LockHeld, MigrationFailed
from .secrets import scrub
from .sqltext import Statement, non_transactional, split_sql

PRISMA_LOCK_KEY = 72707369
SECTION = "7"
_FOLDER = re.compile(r"^(\d{14})_(.+)$")
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


# -- the local folder ------------------------------------------------------------------
def checksum(data: bytes) -> str:
    """Prisma's migration checksum: SHA-256 of the file's bytes, lowercase hex."""
    return hashlib.sha256(data).hexdigest()


def checksum_matches(data: bytes, recorded: str) -> bool:
    """True if ``recorded`` is the checksum of the file as is or with LF/CRLF swapped."""
    lf = data.replace(b"\r\n", b"\n")
    return recorded in {checksum(data), checksum(lf), checksum(lf.replace(b"\n", b"\r\n"))}


@dataclass(frozen=True)
class LocalMigration:
    """One migration folder (or a loose raw-SQL file, kind='raw_sql')."""

    name: str
    path: Path
    checksum: str | None  # None when migration.sql is missing
    timestamp: str | None = None  # None when the folder name is not <14 digits>_<name>
    label: str | None = None
    kind: str = "migration"

    @property
    def sql_path(self) -> Path:
        return self.path / "migration.sql" if self.kind == "migration" else self.path

    def sql(self) -> str:
        return self.sql_path.read_text(encoding="utf-8")

    def data(self) -> bytes:
        return self.sql_path.read_bytes()


@dataclass
class LocalMigrations:
    """What `prisma/migrations` holds, troubles included (they are reported, not raised)."""

    folder: Path
    migrations: list[LocalMigration]
    loose_sql: list[Path] = field(default_factory=list)
    provider: str | None = None
    lock_file: Path | None = None

    @property
    def bad_names(self) -> list[str]:
        return [m.name for m in self.migrations if m.timestamp is None]

    @property
    def missing_sql(self) -> list[str]:
        return [m.name for m in self.migrations if m.checksum is None]

    def raw(self, names: Iterable[str]) -> list[LocalMigration]:
        """The loose .sql files named (in that order) as raw SQL for the dry run."""
        out = []
        for name in names:
            path = self.folder / name
            if not path.is_file():
                raise ConfigError(f"raw SQL file {name!r} is not in {self.folder}")
            out.append(LocalMigration(name, path, checksum(path.read_bytes()), kind="raw_sql"))
        return out


def read_migrations(folder: Path | str) -> LocalMigrations:
    """Read a Prisma migrations folder: migrations ordered as Prisma orders them (by
    folder name), loose .sql files beside them, and the migration_lock.toml provider."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ConfigError(f"Prisma migrations folder {folder} does not exist")
    migrations, loose = [], []
    provider, lock_file = None, None
    for entry in sorted(folder.iterdir(), key=lambda p: p.name):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            sql_file = entry / "migration.sql"
            digest = checksum(sql_file.read_bytes()) if sql_file.is_file() else None
            m = _FOLDER.match(entry.name)
            migrations.append(
                LocalMigration(entry.name, entry, digest, m[1] if m else None, m[2] if m else None)
            )
        elif entry.name == "migration_lock.toml":
            lock_file = entry
            try:
                provider = tomllib.loads(entry.read_text()).get("provider")
            except tomllib.TOMLDecodeError as exc:
                raise ConfigError(f"{entry}: not valid TOML ({exc})") from exc
        elif entry.suffix.lower() == ".sql":
            loose.append(entry)
    return LocalMigrations(folder, migrations, loose, provider, lock_file)


# -- the database side -----------------------------------------------------------------
@dataclass(frozen=True)
class AppliedRow:
    """One `_prisma_migrations` row."""

    id: str
    checksum: str
    migration_name: str
    started_at: datetime
    finished_at: datetime | None = None
    rolled_back_at: datetime | None = None
    logs: str | None = None
    applied_steps_count: int = 0

    @property
    def failed(self) -> bool:
        return self.finished_at is None and self.rolled_back_at is None

    @property
    def applied(self) -> bool:
        return self.finished_at is not None and self.rolled_back_at is None


def read_applied(url: str) -> list[AppliedRow] | None:
    """`_prisma_migrations` rows oldest first, or None when the table does not exist."""
    rows = db.prisma_rows(url)
    return None if rows is None else [AppliedRow(**r) for r in rows]


def p3009(row: AppliedRow) -> str:
    """Prisma's refusal text for a failed row, so operators recognise it."""
    return (
        "P3009: migrate found failed migrations in the target database, new migrations will not "
        "be applied. Read more about how to resolve migration issues in a production database: "
        f"https://pris.ly/d/migrate-resolve\nThe `{row.migration_name}` migration started at "
        f"{_utc(row.started_at)} failed with the following logs:\n\n{row.logs or ''}"
    )


def _utc(value: datetime | str) -> str:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f UTC")
    return str(value)


@dataclass
class MigrationStatus:
    """`prisma migrate status` and more, as data plus checks."""

    local: LocalMigrations
    rows: list[AppliedRow] | None
    applied: list[str]
    pending: list[LocalMigration]
    failed: list[AppliedRow]
    drift: list[dict[str, str]]
    missing_locally: list[str]
    checks: Checks

    @property
    def ok(self) -> bool:
        return self.checks.ok

    def _repr_html_(self) -> str:
        return self.checks._repr_html_()


def compare_status(
    local: LocalMigrations,
    rows: list[AppliedRow] | None,
    raw_sql: Sequence[str] = (),
    section: str = SECTION,
) -> MigrationStatus:
    """Pure comparison of the folder with the table's rows (None = no table yet)."""
    checks = Checks()

    def add(name: str, status: Status, evidence: str, data: Any = None, critical: bool = True) -> None:
        checks.append(Check(name, section, status, evidence, critical=critical, data=data))

    # the folder on its own
    if local.provider == "postgresql":
        add("prisma provider", Status.PASS, "postgresql (migration_lock.toml)")
    elif local.provider is None:
        add("prisma provider", Status.WARN, f"no migration_lock.toml provider in {local.folder}")
    else:
        add("prisma provider", Status.FAIL, f"migration_lock.toml says {local.provider!r}, not postgresql")
    bad = local.bad_names
    add("migration folder names", Status.WARN if bad else Status.PASS,
        f"not <14 digits>_<name> (Prisma still applies them, ordered by name): {', '.join(bad)}"
        if bad else f"{len(local.migrations)} folders named <14 digits>_<name>", bad)
    if local.missing_sql:
        add("migration.sql present", Status.FAIL,
            f"folders without migration.sql (Prisma stops with P3015): {', '.join(local.missing_sql)}")
    by_ts: dict[str, list[str]] = defaultdict(list)
    by_label: dict[str, list[str]] = defaultdict(list)
    for m in local.migrations:
        if m.timestamp:
            by_ts[m.timestamp].append(m.name)
            by_label[m.label or ""].append(m.name)
    dup_ts = {k: v for k, v in by_ts.items() if len(v) > 1}
    dup_label = {k: v for k, v in by_label.items() if len(v) > 1}
    add("duplicate timestamps", Status.WARN if dup_ts else Status.PASS,
        "; ".join(f"{ts}: {' and '.join(v)} (applied in name order — check they do not depend "
                  "on each other the other way round)" for ts, v in dup_ts.items()) or "none", dup_ts)
    add("duplicate names", Status.WARN if dup_label else Status.PASS,
        "; ".join(f"{k!r}: {', '.join(v)}" for k, v in dup_label.items()) or "none", dup_label)
    loose = [p.name for p in local.loose_sql]
    named = [n for n in raw_sql if n in loose]
    unknown = [n for n in raw_sql if n not in loose]
    unnamed = [n for n in loose if n not in raw_sql]
    if unknown:
        add("loose .sql files", Status.FAIL, f"params name raw SQL not in {local.folder}: {unknown}")
    else:
        add("loose .sql files", Status.WARN if unnamed else Status.PASS,
            (f"run as raw SQL, in this order: {', '.join(named)}. " if named else "")
            + (f"not applied by Prisma and not named in params: {', '.join(unnamed)}" if unnamed
               else ("" if named else "none")), {"named": named, "unnamed": unnamed}, critical=False)

    # against the database
    by_name = {m.name: m for m in local.migrations}
    rows_list = rows or []
    applied = [r.migration_name for r in rows_list if r.applied]
    failed = [r for r in rows_list if r.failed]
    failed_names = {r.migration_name for r in failed}
    rolled_back = [r.migration_name for r in rows_list if r.rolled_back_at is not None]
    pending = [m for m in local.migrations if m.name not in set(applied) | failed_names]
    missing = sorted({r.migration_name for r in rows_list if r.applied} - set(by_name))
    drift = []
    for r in rows_list:
        m = by_name.get(r.migration_name)
        if r.applied and m and m.checksum and not checksum_matches(m.data(), r.checksum):
            drift.append({"migration": r.migration_name, "recorded": r.checksum, "local": m.checksum})
    if rows is None:
        add("applied migrations", Status.SKIP,
            "no _prisma_migrations table: the database was never migrated by Prisma (all pending)")
    else:
        add("applied migrations", Status.PASS,
            f"{len(applied)} applied" + (f", latest {applied[-1]}" if applied else "")
            + (f"; marked rolled back: {', '.join(rolled_back)}" if rolled_back else ""), applied)
    add("pending migrations", Status.PASS,
        f"{len(pending)} pending: {', '.join(m.name for m in pending)}" if pending else "none pending",
        [m.name for m in pending], critical=False)
    if applied and pending:
        early = [m.name for m in pending if m.name < max(applied)]
        if early:
            add("pending ordered before applied", Status.WARN,
                f"{', '.join(early)} sort before the latest applied migration {max(applied)} "
                "(merged late?): Prisma applies them now, after newer ones", early)
    add("failed migrations", Status.FAIL if failed else Status.PASS,
        "\n".join(f"{r.migration_name} started {r.started_at} never finished: "
                  f"{(r.logs or 'no logs').strip().splitlines()[-1] if r.logs else 'no logs'} "
                  f"(prisma migrate deploy refuses: P3009; resolve with `prisma migrate resolve`)"
                  for r in failed) or "none", [r.migration_name for r in failed])
    add("checksum drift", Status.FAIL if drift else Status.PASS,
        "; ".join(f"{d['migration']}: recorded {d['recorded'][:12]}…, local migration.sql "
                  f"{d['local'][:12]}… (edited after it was applied)" for d in drift) or
        f"{len(applied)} applied migrations match their local migration.sql", drift)
    add("applied but missing locally", Status.WARN if missing else Status.PASS,
        f"in _prisma_migrations but not in {local.folder}: {', '.join(missing)}" if missing else "none",
        missing)
    return MigrationStatus(local, rows, applied, pending, failed, drift, missing, checks)


def migration_status(
    local: LocalMigrations, url: str, raw_sql: Sequence[str] = (), section: str = SECTION
) -> MigrationStatus:
    """Read `_prisma_migrations` and compare it with the local folder."""
    return compare_status(local, read_applied(url), raw_sql, section)


# -- apply, as `prisma migrate deploy` -------------------------------------------------
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
    who = (f"pid {holder[0]} (application {holder[1]!r}, user {holder[2]}, from "
           f"{holder[3] or 'local socket'}, connected {holder[4]:%Y-%m-%d %H:%M:%S %Z})"
           if holder else "another session")
    raise LockHeld(
        f"another migration run holds Prisma's migration lock (pg_advisory_lock({PRISMA_LOCK_KEY})) "
        f"on {where}: {who}; waited {wait_s:g}s. Let it finish, then rerun."
    )


def _prisma_logs(name: str, exc: psycopg.Error, stmt: Statement | None) -> str:
    """The `logs` text of a failed row, shaped like Prisma's (code, error, position)."""
    diag = exc.diag
    lines = [f"Migration name: {name}", "", f"Database error code: {exc.sqlstate}", "",
             "Database error:", f"ERROR: {diag.message_primary or str(exc).strip()}"]
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


def _apply_one(conn: psycopg.Connection, m: LocalMigration, say: Callable[[str], None]) -> AppliedMigration:
    script = m.sql()
    mid = str(uuid.uuid4())
    started_wall = time.perf_counter()
    started = conn.execute("SELECT clock_timestamp()").fetchone()[0]
    insert = ("INSERT INTO _prisma_migrations (id, checksum, migration_name, started_at, "
              "applied_steps_count) VALUES (%s, %s, %s, %s, 0)")
    finish = ("UPDATE _prisma_migrations SET finished_at = clock_timestamp(), "
              "applied_steps_count = 1 WHERE id = %s RETURNING finished_at")
    # Statements PostgreSQL refuses in a transaction block, or explicit BEGIN/COMMIT:
    # run the file as Prisma does (one simple query, the server's implicit transaction).
    # Otherwise run it statement by statement in our transaction, to name the failing one.
    stmts = split_sql(script)
    prisma_style = any(non_transactional(s) for s in stmts)
    say(f"applying {m.name}" + (" (outside a transaction, as Prisma would)" if prisma_style else ""))
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
        where = f" at line {current.line_of(None)}: {current.sql.splitlines()[0][:120]}" if current else ""
        say(f"FAILED {m.name}: {exc.sqlstate} {first}{where}")
        err = MigrationFailed(
            scrub(f"migration {m.name} failed ({exc.sqlstate}): {first}{where}; it was rolled back "
                  "and recorded as failed in _prisma_migrations (fix it, then `prisma migrate "
                  f"resolve --rolled-back {m.name}`)")
        )
        err.migration = m.name  # type: ignore[attr-defined]
        err.sqlstate = exc.sqlstate  # type: ignore[attr-defined]
        err.logs = logs  # type: ignore[attr-defined]
        raise err from None
    took = time.perf_counter() - started_wall
    say(f"applied {m.name} in {took:.2f}s")
    return AppliedMigration(m.name, mid, m.checksum or "", started, finished, round(took, 3))


# -- lint ------------------------------------------------------------------------------
def squawk_path() -> Path | None:
    """The `squawk` binary from squawk-cli: next to this Python, else on PATH."""
    local = Path(sys.executable).parent / "squawk"
    if local.is_file():
        return local
    found = shutil.which("squawk")
    return Path(found) if found else None


def lint(
    migrations: Sequence[LocalMigration] | LocalMigrations,
    *,
    pg_version: str | None = None,
    exclude: Sequence[str] = (),
    section: str = SECTION,
    squawk: Path | None = None,
) -> Checks:
    """squawk findings per migration, as non-critical warnings (lint advises, never gates)."""
    items = list(migrations.migrations if isinstance(migrations, LocalMigrations) else migrations)
    items = [m for m in items if m.sql_path.is_file()]
    squawk = squawk or squawk_path()
    if squawk is None:
        return Checks([Check("squawk lint", section, Status.SKIP,
                             "squawk not installed (pip install squawk-cli): migrations not linted",
                             critical=False)])
    if not items:
        return Checks([Check("squawk lint", section, Status.SKIP, "no migrations to lint", critical=False)])
    argv = [str(squawk), "--reporter", "json", "--assume-in-transaction"]
    if pg_version:
        argv.append(f"--pg-version={pg_version}")
    if exclude:
        argv.append(f"--exclude={','.join(exclude)}")
    out = subprocess.run(argv + [str(m.sql_path) for m in items], capture_output=True, text=True,
                         timeout=120)
    try:
        findings = json.loads(out.stdout or "[]")
    except json.JSONDecodeError:
        return Checks([Check("squawk lint", section, Status.WARN,
                             f"squawk exited {out.returncode}: {(out.stderr or out.stdout)[:500]}",
                             critical=False)])
    by_file: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for f in findings:
        by_file[str(Path(f.get("file", "")).resolve())].append(f)
    checks = Checks()
    for m in items:
        found = by_file.get(str(m.sql_path.resolve()), [])
        evidence = "\n".join(
            f"line {f.get('line', 0) + 1}: {f.get('rule_name')}: {f.get('message')}"
            + (f" — {f['help']}" if f.get("help") else "")
            for f in found
        )
        checks.append(Check(f"lint: {m.name}", section, Status.WARN if found else Status.PASS,
                            evidence or "no squawk findings", critical=False,
                            data=[{k: f.get(k) for k in ("line", "rule_name", "message")} for f in found]))
    return checks


def __getattr__(name: str) -> Any:
    """Re-export the dry run lazily (deploybook.dryrun imports this module)."""
    if name in {"dry_run", "DryRunReport", "UnitResult"}:
        from . import dryrun

        return getattr(dryrun, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
