"""Runbook 01 on a checkout of Americano's real files, run as a lead would run it.

`../shared/americano/` holds real files from Americano's repository (the status file, the
three `.env.example` files, the rate limiter, the loggers, the OCR README). They are
committed into a git repository tagged v1.3.0 and v1.4.0 (annotated), a params file
extending the sandbox's points at it, and `deploybook run 01-preconditions --params-file`
runs the notebook with papermill against a sandbox stack (health, secrets). At that commit
Epic 4 sits in the backlog, so the gate fails; the record says why, in the lead's words.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import scrapbook as sb
import yaml

from deploybook.core import audit

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT.parent / "shared" / "americano"
STATUS_FILE = "docs/bmm-workflow-status.md"
GIT_ENV = {
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_AUTHOR_NAME": "Americano Dev",
    "GIT_AUTHOR_EMAIL": "dev@americano.example",
    "GIT_COMMITTER_NAME": "Americano Dev",
    "GIT_COMMITTER_EMAIL": "dev@americano.example",
}


def git(repo: Path, *args: str, when: str = "2025-10-20T12:00:00+00:00") -> str:
    env = {**os.environ, **GIT_ENV, "GIT_AUTHOR_DATE": when, "GIT_COMMITTER_DATE": when}
    cmd = ["git", "-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false", *args]
    return subprocess.run(cmd, cwd=repo, env=env, check=True, capture_output=True, text=True).stdout


def real_checkout(dest: Path) -> Path:
    """Americano's real files as a repository: v1.3.0 without the loggers, v1.4.0 with all."""
    if not REAL.is_dir():
        pytest.fail(f"{REAL} is missing: the tests read ../shared (CI has it)")
    files = sorted(p.relative_to(REAL) for p in REAL.rglob("*") if p.is_file())
    assert Path(STATUS_FILE) in files and Path("apps/web/src/lib/rate-limiter.ts") in files
    dest.mkdir(parents=True)
    git(dest, "init", "-q", "-b", "main")
    later = {Path("apps/web/src/lib/logger.ts"), Path("apps/web/src/lib/logger-pii-redaction.ts")}
    for rel in files:
        if rel not in later:
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(REAL / rel, dest / rel)
    git(dest, "add", "-A")
    git(
        dest,
        "commit",
        "-q",
        "-m",
        "chore: monorepo with web, api, ocr-service",
        when="2025-10-01T12:00:00+00:00",
    )
    git(dest, "tag", "-a", "v1.3.0", "-m", "Release v1.3.0", when="2025-10-01T13:00:00+00:00")
    for rel in sorted(later):
        shutil.copyfile(REAL / rel, dest / rel)
    git(dest, "add", "-A")
    git(dest, "commit", "-q", "-m", "chore(security): structured logger with PII redaction")
    git(dest, "tag", "-a", "v1.4.0", "-m", "Release v1.4.0", when="2025-10-21T09:00:00+00:00")
    return dest


@pytest.fixture(scope="module")
def record(sandbox: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """01 run with papermill on the real checkout; its exit code, stderr and checks."""
    base = tmp_path_factory.mktemp("americano-real")
    checkout = real_checkout(base / "americano")
    params_file = base / "sandbox-real.yaml"
    params_file.write_text(
        yaml.safe_dump(
            {
                "extends": str(ROOT / "params" / "sandbox.yaml"),
                "checkout": {"path": str(checkout), "status_file": STATUS_FILE},
            }
        )
    )
    argv = [sys.executable, "-m", "deploybook", "run", "01-preconditions"]
    argv += ["--env", "sandbox", "--release", "v1.4.0", "--params-file", str(params_file)]
    argv += ["-p", "previous_release", "v1.3.0", "-p", "rate_limits_reviewed_by", "Sam Services"]
    proc = subprocess.run(
        [*argv, "--no-html"], capture_output=True, text=True, env=os.environ.copy(), timeout=300
    )
    entry = audit.read_ledger(audit.ledger_path(sandbox["outputs"], "sandbox"))[-1]
    notebook = sb.read_notebook(str(sandbox["outputs"] / entry["record"]))
    checks = {c["name"]: c for c in notebook.scraps["checks"].data}
    return {"proc": proc, "entry": entry, "checks": checks}


def test_the_gate_fails_and_the_record_is_kept(record: dict[str, Any]) -> None:
    assert record["proc"].returncode == 1, record["proc"].stderr
    assert "GateFailed" in record["proc"].stderr
    assert record["entry"]["status"] == "failed"
    assert record["entry"]["runbook"] == "01-preconditions"


def test_epic_check_fails_naming_the_backlog_line(record: dict[str, Any]) -> None:
    check = record["checks"]["Epic 4 stories all DONE"]
    assert check["status"] == "fail"
    evidence = check["evidence"]
    assert evidence.startswith(
        'Epic 4 is not done: listed under "Backlog (Not Yet Drafted)" at line 96: '
        "- Epic 4: Stories 4.1-4.6 (Understanding Validation)"
    )
    assert "0/6 stories done" in evidence
    assert "- Epic 4: Stories 4.1-4.6 (Understanding Validation)" in evidence
    assert f"{STATUS_FILE}@v1.4.0" in evidence
    assert "Epic 4 stories all DONE" in record["proc"].stderr


def test_rate_limit_review_lists_the_real_limiters_and_the_unguarded_providers(
    record: dict[str, Any],
) -> None:
    check = record["checks"]["external rate limits reviewed"]
    evidence = check["evidence"]
    assert evidence.startswith("no rate limiter guards GEMINI, OPENAI (reviewed by Sam Services)")
    assert "3 limiter(s) declared:" in evidence
    for limiter in (
        "searchRateLimiter (line 205): 60 requests / 1 minute",
        "autocompleteRateLimiter (line 212): 120 requests / 1 minute",
        "exportRateLimiter (line 219): 10 requests / 1 hour",
    ):
        assert limiter in evidence
    assert "GEMINI: NO GUARD" in evidence and "OPENAI: NO GUARD" in evidence
    assert "quota: requestsPerMinute 60, requestsPerDay 1500" in evidence
    assert check["status"] == "fail"


def test_pii_redaction_passes_on_the_real_logger(record: dict[str, Any]) -> None:
    check = record["checks"]["PII-redaction logger present and enabled"]
    assert check["status"] == "pass", check["evidence"]
    assert "logger.ts" in check["evidence"]


def test_plan_files_absent_from_this_checkout_are_named(record: dict[str, Any]) -> None:
    """Only the OCR service's README of the plan's codebases is among the real files."""
    checks = record["checks"]
    codebases = checks["codebases present at the tag"]
    assert codebases["status"] == "fail" and codebases["critical"]
    assert codebases["evidence"].startswith("3 of 4 codebase(s) of plan section 1 missing")
    assert "services/chatmock/README.md is missing at v1.4.0" in codebases["evidence"]
    assert "services/ocr-service/README.md" not in codebases["evidence"]
    references = checks["plan references present at the tag"]
    assert references["status"] == "warn" and not references["critical"]
    assert "apps/api/src/challenge/retry_scheduler.py is missing" in references["evidence"]
    inventory = checks["change inventory present at the tag"]
    assert (
        "apps/api/src/validation/scenario_generator.py (story 4.2) is missing"
        in (inventory["evidence"])
    )
