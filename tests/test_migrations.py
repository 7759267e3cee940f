"""Prisma migrations against real embedded PostgreSQL: status, dry run, apply, lint."""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from pathlib import Path

import pytest
from pg_fixtures import run_sql

from deploybook.core.checks import Status
from deploybook.errors import LockHeld, MigrationFailed
from deploybook.systems.postgres import db, fingerprint
from deploybook.systems.prisma import lint as sqllint
from deploybook.systems.prisma import migrations
from deploybook.systems.prisma.apply import PRISMA_LOCK_KEY, apply_pending
from deploybook.systems.prisma.dryrun import dry_run
from deploybook.systems.prisma.lint import lint
from deploybook.systems.prisma.lockclock import lock_check
from deploybook.systems.prisma.migrations import (
    AppliedRow,
    LocalMigrations,
    compare_status,
    migration_status,
    read_migrations,
)
from deploybook.systems.prisma.sqltext import split_sql

INIT = """-- CreateTable
CREATE TABLE "concepts" ("id" SERIAL NOT NULL, "name" TEXT NOT NULL,
    CONSTRAINT "concepts_pkey" PRIMARY KEY ("id"));
CREATE TABLE "content_chunks" ("id" SERIAL NOT NULL, "concept_id" INTEGER, "embedding" vector(1536),
    CONSTRAINT "content_chunks_pkey" PRIMARY KEY ("id"));
INSERT INTO "concepts" ("name") SELECT 'c' || g FROM generate_series(1, 10) g;
"""


def write(
    root: Path,
    items: dict[str, str],
    provider: str | None = "postgresql",
    loose: dict[str, str] | None = None,
) -> Path:
    """A prisma/migrations folder: {folder name: migration.sql}."""
    folder = root / "migrations"
    folder.mkdir(parents=True, exist_ok=True)
    for name, sql in items.items():
        (folder / name).mkdir(exist_ok=True)
        (folder / name / "migration.sql").write_text(sql)
    if provider:
        (folder / "migration_lock.toml").write_text(f'provider = "{provider}"\n')
    for name, sql in (loose or {}).items():
        (folder / name).write_text(sql)
    return folder


def check(checks, name: str):
    return next(c for c in checks if c.name == name)


# -- reading and status ----------------------------------------------------------------
def test_read_migrations_prisma_checksums_and_order(tmp_path: Path) -> None:
    folder = write(
        tmp_path,
        {"20250903120000_init": INIT, "20250801000000_earlier": "SELECT 1;"},
        loose={"analytics.sql": "SELECT 2;"},
    )
    local = read_migrations(folder)
    assert [m.name for m in local.migrations] == ["20250801000000_earlier", "20250903120000_init"]
    assert local.migrations[1].checksum == hashlib.sha256(INIT.encode()).hexdigest()
    assert local.provider == "postgresql" and [p.name for p in local.loose_sql] == ["analytics.sql"]
    assert migrations.checksum_matches(
        INIT.replace("\n", "\r\n").encode(), local.migrations[1].checksum
    )


def test_status_reports_every_kind_of_trouble(tmp_path: Path) -> None:
    folder = write(
        tmp_path,
        {
            "20250903120000_init": INIT,
            "20250917093000_objectives": "CREATE TABLE objectives (id int);",
            "20251014090000_validation": "CREATE TABLE prompts (id int);",
            "20251014090000_validation_b": "CREATE TABLE prompts_b (id int);",  # same timestamp
            "20251020000000_objectives": "SELECT 1;",  # same name as an earlier one
            "add_missions": "SELECT 1;",  # bad folder name
        },
        loose={"analytics_views.sql": "SELECT 1;", "scratch.sql": "SELECT 1;"},
    )
    (folder / "20251030000000_empty").mkdir()  # no migration.sql
    local = read_migrations(folder)
    now = "2025-10-01T10:00:00+00:00"
    rows = [
        AppliedRow(
            str(uuid.uuid4()), "0" * 64, "20250903120000_init", now, now, None, None, 1
        ),  # drift
        AppliedRow(
            str(uuid.uuid4()),
            local.migrations[1].checksum,
            "20250917093000_objectives",
            now,
            None,
            None,
            "Database error code: 42P07",
            0,
        ),  # failed row
        AppliedRow(str(uuid.uuid4()), "f" * 64, "20250801000000_hotfix", now, now, None, None, 1),
    ]
    status = compare_status(local, rows, raw_sql=["analytics_views.sql"])
    c = {x.name: x for x in status.checks}
    assert (
        "20250903120000_init" in c["checksum drift"].evidence
        and c["checksum drift"].status is Status.FAIL
    )
    assert "20250917093000_objectives" in c["failed migrations"].evidence
    assert (
        c["failed migrations"].status is Status.FAIL and "P3009" in c["failed migrations"].evidence
    )
    assert "20250801000000_hotfix" in c["applied but missing locally"].evidence
    assert "add_missions" in c["migration folder names"].evidence
    assert (
        "20251014090000_validation and 20251014090000_validation_b"
        in c["duplicate timestamps"].evidence
    )
    assert "'objectives'" in c["duplicate names"].evidence
    assert "scratch.sql" in c["loose .sql files"].evidence
    assert "run as raw SQL, in this order: analytics_views.sql" in c["loose .sql files"].evidence
    assert c["migration.sql present"].status is Status.FAIL
    assert c["prisma provider"].status is Status.PASS
    assert "20250917093000_objectives" not in [m.name for m in status.pending]
    assert "20251014090000_validation" in [m.name for m in status.pending]
    assert [r.migration_name for r in status.failed] == ["20250917093000_objectives"]


