"""Rollback by swap: the restored copy takes the target's name, the target is kept aside.

Restoring a snapshot in place costs a safety dump plus a serial restore inside the
rollback window. Restoring it in parallel into a new database beside the target costs
neither, and the old database *is* the safety copy. The only moment the service sees is
the critical section in `swap_in`: connections to the target are refused and terminated,
then one transaction renames target → ``<name>_pre_rollback_<ts>`` and copy → target.

Renaming a database needs its owner (or a superuser) with CREATEDB and no other session
on it; `rename_refusal` asks PostgreSQL itself before anything is restored, by renaming
inside a transaction that is rolled back.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

import psycopg
from psycopg import errors, sql

from deploybook.core.secrets import scrub
from deploybook.errors import DatabaseError
from deploybook.systems.postgres import db
from deploybook.systems.postgres.tools import Progress, say

MAX_IDENTIFIER = 63  # NAMEDATALEN - 1: PostgreSQL truncates longer names silently


def fit_name(name: str) -> str:
    """``name`` if it fits PostgreSQL's 63 bytes, else shortened with a hash suffix, so two
    long names that share a prefix never truncate to the same database."""
    raw = name.encode()
    if len(raw) <= MAX_IDENTIFIER:
        return name
    digest = hashlib.sha256(raw).hexdigest()[:8]
    head = raw[: MAX_IDENTIFIER - len(digest) - 1].decode(errors="ignore").rstrip("_")
    return f"{head}_{digest}"


def names(database: str, pattern: str, ts: str) -> tuple[str, str]:
    """(restored copy, pre-rollback) database names for a rollback at ``ts``."""
    restored = fit_name(pattern.format(database=database, ts=ts))
    return restored, fit_name(f"{database}_pre_rollback_{ts}")


def maintenance(url: str) -> psycopg.Connection:
    """An autocommit connection to the server, not to the target (it is renamed)."""
    try:
        return db.connect(db.with_dbname(url, "postgres"), autocommit=True)
    except DatabaseError:
        return db.connect(db.with_dbname(url, "template1"), autocommit=True)


def rename_refusal(url: str) -> str | None:
    """None when this role may rename the target database, else PostgreSQL's reason.

    The rename is tried for real in a transaction that is always rolled back (ownership and
    CREATEDB are checked before PostgreSQL looks for other sessions, so "being accessed by
    other users" means the privileges are there)."""
    target = db.dbname_of(url)
    conn = maintenance(url)
    try:
        conn.autocommit = False
        try:
            conn.execute(
                sql.SQL("ALTER DATABASE {} RENAME TO {}").format(
                    sql.Identifier(target), sql.Identifier(fit_name(f"{target}_rename_probe"))
                )
            )
        except errors.ObjectInUse:
            return None
        except (errors.InsufficientPrivilege, errors.FeatureNotSupported) as exc:
            return scrub(f"{type(exc).__name__}: {str(exc).strip()}")
        finally:
            conn.rollback()
        return None
    finally:
        conn.close()


@dataclass(frozen=True)
class Swapped:
    """What the swap did: names, sessions ended, and how long the target was unavailable."""

    target: str
    restored: str
    pre_rollback: str
    terminated: int
    critical_s: float

    def as_dict(self) -> dict[str, object]:
        return self.__dict__.copy()


def _other_sessions(conn: psycopg.Connection, name: str) -> int:
    return conn.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
        (name,),
    ).fetchone()[0]


def swap_in(
    url: str,
    restored: str,
    pre_rollback: str,
    *,
    terminate_timeout_s: float = 10.0,
    progress: Progress = None,
) -> Swapped:
    """Rename target → ``pre_rollback`` and ``restored`` → target, in one short section.

    New connections to the target are refused first (ALLOW_CONNECTIONS false, committed so
    other backends see it), its sessions terminated and waited for, then both renames run
    in ONE transaction: either both happen or neither. The old database gets connections
    back under its new name, to be read or dropped by an operator. On any failure the
    target keeps its name and accepts connections again; the copy is left as it is.
    """
    target = db.dbname_of(url)
    ident = sql.Identifier
    conn = maintenance(url)
    started = time.perf_counter()
    closed = False
    try:
        owner = conn.execute(
            "SELECT datdba::regrole::text FROM pg_database WHERE datname = %s", (target,)
        ).fetchone()
        copy_owner = conn.execute(
            "SELECT datdba::regrole::text FROM pg_database WHERE datname = %s", (restored,)
        ).fetchone()
        kept = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (pre_rollback,)
        ).fetchone()
        if copy_owner is None and kept and owner is not None:
            # A resumed run: the swap committed before the process died.
            conn.execute(
                sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS true").format(ident(pre_rollback))
            )
            say(progress, f"already swapped: {target} is the copy, {pre_rollback} kept")
            return Swapped(target, restored, pre_rollback, 0, 0.0)
        if owner is None or copy_owner is None:
            missing = target if owner is None else restored
            raise DatabaseError(f"swap refused: database {missing} does not exist")
        if owner[0] != copy_owner[0]:  # the app's role keeps owning its database
            conn.execute(
                sql.SQL("ALTER DATABASE {} OWNER TO {}").format(ident(restored), ident(owner[0]))
            )
        started = time.perf_counter()
        conn.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS false").format(ident(target)))
        closed = True
        terminated = conn.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (target,),
        ).fetchone()[0]
        deadline = time.monotonic() + terminate_timeout_s
        while (left := _other_sessions(conn, target)) and time.monotonic() < deadline:
            time.sleep(0.05)
        if left:
            raise DatabaseError(
                f"swap not done: {left} session(s) on {target} still open after "
                f"{terminate_timeout_s:g}s (this role may not terminate them)"
            )
        with conn.transaction():
            conn.execute(
                sql.SQL("ALTER DATABASE {} RENAME TO {}").format(ident(target), ident(pre_rollback))
            )
            conn.execute(
                sql.SQL("ALTER DATABASE {} RENAME TO {}").format(ident(restored), ident(target))
            )
        closed = False
        critical = time.perf_counter() - started
        say(progress, f"swapped in {critical:.2f}s: {target} kept as {pre_rollback}")
        conn.execute(
            sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS true").format(ident(pre_rollback))
        )
        return Swapped(target, restored, pre_rollback, int(terminated), round(critical, 3))
    except psycopg.Error as exc:
        raise DatabaseError(
            scrub(f"swap of {target} with {restored} failed; {target} is unchanged: {exc}")
        ) from exc
    finally:
        if closed:  # failed inside the section: the target takes connections again
            try:
                conn.execute(
                    sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS true").format(ident(target))
                )
            except psycopg.Error:
                pass
        conn.close()
