"""Runbook 01's checks against the generated Americano checkout.

The good release passes every check; each fixture variant (and each params or
environment mistake) fails exactly the check a lead would expect, with a message that
names the thing. Checkouts are real git repositories; health checks hit real HTTP servers.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import tempfile
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from http_stub import StubServer, free_port

from deploybook.config import EnvSource, Params, PreconditionsSpec, SuiteCommand, load_params
from deploybook.core.checks import Checks, Status
from deploybook.errors import ConfigError
from deploybook.runbooks.preconditions import checks as pc
from deploybook.runbooks.preconditions import environments as envs
from deploybook.runbooks.preconditions import release as rel
from deploybook.runbooks.preconditions import testresults as tr
from deploybook.sandbox import platform
from deploybook.sandbox.fixture import (
    INVENTORY,
    RATE_LIMITS,
    Checkout,
    add_commit,
    create_checkout,
    describe,
)

ROOT = Path(__file__).resolve().parent.parent
RELEASE, PREVIOUS = "v1.4.0", "v1.3.0"
# No window_start in the sandbox params; the fixture's committed JUnit predates its commit.
EXPECTED_WARNINGS = {"deployment window scheduled", "JUnit results newer than the release commit"}


# --- fixtures ----------------------------------------------------------------------------------


@pytest.fixture
def no_stack(tmp_path: Path) -> dict[str, str]:
    """An environment whose sandbox state dir is empty: no running stack is ever read."""
    state = tmp_path / "no-stack"
    state.mkdir()
    return {"DEPLOYBOOK_STATE_DIR": str(state)}


def sandbox_params(
    checkout: Checkout | Path, environ: dict[str, str], file: str = "sandbox", **pre: Any
) -> Params:
    """The real sandbox params file, resolved against the checkout; `pre` overrides
    `preconditions` fields."""
    path = checkout.path if isinstance(checkout, Checkout) else checkout
    values = {
        "AMERICANO_CHECKOUT": str(path),
        "API_URL": "http://127.0.0.1:9",
        "WEB_URL": "http://127.0.0.1:9",
        "CHATMOCK_URL": "http://127.0.0.1:9",
        "OCR_URL": "http://127.0.0.1:9",
        "DEPLOYBOOK_WEBHOOK_URL": "http://127.0.0.1:9/hook",
        "DEPLOYBOOK_SMTP_HOST": "127.0.0.1",
        "DEPLOYBOOK_SMTP_PORT": "25",
        "PG_BIN_DIR": "/usr/bin",
        **{
            f"DEPLOYBOOK_SANDBOX_SIGNER_{role}": "ssh-ed25519 "
            f"AAAAC3NzaC1lZDI1NTE5AAAAIPreconditionsTestKey{role}00000000 {role}"
            for role in ("PM", "WEB", "API", "SERVICES", "QA")
        },
        **environ,
    }
    state = values.get("DEPLOYBOOK_STATE_DIR")
    if state and not platform.env_file(state, file).exists():  # the sandbox platform's vars
        known = {env: {} for env in ("sandbox", "sandbox-production")}
        platform.write_env_files(state, path, RELEASE, known)
    params = load_params(ROOT / "params" / f"{file}.yaml", values)
    if pre:
        spec = params.preconditions.model_copy(update=pre)
        params = params.model_copy(update={"preconditions": spec})
    return params


def offline_checks(
    params: Params, environ: dict[str, str], reviewed_by: str | None = "Sam Services"
) -> Checks:
    """Every check of runbook 01 that needs no running services."""
    checks = Checks()
    checks += rel.scope(params, RELEASE, PREVIOUS)
    checks += rel.inventory(params, RELEASE)
    checks += rel.schedule(params, RELEASE)
    checks += pc.epic_done(params, RELEASE)
    checks += pc.embedding_decision(params, RELEASE)
    checks += tr.zero_test_failures(params, RELEASE)
    checks += pc.rate_limits_reviewed(params, reviewed_by, RELEASE)
    checks += rel.release_tag(params, RELEASE, PREVIOUS)
    checks += rel.artifacts(params, RELEASE)
    checks += envs.env_parity(params, RELEASE, environ)
    checks += pc.checklist(params, RELEASE)
    return checks


def by_name(checks: Checks) -> dict[str, Any]:
    return {c.name: c for c in checks}


def failed(checks: Checks) -> set[str]:
    return {c.name for c in checks if c.status is Status.FAIL}


# --- the good release and each variant ---------------------------------------------------------


def test_good_release_passes_every_check(checkouts, no_stack) -> None:
    checks = offline_checks(sandbox_params(checkouts("good"), no_stack), no_stack)
    not_passed = {c.name: c.status for c in checks if c.status is not Status.PASS}
    assert set(not_passed) == EXPECTED_WARNINGS, checks.to_text()
    assert all(status is Status.WARN for status in not_passed.values())
    assert len(checks) == 20
    parity = by_name(checks)["env keys match .env.example files"].evidence
    assert "sandbox: 29 names observed (command `./ops/release.sh env --env sandbox`" in parity


VARIANTS = [
    (
        "epic-in-backlog",
        "Epic 4 stories all DONE",
        ['listed under "Backlog (Not Yet Drafted)" at line', "- Epic 4: Stories 4.1-4.6", "4.6"],
    ),
    (
        "story-missing",
        "Epic 4 stories all DONE",
        ['"In Progress (Approved for Development)"', "Story 4.6", "4.6 missing from the Done"],
    ),
    (
        "failing-tests",
        "zero test failures (CI green)",
        [
            "2 failing test(s)",
            "tests.test_calibrator::test_calibrate_overconfident (failure: AssertionError",
            "tests.test_irt_engine::test_estimate_theta_converges (error:",
            "test-results/api-pytest.xml › pytest: 29 tests, 1 failures, 1 errors, 1 skipped",
        ],
    ),
    (
        "missing-inventory-file",
        "change inventory present at the tag",
        ["apps/api/src/adaptive/irt_engine.py (story 4.5) is missing at v1.4.0"],
    ),
    (
        "epic5-leak",
        "nothing out of scope ships",
        ["pending migration 20251028150000_epic5_behavioral_patterns", "feat(5.1)"],
    ),
    (
        "pii-logger-disabled",
        "PII-redaction logger present and enabled",
        ["redactPII: enablePIIRedaction = false", "redaction off by default"],
    ),
    (
        "missing-redaction-file",
        "PII-redaction logger present and enabled",
        ["apps/web/src/lib/logger-pii-redaction.ts does not exist"],
    ),
    (
        "provider-limiters-removed",
        "external rate limits reviewed",
        ["no rate limiter guards GEMINI, OPENAI", "GEMINI: NO GUARD — no limiter names it"],
    ),
    (
        "commit-in-freeze",
        "no commits inside the freeze",
        ["1 commit(s) on main inside the freeze", "docs: release banner"],
    ),
]


@pytest.mark.parametrize(("variant", "check", "messages"), VARIANTS, ids=[v[0] for v in VARIANTS])
def test_each_variant_fails_exactly_its_check(
    checkouts, no_stack, variant: str, check: str, messages: list[str]
) -> None:
    checks = offline_checks(sandbox_params(checkouts(variant), no_stack), no_stack)
    assert failed(checks) == {check}, checks.to_text()
    evidence = by_name(checks)[check].evidence
    for message in messages:
        assert message in evidence


def test_epic_done_quotes_heading_line_number_and_line(checkouts, no_stack) -> None:
    check = pc.epic_done(sandbox_params(checkouts("epic-in-backlog"), no_stack), RELEASE)[0]
    text = checkouts("epic-in-backlog").read_at(RELEASE, "docs/bmm-workflow-status.md")
    lines = text.splitlines()
    number = lines.index("- Epic 4: Stories 4.1-4.6 (Understanding Validation Engine)") + 1
    heading = lines.index("### Backlog (Not Yet Drafted)") + 1
    assert f"(heading at line {heading}), line {number}: - Epic 4" in check.evidence
    assert "not in the Done table: 4.6 (5/6 stories done)" in check.evidence


# --- secrets ------------------------------------------------------------------------------------


SECRETS = {
    "DATABASE_URL": "postgresql://app:pw-0123456789@db.internal:5432/americano",
    "OPENAI_API_KEY": "sk-test-0123456789abcdef",
    "GEMINI_API_KEY": "gm-test-0123456789abcdef",
    "CHATMOCK_URL": "http://chatmock.internal:8801",
}


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("OPENAI_API_KEY", None, "OPENAI_API_KEY is missing"),
        ("OPENAI_API_KEY", "your_openai_api_key_here", "placeholder copied from .env.example"),
        ("GEMINI_API_KEY", "", "set but empty"),
        ("DATABASE_URL", "mysql://u:p@h/db", "malformed: expected a postgres:// URL"),
        ("CHATMOCK_URL", "localhost:8801", "malformed: expected an http(s) URL"),
    ],
    ids=["missing", "placeholder", "empty", "database-url-form", "chatmock-url-form"],
)
def test_secret_problems_fail_their_check_without_showing_values(
    checkouts, no_stack, name: str, value: str | None, message: str
) -> None:
    environ = {**no_stack, **SECRETS}
    if value is None:
        del environ[name]
    else:
        environ[name] = value
    checks = pc.secrets_configured(sandbox_params(checkouts("good"), no_stack), environ)
    assert failed(checks) == {f"secret {name} configured"}
    assert message in by_name(checks)[f"secret {name} configured"].evidence
    text = checks.to_text()
    for secret in SECRETS.values():
        assert secret not in text


# --- rate limits --------------------------------------------------------------------------------


def test_rate_limits_show_limits_beside_quotas(checkouts, no_stack) -> None:
    check = pc.rate_limits_reviewed(
        sandbox_params(checkouts("good"), no_stack), "Sam Services", RELEASE
    )[0]
    assert check.status is Status.PASS
    assert check.evidence.startswith("reviewed by Sam Services")
    limit = RATE_LIMITS["GEMINI"]["requestsPerMinute"]
    assert (
        f"GEMINI requestsPerMinute: limiter {limit} / quota 60 — ok (geminiRateLimiter)"
        in check.evidence
    )
    assert "GEMINI requestsPerDay: limiter 1500 / quota 1500 — ok (geminiDailyRateLimiter)" in (
        check.evidence
    )
    assert "searchRateLimiter (line 205): 60 requests / 1 minute" in check.evidence
    rows = {(r["provider"], r["limit"]): r for r in check.data}
    assert rows[("OPENAI", "requestsPerDay")]["limiter"] == RATE_LIMITS["OPENAI"]["requestsPerDay"]
    assert rows[("OPENAI", "tokensPerMinute")]["limiter"] is None  # no limiter counts tokens


@pytest.mark.parametrize(
    ("file", "status"), [("sandbox", Status.WARN), ("sandbox-production", Status.FAIL)]
)
def test_missing_attestation_fails_only_in_production(
    checkouts, no_stack, file: str, status: Status
) -> None:
    params = sandbox_params(checkouts("good"), no_stack, file=file)
    for reviewer in ("", "  ", "TBD", None):
        check = pc.rate_limits_reviewed(params, reviewer, RELEASE)[0]
        assert check.status is status
        assert "pass rate_limits_reviewed_by='<name>'" in check.evidence


def test_limit_above_provider_quota_fails(checkouts, no_stack) -> None:
    quotas = {"GEMINI": {"requestsPerMinute": 30}, "OPENAI": {"requestsPerMinute": 500}}
    params = sandbox_params(checkouts("good"), no_stack, provider_quotas=quotas)
    check = pc.rate_limits_reviewed(params, "Sam Services", RELEASE)[0]
    assert check.status is Status.FAIL
    assert check.evidence.startswith("a limit exceeds its provider quota")
    assert "GEMINI requestsPerMinute: limiter 60 / quota 30 — OVER QUOTA" in check.evidence


# --- tests: commands and reports ----------------------------------------------------------------


def _junit(failures: int = 0) -> str:
    cases = "".join(
        f'<testcase classname="t" name="case{i}">'
        + ('<failure message="boom"/>' if i < failures else "")
        + "</testcase>"
        for i in range(3)
    )
    return f'<testsuite name="cmd-suite">{cases}</testsuite>'


def _writer(report: str, exit_code: int = 0, sleep_s: float = 0) -> list[str]:
    code = (
        f"import pathlib, sys, time; time.sleep({sleep_s}); "
        f"p = pathlib.Path('reports/out.xml'); p.parent.mkdir(exist_ok=True); "
        f"p.write_text({report!r}); sys.exit({exit_code})"
    )
    return [sys.executable, "-c", code]


@pytest.mark.parametrize(
    ("argv", "timeout", "status", "message"),
    [
        (_writer(_junit()), 30, Status.PASS, "zero failures: 3 tests"),
        (_writer(_junit(1), exit_code=1), 30, Status.FAIL, "t::case0 (failure: boom)"),
        (_writer(_junit(), sleep_s=5), 0.5, Status.FAIL, "timed out after 0.5 s"),
        ([sys.executable, "-c", "raise SystemExit(3)"], 30, Status.FAIL, "older than this run"),
        (["no-such-test-runner"], 30, Status.FAIL, "'no-such-test-runner' is not on PATH"),
    ],
    ids=["passing", "failing", "timeout", "stale-report", "missing-executable"],
)
def test_configured_test_commands(
    tmp_path: Path, no_stack, argv: list[str], timeout: float, status: Status, message: str
) -> None:
    checkout = create_checkout(tmp_path / "americano")
    stale = checkout.path / "reports" / "out.xml"
    stale.parent.mkdir()
    stale.write_text(_junit())
    old = (datetime.now(UTC) - timedelta(hours=1)).timestamp()
    import os

    os.utime(stale, (old, old))
    command = SuiteCommand(name="suite", argv=argv, timeout_s=timeout, junit=["reports/*.xml"])
    params = sandbox_params(checkout, no_stack, test_commands=[command])
    check = tr.zero_test_failures(params, RELEASE)[0]
    assert check.status is status, check.evidence
    assert message in check.evidence
    assert "source: ran 1 configured command(s)" in check.evidence


def test_no_reports_fail_and_say_where_they_were_looked_for(tmp_path: Path, no_stack) -> None:
    checkout = create_checkout(tmp_path / "americano")
    params = sandbox_params(checkout, no_stack)
    params = params.model_copy(
        update={"checkout": params.checkout.model_copy(update={"junit_globs": ["ci/*.xml"]})}
    )
    check = tr.zero_test_failures(params, RELEASE)[0]
    assert check.status is Status.FAIL
    assert check.evidence.startswith(f"no JUnit XML matched ci/*.xml under {checkout.path}")


FRESH = "JUnit results newer than the release commit"
COVERED = "plan's test files in the test results"


@pytest.mark.parametrize(
    ("file", "status"), [("sandbox", Status.WARN), ("sandbox-production", Status.FAIL)]
)
def test_stale_junit_warns_in_staging_and_fails_in_production(
    checkouts, no_stack, file: str, status: Status
) -> None:
    """The fixture's committed reports were written an hour before the release commit.

    Production fails: it is the last gate and nothing reruns the tests there, so a report
    older than the commit would let untested code through; staging's 03 tests its build.
    """
    params = sandbox_params(checkouts("good"), no_stack, file=file)
    checks = by_name(tr.zero_test_failures(params, RELEASE))
    fresh = checks[FRESH]
    assert fresh.status is status and fresh.critical
    assert fresh.evidence.startswith(
        "2 of 2 JUnit report(s) stale: written before v1.4.0's commit was made 2025-10-29"
    )
    assert (
        "test-results/api-pytest.xml written 2025-10-29 09:00:00 UTC (its testsuite timestamp): "
        "before the commit — stale"
    ) in fresh.evidence
    assert checks["zero test failures (CI green)"].status is Status.PASS  # the counts are fine
    if status is Status.FAIL:
        assert FRESH in {c.name for c in checks.values() if c.status is Status.FAIL}


def test_reports_written_after_the_commit_pass_and_say_how_that_is_known(
    tmp_path, no_stack
) -> None:
    checkout = create_checkout(tmp_path / "americano")
    platform.write_ci_results(checkout.path)  # CI ran at the tag: timestamps now
    params = sandbox_params(checkout, no_stack, file="sandbox-production")
    checks = by_name(tr.zero_test_failures(params, RELEASE))
    assert checks[FRESH].status is Status.PASS, checks[FRESH].evidence
    assert "all 2 JUnit report(s) fresh (v1.4.0's commit was made" in checks[FRESH].evidence
    assert "(its testsuite timestamp): after the commit" in checks[FRESH].evidence

    # Without a timestamp attribute the file's mtime decides, and the evidence says so.
    report = checkout.path / "test-results" / "web-vitest.xml"
    report.write_text(re.sub(r' timestamp="[^"]*"', "", report.read_text()))
    old = datetime(2025, 10, 1, tzinfo=UTC).timestamp()
    os.utime(report, (old, old))
    fresh = by_name(tr.zero_test_failures(params, RELEASE))[FRESH]
    assert fresh.status is Status.FAIL
    assert "test-results/web-vitest.xml written 2025-10-01 00:00:00 UTC (the file's mtime)" in (
        fresh.evidence
    )
    os.utime(report, None)
    assert by_name(tr.zero_test_failures(params, RELEASE))[FRESH].status is Status.PASS


def test_junit_max_age_accepts_recent_reports_written_before_the_commit(tmp_path, no_stack) -> None:
    """A window for CI that ran before a late release commit (here: a commit made now)."""
    checkout = create_checkout(tmp_path / "americano")
    platform.write_ci_results(checkout.path, datetime.now(UTC) - timedelta(minutes=30))
    add_commit(checkout, {"NOTE.md": "late\n"}, "docs: release note")
    from deploybook.sandbox.fixture import _git

    _git(checkout.path, "tag", "-f", "-a", RELEASE, "-m", "retagged")
    params = sandbox_params(checkout, no_stack, file="sandbox-production")
    assert by_name(tr.zero_test_failures(params, RELEASE))[FRESH].status is Status.FAIL
    windowed = sandbox_params(
        checkout, no_stack, file="sandbox-production", junit_max_age=timedelta(hours=1)
    )
    fresh = by_name(tr.zero_test_failures(windowed, RELEASE))[FRESH]
    assert fresh.status is Status.PASS, fresh.evidence
    assert "within junit_max_age (1:00:00) of now" in fresh.evidence


def test_plan_test_files_missing_from_the_results_warn(tmp_path, no_stack) -> None:
    checkout = create_checkout(tmp_path / "americano")
    params = sandbox_params(checkout, no_stack)
    covered = by_name(tr.zero_test_failures(params, RELEASE))[COVERED]
    assert covered.status is Status.PASS and not covered.critical
    assert "apps/api/tests/test_e2e_epic4.py (as tests.test_e2e_epic4)" in covered.evidence
    assert "apps/web/src/lib/__tests__/embedding-service.test.ts (as src/lib/__tests__/" in (
        covered.evidence
    )

    report = checkout.path / "test-results" / "api-pytest.xml"
    report.write_text(report.read_text().replace("tests.test_e2e_epic4", "tests.test_other"))
    covered = by_name(tr.zero_test_failures(params, RELEASE))[COVERED]
    assert covered.status is Status.WARN
    assert "1 of 2 plan test file(s) not in the JUnit results:" in covered.evidence
    assert "apps/api/tests/test_e2e_epic4.py: no test case names it" in covered.evidence


@pytest.mark.parametrize(("exit_code", "status"), [(0, Status.PASS), (1, Status.FAIL)])
def test_ci_command_decides_ci_green(checkouts, no_stack, exit_code: int, status: Status) -> None:
    ci = [sys.executable, "-c", f"import sys; print('ci for', sys.argv[1]); sys.exit({exit_code})"]
    params = sandbox_params(checkouts("good"), no_stack, ci_command=[*ci, "{release}"])
    checks = by_name(pc.checklist(params, RELEASE))
    ci_check = checks["CI green for the release commit"]
    assert ci_check.status is status
    assert "ci for v1.4.0" in ci_check.evidence
    assert tr.zero_test_failures(params, RELEASE)[0].name == "zero test failures"


# --- artifacts and tag --------------------------------------------------------------------------


def test_artifacts_record_tree_shas_of_each_component(checkouts, no_stack) -> None:
    checkout = checkouts("good")
    digest = "sha256:" + "ab" * 32
    params = sandbox_params(checkout, no_stack, artifact_digests={"services": digest})
    check = rel.artifacts(params, RELEASE)[0]
    assert check.status is Status.PASS
    record = check.data
    assert record["commit"] == checkout.sha(RELEASE)
    assert record["tag_object"] == checkout.git("rev-parse", RELEASE).strip()
    for name, path in (("web", "apps/web"), ("api", "apps/api")):
        assert (
            record["components"][name]["sha"]
            == checkout.git("rev-parse", f"{RELEASE}:{path}").strip()
        )
    assert record["components"]["services"] == {
        "sha": digest,
        "kind": "image-digest",
        "paths": [],
    }


def test_artifact_path_missing_at_the_tag_fails(checkouts, no_stack) -> None:
    params = sandbox_params(
        checkouts("good"), no_stack, artifacts={"web": ["apps/web"], "ocr": ["services/ocr"]}
    )
    check = rel.artifacts(params, RELEASE)[0]
    assert check.status is Status.FAIL
    assert "ocr: services/ocr not at v1.4.0" in check.evidence


@pytest.mark.parametrize(
    ("release", "previous", "message"),
    [
        ("v1.4", PREVIOUS, "is not a SemVer tag"),
        ("v9.9.9", PREVIOUS, "tag v9.9.9 does not exist in the checkout"),
        (RELEASE, "v0.9.0", "previous release tag v0.9.0 does not exist"),
        (PREVIOUS, RELEASE, "previous release v1.4.0 is not an ancestor of v1.3.0"),
    ],
)
def test_release_tag_problems(checkouts, no_stack, release, previous, message) -> None:
    check = rel.release_tag(sandbox_params(checkouts("good"), no_stack), release, previous)[0]
    assert check.status is Status.FAIL
    assert message in check.evidence


def test_tag_off_the_protected_branch_fails(tmp_path: Path, no_stack) -> None:
    checkout = create_checkout(tmp_path / "americano")
    checkout.git("checkout", "-q", "-b", "hotfix")
    add_commit(checkout, {"HOTFIX.md": "x\n"}, "fix: on a side branch")
    checkout.git("tag", "v1.4.1")
    checkout.git("checkout", "-q", "main")
    check = rel.release_tag(sandbox_params(checkout, no_stack), "v1.4.1", RELEASE)[0]
    assert check.status is Status.FAIL
    assert "tag v1.4.1 is not on the protected branch main" in check.evidence


# --- scope, freeze, parity, flags ---------------------------------------------------------------


def test_scope_allowances_let_named_items_through(checkouts, no_stack) -> None:
    checkout = checkouts("epic5-leak")
    sha = checkout.sha(RELEASE)
    allow = ["20251028150000_epic5_behavioral_patterns", sha[:8]]
    check = rel.scope(sandbox_params(checkout, no_stack, scope_allow=allow), RELEASE, PREVIOUS)[0]
    assert check.status is Status.PASS
    assert "allowed by params: pending migration 20251028150000_epic5_behavioral" in check.evidence


def test_scope_needs_the_previous_release(checkouts, no_stack) -> None:
    check = rel.scope(sandbox_params(checkouts("good"), no_stack), RELEASE, None)[0]
    assert check.status is Status.FAIL
    assert "previous_release is not set" in check.evidence


def test_freeze_allowance_and_window_start(tmp_path: Path, no_stack) -> None:
    checkout = create_checkout(tmp_path / "americano")
    sha = add_commit(checkout, {"NOTE.md": "late\n"}, "docs: late note")
    params = sandbox_params(checkout, no_stack)
    freeze = by_name(rel.schedule(params, RELEASE))["no commits inside the freeze"]
    assert freeze.status is Status.FAIL and "docs: late note" in freeze.evidence

    allowed = sandbox_params(checkout, no_stack, freeze_allow=[sha[:10]])
    freeze = by_name(rel.schedule(allowed, RELEASE))["no commits inside the freeze"]
    assert freeze.status is Status.PASS and "1 allowed by params" in freeze.evidence

    later = datetime.now(UTC) + timedelta(days=3)
    future = params.model_copy(
        update={"schedule": params.schedule.model_copy(update={"window_start": later})}
    )
    checks = by_name(rel.schedule(future, RELEASE))
    assert checks["no commits inside the freeze"].status is Status.PASS
    assert checks["deployment window scheduled"].status is Status.PASS
    assert "(T-24h)" in checks["deployment window scheduled"].evidence


def test_schedule_plot_is_a_figure(checkouts, no_stack) -> None:
    figure = rel.schedule_plot(sandbox_params(checkouts("commit-in-freeze"), no_stack), RELEASE)
    assert figure.axes and "v1.4.0 schedule" in figure._suptitle.get_text()


PARITY, PEER = "env keys match .env.example files", "staging and production key sets match"
CANARY = "canary-envvalue-5a7c0e"


def _shown(checks: Checks) -> str:
    """Everything a record would keep of these checks: evidence and data."""
    return checks.to_text() + json.dumps([c.evidence for c in checks] + [c.data for c in checks])


def _listing(keys: list[str], form: str) -> str:
    values = {k: f"{CANARY}-{i}" for i, k in enumerate(keys)}
    if form == "json-list":  # e.g. a platform's `env ls --json`: objects with key and value
        return json.dumps(
            [{"key": k, "value": v, "target": ["production"]} for k, v in values.items()]
        )
    if form == "json-object":  # e.g. `config --json`
        return json.dumps(values)
    return "# listing\n" + "\n".join(f"export {k}={v}" for k, v in values.items()) + "\n"


def _lister(checkout: Path, text: str, exit_code: int = 0, sleep_s: float = 0) -> list[str]:
    """A listing command that lives in the checkout (proves it runs there), prints ``text``."""
    script = checkout / f"envlist{zlib.crc32(repr((text, exit_code, sleep_s)).encode())}.py"
    script.write_text(
        f"import sys, time\ntime.sleep({sleep_s})\nsys.stdout.write({text!r})\n"
        f"sys.stderr.write({CANARY!r})\nsys.exit({exit_code})\n"
    )
    return [sys.executable, script.name]


@pytest.mark.parametrize("form", ["lines", "json-list", "json-object"])
def test_observed_command_listing_passes_and_keeps_names_only(
    tmp_path: Path, no_stack, form: str
) -> None:
    checkout = create_checkout(tmp_path / "americano")
    keys = platform.example_keys(checkout.path, RELEASE)
    source = EnvSource(command=_lister(checkout.path, _listing(keys, form)))
    checks = envs.env_parity(
        sandbox_params(checkout, no_stack, env_source=source), RELEASE, no_stack
    )
    parity = by_name(checks)[PARITY]
    assert parity.status is Status.PASS, parity.evidence
    assert "sandbox: 29 names observed (command `" in parity.evidence
    assert by_name(checks)[PEER].status is Status.PASS
    assert CANARY not in _shown(checks)


def test_observed_environment_lacking_a_key_fails_naming_it(checkouts, no_stack, tmp_path) -> None:
    keys = [k for k in platform.example_keys(checkouts("good").path, RELEASE) if k != "CRON_SECRET"]
    dotenv = tmp_path / "sandbox.env"
    dotenv.write_text(_listing(keys, "lines"))
    params = sandbox_params(checkouts("good"), no_stack, env_source=EnvSource(dotenv=dotenv))
    checks = by_name(envs.env_parity(params, RELEASE, no_stack))
    assert checks[PARITY].status is Status.FAIL
    assert "CRON_SECRET (in .env.example) is not defined in sandbox" in checks[PARITY].evidence
    assert f"names observed (dotenv file {dotenv}" in checks[PARITY].evidence
    assert checks[PEER].status is Status.FAIL
    assert "only in sandbox-production: CRON_SECRET" in checks[PEER].evidence
    assert CANARY not in _shown(Checks(checks.values()))

    allowed = sandbox_params(
        checkouts("good"),
        no_stack,
        env_source=EnvSource(dotenv=dotenv),
        parity_allow=["CRON_SECRET"],
    )
    assert not failed(envs.env_parity(allowed, RELEASE, no_stack))


@pytest.mark.parametrize("file", ["sandbox", "sandbox-production"])
def test_staging_and_production_observing_different_names_fail(
    checkouts, tmp_path: Path, file: str
) -> None:
    """Each side reads its own source: production's listing has a name staging lacks."""
    environ = {"DEPLOYBOOK_STATE_DIR": str(tmp_path / "state")}
    params = sandbox_params(checkouts("good"), environ, file=file)
    production = platform.env_file(environ["DEPLOYBOOK_STATE_DIR"], "sandbox-production")
    production.write_text(production.read_text() + f"LEGACY_WEBHOOK_SECRET={CANARY}\n")
    checks = envs.env_parity(params, RELEASE, environ)
    peer = by_name(checks)[PEER]
    assert by_name(checks)[PARITY].status is Status.PASS  # extra names are not a parity gap
    assert peer.status is Status.FAIL
    assert "only in sandbox-production: LEGACY_WEBHOOK_SECRET" in peer.evidence
    assert "sandbox: 29 names observed" in peer.evidence
    assert "sandbox-production: 30 names observed" in peer.evidence
    assert CANARY not in _shown(checks)


