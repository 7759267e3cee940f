"""Proving a snapshot restores (into a scratch database), and the rollback restore.

- `verify_restore()` refuses a scratch name outside the configured pattern before
  touching anything, restores with `pg_restore --exit-on-error`, compares with the
  source and drops the scratch database.
- `restore()` replaces the target's schemas in ONE transaction: if anything fails, the
  target is left exactly as it was.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from deploybook.core.checks import Check, Checks, Status
from deploybook.core.secrets import scrub
from deploybook.errors import ConfigError, DatabaseError, RestoreRefused, SnapshotCorrupt
from deploybook.systems.postgres import db, fingerprint
from deploybook.systems.postgres.snapshot import SECTION, Snapshot, verify_snapshot
from deploybook.systems.postgres.tools import (
    Progress,
    pg_tools,
    raise_restore_error,
    run_tool,
    say,
)

_RESERVED_DBS = {"postgres", "template0", "template1"}


@dataclass
class RestoreVerification:
    """Outcome of restoring a snapshot into a scratch database and comparing."""

    checks: Checks
    scratch_db: str
    scratch_url: str | None = None  # set only when the scratch database was kept
    restored: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return self.checks.ok

    def _repr_html_(self) -> str:
        return self.checks._repr_html_()


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
    if scratch_name == source_db or scratch_name in _RESERVED_DBS:
        raise RestoreRefused(
            f"scratch database {scratch_name!r} is the source or a system database: refused"
        )


def _drop_db(admin: psycopg.Connection, name: str) -> None:
    admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def drop_scratch(url: str, scratch_name: str, scratch_pattern: str) -> None:
    """Drop a kept scratch database; only names matching the scratch pattern are dropped."""
    check_scratch_name(scratch_name, scratch_pattern, db.dbname_of(url))
    admin = db.connect(db.with_dbname(url, "postgres"), autocommit=True)
    try:
        _drop_db(admin, scratch_name)
    finally:
        admin.close()


def compare_inventory(source: dict[str, Any], restored: dict[str, Any], origin: str) -> Checks:
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
    jobs: int = 1,
    timeout: float | None = None,
) -> RestoreVerification:
    """Prove a snapshot restores: refuse a scratch name outside ``scratch_pattern``, check
    the SHA-256 and archive, restore with ``pg_restore --exit-on-error`` into the scratch
    database on the source's server, compare with the source, drop the scratch database
    unless ``keep``. A damaged snapshot raises SnapshotCorrupt."""
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
    scratch_url = db.with_dbname(url, scratch_name)
    admin = db.connect(url, autocommit=True)
    created = False
    try:
        say(progress, f"creating scratch database {scratch_name}")
        _drop_db(admin, scratch_name)  # a leftover kept scratch: it matches the pattern
        admin.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(scratch_name))
        )
        created = True
        dsn, env = db.libpq_env(scratch_url)
        argv = [
            str(tools.pg_restore),
            "--exit-on-error",
            "--no-owner",
            "--no-acl",
            "--no-password",
            f"--dbname={dsn}",
            f"--jobs={jobs}",
        ]
        if progress:
            argv.append("--verbose")
        t0 = time.perf_counter()
        rc, err = run_tool(argv + [str(snap.path)], env, progress, timeout)
        if rc != 0:
            raise_restore_error(Path(snap.path), err, "pg_restore into the scratch database")
        checks.append(
            Check(
                f"restore into {scratch_name}",
                SECTION,
                Status.PASS,
                f"pg_restore --exit-on-error finished in {time.perf_counter() - t0:.1f}s",
                duration_s=time.perf_counter() - t0,
            )
        )
        say(progress, "comparing source and restored copy")
        restored = db.inventory(scratch_url)
        if snap.inventory:
            source, origin = snap.inventory, "source as dumped"
        else:
            source, origin = db.inventory(url), "live source"
        checks.extend(compare_inventory(source, restored, origin))
    except psycopg.Error as exc:
        raise DatabaseError(scrub(f"restore verification on {db.describe(url)}: {exc}")) from exc
    finally:
        if created and not keep:
            say(progress, f"dropping scratch database {scratch_name}")
            _drop_db(admin, scratch_name)
        admin.close()
    return RestoreVerification(checks, scratch_name, scratch_url if keep else None, restored)


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
