"""The release DAG under real Airflow 3 (`airflow dags test`, SQLite) on a sandbox stack.

Three cases, in this order on one stack and one Airflow database (each its own DAG id and
outputs): an API fault (the run exits 1 naming the failed gate), a rejected approval (no
production 03 record), and the approved release (records, ledgers, and the copy pushed to
a real radosgw after every task verify, locally and from object storage). Airflow lives in
its own venv, .venv-airflow, built from the committed uv lock (seconds with uv's cache).
The approval is answered by orchestrate/airflow/respond.py, as a person would through the
UI. Every `airflow dags test` runs under `timeout -k` (a waiting approval ignores SIGTERM).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from deploybook.core import audit
from deploybook.sandbox import stack
from tests.radosgw import S3Endpoint
from tests.sandbox_fixtures import CANARIES, files_containing

pytestmark = pytest.mark.orchestrator

ROOT = Path(__file__).resolve().parents[1]
AIRFLOW_DIR = ROOT / "orchestrate" / "airflow"
LOCK = AIRFLOW_DIR / "requirements.lock"
VENV = ROOT / ".venv-airflow"
RELEASE = "v1.4.0"


def airflow_venv() -> Path:
    """.venv-airflow synced to the lock (rebuilt only when the lock changed)."""
    stamp = VENV / ".lock-sha256"
    digest = hashlib.sha256(LOCK.read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == digest and (VENV / "bin" / "airflow").exists():
        return VENV
    uv = Path(sys.executable).with_name("uv")
    py = f"{sys.version_info.major}.{sys.version_info.minor}"
    subprocess.run([uv, "venv", "-q", "--clear", "--python", py, VENV], check=True, timeout=120)
    env = {**os.environ, "VIRTUAL_ENV": str(VENV)}
    subprocess.run([uv, "pip", "sync", "-q", LOCK], check=True, timeout=600, env=env)
    stamp.write_text(digest)
    return VENV


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A sandbox stack (canary secrets) and a migrated Airflow home, both under one folder;
    each run's log is kept under pytest's basetemp (airflow-logs*/DAG.log)."""
    venv = airflow_venv()
    base = Path(tempfile.mkdtemp(prefix="deploybook-airflow-"))
    env = {
        **os.environ,
        **CANARIES,
        "DEPLOYBOOK_STATE_DIR": str(base / "state"),
        "AIRFLOW_HOME": str(base / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(AIRFLOW_DIR),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
    }
    saved = os.environ.copy()
    os.environ.update(env)
    try:
        stack.up(base / "state", password=CANARIES["DEPLOYBOOK_SANDBOX_DB_PASSWORD"], progress=None)
        subprocess.run(
            [venv / "bin" / "airflow", "db", "migrate"],
            env=env,
            check=True,
            capture_output=True,
            timeout=180,
        )
        logs = tmp_path_factory.mktemp("airflow-logs")
        yield {"base": base, "env": env, "venv": venv, "logs": logs}
    finally:
        stack.down(base / "state", progress=None)
        os.environ.clear()
        os.environ.update(saved)
        shutil.rmtree(base, ignore_errors=True)


def _spec(world: dict[str, Any], dag_id: str, edit: Any = None) -> Path:
    """The committed sandbox spec under another DAG id, optionally edited."""
    spec = yaml.safe_load((AIRFLOW_DIR / "sandbox.yaml").read_text(encoding="utf-8"))
    spec["dag_id"] = dag_id
    if edit:
        edit(spec)
    path = world["base"] / f"{dag_id}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False, allow_unicode=True))
    return path


def dags_test(
    world: dict[str, Any], dag_id: str, spec: Path, outputs: Path, *, answer: str | None = None,
    extra: dict[str, str] | None = None,
) -> tuple[int, str]:  # fmt: skip
    """`airflow dags test` under `timeout -k`; the approval answered when ``answer``."""
    env = {**world["env"], "DEPLOYBOOK_DAG_SPEC": str(spec), "DEPLOYBOOK_OUTPUTS": str(outputs)}
    env.update(extra or {})
    bin_ = world["venv"] / "bin"
    responder = None
    if answer:
        responder = subprocess.Popen(
            [bin_ / "python", AIRFLOW_DIR / "respond.py", "--dag-id", dag_id, "--choice", answer,
             "--by", "Rita Reviewer", "--wait", "400"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
    try:
        proc = subprocess.run(
            ["timeout", "-k", "10", "480", bin_ / "airflow", "dags", "test", dag_id],
            env=env, cwd=ROOT, capture_output=True, text=True,
        )  # fmt: skip
    finally:
        if responder is not None:
            responder.kill()
            said = responder.communicate()[0]
    log = proc.stdout + proc.stderr
    if responder is not None:
        log += "\n--- respond.py ---\n" + said
    (world["logs"] / f"{dag_id}.log").write_text(log)
    return proc.returncode, log


def _ledger(outputs: Path, env: str) -> list[dict[str, Any]]:
    return audit.read_ledger(audit.ledger_path(outputs, env))


def _approval_body(world: dict[str, Any], dag_id: str) -> str:
    db = sqlite3.connect(world["base"] / "airflow" / "airflow.db")
    try:
        rows = db.execute(
            "SELECT h.body FROM hitl_detail h JOIN task_instance t ON t.id = h.ti_id "
            "WHERE t.dag_id = ?",
            (dag_id,),
        ).fetchall()
    finally:
        db.close()
    return rows[0][0] if rows else ""


def _staging_only(spec: dict[str, Any]) -> None:
    spec["environments"] = spec["environments"][:1]
    spec["environments"][0]["runbooks"] = spec["environments"][0]["runbooks"][:1]


def test_an_api_fault_fails_the_run_naming_the_gate(world: dict[str, Any]) -> None:
    admin = [ROOT / ".venv" / "bin" / "deploybook", "sandbox", "fault", "--env", "sandbox"]
    fault = ["--service", "api", "--error-rate", "1", "--status", "503"]
    subprocess.run([*admin, *fault], env=world["env"], check=True, timeout=60)
    outputs = world["base"] / "out-fault"
    try:
        rc, log = dags_test(world, "release_fault", _spec(world, "release_fault", _staging_only),
                            outputs)  # fmt: skip
    finally:
        subprocess.run([*admin, "--service", "api", "--clear"], env=world["env"], timeout=60)
    assert rc == 1, log[-3000:]
    assert "sandbox.01-preconditions" in log and "GateFailed" in log, log[-3000:]
    [entry] = _ledger(outputs, "sandbox")
    assert entry["runbook"] == "01-preconditions" and entry["status"] == "failed"


def test_a_rejected_approval_leaves_no_production_rollout(world: dict[str, Any]) -> None:
    def shorten(spec: dict[str, Any]) -> None:
        spec["environments"][0]["runbooks"] = spec["environments"][0]["runbooks"][:1]

    outputs = world["base"] / "out-reject"
    spec = _spec(world, "release_reject", shorten)
    rc, log = dags_test(world, "release_reject", spec, outputs, answer="Reject")
    assert rc == 1, log[-3000:]
    assert "Reject: release_reject sandbox-production.approval" in log, log[-3000:]
    assert [e["runbook"] for e in _ledger(outputs, "sandbox")] == ["01-preconditions"]
    assert _ledger(outputs, "sandbox-production") == []
    assert not list(outputs.glob("sandbox-production/**/*03-rollout*"))


def test_the_approved_release_runs_pushes_and_verifies(
    world: dict[str, Any], s3: S3Endpoint
) -> None:
    import boto3

    client = boto3.client(
        "s3", endpoint_url=s3.url, aws_access_key_id=s3.access_key,
        aws_secret_access_key=s3.secret_key, region_name="us-east-1",
    )  # fmt: skip
    client.create_bucket(Bucket="dag-records")
    url = "s3://dag-records/epic-4"
    outputs = world["base"] / "out-approve"
    s3_env = {
        "DEPLOYBOOK_RECORDS_URL": url,
        "DEPLOYBOOK_S3_ENDPOINT": s3.url,
        "DEPLOYBOOK_S3_ACCESS_KEY_ID": s3.access_key,
        "DEPLOYBOOK_S3_SECRET_ACCESS_KEY": s3.secret_key,
    }
    spec = _spec(world, "release_approve")
    rc, log = dags_test(world, "release_approve", spec, outputs, answer="Approve", extra=s3_env)
    assert rc == 0, log[-4000:]
    for env in ("sandbox", "sandbox-production"):
        entries = _ledger(outputs, env)
        assert [(e["runbook"], e["status"]) for e in entries] == [
            (rb, "passed")
            for rb in ("01-preconditions", "02-migration-dry-run", "03-rollout", "04-smoke")
        ]
    body = _approval_body(world, "release_approve")
    assert f"Release {RELEASE} to sandbox-production" in body and "| api | `" in body, body
    assert "02 dry run" in body and "**Impact**" in body and "window: fits" in body, body
    assert f"{url}/sandbox/{RELEASE}/" in body, body
    keys = {o["Key"] for o in client.list_objects_v2(Bucket="dag-records")["Contents"]}
    prod_03 = _ledger(outputs, "sandbox-production")[2]["record"]
    assert f"epic-4/{prod_03}" in keys and "epic-4/sandbox-production/ledger.jsonl" in keys
    env = {**world["env"], **s3_env, "DEPLOYBOOK_OUTPUTS": str(outputs)}
    deploybook = ROOT / ".venv" / "bin" / "deploybook"
    verify = subprocess.run(
        [deploybook, "audit", "verify", "--from", url], env=env, capture_output=True, text=True
    )
    assert verify.returncode == 0 and "ok: 8 ledger entries verified" in verify.stdout, verify
    leaks = files_containing(
        world["base"] / "airflow" / "logs", [*CANARIES.values(), s3.secret_key]
    )
    assert not leaks and s3.secret_key not in log
