"""Snapshot defaults chosen by measurement, and rollback by swap, on a real PostgreSQL.

The manifest says how a snapshot was dumped and why; a snapshot restores in parallel
into a database of its own and is verified there; the swap renames the target aside
(kept, intact) and the verified copy into its place; a role that may not rename the
target is told so by PostgreSQL itself; a failed restore leaves the target untouched; the
data-loss account lists the rows written after the snapshot.
"""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from pg_fixtures import run_sql
from psycopg import sql

from deploybook.errors import ConfigError, DatabaseError, SnapshotCorrupt
from deploybook.sandbox.postgres import PgCluster
from deploybook.systems.postgres import compression, dataloss, db, standby, swap
from deploybook.systems.postgres.restore_copy import restore_copy
from deploybook.systems.postgres.snapshot import Snapshot, load_snapshot, snapshot
from deploybook.systems.postgres.tools import pg_tools

SEED = """
CREATE TABLE users (id serial PRIMARY KEY, email text NOT NULL,
                    created_at timestamp(3) NOT NULL DEFAULT now());
CREATE TABLE "Card" (id serial PRIMARY KEY, front text,
                     "createdAt" timestamp(3) NOT NULL DEFAULT now(),
                     "updatedAt" timestamp(3) NOT NULL DEFAULT now());
CREATE TABLE tags (id serial PRIMARY KEY, name text);
INSERT INTO users (email, created_at)
SELECT 'u' || g || '@x', timestamp '2026-01-01' + g * interval '1 minute'
FROM generate_series(1, 50) g;
INSERT INTO "Card" (front, "createdAt", "updatedAt")
SELECT 'card ' || g, timestamp '2026-01-01', timestamp '2026-01-02' FROM generate_series(1, 30) g;
INSERT INTO tags (name) SELECT 'tag ' || g FROM generate_series(1, 5) g;
"""


@pytest.fixture
def seeded(pg_db: str) -> str:
    run_sql(pg_db, SEED)
    return pg_db


@pytest.fixture
def snap(seeded: str, pg_bin: Path, tmp_path: Path) -> Snapshot:
    return snapshot(seeded, tmp_path / "snaps", "before", bin_dir=pg_bin)


@pytest.fixture
def cleanup(pg_cluster: PgCluster) -> Iterator[list[str]]:
    """Databases a test leaves beside the fixture's (the kept pre-rollback copy)."""
    names: list[str] = []
    yield names
    for name in names:
        pg_cluster.drop_database(name)


def databases(pg_cluster: PgCluster) -> set[str]:
    with db.connect(pg_cluster.url("postgres"), autocommit=True) as conn:
        return {r[0] for r in conn.execute("SELECT datname FROM pg_database")}


# -- item 1: defaults chosen by measurement, recorded --------------------------------------------
def test_manifest_records_format_jobs_method_and_why(snap: Snapshot) -> None:
    manifest = json.loads((snap.path.parent / "before.manifest.json").read_text())
    cores = compression.available_cores()
    assert snap.path.is_dir() and manifest["format"] == "directory"
    assert manifest["jobs"] == cores
    # The embedded PostgreSQL's pg_dump has neither zstd nor lz4 built in.
    assert (manifest["compress_method"], manifest["compress_level"]) == ("gzip", 1)
    assert manifest["compress"] == "gzip:1"
    assert f"{cores} core(s) available" in manifest["why"]
    assert "gzip:1, the cheapest compression" in manifest["why"]
    assert "zstd and lz4 not built in" in manifest["why"]
    assert load_snapshot(snap.path.parent / "before.manifest.json").why == manifest["why"]


def test_params_pin_format_jobs_and_compression(seeded: str, pg_bin: Path, tmp_path: Path) -> None:
    pinned = snapshot(seeded, tmp_path, "pinned", "directory", 1, "gzip:6", bin_dir=pg_bin)
    assert (pinned.jobs, pinned.compress_method, pinned.compress_level) == (1, "gzip", 6)
    assert "gzip:6 pinned by params" in pinned.why
    custom = snapshot(seeded, tmp_path, "custom", "custom", compress=0, bin_dir=pg_bin)
    assert custom.path.is_file() and custom.jobs == 1 and custom.compress_method == "none"
    with pytest.raises(ConfigError, match="built without zstd"):
        snapshot(seeded, tmp_path, "zstd", compress="zstd:1", bin_dir=pg_bin)
    assert not (tmp_path / "zstd").exists()


