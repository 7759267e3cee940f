"""Smoke and health checks against real HTTP servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import time

import pytest
from http_stub import StubServer, free_port

from deploybook.core.checks import Status, gate
from deploybook.core.secrets import register
from deploybook.errors import ConfigError, GateFailed
from deploybook.systems.http import SmokeSpec, check_health, missing_keys, run_smoke


@pytest.fixture
def stub():
    with StubServer() as server:
        yield server


def spec(url: str, **kw) -> SmokeSpec:
    kw.setdefault("name", "smoke")
    kw.setdefault("backoff_s", 0.01)
    return SmokeSpec(url=url, **kw)


def test_healthy_endpoint_passes_with_data(stub):
    stub.route(
        "POST",
        "/adaptive/question/next",
        body={"question": {"question_id": "q1"}, "irt_metrics": {}},
    )
    s = spec(
        stub.url("/adaptive/question/next"),
        name="IRT selection",
        method="post",
        json={"session_id": "s", "objective_id": "o"},
        expect_keys=["question.question_id", "irt_metrics"],
    )
    [check] = run_smoke([s])
    assert check.status is Status.PASS, check.evidence
    assert check.evidence.startswith("POST /adaptive/question/next answered 200 in ")
    assert set(check.data) == {"status_code", "latency_ms", "budget_ms", "attempts"}
    assert check.data["status_code"] == 200 and check.data["attempts"] == 1
    assert check.section == "12" and check.critical


FAILURES = [
    (
        "5xx",
        {"status": 503, "body": {"detail": "chatmock down"}},
        {"retries": 2},
        Status.FAIL,
        "POST /validation/evaluate answered 503 after 3 attempts, expected 200: "
        '{"detail": "chatmock down"}',
    ),
    (
        "timeout",
        {"delay_s": 1.0, "body": {}},
        {"timeout_s": 0.2, "retries": 1},
        Status.FAIL,
        "POST /validation/evaluate failed after 2 attempts: no answer from 127.0.0.1:",
    ),
    (
        "missing key",
        {"body": {"scores": {}}},
        {"expect_keys": ["calibration_delta", "scores.total"]},
        Status.FAIL,
        "answered 200 but calibration_delta is missing; "
        "scores.total is missing (scores has no 'total')",
    ),
    (
        "empty list",
        {"body": {"results": []}},
        {"expect_keys": ["results[]"]},
        Status.FAIL,
        "answered 200 but results[] is an empty list",
    ),
    (
        "malformed JSON",
        {"body": "{'calibration_delta': 0.1,"},
        {"expect_keys": ["calibration_delta"]},
        Status.FAIL,
        "answered 200 but the body is not valid JSON",
    ),
    (
        "over budget, critical",
        {"delay_s": 0.3, "body": {}},
        {"latency_budget_ms": 50},
        Status.FAIL,
        "over its 50 ms budget",
    ),
    (
        "over budget, not critical",
        {"delay_s": 0.3, "body": {}},
        {"latency_budget_ms": 50, "critical": False},
        Status.WARN,
        "over its 50 ms budget",
    ),
    (
        "wrong 4xx",
        {"status": 422, "body": {"detail": "bad"}},
        {},
        Status.FAIL,
        "answered 422, expected 200",
    ),
]


@pytest.mark.parametrize(
    ("case", "route", "spec_kw", "status", "message"), FAILURES, ids=[f[0] for f in FAILURES]
)
def test_failures_are_named_checks_not_tracebacks(stub, case, route, spec_kw, status, message):
    stub.route("POST", "/validation/evaluate", **route)
    [check] = run_smoke(
        [spec(stub.url("/validation/evaluate"), name="calibrator", method="POST", **spec_kw)]
    )
    assert check.status is status, check.evidence
    assert message in check.evidence
    assert "Traceback" not in check.evidence
    assert check.data["attempts"] >= 1


def test_malformed_json_evidence_shows_the_body(stub):
    stub.route("GET", "/x", body="<html>oops</html>")
    [check] = run_smoke([spec(stub.url("/x"), expect_keys=["a"])])
    assert check.status is Status.FAIL
    assert "body: <html>oops</html>" in check.evidence


def test_connection_refused_is_a_clear_failure():
    url = f"http://127.0.0.1:{free_port()}/health"
    [check] = run_smoke([spec(url, retries=1)])
    assert check.status is Status.FAIL
    assert check.evidence.startswith(
        "GET /health failed after 2 attempts: connection refused by 127.0.0.1:"
    )
    assert check.data["status_code"] is None and check.data["attempts"] == 2
    with pytest.raises(
        GateFailed, match="smoke \\(GET /health failed after 2 attempts: connection refused"
    ):
        gate([check])


def test_warm_up_is_retried_then_passes(stub):
    stub.route("GET", "/api/content/search", body={"results": [{"id": 1}]}, fail_first=2)
    [check] = run_smoke(
        [spec(stub.url("/api/content/search?q=heart"), expect_keys=["results[].id"])]
    )
    assert check.status is Status.PASS, check.evidence
    assert check.data["attempts"] == 3
    assert stub.hits[("GET", "/api/content/search")] == 3


def test_client_errors_are_not_retried(stub):
    stub.route("GET", "/gone", status=404, body={"detail": "Not Found"})
    [check] = run_smoke([spec(stub.url("/gone"), retries=2)])
    assert check.status is Status.FAIL and check.data["attempts"] == 1


def test_runs_concurrently_close_to_the_slowest_endpoint(stub):
    for i in range(5):
        stub.route("GET", f"/slow/{i}", delay_s=0.3, body={"ok": True})
    specs = [spec(stub.url(f"/slow/{i}"), name=f"slow {i}") for i in range(5)]
    started = time.perf_counter()
    checks = run_smoke(specs, concurrency=8)
    elapsed = time.perf_counter() - started
    assert [c.name for c in checks] == [f"slow {i}" for i in range(5)]  # spec order kept
    assert all(c.status is Status.PASS for c in checks)
    assert elapsed < 1.2, f"5 × 0.3 s endpoints took {elapsed:.2f} s: not concurrent"


def test_run_smoke_works_inside_a_running_event_loop(stub):
    stub.route("GET", "/health", body={"status": "healthy", "version": "v1.4.0"})

    async def notebook_cell():
        return run_smoke([spec(stub.url("/health"), expect_keys=["status"])])

    [check] = asyncio.run(notebook_cell())
    assert check.status is Status.PASS, check.evidence


def test_no_secret_reaches_the_evidence(stub):
    register("tok-0123456789")
    leak = stub.url("/validation/evaluate", userinfo="deploy:hunter2-secret")
    stub.route(
        "POST",
        "/validation/evaluate",
        status=500,
        body={"error": f"cannot reach {leak} with tok-0123456789"},
    )
    s = spec(leak, method="POST", retries=0, headers={"Authorization": "Bearer tok-0123456789"})
    assert "tok-0123456789" not in repr(s)
    [check] = run_smoke([s])
    assert check.status is Status.FAIL
    text = check.evidence + repr(check.data)
    assert "hunter2-secret" not in text and "tok-0123456789" not in text
    assert "deploy:" not in text.split("\n")[1]  # the detail line shows the URL without userinfo


def test_refused_url_with_password_is_scrubbed():
    [check] = run_smoke([spec(f"http://admin:pw-very-secret@127.0.0.1:{free_port()}/x", retries=0)])
    assert "pw-very-secret" not in check.evidence


def test_specs_may_be_plain_dicts_and_are_validated(stub):
    stub.route("GET", "/ok", body={"a": 1})
    [check] = run_smoke([{"name": "dict spec", "url": stub.url("/ok"), "expect_keys": ["a"]}])
    assert check.status is Status.PASS
    with pytest.raises(ConfigError, match="smoke check 'bad' is invalid"):
        run_smoke([{"name": "bad", "url": "not-a-url"}])


def test_json_schema_expectation(stub):
    stub.route("GET", "/metrics-json", body={"calibration_delta": "high"})
    schema = {
        "type": "object",
        "properties": {"calibration_delta": {"type": "number"}},
        "required": ["calibration_delta"],
    }
    [check] = run_smoke([spec(stub.url("/metrics-json"), expect_schema=schema)])
    assert check.status is Status.FAIL
    assert "schema: calibration_delta: 'high' is not of type 'number'" in check.evidence


@pytest.mark.parametrize(
    ("body", "paths", "problems"),
    [
        ({"choices": [{"message": {"content": "x"}}]}, ["choices[].message.content"], []),
        ({"items": [{"id": 1}]}, ["items.0.id"], []),
        ({"results": {"a": 1}}, ["results[]"], ["results[] is not a list (got object)"]),
        ([], ["[]"], ["[] is an empty list"]),
        ({"q": {}}, ["q.id", "r"], ["q.id is missing (q has no 'id')", "r is missing"]),
    ],
)
def test_missing_keys(body, paths, problems):
    assert missing_keys(body, paths) == problems


def test_check_health_reports_version_and_keys(stub):
    stub.route(
        "GET",
        "/health",
        body={"status": "healthy", "service": "americano-api", "version": "v1.4.0"},
    )
    check = check_health("api health", stub.url("/health"), expect_version="v1.4.0")
    assert check.status is Status.PASS, check.evidence
    assert check.section == "10"
    assert "version v1.4.0" in check.evidence and "keys: service, status, version" in check.evidence
    assert check.data["version"] == "v1.4.0" and check.data["status_code"] == 200


@pytest.mark.parametrize(
    ("body", "expect_version", "message"),
    [
        (
            {"status": "healthy", "version": "v1.3.0"},
            "v1.4.0",
            "reports version 'v1.3.0', expected 'v1.4.0'",
        ),
        ({"status": "degraded"}, None, "status is 'degraded'"),
        ({"status": "ok", "ocr_engine": "paddle", "ready": False}, None, "ready is false"),
        ("not json", None, "not valid JSON"),
    ],
)
def test_check_health_failures(stub, body, expect_version, message):
    stub.route("GET", "/health", body=body)
    check = check_health("svc health", stub.url("/health"), expect_version=expect_version)
    assert check.status is Status.FAIL
    assert message in check.evidence


def test_check_health_down_service():
    check = check_health("ocr health", f"http://127.0.0.1:{free_port()}/health", timeout_s=1)
    assert check.status is Status.FAIL
    assert "connection refused" in check.evidence
