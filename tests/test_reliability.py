"""The reliability and security suite (issue 10): the bad nights, rehearsed on the sandbox.

One stack for the whole module, run as a journey on env ``sandbox``: 01 passes, then fails
with a service down; 02 passes, then fails on the bad-migrations corpus; the database dies
in the middle of 03, whose rerun resumes; 04 passes; a 5xx bug in v1.4.0 breaches the SLA,
a truncated snapshot is refused and 05 rolls back. Around it: API faults, a migration
failing mid-apply, two rollouts at once, dry runs of every fixture corpus, hostile input,
tampering with the audit trail, bounded load and one interactive-style session of all
five runbooks. Every secret holds a canary; the last test proves none of them reached
any record, HTML, ledger, log, incident report, webhook body or email.

Each test adds a row to the summary table printed at the end (`reliability_plugin`):
scenario, expected outcome, observed outcome, data lost. Run alone: ``make reliability``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psutil
import pytest
import yaml
from reliability_helpers import (
    ROOT,
    SECRET_CANARIES,
    SECRET_FILES,
    Code,
    canary_hits,
    chatty_tool_step,
    data_lost,
    database_url,
    facts,
    failed_checks,
    interactive_session,
    isolated_test,
    message_count,
    messages_text,
    outcome,
    runbook_outputs,
    sandbox_rig,
    scan_files,
    stop_database_once,
    tree,
)
from reliability_plugin import scenario, start_clock
from test_rollout import prisma, start, versions, write_params

from deploybook.config import read_params_yaml
from deploybook.core.checks import Checks, Status, gate
from deploybook.core.lock import environment_lock, lock_dir
from deploybook.errors import ConfigError, GateFailed, LockHeld, RestoreRefused
from deploybook.ops import cli
from deploybook.ops.runner import RunResult, run_runbook
from deploybook.runbooks.migration_dry_run import cells as mc
from deploybook.runbooks.rollout import cells as rollout
from deploybook.runbooks.smoke import suite as smoke
from deploybook.runbooks.smoke import watch as sla_watch
from deploybook.sandbox import fixture, stack, traffic
from deploybook.sandbox.postgres import PgCluster
from deploybook.session.environment import load_environment_params
from deploybook.session.records import read_scraps
from deploybook.session.runbook import Runbook
from deploybook.systems import commands as deploy
from deploybook.systems import notify
from deploybook.systems.postgres import db
from deploybook.systems.postgres import fingerprint as pg_fingerprint
from deploybook.systems.postgres.restore import verify_restore
from deploybook.systems.postgres.snapshot import load_snapshot

pytestmark = pytest.mark.reliability

RELEASE, PREVIOUS = stack.RELEASE, stack.PREVIOUS
ENV, PRODUCTION = "sandbox", "sandbox-production"
MIGRATING, LOCKING = "rel-migrate", "rel-lock"  # envs of their own for destructive faults
DATABASE = stack.database_name(ENV)
LEAD = {"previous_release": PREVIOUS, "operator": "rel-lead"}
PENDING = [
    "20251014090000_understanding_validation",
    "20251024091500_adaptive_irt",
    "20251027110000_understanding_analytics",
]
MIGRATIONS = "apps/web/prisma/migrations"


@dataclass
class Rig:
    """The module's stack, its outputs, and every CLI/kernel text a scenario printed."""

    base: Path
    state: dict[str, Any]
    outputs: Path
    texts: dict[str, str] = field(default_factory=dict)

    @property
    def state_dir(self) -> Path:
        return Path(self.state["state_dir"])

    @property
    def datadir(self) -> Path:
        return Path(self.state["postgres"]["datadir"])


@pytest.fixture(scope="module")
def rig() -> Iterator[Rig]:
    """Our own stack (four envs), outputs and canary secrets."""
    start_clock()
    with sandbox_rig(
        "deploybook-reliability-", SECRET_CANARIES, (ENV, PRODUCTION, MIGRATING, LOCKING)
    ) as (base, state):
        yield Rig(base, state, base / "outputs")


@pytest.fixture(autouse=True)
def _isolated(rig: Rig, request: pytest.FixtureRequest, capfd: pytest.CaptureFixture) -> Iterator:
    with isolated_test(rig.texts, request.node.name, capfd):
        yield


@pytest.fixture
def row(request: pytest.FixtureRequest) -> Callable[[str, str], Any]:
    return lambda name, expected: scenario(request.node.nodeid, name, expected)


def run(runbook: str, env: str, parameters: dict[str, Any], **kwargs: Any) -> RunResult:
    """A headless run as CI makes it (papermill, record, HTML, ledger entry)."""
    return run_runbook(runbook, env, RELEASE, {**LEAD, **parameters}, **kwargs)


def snapshot_of(result: RunResult) -> dict[str, Any]:
    return read_scraps(result.record)["snapshot"]


def manifest_of(snap: dict[str, Any]) -> Path:
    return Path(snap["path"]).with_name(f"{snap['name']}.manifest.json")


def databases() -> set[str]:
    with db.connect(database_url(ENV), autocommit=True) as conn:
        return {r[0] for r in conn.execute("SELECT datname FROM pg_database")}


# --- 01 -------------------------------------------------------------------------------------


def test_01_passes_headless(rig: Rig, row) -> None:
    r = row("01-preconditions on a healthy sandbox", "passed")
    before = facts(ENV)
    result = run("01-preconditions", ENV, {"rate_limits_reviewed_by": "Sam Services"})
    after = facts(ENV)
    r.observed, r.data_lost = outcome(result), data_lost(before[1], after[1])
    assert result.status == "passed", result.error
    assert result.html and result.html.exists() and result.entry["status"] == "passed"
    assert after == before


def test_service_down_fails_01_by_name_and_recovers(rig: Rig, row) -> None:
    r = row(
        "fault: a service down (ocr)",
        "01 gate fails naming 'ocr health endpoint answering'; healthy once it is back",
    )
    before = facts(ENV)
    stack.admin(f"/admin/{ENV}/ocr/fault", {"down": True})
    try:
        result = run("01-preconditions", ENV, {"rate_limits_reviewed_by": "Sam Services"})
    finally:
        stack.admin(f"/admin/{ENV}/ocr/fault", method="DELETE")
    failed = failed_checks(result)
    health = smoke.health_checks(load_environment_params(ROOT / "params" / f"{ENV}.yaml"))
    after = facts(ENV)
    r.observed = (
        f"{result.status}; gate failed on {failed}; back up: "
        f"{'all health checks pass' if health.ok else 'STILL FAILING'}"
    )
    r.data_lost = data_lost(before[1], after[1])
    assert result.status == "failed" and "01-preconditions gate failed" in result.error
    assert failed == ["ocr health endpoint answering"]
    assert "ocr health endpoint answering" in result.error
    assert health.ok and after == before