def _envlist_failures(checkout: Path) -> list[tuple[EnvSource, str]]:
    return [
        (EnvSource(command=_lister(checkout, f"A={CANARY}\n", exit_code=3)), "exited 3"),
        (EnvSource(command=["no-such-env-lister"]), "'no-such-env-lister' is not on PATH"),
        (
            EnvSource(command=_lister(checkout, "A=1\n", sleep_s=5), timeout_s=0.5),
            "timed out after 0.5 s",
        ),
        (EnvSource(command=_lister(checkout, f'[{{"key": "{CANARY}')), "does not parse"),
        (EnvSource(command=_lister(checkout, "\n")), "lists no variable names"),
        (EnvSource(dotenv=checkout / "missing.env"), "cannot be read (No such file or directory)"),
    ]


@pytest.mark.parametrize(
    "case", range(6), ids=["exit-3", "not-found", "timeout", "bad-json", "empty", "no-file"]
)
def test_a_source_that_cannot_be_observed_fails_naming_it(tmp_path: Path, no_stack, case) -> None:
    checkout = create_checkout(tmp_path / "americano")
    source, message = _envlist_failures(checkout.path)[case]
    checks = envs.env_parity(
        sandbox_params(checkout, no_stack, env_source=source), RELEASE, no_stack
    )
    check = by_name(checks)[PARITY]
    assert check.status is Status.FAIL and message in check.evidence, check.evidence
    assert source.describe() in check.evidence or "no-such-env-lister" in check.evidence
    assert CANARY not in _shown(checks)