def test_status_of_a_fresh_database_and_wrong_provider(tmp_path: Path, pg_db: str) -> None:
    local = read_migrations(write(tmp_path, {"20250903120000_init": INIT}, provider="mysql"))
    status = migration_status(local, pg_db)
    assert status.rows is None and [m.name for m in status.pending] == ["20250903120000_init"]
    assert check(status.checks, "applied migrations").status is Status.SKIP
    assert check(status.checks, "prisma provider").status is Status.FAIL


# -- apply as prisma migrate deploy ------------------------------------------------------
def test_apply_pending_writes_prisma_compatible_rows(tmp_path: Path, pg_db: str) -> None:
    concurrently = 'CREATE INDEX CONCURRENTLY "concepts_name_idx" ON "concepts"("name");\n'
    local = read_migrations(
        write(
            tmp_path,
            {
                "20250903120000_init": INIT,
                # alone in its file: Prisma runs it outside a transaction
                "20250917093000_concurrently": concurrently,
            },
        )
    )
    logs: list[str] = []
    done = apply_pending(pg_db, local, logs.append)
    assert [d.name for d in done] == ["20250903120000_init", "20250917093000_concurrently"]
    assert any("applying 20250903120000_init" in line for line in logs)
    with db.connect(pg_db) as conn:
        cols = conn.execute(
            "SELECT column_name, data_type, character_maximum_length, is_nullable, column_default "
            "FROM information_schema.columns WHERE table_name = '_prisma_migrations' "
            "ORDER BY ordinal_position"
        ).fetchall()
        rows = conn.execute("SELECT * FROM _prisma_migrations ORDER BY started_at").fetchall()
    assert [c[0] for c in cols] == [
        "id",
        "checksum",
        "finished_at",
        "migration_name",
        "logs",
        "rolled_back_at",
        "started_at",
        "applied_steps_count",
    ]
    assert cols[0][1:4] == ("character varying", 36, "NO")
    assert cols[1][1:4] == ("character varying", 64, "NO")
    assert cols[2][1] == "timestamp with time zone" and cols[6][4] == "now()"
    for row, m in zip(rows, local.migrations, strict=True):
        rid, csum, finished, name, logs_col, rolled, started, steps = row
        assert uuid.UUID(rid) and len(rid) == 36
        assert csum == hashlib.sha256(m.sql_path.read_bytes()).hexdigest() and name == m.name
        assert finished >= started and logs_col is None and rolled is None and steps == 1
    status = migration_status(local, pg_db)
    assert status.ok and not status.pending and len(status.applied) == 2
    assert apply_pending(pg_db, local) == []  # nothing left to do


def test_failing_migration_leaves_failed_row_and_raises(tmp_path: Path, pg_db: str) -> None:
    local = read_migrations(
        write(
            tmp_path,
            {
                "20250903120000_init": INIT,
                "20251014090000_breaks": "CREATE TABLE half_done (id int);\n"
                "ALTER TABLE nope ADD COLUMN x int;\n",
                "20251020000000_after": "CREATE TABLE after_it (id int);",
            },
        )
    )
    with pytest.raises(MigrationFailed, match="20251014090000_breaks failed .42P01.*nope") as info:
        apply_pending(pg_db, local)
    assert info.value.migration == "20251014090000_breaks"
    rows = {r.migration_name: r for r in migrations.read_applied(pg_db)}
    assert rows["20250903120000_init"].applied
    bad = rows["20251014090000_breaks"]
    assert bad.failed and bad.applied_steps_count == 0
    assert (
        "Database error code: 42P01" in bad.logs
        and "line" not in bad.logs.lower().split("position")[0]
    )
    assert "   2 ALTER TABLE nope" in bad.logs
    assert "20251020000000_after" not in rows
    assert "half_done" not in db.row_counts(pg_db)  # rolled back with its migration
    with pytest.raises(MigrationFailed, match="(?s)P3009.*20251014090000_breaks.*UTC failed"):
        apply_pending(pg_db, local)
    status = migration_status(local, pg_db)
    assert check(status.checks, "failed migrations").status is Status.FAIL


