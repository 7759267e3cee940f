"""Runbook 04, plan section 15: post-deploy data integrity against what the release
expects (its migrations, 02's snapshot) and the manual spot checks.

Databases are real (embedded PostgreSQL, a fresh one per test, migrated with the fixture
checkout's Prisma folders); 02's snapshot comes from a record written as the runner writes
one; the end-to-end test runs 04 with papermill on the shared sandbox (read-only: 04
changes nothing).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import nbformat
import pytest
import scrapbook as sb
import yaml
from pg_fixtures import run_sql

from deploybook.config import Params, load_params, read_params_yaml
from deploybook.core import audit
from deploybook.core.checks import Checks, Status, gate
from deploybook.errors import ConfigError, GateFailed
from deploybook.runbooks.smoke import cells as smoke
from deploybook.runbooks.smoke import validation
from deploybook.sandbox.fixture import Checkout, create_checkout, migrations_at, seed
from deploybook.session import scraps as session_scraps
from deploybook.systems.postgres import db
from deploybook.systems.prisma import apply as prisma_apply
from deploybook.systems.prisma import migrations

ROOT = Path(__file__).resolve().parent.parent
URL_ENV = "VALIDATION_TEST_DATABASE_URL"
ENV, RELEASE, PREVIOUS = "staging", "v1.4.0", "v1.3.0"
APPLIED, COUNTS = validation.APPLIED, validation.ROW_COUNTS
SPOT_CHECKS = read_params_yaml(ROOT / "params" / "sandbox.yaml")["spot_checks"]


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Checkout:
    return create_checkout(tmp_path_factory.mktemp("validation") / "americano")


def make_params(tmp_path: Path, checkout: Path, role: str = "staging") -> Params:
    doc = {
        "environment": {"name": ENV, "kind": "staging", "role": role},
        "epic": {"id": "4", "stories": ["4.1"]},
        "checkout": {"path": str(checkout)},
        "database": {"url_env": URL_ENV},
        "services": [{"name": "api", "base_url": "http://127.0.0.1:9"}],
        "spot_checks": SPOT_CHECKS,
    }
    path = tmp_path / f"{ENV}-{role}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return load_params(path, environ={})


@pytest.fixture
def outputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty outputs folder for this test's records (records.find reads it)."""
    folder = tmp_path / "outputs"
    monkeypatch.setenv("DEPLOYBOOK_OUTPUTS", str(folder))
    return folder


def apply(url: str, checkout: Checkout, tag: str | None = None) -> None:
    """Migrate like `prisma migrate deploy`: to the release (default) or to an earlier tag."""
    if tag is None:
        prisma_apply.apply_pending(url, migrations.read_migrations(checkout.migrations_dir))
        return
    folder = migrations_at(checkout, tag)
    try:
        prisma_apply.apply_pending(url, migrations.read_migrations(folder))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def snapshot_record(outputs: Path, row_counts: dict[str, int], status: str = "passed") -> Path:
    """A 02-migration-dry-run record holding a snapshot scrap, as the runner writes one."""
    path = audit.record_path(outputs, ENV, RELEASE, "02-migration-dry-run", None)
    snap = {
        "path": "outputs/snapshots/staging-v1.4.0.dump",
        "database": "americano",
        "created_at": "2025-10-29T09:00:00Z",
        "inventory": {"row_counts": row_counts},
    }
    scrap = nbformat.v4.new_output(
        "display_data",
        data={
            "application/scrapbook.scrap.json+json": {
                "name": "snapshot",
                "data": snap,
                "encoder": "json",
                "version": 1,
            }
        },
        metadata={"scrapbook": {"name": "snapshot", "data": True, "display": False}},
    )
    notebook = nbformat.v4.new_notebook()
    notebook.cells.append(nbformat.v4.new_code_cell("# glued", outputs=[scrap]))
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, path)
    audit.append_ledger(
        outputs,
        ENV,
        record=str(path.relative_to(outputs)),
        runbook="02-migration-dry-run",
        release=RELEASE,
        status=status,
    )
    return path


def by_name(checks: list) -> dict[str, Any]:
    return {c.name: c for c in checks}


def validate(params: Params, url: str, **kwargs: Any) -> dict[str, Any]:
    return by_name(
        validation.post_deploy_validation(params, {URL_ENV: url}, release=RELEASE, **kwargs)
    )