def test_process_environment_observed_with_a_prefix(checkouts, no_stack) -> None:
    keys = platform.example_keys(checkouts("good").path, RELEASE)
    environ = {**no_stack, **{f"OBSERVED_{k}": CANARY for k in keys}}
    source = EnvSource(process=True, prefix="OBSERVED_")
    params = sandbox_params(checkouts("good"), environ, env_source=source)
    checks = envs.env_parity(params, RELEASE, environ)
    assert by_name(checks)[PARITY].status is Status.PASS
    assert "(process environment (names starting OBSERVED_, stripped)" in checks[0].evidence
    assert CANARY not in _shown(checks)


def test_a_declared_list_is_accepted_as_declared_not_observed(checkouts, no_stack) -> None:
    params = sandbox_params(checkouts("good"), no_stack, env_source=None)
    checks = by_name(envs.env_parity(params, RELEASE, no_stack))
    assert checks[PARITY].status is Status.WARN
    assert "sandbox: 29 names declared, not observed (params env_keys" in checks[PARITY].evidence
    assert checks[PEER].status is Status.WARN
    assert (
        "declared, not observed for sandbox: set preconditions.env_source" in checks[PEER].evidence
    )

    keys = [k for k in params.preconditions.env_keys if k != "REDIS_URL"]
    short = sandbox_params(checkouts("good"), no_stack, env_source=None, env_keys=keys)
    checks = by_name(envs.env_parity(short, RELEASE, no_stack))
    assert checks[PARITY].status is Status.FAIL  # a declared gap is still a gap
    assert "REDIS_URL (in .env.example) is not defined in sandbox" in checks[PARITY].evidence

    none = sandbox_params(checkouts("good"), no_stack, env_source=None, env_keys=[])
    check = envs.env_parity(none, RELEASE, no_stack)[0]
    assert check.status is Status.FAIL
    assert "no source for sandbox's variable names: set preconditions.env_source" in check.evidence


