"""Runbook 02 on the sandbox: the real notebook passes and changes nothing; the failure
paths (bad migrations, damaged snapshot, refused scratch name) are reported by name.

The sandbox stack is shared and read-only: every test here also proves that the sandbox
database's schema fingerprint and exact row counts are what they were before.
"""

from __future__ import annotations

import os
import re
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import scrapbook as sb
import yaml
from sandbox_fixtures import CANARIES

from deploybook.config import DatabaseSpec, read_params_yaml
from deploybook.core import render
from deploybook.core.checks import Check, Checks, Status
from deploybook.errors import GateFailed, MigrationFailed
from deploybook.ops.runner import run_runbook
from deploybook.runbooks.migration_dry_run import cells as mc
from deploybook.runbooks.migration_dry_run.impact import impact as mc_impact
from deploybook.sandbox import fixture, stack
from deploybook.session.overview import load_overview
from deploybook.session.runbook import Runbook
from deploybook.systems.postgres import db, fingerprint
from deploybook.systems.postgres.snapshot import file_sha256
from deploybook.systems.prisma import migrations
from deploybook.systems.prisma.apply import apply_pending
from deploybook.systems.prisma.lockclock import BLOCKS, mode_name

ROOT = Path(__file__).resolve().parents[1]
PENDING = [
    "20251014090000_understanding_validation",
    "20251024091500_adaptive_irt",
    "20251027110000_understanding_analytics",
]


def _url() -> str:
    return stack.sandbox_environment("sandbox")["DATABASE_URL"]


def _sandbox_checkout() -> str:
    return stack.sandbox_environment("sandbox")["AMERICANO_CHECKOUT"]


def _facts(url: str) -> tuple[str, dict[str, int]]:
    return fingerprint.schema_fingerprint(url), db.row_counts(url)


def _scratch_databases(url: str) -> list[str]:
    with db.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE 'deploybook\\_scratch\\_%'"
        ).fetchall()
    return [r[0] for r in rows]


def _by_name(checks: Checks) -> dict[str, Check]:
    return {c.name: c for c in checks}


@pytest.fixture
def unchanged(sandbox: dict[str, Any]) -> Iterator[str]:
    """The sandbox URL; after the test, the database must be exactly as before."""
    url = _url()
    before = _facts(url)
    yield url
    assert _facts(url) == before, "the sandbox database changed"
    assert _scratch_databases(url) == []


@pytest.fixture
def make_run(unchanged: str, tmp_path: Path) -> Iterator[Callable[..., Runbook]]:
    """A Runbook on a tmp copy of params/sandbox.yaml (outputs in tmp; environ restored)."""
    saved = os.environ.copy()
    os.environ["DEPLOYBOOK_OUTPUTS"] = str(tmp_path / "outputs")

    def make(
        checkout: Path | None = None, environment: dict[str, str] | None = None, **database: Any
    ) -> Runbook:
        raw = read_params_yaml(ROOT / "params" / "sandbox.yaml")
        if checkout is not None:
            raw["checkout"]["path"] = str(checkout)
        raw["environment"].update(environment or {})
        raw["database"].update(
            {k: v if isinstance(v, dict) else str(v) for k, v in database.items()}
        )
        path = tmp_path / "sandbox.yaml"
        path.write_text(yaml.safe_dump(raw))
        return Runbook(
            "02-migration-dry-run", "sandbox", "v1.4.0", str(path), "ci", False, "v1.3.0"
        )

    try:
        yield make
    finally:
        os.environ.clear()
        os.environ.update(saved)


