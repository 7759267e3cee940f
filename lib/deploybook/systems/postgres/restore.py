"""Proving a snapshot restores (into a scratch database), and the rollback restore.

- `verify_restore()` refuses a scratch name outside the configured pattern before
  touching anything, restores in parallel with `pg_restore --jobs --exit-on-error`
  (`restore_copy`), compares with the snapshot's inventory and drops the scratch database.
- `restore()` (05's in-place mode) replaces the target's schemas in ONE transaction: if
  anything fails, the target is left exactly as it was.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import psycopg
from psycopg import sql

from deploybook.core.checks import Check, Checks, Status
from deploybook.core.secrets import scrub
from deploybook.errors import ConfigError, DatabaseError, RestoreRefused, SnapshotCorrupt
from deploybook.systems.postgres import db
from deploybook.systems.postgres.compare import compare_inventory
from deploybook.systems.postgres.restore_copy import (
    RESERVED_DBS,
    RestoreVerification,
    drop_db,
    restore_copy,
)
from deploybook.systems.postgres.snapshot import SECTION, Snapshot, verify_snapshot
from deploybook.systems.postgres.tools import (
    Progress,
    pg_tools,
    raise_restore_error,
    say,
)


def check_scratch_name(scratch_name: str, scratch_pattern: str, source_db: str) -> None:
    """RestoreRefused unless ``scratch_name`` fully matches the pattern and is not the
    source or a system database: restore verification must never write anywhere else."""
    try:
        pattern = re.compile(scratch_pattern)
    except re.error as exc:
        raise ConfigError(
            f"scratch database pattern {scratch_pattern!r} is not a regex: {exc}"
        ) from exc
    if not pattern.fullmatch(scratch_name):
        raise RestoreRefused(
            f"scratch database {scratch_name!r} does not match the configured pattern "
            f"{scratch_pattern!r}: refusing to restore into it (nothing was created)"
        )
    if scratch_name == source_db or scratch_name in RESERVED_DBS:
        raise RestoreRefused(
            f"scratch database {scratch_name!r} is the source or a system database: refused"
        )


def drop_scratch(url: str, scratch_name: str, scratch_pattern: str) -> None:
    """Drop a kept scratch database; only names matching the scratch pattern are dropped."""
    check_scratch_name(scratch_name, scratch_pattern, db.dbname_of(url))
    admin = db.connect(db.with_dbname(url, "postgres"), autocommit=True)
    try:
        drop_db(admin, scratch_name)
    finally:
        admin.close()


def verify_restore(
    snap: Snapshot,
    url: str,
    scratch_name: str,
    scratch_pattern: str,
    keep: bool = False,
    progress: Progress = None,
    *,
    expected_sha256: str | None = None,
    bin_dir: Path | str | None = None,
    jobs: int | None = None,
    timeout: float | None = None,
    service_copy: bool = False,
) -> RestoreVerification:
    """Prove a snapshot restores: refuse a scratch name outside ``scratch_pattern``, check
    the SHA-256 and archive, restore in parallel (``jobs``, default one per core) into the
    scratch database on the source's server, compare with the snapshot's inventory, drop
    the scratch database unless ``keep``. A damaged snapshot raises SnapshotCorrupt.

    ``keep=True`` returns the verified copy's URL (``scratch_url``): a database equal to the
    snapshot, ready to be a dry-run target (or, restored as a ``service_copy`` with owners
    and grants, the rollback standby). `restore_copy` does the same for any name."""
    source_db = db.dbname_of(url)
    check_scratch_name(scratch_name, scratch_pattern, source_db)
    checks = Checks()
    started = time.perf_counter()
    version_num, _ = db.server_version(url)
    tools = pg_tools(bin_dir, version_num)
    entries = verify_snapshot(snap, expected_sha256, tools)
    checks.append(
        Check(
            "snapshot integrity",
            SECTION,
            Status.PASS,
            f"{Path(snap.path).name}: sha256 "
            f"{'matches' if (expected_sha256 or snap.sha256) else 'not recorded'}, "
            f"{entries} archive entries",
            duration_s=time.perf_counter() - started,
        )
    )
    result = restore_copy(
        snap,
        url,
        scratch_name,
        tools,
        jobs=jobs,
        keep=keep,
        keep_failed=keep,
        progress=progress,
        timeout=timeout,
        service_copy=service_copy,
    )
    result.checks = Checks([*checks, *result.checks])
    return result


# -- rollback restore ------------------------------------------------------------------
def _preamble(conn: psycopg.Connection, lock_timeout: str) -> str:
    """SQL that empties the target's schemas and recreates ``public`` as it was."""
    schemas = [
        r[0]
        for r in conn.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%' "
            "AND nspname <> 'information_schema' ORDER BY 1"
        )
    ]
    owner = conn.execute(
        "SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = 'public'"
    ).fetchone()
    grants = conn.execute(
        "SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE a.grantee::regrole::text END, "
        "a.privilege_type FROM pg_namespace n, aclexplode(n.nspacl) a WHERE n.nspname = 'public'"
    ).fetchall()
    parts = [
        sql.SQL("BEGIN"),
        sql.SQL("SET LOCAL lock_timeout = {}").format(sql.Literal(lock_timeout)),
    ]
    parts += [sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(s)) for s in schemas]
    parts.append(sql.SQL("CREATE SCHEMA public"))
    if owner:
        parts.append(sql.SQL("ALTER SCHEMA public OWNER TO {}").format(sql.SQL(owner[0])))
    parts += [
        sql.SQL("GRANT {} ON SCHEMA public TO {}").format(sql.SQL(priv), sql.SQL(grantee))
        for grantee, priv in grants
    ]
    return "".join(p.as_string(conn) + ";\n" for p in parts)