def test_a_key_file_is_declared_and_its_values_are_never_read(
    checkouts, no_stack, tmp_path
) -> None:
    names = tmp_path / "staging.keys"
    keys = platform.example_keys(checkouts("good").path, RELEASE)
    names.write_text(_listing(keys, "lines"))
    params = sandbox_params(
        checkouts("good"), no_stack, env_source=None, env_keys=[], env_keys_file=names
    )
    checks = envs.env_parity(params, RELEASE, no_stack)
    assert checks[0].status is Status.WARN and "declared, not observed" in checks[0].evidence
    assert CANARY not in _shown(checks)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ({"command": ["x"], "dotenv": "y.env"}, "exactly one of command"),
        ({"dotenv": None}, "(got none)"),
        ({"dotenv": "y.env", "prefix": "P_"}, "prefix filters the process environment only"),
        ({"process": True, "prefix": "P-"}, "String should match pattern"),
        ({"command": "vercel env ls"}, "Input should be a valid list"),
    ],
)
def test_a_bad_source_stops_at_load_naming_the_key(
    tmp_path: Path, source: dict, message: str
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        json.dumps(
            {
                "extends": str(ROOT / "params" / "sandbox.yaml"),
                # sandbox.yaml observes with a command: clear it, so only `source` speaks.
                "preconditions": {"env_source": {"command": [], **source}},
            }
        )
    )
    environ = {
        "AMERICANO_CHECKOUT": str(tmp_path),
        "DEPLOYBOOK_STATE_DIR": str(tmp_path),
        "PG_BIN_DIR": "/x",
    }
    environ |= {v: "http://127.0.0.1:9" for v in ("API_URL", "WEB_URL", "CHATMOCK_URL", "OCR_URL")}
    environ |= {"DEPLOYBOOK_WEBHOOK_URL": "http://127.0.0.1:9", "DEPLOYBOOK_SMTP_HOST": "h"}
    with pytest.raises(ConfigError) as caught:
        load_params(bad, {**environ, "DEPLOYBOOK_SMTP_PORT": "25"})
    assert "preconditions.env_source" in str(caught.value) and message in str(caught.value)
    assert str(bad) in str(caught.value)


