"""Runbook 01 executed for real with papermill on the sandbox: record, HTML, ledger."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import scrapbook as sb
from sandbox_fixtures import CANARIES, files_containing

from deploybook.core import audit
from deploybook.ops.runner import run_runbook
from deploybook.sandbox import platform, stack

PARAMS = {"previous_release": "v1.3.0", "rate_limits_reviewed_by": "Sam Services", "operator": "ci"}


def test_01_passes_and_leaves_record_html_and_ledger(sandbox) -> None:
    result = run_runbook("01-preconditions", "sandbox", "v1.4.0", dict(PARAMS))
    assert result.status == "passed", result.error
    outputs = sandbox["outputs"]
    assert result.record.parent == outputs / "sandbox" / "v1.4.0"
    assert result.record.name.endswith("-01-preconditions.ipynb")

    checks = sb.read_notebook(str(result.record)).scraps["checks"].data
    names = {c["name"]: c["status"] for c in checks}
    assert names["secret DATABASE_URL configured"] == "pass"
    health = [n for n in names if n.split()[0] in ("api", "web", "chatmock", "ocr")]
    assert len(health) == 4 and all(names[n] == "pass" for n in health)
    assert all(status != "fail" for status in names.values())
    evidence = {c["name"]: c["evidence"] for c in checks}
    # The rehearsal exercises the observed paths: names from the env's platform variables,
    # JUnit that CI wrote after the release commit.
    assert names["env keys match .env.example files"] == "pass"
    assert (
        "sandbox: 29 names observed (command `./ops/release.sh env --env sandbox`"
        in evidence["env keys match .env.example files"]
    )
    assert names["staging and production key sets match"] == "pass"
    assert (
        "sandbox-production: 29 names observed" in evidence["staging and production key sets match"]
    )
    assert names["JUnit results newer than the release commit"] == "pass"
    assert names["plan's test files in the test results"] == "pass"
    # The sandbox's database answers and says which PostgreSQL it is (issue 22).
    assert names["database reachable"] == "pass"
    assert "answered: PostgreSQL 1" in evidence["database reachable"]

    html = result.html.read_text()
    assert "deploybook-checks" in html and "secret OPENAI_API_KEY configured" in html

    entry = audit.read_ledger(audit.ledger_path(outputs, "sandbox"))[-1]
    assert entry["record"] == str(result.record.relative_to(outputs))
    assert entry["status"] == "passed" and entry["runbook"] == "01-preconditions"
    assert entry["record_sha256"] == audit.sha256_file(result.record)
    assert audit.verify(outputs)[1] == []
    meta = json.loads(result.record.read_text())["metadata"]
    assert meta["papermill"]["parameters"]["release"] == "v1.4.0"
    assert meta["deploybook"]["status"] == "passed"


def test_01_service_down_fails_gate_but_records(sandbox) -> None:
    stack.admin("/admin/sandbox/ocr/fault", {"down": True})
    try:
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "deploybook",
                "run",
                "01",
                "--env",
                "sandbox",
                "--release",
                "v1.4.0",
                "-p",
                "rate_limits_reviewed_by",
                "Sam",
                "--no-html",
            ],
            capture_output=True,
            text=True,
            env=os.environ.copy(),
            timeout=180,
        )
    finally:
        stack.admin("/admin/sandbox/ocr/fault", method="DELETE")
    assert proc.returncode == 1
    assert "GateFailed" in proc.stderr and "ocr" in proc.stderr
    entry = audit.read_ledger(audit.ledger_path(sandbox["outputs"], "sandbox"))[-1]
    assert entry["status"] == "failed"
    record = sandbox["outputs"] / entry["record"]
    checks = {c["name"]: c for c in sb.read_notebook(str(record)).scraps["checks"].data}
    failed = [c for c in checks.values() if c["status"] == "fail"]
    assert failed and all("ocr" in c["name"] for c in failed)


def test_01_passes_in_the_production_role_with_observed_facts(sandbox) -> None:
    """sandbox-production: isolation compared with the staging sandbox, fresh JUnit, parity."""
    result = run_runbook("01-preconditions", "sandbox-production", "v1.4.0", dict(PARAMS))
    assert result.status == "passed", result.error
    checks = sb.read_notebook(str(result.record)).scraps["checks"].data
    names = {c["name"]: c["status"] for c in checks}
    for name in (
        "staging and production databases separate",
        "staging and production API keys differ",
        "env keys match .env.example files",
        "staging and production key sets match",
        "JUnit results newer than the release commit",
    ):
        assert names[name] == "pass", name


def test_no_canary_in_any_output(sandbox) -> None:
    """Runs after the others in this file: nothing under outputs/ holds a secret value,
    though the env listings 01 observes hold them (the database password, the API keys)."""
    run_runbook("01-preconditions", "sandbox", "v1.4.0", dict(PARAMS))
    listing = platform.env_file(sandbox["state_dir"], "sandbox").read_text()
    observed = [v for v in CANARIES.values() if v in listing]
    assert CANARIES["SANDBOX_OPENAI_API_KEY"] in observed
    assert CANARIES["DEPLOYBOOK_SANDBOX_DB_PASSWORD"] in observed
    assert files_containing(sandbox["outputs"], list(CANARIES.values())) == []
