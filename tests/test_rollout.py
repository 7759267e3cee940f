"""Runbook 03 on its own sandbox stack: staging through papermill, production through the
library, and every refusal (no staging record, missing sign-off, approver = operator, the
lock held, a failing migration) proven to change nothing, or to stop where it should."""

from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import nbformat
import pytest
import yaml
from sandbox_fixtures import CANARIES, files_containing, sign_approvals

from deploybook.config import read_params_yaml
from deploybook.core import audit
from deploybook.core.lock import environment_lock, lock_dir
from deploybook.errors import GateFailed, LockHeld
from deploybook.ops import rehearsal
from deploybook.ops.runner import run_runbook
from deploybook.runbooks.rollout import cells as rollout
from deploybook.runbooks.rollout import gates as rollout_gates
from deploybook.runbooks.rollout import releasenotes
from deploybook.sandbox import signers, stack
from deploybook.session import runbook as session
from deploybook.systems.postgres import db
from deploybook.systems.postgres.snapshot import snapshot
from deploybook.systems.prisma import migrations

ROOT = Path(__file__).resolve().parent.parent
RELEASE, PREVIOUS = stack.RELEASE, stack.PREVIOUS
STAGING, PRODUCTION, SCRATCH = "sandbox", "sandbox-production", "rollout-scratch"
PENDING = [
    "20251014090000_understanding_validation",
    "20251024091500_adaptive_irt",
    "20251027110000_understanding_analytics",
]


@pytest.fixture(scope="module")
def rollout_stack() -> Iterator[dict[str, Any]]:
    """This module's own stack (staging, production and a scratch env), outputs and canaries.

    NOTE: not under pytest's basetemp, which a concurrent pytest run may prune mid-test.
    """
    base = Path(tempfile.mkdtemp(prefix="deploybook-rollout-"))
    saved = os.environ.copy()
    os.environ["DEPLOYBOOK_STATE_DIR"] = str(base / "state")
    os.environ["DEPLOYBOOK_OUTPUTS"] = str(base / "outputs")
    os.environ.update(CANARIES)
    try:
        state = stack.up(
            base / "state",
            password=CANARIES["DEPLOYBOOK_SANDBOX_DB_PASSWORD"],
            envs=(STAGING, PRODUCTION, SCRATCH),
            progress=None,
        )
        yield {**state, "outputs": base / "outputs", "base": base}
    finally:
        stack.down(base / "state", progress=None)
        os.environ.clear()
        os.environ.update(saved)
        shutil.rmtree(base, ignore_errors=True)


def start(env: str, params_file: Path | str, execute: bool, operator: str = "ci") -> Any:
    return session.start(
        "03-rollout",
        env=env,
        release=RELEASE,
        previous_release=PREVIOUS,
        params_file=str(params_file),
        operator=operator,
        execute=execute,
        run_id="test",
    )


def params_file(env: str) -> Path:
    return ROOT / "params" / f"{env}.yaml"


def versions(env: str) -> dict[str, str]:
    services = stack.admin("/admin/state", method="GET")["envs"][env]
    return {name: svc["version"] for name, svc in services.items()}


def prisma(env: str) -> list[dict[str, Any]]:
    return db.prisma_rows(stack.sandbox_environment(env)["DATABASE_URL"]) or []


def system_state(env: str) -> tuple[dict[str, str], list[tuple[str, str, bool]]]:
    """What a rollout changes: versions, and the _prisma_migrations rows."""
    rows = [(r["id"], r["migration_name"], r["finished_at"] is not None) for r in prisma(env)]
    return versions(env), rows


def messages() -> dict[str, list[dict[str, Any]]]:
    return stack.admin("/admin/messages", method="GET")