def test_apply_refuses_a_non_empty_schema_without_prisma_table(tmp_path: Path, pg_db: str) -> None:
    run_sql(pg_db, "CREATE TABLE legacy (id int)")
    local = read_migrations(write(tmp_path, {"20250903120000_init": INIT}))
    with pytest.raises(MigrationFailed, match="P3005"):
        apply_pending(pg_db, local)


def test_concurrent_apply_raises_lock_held(tmp_path: Path, pg_db: str) -> None:
    local = read_migrations(
        write(
            tmp_path,
            {
                "20250903120000_init": INIT,
                "20250917093000_slow": "SELECT pg_sleep(1.5); CREATE TABLE slow_done (id int);",
            },
        )
    )
    errors: list[Exception] = []

    def first() -> None:
        try:
            apply_pending(pg_db, local)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    worker = threading.Thread(target=first)
    worker.start()
    time.sleep(0.5)
    started = time.monotonic()
    with pytest.raises(LockHeld, match=r"pg_advisory_lock\(72707369\).*deploybook migrate"):
        apply_pending(pg_db, local, lock_wait_s=0.3)
    assert time.monotonic() - started < 2
    worker.join()
    assert not errors and "slow_done" in db.row_counts(pg_db)


def test_lock_held_by_another_session(tmp_path: Path, pg_db: str) -> None:
    local = read_migrations(write(tmp_path, {"20250903120000_init": INIT}))
    with db.connect(pg_db, autocommit=True, application_name="someone else") as other:
        other.execute("SELECT pg_advisory_lock(%s)", (PRISMA_LOCK_KEY,))
        with pytest.raises(LockHeld, match="someone else"):
            apply_pending(pg_db, local, lock_wait_s=0.2)
    assert apply_pending(pg_db, local)  # released with the session


# -- the dry run -----------------------------------------------------------------------
TROUBLE = {
    "20251001000000_ok": "CREATE TABLE objectives (id int PRIMARY KEY);\n"
    "DELETE FROM concepts WHERE id > 5;\n"
    "INSERT INTO content_chunks (concept_id) VALUES (1);",
    "20251002000000_fails_midway": "CREATE TABLE validation_prompts (id int);\n"
    "ALTER TABLE missing_table ADD COLUMN x int;",
    "20251003000000_blocked": "ALTER TABLE validation_prompts ADD COLUMN y int;",
    "20251004000000_needs_later": "CREATE INDEX calib_user_idx ON calibration_events (user_id);",
    "20251005000000_concurrently": (
        'CREATE INDEX CONCURRENTLY "concepts_name_idx" ON "concepts"("name");'
    ),
    "20251005000000_concurrently_mixed": "CREATE TABLE t2 (id int);\n"
    "CREATE INDEX CONCURRENTLY t2_idx ON t2 (id);",
    "20251006000000_later": "CREATE TABLE calibration_events (user_id text);",
    "20251007000000_pgcrypto": 'CREATE EXTENSION IF NOT EXISTS "pgcrypto";',
    "20251008000000_big_vectors": "CREATE TABLE big_embeddings (embedding vector(3072));\n"
    "CREATE INDEX big_idx ON big_embeddings USING hnsw (embedding vector_cosine_ops);",
    "20251009000000_commits": "UPDATE concepts SET name = name || '!';\nCOMMIT;",
}


@pytest.fixture
def migrated(tmp_path: Path, pg_db: str) -> tuple[str, LocalMigrations]:
    folder = write(
        tmp_path,
        {"20250903120000_init": INIT, **TROUBLE},
        loose={"analytics_views.sql": "CREATE VIEW concept_names AS SELECT name FROM concepts;"},
    )
    apply_pending(pg_db, [read_migrations(folder).migrations[0]])
    return pg_db, read_migrations(folder)


