"""Runbook 05-rollback on its own sandbox stack, for real.

The "after rollout" state is built here (03's library may not exist yet): a snapshot of
the environment's database, the release's pending migrations applied, every stand-in at
the new version. Then: refusals change nothing; a dry run changes nothing; 04 detects a
sustained 5xx breach and 05 (papermill, headless) brings everything back and files the
incident; prefill reads real-format 03/04 records.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import nbformat
import pytest
import scrapbook as sb
from sandbox_fixtures import files_containing

from deploybook.config.snapshot import RollbackSpec
from deploybook.core import audit
from deploybook.core.lock import run_lock
from deploybook.errors import ConfigError, LockHeld, RestoreRefused, SnapshotCorrupt
from deploybook.ops.runner import run_runbook
from deploybook.runbooks import rollback
from deploybook.runbooks.rollback import database as rollback_database
from deploybook.sandbox import stack, traffic
from deploybook.sandbox.postgres import PgCluster
from deploybook.session import runbook as session
from deploybook.systems.postgres import db
from deploybook.systems.postgres.restore import restore
from deploybook.systems.postgres.snapshot import Snapshot, snapshot
from deploybook.systems.prisma import apply as prisma_apply
from deploybook.systems.prisma import migrations

ENV, RELEASE, PREVIOUS = "sandbox", stack.RELEASE, stack.PREVIOUS
DATABASE = stack.database_name(ENV)
PARAMS_FILE = Path(__file__).resolve().parents[1] / "params" / "sandbox.yaml"
MIGRATIONS = "apps/web/prisma/migrations"


@dataclass
class Rig:
    base: Path
    url: str
    snap: Snapshot
    migrations: Path

    @property
    def manifest(self) -> Path:
        return self.snap.path.with_name(f"{self.snap.name}.manifest.json")


@pytest.fixture(scope="module")
def rig() -> Iterator[Rig]:
    """Our own stack (not the shared session one) and a snapshot taken before the rollout.

    Its state lives outside pytest's tmp tree: another pytest session on the machine
    resets /tmp/pytest-of-<user> to 0700, after which the server's own user could not
    reach its datadir to stop.
    """
    base = Path(tempfile.mkdtemp(prefix="deploybook-rollback-"))
    saved = os.environ.copy()
    os.environ["DEPLOYBOOK_STATE_DIR"] = str(base / "state")
    os.environ["DEPLOYBOOK_OUTPUTS"] = str(base / "outputs")
    os.environ.pop("DEPLOYBOOK_RECORD", None)
    # The rollback commands in params run `deploybook`: this installation's.
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    try:
        stack.up(base / "state", progress=None)
        values = stack.sandbox_environment(ENV)
        url = values["DATABASE_URL"]
        snap = snapshot(
            url,
            base / "snapshots",
            f"before-{RELEASE}-{ENV}",
            compress=1,
            bin_dir=PgCluster.bin_dir(),
        )
        yield Rig(base, url, snap, Path(values["AMERICANO_CHECKOUT"]) / MIGRATIONS)
    finally:
        try:
            stack.down(base / "state", progress=None)
        finally:
            os.environ.clear()
            os.environ.update(saved)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def rolled_out(rig: Rig) -> Rig:
    """The state 03-rollout leaves: new migrations applied, every service at the release."""
    prisma_apply.apply_pending(rig.url, migrations.read_migrations(rig.migrations))
    for service in stack.SERVICES:
        stack.admin(f"/admin/{ENV}/{service}/version", {"version": RELEASE})
    stack.admin("/admin/messages", method="DELETE")
    return rig


def runbook(run_id: str, execute: bool = True) -> session.Runbook:
    return session.Runbook(
        name="05-rollback",
        env=ENV,
        release=RELEASE,
        params_file=str(PARAMS_FILE),
        operator="ci",
        execute=execute,
        run_id=run_id,
    )


def versions() -> dict[str, str]:
    """What each stand-in's health endpoint reports."""
    services = stack.read_state()["envs"][ENV]["services"]
    return {
        name: httpx.get(url + ("/api/health" if name == "web" else "/health"), timeout=5).json()[
            "version"
        ]
        for name, url in services.items()
    }