# --- every expected migration applied ----------------------------------------------------------


def test_all_applied_and_no_rows_lost_passes(
    pg_db: str, checkout: Checkout, tmp_path: Path, outputs: Path
) -> None:
    apply(pg_db, checkout)
    seed(pg_db, chunks=5, concepts=3, users=1)
    snapshot_record(outputs, db.row_counts(pg_db))
    run_sql(pg_db, "INSERT INTO concepts (id, name) VALUES ('c-new', 'new concept')")
    checks = validation.post_deploy_validation(
        make_params(tmp_path, checkout.path), {URL_ENV: pg_db}, release=RELEASE
    )
    assert checks.ok and not [c for c in checks if c.status is not Status.PASS], checks.to_text()
    names = by_name(checks)
    expected = len(checkout.applied_at_previous) + len(checkout.pending)
    assert names[APPLIED].evidence.startswith(f"all {expected} migration(s) in apps/web/prisma")
    assert "(1 grew)" in names[COUNTS].evidence and "concepts=4" in names[COUNTS].evidence
    assert "taken 2025-10-29T09:00:00Z" in names[COUNTS].evidence
    assert all(c.section == "15" for c in checks)


@pytest.mark.parametrize("require", [True, False], ids=["expect_version set", "not set"])
def test_unapplied_migrations_are_named(
    pg_db: str, checkout: Checkout, tmp_path: Path, outputs: Path, require: bool
) -> None:
    apply(pg_db, checkout, checkout.previous)
    seed(pg_db, chunks=5, concepts=3, users=1)
    check = validate(make_params(tmp_path, checkout.path), pg_db, require_applied=require)[APPLIED]
    assert check.status is (Status.FAIL if require else Status.WARN)
    assert check.critical is require
    first = check.evidence.splitlines()[0]
    assert first.startswith("3 of 7 migration(s) in apps/web/prisma/migrations not applied: ")
    assert first.endswith(", ".join(checkout.pending))
    assert check.data["missing"] == checkout.pending
    assert ("pass expect_version" in check.evidence) is not require


def test_failed_migration_row_is_not_applied(
    pg_db: str, checkout: Checkout, tmp_path: Path, outputs: Path
) -> None:
    apply(pg_db, checkout, checkout.previous)
    seed(pg_db, chunks=5, concepts=3, users=1)
    run_sql(
        pg_db,
        "INSERT INTO _prisma_migrations (id, checksum, migration_name, logs) VALUES "
        f"('f1', repeat('c', 64), '{checkout.pending[0]}', 'ERROR: boom')",
    )
    checks = validation.post_deploy_validation(
        make_params(tmp_path, checkout.path), {URL_ENV: pg_db}, release=RELEASE
    )
    assert [c.name for c in checks.failed] == ["_prisma_migrations has no failed rows", APPLIED]
    assert f"{checkout.pending[0]} (failed)" in by_name(checks)[APPLIED].evidence


def test_no_migrations_folder_warns_and_names_the_setting(pg_db: str, tmp_path: Path) -> None:
    run_sql(pg_db, "CREATE TABLE concepts (id int); CREATE TABLE content_chunks (id int)")
    check = validate(make_params(tmp_path, tmp_path / "nowhere"), pg_db)[APPLIED]
    assert check.status is Status.WARN and not check.critical
    assert "does not exist" in check.evidence and "checkout.migrations_dir" in check.evidence


# --- row counts against 02's snapshot ----------------------------------------------------------


def test_rows_lost_since_the_snapshot_fail_by_table(
    pg_db: str, checkout: Checkout, tmp_path: Path, outputs: Path
) -> None:
    apply(pg_db, checkout)
    seed(pg_db, chunks=5, concepts=3, users=1)
    before = db.row_counts(pg_db)
    snapshot_record(outputs, {**before, "concepts": before["concepts"] + 2, "dropped": 4})
    checks = validation.post_deploy_validation(
        make_params(tmp_path, checkout.path), {URL_ENV: pg_db}, release=RELEASE
    )
    assert [c.name for c in checks.failed] == [COUNTS]
    evidence = by_name(checks)[COUNTS].evidence.splitlines()
    n = before["concepts"]
    assert evidence[0] == f"key table(s) lost rows since the snapshot: concepts {n + 2} -> {n}"
    assert evidence[1] == "other table(s) with fewer rows: dropped 4 -> missing"
    assert evidence[2].startswith("compared with snapshot staging-v1.4.0.dump of americano")