def test_02_passes_records_snapshot_and_status_and_changes_nothing(unchanged: str) -> None:
    rows_before = db.row_counts(unchanged)
    result = run_runbook(
        "02-migration-dry-run", "sandbox", "v1.4.0", {"previous_release": "v1.3.0"}
    )
    assert result.status == "passed", result.error

    scraps = sb.read_notebook(str(result.record)).scraps
    snap = scraps["snapshot"].data
    path = Path(snap["path"])
    assert path.parent == result.record.parent / "snapshots"
    # Directory format by default (issue 19): the manifest says how and why.
    assert path.name.startswith("sandbox-v1.4.0-") and path.is_dir()
    assert snap["format"] == "directory" and snap["jobs"] >= 1 and snap["why"]
    assert file_sha256(path) == (snap["sha256"], snap["size"])
    assert snap["inventory"]["row_counts"] == rows_before

    status = scraps["migration_status"].data
    assert status["pending"] == PENDING
    assert status["failed"] == [] and status["drift"] == [] and len(status["applied"]) == 4

    checks = {c["name"]: c for c in scraps["checks"].data}
    assert checks["snapshot taken"]["status"] == "pass"
    assert snap["sha256"] in checks["snapshot taken"]["evidence"]
    assert checks["restore: row counts"]["status"] == "pass"
    assert all(checks[f"dry run: {name}"]["status"] == "pass" for name in PENDING)
    assert checks["dry run changed nothing"]["status"] == "pass"
    # The shipped params keep the verified copy as the rollback standby (05 swaps it in):
    # the dry run restores a copy of its own and drops it; the standby refuses connections.
    standby = checks["rollback standby"]
    assert standby["status"] == "pass" and standby["data"]["sha256"] == snap["sha256"]
    assert standby["data"]["standby"] == f"americano_sandbox_standby_{snap['sha256'][:12]}"
    target = checks["dry run target"]
    assert "scratch restore deploybook_scratch_sandbox" in target["evidence"]
    assert not target["data"]["verified_copy"] and target["data"]["restores"] == 1
    assert "verified copy kept for the dry run" not in checks
    settled = checks["rollback standby after the gate"]  # 02 passes: it stays for 05
    assert settled["status"] == "pass" and standby["data"]["standby"] in settled["evidence"]
    assert _scratch_databases(unchanged) == []
    with db.connect(db.with_dbname(unchanged, "postgres"), autocommit=True) as conn:
        allowed = conn.execute(
            "SELECT datallowconn FROM pg_database WHERE datname = %s",
            (standby["data"]["standby"],),
        ).fetchone()
        conn.execute(f'DROP DATABASE "{standby["data"]["standby"]}"')  # the next test's stack
    assert allowed == (False,)
    impact = scraps["migration_impact"].data
    assert impact["target"] == target["data"] and impact["statements"]
    assert {r["migration"] for r in impact["statements"]} >= set(PENDING)
    assert all(r["duration_s"] >= 0 and r["outcome"] == "ok" for r in impact["statements"])
    window = checks["deployment window fit"]
    assert window["status"] == "pass" and window["section"] == "5"
    assert "of the 60 min deployment window (plan section 5)" in window["evidence"]
    assert impact["window"]["text"] == window["evidence"]
    assert checks["migration impact"]["status"] == "pass"
    assert checks["vector dimensions = 1536"]["status"] == "pass"
    assert not [c for c in checks.values() if c["status"] == "fail"]

    html = result.html.read_text()
    assert "Migration impact on production" in html and "Window fit:" in html
    # The release timeline (overview) shows the window fit 02 measured.
    overview = load_overview("sandbox", "v1.4.0", result.record.parents[2])
    assert overview.impact_note == (
        f"Migrations as 02 measured them ({result.record.name}): {window['evidence']}."
    )
    assert overview.impact_note in render.overview.window_note(overview)
    for f in (result.record, result.html):
        text = f.read_text()
        assert not [v for v in CANARIES.values() if v in text]
        assert "postgresql://" not in text