# --- 02 and the dry run ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def dry_run_02(rig: Rig) -> tuple[RunResult, tuple, tuple]:
    """02 on the sandbox: the snapshot the rollback drill restores."""
    before = facts(ENV)
    result = run("02-migration-dry-run", ENV, {})
    return result, before, facts(ENV)


@pytest.fixture(scope="module")
def checkouts(rig: Rig) -> Callable[[str], Path]:
    """A fixture checkout per variant, generated once."""
    made: dict[str, Path] = {}

    def get(variant: str) -> Path:
        if variant not in made:
            made[variant] = rig.base / "variants" / variant
            fixture.create_checkout(made[variant], variant=variant)
        return made[variant]

    return get


def test_02_passes_and_changes_nothing(rig: Rig, row, dry_run_02) -> None:
    r = row("02-migration-dry-run on the sandbox", "passed; snapshot verified; database unchanged")
    result, before, after = dry_run_02
    r.observed, r.data_lost = outcome(result), data_lost(before[1], after[1])
    assert result.status == "passed", result.error
    snap = snapshot_of(result)
    assert manifest_of(snap).exists() and snap["inventory"]["row_counts"] == before[1]
    assert after == before


def test_02_bad_migrations_fail_by_name_and_change_nothing(rig: Rig, row, checkouts) -> None:
    r = row(
        "02 on the bad-migrations corpus",
        "02 gate fails naming each bad migration; fingerprint and rows unchanged",
    )
    params = write_params(
        rig.base / "sandbox-bad-migrations.yaml",
        ENV,
        checkout=lambda c: {**c, "path": str(checkouts("bad-migrations"))},
    )
    before, dbs = facts(ENV), databases()
    result = run("02-migration-dry-run", ENV, {}, params_file=params)
    after = facts(ENV)
    failed = failed_checks(result)
    r.observed = f"{result.status}; gate failed on {len(failed)} checks: {', '.join(failed)}"
    r.data_lost = data_lost(before[1], after[1])
    assert result.status == "failed"
    for name in (
        "20251028091000_full_dimension_embeddings",
        "20251028092000_objective_prerequisite_links",
        "20251028095000_clinic_locations",
    ):
        assert f"dry run: {name}" in failed and name in result.error
    assert after == before and databases() == dbs


@pytest.mark.parametrize("variant", ["good", *sorted(fixture.VARIANTS)])
def test_dry_run_is_harmless_for_every_fixture_corpus(rig: Rig, row, checkouts, variant) -> None:
    r = row(
        f"dry run harmless: corpus '{variant}'",
        "fingerprint and exact row counts identical before/after",
    )
    params = write_params(
        rig.base / f"production-{variant}.yaml",
        PRODUCTION,
        checkout=lambda c: {**c, "path": str(checkouts(variant))},
        # The proof is made on the live database itself, which production allows only
        # explicitly (the default dry-runs a scratch restore).
        database=lambda d: {**d, "allow_live_dry_run": True},
    )
    before, dbs = facts(PRODUCTION), databases()
    run_ = Runbook("02-migration-dry-run", PRODUCTION, RELEASE, str(params), "rel-lead", False)
    checks = Checks([*mc.migration_status(run_), *mc.dry_run(run_, target="live", progress=False)])
    after = facts(PRODUCTION)
    failed = [c.name for c in checks if c.status is Status.FAIL]
    proof = next(c for c in checks if c.name == "dry run changed nothing")
    r.observed = (
        f"{'identical' if after == before else 'CHANGED'} (own proof: {proof.status}); "
        f"{len(failed)} failed check(s){': ' + ', '.join(failed) if failed else ''}"
    )
    r.data_lost = data_lost(before[1], after[1])
    assert after == before and databases() == dbs
    assert proof.status is Status.PASS
    if variant == "bad-migrations":
        assert "dry run: 20251028091000_full_dimension_embeddings" in failed
    elif variant == "edited-migration":
        assert failed, "an edited, already-applied migration must fail the status"


# --- 03: the database dies in the middle -----------------------------------------------------


@pytest.fixture(scope="module")
def rolled_out(rig: Rig) -> dict[str, Any]:
    """03 on the sandbox with the database stopped mid-rollout, restarted, then rerun."""
    marker = rig.base / "database-stopped.marker"
    params = write_params(
        rig.base / "sandbox-database-dies.yaml",
        ENV,
        rollout=lambda r: {
            **r,
            "build": [*r["build"], chatty_tool_step(), stop_database_once(rig.datadir, marker)],
        },
    )
    before = facts(ENV)
    first = run("03-rollout", ENV, {"execute": True}, params_file=params)
    stopped = marker.exists() and not PgCluster(rig.datadir).running()
    at_failure = versions(ENV)
    PgCluster(rig.datadir, port=rig.state["postgres"]["port"]).start()
    second = run("03-rollout", ENV, {"execute": True}, params_file=params)
    return {
        "before": before,
        "first": first,
        "stopped": stopped,
        "at_failure": at_failure,
        "second": second,
    }


def test_database_stopped_mid_rollout_then_rerun_resumes(rig: Rig, row, rolled_out) -> None:
    r = row(
        "fault: database stopped in the middle of 03",
        "03 fails at 'step: apply migrations'; after a restart the rerun resumes and completes",
    )
    first, second = rolled_out["first"], rolled_out["second"]
    scrap = read_scraps(second.record)["rollout"] if second.record.exists() else {}
    steps = {s["name"]: s["status"] for s in scrap.get("steps", [])}
    applied = [x["migration_name"] for x in prisma(ENV)]
    after = facts(ENV)
    r.observed = (
        f"1st {first.status} on {failed_checks(first)}; restarted; 2nd {second.status} "
        f"({scrap.get('attempt', '?')[:40]}…, {sum(s == 'skipped' for s in steps.values())} "
        "finished steps skipped)"
    )
    r.data_lost = data_lost(rolled_out["before"][1], after[1])
    assert rolled_out["stopped"], "the fault step did not stop PostgreSQL"
    assert first.status == "failed" and failed_checks(first) == ["step: apply migrations"]
    assert "cannot connect" in first.error
    assert rolled_out["at_failure"] == dict.fromkeys(stack.SERVICES, PREVIOUS)
    assert second.status == "passed", second.error
    assert "resuming attempt 1" in scrap["attempt"]
    for name in ("record running versions", "build web", "api tests", "fault: database dies"):
        assert steps[name] == "skipped", name
    # The chatty tool's credentials reached the record only as *** (the canary test below
    # proves no value did).
    shown = first.record.read_text()
    assert "OPENAI_API_KEY=***" in shown and "DATABASE_URL=***" in shown
    assert steps["apply migrations"] == "done" and steps["deploy web"] == "done"
    assert versions(ENV) == dict.fromkeys(stack.SERVICES, RELEASE)
    assert all(applied.count(name) == 1 for name in PENDING)
    assert r.data_lost == "none"


