"""Snapshots with real pg_dump, proven by restoring them, and the rollback restore.

- `snapshot()` dumps inside an exported REPEATABLE READ snapshot and records the
  database's inventory (tables, exact row counts, extensions, vector dimensions,
  `_prisma_migrations`, sequences) *in that same snapshot*, so verification compares the
  restore with exactly what was dumped even while the source keeps taking writes.
- `verify_restore()` restores into a scratch database whose name must match the
  configured pattern, compares, and drops it.
- `restore()` (rollback) replaces the target's schemas in ONE transaction: if anything
  fails, the target is left as it was.

Passwords reach pg_dump/pg_restore/psql through PGPASSWORD only, never argv.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from . import db
from .checks import Check, Checks, Status
from .errors import CommandFailed, ConfigError, DatabaseError, RestoreRefused, SnapshotCorrupt
from .secrets import scrub

Progress = Callable[[str], None] | None
SECTION = "7"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")
_RESERVED_DBS = {"postgres", "template0", "template1"}
# pg_restore messages that mean the archive itself is damaged, not the target database.
_CORRUPT = re.compile(
    r"could not read from input file|end of file|did not find magic string|corrupt|"
    r"could not (?:un|de)compress|zlib|unrecognized data block type|unexpected block ID|"
    r"could not find block ID|invalid (?:compression|distance|block|stored|code|literal)|"
    r"input file (?:is too short|does not appear to be a valid archive)|unsupported version|"
    r"could not open input file|incorrect header check|data integrity|error during file seek",
    re.IGNORECASE,
)


# -- tools -----------------------------------------------------------------------------
@dataclass(frozen=True)
class PgTools:
    """pg_dump/pg_restore/psql of one PostgreSQL client version."""

    pg_dump: Path
    pg_restore: Path
    psql: Path
    major: int
    version: str


def _tool_version(path: Path) -> tuple[int, str]:
    out = subprocess.run([str(path), "--version"], capture_output=True, text=True, timeout=30)
    match = re.search(r"(\d+)(?:\.(\d+))?", out.stdout)
    if out.returncode != 0 or not match:
        raise ConfigError(f"{path} --version failed: {out.stderr.strip() or out.stdout.strip()}")
    return int(match[1]), match[0]


def _embedded_bin() -> Path | None:
    try:
        from .sandbox.postgres import PgCluster

        return PgCluster.bin_dir()
    except Exception:
        return None


def pg_tools(bin_dir: Path | str | None = None, server_version: int | None = None) -> PgTools:
    """Find pg_dump, pg_restore and psql: ``bin_dir`` if given, else PATH, else the
    embedded PostgreSQL. Refuse client tools older than the server (``server_version``
    as a major like 18 or a server_version_num like 180006): an old pg_dump cannot dump a
    newer server, and guessing would produce a snapshot that does not restore."""
    found: dict[str, Path] = {}
    for tool in ("pg_dump", "pg_restore", "psql"):
        if bin_dir is not None:
            path = Path(bin_dir) / tool
            if not path.is_file():
                raise ConfigError(f"{tool} not found in the configured pg bin dir {bin_dir}")
        else:
            which = shutil.which(tool)
            embedded = _embedded_bin()
            if which:
                path = Path(which)
            elif embedded and (embedded / tool).is_file():
                path = embedded / tool
            else:
                raise ConfigError(
                    f"{tool} not found on PATH: install the PostgreSQL client tools or set the "
                    "pg bin dir in the params file"
                )
        found[tool] = path
    major, version = _tool_version(found["pg_dump"])
    restore_major, _ = _tool_version(found["pg_restore"])
    if server_version is not None:
        server_major = server_version // 10000 if server_version >= 1000 else server_version
        for tool, tool_major in (("pg_dump", major), ("pg_restore", restore_major)):
            if tool_major < server_major:
                raise ConfigError(
                    f"{tool} {tool_major} at {found[tool]} is older than the server "
                    f"(PostgreSQL {server_major}): it cannot dump/restore it faithfully; "
                    f"use PostgreSQL {server_major}+ client tools (pg bin dir in the params file)"
                )
    return PgTools(found["pg_dump"], found["pg_restore"], found["psql"], major, version)


def _run(
    argv: list[str],
    env: dict[str, str],
    progress: Progress = None,
    timeout: float | None = None,
) -> tuple[int, str]:
    """Run a pg tool, streaming stderr lines to ``progress``; return (rc, stderr)."""
    full_env = {**os.environ, **env}
    lines: list[str] = []
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=full_env,
    )
    timer = threading.Timer(timeout, proc.kill) if timeout else None
    if timer:
        timer.start()
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line.rstrip("\n"))
            if progress:
                progress(scrub(line.rstrip("\n")))
        rc = proc.wait()
    finally:
        if timer:
            timer.cancel()
    if timer and not timer.is_alive() and rc < 0:
        lines.append(f"killed after the {timeout}s timeout")
    return rc, scrub("\n".join(lines))


def _say(progress: Progress, message: str) -> None:
    if progress:
        progress(scrub(message))


# -- the snapshot record ---------------------------------------------------------------
@dataclass
class Snapshot:
    """A snapshot file (or directory) and the facts the rollback and audit need."""

    path: Path
    size: int
    sha256: str
    format: str
    created_at: str
    server_version: str
    database: str = ""
    name: str = ""
    pg_dump_version: str = ""
    compress: str | None = None
    duration_s: float = 0.0
    inventory: dict[str, Any] | None = field(default=None, repr=False)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["path"] = str(self.path)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Snapshot:
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        known["path"] = Path(known["path"])
        return cls(**known)

    def _repr_html_(self) -> str:
        return (
            f"<b>snapshot</b> <code>{self.path}</code> — {self.size:,} bytes, {self.format}, "
            f"sha256 <code>{self.sha256[:16]}…</code>, PostgreSQL {self.server_version}, "
            f"taken {self.created_at} in {self.duration_s:.1f}s"
        )


def load_snapshot(manifest: Path | str) -> Snapshot:
    """Read the ``<name>.manifest.json`` written next to every snapshot."""
    return Snapshot.from_dict(json.loads(Path(manifest).read_text()))


def file_sha256(path: Path) -> tuple[str, int]:
    """(sha256, bytes) of a file, or of a directory-format dump (over its sorted files)."""
    if path.is_dir():
        outer, total = hashlib.sha256(), 0
        for child in sorted(p for p in path.rglob("*") if p.is_file()):
            digest, size = file_sha256(child)
            outer.update(f"{child.relative_to(path)}\0{digest}\n".encode())
            total += size
        return outer.hexdigest(), total
    h, total = hashlib.sha256(), 0
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
            total += len(chunk)
    return h.hexdigest(), total


def snapshot(
    url: str,
    dest_dir: Path | str,
    name: str,
    fmt: str = "custom",
    jobs: int = 1,
    compress: int | str | None = None,
    *,
    bin_dir: Path | str | None = None,
    progress: Progress = None,
    timeout: float | None = None,
) -> Snapshot:
    """Take a full pg_dump (``custom`` file or ``directory`` with ``jobs``) and record it.

    ``compress`` goes to pg_dump as is (e.g. 0 or "none" for speed, "gzip:1"); None keeps
    pg_dump's default. Compression is most of a big dump's time — choose it on purpose.
    """
    if fmt not in ("custom", "directory"):
        raise ConfigError(f"snapshot format must be 'custom' or 'directory', not {fmt!r}")
    if not _NAME.match(name):
        raise ConfigError(f"snapshot name {name!r}: use letters, digits, '.', '_' and '-' only")
    if jobs < 1 or (jobs > 1 and fmt != "directory"):
        raise ConfigError(f"jobs={jobs}: parallel dumps (jobs > 1) need fmt='directory'")
    dest = Path(dest_dir)
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / (f"{name}.dump" if fmt == "custom" else name)
    if path.exists():
        raise ConfigError(f"{path} already exists: snapshots are never overwritten")
    version_num, version = db.server_version(url)
    tools = pg_tools(bin_dir, version_num)
    dsn, env = db.libpq_env(url)
    partial = dest / f".{path.name}.partial"
    shutil.rmtree(partial, ignore_errors=True) if partial.is_dir() else partial.unlink(
        missing_ok=True
    )
    started = time.perf_counter()
    created = datetime.now(UTC).isoformat(timespec="seconds")
    conn = db.connect(url)
    try:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        snap_id = conn.execute("SELECT pg_export_snapshot()").fetchone()[0]
        _say(progress, f"counting rows in {db.describe(url)} (same snapshot as the dump)")
        facts = db.inventory(conn)
        argv = [
            str(tools.pg_dump),
            f"--format={fmt}",
            f"--file={partial}",
            "--no-password",
            f"--snapshot={snap_id}",
            f"--dbname={dsn}",
        ]
        if jobs > 1:
            argv.append(f"--jobs={jobs}")
        if compress is not None:
            argv.append(f"--compress={compress}")
        if progress:
            argv.append("--verbose")
        _say(
            progress,
            f"pg_dump {tools.version} → {path.name} ({fmt}, jobs={jobs}, compress={compress})",
        )
        rc, err = _run(argv, env, progress, timeout)
    except psycopg.Error as exc:
        raise DatabaseError(scrub(f"snapshot of {db.describe(url)}: {exc}")) from exc
    finally:
        conn.close()
    if rc != 0:
        shutil.rmtree(partial, ignore_errors=True) if partial.is_dir() else partial.unlink(
            missing_ok=True
        )
        raise CommandFailed(f"pg_dump of {db.describe(url)} failed (exit {rc}): {err[-1500:]}")
    partial.rename(path)
    digest, size = file_sha256(path)
    snap = Snapshot(
        path=path,
        size=size,
        sha256=digest,
        format=fmt,
        created_at=created,
        server_version=version,
        database=db.dbname_of(url),
        name=name,
        pg_dump_version=tools.version,
        compress=None if compress is None else str(compress),
        duration_s=round(time.perf_counter() - started, 3),
        inventory=facts,
    )
    (dest / f"{name}.manifest.json").write_text(json.dumps(snap.as_dict(), indent=2, default=str))
    _say(progress, f"snapshot {path.name}: {size:,} bytes, sha256 {digest[:16]}…")
    return snap


# -- integrity -------------------------------------------------------------------------
def verify_snapshot(
    snap: Snapshot, expected_sha256: str | None = None, tools: PgTools | None = None
) -> int:
    """Raise SnapshotCorrupt unless the file matches its SHA-256 and its table of
    contents reads; return the number of archive entries."""
    path = Path(snap.path)
    if not path.exists():
        raise SnapshotCorrupt(f"snapshot {path} does not exist")
    expected = expected_sha256 or snap.sha256
    if expected:
        actual, size = file_sha256(path)
        if actual != expected:
            raise SnapshotCorrupt(
                f"snapshot {path} does not match its recorded SHA-256 (recorded {expected[:16]}…, "
                f"file {actual[:16]}…; {size:,} bytes now, {snap.size:,} recorded): it was "
                "truncated, edited or replaced since it was taken — do not restore it"
            )
    tools = tools or pg_tools()
    out = subprocess.run(
        [str(tools.pg_restore), "--list", str(path)], capture_output=True, text=True, timeout=300
    )
    if out.returncode != 0:
        raise SnapshotCorrupt(
            f"snapshot {path} is not a readable pg_dump archive: {out.stderr.strip()[:500]}"
        )
    return sum(1 for line in out.stdout.splitlines() if line and not line.startswith(";"))


def _raise_restore_error(path: Path, err: str, what: str) -> None:
    if _CORRUPT.search(err):
        raise SnapshotCorrupt(
            f"snapshot {path} is truncated or corrupt ({what} failed): {err[-800:]}"
        )
    raise DatabaseError(f"{what} of {path} failed: {err[-1500:]}")


# -- verified restore into a scratch database ------------------------------------------
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


def _compare(source: dict[str, Any], restored: dict[str, Any], origin: str) -> Checks:
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
    diffs = db.count_diff(source["row_counts"], restored["row_counts"])
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
    seq_diff = db.count_diff(source["sequences"], restored["sequences"])
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
            f"{Path(snap.path).name}: sha256 {'matches' if (expected_sha256 or snap.sha256) else 'not recorded'}, "
            f"{entries} archive entries",
            duration_s=time.perf_counter() - started,
        )
    )
    scratch_url = db.with_dbname(url, scratch_name)
    admin = db.connect(url, autocommit=True)
    created = False
    try:
        _say(progress, f"creating scratch database {scratch_name}")
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
        rc, err = _run(argv + [str(snap.path)], env, progress, timeout)
        if rc != 0:
            _raise_restore_error(Path(snap.path), err, "pg_restore into the scratch database")
        checks.append(
            Check(
                f"restore into {scratch_name}",
                SECTION,
                Status.PASS,
                f"pg_restore --exit-on-error finished in {time.perf_counter() - t0:.1f}s",
                duration_s=time.perf_counter() - t0,
            )
        )
        _say(progress, "comparing source and restored copy")
        restored = db.inventory(scratch_url)
        if snap.inventory:
            source, origin = snap.inventory, "source as dumped"
        else:
            source, origin = db.inventory(url), "live source"
        checks.extend(_compare(source, restored, origin))
    except psycopg.Error as exc:
        raise DatabaseError(scrub(f"restore verification on {db.describe(url)}: {exc}")) from exc
    finally:
        if created and not keep:
            _say(progress, f"dropping scratch database {scratch_name}")
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
            _say(progress, f"terminated {n} other session(s) on {target}")
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
                _say(progress, f"restoring {Path(snap.path).name} into {target} (one transaction)")
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
            _raise_restore_error(Path(snap.path), err, "pg_restore")
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