def test_dry_run_reports_each_trouble_and_changes_nothing(
    migrated: tuple[str, LocalMigrations],
) -> None:
    url, local = migrated
    status = migration_status(local, url, raw_sql=["analytics_views.sql"])
    assert len(status.pending) == len(TROUBLE)
    names_before = db.row_counts(url)
    data_before = (
        db.connect(url).execute("SELECT string_agg(name, ',' ORDER BY id) FROM concepts").fetchone()
    )
    report = dry_run(url, status.pending, local.raw(["analytics_views.sql"]), lock_timeout="1s")
    r = {x.name: x for x in report.results}
    c = {x.name.removeprefix("dry run: "): x for x in report.checks}

    assert r["20251001000000_ok"].status is Status.PASS
    assert ("concepts", "RowExclusiveLock") in r["20251001000000_ok"].locks
    assert "objectives" in r["20251001000000_ok"].tables
    bad = r["20251002000000_fails_midway"]
    assert bad.status is Status.FAIL and bad.error["sqlstate"] == "42P01"
    assert bad.error["line"] == 2 and "missing_table" in bad.error["message"]
    assert r["20251003000000_blocked"].blocked_by == "20251002000000_fails_midway"
    assert r["20251003000000_blocked"].status is Status.WARN
    assert r["20251004000000_needs_later"].ordering_after == "20251006000000_later"
    assert "ordering error" in c["20251004000000_needs_later"].evidence
    assert r["20251005000000_concurrently"].status is Status.WARN
    assert (
        "CREATE INDEX CONCURRENTLY cannot run inside a transaction block"
        in c["20251005000000_concurrently"].evidence
    )
    assert r["20251005000000_concurrently_mixed"].status is Status.FAIL
    assert r["20251006000000_later"].status is Status.PASS
    assert (
        "pgcrypto" in c["20251007000000_pgcrypto"].evidence
        and r["20251007000000_pgcrypto"].status is Status.FAIL
    )
    big = c["20251008000000_big_vectors"]
    assert big.status is Status.FAIL and "2000 dimensions" in big.evidence
    commits = r["20251009000000_commits"]
    assert commits.status is Status.WARN and "transaction control (COMMIT)" in commits.note
    assert c["analytics_views.sql (raw SQL)"].status is Status.PASS

    assert report.harmless and c["dry run changed nothing"].status is Status.PASS
    assert (
        report.fingerprint_before == report.fingerprint_after == fingerprint.schema_fingerprint(url)
    )
    assert db.row_counts(url) == names_before
    with db.connect(url) as conn:
        assert (
            conn.execute("SELECT string_agg(name, ',' ORDER BY id) FROM concepts").fetchone()
            == data_before
        )
    assert migration_status(local, url).applied == ["20250903120000_init"]


def test_dry_run_lock_timeout_is_reported(migrated: tuple[str, LocalMigrations]) -> None:
    url, local = migrated
    pending = [m for m in local.migrations if m.name == "20251001000000_ok"]
    with db.connect(url) as holder:
        holder.execute("LOCK TABLE concepts IN SHARE MODE")  # blocks DELETE, not count(*)
        t0 = time.monotonic()
        report = dry_run(url, pending, lock_timeout="200ms")
        assert time.monotonic() - t0 < 5
        holder.rollback()
    res = report.results[0]
    assert res.status is Status.FAIL and res.error["sqlstate"] == "55P03"
    assert "lock_timeout" in report.checks[0].evidence


def test_enum_value_added_by_an_earlier_migration(tmp_path: Path, pg_db: str) -> None:
    folder = write(
        tmp_path,
        {
            "20250903120000_init": "CREATE TYPE mood AS ENUM ('calm'); CREATE TABLE m (v mood);",
            "20251001000000_add": "ALTER TYPE mood ADD VALUE 'tense';",
            "20251002000000_use": "INSERT INTO m VALUES ('tense');",
        },
    )
    local = read_migrations(folder)
    apply_pending(pg_db, local.migrations[:1])
    report = dry_run(pg_db, local.migrations[1:])
    assert [x.status for x in report.results] == [Status.PASS, Status.WARN]
    assert report.harmless


def test_dry_run_reports_a_folder_without_migration_sql(tmp_path: Path, pg_db: str) -> None:
    folder = write(tmp_path, {"20251001000000_fine": "CREATE TABLE fine (id int);"})
    (folder / "20251002000000_empty").mkdir()
    report = dry_run(pg_db, read_migrations(folder).migrations)
    assert [x.status for x in report.results] == [Status.PASS, Status.FAIL]
    assert "migration.sql is missing" in report.checks[1].evidence and report.harmless