def restore(
    snap: Snapshot,
    url: str,
    *,
    expected_sha256: str | None = None,
    bin_dir: Path | str | None = None,
    lock_timeout: str = "30s",
    terminate_sessions: bool = False,
    progress: Progress = None,
    timeout: float | None = None,
) -> Check:
    """Rollback: replace the target database's contents with the snapshot, atomically.

    Callers gate this (execute flag, sign-offs). The snapshot is verified first; then a
    single transaction drops the user schemas and replays ``pg_restore --clean --if-exists
    --no-owner --single-transaction`` through psql with ON_ERROR_STOP. The COMMIT only
    comes at the end of a complete archive: a failure anywhere leaves the target as it was.
    """
    version_num, _ = db.server_version(url)
    tools = pg_tools(bin_dir, version_num)
    verify_snapshot(snap, expected_sha256, tools)
    started = time.perf_counter()
    target = db.describe(url)
    with db.connect(url, autocommit=True) as conn:
        if terminate_sessions:
            n = conn.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            ).fetchone()[0]
            say(progress, f"terminated {n} other session(s) on {target}")
        preamble = _preamble(conn, lock_timeout)
    dsn, env = db.libpq_env(url)
    full_env = {**os.environ, **env}
    with tempfile.TemporaryFile() as psql_out, tempfile.TemporaryFile() as dump_err:
        psql = subprocess.Popen(
            [
                str(tools.psql),
                "--no-psqlrc",
                "--quiet",
                "-v",
                "ON_ERROR_STOP=1",
                "--no-password",
                f"--dbname={dsn}",
            ],
            stdin=subprocess.PIPE,
            stdout=psql_out,
            stderr=subprocess.STDOUT,
            env=full_env,
        )
        dump = subprocess.Popen(
            [
                str(tools.pg_restore),
                "--file=-",
                "--clean",
                "--if-exists",
                "--no-owner",
                "--single-transaction",
                "--exit-on-error",
                str(snap.path),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=dump_err,
            env=full_env,
        )
        timer = threading.Timer(timeout, lambda: (dump.kill(), psql.kill())) if timeout else None
        if timer:
            timer.start()
        broken = False
        try:
            assert psql.stdin is not None and dump.stdout is not None
            try:
                psql.stdin.write(preamble.encode())
                say(progress, f"restoring {Path(snap.path).name} into {target} (one transaction)")
                while chunk := dump.stdout.read(1 << 16):
                    psql.stdin.write(chunk)
            except BrokenPipeError:
                broken = True  # psql stopped on an error: its transaction is rolled back
            dump_rc = dump.wait() if not broken else (dump.kill() or dump.wait())
            if dump_rc != 0 and not broken:
                psql.kill()  # never let a partial script reach a COMMIT
            else:
                try:
                    psql.stdin.close()
                except BrokenPipeError:
                    pass
            psql_rc = psql.wait()
        finally:
            if timer:
                timer.cancel()
        psql_out.seek(0)
        dump_err.seek(0)
        out = scrub(psql_out.read().decode(errors="replace"))
        err = scrub(dump_err.read().decode(errors="replace"))
    if dump_rc != 0 and not broken:
        try:
            raise_restore_error(Path(snap.path), err, "pg_restore")
        except SnapshotCorrupt as exc:
            raise SnapshotCorrupt(f"{exc} — {target} was not changed") from None
    if psql_rc != 0 or broken:
        raise DatabaseError(
            f"restore of {target} from {Path(snap.path).name} failed and was rolled back "
            f"(nothing changed): {(out or err).strip()[-1500:]}"
        )
    counts = db.row_counts(url)
    took = time.perf_counter() - started
    return Check(
        f"restore {db.dbname_of(url)} from snapshot",
        SECTION,
        Status.PASS,
        f"{Path(snap.path).name} restored in {took:.1f}s (one transaction): "
        f"{len(counts)} tables, {sum(counts.values()):,} rows",
        duration_s=took,
        data={"snapshot": Path(snap.path).name, "row_counts": counts},
    )


__all__ = [
    "RestoreVerification",
    "check_scratch_name",
    "compare_inventory",
    "drop_scratch",
    "restore",
    "restore_copy",
    "verify_restore",
]