def test_feature_flag_default_mismatch_fails(checkouts, no_stack) -> None:
    flags = {"understanding_validation": True, "adaptive_questioning": False}
    params = sandbox_params(checkouts("good"), no_stack, feature_flags=flags)
    check = by_name(pc.checklist(params, RELEASE))["feature flag defaults match params"]
    assert check.status is Status.FAIL
    assert (
        "understanding_validation: docs/epic-4-implementation-guide.md@v1.4.0 declares "
        "default off, params expect on" in check.evidence
    )
    assert (
        "declared in docs/epic-4-implementation-guide.md@v1.4.0 but not in params: "
        "understanding_analytics" in check.evidence
    )


def test_inventory_lives_in_params(checkouts, no_stack) -> None:
    params = sandbox_params(checkouts("good"), no_stack)
    assert params.preconditions.inventory == INVENTORY
    extra = {**INVENTORY, "4.7": ["apps/api/src/validation/peer_review.py"]}
    check = rel.inventory(sandbox_params(checkouts("good"), no_stack, inventory=extra), RELEASE)[0]
    assert "apps/api/src/validation/peer_review.py (story 4.7) is missing" in check.evidence


# --- environments (plan section 3) --------------------------------------------------------------


@pytest.fixture
def fake_stack(tmp_path: Path) -> Iterator[dict[str, str]]:
    """A sandbox state dir describing a stack, so `sandbox_environment` resolves both envs."""
    state = tmp_path / "stack"
    state.mkdir()
    (state / "pg-password").write_text("pw-fake-stack-0001")
    services = {s: "http://127.0.0.1:9" for s in ("api", "web", "chatmock", "ocr")}
    (state / "state.json").write_text(
        json.dumps(
            {
                "state_dir": str(state),
                "token": "feedbeef",
                "postgres": {"port": 5999, "bin_dir": "/usr/bin"},
                "webhook_url": "http://127.0.0.1:9/hook",
                "smtp": {"host": "127.0.0.1", "port": 2525},
                "checkout": str(tmp_path),
                "envs": {
                    env: {"database": f"americano_{env.replace('-', '_')}", "services": services}
                    for env in ("sandbox", "sandbox-production")
                },
            }
        )
    )
    yield {"DEPLOYBOOK_STATE_DIR": str(state)}