# -- lint ------------------------------------------------------------------------------
def test_lint_groups_by_rule_serious_first_and_never_blocks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    local = read_migrations(
        write(
            tmp_path,
            {
                "20250903120000_init": INIT,
                "20251001000000_required": "ALTER TABLE concepts ADD COLUMN slug text NOT NULL;",
                "20251002000000_index_big": "-- CreateIndex\n"
                'CREATE INDEX "concepts_name_idx" ON "concepts"("name");',
                "20251003000000_index_empty": "SELECT 1;\n"
                'CREATE INDEX "content_chunks_concept_idx" ON "content_chunks"("concept_id");',
            },
        )
    )
    rows = {"concepts": 10, "content_chunks": 0}
    checks = lint(local.migrations[1:], row_counts=rows)
    assert checks.ok and all(not c.critical for c in checks)  # lint never blocks a gate
    names = [c.name for c in checks]
    assert names[0] == "squawk lint"
    # serious rules first: the non-concurrent index on a table with rows, the required field
    index = check(checks, "lint: require-concurrent-index-creation")
    assert names.index(index.name) < names.index("lint: require-lock-timeout")
    assert "SERIOUS" in index.evidence and "20251002000000_index_big line 2" in index.evidence
    assert "concepts: 10 rows" in index.evidence and "content_chunks: 0 rows" in index.evidence
    assert "! 20251003000000_index_empty" not in index.evidence  # an empty table: not serious
    assert "×2 in 2 file(s)" in index.evidence
    required = check(checks, "lint: adding-required-field")
    assert required.status is Status.WARN and "20251001000000_required: line 1" in required.evidence
    summary = checks[0]
    assert (
        "require-concurrent-index-creation in 20251002000000_index_big line 2" in summary.evidence
    )
    # one check per rule, not per file; timeout rules stand (apply sets no lock_timeout)
    assert not [n for n in names if "20251001000000_required" in n]
    lock = check(checks, "lint: require-lock-timeout")
    assert "sets no lock_timeout" in lock.evidence and "×3 in 3 file(s)" in lock.evidence
    quiet = lint(local.migrations[1:], row_counts=rows, applier_settings={"lock_timeout": "5s"})
    assert "lint: require-lock-timeout" not in [c.name for c in quiet]
    assert "require-lock-timeout (deploybook's apply sets lock_timeout = 5s)" in quiet[0].evidence
    monkeypatch.setattr(sqllint, "squawk_path", lambda: None)
    skipped = lint(local.migrations)
    assert [x.status for x in skipped] == [Status.SKIP] and "pip install squawk-cli" in skipped[
        0
    ].evidence


def test_split_sql_handles_quotes_comments_and_dollar_bodies() -> None:
    script = """-- a comment; with a semicolon
CREATE FUNCTION f() RETURNS text AS $body$ SELECT 'a;b'; $body$ LANGUAGE sql;
/* block ; /* nested ; */ */ INSERT INTO "we;ird" VALUES ('it''s; fine', E'esc\\'; still');
SELECT 1"""
    stmts = split_sql(script)
    assert [s.code.split()[0] for s in stmts] == ["CREATE", "INSERT", "SELECT"]
    assert stmts[0].line == 2 and stmts[1].line == 3 and stmts[2].line == 4


# -- diagnosis on the fixture's variants (real-shaped Americano migrations) -------------
@pytest.fixture
def variant_dry_run(tmp_path: Path, pg_db: str):
    """Dry run of a fixture variant's pending migrations on a database at v1.3.0."""
    from deploybook.sandbox import fixture
    from deploybook.sandbox.fixture_facts import MIGRATIONS_DIR

    def run(variant: str):
        checkout = tmp_path / variant
        fixture.create_checkout(checkout, variant=variant)
        local = read_migrations(checkout / MIGRATIONS_DIR)
        released = [m for m in local.migrations if m.name < "20251014"]
        apply_pending(pg_db, released)
        pending = migration_status(local, pg_db).pending
        report = dry_run(pg_db, pending)
        assert report.harmless
        return report, {c.name.removeprefix("dry run: "): c for c in report.checks}

    return run


def test_ordering_error_found_by_retry_names_the_migration_to_come_first(variant_dry_run) -> None:
    report, c = variant_dry_run("later-fix-ordering")
    index = c["20251028101000_lecture_summary_embedding_index"]
    assert index.status is Status.FAIL and index.critical
    assert index.data["retried"] and index.data["retry_error"] is None
    assert index.data["ordering_after"] == "20251028102000_lecture_summary_embedding_dimensions"
    assert "ordering error" in index.evidence and "succeeds when retried" in index.evidence
    assert "statement 1 (line 2)" in index.evidence
    assert c["20251028102000_lecture_summary_embedding_dimensions"].status is Status.PASS
    dims = migrated_vectors(report)
    assert dims["lectures.summary_embedding"] == 1536  # the in-order state, fix applied


def migrated_vectors(report) -> dict[str, int | None]:
    return {f"{v.table}.{v.column}": v.dim for v in report.migrated.vector_columns}


def test_schema_drift_is_one_root_cause_with_knock_ons(variant_dry_run) -> None:
    report, c = variant_dry_run("schema-drift")
    names = [
        "20251028100000_study_session_missions",
        "20251028101000_study_session_indexes",
        "20251028102000_validation_response_sessions",
    ]
    root, *knock_ons = (c[n] for n in names)
    assert root.status is Status.FAIL and 'relation "study_sessions"' in root.evidence
    assert "schema drift" in root.evidence and "model StudySession" in root.evidence
    assert "prisma migrate diff --from-migrations" in root.evidence
    assert "migrate resolve --applied" in root.evidence
    assert root.data["knock_ons"] == names[1:]
    for k in knock_ons:
        assert k.status is Status.WARN and k.data["blocked_by"] == names[0]
        assert "knock-on" in k.evidence and "does not exist" in k.evidence
    failed = [x.name for x in report.checks if x.status is Status.FAIL]
    assert failed == [f"dry run: {names[0]}"]
    drift = c["schema.prisma vs migrations"]
    assert drift.status is Status.WARN and "StudySession → study_sessions" in drift.evidence