def test_only_other_tables_shrinking_warns(
    pg_db: str, checkout: Checkout, tmp_path: Path, outputs: Path
) -> None:
    apply(pg_db, checkout)
    seed(pg_db, chunks=5, concepts=3, users=1)
    before = db.row_counts(pg_db)
    snapshot_record(outputs, {**before, "users": before["users"] + 1})
    check = validate(make_params(tmp_path, checkout.path), pg_db)[COUNTS]
    assert check.status is Status.WARN and not check.blocks
    assert check.evidence.startswith(f"other table(s) with fewer rows: users {before['users'] + 1}")


@pytest.mark.parametrize("case", ["no record", "only a failed record", "no release"])
def test_without_a_snapshot_the_comparison_is_skipped_with_the_reason(
    pg_db: str, checkout: Checkout, tmp_path: Path, outputs: Path, case: str
) -> None:
    apply(pg_db, checkout)
    seed(pg_db, chunks=5, concepts=3, users=1)
    if case == "only a failed record":
        snapshot_record(outputs, {"concepts": 999}, status="failed")
    release = None if case == "no release" else RELEASE
    params = make_params(tmp_path, checkout.path)
    check = by_name(validation.post_deploy_validation(params, {URL_ENV: pg_db}, release=release))[
        COUNTS
    ]
    assert check.status is Status.SKIP
    if release:
        assert check.evidence.startswith(
            "no passing 02-migration-dry-run record of v1.4.0 in staging holds a snapshot"
        )
        assert "deploybook run 02 --env staging --release v1.4.0" in check.evidence
    else:
        assert check.evidence.startswith("no release given")


def test_judge_row_counts_is_pure() -> None:
    status, evidence, data = validation.judge_row_counts(
        {"concepts": 3, "users": 2}, {"concepts": 3, "users": 5}, ["concepts"], "snap"
    )
    assert status is Status.PASS and data["lower"] == []
    assert (
        evidence
        == "2 table(s) at or above their snapshot counts (1 grew); concepts=3\ncompared with snap"
    )


# --- manual spot checks ------------------------------------------------------------------------


def spot_run(tmp_path: Path, role: str = "staging", operator: str = "Lead Lee") -> Any:
    return SimpleNamespace(
        params=make_params(tmp_path, tmp_path, role), operator=operator, record=Checks
    )


RECORDER = SimpleNamespace(record=Checks)  # what `record_spot_checks` needs of a run