def observe(rig: Rig) -> dict[str, Any]:
    """Everything a rollback could change: versions, rows, migrations, messages."""
    facts = db.inventory(rig.url)
    messages = stack.admin("/admin/messages", method="GET")
    return {
        "versions": versions(),
        "row_counts": facts["row_counts"],
        "migrations": facts["prisma_migrations"],
        "messages": len(messages["webhook"]) + len(messages["email"]),
    }


def plan_for(run: session.Runbook, rig: Rig, **overrides: Any) -> rollback.RollbackPlan:
    return rollback.prefill(
        run, {"snapshot": str(rig.manifest), "previous_release": PREVIOUS, **overrides}
    )


# -- prefill ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("overrides", "named", "not_named"),
    [
        ({}, ["previous_release=", "snapshot="], []),
        ({"previous_release": PREVIOUS}, ["snapshot="], ["previous_release="]),
        ({"snapshot": "MANIFEST"}, ["previous_release="], ["snapshot="]),
    ],
    ids=["nothing", "no-snapshot", "no-version"],
)
def test_prefill_without_records_names_what_to_pass(
    rig, tmp_path, monkeypatch, overrides, named, not_named
) -> None:
    monkeypatch.setenv("DEPLOYBOOK_OUTPUTS", str(tmp_path / "no-records"))
    overrides = {k: str(rig.manifest) if v == "MANIFEST" else v for k, v in overrides.items()}
    with pytest.raises(ConfigError) as caught:
        rollback.prefill(runbook("no-records"), overrides)
    message = str(caught.value)
    assert f"no 03-rollout record for {ENV} {RELEASE}" in message
    assert all(n in message for n in named) and not any(n in message for n in not_named)


def test_snapshot_parameter_needs_its_manifest(rig, tmp_path) -> None:
    lone = tmp_path / "lonely"
    shutil.copytree(rig.snap.path, lone)
    with pytest.raises(ConfigError, match="manifest.json"):
        plan_for(runbook("lonely"), rig, snapshot=str(lone))


def _fake_record(outputs: Path, runbook_name: str, scraps: dict[str, Any], moment) -> Path:
    """A record as the runner writes it: scraps in scrapbook's format, a ledger entry."""
    path = audit.record_path(outputs, ENV, RELEASE, runbook_name, moment)
    glued = [
        nbformat.v4.new_output(
            "display_data",
            data={
                "application/scrapbook.scrap.json+json": {
                    "name": name,
                    "data": value,
                    "encoder": "json",
                    "version": 1,
                }
            },
            metadata={"scrapbook": {"name": name, "data": True, "display": False}},
        )
        for name, value in scraps.items()
    ]
    notebook = nbformat.v4.new_notebook()
    notebook.cells.append(nbformat.v4.new_code_cell("# glued", outputs=glued))
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, path)
    audit.append_ledger(
        outputs,
        ENV,
        record=str(path.relative_to(outputs)),
        runbook=runbook_name,
        release=RELEASE,
        status="passed",
    )
    return path