def test_missing_extension_is_the_root_cause_and_its_users_knock_ons(variant_dry_run) -> None:
    report, c = variant_dry_run("missing-extension")
    root = c["20251028100000_study_groups"]
    assert root.status is Status.FAIL and "uuid-ossp" in root.evidence
    assert "not available on this server" in root.evidence and "line 2" in root.evidence
    members = c["20251028101000_study_group_members"]
    tokens = c["20251028102000_mission_share_tokens"]
    assert members.status is Status.WARN and members.data["blocked_by"] == root.name.removeprefix(
        "dry run: "
    )
    assert tokens.status is Status.WARN and "uuid-ossp" in tokens.evidence
    assert "uuid_generate_v4" in tokens.evidence
    assert root.data["knock_ons"] == [
        "20251028101000_study_group_members",
        "20251028102000_mission_share_tokens",
    ]
    assert "uuid-ossp" not in report.migrated.extensions


def test_wrong_dimension_shows_on_the_migrated_state(variant_dry_run) -> None:
    from deploybook.systems.prisma.migrated import vector_checks

    report, c = variant_dry_run("embedding-dimension-change")
    assert c["20251028100000_gemini_chunk_embeddings"].status is Status.PASS
    assert migrated_vectors(report)["content_chunks.embedding_gemini"] == 768
    checks = {x.name: x for x in vector_checks(report.migrated, 1536, "7")}
    dims = checks["vector dimensions = 1536"]
    assert dims.status is Status.FAIL
    assert "content_chunks.embedding_gemini is vector(768)" in dims.evidence
    assert checks["pgvector installed"].status is Status.PASS


def test_pgvector_created_by_a_pending_migration_passes(tmp_path: Path, pg_db: str) -> None:
    from deploybook.systems.prisma.migrated import vector_checks

    run_sql(pg_db, "DROP EXTENSION vector")
    folder = write(
        tmp_path, {"20250903120000_init": 'CREATE EXTENSION IF NOT EXISTS "vector";\n' + INIT}
    )
    report = dry_run(pg_db, read_migrations(folder).migrations)
    assert report.harmless and "vector" not in db.extensions(pg_db)
    checks = {x.name: x for x in vector_checks(report.migrated, 1536, "7")}
    assert checks["pgvector installed"].status is Status.PASS
    assert "created by a pending migration" in checks["pgvector installed"].evidence
    assert checks["vector dimensions = 1536"].status is Status.PASS
    state = next(x for x in report.checks if x.name == "dry run: migrated state")
    assert "created by the migrations: vector" in state.evidence