def write_params(path: Path, env_file: str, **changes: Any) -> Path:
    """A params copy with top-level sections updated (e.g. environment, services)."""
    data = read_params_yaml(params_file(env_file))
    for key, value in changes.items():
        data[key] = value(data[key]) if callable(value) else value
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def fake_record(outputs: Path, env: str, runbook: str, scraps: dict[str, Any]) -> Path:
    """A passing record holding ``scraps``, in the ledger (as a real run of 02 leaves)."""
    from scrapbook.api import _prepare_ipy_data_format, encoder_registry, scrap_to_payload
    from scrapbook.scraps import Scrap

    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("# scraps")
    for name, value in scraps.items():
        payload = scrap_to_payload(encoder_registry.encode(Scrap(name, value, "json")))
        data, metadata = _prepare_ipy_data_format(name, payload, "json")
        cell.outputs.append(nbformat.v4.new_output("display_data", data=data, metadata=metadata))
    nb.cells.append(cell)
    record = audit.record_path(outputs, env, RELEASE, runbook)
    record.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, record)
    audit.append_ledger(
        outputs,
        env,
        record=str(record.relative_to(outputs)),
        runbook=runbook,
        release=RELEASE,
        status="passed",
        started_at=audit.utc_stamp(),
    )
    return record


@pytest.fixture(scope="module")
def staged(rollout_stack: dict[str, Any]) -> Any:
    """The staging rollout, for real, through papermill (the production gate needs it)."""
    parameters = {"previous_release": PREVIOUS, "operator": "ci", "execute": True}
    return run_runbook("03-rollout", STAGING, RELEASE, parameters, html=False)


@pytest.fixture(scope="module")
def production_snapshot(rollout_stack: dict[str, Any]) -> dict[str, Any]:
    """What 02-migration-dry-run leaves for production: a passing record with a snapshot."""
    url = stack.sandbox_environment(PRODUCTION)["DATABASE_URL"]
    snap = snapshot(
        url,
        rollout_stack["base"] / "snapshots",
        "before-v1.4.0",
        compress=0,
        bin_dir=rollout_stack["postgres"]["bin_dir"],
    ).as_dict()
    fake_record(rollout_stack["outputs"], PRODUCTION, "02-migration-dry-run", {"snapshot": snap})
    return snap


@pytest.fixture
def approved(rollout_stack: dict[str, Any], staged: Any, production_snapshot: Any) -> list[Path]:
    """Every role's approval of production's current dry run, signed with the stack's
    throwaway approver keys (sandbox-production verifies signed approvals, as production)."""
    return sign_approvals(PRODUCTION, RELEASE)


# --- pure ---------------------------------------------------------------------------------


STATUS = """# Status
### Backlog
- Epic 9: Stories 9.1-9.2
### Done Stories
| Story ID | File | Completed Date | Points |
| -------- | ---- | -------------- | ------ |
| 7.1 | docs/stories/story-7.1.md | 2025-11-02 | 5 |
| 8.1 | docs/stories/story-8.1.md | 2025-11-20 | 3 |
## Decisions Log
- **2025-11-01**: Before the previous release.
- **2025-11-10**: Queue retries capped at 3.
"""


def test_release_notes_from_status_file() -> None:
    notes = releasenotes.build(
        STATUS,
        release="v2.0.0",
        epic="8",
        epic_title="Offline mode",
        stories=["8.1", "8.2"],
        since=date(2025, 11, 1),
        previous_release="v1.9.0",
        titles={"8.1": "Sync queue"},
        guide="docs/guide.md",
        guide_text="# Guide\n## Deployment notes\n- Run the backfill.\n## Other\nx\n",
    )
    md = notes.markdown
    assert "| 8.1 | Sync queue | 2025-11-20 | 3 |" in md
    assert "| 8.2 |  | **not done** |  |" in md and "7.1" not in md
    assert notes.points == 3 and "1 of 2 done, 3 points" in md
    assert notes.decisions == [("2025-11-10", "Queue retries capped at 3.")]
    assert "- Run the backfill." in md and "## Other" not in md
    assert notes.problems == ["story 8.2 is not in the status file's Done table"]
    assert releasenotes.story_title("# Story 8.1: Sync queue\n\nStatus") == "Sync queue"