def test_old_pg_dump_only_knows_gzip() -> None:
    old = Path("/usr/lib/postgresql/15/bin/pg_dump")
    if not old.exists():
        pytest.skip("no PostgreSQL 15 client on this machine")
    assert compression.supported_methods(str(old), 15) == ("gzip",)
    choice = compression.choose(str(old), 15)
    assert compression.compress_argument(choice, 15) == "1"


# -- item 2: restore in parallel, verify, swap ----------------------------------------------------
def test_swap_keeps_the_old_database_and_the_target_equals_the_snapshot(
    snap: Snapshot, seeded: str, pg_bin: Path, pg_cluster: PgCluster, cleanup: list[str]
) -> None:
    run_sql(seeded, "DELETE FROM tags; INSERT INTO users (email) VALUES ('late@x')")
    before = db.inventory(seeded)
    target = db.dbname_of(seeded)
    restored, pre = swap.names(target, "{database}_restored_{ts}", "20261201203000")
    cleanup += [restored, pre]
    assert swap.rename_refusal(seeded) is None  # a superuser may

    copy = restore_copy(snap, seeded, restored, pg_tools(pg_bin), service_copy=True)
    assert copy.ok and copy.jobs == compression.available_cores(), copy.checks.to_text()
    assert db.inventory(seeded) == before  # the target is not touched by the restore

    with db.connect(seeded) as app:  # a session the swap must end
        done = swap.swap_in(seeded, restored, pre)
    assert done.terminated >= 1 and done.critical_s < 30
    assert db.row_counts(seeded) == snap.inventory["row_counts"]
    assert db.inventory(seeded)["tables"] == snap.inventory["tables"]
    kept = db.with_dbname(seeded, pre)
    assert db.inventory(kept) == before  # the old database, intact, under its new name
    assert restored not in databases(pg_cluster)
    assert app.closed or app.broken
    # A rerun after a crash right after the commit finds the swap done and changes nothing.
    again = swap.swap_in(seeded, restored, pre)
    assert (again.terminated, again.critical_s) == (0, 0.0)
    assert db.inventory(kept) == before


def test_a_parked_standby_refuses_connections_then_is_adopted_and_swapped_in(
    snap: Snapshot, seeded: str, pg_bin: Path, pg_cluster: PgCluster, cleanup: list[str]
) -> None:
    """02's verified copy parked as the standby; 05 compares it with the snapshot and swaps
    it in: the target ends equal to the snapshot without a restore in the window."""
    target = db.dbname_of(seeded)
    name = standby.standby_name(target, snap.sha256)
    restored, pre = swap.names(target, "{database}_restored_{ts}", "20261202040000")
    cleanup += [name, restored, pre, "park_me"]
    copy = restore_copy(snap, seeded, "park_me", pg_tools(pg_bin), service_copy=True)
    assert copy.ok
    standby.park(seeded, "park_me", name)
    assert {name} <= databases(pg_cluster) and "park_me" not in databases(pg_cluster)
    with pytest.raises(DatabaseError, match="not currently accepting connections"):
        db.connect(db.with_dbname(seeded, name)).close()  # nothing uses it by accident

    run_sql(seeded, "INSERT INTO users (email) VALUES ('after-02@x')")  # the release writes
    adopted = standby.adopt(seeded, name, snap.inventory, restored)
    assert adopted.ok, adopted.checks.to_text()
    assert name not in databases(pg_cluster) and restored in databases(pg_cluster)
    swap.swap_in(seeded, restored, pre)
    assert db.inventory(seeded)["row_counts"] == snap.inventory["row_counts"]
    assert db.row_counts(db.with_dbname(seeded, pre))["users"] == 51  # kept, with the write


def test_a_standby_changed_since_02_is_dropped_and_not_adopted(
    snap: Snapshot, seeded: str, pg_bin: Path, pg_cluster: PgCluster, cleanup: list[str]
) -> None:
    target = db.dbname_of(seeded)
    name = standby.standby_name(target, snap.sha256)
    cleanup += [name, "park_me", "never_restored"]
    assert not standby.adopt(seeded, name, snap.inventory, "never_restored").found
    assert restore_copy(snap, seeded, "park_me", pg_tools(pg_bin), service_copy=True).ok
    standby.park(seeded, "park_me", name)
    with db.connect(db.with_dbname(seeded, "postgres"), autocommit=True) as conn:
        conn.execute(
            sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS true").format(sql.Identifier(name))
        )
    run_sql(db.with_dbname(seeded, name), "DELETE FROM tags WHERE id = 1")  # someone wrote
    adopted = standby.adopt(seeded, name, snap.inventory, "never_restored")
    assert adopted.found and not adopted.ok
    assert "tags" in adopted.checks.failed[0].evidence
    assert name not in databases(pg_cluster) and "never_restored" not in databases(pg_cluster)
    assert db.inventory(seeded)["row_counts"] == snap.inventory["row_counts"]  # untouched


