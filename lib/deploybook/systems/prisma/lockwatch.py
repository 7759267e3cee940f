"""Which locks the dry run's session holds while a statement runs, seen from outside.

A statement the dry run's ``statement_timeout`` stops is rolled back with its savepoint, so
its own session cannot ask pg_locks afterwards what it held. A second connection polls
pg_locks for the dry run's backend while each statement runs; for a statement stopped by
the budget that is the lock production would hold for at least as long.
"""

from __future__ import annotations

import contextlib
import threading

import psycopg

from deploybook.systems.postgres import db

Lock = tuple[str, str, str]  # relation, pg_locks mode, relkind

_HELD_BY = """
    SELECT CASE WHEN n.nspname = 'public' THEN c.relname ELSE n.nspname || '.' || c.relname END,
           l.mode, c.relkind::text
    FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE l.pid = %s AND l.locktype = 'relation' AND l.granted
      AND n.nspname NOT LIKE 'pg\\_%%' AND n.nspname <> 'information_schema'
"""


class LockWatch:
    """Polls pg_locks for ``pid`` every ``interval`` seconds between `begin` and `end`."""

    def __init__(self, url: str, pid: int, interval: float = 0.1) -> None:
        self._url, self._pid, self._interval = url, pid, interval
        self._seen: set[Lock] = set()
        self._active = False
        self._mutex = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> LockWatch:
        self._thread = threading.Thread(target=self._loop, name="dry-run lock watch", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def begin(self) -> None:
        """A statement starts: forget what the last one held."""
        with self._mutex:
            self._seen, self._active = set(), True

    def end(self) -> set[Lock]:
        """The statement ended: every lock seen while it ran."""
        with self._mutex:
            self._active = False
            return set(self._seen)

    def _loop(self) -> None:
        try:
            conn = db.connect(self._url, autocommit=True, application_name="deploybook lock watch")
        except Exception:  # noqa: BLE001 - without the watch the dry run falls back to SQL text
            return
        with contextlib.closing(conn):
            while not self._stop.wait(self._interval):
                with self._mutex:
                    active = self._active
                if not active:
                    continue
                try:
                    rows = conn.execute(_HELD_BY, (self._pid,)).fetchall()
                except psycopg.Error:
                    return
                with self._mutex:
                    if self._active:
                        self._seen |= {(r[0], r[1], r[2]) for r in rows}