# -- lock hold times (what a live dry run makes traffic wait for) -------------------------
def test_dry_run_times_each_lock_until_the_transaction_ends_worst_first(
    tmp_path: Path, pg_db: str
) -> None:
    folder = write(
        tmp_path,
        {
            "20250903120000_init": INIT,
            "20251001000000_alter": 'ALTER TABLE "concepts" ADD COLUMN "slug" TEXT;\n',
            "20251002000000_slow": "SELECT pg_sleep(0.6);\n",
            "20251003000000_fails": 'CREATE TABLE "half" ("id" INTEGER);\n'
            "SELECT pg_sleep(0.3);\n"
            'ALTER TABLE "nope" ADD COLUMN "x" INTEGER;\n',
            "20251004000000_late": 'CREATE INDEX "chunks_concept_idx" ON "content_chunks" '
            '("concept_id");\n',
        },
    )
    local = read_migrations(folder)
    apply_pending(pg_db, local.migrations[:1])
    waited: list[float] = []

    def reader() -> None:
        """Live traffic: a read of concepts, issued once the dry run holds its lock."""
        with db.connect(pg_db, autocommit=True, application_name="traffic") as conn:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                row = conn.execute(
                    "SELECT 1 FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                    "WHERE c.relname = 'concepts' AND l.mode = 'AccessExclusiveLock' "
                    "AND l.granted"
                ).fetchone()
                if row:
                    break
                time.sleep(0.02)
            t0 = time.monotonic()
            conn.execute("SELECT count(*) FROM concepts").fetchone()
            waited.append(time.monotonic() - t0)

    traffic = threading.Thread(target=reader)
    traffic.start()
    report = dry_run(pg_db, local.migrations[1:])
    traffic.join(timeout=15)
    holds = report.lock_holds
    assert [h.held_s for h in holds] == sorted((h.held_s for h in holds), reverse=True)
    concepts = next(
        h for h in holds if h.relation == "concepts" and h.mode == "AccessExclusiveLock"
    )
    assert holds[0] == concepts, "the lock taken first and held to the end is the worst"
    assert concepts.taken_by == "20251001000000_alter" and concepts.statement == 1
    assert concepts.until == "the dry run's transaction ended" and concepts.blocks
    assert concepts.held_s >= 0.9  # the slow migration and the failing one ran meanwhile
    # The measure is what traffic saw: the read waited (almost) exactly that long.
    assert len(waited) == 1 and waited[0] >= 0.8
    assert abs(concepts.held_s - waited[0]) < 0.35, (concepts.held_s, waited[0])
    # The failing migration's locks end with its savepoint, once in its turn, once retried.
    halves = sorted((h.taken_by, h.until) for h in holds if h.relation == "half")
    assert halves == [
        ("20251003000000_fails", "its savepoint was rolled back"),
        ("20251003000000_fails (retried)", "its retry's savepoint was rolled back"),
    ]
    assert all(0.25 <= h.held_s < 0.6 for h in holds if h.relation == "half")
    half = next(h for h in holds if h.relation == "half")
    index = next(h for h in holds if h.relation == "content_chunks")
    assert index.taken_by == "20251004000000_late" and index.mode == "ShareLock"
    assert index.held_s < concepts.held_s and index.blocks == "writes"
    new_index = next(h for h in holds if h.relation == "chunks_concept_idx")
    assert new_index.created and new_index.blocks is None  # nobody else can see it yet
    assert half.created and not half.blocks
    assert report.harmless
    shown = lock_check(holds, "7")
    assert shown.status is Status.WARN and not shown.critical and len(shown.data) == len(holds)
    lines = shown.evidence.splitlines()
    assert "longest concepts ACCESS EXCLUSIVE for" in lines[0]
    assert lines[1].startswith("concepts (table) ACCESS EXCLUSIVE held ")
    assert "blocked reads and writes (20251001000000_alter statement 1)" in lines[1]
    assert "transaction ended, worst first" in lines[0]
    quiet = lock_check([h for h in holds if not h.blocks], "7")
    assert quiet.status is Status.PASS and "none blocking" in quiet.evidence


# -- what the apply will cost production (issue 23) ---------------------------------------
@pytest.fixture
def sized_dry_run(tmp_path: Path, pg_db: str):
    """Dry run of a fixture variant on a database at v1.3.0 holding ``chunks`` seeded
    content_chunks rows (real 1536-dimension vectors), with a given statement budget."""
    from deploybook.sandbox import fixture
    from deploybook.sandbox.fixture_facts import MIGRATIONS_DIR
    from deploybook.sandbox.fixture_seed import seed

    def run(variant: str, chunks: int, budget: str, **kw):
        checkout = tmp_path / variant
        fixture.create_checkout(checkout, variant=variant)
        local = read_migrations(checkout / MIGRATIONS_DIR)
        apply_pending(pg_db, [m for m in local.migrations if m.name < "20251014"])
        seed(pg_db, chunks=chunks)
        pending = migration_status(local, pg_db).pending
        report = dry_run(pg_db, pending, statement_timeout=budget, **kw)
        assert report.harmless
        return report, {c.name.removeprefix("dry run: "): c for c in report.checks}

    return run


L2_INDEX = "20251028100000_content_chunks_l2_index"
GOOD_PENDING = [
    "20251014090000_understanding_validation",
    "20251024091500_adaptive_irt",
    "20251027110000_understanding_analytics",
]