@pytest.fixture
def glued(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    scraps: dict[str, Any] = {}
    monkeypatch.setattr(
        session_scraps, "write", lambda name, value, *_: scraps.__setitem__(name, value)
    )
    return scraps


def test_headless_confirmations_by_tag_text_or_list(tmp_path: Path, glued) -> None:
    confirmed = {"4.1": "Dana Lee", SPOT_CHECKS[1].upper(): "Sam Services", "4.3": True}
    spot = smoke.spot_checks(spot_run(tmp_path), confirmed, interactive=False)
    checks = smoke.record_spot_checks(RECORDER, spot)
    assert [c.status for c in checks] == [Status.PASS] * 3 + [Status.WARN] * 3
    assert checks[0].name == f"spot check: {SPOT_CHECKS[0]}"
    assert checks[0].evidence.startswith("checked by Dana Lee at 20")
    assert checks[0].evidence.endswith("(parameter)")
    assert "checked by Sam Services" in checks[1].evidence
    assert "checked by Lead Lee" in checks[2].evidence  # True: the operator checked it
    assert "pass spot_checks_confirmed={'4.4': '<who checked>'}" in checks[3].evidence
    assert checks.ok and not any(c.critical for c in checks)  # staging role: warnings only
    rows = glued["spot_checks"]
    assert [r["confirmed"] for r in rows] == [True, True, True, False, False, False]
    assert rows[0]["by"] == "Dana Lee" and rows[0]["source"] == "parameter" and rows[0]["at"]
    assert rows[3] == {
        "by": None,
        "at": None,
        "source": None,
        "item": SPOT_CHECKS[3],
        "confirmed": False,
    }

    listed = smoke.spot_checks(spot_run(tmp_path), ["4.5", "4.6"], interactive=False)
    assert [s.by for s in listed] == ["Lead Lee", "Lead Lee"]


def test_production_role_unconfirmed_fails_the_gate(tmp_path: Path, glued) -> None:
    confirmed = {f"4.{i}": "Dana Lee" for i in range(1, 6)} | {"4.6": "TBD"}
    spot = smoke.spot_checks(spot_run(tmp_path, "production"), confirmed, interactive=False)
    checks = smoke.record_spot_checks(RECORDER, spot)
    with pytest.raises(GateFailed) as caught:
        gate(checks, "04-smoke gate")
    assert [c.name for c in caught.value.failed] == [f"spot check: {SPOT_CHECKS[5]}"]
    assert "not confirmed (required in production)" in caught.value.failed[0].evidence
    everything = {f"4.{i}": "Dana Lee" for i in range(1, 7)}
    spot = smoke.spot_checks(spot_run(tmp_path, "production"), everything, interactive=False)
    assert gate(smoke.record_spot_checks(RECORDER, spot))


def test_unknown_keys_warn_and_bad_types_are_refused(tmp_path: Path, glued) -> None:
    spot = smoke.spot_checks(spot_run(tmp_path), {"4.7": "Dana Lee"}, interactive=False)
    typo = by_name(smoke.record_spot_checks(RECORDER, spot))["spot check '4.7'"]
    assert typo.status is Status.WARN and "a typo?" in typo.evidence
    with pytest.raises(ConfigError, match="spot_checks_confirmed must map"):
        smoke.spot_checks(spot_run(tmp_path), "4.1", interactive=False)


def test_no_spot_checks_configured_is_one_skip(tmp_path: Path, glued) -> None:
    run = spot_run(tmp_path)
    run.params = run.params.model_copy(update={"spot_checks": []})
    checks = smoke.record_spot_checks(run, smoke.spot_checks(run, None, interactive=False))
    assert [(c.status, c.critical) for c in checks] == [(Status.SKIP, False)]
    assert glued == {}


def test_interactive_form_records_who_and_when(tmp_path: Path, glued) -> None:
    spot = smoke.spot_checks(spot_run(tmp_path, "production"), {"4.2": "x"}, interactive=True)
    form = spot.widget
    assert form is not None and not spot
    assert [box.value for box in form.rows.values()] == [False, True, False, False, False, False]
    assert "waiting for the form" in spot._repr_html_()
    for item, box in form.rows.items():
        box.value = item != SPOT_CHECKS[5]
    form.who.value = "  "
    form.record()
    assert not spot  # nobody named: nothing recorded
    form.who.value = "Dana Lee"
    form.record()
    assert [s.source for s in spot] == ["widget"] * 5 and spot[0].by == "Dana Lee"
    checks = smoke.record_spot_checks(RECORDER, spot)
    assert [c.name for c in checks.failed] == [f"spot check: {SPOT_CHECKS[5]}"]
    assert "tick it in the form above and click Record" in checks.failed[0].evidence
    assert [r["source"] for r in glued["spot_checks"]] == ["widget"] * 5 + [None]


# --- the runbook, end to end -------------------------------------------------------------------


def test_04_records_spot_checks_and_validation(sandbox) -> None:
    """Headless 04 on the sandbox: the parameter confirms the spot checks, the scrap
    `spot_checks` holds who and when, and validation names the unapplied migrations
    (the shared sandbox is at the previous release, which expect_version names: the
    release's migrations are not required, so unapplied ones only warn)."""
    from deploybook.ops.runner import run_runbook

    parameters = {
        "operator": "ci",
        "expect_version": PREVIOUS,
        "watch_window_s": 4,
        "spot_checks_confirmed": {f"4.{i}": "Dana Lee" for i in range(1, 7)},
    }
    result = run_runbook("04-smoke", "sandbox", RELEASE, parameters, html=False)
    assert result.status == "passed", result.error
    scraps = sb.read_notebook(str(result.record)).scraps
    rows = scraps["spot_checks"].data
    assert len(rows) == 6 and all(r["confirmed"] and r["by"] == "Dana Lee" for r in rows)
    checks = {c["name"]: c for c in scraps["checks"].data}
    assert checks[f"spot check: {SPOT_CHECKS[0]}"]["status"] == "pass"
    assert checks[APPLIED]["status"] in ("pass", "warn")
    assert checks[COUNTS]["status"] in ("pass", "skip")