def test_long_names_are_shortened_with_a_hash() -> None:
    name = "d" * 60
    restored, pre = swap.names(name, "{database}_restored_{ts}", "20261201203000")
    assert len(restored.encode()) <= 63 and len(pre.encode()) <= 63
    assert restored != pre and restored.startswith("d" * 40)
    other = swap.names("d" * 59 + "e", "{database}_restored_{ts}", "20261201203000")[1]
    assert other != pre


def test_a_role_that_does_not_own_the_target_is_refused_by_postgresql(
    seeded: str, pg_cluster: PgCluster
) -> None:
    role, password = f"r_{uuid.uuid4().hex[:8]}", secrets.token_urlsafe(12)
    with db.connect(pg_cluster.url("postgres"), autocommit=True) as admin:
        admin.execute(
            sql.SQL("CREATE ROLE {} LOGIN CREATEDB PASSWORD {}").format(
                sql.Identifier(role), sql.Literal(password)
            )
        )
    try:
        url = seeded.replace(f"postgres:{db.conninfo(seeded)['password']}@", f"{role}:{password}@")
        refusal = swap.rename_refusal(url)
        assert refusal and "InsufficientPrivilege" in refusal and "must be owner" in refusal
        assert db.dbname_of(seeded) in databases(pg_cluster)
    finally:
        with db.connect(pg_cluster.url("postgres"), autocommit=True) as admin:
            admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


@pytest.mark.parametrize("keep_failed", [False, True])
def test_failed_restore_into_the_new_database_leaves_the_target_untouched(
    keep_failed: bool, snap: Snapshot, seeded: str, pg_bin: Path, pg_cluster: PgCluster,
    cleanup: list[str],
) -> None:  # fmt: skip
    run_sql(seeded, "INSERT INTO users (email) VALUES ('after@x')")
    before = db.inventory(seeded)
    data = max(
        (p for p in snap.path.iterdir() if p.name != "toc.dat"), key=lambda p: p.stat().st_size
    )
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])  # a cut-off table file
    name = f"rb_fail_{uuid.uuid4().hex[:8]}"
    cleanup.append(name)
    with pytest.raises(SnapshotCorrupt) as info:
        restore_copy(snap, seeded, name, pg_tools(pg_bin), keep_failed=keep_failed)
    message = str(info.value)
    assert ("was kept to look at" if keep_failed else "was dropped") in message
    assert (name in databases(pg_cluster)) is keep_failed
    assert db.inventory(seeded) == before


# -- item 3: what the restore discards ---------------------------------------------------------
def test_data_loss_lists_rows_written_after_the_snapshot(snap: Snapshot, seeded: str) -> None:
    run_sql(
        seeded,
        """
        INSERT INTO users (email, created_at) VALUES ('new1@x', now()), ('new2@x', now());
        UPDATE "Card" SET "updatedAt" = now() WHERE id <= 3;
        CREATE TABLE added (id int); INSERT INTO added VALUES (1), (2), (3);
        """,
    )
    loss = dataloss.account(seeded, snap.inventory, snap.created_at, "database x_pre_rollback")
    rows = {r["table"]: r for r in loss.rows}
    assert rows["users"]["discarded"] == 2 and rows["users"]["written_after"] == 2
    assert rows["users"]["snapshot_rows"] == 50 and rows["users"]["live_rows"] == 52
    assert rows["Card"]["discarded"] == 0 and rows["Card"]["written_after"] == 3  # camelCase
    assert rows["added"]["snapshot_rows"] is None and rows["added"]["discarded"] == 3
    assert rows["tags"] == {
        "table": "tags", "snapshot_rows": 5, "live_rows": 5, "discarded": 0,
        "written_after": 0, "newest": None,
    }  # fmt: skip
    assert {r["table"] for r in loss.discards} == {"users", "Card", "added"}
    text = loss.summary()
    assert "users (50 → 52 rows, 2 written/updated after the snapshot" in text
    assert text.endswith("kept in database x_pre_rollback")