def test_04_passes_after_the_rollout(rig: Rig, row, rolled_out) -> None:
    r = row("04-smoke after the rollout", "passed at v1.4.0")
    before = facts(ENV)
    result = run("04-smoke", ENV, {"expect_version": RELEASE, "watch_window_s": 4})
    r.observed, r.data_lost = outcome(result), data_lost(before[1], facts(ENV)[1])
    assert result.status == "passed", result.error


@pytest.mark.parametrize(
    ("case", "fault", "check"),
    [
        (
            "API answering 5xx",
            {"error_rate": 1.0, "status": 503, "paths": ["/validation/evaluate"]},
            "confidence calibrator",
        ),
        (
            "latency above budget",
            {"latency_ms": 1600, "paths": ["/adaptive/question/next"]},
            "IRT question selection",
        ),
    ],
    ids=["5xx", "latency"],
)
def test_api_fault_fails_the_smoke_gate_by_name(rig: Rig, row, case, fault, check) -> None:
    r = row(f"fault: {case}", f"04 gate fails naming '{check}'; passes once the fault is gone")
    params = load_environment_params(ROOT / "params" / f"{ENV}.yaml")
    before = facts(ENV)
    stack.admin(f"/admin/{ENV}/api/fault", fault)
    try:
        checks = smoke.run_suite(params)
    finally:
        stack.admin(f"/admin/{ENV}/api/fault", method="DELETE")
    with pytest.raises(GateFailed) as caught:
        gate(checks, "04-smoke gate")
    again = smoke.run_suite(params)
    failed = [c.name for c in caught.value.failed]
    evidence = caught.value.failed[0].evidence.splitlines()[0] if failed else ""
    r.observed = f"gate failed on {failed} ({evidence[:70]}); fault cleared: " + (
        "passes" if again.ok else "STILL FAILING"
    )
    r.data_lost = data_lost(before[1], facts(ENV)[1])
    assert failed == [check] and check in str(caught.value)
    assert again.ok, [c.evidence for c in again if c.status is Status.FAIL]


# --- the rollback drill ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def breach(rig: Rig, rolled_out) -> RunResult:
    """A bug shipped in v1.4.0: the API answers 503 while that version runs; 04 detects it."""
    stack.admin(f"/admin/{ENV}/api/fault", {"error_rate": 1.0, "status": 503, "version": RELEASE})
    with traffic.against(ENV, rate_per_s=20, max_s=300):  # users meet the 503s during the watch
        return run("04-smoke", ENV, {"expect_version": RELEASE})


def test_truncated_snapshot_is_refused_and_nothing_changes(rig: Rig, row, dry_run_02, breach):
    r = row(
        "fault: truncated snapshot offered to 05",
        "05 refuses (SnapshotCorrupt) before changing anything",
    )
    snap = snapshot_of(dry_run_02[0])
    damaged = rig.base / "truncated"
    damaged.mkdir(exist_ok=True)
    source = Path(snap["path"])
    if source.is_dir():  # directory format, the default: cut its largest file in half
        shutil.copytree(source, damaged / source.name, dirs_exist_ok=True)
        cut = max((damaged / source.name).iterdir(), key=lambda p: p.stat().st_size)
    else:
        cut = damaged / source.name
        shutil.copy(source, cut)
    data = cut.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    shutil.copy(manifest_of(snap), damaged / manifest_of(snap).name)
    before = (versions(ENV), facts(ENV), message_count())
    result = run(
        "05-rollback",
        ENV,
        {
            "execute": True,
            "confirm_restore": DATABASE,
            "snapshot": str(damaged / manifest_of(snap).name),
        },
    )
    after = (versions(ENV), facts(ENV), message_count())
    r.observed = outcome(result, 110)
    r.data_lost = data_lost(before[1][1], after[1][1])
    assert result.status == "failed" and "SnapshotCorrupt" in result.error
    assert "does not match its recorded SHA-256" in result.error
    assert "nothing was changed" in result.error
    assert after == before


def test_sla_breach_leads_to_rollback_without_data_loss(rig: Rig, row, dry_run_02, breach):
    r = row(
        "fault: SLA breach (v1.4.0 answers 503)",
        "04 fails 'SLA breached'; 05 restores v1.3.0 and the snapshot; no row lost",
    )
    snap = snapshot_of(dry_run_02[0])
    try:
        result = run(
            "05-rollback",
            ENV,
            {"execute": True, "confirm_restore": DATABASE, "snapshot": str(manifest_of(snap))},
        )
    finally:
        stack.admin(f"/admin/{ENV}/api/fault", method="DELETE")
    counts = facts(ENV)[1]
    scrap = read_scraps(result.record).get("rollback", {}) if result.record.exists() else {}
    breached = "SLA breached" in (breach.error or "")
    r.observed = (
        f"04 {breach.status} ({'SLA breached' if breached else '?'}); "
        f"05 {result.status}, versions {sorted(set(versions(ENV).values()))}, "
        f"recovered in {scrap.get('recovery_s', 0):.0f} s"
    )
    r.data_lost = data_lost(snap["inventory"]["row_counts"], counts)
    assert breach.status == "failed" and "SLA breached" in breach.error
    assert read_scraps(breach.record)["breach"]["metric"] == "error_rate"  # 5xx of real traffic
    assert result.status == "passed", result.error
    assert versions(ENV) == dict.fromkeys(stack.SERVICES, PREVIOUS)
    restored = db.inventory(database_url(ENV))["prisma_migrations"]
    assert restored == snap["inventory"]["prisma_migrations"]
    assert scrap["verified"] and scrap["restored"] and Path(scrap["incident_report"]).exists()
    assert r.data_lost == "none"


