"""The rollback standby: 02's verified copy of the snapshot, kept for 05 to swap in.

A rollback by swap restores the snapshot into a new database inside the rollback window:
on a big database that restore is nearly all of the window. 02 already restores the same
snapshot to prove it restores, before anything changes. With ``database.rollback.standby``
that proven copy is not dropped but *parked*: renamed to a name derived from the target
and the snapshot's SHA-256, with connections refused, so nothing uses it by accident.

05 then *adopts* it instead of restoring: connections allowed again, the copy compared
with the snapshot's inventory exactly as a fresh restore is, and renamed to the name the
swap expects. A standby that no longer equals the snapshot is dropped and 05 restores as
before; the record says which happened and why.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg
from psycopg import sql

from deploybook.core.checks import Checks
from deploybook.core.secrets import scrub
from deploybook.errors import DatabaseError
from deploybook.systems.postgres import db
from deploybook.systems.postgres.compare import compare_inventory
from deploybook.systems.postgres.restore_copy import drop_db
from deploybook.systems.postgres.swap import fit_name, maintenance

_ALLOW = "ALTER DATABASE {} ALLOW_CONNECTIONS {}"
_RENAME = "ALTER DATABASE {} RENAME TO {}"


def standby_name(database: str, sha256: str) -> str:
    """The standby of ``database`` for the snapshot with ``sha256`` (one per snapshot)."""
    return fit_name(f"{database}_standby_{sha256[:12]}")


@contextmanager
def _server(url: str, doing: str) -> Iterator[psycopg.Connection]:
    """An autocommit connection to ``url``'s server (not to a database being renamed);
    PostgreSQL's errors become a DatabaseError saying what was being done."""
    conn = maintenance(url)
    try:
        yield conn
    except psycopg.Error as exc:
        raise DatabaseError(scrub(f"{doing}: {exc}")) from exc
    finally:
        conn.close()


def _exists(conn: psycopg.Connection, name: str) -> bool:
    found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
    return found is not None


def _earlier(conn: psycopg.Connection, database: str) -> list[str]:
    pattern = database.replace("\\", "\\\\").replace("_", "\\_").replace("%", "\\%")
    rows = conn.execute(
        "SELECT datname FROM pg_database WHERE datname LIKE %s", (f"{pattern}\\_standby\\_%",)
    ).fetchall()
    return [r[0] for r in rows]


def park(url: str, copy: str, name: str) -> None:
    """Rename the verified ``copy`` to the standby ``name`` (replacing a leftover of that
    name) and refuse connections to it until 05 adopts it."""
    ident = sql.Identifier
    with _server(url, f"keeping {copy} as the rollback standby {name}") as conn:
        drop_db(conn, name)
        conn.execute(sql.SQL(_RENAME).format(ident(copy), ident(name)))
        conn.execute(sql.SQL(_ALLOW).format(ident(name), sql.SQL("false")))


def drop_others(url: str, name: str) -> list[str]:
    """Drop the target's other standbys (earlier 02 runs): one copy of its disk at a time."""
    with _server(url, "dropping earlier rollback standbys") as conn:
        others = [n for n in _earlier(conn, db.dbname_of(url)) if n != name]
        for other in others:
            drop_db(conn, other)
        return others


def drop(url: str, name: str) -> None:
    """Drop a standby nothing will adopt (02 failed its gate)."""
    with _server(url, f"dropping the rollback standby {name}") as conn:
        drop_db(conn, name)


@dataclass
class Adopted:
    """A standby that 05 may swap in (``checks`` passed), or why it may not."""

    found: bool
    checks: Checks

    @property
    def ok(self) -> bool:
        return self.found and self.checks.ok


def adopt(url: str, standby: str, inventory: dict, restored: str) -> Adopted:
    """Compare ``standby`` with the snapshot's ``inventory``; when equal, rename it to
    ``restored`` (what the swap renames over the target). A standby that differs is
    dropped. Nothing else is touched; a missing standby is ``found=False``."""
    ident = sql.Identifier
    with _server(url, f"adopting the rollback standby {standby}") as conn:
        if not _exists(conn, standby):
            return Adopted(False, Checks())
        conn.execute(sql.SQL(_ALLOW).format(ident(standby), sql.SQL("true")))
        copy = db.inventory(db.with_dbname(url, standby))
        checks = compare_inventory(inventory, copy, "snapshot as dumped")
        if checks.ok:
            drop_db(conn, restored)
            conn.execute(sql.SQL(_RENAME).format(ident(standby), ident(restored)))
        else:
            drop_db(conn, standby)
        return Adopted(True, checks)
