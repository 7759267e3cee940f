"""Restoring a snapshot in parallel into a named database and proving it equals the snapshot.

`restore_copy()` is the one way a snapshot becomes a database beside the source: 02's
restore verification (a scratch copy, dropped afterwards) and 05's rollback by swap (a
copy renamed over the target) both use it. It never touches the source database: it
creates ``name`` on the same server, restores with ``pg_restore --jobs --exit-on-error``,
and compares the copy with the snapshot's recorded inventory. A failed restore drops the
half-restored copy (or keeps it when asked) and says so.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from deploybook.core.checks import Check, Checks, Status
from deploybook.core.secrets import scrub
from deploybook.errors import DatabaseError, RestoreRefused, SnapshotCorrupt
from deploybook.systems.postgres import db
from deploybook.systems.postgres.compare import compare_inventory
from deploybook.systems.postgres.compression import available_cores
from deploybook.systems.postgres.snapshot import SECTION, Snapshot
from deploybook.systems.postgres.tools import PgTools, Progress, raise_restore_error, run_tool, say

RESERVED_DBS = {"postgres", "template0", "template1"}


@dataclass
class RestoreVerification:
    """Outcome of restoring a snapshot into a database of its own and comparing."""

    checks: Checks
    scratch_db: str
    scratch_url: str | None = None  # set only when the restored database was kept
    restored: dict[str, Any] | None = field(default=None, repr=False)
    jobs: int = 1
    duration_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.checks.ok

    def _repr_html_(self) -> str:
        return self.checks._repr_html_()


def drop_db(admin: psycopg.Connection, name: str) -> None:
    admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def restore_jobs(snap: Snapshot, jobs: int | None) -> int:
    """pg_restore's ``--jobs``: as given, else one per available core (a custom-format
    file restores in parallel too, as long as it is a seekable file)."""
    return max(1, jobs) if jobs else available_cores()


def restore_copy(
    snap: Snapshot,
    url: str,
    name: str,
    tools: PgTools,
    *,
    jobs: int | None = None,
    keep: bool = True,
    keep_failed: bool = False,
    service_copy: bool = False,
    progress: Progress = None,
    timeout: float | None = None,
) -> RestoreVerification:
    """Restore ``snap`` into a new database ``name`` on ``url``'s server and verify it.

    The copy is compared with the snapshot's recorded inventory (the live source only for
    an old snapshot without one). ``keep=False`` drops it after verifying (02's scratch
    check); ``keep=True`` leaves it for the caller (05's swap, a dry run against it) and
    returns its URL; ``service_copy`` restores owners (as a superuser) and grants as dumped,
    for a copy that will serve the application. A leftover database of that name (an
    interrupted earlier attempt) is dropped first, so callers must pass names no real
    database has (a scratch pattern, a timestamped rollback name). When pg_restore fails
    the copy is dropped, or kept with ``keep_failed``; either way the message says which,
    and nothing else was touched.
    """
    if name == db.dbname_of(url) or name in RESERVED_DBS:
        raise RestoreRefused(f"database {name!r} is the source or a system database: refused")
    checks = Checks()
    n = restore_jobs(snap, jobs)
    copy_url = db.with_dbname(url, name)
    admin = db.connect(url, autocommit=True)
    created, ok, t0 = False, False, time.perf_counter()
    try:
        say(progress, f"creating database {name}")
        drop_db(admin, name)
        admin.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name)))
        created = True
        dsn, env = db.libpq_env(copy_url)
        argv = [str(tools.pg_restore), "--exit-on-error", "--no-password", f"--dbname={dsn}"]
        if not service_copy:
            argv += ["--no-owner", "--no-acl"]  # a scratch copy: nobody else uses it
        elif admin.execute("SHOW is_superuser").fetchone()[0] != "on":
            argv.append("--no-owner")  # grants kept; objects owned by us, the owner
        argv.append(f"--jobs={n}")
        if progress:
            argv.append("--verbose")
        t0 = time.perf_counter()
        rc, err = run_tool(argv + [str(snap.path)], env, progress, timeout)
        if rc != 0:
            raise_restore_error(Path(snap.path), err, f"pg_restore --jobs={n} into {name}")
        took = time.perf_counter() - t0
        checks.append(
            Check(
                f"restore into {name}",
                SECTION,
                Status.PASS,
                f"pg_restore --jobs={n} --exit-on-error finished in {took:.1f}s",
                duration_s=took,
            )
        )
        say(progress, f"comparing {name} with the snapshot")
        restored = db.inventory(copy_url)
        if snap.inventory:
            source, origin = snap.inventory, "source as dumped"
        else:
            source, origin = db.inventory(url), "live source"
        checks.extend(compare_inventory(source, restored, origin))
        ok = True
    except psycopg.Error as exc:
        raise DatabaseError(
            scrub(f"restore into {name} on {db.describe(url)}: {exc}{_fate(name, keep_failed)}")
        ) from exc
    except (SnapshotCorrupt, DatabaseError) as exc:
        raise type(exc)(f"{exc}{_fate(name, keep_failed)}") from None
    finally:
        if created and ((not ok and not keep_failed) or (ok and not keep)):
            say(progress, f"dropping database {name}")
            drop_db(admin, name)
        admin.close()
    return RestoreVerification(
        checks, name, copy_url if keep else None, restored, n, time.perf_counter() - t0
    )


def _fate(name: str, kept: bool) -> str:
    return (
        f" — the half-restored database {name} was kept to look at (drop it when done)"
        if kept
        else f" — the half-restored database {name} was dropped"
    )