def test_attempts_resume_until_complete(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEPLOYBOOK_OUTPUTS", str(tmp_path))
    path, base = tmp_path / "steps.jsonl", "v1.4.0:production"

    def key(resume: bool = True) -> str:
        return rollout.attempt_key(path, base, resume=resume, env="x", release="v1.4.0")[0]

    def event(run_key: str, step: str, status: str) -> None:
        line = {"run_key": run_key, "step": step, "status": status, "recorded_at": "2025-01-01Z"}
        with path.open("a") as fh:
            fh.write(json.dumps(line) + "\n")

    assert key() == base
    event(base, "deploy api", "done")
    assert key() == base and key(resume=False) == f"{base}#2"
    event(base, rollout.COMPLETE_STEP, "done")
    assert key() == f"{base}#2"
    event(f"{base}#2", "deploy api", "failed")
    assert key() == f"{base}#2"
    event("v1.4.0:staging", rollout.COMPLETE_STEP, "done")  # another stage: not counted
    assert key() == f"{base}#2"


@pytest.mark.parametrize(
    ("taken", "why"),
    [
        (timedelta(minutes=-30), None),
        (
            timedelta(hours=-3, minutes=-5),
            "3h 05m ago: older than database.snapshot_max_age (2h 00m)",
        ),
        (timedelta(minutes=-90), "before the freeze began (2026-01-10 11:00 UTC)"),
        (None, "is not an ISO timestamp"),
    ],
    ids=["fresh", "too-old", "before-the-freeze", "no-time"],
)
def test_snapshot_age_against_the_limit_and_the_freeze(taken, why) -> None:
    now = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)
    created = (now + taken).isoformat().replace("+00:00", "Z") if taken else "yesterday"
    freeze = now - timedelta(hours=1)  # e.g. T-24h with the window tomorrow at 11:00
    found = rollout_gates.judge_snapshot_age(created, timedelta(hours=2), freeze, now)
    assert found == why if why is None else why in found


# --- staging ------------------------------------------------------------------------------


def test_dry_run_prints_every_command_and_changes_nothing(
    rollout_stack: dict[str, Any], capsys: pytest.CaptureFixture
) -> None:
    build = [{"name": "build web", "argv": ["python", "-c", "print('build web {version}')"]}]
    params = write_params(
        rollout_stack["base"] / "scratch-dry.yaml",
        STAGING,
        environment=lambda e: {**e, "name": SCRATCH},
        rollout={"build": build},
    )
    before = system_state(SCRATCH)
    run = start(SCRATCH, params, False)
    result = rollout.rollout(run, {})
    out = capsys.readouterr().out
    assert result.status == "planned" and run.checks.ok
    assert [s.name for s in result.steps] == [
        "record running versions",
        "build web",
        "apply migrations",
        "deploy api",
        "deploy chatmock",
        "deploy ocr",
        "deploy web",
        "smoke tests",
    ]
    assert "would run: python -c print('build web v1.4.0')" in out
    assert f"./ops/release.sh deploy --env {SCRATCH} --service web --version {RELEASE}" in out
    assert f"3 pending: {', '.join(PENDING)}" in out
    assert system_state(SCRATCH) == before
    assert not rollout.ledger_path(run).exists()