def test_sandbox_databases_compared_from_the_stack(checkouts, fake_stack) -> None:
    checks = by_name(
        envs.environments_isolated(sandbox_params(checkouts("good"), fake_stack), fake_stack)
    )
    check = checks["staging and production databases separate"]
    assert check.status is Status.PASS
    assert "database name differs (host, port equal); values not shown" in check.evidence
    assert "pw-fake-stack-0001" not in check.evidence and "americano_sandbox" not in check.evidence


def test_same_api_key_planted_in_both_sandboxes_fails(checkouts, fake_stack) -> None:
    shared = "sk-canary-shared-0001"
    environ = {
        **fake_stack,
        "SANDBOX_OPENAI_API_KEY": shared,
        "SANDBOX_PRODUCTION_OPENAI_API_KEY": shared,
    }
    checks = by_name(
        envs.environments_isolated(sandbox_params(checkouts("good"), environ), environ)
    )
    check = checks["staging and production API keys differ"]
    assert check.status is Status.FAIL
    assert "share the same OPENAI_API_KEY" in check.evidence
    assert "sk-canary-shared-0001" not in check.evidence


def test_sandbox_api_keys_differ_by_default(checkouts, fake_stack) -> None:
    checks = by_name(
        envs.environments_isolated(sandbox_params(checkouts("good"), fake_stack), fake_stack)
    )
    assert checks["staging and production API keys differ"].status is Status.PASS