def test_prefill_reads_the_rollout_and_smoke_records(rig, tmp_path, monkeypatch) -> None:
    outputs = tmp_path / "outputs"
    monkeypatch.setenv("DEPLOYBOOK_OUTPUTS", str(outputs))
    now = datetime.now(UTC)
    previous = {"api": "v1.3.0", "web": "v1.3.0", "chatmock": "v1.2.9", "ocr": "v1.3.0"}
    applied = ["20251014090000_understanding_validation"]
    taken = _fake_record(
        outputs, "02-migration-dry-run", {"snapshot": rig.snap.as_dict()}, now - timedelta(hours=1)
    )
    rollout = _fake_record(
        outputs,
        "03-rollout",
        {
            "previous_versions": previous,
            "snapshot": rig.snap.as_dict(),
            "applied_migrations": applied,
        },
        now - timedelta(minutes=20),
    )
    breach = {
        "service": "api",
        "metric": "error_rate",
        "label": "5xx rate",
        "peak": 1.0,
        "threshold": 0.05,
        "duration_s": 660.0,
        "sustain_s": 600.0,
        "first_seen": (now - timedelta(minutes=12)).isoformat(),
    }
    smoke = _fake_record(outputs, "04-smoke", {"breach": breach}, now - timedelta(minutes=1))

    plan = rollback.prefill(runbook("from-records"), {})
    assert [r.service for r in plan.reverts][:2] == ["web", "api"]  # web first, then the API
    assert {r.service: r.target for r in plan.reverts} == previous
    assert all(rollout.name in r.source for r in plan.reverts)
    assert plan.previous_release is None  # chatmock returns to another version
    assert plan.snapshot.sha256 == rig.snap.sha256 and plan.snapshot.path == rig.snap.path
    assert f"taken by {taken.name}" in plan.snapshot_source  # the 02 record, verified
    assert plan.applied_migrations == applied and plan.breach == breach
    assert plan.records == {"03-rollout": str(rollout), "04-smoke": str(smoke)}
    assert plan.database == DATABASE and ":" + "***" not in plan.database_at
    assert "5xx rate on api" in rollback.describe_breach(plan.breach)
    assert all(r.argv[-1] == r.target for r in plan.reverts)

    with pytest.raises(ConfigError, match="api is v1.4.0, the release being rolled back"):
        rollback.prefill(runbook("same"), {"previous_versions": {**previous, "api": RELEASE}})
    forced = rollback.prefill(runbook("forced"), {"previous_release": "v1.3.0"})
    chatmock = next(r for r in forced.reverts if r.service == "chatmock")
    assert chatmock.target == "v1.3.0" and "record: v1.2.9" in chatmock.source


# -- records verified before they are trusted ------------------------------------------------
def _records_of_a_rollout(rig: Rig, outputs: Path, name_the_02_record: bool) -> dict[str, Path]:
    """A passing 02 record holding the snapshot and the 03 record that copied it (naming the
    02 record as 03 does now, or not, as older 03 records)."""
    now = datetime.now(UTC)
    taken = _fake_record(
        outputs, "02-migration-dry-run", {"snapshot": rig.snap.as_dict()}, now - timedelta(hours=1)
    )
    snap = rig.snap.as_dict()
    if name_the_02_record:
        snap["record"] = str(taken.relative_to(outputs))
    copied = {"previous_versions": dict.fromkeys(stack.SERVICES, PREVIOUS), "snapshot": snap}
    rollout = _fake_record(outputs, "03-rollout", copied, now - timedelta(minutes=30))
    return {"02-migration-dry-run": taken, "03-rollout": rollout}


def _edit(record: Path, rig: Rig) -> None:
    """A hand edit: the record now claims another snapshot checksum."""
    record.write_text(record.read_text().replace(rig.snap.sha256, "0" * 64))


@pytest.mark.parametrize(
    ("edited", "named"),
    [("02-migration-dry-run", True), ("02-migration-dry-run", False), ("03-rollout", True)],
    ids=["02-named-by-03", "02-latest-passing", "03"],
)
def test_a_tampered_record_refuses_the_rollback(rig, tmp_path, monkeypatch, edited, named) -> None:
    outputs = tmp_path / "outputs"
    monkeypatch.setenv("DEPLOYBOOK_OUTPUTS", str(outputs))
    made = _records_of_a_rollout(rig, outputs, named)
    plan = rollback.prefill(runbook("trusted"), {})  # untouched records: the plan is made
    assert plan.snapshot.sha256 == rig.snap.sha256
    assert f"taken by {made['02-migration-dry-run'].name}" in plan.snapshot_source

    _edit(made[edited], rig)
    with pytest.raises(RestoreRefused) as caught:
        rollback.prefill(runbook("tampered"), {})
    message = str(caught.value)
    assert (
        f"{edited} record {made[edited].relative_to(outputs)} cannot be trusted (edited)" in message
    )
    assert f"re-run {edited} (deploybook run {edited} --env {ENV} --release {RELEASE})" in message
    assert "nothing was changed" in message