# --- faults on envs of their own -------------------------------------------------------------


def test_migration_failing_mid_apply_is_rolled_back_and_recoverable(rig: Rig, row) -> None:
    r = row(
        "fault: a migration failing mid-apply",
        "03 fails at 'step: apply migrations'; its half is rolled back; rerun refused (P3009) "
        "until resolved, then completes",
    )
    checkout = rig.base / "broken-checkout"
    shutil.copytree(rig.state["checkout"], checkout, symlinks=True)
    name = "20991231000000_half_applied"
    (checkout / MIGRATIONS / name).mkdir()
    (checkout / MIGRATIONS / name / "migration.sql").write_text(
        'CREATE TABLE "rel_half_applied" ("id" INTEGER);\n'
        'ALTER TABLE "no_such_table" ADD COLUMN "x" INTEGER;\n'
    )
    params = write_params(
        rig.base / f"{MIGRATING}.yaml",
        ENV,
        environment=lambda e: {**e, "name": MIGRATING},
        checkout=lambda c: {**c, "path": str(checkout)},
        rollout=lambda r: {**r, "build": []},
    )
    url = database_url(MIGRATING)
    before, was = facts(MIGRATING), versions(MIGRATING)

    first = start(MIGRATING, params, True)
    failed = rollout.rollout(first, {})
    with pytest.raises(GateFailed) as caught:
        first.finish()
    with db.connect(url, autocommit=True) as conn:
        half = conn.execute("SELECT to_regclass('rel_half_applied')").fetchone()[0]
    row_ = {x["migration_name"]: x for x in prisma(MIGRATING)}[name]
    deployed_after_failure = versions(MIGRATING)
    refused = rollout.rollout(start(MIGRATING, params, True), {})

    # Recovery as the message says: resolve the failed row (prisma migrate resolve
    # --rolled-back), fix the migration (here: drop it), rerun.
    with db.connect(url, autocommit=True) as conn:
        conn.execute(
            "UPDATE _prisma_migrations SET rolled_back_at = now() WHERE migration_name = %s",
            (name,),
        )
    shutil.rmtree(checkout / MIGRATIONS / name)
    recovered = rollout.rollout(start(MIGRATING, params, True), {})
    after = facts(MIGRATING)
    r.observed = (
        f"1st {failed.status} ({str(caught.value)[:60]}…); half-applied table "
        f"{'LEFT BEHIND' if half else 'absent'}; rerun {refused.status} "
        f"({'P3009' if 'P3009' in (refused.error or '') else '?'}); after resolve: "
        f"{recovered.status}"
    )
    r.data_lost = data_lost(before[1], after[1])
    assert failed.status == "failed" and "apply migrations" in failed.error
    assert [c.name for c in caught.value.failed] == ["step: apply migrations"]
    assert name in str(caught.value) and "42P01" in row_["logs"]
    assert half is None, "the failed migration's first statement was not rolled back"
    assert row_["finished_at"] is None and deployed_after_failure == was
    assert refused.status == "failed" and "P3009" in refused.error and name in refused.error
    assert recovered.status == "completed", recovered.error
    assert versions(MIGRATING) == dict.fromkeys(stack.SERVICES, RELEASE)
    assert r.data_lost == "none"


def test_two_rollouts_at_once_the_second_is_refused(rig: Rig, row) -> None:
    r = row(
        "fault: two rollouts of one env at once",
        "the second fails with LockHeld naming the first; the first completes",
    )
    slow = {"name": "slow build", "argv": ["python", "-c", "import time; time.sleep(4)"]}
    params = write_params(
        rig.base / f"{LOCKING}.yaml",
        ENV,
        environment=lambda e: {**e, "name": LOCKING},
        rollout=lambda r: {**r, "build": [slow]},
    )
    before = facts(LOCKING)
    first_run = start(LOCKING, params, True, operator="first-lead")
    second_run = start(LOCKING, params, True, operator="second-lead")
    lock_file = lock_dir(LOCKING) / f"{LOCKING}.lock"
    outcome_: dict[str, Any] = {}

    def first() -> None:
        try:
            outcome_["result"] = rollout.rollout(first_run, {})
        except BaseException as exc:  # noqa: BLE001 - reported below
            outcome_["error"] = exc

    thread = threading.Thread(target=first)
    thread.start()
    deadline = time.monotonic() + 60
    while not (lock_file.exists() and lock_file.stat().st_size) and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        with pytest.raises(LockHeld) as caught:
            rollout.rollout(second_run, {})
    finally:
        thread.join(180)
    result = outcome_.get("result")
    with environment_lock(lock_dir(LOCKING), LOCKING, runbook="probe"):
        free = True
    r.observed = (
        f"2nd: LockHeld ({str(caught.value).split(';')[0][:70]}…); 1st: "
        f"{result.status if result else outcome_.get('error')}; lock free after: {free}"
    )
    r.data_lost = data_lost(before[1], facts(LOCKING)[1])
    message = str(caught.value)
    assert "runbook 03-rollout" in message and "operator first-lead" in message
    assert not [c for c in second_run.checks if c.name.startswith("step: ")]
    assert result is not None and result.status == "completed", outcome_
    assert versions(LOCKING) == dict.fromkeys(stack.SERVICES, RELEASE)


# --- hostile input --------------------------------------------------------------------------


class NotebookStarted(Exception):
    """Raised instead of starting a kernel: the runner accepted the input."""


