"""`_prisma_migrations` rows as `prisma migrate deploy` writes them, proved by crashing it.

The row is committed with started_at before the script runs; a migration killed mid-way
(kill -9 of the applying process, or its connection lost) leaves a failed row; the next
apply refuses with P3009, names the migration and both ways to resolve it, and changes
nothing; each resolution then lets the deploy go on. All against real PostgreSQL.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from test_migrations import INIT, write

from deploybook.core.checks import Status
from deploybook.errors import MigrationFailed
from deploybook.systems.postgres import db, fingerprint
from deploybook.systems.prisma import migrations
from deploybook.systems.prisma.apply import apply_pending
from deploybook.systems.prisma.migrations import migration_status, read_migrations

SLOW = "20251014090000_slow_backfill"
AFTER = "20251020000000_after"
MIGRATIONS = {
    "20250903120000_init": INIT,
    SLOW: 'CREATE TABLE "half_done" ("id" INTEGER);\nSELECT pg_sleep(30);\n'
    'ALTER TABLE "concepts" ADD COLUMN "slow" INTEGER;\n',
    AFTER: 'CREATE TABLE "after_it" ("id" INTEGER);\n',
}
APPLY = """
import os, sys
from deploybook.systems.prisma.apply import apply_pending
from deploybook.systems.prisma.migrations import read_migrations
apply_pending(os.environ["CRASH_DB_URL"], read_migrations(sys.argv[1]))
"""


def _rows(url: str) -> dict[str, list[migrations.AppliedRow]]:
    out: dict[str, list[migrations.AppliedRow]] = {}
    for r in migrations.read_applied(url) or []:
        out.setdefault(r.migration_name, []).append(r)
    return out


def _wait(what: str, ready: Callable[[], bool], timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while not ready():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _backends(url: str) -> list[int]:
    with db.connect(url, autocommit=True, application_name="crash test probe") as conn:
        return [
            r[0]
            for r in conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE application_name = 'deploybook migrate'"
            )
        ]


def _facts(url: str) -> tuple[str, dict[str, int], list[tuple]]:
    with db.connect(url, autocommit=True) as conn:
        rows = conn.execute("SELECT * FROM _prisma_migrations ORDER BY started_at").fetchall()
    return fingerprint.schema_fingerprint(url), db.row_counts(url), rows


def _killed(tmp_path: Path, url: str) -> Path:
    """Apply in a subprocess, kill -9 it while SLOW sleeps; returns the migrations folder."""
    folder = write(tmp_path, MIGRATIONS)
    proc = subprocess.Popen(
        [sys.executable, "-c", APPLY, str(folder)],
        env={**os.environ, "CRASH_DB_URL": url},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        # Prisma's order: the row is visible (committed) while the script still runs.
        _wait("the slow migration's row", lambda: SLOW in _rows(url))
        row = _rows(url)[SLOW][0]
        assert row.finished_at is None and row.applied_steps_count == 0 and not row.logs
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=10) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    # The orphaned backend notices its dead client (client_connection_check_interval) and
    # rolls back instead of sleeping on with the migration's locks.
    _wait("the killed migration's backend to go", lambda: not _backends(url), timeout_s=15)
    return folder


def test_kill_9_mid_migration_leaves_a_failed_row_and_p3009_changes_nothing(
    tmp_path: Path, pg_db: str
) -> None:
    t0 = time.monotonic()
    folder = _killed(tmp_path, pg_db)
    assert time.monotonic() - t0 < 25, "the backend slept on after its client was killed"
    rows = _rows(pg_db)
    assert rows["20250903120000_init"][0].applied
    failed = rows[SLOW]
    assert len(failed) == 1 and failed[0].failed and failed[0].logs is None
    assert AFTER not in rows
    counts = db.row_counts(pg_db)
    assert "half_done" not in counts  # its transaction died with it

    local = read_migrations(folder)
    before = _facts(pg_db)
    with pytest.raises(MigrationFailed) as refused:
        apply_pending(pg_db, local)
    message = str(refused.value)
    assert message.startswith("P3009: migrate found failed migrations")
    assert f"The `{SLOW}` migration started at" in message and "no logs" in message
    assert f"prisma migrate resolve --rolled-back {SLOW}" in message
    assert f"prisma migrate resolve --applied {SLOW}" in message
    assert "Nothing was applied" in message
    assert _facts(pg_db) == before, "the refused apply changed the database"

    status = migration_status(local, pg_db)
    check = next(c for c in status.checks if c.name == "failed migrations")
    assert check.status is Status.FAIL and check.critical and check.data == [SLOW]
    assert SLOW in check.evidence and "P3009" in check.evidence
    assert f"--rolled-back {SLOW}" in check.evidence and f"--applied {SLOW}" in check.evidence
    assert [m.name for m in status.pending] == [AFTER] and not status.ok


def test_connection_lost_mid_migration_records_the_error_on_the_row(
    tmp_path: Path, pg_db: str
) -> None:
    local = read_migrations(write(tmp_path, MIGRATIONS))
    caught: list[BaseException] = []

    def apply() -> None:
        try:
            apply_pending(pg_db, local)
        except BaseException as exc:  # noqa: BLE001 - asserted below
            caught.append(exc)

    worker = threading.Thread(target=apply)
    worker.start()
    _wait("the slow migration's row", lambda: SLOW in _rows(pg_db))
    with db.connect(pg_db, autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = 'deploybook migrate'"
        )
    worker.join(timeout=20)
    assert not worker.is_alive()
    assert len(caught) == 1 and isinstance(caught[0], MigrationFailed), caught
    err = caught[0]
    assert err.migration == SLOW
    assert f"migration {SLOW} failed" in str(err) and "connection was lost" in str(err)
    assert "rolls back its open transaction" in str(err) and "P3009" in str(err)
    assert f"prisma migrate resolve --rolled-back {SLOW}" in str(err)
    row = _rows(pg_db)[SLOW][0]
    assert row.failed and row.logs and f"Migration name: {SLOW}" in row.logs
    assert "terminating connection" in row.logs  # recorded over a new connection
    assert "half_done" not in db.row_counts(pg_db)
    with pytest.raises(MigrationFailed, match=rf"(?s)P3009.*{SLOW}.*terminating connection"):
        apply_pending(pg_db, local)


@pytest.mark.parametrize("resolution", ["rolled-back", "applied"])
def test_each_resolution_lets_the_deploy_go_on(tmp_path: Path, pg_db: str, resolution: str) -> None:
    folder = _killed(tmp_path, pg_db)
    (folder / SLOW / "migration.sql").write_text(
        MIGRATIONS[SLOW].replace("SELECT pg_sleep(30);\n", "")
    )
    local = read_migrations(folder)
    slow = next(m for m in local.migrations if m.name == SLOW)
    with db.connect(pg_db, autocommit=True) as conn:
        # What `prisma migrate resolve` writes (prisma-engines' mark_migration_rolled_back_by_id
        # and mark_migration_applied).
        conn.execute(
            "UPDATE _prisma_migrations SET rolled_back_at = now() WHERE migration_name = %s "
            "AND finished_at IS NULL",
            (SLOW,),
        )
        if resolution == "applied":  # the operator finished it by hand first
            conn.execute(MIGRATIONS[SLOW].replace("SELECT pg_sleep(30);\n", "").encode())
            conn.execute(
                "INSERT INTO _prisma_migrations (id, checksum, migration_name, logs, started_at, "
                "finished_at, applied_steps_count) VALUES (gen_random_uuid(), %s, %s, '', now(), "
                "now(), 0)",
                (slow.checksum, SLOW),
            )
    done = [m.name for m in apply_pending(pg_db, local)]
    assert done == ([SLOW, AFTER] if resolution == "rolled-back" else [AFTER])
    rows = _rows(pg_db)
    assert [r.rolled_back_at is not None for r in rows[SLOW]] == [True, False]
    assert rows[SLOW][1].applied and rows[AFTER][0].applied
    assert rows[AFTER][0].applied_steps_count == 1
    assert {"half_done", "after_it"} <= set(db.row_counts(pg_db))
    assert migration_status(local, pg_db).ok