def test_a_03_record_naming_another_snapshot_than_02s_is_refused(
    rig, tmp_path, monkeypatch
) -> None:
    outputs = tmp_path / "outputs"
    monkeypatch.setenv("DEPLOYBOOK_OUTPUTS", str(outputs))
    other = {**rig.snap.as_dict(), "sha256": "f" * 64}
    _fake_record(outputs, "02-migration-dry-run", {"snapshot": other}, None)
    copied = {
        "previous_versions": dict.fromkeys(stack.SERVICES, PREVIOUS),
        "snapshot": rig.snap.as_dict(),
    }
    _fake_record(outputs, "03-rollout", copied, None)
    with pytest.raises(
        RestoreRefused, match="no passing 02-migration-dry-run record .* holds the snapshot"
    ):
        rollback.prefill(runbook("other-snapshot"), {})


def test_tampered_02_record_fails_05_through_papermill(rig, tmp_path, monkeypatch) -> None:
    """05 headless, as CI runs it, with execute and the confirmation: refused at the prefill,
    the record says why, nothing changed."""
    outputs = tmp_path / "outputs"
    monkeypatch.setenv("DEPLOYBOOK_OUTPUTS", str(outputs))
    made = _records_of_a_rollout(rig, outputs, True)
    _edit(made["02-migration-dry-run"], rig)
    stack.admin("/admin/messages", method="DELETE")
    before = observe(rig)
    parameters = {"operator": "ci", "execute": True, "confirm_restore": DATABASE}
    result = run_runbook("05-rollback", ENV, RELEASE, parameters, html=False)
    assert result.status == "failed"
    assert "RestoreRefused" in result.error and "cannot be trusted (edited)" in result.error
    assert made["02-migration-dry-run"].name in result.error
    assert observe(rig) == before  # no service, row, migration or message changed


