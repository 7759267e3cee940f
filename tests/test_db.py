"""Snapshots, restore verification and rollback restore against real embedded PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from pg_fixtures import run_sql

from deploybook.core.checks import Status
from deploybook.core.secrets import MASK
from deploybook.errors import ConfigError, DatabaseError, RestoreRefused, SnapshotCorrupt
from deploybook.sandbox.postgres import PgCluster
from deploybook.systems.postgres import db
from deploybook.systems.postgres import fingerprint as pg_fingerprint
from deploybook.systems.postgres.restore import restore, verify_restore
from deploybook.systems.postgres.snapshot import Snapshot, snapshot
from deploybook.systems.postgres.tools import pg_tools

PATTERN = r"^deploybook_scratch_[a-z0-9_]+$"
SEED = """
CREATE TABLE concepts (id serial PRIMARY KEY, name text NOT NULL UNIQUE);
CREATE TABLE content_chunks (
    id bigserial PRIMARY KEY,
    concept_id int REFERENCES concepts(id),
    body text NOT NULL,
    embedding vector(1536)
);
CREATE INDEX content_chunks_concept_idx ON content_chunks (concept_id);
INSERT INTO concepts (name) SELECT 'concept ' || g FROM generate_series(1, 20) g;
INSERT INTO content_chunks (concept_id, body, embedding)
SELECT 1 + g % 20, 'chunk ' || g, array_fill((g % 7)::real / 7, ARRAY[1536])::vector
FROM generate_series(1, 300) g;
CREATE TABLE _prisma_migrations (
    id VARCHAR(36) PRIMARY KEY NOT NULL, checksum VARCHAR(64) NOT NULL, finished_at TIMESTAMPTZ,
    migration_name VARCHAR(255) NOT NULL, logs TEXT, rolled_back_at TIMESTAMPTZ,
    started_at TIMESTAMPTZ NOT NULL DEFAULT now(), applied_steps_count INTEGER NOT NULL DEFAULT 0);
INSERT INTO _prisma_migrations (id, checksum, finished_at, migration_name, applied_steps_count)
VALUES (gen_random_uuid()::text, repeat('a', 64), now(), '20250903120000_init', 1),
       (gen_random_uuid()::text, repeat('b', 64), now(), '20250917093000_objectives', 1);