@pytest.fixture
def no_kernel(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Replace papermill's execution: a refused run never gets here."""
    import papermill

    started: list[dict[str, Any]] = []

    def fake(*args: Any, **kwargs: Any) -> None:
        started.append(kwargs.get("parameters") or {})
        raise NotebookStarted(kwargs.get("parameters"))

    monkeypatch.setattr(papermill, "execute_notebook", fake)
    return started


def observe(rig: Rig) -> tuple[Any, ...]:
    """What a hostile input could change: files, schema, rows, versions, messages."""
    return tree(rig.outputs), facts(ENV), versions(ENV), message_count()


def edit_params(env: str, change: Callable[[dict[str, Any]], None]) -> Callable[[Path], Path]:
    def write(folder: Path) -> Path:
        raw = read_params_yaml(ROOT / "params" / f"{env}.yaml")
        change(raw)
        path = folder / f"hostile-{abs(hash(repr(raw))) % 10**8}.yaml"
        path.write_text(yaml.safe_dump(raw, sort_keys=False))
        return path

    return write


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(raw: dict[str, Any]) -> None:
        *parents, key = path.split(".")
        node = raw
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if value is _DELETE:
            del node[key]
        else:
            node[key] = value

    return change


_DELETE = object()
_RUN = ["run", "02", "--env", ENV, "--release", RELEASE]
HOSTILE_CLI = [
    ("release '../../etc'", ["run", "01", "--env", ENV, "--release", "../../etc"], None,
     "release '../../etc' is not a SemVer tag"),
    ("release 'v1.2' (not SemVer)", ["run", "01", "--env", ENV, "--release", "v1.2"], None,
     "release 'v1.2' is not a SemVer tag"),
    ("previous_release with shell metacharacters",
     [*_RUN, "-p", "previous_release", "v1.3.0; rm -rf /"], None,
     "previous_release 'v1.3.0; rm -rf /' is not a SemVer tag"),
    ("env name '../../etc'", ["run", "01", "--env", "../../etc", "--release", RELEASE], None,
     "params file not found"),
    ("unknown runbook", ["run", "99-drop-tables", "--env", ENV, "--release", RELEASE], None,
     "unknown runbook '99-drop-tables'"),
    ("unknown parameter", [*_RUN, "-p", "executee", "true"], None,
     "unknown parameter 'executee'"),
    ("a secret passed as a parameter",
     [*_RUN, "-p", "openai_api_key", SECRET_CANARIES["SANDBOX_OPENAI_API_KEY"]], None,
     "parameter 'openai_api_key' looks like a secret"),
    ("a reserved parameter", [*_RUN, "-p", "env", "production"], None, "is set by --env"),
    ("params: unknown key", _RUN, edit_params(ENV, _set("environment.colour", "blue")),
     "environment.colour: unknown key"),
    ("params: missing key", _RUN, edit_params(ENV, _set("epic", _DELETE)),
     "epic: required key is missing"),
    ("params: wrong type", _RUN, edit_params(ENV, _set("thresholds.error_rate", "high")),
     "thresholds.error_rate: Input should be a valid number"),
    ("params: list where a mapping belongs", _RUN, edit_params(ENV, _set("schedule", [1, 2])),
     "schedule: Input should be a valid dictionary"),
    ("service name with SQL injection", _RUN,
     edit_params(ENV, _set("services.0.name", "api'; DROP TABLE concepts; --")),
     "services.0.name: Value error, a lowercase name"),
    ("environment name with SQL injection", _RUN,
     edit_params(ENV, _set("environment.name", 'sandbox"; DROP DATABASE americano_sandbox; --')),
     "environment.name: Value error, a lowercase name"),
    ("scratch pattern that would allow any restore target", _RUN,
     edit_params(ENV, _set("database.scratch_pattern", "americano_.*")),
     "database.scratch_pattern: Value error, an anchored pattern"),
    ("a params file that is not a mapping", _RUN,
     lambda folder: (folder / "list.yaml").write_text("- a\n- b\n") and folder / "list.yaml",
     "expected a mapping of keys at the top level"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "argv", "params", "message"),
    HOSTILE_CLI,
    ids=[(c.values if hasattr(c, "values") else c)[0] for c in HOSTILE_CLI],
)
def test_hostile_cli_input_is_refused_before_anything(
    rig: Rig, row, no_kernel, capfd, case, argv, params, message
) -> None:
    r = row(f"hostile input: {case}", "exit 2 with a clear message; nothing touched")
    folder = rig.base / "hostile"
    folder.mkdir(exist_ok=True)
    if params is not None:
        argv = [*argv, "--params-file", str(params(folder))]
    before = observe(rig)
    try:
        code: int | str = cli.main(argv)
    except NotebookStarted:
        code = "notebook started"
    shown = capfd.readouterr()
    rig.texts[f"cli {case}"] = shown.out + shown.err
    after = observe(rig)
    error = shown.err.strip().splitlines()[0] if shown.err.strip() else ""
    r.observed = f"exit {code}: {error[:110]}"
    r.data_lost = data_lost(before[1][1], after[1][1])
    assert code == 2 and not no_kernel
    assert error.startswith("deploybook: error: ") and message in shown.err
    assert after == before


def test_hostile_release_through_the_real_command(rig: Rig, row) -> None:
    r = row("hostile input: `deploybook run` as a process", "exit 2, one clear line, no record")
    before = tree(rig.outputs)
    proc = subprocess.run(
        [sys.executable, "-m", "deploybook", "run", "01", "--env", ENV, "--release", "../../etc"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    rig.texts["deploybook run ../../etc"] = proc.stdout + proc.stderr
    r.observed = f"exit {proc.returncode}: {proc.stderr.strip()[:100]}"
    r.data_lost = "none" if tree(rig.outputs) == before else "files written"
    assert proc.returncode == 2
    assert proc.stderr == "deploybook: error: release '../../etc' is not a SemVer tag like v1.4.0\n"
    assert tree(rig.outputs) == before


def test_wrongly_typed_parameter_is_refused_before_start(rig: Rig, row, no_kernel, capfd):
    r = row(
        "hostile input: `-p execute \"'false'\"` (a str, not a bool)",
        "exit 2 before the notebook starts",
    )
    before = observe(rig)
    try:
        code: int | str = cli.main(
            ["run", "03", "--env", ENV, "--release", RELEASE, "-p", "execute", "'false'"]
        )
    except NotebookStarted:
        code = "none: the notebook started"
    rig.texts["cli execute 'false'"] = "".join(capfd.readouterr())
    given = no_kernel[0].get("execute") if no_kernel else None
    r.observed = f"exit {code}" + (
        f" with execute={given!r} (truthy: 03 would EXECUTE)" if no_kernel else ""
    )
    r.data_lost = data_lost(before[1][1], observe(rig)[1][1])
    assert code == 2 and not no_kernel


def test_hostile_flag_in_params_is_refused_before_start(rig: Rig, row, no_kernel, capfd):
    r = row(
        "hostile input: a flag name with shell metacharacters in params",
        "exit 2 before the notebook starts; nothing run",
    )
    marker = rig.base / "hostile" / "PWNED"
    params = edit_params(
        PRODUCTION,
        lambda raw: raw["rollout"].update(
            flags=[f"x; touch {marker}"], flag_command=["touch", f"{marker}-{{flag}}"]
        ),
    )(rig.base / "hostile")
    before = observe(rig)
    try:
        code: int | str = cli.main(
            ["run", "03", "--env", PRODUCTION, "--release", RELEASE, "--params-file", str(params)]
        )
    except NotebookStarted:
        code = "none: params accepted, the notebook started (refused later, in the kernel)"
    rig.texts["cli hostile flag"] = "".join(capfd.readouterr())
    r.observed = f"exit {code}"
    r.data_lost = data_lost(before[1][1], observe(rig)[1][1])
    assert not list(marker.parent.glob("PWNED*"))
    assert code == 2 and not no_kernel


def test_shell_metacharacters_never_reach_a_command(rig: Rig, row) -> None:
    r = row(
        "hostile input: shell metacharacters in command template values",
        "every value refused (ConfigError) before any command runs",
    )
    folder = rig.base / "markers"
    folder.mkdir(exist_ok=True)
    values = [
        "v1.4.0; touch {m}",
        "v1.4.0 && touch {m}",
        "$(touch {m})",
        "`touch {m}`",
        "v1.4.0 | tee {m}",
        "v1.4.0\ntouch {m}",
        "x > {m}",
        "../../etc/passwd",
        "-rf",
    ]
    refused = 0
    for key in ("version", "service", "env", "replicas", "flag", "image"):
        for value in values:
            hostile = value.replace("{m}", str(folder / f"{key}-pwned"))
            with pytest.raises(ConfigError, match=rf"{key}=|{key} ") as caught:
                deploy.run_template(["touch", str(folder / f"{{{key}}}")], {key: hostile}, 5)
            assert "refused" in str(caught.value) or "is not" in str(caught.value)
            refused += 1
    with pytest.raises(ConfigError, match="never a shell string"):
        deploy.run_template(f"touch {folder / 'shell-string'}", {}, 5)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="is not allowed"):
        deploy.run_template(["touch", str(folder / "{version!r}")], {"version": RELEASE}, 5)
    # A hostile flag in params: refused when the params file loads, before any plan exists.
    params = edit_params(
        PRODUCTION, lambda raw: raw["rollout"].update(flags=[f"x; touch {folder / 'flag'}"])
    )(rig.base)
    with pytest.raises(ConfigError, match="rollout.flags"):
        Runbook("03-rollout", PRODUCTION, RELEASE, str(params), "rel-lead", False, PREVIOUS)
    ran = sorted(p.name for p in folder.iterdir())
    r.observed = f"{refused} hostile values + shell string + format spec + flag refused; ran: {ran}"
    r.data_lost = "none"
    assert ran == []


def test_sql_identifiers_are_quoted(rig: Rig, row) -> None:
    from psycopg import sql

    r = row(
        "hostile input: database and table names that try SQL injection",
        "created, counted, fingerprinted and dropped as plain names; nothing else touched",
    )
    hostile_db = 'deploybook_scratch_x"; DROP DATABASE americano_sandbox; --'
    hostile_table = 'concepts"; DROP TABLE concepts; --'
    before, dbs = facts(ENV), databases()
    pg = PgCluster(rig.datadir)
    pg.create_database(hostile_db)
    try:
        url = db.with_dbname(database_url(ENV), hostile_db)
        with db.connect(url, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE TABLE {} (id int)").format(sql.Identifier(hostile_table)))
            conn.execute(
                sql.SQL("INSERT INTO {} VALUES (1), (2)").format(sql.Identifier(hostile_table))
            )
        counts = db.row_counts(url)
        inventory = db.inventory(url)
        fingerprint = pg_fingerprint.schema_fingerprint(url)
    finally:
        pg.drop_database(hostile_db)
    after = facts(ENV)
    r.observed = f"counted {counts}; fingerprint {fingerprint[:8]}…; dropped; others unchanged"
    r.data_lost = data_lost(before[1], after[1])
    assert counts == {hostile_table: 2} and inventory["tables"] == [hostile_table]
    assert after == before and databases() == dbs


def test_restore_target_outside_the_scratch_pattern_is_refused(rig: Rig, row, dry_run_02):
    r = row(
        "hostile input: restore targets outside the scratch pattern",
        "RestoreRefused before anything is created; a quoted odd scratch name restores safely",
    )
    snap = load_snapshot(manifest_of(snapshot_of(dry_run_02[0])))
    url, default = database_url(ENV), load_environment_params(ROOT / "params" / f"{ENV}.yaml")
    pattern = default.database.scratch_pattern
    bin_dir = rig.state["postgres"]["bin_dir"]
    before, dbs = facts(ENV), databases()
    refusals = [
        (stack.database_name(PRODUCTION), pattern, "does not match the configured pattern"),
        ('deploybook_scratch_x"; DROP DATABASE americano_sandbox; --', pattern, "does not match"),
        (DATABASE, "^.+$", "is the source or a system database"),
        ("postgres", "^.+$", "is the source or a system database"),
    ]
    for target, scratch_pattern, message in refusals:
        with pytest.raises(RestoreRefused, match=message):
            verify_restore(snap, url, target, scratch_pattern, bin_dir=bin_dir)
    assert databases() == dbs
    odd = 'deploybook_scratch_x"; DROP DATABASE americano_sandbox; --'
    verified = verify_restore(snap, url, odd, r"^deploybook_scratch_.+$", bin_dir=bin_dir)
    after = facts(ENV)
    r.observed = (
        f"{len(refusals)} targets refused, nothing created; odd quoted scratch name: "
        f"{'verified and dropped' if verified.ok and databases() == dbs else 'PROBLEM'}"
    )
    r.data_lost = data_lost(before[1], after[1])
    assert verified.ok and databases() == dbs and after == before


# --- tamper ---------------------------------------------------------------------------------


def _ledger(copy: Path) -> Path:
    return copy / ENV / "ledger.jsonl"


def _entries(copy: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in _ledger(copy).read_text().splitlines() if line.strip()]


def _write_entries(copy: Path, entries: list[dict[str, Any]]) -> None:
    _ledger(copy).write_text("".join(json.dumps(e, sort_keys=True) + "\n" for e in entries))


def _a_failed_entry(copy: Path) -> tuple[int, dict[str, Any]]:
    entries = _entries(copy)
    index = next((i for i, e in enumerate(entries) if e["status"] == "failed"), 0)
    return index, entries[index]


def forge_record(copy: Path) -> str:
    _, entry = _a_failed_entry(copy)
    path = copy / entry["record"]
    notebook = json.loads(path.read_text())
    notebook["metadata"]["deploybook"].update(status="passed", error=None)
    path.write_text(json.dumps(notebook, indent=1))
    return f"record {entry['record']} was edited after it was recorded"


def delete_record(copy: Path) -> str:
    entry = _entries(copy)[0]
    (copy / entry["record"]).unlink()
    return f"record {entry['record']} was deleted"


def edit_html(copy: Path) -> str:
    entry = _entries(copy)[0]
    path = copy / entry["html"]
    path.write_text(path.read_text().replace("</body>", "<p>all green</p></body>"))
    return f"html {entry['html']} was edited after it was recorded"


def forge_ledger_line(copy: Path) -> str:
    index, entry = _a_failed_entry(copy)
    entries = _entries(copy)
    entries[index] = {**entry, "status": "passed", "error": None}
    _write_entries(copy, entries)
    return f"ledger line {index + 1} ({entry['record']}): ledger line edited"


def delete_ledger_line(copy: Path) -> str:
    entries = _entries(copy)
    _write_entries(copy, [entries[0], *entries[2:]])
    return f"{entries[1]['record']}: record is not in the ledger"


def reorder_ledger_lines(copy: Path) -> str:
    entries = _entries(copy)
    _write_entries(copy, [entries[1], entries[0], *entries[2:]])
    return f"ledger line 1 ({entries[1]['record']}): sequence 2 where 1 was expected"


def unlisted_record(copy: Path) -> str:
    entry = _entries(copy)[0]
    source = copy / entry["record"]
    extra = source.with_name("20990101T000000000000Z-03-rollout.ipynb")
    shutil.copy(source, extra)
    return f"{extra.relative_to(copy)}: record is not in the ledger"


_RECORD_STAMP = re.compile(r"[\w-]+/v[\d.]+/\d{8}T\d+Z-")  # shortens record paths in the table
TAMPER = [
    ("edit a record (failed → passed)", forge_record),
    ("delete a record", delete_record),
    ("edit an HTML rendering", edit_html),
    ("edit a ledger line (failed → passed)", forge_ledger_line),
    ("delete a ledger line", delete_ledger_line),
    ("reorder ledger lines", reorder_ledger_lines),
    ("add a record outside the ledger", unlisted_record),
]


@pytest.mark.parametrize(("case", "tamper"), TAMPER, ids=[c for c, _ in TAMPER])
def test_tampering_is_detected_by_audit_verify(rig: Rig, row, breach, capfd, case, tamper):
    r = row(f"tamper: {case}", "`deploybook audit verify` exits 1 naming it")
    copy = rig.base / "tamper" / case.split(" (")[0].replace(" ", "-")
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(rig.outputs, copy, ignore=shutil.ignore_patterns("snapshots", "interactive"))
    assert cli.main(["audit", "verify", "--outputs", str(copy), "--env", ENV]) == 0
    capfd.readouterr()
    expected = tamper(copy)
    code = cli.main(["audit", "verify", "--outputs", str(copy), "--env", ENV])
    shown = capfd.readouterr()
    rig.texts[f"audit verify {case}"] = shown.out + shown.err
    lines = [line for line in shown.out.splitlines() if line.startswith("TAMPERED")]
    named = next((line for line in lines if expected in line), lines[0] if lines else shown.out)
    r.observed = f"exit {code}: {_RECORD_STAMP.sub('…', named)}"
    r.data_lost = "none"
    assert code == 1
    assert any(expected in line for line in lines), (expected, lines)
    assert "problem(s) in" in shown.err


def test_tampered_record_through_the_real_command(rig: Rig, row, breach) -> None:
    r = row("tamper: `deploybook audit verify` as a process", "exit 0 untouched, 1 after an edit")
    copy = rig.base / "tamper" / "process"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(rig.outputs, copy, ignore=shutil.ignore_patterns("snapshots", "interactive"))
    argv = [sys.executable, "-m", "deploybook", "audit", "verify", "--outputs", str(copy)]
    clean = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=120)
    expected = forge_record(copy)
    tampered = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=120)
    rig.texts["audit verify process"] = clean.stdout + tampered.stdout + tampered.stderr
    problems = [line for line in tampered.stdout.splitlines() if not line.startswith("head ")]
    named = _RECORD_STAMP.sub("…", problems[0] if problems else "")
    r.observed = f"exit {clean.returncode} untouched, then {tampered.returncode}: {named}"
    r.data_lost = "none"
    assert clean.returncode == 0 and clean.stdout.splitlines()[-1].startswith("ok: ")
    assert tampered.returncode == 1 and expected in tampered.stdout


# --- bounded load ---------------------------------------------------------------------------


def test_smoke_and_watch_under_concurrent_load_stay_bounded(rig: Rig, row) -> None:
    r = row(
        "bounded load: 6 concurrent smoke suites × 5 rounds + an SLA watch",
        "all finish within their timeouts; memory flat (< 40 MB growth)",
    )
    params = load_environment_params(ROOT / "params" / f"{ENV}.yaml")
    assert {urlsplit(s.base_url).hostname for s in params.services} == {"127.0.0.1"}
    me, daemon = psutil.Process(), psutil.Process(rig.state["daemon_pid"])

    def suite(_: int) -> tuple[float, int]:
        started = time.monotonic()
        checks = smoke.run_suite(params)
        return time.monotonic() - started, len(checks)

    with ThreadPoolExecutor(6) as pool:
        list(pool.map(suite, range(6)))  # warm-up: connection pools, imports, caches
        rss = (me.memory_info().rss, daemon.memory_info().rss)
        futures = [pool.submit(suite, i) for i in range(30)]
        watch_started = time.monotonic()
        watch = sla_watch.watch_slas(params, window_s=3)
        watch_took = time.monotonic() - watch_started
        timings = [f.result(timeout=120) for f in futures]
    grown = [
        (me.memory_info().rss - rss[0]) / 2**20,
        (daemon.memory_info().rss - rss[1]) / 2**20,
    ]
    slowest = max(t for t, _ in timings)
    requests = sum(n for _, n in timings)
    r.observed = (
        f"{len(timings)} suites ({requests} checks), slowest {slowest:.1f} s; watch "
        f"{watch_took:.1f} s for a 3 s window; RSS +{grown[0]:.0f} MB here, "
        f"+{grown[1]:.0f} MB daemon"
    )
    r.data_lost = "none"
    assert slowest < 30 and watch_took < 3 + 10 and watch.checks
    assert grown[0] < 40 and grown[1] < 40, grown


# --- interactive-style, then the canary scan ------------------------------------------------


def test_interactive_runs_of_all_five_runbooks(rig: Rig, row) -> None:
    r = row(
        "interactive-style: 01→05 as in JupyterLab (widgets, no papermill, no scrub pass)",
        "nothing executed or changed; no canary in the saved notebook",
    )
    common = {
        "env": PRODUCTION,
        "release": RELEASE,
        "previous_release": PREVIOUS,
        "params_file": f"params/{PRODUCTION}.yaml",
        "operator": "interactive-lead",
    }
    # 05 restores the snapshot the interactive 02 took (the lead pastes its path).
    snapshots = rig.outputs / PRODUCTION / RELEASE / "snapshots"
    newest = Code(f"str(max(__import__('pathlib').Path({str(snapshots)!r}).glob('*.json')))")
    runs = [
        ("01-preconditions", {**common, "rate_limits_reviewed_by": "Sam Services"}),
        ("02-migration-dry-run", common),
        ("03-rollout", common),
        ("04-smoke", {**common, "watch_window_s": 4}),
        ("05-rollback", {**common, "snapshot": newest}),
    ]
    out = rig.outputs / "interactive" / "session.ipynb"
    before = (facts(PRODUCTION), versions(PRODUCTION), message_count())
    outputs = runbook_outputs(interactive_session(runs, out))
    after = (facts(PRODUCTION), versions(PRODUCTION), message_count())
    errors = {
        name[:2]: [o["ename"] for o in found if o.get("output_type") == "error"]
        for name, found in outputs.items()
    }
    widget = "application/vnd.jupyter.widget-view+json"
    widgets = {
        name[:2]: sum(widget in o.get("data", {}) for o in found) for name, found in outputs.items()
    }
    hits = scan_files([out], SECRET_CANARIES.values())
    r.observed = (
        f"widgets {widgets}; errors {({k: v for k, v in errors.items() if v}) or 'none'}; "
        f"{len(hits)} canaries; {'unchanged' if after == before else 'CHANGED'}"
    )
    r.data_lost = data_lost(before[0][1], after[0][1])
    assert hits == []
    assert set(outputs) == {name for name, _ in runs}
    # sandbox-production signs off as production does: 03 shows the signed approvals' table
    # (no form: approvals are files `deploybook approve` signs); 05 its typed confirmation.
    signoffs = [name for name in outputs if name.startswith("03")]
    assert signoffs and "deploybook-signoffs" in json.dumps(outputs[signoffs[0]])
    assert widgets["05"] >= 1, "typed confirmation"
    # Only a gate, or a form waiting for the lead (04's production spot checks), may stop
    # an interactive run; nothing else may raise.
    assert all(set(e) <= {"GateFailed", "WaitingForLead"} for e in errors.values()), errors
    assert after == before


def test_no_canary_reaches_any_record_log_or_message(rig: Rig, row) -> None:
    r = row(
        "secret canary: every secret a unique canary, all runbooks passing and failing",
        "0 occurrences in records, HTML, ledgers, logs, incident reports, webhooks, emails",
    )
    needles = list(SECRET_CANARIES.values())
    # The canaries were in play: each env resolved its own, the password is in the URL.
    for env, prefix in ((ENV, "SANDBOX_"), (PRODUCTION, "SANDBOX_PRODUCTION_")):
        values = stack.sandbox_environment(env)
        for key in ("OPENAI_API_KEY", "GEMINI_API_KEY", "GOOGLE_GEMINI_API_KEY"):
            assert values[key] == SECRET_CANARIES[prefix + key]
        assert SECRET_CANARIES["DEPLOYBOOK_SANDBOX_DB_PASSWORD"] in values["DATABASE_URL"]
    # The scan finds a canary where there is one.
    control = rig.base / "control" / "leak.txt"
    control.parent.mkdir(exist_ok=True)
    control.write_text(f"oops {needles[-1]}")
    assert scan_files([control.parent], needles) == [(str(control), needles[-1])]

    logs = [
        rig.state_dir / "daemon.log",
        rig.state_dir / "daemon.out",
        rig.datadir / "postgres.log",
    ]
    files = [p for p in rig.outputs.rglob("*") if p.is_file()]
    kinds = {
        "records": sum(p.suffix == ".ipynb" for p in files),
        "HTML": sum(p.suffix == ".html" for p in files),
        "ledgers": sum(p.name == "ledger.jsonl" for p in files),
        "incident reports": sum(p.name.startswith("incident-") for p in files),
    }
    # An announcement carrying every secret (as a failing command's stderr would) goes
    # through the real webhook and SMTP receivers: the scrubber is all that stops them.
    params = load_environment_params(ROOT / "params" / f"{ENV}.yaml")
    values = stack.sandbox_environment(ENV)
    os.environ.update(values)  # as a Runbook does: the webhook URL comes from there
    carried = " ".join(f"{k}={v}" for k, v in values.items())
    sent = notify.announce(params.notifications, f"[{ENV}] deploy tool said", carried)
    assert [c.status for c in sent] == [Status.PASS, Status.PASS], [c.evidence for c in sent]
    messages = messages_text()
    hits = [
        *scan_files([rig.outputs, *logs], needles),
        *canary_hits(messages, needles),
        *canary_hits(rig.texts, needles),
    ]
    secret_files = {n: (rig.state_dir / n).stat().st_mode & 0o777 for n in SECRET_FILES}
    r.observed = (
        f"{len(hits)} occurrences in {len(files)} output files ("
        + ", ".join(f"{v} {k}" for k, v in kinds.items())
        + f"), {len(logs)} logs, {len(messages)} webhook/email messages, "
        f"{len(rig.texts)} captured outputs"
    )
    r.data_lost = "none"
    assert hits == [], hits
    assert all(kinds.values()), f"nothing to scan ({kinds}): run the whole module"
    assert all(p.exists() for p in logs)
    assert any(k.startswith("webhook") for k in messages)
    assert any(k.startswith("email") for k in messages)
    assert set(secret_files.values()) == {0o600}, secret_files