# -- refusals: nothing changes ---------------------------------------------------------------
def _corrupt(rig: Rig, tmp_path: Path) -> Path:
    """A copy of the snapshot with one byte flipped, and its (now wrong) manifest."""
    dump = tmp_path / rig.snap.path.name
    if rig.snap.path.is_dir():  # directory format (the default): damage its largest file
        shutil.copytree(rig.snap.path, dump)
        dump = max(dump.iterdir(), key=lambda p: p.stat().st_size)
    else:
        shutil.copy(rig.snap.path, dump)
    data = bytearray(dump.read_bytes())
    data[len(data) // 2] ^= 0xFF
    dump.write_bytes(bytes(data))
    manifest = tmp_path / rig.manifest.name
    shutil.copy(rig.manifest, manifest)
    return manifest


@pytest.mark.parametrize(
    ("case", "error", "match"),
    [
        ("no confirmation", RestoreRefused, "confirm_restore='americano_sandbox'"),
        ("wrong database name", RestoreRefused, "typed 'americano_sandbox_production'"),
        ("corrupt snapshot", SnapshotCorrupt, "does not match its recorded SHA-256"),
        ("rollout holds the lock", LockHeld, "locked by runbook 03-rollout"),
    ],
)
def test_refused_rollback_changes_nothing(rolled_out, tmp_path, case, error, match) -> None:
    rig = rolled_out
    run = runbook(f"refused-{case.replace(' ', '-')}")
    given = {"no confirmation": None, "wrong database name": "americano_sandbox_production"}
    overrides = {"snapshot": str(_corrupt(rig, tmp_path))} if case == "corrupt snapshot" else {}
    before = observe(rig)
    assert before["versions"] == dict.fromkeys(stack.SERVICES, RELEASE)

    plan = plan_for(run, rig, **overrides)
    confirmation = rollback.confirm(run, plan, given.get(case, DATABASE))
    holder = runbook("rollout-run")
    holder.name = "03-rollout"
    with run_lock(holder) if case == "rollout holds the lock" else _nothing():
        with pytest.raises(error, match=match) as caught:
            rollback.revert_and_restore(run, plan, confirmation)
    if error is not LockHeld:
        assert "nothing was changed" in str(caught.value)
        assert any(c.status == "fail" for c in run.checks)
    assert observe(rig) == before  # no service, row, migration or message changed
    assert not list(run.record_dir.glob(f"safety-{ENV}-{run.run_id}*"))


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def test_dry_run_shows_the_plan_and_changes_nothing(rolled_out, capsys) -> None:
    rig = rolled_out
    run = runbook("dry-run", execute=False)
    before = observe(rig)
    plan = plan_for(run, rig)
    confirmation = rollback.confirm(run, plan, None)
    recovery = rollback.revert_and_restore(run, plan, confirmation)
    rollback.verify(run, recovery)
    rollback.file_incident(run, recovery)
    assert isinstance(rollback.timeline(run, recovery), str)
    run.finish()  # the gate passes: a dry run refuses nothing

    shown = capsys.readouterr().out
    assert f"The restore overwrites database {DATABASE}" in shown
    assert "would run: web v1.4.0 → v1.3.0" in shown and "--version v1.3.0" in shown
    assert "migrations removed: 20251014090000_understanding_validation" in shown
    assert all(s.status == "planned" for s in recovery.ledger.steps)
    assert observe(rig) == before and recovery.incident_report is None


# -- the drill: 03 rolls out, 04 breaches, 05 rolls back -------------------------------------
@pytest.fixture
def before_rollout(rig: Rig) -> Rig:
    """The state before the release: the snapshot's database, every service at PREVIOUS,
    and the passing 02 record that holds the snapshot (02 is not ours to run)."""
    restore(rig.snap, rig.url, bin_dir=PgCluster.bin_dir())
    for service in stack.SERVICES:
        stack.admin(f"/admin/{ENV}/{service}/version", {"version": PREVIOUS})
    stack.admin("/admin/messages", method="DELETE")
    outputs = rig.base / "outputs"
    _fake_record(outputs, "02-migration-dry-run", {"snapshot": rig.snap.as_dict()}, None)
    return rig


def test_rollout_breach_rollback_drill(before_rollout) -> None:
    """The rehearsal's drill, every runbook through papermill: 05 takes its facts from the
    03 and 04 records alone, and brings back the versions and the snapshot."""
    rig = before_rollout
    rollout = run_runbook(
        "03-rollout", ENV, RELEASE, {"operator": "ci", "execute": True}, html=False
    )
    assert rollout.status == "passed", rollout.error
    assert versions() == dict.fromkeys(stack.SERVICES, RELEASE)
    assert db.inventory(rig.url)["prisma_migrations"] != rig.snap.inventory["prisma_migrations"]

    stack.admin(f"/admin/{ENV}/api/fault", {"error_rate": 1.0, "status": 503})
    try:
        with traffic.against(ENV, rate_per_s=20, max_s=300) as users:  # real requests, bounded
            smoke = run_runbook("04-smoke", ENV, RELEASE, {"operator": "ci"}, html=False)
    finally:
        # NOTE: a sandbox fault is not tied to a version; the revert would have cleared it.
        stack.admin(f"/admin/{ENV}/api/fault", method="DELETE")
    # NOTE: the record, not result.error: a refusal is now a red panel in the record and
    # the runner's one-line error may be empty (issue 21's expected-refusal display).
    assert smoke.status == "failed" and "SLA breached" in smoke.record.read_text()
    breach = sb.read_notebook(str(smoke.record)).scraps["breach"].data
    assert breach["metric"] == "error_rate" and breach["service"] == "api", breach
    assert users.statuses.get("503", 0) > 0 and not users._thread.is_alive()
    stack.admin("/admin/messages", method="DELETE")  # keep only the rollback's messages

    # A user signs up after the snapshot: the restore discards that row, and says so.
    with db.connect(rig.url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO users (id, email, updated_at) VALUES ('late', 'late@example.com', now())"
        )
    live = db.inventory(rig.url)

    # 05 killed (-9, its whole process group) while reverting; the rerun resumes it.
    parameters = {"operator": "ci", "execute": True, "confirm_restore": DATABASE}
    killed = _kill_05_while_reverting(rig, parameters)
    assert killed["announced"] and not killed["restored"], killed
    result = run_runbook("05-rollback", ENV, RELEASE, parameters, html=False)
    assert result.status == "passed", result.error

    assert versions() == dict.fromkeys(stack.SERVICES, PREVIOUS)
    now = db.inventory(rig.url)
    assert now["row_counts"] == rig.snap.inventory["row_counts"]
    assert now["prisma_migrations"] == rig.snap.inventory["prisma_migrations"]

    scraps = sb.read_notebook(str(result.record)).scraps
    scrap = scraps["rollback"].data
    assert scrap["verified"] and scrap["restored"] and scrap["within_window"]
    assert 0 < scrap["recovery_s"] < 120 and scrap["trigger"] == breach
    assert {r["service"] for r in scrap["reverted"]} == set(stack.SERVICES)
    applied = sb.read_notebook(str(rollout.record)).scraps["applied_migrations"].data
    assert applied and scrap["removed_migrations"] == applied
    report = Path(scrap["incident_report"])
    text = report.read_text()
    assert f"on {breach['service']}" in text and "rolled back to v1.3.0" in text
    assert "within the rollback window" in text
    assert smoke.record.name in text and rollout.record.name in text
    # Swapped, not overwritten: the database as it was is kept under its pre-rollback name.
    assert scrap["restore_mode"] == "swap" and scrap["safety_snapshot"] is None
    kept = scrap["pre_rollback_db"]
    assert kept.startswith(f"{DATABASE}_pre_rollback_") and f"kept as {kept}" in text
    assert db.inventory(db.with_dbname(rig.url, kept)) == live
    users = next(r for r in scrap["data_loss"]["rows"] if r["table"] == "users")
    assert users["discarded"] == 1 and users["written_after"] >= 1
    assert "### Data discarded by the restore" in text and "| users |" in text
    assert f"Kept in database {kept}" in text
    checks = sb.read_notebook(str(result.record)).scraps["checks"].data
    lost = next(c for c in checks if c["name"] == "data discarded by the restore")
    assert lost["status"] == "warn" and "users (" in lost["evidence"]

    password = (rig.base / "state" / "pg-password").read_text().strip()
    assert files_containing(rig.base / "outputs", [password]) == []

    messages = stack.admin("/admin/messages", method="GET")
    hooks = [m["body"]["text"] for m in messages["webhook"]]
    subjects = [m["subject"] for m in messages["email"]]
    for expected in ("Rollback started", "Incident: rollback", "Rollback finished"):
        assert any(expected in h for h in hooks) and any(expected in s for s in subjects)
    assert any("## Trigger" in m["body"] for m in messages["email"])

    # A rerun with the same run id repeats nothing (no second announcement, no restore).
    run_id = sb.read_notebook(str(result.record)).parameters["run_id"]
    os.environ["DEPLOYBOOK_RECORD"] = str(result.record)
    try:
        again = runbook(run_id)
        plan = rollback.prefill(again, {})
        recovery = rollback.revert_and_restore(again, plan, rollback.confirm(again, plan, DATABASE))
    finally:
        del os.environ["DEPLOYBOOK_RECORD"]
    status = {s.name: s.status for s in recovery.ledger.steps}
    steps = ["announce rollback", *(f"revert {n}" for n in stack.SERVICES)]
    steps += ["choose restore", "account data loss", "restore copy", "swap databases"]
    assert all(status[name] == "skipped" for name in steps), status
    assert stack.admin("/admin/messages", method="GET") == messages
    starts = [h for h in hooks if "Rollback started" in h]
    assert len(starts) == 1, starts  # the killed run announced; its resumption did not


def _kill_05_while_reverting(rig: Rig, parameters: dict[str, Any]) -> dict[str, bool]:
    """Run 05 as an operator would (`deploybook run`) and kill -9 its process group as
    soon as its ledger shows the first revert started; say what the ledger had by then."""
    argv = [str(Path(sys.executable).parent / "deploybook"), "run", "05-rollback"]
    argv += ["--env", ENV, "--release", RELEASE, "--params-file", str(PARAMS_FILE), "--no-html"]
    for name, value in parameters.items():
        argv += ["-p", name, str(value).lower() if isinstance(value, bool) else str(value)]
    proc = subprocess.Popen(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    events: list[dict[str, Any]] = []
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None:
            events = [
                json.loads(line)
                for path in (rig.base / "outputs").rglob("rollback-steps-*.jsonl")
                for line in path.read_text().splitlines()
                if line.strip()
            ]
            if any(e["step"].startswith("revert ") for e in events):
                break
            time.sleep(0.02)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    done = {e["step"] for e in events if e["status"] == "done"}
    return {"announced": "announce rollback" in done, "restored": "swap databases" in done}


def test_in_place_when_postgresql_refuses_the_rename(rig: Rig, tmp_path: Path) -> None:
    """A role that owns the tables but not the database (a managed service's shape): the
    swap is refused by PostgreSQL itself, 05 chooses in place and says why; the in-place
    restore works for that role."""
    admin_url = db.with_dbname(rig.url, "postgres")
    role, password, name = "rb_app", "rb-app-pw-0192", "rb_managed"
    with db.connect(admin_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"DROP ROLE IF EXISTS {role}")
        conn.execute(f"CREATE ROLE {role} LOGIN CREATEDB PASSWORD '{password}'")
        conn.execute(f"CREATE DATABASE {name}")  # owned by the superuser, not the app
        conn.execute(f"GRANT ALL ON DATABASE {name} TO {role}")
    try:
        with db.connect(db.with_dbname(rig.url, name), autocommit=True) as conn:
            conn.execute(f"ALTER SCHEMA public OWNER TO {role}")
        info = db.conninfo(rig.url)
        url = f"postgresql://{role}:{password}@{info['host']}:{info['port']}/{name}"
        run_sql_as(url, "CREATE TABLE t (id int, created_at timestamp DEFAULT now());"
                        "INSERT INTO t (id) SELECT generate_series(1, 10)")  # fmt: skip
        snap = snapshot(url, tmp_path, "managed", bin_dir=PgCluster.bin_dir())
        run_sql_as(url, "INSERT INTO t (id) VALUES (11)")
        choice = rollback_database.choose_restore(url, RollbackSpec())
        assert choice["mode"] == "in_place", choice
        assert "refused" in choice["why"] and "must be owner" in choice["why"]
        check = restore(snap, url, bin_dir=PgCluster.bin_dir())
        assert check.status == "pass" and db.row_counts(url) == {"t": 10}
    finally:
        with db.connect(admin_url, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            conn.execute(f"DROP ROLE IF EXISTS {role}")


def run_sql_as(url: str, script: str) -> None:
    with db.connect(url, autocommit=True) as conn:
        conn.execute(script.encode())