def test_sandbox_without_a_stack_warns_with_the_reason(checkouts, no_stack) -> None:
    checks = envs.environments_isolated(sandbox_params(checkouts("good"), no_stack), no_stack)
    assert {c.status for c in checks} == {Status.WARN}
    assert "the sandbox stack is not running" in checks[0].evidence


def _staging(checkout: Checkout) -> Params:
    return load_params(
        ROOT / "params" / "staging.yaml",
        {"AMERICANO_CHECKOUT": str(checkout.path), "PG_BIN_DIR": "/usr/bin"},
    )


@pytest.mark.parametrize(
    ("production", "db", "keys"),
    [
        (
            {"PRODUCTION_DATABASE_URL": SECRETS["DATABASE_URL"].replace("pw-", "other-pw-")},
            Status.FAIL,
            Status.WARN,
        ),
        (
            {
                "PRODUCTION_DATABASE_URL": "postgresql://app:x@db-prod.internal:5432/americano",
                "PRODUCTION_OPENAI_API_KEY": SECRETS["OPENAI_API_KEY"],
                "PRODUCTION_GEMINI_API_KEY": "gm-prod-9876543210",
            },
            Status.PASS,
            Status.FAIL,
        ),
        (
            {
                "PRODUCTION_DATABASE_URL": "postgresql://app:x@db-prod.internal:5432/americano",
                "PRODUCTION_OPENAI_API_KEY": "sk-prod-9876543210",
                "PRODUCTION_GEMINI_API_KEY": "gm-prod-9876543210",
            },
            Status.PASS,
            Status.PASS,
        ),
    ],
    ids=["same-database", "same-openai-key", "isolated"],
)
def test_real_environments_compare_values_named_in_params(
    checkouts, production: dict[str, str], db: Status, keys: Status
) -> None:
    environ = {**SECRETS, **production}
    checks = by_name(envs.environments_isolated(_staging(checkouts("good")), environ))
    assert checks["staging and production databases separate"].status is db
    assert checks["staging and production API keys differ"].status is keys
    text = "\n".join(c.evidence for c in checks.values())
    for value in environ.values():
        assert value not in text


def test_real_environment_without_peer_values_warns_how_to_provide_them(checkouts) -> None:
    checks = envs.environments_isolated(_staging(checkouts("good")), dict(SECRETS))
    assert {c.status for c in checks} == {Status.WARN}
    assert "export PRODUCTION_DATABASE_URL for DATABASE_URL" in checks[0].evidence


def _production(checkout: Checkout) -> Params:
    return load_params(
        ROOT / "params" / "production.yaml",
        {"AMERICANO_CHECKOUT": str(checkout.path), "PG_BIN_DIR": "/usr/bin"},
    )


def test_production_without_peer_values_fails_and_says_how(checkouts) -> None:
    """The production gate must not pass without comparing: both checks fail (critical)."""
    checks = envs.environments_isolated(_production(checkouts("good")), dict(SECRETS))
    assert {c.status for c in checks} == {Status.FAIL} and all(c.critical for c in checks)
    assert "not compared (required in production)" in checks[0].evidence
    assert "export STAGING_DATABASE_URL for DATABASE_URL" in checks[0].evidence
    text = checks.to_text()
    assert not [v for v in SECRETS.values() if v in text]