def test_an_index_build_over_the_budget_is_an_overrun_finding_not_an_error(
    sized_dry_run,
) -> None:
    from deploybook.systems.prisma.advice import advise
    from deploybook.systems.prisma.impact import impact

    report, c = sized_dry_run("hnsw-index-build", 2000, "500ms")
    found = c[L2_INDEX]
    assert found.status is Status.WARN and not found.data["error"]
    assert "exceeds 0.5 s — at least 0.5 s of SHARE on content_chunks" in found.evidence
    assert "not an SQL error" in found.evidence and "SQLSTATE" not in found.evidence
    assert "run_to_completion" in found.evidence
    assert found.data["overrun"]["outcome"] == "overrun"
    # The release's own migrations still pass after it.
    assert all(c[name].status is Status.PASS for name in GOOD_PENDING)
    shown = impact([r.as_dict() for r in report.statements], report.tables, report.budget_s)
    assert shown.at_least and shown.tables[0].table == "content_chunks"
    line = shown.lines()[0]
    assert line.startswith("content_chunks: writes blocked ≥0.")
    assert "(CREATE INDEX … USING hnsw; 20251028100000_content_chunks_l2_index statement 1)" in line
    row = next(r for r in shown.statements if r["migration"] == L2_INDEX)
    assert (row["table"], row["lock"], row["outcome"]) == ("content_chunks", "SHARE", "overrun")
    assert row["blocks"] == "writes, DDL" and row["rows"] == 2000 and row["bytes"] > 10_000_000
    (advice,) = [
        a
        for a in advise([r.as_dict() for r in report.statements], report.tables)
        if a["migration"] == L2_INDEX
    ]
    assert advice["kind"] == "concurrent index" and "2,000 rows" in advice["advice"]
    assert "CREATE INDEX CONCURRENTLY in a migration of its own" in advice["advice"]
    assert f"{L2_INDEX} statement 1 (line 6)" in advice["advice"]
    # What 02 records of it: the impact check warns (an overrun), the advice check names it.
    from deploybook.config.impact import ImpactSpec
    from deploybook.runbooks.migration_dry_run.impact import impact_checks

    target = {"target": "scratch", "verified_copy": True, "restores": 1}
    impact_check, advice_check = impact_checks(report, target, ImpactSpec())
    assert impact_check.status is Status.WARN and not impact_check.critical
    assert "1 over the 0.5 s budget" in impact_check.evidence.splitlines()[0]
    assert impact_check.evidence.splitlines()[1] == line
    assert impact_check.data["target"] == target and impact_check.data["lines"][0] == line
    assert advice_check.status is Status.WARN and L2_INDEX in advice_check.evidence


def test_an_overrun_run_to_completion_is_measured_to_its_end(sized_dry_run) -> None:
    report, c = sized_dry_run("hnsw-index-build", 2000, "500ms", complete=True)
    found = c[L2_INDEX]
    assert found.status is Status.WARN and "run to completion" in found.evidence
    measured = next(r for r in report.statements if r.unit == L2_INDEX)
    assert measured.outcome == "overrun, completed" and measured.duration_s > 0.5
    assert ("content_chunks", "ShareLock") in measured.locks and measured.observed


def test_an_ordinary_migration_is_an_impact_row_with_its_measured_time(sized_dry_run) -> None:
    from deploybook.systems.prisma.impact import impact

    report, c = sized_dry_run("ordinary-migration", 50, "60s")
    name = "20251028100000_lecture_reading_minutes"
    assert c[name].status is Status.PASS
    shown = impact([r.as_dict() for r in report.statements], report.tables, report.budget_s)
    (row,) = [r for r in shown.statements if r["migration"] == name]
    assert (row["table"], row["lock"], row["blocks"]) == (
        "lectures",
        "ACCESS EXCLUSIVE",
        "reads, writes, DDL",
    )
    assert row["outcome"] == "ok" and 0 <= row["duration_s"] < 60 and not row["rewrite"]
    assert row["rows"] == 8 and row["observed"]
    lectures = next(t for t in shown.tables if t.table == "lectures")
    assert lectures.reads_blocked_s >= row["duration_s"] and not shown.at_least
    assert shown.total_s == pytest.approx(sum(r.duration_s for r in report.statements), abs=0.01)


def test_rewrite_of_a_big_table_gets_expand_contract_advice(tmp_path: Path, pg_db: str) -> None:
    from deploybook.systems.prisma.advice import advise

    folder = write(
        tmp_path,
        {
            "20250903120000_init": INIT,
            "20251001000000_widen": 'ALTER TABLE "concepts" ALTER COLUMN "id" TYPE BIGINT;\n',
            "20251002000000_fk": 'ALTER TABLE "content_chunks" ADD CONSTRAINT "c_fk" '
            'FOREIGN KEY ("concept_id") REFERENCES "concepts"("id");\n',
        },
    )
    local = read_migrations(folder)
    apply_pending(pg_db, local.migrations[:1])
    run_sql(
        pg_db, 'INSERT INTO "content_chunks" ("concept_id") SELECT 1 FROM generate_series(1, 5)'
    )
    report = dry_run(pg_db, local.migrations[1:])
    widen = next(r for r in report.statements if r.unit == "20251001000000_widen")
    assert widen.rewrites == ["concepts"]
    found = advise([r.as_dict() for r in report.statements], report.tables, big_table_rows=10)
    kinds = {(a["kind"], a["migration"], a["table"]) for a in found}
    assert ("expand/contract", "20251001000000_widen", "concepts") in kinds
    assert ("foreign key NOT VALID", "20251002000000_fk", "content_chunks") in kinds
    small = advise([r.as_dict() for r in report.statements], report.tables, big_table_rows=11)
    assert all(a["kind"] != "expand/contract" for a in small)  # 10 rows: not big
