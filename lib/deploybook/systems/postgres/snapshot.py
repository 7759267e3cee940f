"""Snapshots with real pg_dump, recorded with size, SHA-256 and the source's inventory.

`snapshot()` dumps inside an exported REPEATABLE READ snapshot and records the database's
inventory (tables, exact row counts, extensions, vector dimensions, `_prisma_migrations`,
sequences) *in that same snapshot*, so restore verification compares with exactly what
was dumped even while the source keeps taking writes. Passwords reach pg_dump through
PGPASSWORD only, never argv. Verification and the rollback restore are in
`deploybook.systems.postgres.restore`.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from deploybook.core import render
from deploybook.core.secrets import scrub
from deploybook.errors import CommandFailed, ConfigError, DatabaseError, SnapshotCorrupt
from deploybook.systems.postgres import compression, dataloss, db
from deploybook.systems.postgres.tools import PgTools, Progress, pg_tools, run_tool, say

SECTION = "7"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")


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
    # How it was dumped and why (`compression.choose`): jobs, method, level, reason.
    jobs: int = 1
    compress_method: str = ""
    compress_level: int | None = None
    why: str = ""
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
        return render.snapshot_html(self)


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
    fmt: str | None = None,
    jobs: int | None = None,
    compress: int | str | None = None,
    *,
    bin_dir: Path | str | None = None,
    progress: Progress = None,
    timeout: float | None = None,
) -> Snapshot:
    """Take a full pg_dump and record it, with how it was taken and why, in the manifest.

    Unpinned (None), the format is ``directory``, ``jobs`` every available core and the
    compression the cheapest this pg_dump supports (`compression.choose`); ``jobs`` caps the
    cores, ``fmt`` and ``compress`` (6 = gzip:6, "zstd:3", "lz4", 0/"none") pin.
    """
    if fmt not in (None, "custom", "directory"):
        raise ConfigError(f"snapshot format must be 'custom' or 'directory', not {fmt!r}")
    if not _NAME.match(name):
        raise ConfigError(f"snapshot name {name!r}: use letters, digits, '.', '_' and '-' only")
    if jobs is not None and (jobs < 1 or (jobs > 1 and fmt == "custom")):
        raise ConfigError(f"jobs={jobs}: parallel dumps (jobs > 1) need fmt='directory'")
    dest = Path(dest_dir)
    dest.mkdir(parents=True, exist_ok=True)
    for existing in (dest / f"{name}.dump", dest / name):
        if existing.exists():
            raise ConfigError(f"{existing} already exists: snapshots are never overwritten")
    version_num, version = db.server_version(url)
    tools = pg_tools(bin_dir, version_num)
    choice = compression.choose(
        str(tools.pg_dump), tools.major, fmt=fmt, jobs=jobs, compress=compress
    )
    fmt, jobs = choice.format, choice.jobs
    path = dest / (f"{name}.dump" if fmt == "custom" else name)
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
        say(progress, f"counting rows in {db.describe(url)} (same snapshot as the dump)")
        facts = db.inventory(conn)
        facts["newest"] = dataloss.newest(conn)  # what a rollback counts newer writes against
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
        argv.append(f"--compress={compression.compress_argument(choice, tools.major)}")
        if progress:
            argv.append("--verbose")
        say(progress, f"pg_dump {tools.version} → {path.name}: {choice.why}")
        rc, err = run_tool(argv, env, progress, timeout)
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
        compress=choice.argument,
        duration_s=round(time.perf_counter() - started, 3),
        inventory=facts,
        jobs=jobs,
        compress_method=choice.method,
        compress_level=choice.level,
        why=choice.why,
    )
    (dest / f"{name}.manifest.json").write_text(json.dumps(snap.as_dict(), indent=2, default=str))
    say(progress, f"snapshot {path.name}: {size:,} bytes, sha256 {digest[:16]}…")
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