def test_production_with_a_peer_key_missing_fails(checkouts) -> None:
    environ = {
        **SECRETS,
        "STAGING_DATABASE_URL": "postgresql://app:x@db-staging.internal:5432/americano",
        "STAGING_OPENAI_API_KEY": "sk-staging-9876543210",
    }  # STAGING_GEMINI_API_KEY missing
    checks = by_name(envs.environments_isolated(_production(checkouts("good")), environ))
    assert checks["staging and production databases separate"].status is Status.PASS
    keys = checks["staging and production API keys differ"]
    assert keys.status is Status.FAIL
    assert "not compared (required in production): GEMINI_API_KEY (not set in staging)" in (
        keys.evidence
    )
    environ["STAGING_GEMINI_API_KEY"] = "gm-staging-9876543210"
    checks = envs.environments_isolated(_production(checkouts("good")), environ)
    assert {c.status for c in checks} == {Status.PASS}


def test_sandbox_production_without_a_stack_fails(checkouts, no_stack) -> None:
    params = sandbox_params(checkouts("good"), no_stack, file="sandbox-production")
    checks = envs.environments_isolated(params, no_stack)
    assert {c.status for c in checks} == {Status.FAIL}
    assert "the sandbox stack is not running" in checks[0].evidence


# --- health endpoints ---------------------------------------------------------------------------


def test_health_endpoints_name_the_service_that_is_down(checkouts, no_stack) -> None:
    with StubServer() as stub:
        healthy = {"status": "healthy", "service": "x", "version": RELEASE}
        stub.route("GET", "/health", body=healthy)
        stub.route("GET", "/api/health", body=healthy)
        environ = {
            **no_stack,
            "API_URL": f"http://127.0.0.1:{free_port()}",
            "WEB_URL": stub.url(),
            "CHATMOCK_URL": stub.url(),
            "OCR_URL": stub.url(),
        }
        checks = pc.health_endpoints(sandbox_params(checkouts("good"), environ))
    assert failed(checks) == {"api health endpoint answering"}
    assert "connection refused" in by_name(checks)["api health endpoint answering"].evidence
    assert "answered 200" in by_name(checks)["web health endpoint answering"].evidence


def test_params_files_validate_the_preconditions_section() -> None:
    for name in ("sandbox", "sandbox-production", "staging", "production"):
        text = (ROOT / "params" / f"{name}.yaml").read_text()
        assert "\npreconditions:\n" in text
    assert PreconditionsSpec().isolated_keys == ["OPENAI_API_KEY", "GEMINI_API_KEY"]
    with pytest.raises(ValueError, match="not a valid regular expression"):
        PreconditionsSpec(out_of_scope=["epic(5"])


# --- the runbook itself, on a real sandbox stack ------------------------------------------------


@pytest.mark.slow
def test_runbook_passes_on_the_sandbox_and_names_the_api_when_it_is_down(monkeypatch) -> None:
    import scrapbook as sb

    from deploybook.ops.runner import run_runbook
    from deploybook.sandbox import stack

    base = Path(tempfile.mkdtemp(prefix="db01-"))  # short: PostgreSQL's socket lives in here
    state = base / "state"
    monkeypatch.setenv("DEPLOYBOOK_STATE_DIR", str(state))
    parameters = {"previous_release": PREVIOUS, "rate_limits_reviewed_by": "Sam Services"}
    try:
        stack.up(state, progress=None)
        good = run_runbook(
            "01-preconditions",
            "sandbox",
            RELEASE,
            dict(parameters),
            outputs=base / "out",
            html=False,
        )
        assert good.status == "passed", good.error
        scraps = sb.read_notebook(str(good.record)).scraps
        checkout = Path(stack.read_state(state)["checkout"])
        assert scraps["artifacts"].data["commit"] == describe(checkout).sha(RELEASE)
        assert set(scraps["artifacts"].data["components"]) == {"web", "api"}
        assert not [c for c in scraps["checks"].data if c["status"] == "fail"]

        fault = {"error_rate": 1.0, "status": 503, "latency_ms": 0, "down": True, "paths": []}
        stack.admin("/admin/sandbox/api/fault", fault, state=state)
        bad = run_runbook(
            "01-preconditions",
            "sandbox",
            RELEASE,
            dict(parameters),
            outputs=base / "out",
            html=False,
        )
        assert bad.status == "failed"
        assert "1 critical check(s) failed: api health endpoint answering" in bad.error
    finally:
        stack.down(state, progress=None)
        shutil.rmtree(base, ignore_errors=True)


# --- the database answers (issue 22) ---------------------------------------------------------


def test_database_reachable_reports_the_server_version(pg_db: str) -> None:
    from deploybook.runbooks.preconditions.database import database_reachable

    checks = database_reachable(lambda: pg_db)
    (check,) = list(checks)
    assert check.name == "database reachable" and check.status is Status.PASS and check.critical
    assert re.search(r"answered: PostgreSQL \d+\.\d+", check.evidence)
    assert check.data["server_version_num"] >= 140000


@pytest.mark.parametrize("case", ["down", "unset", "mis-encoded"])
def test_database_unreachable_fails_01_by_name(case: str) -> None:
    from deploybook.errors import SecretMissing
    from deploybook.runbooks.preconditions.database import database_reachable

    port = free_port()  # nothing listens there: PostgreSQL is down
    urls = {
        "down": f"postgresql://app:CNRYdbpw-22@127.0.0.1:{port}/app",
        "mis-encoded": "postgresql://app:CNRYdb/pw 22@127.0.0.1:5432/app",
    }

    def url_of() -> str:
        if case == "unset":
            raise SecretMissing("secret DATABASE_URL is not set: export DATABASE_URL")
        return urls[case]

    (check,) = list(database_reachable(url_of, timeout_s=2))
    assert check.status is Status.FAIL and check.blocks
    expected = {
        "down": f"cannot connect to app@127.0.0.1:{port}/app",
        "unset": "DATABASE_URL is not set",
        "mis-encoded": "DATABASE_URL is not a valid URL (check that the password is percent",
    }[case]
    assert expected in check.evidence
    assert "CNRY" not in check.evidence