def test_bad_migrations_are_named_and_database_unchanged(
    make_run: Callable[..., Runbook], tmp_path: Path
) -> None:
    checkout = tmp_path / "checkout"
    fixture.create_checkout(checkout, variant="bad-migrations")
    run = make_run(checkout=checkout)

    status = _by_name(mc.migration_status(run))
    assert status["migrations are the release's"].status is Status.PASS
    assert status["duplicate timestamps"].status is Status.WARN
    assert "20251028094000_mission_notes" in status["duplicate timestamps"].evidence
    assert "add_study_streaks" in status["migration folder names"].evidence

    report = mc.dry_run(run, target="live", progress=False)
    checks = _by_name(report)
    concurrently = checks["dry run: 20251028090000_content_chunk_page_index"]
    assert concurrently.status is Status.WARN and "CONCURRENTLY" in concurrently.evidence
    ivfflat = checks["dry run: 20251028091000_full_dimension_embeddings"]
    assert ivfflat.status is Status.FAIL and "2000 dimensions" in ivfflat.evidence
    ordering = checks["dry run: 20251028092000_objective_prerequisite_links"]
    assert ordering.status is Status.FAIL and "ordering error" in ordering.evidence
    assert ordering.data["ordering_after"] == "20251028093000_objective_prerequisites"
    postgis = checks["dry run: 20251028095000_clinic_locations"]
    assert postgis.status is Status.FAIL and "postgis" in postgis.evidence
    assert all(checks[f"dry run: {name}"].status is Status.PASS for name in PENDING)
    assert checks["dry run changed nothing"].status is Status.PASS
    assert not report.ok