def test_staging_rollout_through_papermill(rollout_stack: dict[str, Any], staged: Any) -> None:
    import scrapbook as sb

    assert staged.status == "passed", staged.error
    assert set(versions(STAGING).values()) == {RELEASE}
    rows = {r["migration_name"]: r for r in prisma(STAGING)}
    folder = Path(rollout_stack["checkout"]) / "apps/web/prisma/migrations"
    for name in PENDING:
        row = rows[name]
        assert row["finished_at"] is not None and row["rolled_back_at"] is None
        assert row["checksum"] == migrations.checksum(
            (folder / name / "migration.sql").read_bytes()
        )
        assert row["applied_steps_count"] == 1 and len(row["id"]) == 36
    scraps = {k: v.data for k, v in sb.read_notebook(str(staged.record)).scraps.items()}
    assert scraps["previous_versions"] == dict.fromkeys(("api", "web", "chatmock", "ocr"), PREVIOUS)
    assert scraps["applied_migrations"] == PENDING
    assert scraps["rollout"]["status"] == "completed" and scraps["rollout"]["stage"] == "staging"
    assert scraps["signoffs"] == []
    notes = staged.record.parent / f"release-notes-{RELEASE}.md"
    assert "| 4.1 | Natural Language Comprehension Prompts | 2025-10-15 | 8 |" in notes.read_text()
    assert files_containing(rollout_stack["outputs"], list(CANARIES.values())) == []

    # Rerunning a completed rollout is a fresh attempt; the rollback target stays v1.3.0.
    again = rollout.rollout(start(STAGING, params_file(STAGING), True), {})
    assert again.status == "completed" and "attempt 2" in again.attempt
    assert again.previous_versions == scraps["previous_versions"]
    assert again.applied_migrations == []


def test_failed_migration_stops_at_a_failed_gate(rollout_stack: dict[str, Any]) -> None:
    work = rollout_stack["base"] / "broken-migration"
    build = [{"name": "build api", "argv": ["python", "-c", "print('built api {version}')"]}]
    checkout = work / "checkout"
    shutil.copytree(rollout_stack["checkout"], checkout, symlinks=True)
    broken = checkout / "apps/web/prisma/migrations/20991231000000_broken"
    broken.mkdir()
    (broken / "migration.sql").write_text('ALTER TABLE "no_such_table" ADD COLUMN "x" INTEGER;\n')
    params = write_params(
        work / "scratch.yaml",
        STAGING,
        environment=lambda e: {**e, "name": SCRATCH},
        checkout=lambda c: {**c, "path": str(checkout)},
        rollout={"build": build},
    )
    before = versions(SCRATCH)
    run = start(SCRATCH, params, True)
    result = rollout.rollout(run, {})
    assert result.status == "failed" and "apply migrations" in result.error
    assert [s.status for s in result.steps] == ["done", "done", "failed"]
    failed = {r["migration_name"]: r for r in prisma(SCRATCH)}["20991231000000_broken"]
    assert failed["finished_at"] is None and failed["rolled_back_at"] is None
    assert "no_such_table" in failed["logs"] and "42P01" in failed["logs"]
    assert versions(SCRATCH) == before  # nothing deployed after the failed migration
    gates = {c.name: c for c in run.checks}
    assert gates["checkout at the release tag"].status == "warn"  # staging: a warning
    with pytest.raises(GateFailed, match="apply migrations"):
        run.finish()

    again = start(SCRATCH, params, True)
    result = rollout.rollout(again, {})
    assert result.status == "failed" and "P3009" in result.error


# --- production ---------------------------------------------------------------------------