"""


@pytest.fixture
def seeded(pg_db: str) -> str:
    run_sql(pg_db, SEED)
    return pg_db


@pytest.fixture
def snap(seeded: str, pg_bin: Path, tmp_path: Path) -> Snapshot:
    """A one-file (custom format) snapshot: the damage tests cut and flip its bytes."""
    return snapshot(
        seeded, tmp_path / "snaps", "sandbox-v1.4.0-test", "custom", compress=1, bin_dir=pg_bin
    )


def scratch_dbs(pg_cluster: PgCluster) -> list[str]:
    with db.connect(pg_cluster.url("postgres"), autocommit=True) as conn:
        rows = conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 'deploybook%'")
        return [r[0] for r in rows]


# -- the cluster and connections -------------------------------------------------------
def test_cluster_is_postgres_18_with_pgvector_over_tcp_and_password(
    pg_cluster: PgCluster, pg_db: str
) -> None:
    assert pg_cluster.running()
    assert pg_db.startswith("postgresql://postgres:") and f"127.0.0.1:{pg_cluster.port}/" in pg_db
    num, version = db.server_version(pg_db)
    assert num >= 180000 and version.startswith("18")
    assert "vector" in db.extensions(pg_db)
    pg_cluster.create_database("idempotent_db")
    pg_cluster.create_database("idempotent_db")  # second call is a no-op
    assert pg_cluster.database_exists("idempotent_db")
    pg_cluster.drop_database("idempotent_db")


def test_cluster_stop_and_start_again(tmp_path: Path) -> None:
    cluster = PgCluster(tmp_path / "data")
    cluster.init("start-stop-pw")
    cluster.init("start-stop-pw")  # idempotent
    cluster.start()
    pid = cluster.pid
    try:
        assert db.server_version(cluster.url())[1].startswith("18")
    finally:
        cluster.stop()
    assert not cluster.running()
    import psutil

    assert pid is not None and (
        not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie"
    )


def test_connect_failure_is_database_error_without_password(pg_cluster: PgCluster) -> None:
    url = pg_cluster.url("postgres", password="wrong-password-xyz")
    with pytest.raises(DatabaseError) as info:
        db.connect(url)
    assert "wrong-password-xyz" not in str(info.value)
    assert "password authentication failed" in str(info.value)
    assert "postgres@127.0.0.1" in str(info.value)


def test_prisma_schema_parameter_is_accepted(pg_db: str) -> None:
    with db.connect(pg_db + "?schema=public&connection_limit=5") as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    dsn, env = db.libpq_env(pg_db)
    assert "password" not in dsn and env["PGPASSWORD"] not in dsn


# -- catalog facts ---------------------------------------------------------------------
def test_vector_facts_and_checks(seeded: str) -> None:
    assert db.vector_columns(seeded) == [db.VectorColumn("content_chunks", "embedding", 1536)]
    assert db.vector_checks(seeded, 1536).ok
    run_sql(seeded, "CREATE TABLE big (id int, embedding vector(3072))")
    checks = db.vector_checks(seeded, 1536)
    failed = {c.name: c.evidence for c in checks.failed}
    assert "big.embedding is vector(3072)" in failed["vector dimensions = 1536"]


def test_vector_indexes_are_listed_with_their_method(seeded: str) -> None:
    # pgvector refuses hnsw/ivfflat on more than 2000 dimensions at CREATE INDEX time (the
    # dry run reports that); here a valid hnsw index on vector(1536) is listed and passes.
    run_sql(
        seeded, "CREATE INDEX cc_emb ON content_chunks USING hnsw (embedding vector_cosine_ops)"
    )
    idx = db.vector_indexes(seeded)
    assert [(i.index, i.method, i.dim) for i in idx] == [("cc_emb", "hnsw", 1536)]
    assert db.vector_checks(seeded, 1536).ok


def test_row_counts_and_fingerprint_track_changes(seeded: str) -> None:
    counts = db.row_counts(seeded)
    assert counts == {"_prisma_migrations": 2, "concepts": 20, "content_chunks": 300}
    before = pg_fingerprint.schema_fingerprint(seeded)
    assert pg_fingerprint.schema_fingerprint(seeded) == before
    run_sql(seeded, "ALTER TABLE concepts ADD COLUMN note text")
    assert pg_fingerprint.schema_fingerprint(seeded) != before


# -- tools -----------------------------------------------------------------------------
def test_pg_tools_refuses_client_older_than_server(pg_bin: Path, tmp_path: Path) -> None:
    tools = pg_tools(pg_bin, 180006)
    assert tools.major == 18
    fake = tmp_path / "oldbin"
    fake.mkdir()
    for tool in ("pg_dump", "pg_restore", "psql"):
        script = fake / tool
        script.write_text(f"#!/bin/sh\necho '{tool} (PostgreSQL) 15.8'\n")
        script.chmod(0o755)
    with pytest.raises(ConfigError, match="pg_dump 15 .* older than the server"):
        pg_tools(fake, 180006)
    with pytest.raises(ConfigError, match="not found in the configured"):
        pg_tools(tmp_path)


# -- snapshot and verified restore -----------------------------------------------------
def test_snapshot_records_size_sha_and_inventory(snap: Snapshot, seeded: str) -> None:
    assert snap.path.is_file() and snap.size == snap.path.stat().st_size > 0
    assert len(snap.sha256) == 64 and snap.format == "custom"
    assert snap.server_version.startswith("18")
    assert snap.inventory and snap.inventory["row_counts"]["content_chunks"] == 300
    manifest = snap.path.parent / "sandbox-v1.4.0-test.manifest.json"
    assert Snapshot.from_dict(__import__("json").loads(manifest.read_text())).sha256 == snap.sha256
    with pytest.raises(ConfigError, match="never overwritten"):
        snapshot(seeded, snap.path.parent, "sandbox-v1.4.0-test", bin_dir=PgCluster.bin_dir())


def test_verify_restore_passes_and_drops_scratch(
    snap: Snapshot, seeded: str, pg_bin: Path, pg_cluster: PgCluster
) -> None:
    lines: list[str] = []
    result = verify_restore(
        snap, seeded, "deploybook_scratch_t1", PATTERN, progress=lines.append, bin_dir=pg_bin
    )
    assert result.ok, result.checks.to_text()
    names = {c.name: c for c in result.checks}
    for name in (
        "tables",
        "row counts",
        "extensions",
        "vector dimensions",
        "_prisma_migrations",
        "sequences",
    ):
        assert names[f"restore: {name}"].status is Status.PASS
    assert "322 rows" in names["restore: row counts"].evidence
    assert "content_chunks.embedding=vector(1536)" in names["restore: vector dimensions"].evidence
    assert lines and any("scratch" in line for line in lines)
    assert "deploybook_scratch_t1" not in scratch_dbs(pg_cluster)


def test_verify_restore_directory_format_parallel_kept(
    seeded: str, pg_bin: Path, tmp_path: Path, pg_cluster: PgCluster
) -> None:
    snap = snapshot(
        seeded, tmp_path, "dir-snap", fmt="directory", jobs=2, compress=0, bin_dir=pg_bin
    )
    assert snap.path.is_dir()
    result = verify_restore(
        snap, seeded, "deploybook_scratch_kept", PATTERN, keep=True, bin_dir=pg_bin, jobs=2
    )
    try:
        assert result.ok, result.checks.to_text()
        assert result.scratch_url and db.row_counts(result.scratch_url)["content_chunks"] == 300
    finally:
        pg_cluster.drop_database("deploybook_scratch_kept")


def test_verify_restore_detects_source_difference(
    snap: Snapshot, seeded: str, pg_bin: Path
) -> None:
    snap.inventory = None  # compare with the live source, which changed after the dump
    run_sql(seeded, "DELETE FROM content_chunks WHERE id <= 5")
    result = verify_restore(snap, seeded, "deploybook_scratch_t2", PATTERN, bin_dir=pg_bin)
    failed = {c.name: c.evidence for c in result.checks.failed}
    assert "content_chunks: 295 -> 300" in failed["restore: row counts"]


@pytest.mark.parametrize("damage", ["truncate", "flip"])
@pytest.mark.parametrize("with_sha", [True, False])
def test_damaged_snapshot_is_snapshot_corrupt(
    damage: str, with_sha: bool, snap: Snapshot, seeded: str, pg_bin: Path, pg_cluster: PgCluster
) -> None:
    data = bytearray(snap.path.read_bytes())
    if damage == "truncate":
        data = data[: len(data) * 2 // 3]
    else:
        data[len(data) * 2 // 3] ^= 0xFF
    snap.path.write_bytes(bytes(data))
    if not with_sha:
        snap.sha256 = ""
    with pytest.raises(SnapshotCorrupt) as info:
        verify_restore(snap, seeded, "deploybook_scratch_t3", PATTERN, bin_dir=pg_bin)
    message = str(info.value)
    assert snap.path.name in message
    assert ("SHA-256" in message) if with_sha else ("truncated or corrupt" in message)
    assert "deploybook_scratch_t3" not in scratch_dbs(pg_cluster)


@pytest.mark.parametrize("name", ["americano_production", "deploybook_scratch_X", "postgres", "x"])
def test_scratch_outside_pattern_is_refused_and_nothing_created(
    name: str, snap: Snapshot, seeded: str, pg_bin: Path, pg_cluster: PgCluster
) -> None:
    before = scratch_dbs(pg_cluster)
    with pytest.raises(RestoreRefused, match="does not match the configured pattern"):
        verify_restore(snap, seeded, name, PATTERN, bin_dir=pg_bin)
    assert scratch_dbs(pg_cluster) == before


def test_scratch_equal_to_source_is_refused(snap: Snapshot, seeded: str, pg_bin: Path) -> None:
    source = db.dbname_of(seeded)
    with pytest.raises(RestoreRefused, match="source"):
        verify_restore(snap, seeded, source, r"^t_[a-z0-9]+$", bin_dir=pg_bin)


def test_no_password_in_argv_or_messages(snap: Snapshot, seeded: str) -> None:
    password = db.conninfo(seeded)["password"]
    assert password not in repr(snap) and password not in str(snap.as_dict())
    from deploybook.core.secrets import scrub

    assert password not in scrub(seeded) and MASK in scrub(seeded)


# -- rollback restore ------------------------------------------------------------------
def test_restore_brings_back_deleted_rows_and_drops_newer_objects(
    snap: Snapshot, seeded: str, pg_bin: Path
) -> None:
    fingerprint = pg_fingerprint.schema_fingerprint(seeded)
    run_sql(
        seeded,
        """
        DELETE FROM content_chunks WHERE id > 100;
        CREATE TABLE newer (id int REFERENCES concepts(id));
        ALTER TABLE concepts ADD COLUMN added_later text;
        DELETE FROM _prisma_migrations WHERE migration_name LIKE '20250917%';
    """,
    )
    check = restore(snap, seeded, bin_dir=pg_bin)
    assert check.status is Status.PASS
    assert db.row_counts(seeded) == {"_prisma_migrations": 2, "concepts": 20, "content_chunks": 300}
    assert pg_fingerprint.schema_fingerprint(seeded) == fingerprint
    assert db.vector_columns(seeded)[0].dim == 1536


def test_failed_restore_changes_nothing(snap: Snapshot, seeded: str, pg_bin: Path) -> None:
    run_sql(seeded, "DELETE FROM content_chunks WHERE id > 100")
    data = snap.path.read_bytes()
    snap.path.write_bytes(data[: len(data) * 2 // 3])  # TOC intact, data cut off
    snap.sha256 = ""
    with pytest.raises(SnapshotCorrupt, match="was not changed"):
        restore(snap, seeded, bin_dir=pg_bin)
    assert db.row_counts(seeded)["content_chunks"] == 100