@pytest.mark.parametrize("damage", ["flipped byte", "truncated"])
def test_damaged_snapshot_fails_verification(
    make_run: Callable[..., Runbook], tmp_path: Path, damage: str
) -> None:
    run = make_run(snapshot_dir=tmp_path / "backups")
    snap = mc.take_snapshot(run, progress=False)
    assert snap is not None and snap.path.parent == tmp_path / "backups"
    # A directory-format snapshot (the default): damage its largest file.
    damaged = (
        max(snap.path.iterdir(), key=lambda p: p.stat().st_size)
        if snap.path.is_dir()
        else snap.path
    )
    data = bytearray(damaged.read_bytes())
    if damage == "flipped byte":
        data[len(data) // 2] ^= 0xFF
    else:
        del data[len(data) // 2 :]
    damaged.write_bytes(bytes(data))

    checks = mc.verify_snapshot_restore(run, snap, progress=False)
    assert [c.status for c in checks] == [Status.FAIL] and not checks.ok
    assert checks[0].evidence.startswith("SnapshotCorrupt: ")
    assert "does not match its recorded SHA-256" in checks[0].evidence
    assert "do not restore it" in checks[0].evidence


def test_scratch_name_outside_the_pattern_is_refused(make_run: Callable[..., Runbook]) -> None:
    # The scratch name carries a timestamp: a pattern without digits can never match it.
    run = make_run(scratch_pattern="^deploybook_scratch_[a-z_]+$")
    snap = mc.take_snapshot(run, progress=False)
    checks = mc.verify_snapshot_restore(run, snap, progress=False)
    assert [c.status for c in checks] == [Status.FAIL]
    assert checks[0].evidence.startswith("RestoreRefused: ")
    assert "does not match the configured pattern" in checks[0].evidence
    assert "nothing was created" in checks[0].evidence


def test_failed_snapshot_is_a_failed_check_and_verification_skips(
    make_run: Callable[..., Runbook], tmp_path: Path
) -> None:
    run = make_run(pg_bin_dir=tmp_path)  # no pg_dump there
    assert mc.take_snapshot(run, progress=False) is None
    assert run.checks[-1].name == "snapshot taken" and run.checks[-1].blocks
    assert "pg_dump not found" in run.checks[-1].evidence
    skipped = mc.verify_snapshot_restore(run, None)
    assert [c.status for c in skipped] == [Status.SKIP]


def test_scratch_name_is_a_valid_identifier_matching_the_default_pattern() -> None:
    name = mc.scratch_name("sandbox-production", "20251101T120000123456Z")
    assert name == "deploybook_scratch_sandbox_production_20251101t120000123456z"
    assert len(name) <= 63
    long = mc.scratch_name("x" * 80, "20251101T120000123456Z")
    assert len(long) == 63


def test_scratch_names_of_a_long_environment_name_stay_unique() -> None:
    """41 characters of env name: verify's and the dry run's scratch names used to be cut
    to the same database (issue 22); a hash of the whole name now ends each."""
    env = "a-very-long-environment-name-for-staging1"
    assert len(env) == 41
    stamp = "20251101T120000123456Z"
    verify, dry = mc.scratch_name(env, stamp), mc.scratch_name(env, stamp + "dry")
    assert verify != dry
    pattern = re.compile(DatabaseSpec().scratch_pattern)
    for name in (verify, dry):
        assert len(name) <= 63 and pattern.fullmatch(name)
    other = mc.scratch_name(env[:-1] + "2", stamp)
    assert other not in (verify, dry)


def test_vector_check_and_lint_read_the_migrated_state(
    make_run: Callable[..., Runbook], tmp_path: Path
) -> None:
    checkout = tmp_path / "checkout"
    fixture.create_checkout(checkout, variant="embedding-dimension-change")
    run = make_run(checkout=checkout)
    assert _by_name(mc.vector_dimensions(run))["vector dimensions = 1536"].status is Status.PASS
    dry = _by_name(mc.dry_run(run, target="live", progress=False))
    assert dry["dry run: 20251028100000_gemini_chunk_embeddings"].status is Status.PASS
    assert "embedding_gemini=vector(768)" in dry["dry run: migrated state"].evidence
    vectors = _by_name(mc.vector_dimensions(run))
    dims = vectors["vector dimensions = 1536"]
    assert dims.status is Status.FAIL and dims.critical
    assert "after the pending migrations (dry run)" in dims.evidence
    assert "content_chunks.embedding_gemini is vector(768)" in dims.evidence
    assert vectors["pgvector installed"].status is Status.PASS
    lint = mc.lint(run)
    assert lint.ok and lint[0].name == "squawk lint"
    names = [c.name for c in lint]
    assert len(names) == len(set(names)) and not [n for n in names if "20251028" in n]
    index = _by_name(lint)["lint: require-concurrent-index-creation"]
    assert "20251028100000_gemini_chunk_embeddings" in index.evidence
    rows = db.row_counts(_url())["content_chunks"]
    assert f"content_chunks: {rows:,} rows" in index.evidence
    assert ("SERIOUS" in index.evidence) is (rows > 0)


# -- where the dry run runs (issue 16 item 2) ----------------------------------------------
PRODUCTION = {"role": "production"}


def test_production_refuses_a_live_dry_run_parameter_before_anything_runs(
    make_run: Callable[..., Runbook], unchanged: str
) -> None:
    run = make_run(environment=PRODUCTION)
    checks = mc.dry_run(run, target="live", progress=False)
    assert [c.name for c in checks] == ["dry run target"] and not checks.ok
    refused = checks[0]
    assert refused.status is Status.FAIL and refused.critical
    assert refused.evidence.startswith("ConfigError: dry_run_target (runbook parameter) 'live'")
    assert "production environment 'sandbox'" in refused.evidence
    assert "`database.allow_live_dry_run: true`" in refused.evidence
    assert "ACCESS EXCLUSIVE" in refused.evidence
    with pytest.raises(GateFailed, match="dry run target"):
        run.finish()


def test_production_refuses_live_from_params_too(
    make_run: Callable[..., Runbook], unchanged: str
) -> None:
    run = make_run(environment=PRODUCTION, dry_run_target="live")
    checks = mc.dry_run(run, progress=False)
    assert [(c.name, c.status) for c in checks] == [("dry run target", Status.FAIL)]
    assert "ConfigError: database.dry_run_target 'live' is refused" in checks[0].evidence
    assert "`database.allow_live_dry_run: true`" in checks[0].evidence
    staging = _by_name(mc.dry_run(make_run(dry_run_target="live"), progress=False))
    assert staging["dry run target"].status is Status.PASS  # staging may
    assert "live database" in staging["dry run target"].evidence


def test_production_dry_run_defaults_to_a_scratch_restore(
    make_run: Callable[..., Runbook], unchanged: str
) -> None:
    run = make_run(environment=PRODUCTION)
    snap = mc.take_snapshot(run, progress=False)
    checks = _by_name(mc.dry_run(run, snap, progress=False))
    target = checks["dry run target"]
    assert target.status is Status.PASS and "scratch restore deploybook_scratch_" in target.evidence
    assert "dry run locks held (live)" not in checks
    assert all(checks[f"dry run: {name}"].status is Status.PASS for name in PENDING)
    assert checks["dry run changed nothing"].status is Status.PASS


def test_allowed_live_production_dry_run_records_lock_hold_times(
    make_run: Callable[..., Runbook], unchanged: str
) -> None:
    run = make_run(environment=PRODUCTION, allow_live_dry_run=True)
    checks = _by_name(mc.dry_run(run, target="live", progress=False))
    target = checks["dry run target"]
    assert target.status is Status.WARN and not target.critical
    assert "allowed by database.allow_live_dry_run" in target.evidence
    locks = checks["dry run locks held (live)"]
    held = [h["held_s"] for h in locks.data]
    assert held and held == sorted(held, reverse=True) and held[0] > 0
    assert {h["taken_by"] for h in locks.data} <= {*PENDING, "analytics_views.sql"}
    # Blocking locks (on relations traffic uses) lead the evidence, worst first; the ones
    # on tables the migrations create are only counted.
    blocking = [h for h in locks.data if not h["created"] and h["mode"] in BLOCKS]
    assert blocking, "the release's foreign keys lock the tables they reference"
    assert locks.status is Status.WARN and not locks.critical
    lines = locks.evidence.splitlines()
    worst = blocking[0]
    assert f"longest {worst['relation']} {mode_name(worst['mode'])} for" in lines[0]
    assert lines[1].startswith(f"{worst['relation']} ({worst['kind']}) ")
    assert f"held {worst['held_s']:.2f}s, blocked writes" in lines[1]
    created = [h for h in locks.data if h["created"]]
    assert created and f"; {len(created)} on relations the dry run created" in lines[0]
    assert len(locks.evidence) < 2000, "the evidence must not be cut"
    assert checks["dry run changed nothing"].status is Status.PASS
    assert all(checks[f"dry run: {name}"].status is Status.PASS for name in PENDING)


# -- a migration killed mid-way (issue 16 item 6) -------------------------------------------
def test_status_fails_naming_a_migration_whose_apply_was_cut_off(
    make_run: Callable[..., Runbook], tmp_path: Path, pg_db: str
) -> None:
    """A real apply loses its connection mid-migration (the backend is terminated while the
    migration sleeps): 02's status names the failed row and both ways to resolve it."""
    checkout = tmp_path / "checkout"
    shutil.copytree(_sandbox_checkout(), checkout, symlinks=True)
    folder = checkout / "apps/web/prisma/migrations"
    name = "20991231000000_slow_backfill"
    (folder / name).mkdir()
    (folder / name / "migration.sql").write_text(
        'CREATE TABLE "slow" ("id" INTEGER);\nSELECT pg_sleep(30);\n'
    )
    errors: list[Exception] = []

    def apply() -> None:
        try:
            apply_pending(pg_db, migrations.read_migrations(folder))
        except MigrationFailed as exc:
            errors.append(exc)

    worker = threading.Thread(target=apply)
    worker.start()
    deadline = time.monotonic() + 20
    while name not in [r.migration_name for r in migrations.read_applied(pg_db) or []]:
        assert time.monotonic() < deadline, "the slow migration never started"
        time.sleep(0.1)
    with db.connect(pg_db, autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = 'deploybook migrate'"
        )
    worker.join(timeout=20)
    assert len(errors) == 1 and errors[0].migration == name

    os.environ["H16B_DATABASE_URL"] = pg_db
    run = make_run(checkout=checkout, url_env="H16B_DATABASE_URL")
    checks = _by_name(mc.migration_status(run))
    failed = checks["failed migrations"]
    assert failed.status is Status.FAIL and failed.critical and failed.data == [name]
    assert failed.evidence.startswith(f"{name} started ")
    assert "prisma migrate deploy refuses with P3009" in failed.evidence
    assert f"`prisma migrate resolve --rolled-back {name}`" in failed.evidence
    assert f"`prisma migrate resolve --applied {name}`" in failed.evidence
    with pytest.raises(GateFailed, match="failed migrations"):
        run.finish()


# -- what the migrations will do to production (issue 23) -----------------------------------
def test_the_verified_copy_is_the_dry_run_target_and_is_dropped_after(
    make_run: Callable[..., Runbook], unchanged: str, tmp_path: Path
) -> None:
    checkout = tmp_path / "checkout"
    fixture.create_checkout(checkout, variant="ordinary-migration")
    run = make_run(checkout=checkout, rollback={"standby": False})  # no standby to keep
    snap = mc.take_snapshot(run, progress=False)
    verified = _by_name(mc.verify_snapshot_restore(run, snap, progress=False))
    kept = verified["verified copy kept for the dry run"]
    scratch = kept.data["scratch"]
    assert kept.status is Status.PASS and "one restore, not two" in kept.evidence
    assert _scratch_databases(unchanged) == [scratch]  # kept for the dry run below
    again = mc.verify_snapshot_restore(run, snap, progress=False)  # the cell run twice
    scratch = _by_name(again)["verified copy kept for the dry run"].data["scratch"]
    assert _scratch_databases(unchanged) == [scratch]  # one copy at a time
    dry = _by_name(mc.dry_run(run, snap, progress=False))
    assert dry["dry run target"].data == {
        "target": "scratch",
        "verified_copy": True,
        "restores": 1,
        "scratch": scratch,
    }
    assert _scratch_databases(unchanged) == []  # the dry run dropped it
    name = "20251028100000_lecture_reading_minutes"
    assert dry[f"dry run: {name}"].status is Status.PASS
    impact = dry["migration impact"]
    assert impact.status is Status.PASS and not impact.critical
    row = next(r for r in impact.data["statements"] if r["migration"] == name)
    assert (row["table"], row["lock"], row["outcome"]) == ("lectures", "ACCESS EXCLUSIVE", "ok")
    assert row["duration_s"] >= 0 and row["rows"] == db.row_counts(unchanged)["lectures"]
    assert any(
        line.startswith("lectures: reads and writes blocked ~") for line in impact.data["lines"]
    )
    view = mc_impact(run)
    assert view.facts.window["fits"] and "fits the window" in view.to_text()
    assert "Migration impact on production" in view._repr_html_()
    assert "lectures" in view._repr_html_()


def test_a_live_target_does_not_keep_the_verified_copy(
    make_run: Callable[..., Runbook], unchanged: str
) -> None:
    run = make_run(rollback={"standby": False})
    snap = mc.take_snapshot(run, progress=False)
    checks = _by_name(mc.verify_snapshot_restore(run, snap, progress=False, target="live"))
    assert "verified copy kept for the dry run" not in checks
    assert _scratch_databases(unchanged) == []
    dry = _by_name(mc.dry_run(run, snap, target="live", progress=False))
    assert dry["dry run target"].data["target"] == "live"
    assert dry["dry run target"].data["restores"] == 0


def test_without_a_verified_copy_the_dry_run_restores_its_own(
    make_run: Callable[..., Runbook], unchanged: str
) -> None:
    run = make_run()
    snap = mc.take_snapshot(run, progress=False)
    dry = _by_name(mc.dry_run(run, snap, progress=False))
    target = dry["dry run target"]
    assert not target.data["verified_copy"] and "no verified copy above" in target.evidence
    assert dry["dry run changed nothing"].status is Status.PASS