def test_production_refused_without_staging_record(
    rollout_stack: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEPLOYBOOK_OUTPUTS", str(rollout_stack["base"] / "empty-outputs"))
    before = system_state(PRODUCTION)
    run = start(PRODUCTION, params_file(PRODUCTION), True)
    with pytest.raises(GateFailed) as caught:
        rollout.rollout(run, {})
    failed = {c.name: c.evidence for c in caught.value.failed}
    # Nothing to approve either: no dry-run record, so no approval can be bound to one.
    signoffs = {f"sign-off {role}" for role in run.params.signoff_roles}
    assert set(failed) == {
        "staging rollout passed for this release",
        "snapshot from 02-migration-dry-run",
        "sign-offs bound to a dry run",
        *signoffs,
    }
    assert "roll out to staging first" in failed["staging rollout passed for this release"]
    assert "run 02 first" in failed["snapshot from 02-migration-dry-run"]
    assert system_state(PRODUCTION) == before
    assert not rollout.ledger_path(run).exists()


ROLES = ("PM", "Web", "API", "Services", "QA")


@pytest.mark.parametrize(
    ("signed", "operator_holds", "refused", "why"),
    [
        (ROLES[:-1], None, ("QA",), "no approval: the QA approver runs `deploybook approve"),
        (ROLES, "API", ("API",), "void: signed with the operator's key"),
        ((), None, ROLES, "no approval: the {role} approver runs `deploybook approve"),
    ],
    ids=["missing-signoff", "approver-is-operator", "no-approvals"],
)
def test_production_refused_by_signoffs(
    rollout_stack: dict[str, Any],
    staged: Any,
    production_snapshot: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    signed: tuple[str, ...],
    operator_holds: str | None,
    refused: tuple[str, ...],
    why: str,
) -> None:
    """Signed approvals, as production: a missing role, or one signed with a key the
    operator holds (here the API approver's, in the operator's ~/.ssh), refuses 03."""
    sign_approvals(PRODUCTION, RELEASE, signed)
    if operator_holds:
        home = tmp_path / "operator-home"
        (home / ".ssh").mkdir(parents=True)
        key = signers.private_key(Path(rollout_stack["state_dir"]), operator_holds)
        shutil.copy(key.with_name(key.name + ".pub"), home / ".ssh" / "id_ed25519.pub")
        monkeypatch.setenv("HOME", str(home))
    before = system_state(PRODUCTION)
    run = start(PRODUCTION, params_file(PRODUCTION), True, operator="Riley Lead")
    with pytest.raises(GateFailed, match=f"sign-off {refused[0]}") as caught:
        rollout.rollout(run, {})
    assert [c.name for c in caught.value.failed] == [f"sign-off {role}" for role in refused]
    for role, check in zip(refused, caught.value.failed, strict=True):
        assert why.format(role=role) in check.evidence
    assert system_state(PRODUCTION) == before


def test_production_refused_while_the_lock_is_held(
    rollout_stack: dict[str, Any], approved: list[Path]
) -> None:
    before = system_state(PRODUCTION)
    run = start(PRODUCTION, params_file(PRODUCTION), True)
    with environment_lock(
        lock_dir(PRODUCTION), PRODUCTION, runbook="05-rollback", operator="Sam Services"
    ):
        with pytest.raises(LockHeld, match="runbook 05-rollback.*operator Sam Services"):
            rollout.rollout(run, {})
    assert system_state(PRODUCTION) == before


def test_production_fails_midway_then_resumes(
    rollout_stack: dict[str, Any], production_snapshot: dict[str, Any], approved: list[Path]
) -> None:
    stack.admin("/admin/messages", method="DELETE")

    def break_chatmock(services: list[dict[str, Any]]) -> list[dict[str, Any]]:
        bad = ["python", "-c", "import sys; sys.exit('registry unreachable for {service}')"]
        return [{**s, "deploy": bad} if s["name"] == "chatmock" else s for s in services]

    broken = write_params(rollout_stack["base"] / "prod.yaml", PRODUCTION, services=break_chatmock)
    run = start(PRODUCTION, broken, True)
    first = rollout.rollout(run, {})
    assert first.status == "failed" and "deploy chatmock" in first.error
    assert "registry unreachable for chatmock" in first.error
    assert versions(PRODUCTION) == {
        "api": RELEASE,
        "web": PREVIOUS,
        "chatmock": PREVIOUS,
        "ocr": PREVIOUS,
    }
    applied = [
        (r["id"], r["migration_name"]) for r in prisma(PRODUCTION) if r["migration_name"] in PENDING
    ]
    assert [name for _, name in applied] == PENDING
    with pytest.raises(GateFailed, match="step: deploy chatmock"):
        run.finish()

    run = start(PRODUCTION, params_file(PRODUCTION), True)
    second = rollout.rollout(run, {})
    assert second.status == "completed", second.error
    status = {s.name: s.status for s in second.steps}
    for name in (
        "record running versions",
        "announce start",
        "scale up for warm-up",
        "apply migrations",
        "deploy api",
    ):
        assert status[name] == "skipped", name
    for name in (
        "deploy chatmock",
        "deploy ocr",
        "deploy web",
        "smoke tests",
        "announce completion",
    ):
        assert status[name] == "done", name
    configured = bool(run.params.rollout.flag_command)
    assert status["flip flags"] == ("done" if configured else "skipped")
    assert set(versions(PRODUCTION).values()) == {RELEASE}
    assert [
        (r["id"], r["migration_name"]) for r in prisma(PRODUCTION) if r["migration_name"] in PENDING
    ] == applied  # nothing applied twice
    assert second.previous_versions == dict.fromkeys(("api", "web", "chatmock", "ocr"), PREVIOUS)
    assert second.applied_migrations == PENDING
    copied = dict(second.snapshot or {})  # 03 names the 02 record it verified (05 re-checks it)
    assert copied.pop("record").endswith("-02-migration-dry-run.ipynb")
    assert copied == production_snapshot
    replicas = stack.admin("/admin/state", method="GET")["envs"][PRODUCTION]
    assert {svc["replicas"] for svc in replicas.values()} == {2}

    got = messages()
    texts = [m["body"]["text"] for m in got["webhook"]]
    subjects = [m["subject"] for m in got["email"]]
    assert sum("starting" in t for t in texts) == 1 and sum("starting" in s for s in subjects) == 1
    start_text = next(t for t in texts if "starting" in t)
    assert "| 4.1 | Natural Language Comprehension Prompts | 2025-10-15 | 8 |" in start_text
    assert any("FAILED" in t and "deploy chatmock" in t for t in texts)
    assert sum(f"[{PRODUCTION}] rollout of {RELEASE} complete" in t for t in texts) == 1
    assert run.finish().ok


# --- production: what the gate trusts, and a required announcement -------------------------


def run_production(params: Path | None = None) -> Any:
    """03 in production through papermill, as CI runs it (the approvals are files: see
    `approved`)."""
    parameters = {"previous_release": PREVIOUS, "operator": "ci", "execute": True}
    return run_runbook(
        "03-rollout", PRODUCTION, RELEASE, parameters, params_file=params, html=False
    )


def failed_checks(result: Any) -> dict[str, str]:
    import scrapbook as sb

    rows = sb.read_notebook(str(result.record)).scraps["checks"].data
    return {r["name"]: r["evidence"] for r in rows if r["status"] == "fail"}


def test_production_refuses_an_edited_staging_record(
    rollout_stack: dict[str, Any], staged: Any, approved: list[Path]
) -> None:
    original = staged.record.read_bytes()
    staged.record.write_bytes(original.replace(b"completed", b"completed ", 1))  # a hand edit
    before = system_state(PRODUCTION)
    try:
        result = run_production()
    finally:
        staged.record.write_bytes(original)
    assert result.status == "failed" and "staging rollout passed" in (result.error or "")
    failed = failed_checks(result)
    rel = str(staged.record.relative_to(rollout_stack["outputs"]))
    assert list(failed) == ["staging rollout passed for this release"], failed
    evidence = failed["staging rollout passed for this release"]
    assert f"03-rollout record {rel} cannot be trusted (edited)" in evidence
    assert f"deploybook run 03-rollout --env {STAGING} --release {RELEASE}" in evidence
    assert system_state(PRODUCTION) == before


def test_production_refuses_an_old_snapshot(
    rollout_stack: dict[str, Any],
    staged: Any,
    production_snapshot: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    outputs = tmp_path / "outputs"  # a copy: the old snapshot must not outlive this test
    shutil.copytree(rollout_stack["outputs"], outputs)
    monkeypatch.setenv("DEPLOYBOOK_OUTPUTS", str(outputs))
    taken = datetime.now(UTC) - timedelta(hours=3, minutes=10)
    old = {**production_snapshot, "created_at": taken.isoformat().replace("+00:00", "Z")}
    fake_record(outputs, PRODUCTION, "02-migration-dry-run", {"snapshot": old})
    sign_approvals(PRODUCTION, RELEASE, outputs=outputs)  # approving this (old) dry run
    before = system_state(PRODUCTION)
    result = run_production()
    assert result.status == "failed"
    failed = failed_checks(result)
    assert list(failed) == ["snapshot from 02-migration-dry-run"], failed
    evidence = failed["snapshot from 02-migration-dry-run"]
    assert "3h 10m ago: older than database.snapshot_max_age (2h 00m)" in evidence
    assert f"deploybook run 02-migration-dry-run --env {PRODUCTION}" in evidence
    assert system_state(PRODUCTION) == before


def test_production_stops_when_a_required_announcement_fails(
    rollout_stack: dict[str, Any], approved: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """No `required` in params: production makes the target required; it is down, so the
    rollout stops at its first step that would be seen, before anything changes."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        down = f"http://127.0.0.1:{s.getsockname()[1]}/hooks/T/B/secretpath"
    monkeypatch.setenv("DEPLOYBOOK_TEST_DOWN_HOOK", down)
    hook = {"kind": "webhook", "url_env": "DEPLOYBOOK_TEST_DOWN_HOOK", "backoff_s": 0.05}
    params = write_params(
        rollout_stack["base"] / "prod-announce-down.yaml", PRODUCTION, notifications=[hook]
    )
    before = system_state(PRODUCTION)
    result = run_production(params)
    assert result.status == "failed" and "announce start" in (result.error or "")
    failed = failed_checks(result)
    evidence = failed["announce via webhook $DEPLOYBOOK_TEST_DOWN_HOOK"]
    assert "not delivered after 3 attempt(s)" in evidence and "attempt 3:" in evidence
    assert "step: announce start" in failed
    assert "secretpath" not in json.dumps(failed)
    assert system_state(PRODUCTION) == before  # no scale, migration or deploy ran


def test_the_plan_shows_02s_impact_beside_apply_migrations(rollout_stack: dict[str, Any]) -> None:
    """03's plan reads the migration_impact 02 recorded for this environment and release."""
    params = write_params(
        rollout_stack["base"] / "scratch-impact.yaml",
        STAGING,
        environment=lambda e: {**e, "name": SCRATCH},
    )
    run = start(SCRATCH, params, False)

    def migrate_step() -> str:
        plan = rollout.plan(run, "production")
        return next(s.describe for s in plan.steps if s.name == "apply migrations")

    assert "impact not measured (no 02 record with it)" in migrate_step()
    line = (
        "content_chunks: writes blocked ~74.20 s (CREATE INDEX … USING hnsw; "
        "20251028100000_content_chunks_l2_index statement 1)"
    )
    impact = {
        "target": {"target": "scratch", "verified_copy": True, "restores": 1},
        "lines": [line],
        "total_s": 74.5,
        "window": {"verdict": "fits the window", "text": "fits the window: migrations 74.50 s"},
    }
    record = fake_record(
        rollout_stack["outputs"], SCRATCH, "02-migration-dry-run", {"migration_impact": impact}
    )
    shown = migrate_step()
    assert f"; impact measured by 02 ({record.name}): {line}; fits the window" in shown


def test_02s_window_fit_counts_the_staging_rollouts_steps(
    rollout_stack: dict[str, Any], staged: Any
) -> None:
    """Production's 02 adds the staging 03 record's deploy and smoke times (builds are
    staging's own) to the migrations it measured, against the 60-minute window."""
    from deploybook.runbooks.migration_dry_run.impact import other_steps, window_fit

    run = session.start(
        "02-migration-dry-run",
        env=PRODUCTION,
        release=RELEASE,
        previous_release=PREVIOUS,
        params_file=str(params_file(PRODUCTION)),
        operator="ci",
        run_id="test",
    )
    steps, source = other_steps(run)
    # Its own 03 record when an earlier test left one, else the staging one (`staged`).
    assert source.startswith((f"{PRODUCTION}'s 03 record ", f"{STAGING}'s 03 record "))
    assert source.endswith("-03-rollout.ipynb")
    names = [s["name"] for s in steps]
    assert "deploy api" in names and "smoke tests" in names
    assert "apply migrations" not in names and "build web" not in names
    fit = window_fit(1.5, False, steps, source, 60, 0.25)
    others = sum(s["seconds"] for s in steps)
    assert fit["fits"] and fit["total_s"] == pytest.approx(1.5 + others, abs=0.01)
    assert fit["text"].startswith("fits the window: migrations 1.50 s, under 1% of the 60 min")
    assert f"with the other {len(steps)} rollout steps as long as in {source}" in fit["text"]
    crowded = window_fit(20 * 60, True, steps, source, 60, 0.25)
    assert crowded["fits"] and crowded["verdict"] == "migrations alone take over 25% of the window"
    over = window_fit(3700, True, [], "no 03 record yet", 60, 0.25)
    assert not over["fits"]
    assert over["text"].startswith("does NOT fit the window: migrations at least 3700.00 s, 103%")


# --- the rehearsal's production sign-offs (last: its real 02 and 03 change production) -----


def test_rehearsal_signs_production_approvals_its_03_verifies(
    rollout_stack: dict[str, Any], staged: Any
) -> None:
    """`make rehearse` on sandbox-production: after 02 passes, the sandbox's throwaway
    approvers sign the five approvals (the 03 step's `before`), and 03's gate verifies them
    as production's would (signed, bound to that 02 record, not the operator's key)."""
    import scrapbook as sb

    steps = {s.runbook: s for s in rehearsal.plan() if s.env == PRODUCTION and s.expect == "passed"}
    dry = steps["02-migration-dry-run"]
    done = run_runbook(dry.runbook, PRODUCTION, RELEASE, dict(dry.parameters), html=False)
    assert done.status == "passed", done.error
    step = steps["03-rollout"]
    assert "approvals" not in step.parameters and step.before is not None
    stored = step.before()
    assert sorted(p.name.split("-")[0] for p in stored) == sorted(ROLES)
    result = run_runbook(step.runbook, PRODUCTION, RELEASE, dict(step.parameters), html=False)
    assert result.status == "passed", result.error
    scraps = {k: v.data for k, v in sb.read_notebook(str(result.record)).scraps.items()}
    # Earlier approvals (of other dry runs) stay in the folder, void; five count: these.
    signoffs = [s for s in scraps["signoffs"] if s["name"]]
    assert sorted(s["role"] for s in signoffs) == sorted(ROLES)
    assert all(s["valid"] for s in signoffs), signoffs
    assert {s["name"] for s in signoffs} == set(rehearsal.SIGNOFFS.values())
    assert {s["approves"] for s in signoffs} == {
        str(done.record.relative_to(rollout_stack["outputs"]))
    }
    gates = {c["name"]: c["status"] for c in scraps["checks"] if c["name"].startswith("sign-off")}
    assert gates == {f"sign-off {role}": "pass" for role in ROLES}
    private = [signers.private_key(Path(rollout_stack["state_dir"]), r).read_text() for r in ROLES]
    assert files_containing(rollout_stack["outputs"], [k.splitlines()[1] for k in private]) == []
