"""The fixture's JUnit XML: pytest's for apps/api and vitest's for apps/web.

All passing at the release (one skipped API test); `broken` marks tests as failed or
errored for the "failing-tests" variant.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping
from datetime import datetime

API_TESTS: list[tuple[int, str, str]] = [
    (1, "tests.test_health", "test_health_reports_version"),
    (1, "tests.test_health", "test_health_reports_service_name"),
    (4, "tests.test_validation_routes", "test_evaluate_returns_scores"),
    (4, "tests.test_validation_routes", "test_evaluate_returns_calibration_delta"),
    (4, "tests.test_validation_routes", "test_evaluate_502_when_chatmock_down"),
    (4, "tests.test_validation_routes", "test_evaluate_against_real_openai"),
    (4, "tests.test_validation_routes", "test_scenario_metrics_default_range"),
    (4, "tests.test_validation_routes", "test_scenario_metrics_rejects_bad_range"),
    (4, "tests.test_scenario_generator", "test_difficulty_follows_mastery"),
    (4, "tests.test_scenario_evaluator", "test_score_scenario_all_correct"),
    (4, "tests.test_scenario_evaluator", "test_score_scenario_without_stages"),
    (4, "tests.test_retry_scheduler", "test_vulnerable_concepts_ordered_by_gap"),
    (4, "tests.test_retry_scheduler", "test_retry_schedule_1_3_7_days"),
    (4, "tests.test_challenge_routes", "test_failure_returns_retry_dates"),
    (4, "tests.test_calibrator", "test_normalise_confidence_bounds"),
    (4, "tests.test_calibrator", "test_calibrate_overconfident"),
    (4, "tests.test_calibrator", "test_calibrate_underconfident"),
    (4, "tests.test_calibrator", "test_calibration_correlation_needs_five_answers"),
    (4, "tests.test_irt_engine", "test_probability_is_half_at_difficulty"),
    (4, "tests.test_irt_engine", "test_estimate_theta_converges"),
    (4, "tests.test_irt_engine", "test_next_item_maximises_information"),
    (4, "tests.test_irt_engine", "test_should_stop_on_standard_error"),
    (4, "tests.test_question_selector", "test_select_next_skips_asked_items"),
    (4, "tests.test_adaptive_routes", "test_question_next_returns_irt_metrics"),
    (4, "tests.test_analytics_routes", "test_analytics_health"),
    (4, "tests.test_analytics_routes", "test_dashboard_requires_user_id"),
    (4, "tests.test_progress_tracker", "test_trend_is_slope_per_day"),
    (4, "tests.test_e2e_epic4", "test_evaluate_then_next_question_then_dashboard"),
    (4, "tests.test_e2e_epic4", "test_challenge_failure_schedules_retries"),
]
API_SKIPPED = {"test_evaluate_against_real_openai": "requires OPENAI_API_KEY"}

WEB_TESTS: list[tuple[int, str, str]] = [
    (
        2,
        "src/lib/__tests__/rate-limiter.test.ts",
        "TokenBucketRateLimiter > allows a burst up to capacity",
    ),
    (
        2,
        "src/lib/__tests__/rate-limiter.test.ts",
        "TokenBucketRateLimiter > refills at requestsPerMinute",
    ),
    (
        2,
        "src/lib/__tests__/rate-limiter.test.ts",
        "TokenBucketRateLimiter > throws with retryAfterMs",
    ),
    (
        2,
        "src/lib/__tests__/rate-limiter.test.ts",
        "TokenBucketRateLimiter > resets the daily count at UTC midnight",
    ),
    (2, "src/components/__tests__/mission-card.test.tsx", "MissionCard > shows progress"),
    (
        3,
        "src/lib/__tests__/embedding-service.test.ts",
        "embed > asks Gemini for EMBEDDING_DIMENSIONS values",
    ),
    (3, "src/lib/__tests__/embedding-service.test.ts", "embed > throws on an HTTP error"),
    (3, "src/lib/__tests__/logger-pii-redaction.test.ts", "redactPII > redacts emails"),
    (3, "src/lib/__tests__/logger-pii-redaction.test.ts", "redactPII > redacts phone numbers"),
    (3, "src/lib/__tests__/logger-pii-redaction.test.ts", "redactPII > redacts sensitive keys"),
    (
        3,
        "src/lib/__tests__/logger-pii-redaction.test.ts",
        "redactPII > leaves clinical text intact",
    ),
    (3, "src/lib/__tests__/logger.test.ts", "logger > applies redaction to every entry"),
    (
        3,
        "src/app/api/content/search/__tests__/route.test.ts",
        "GET /api/content/search > requires q",
    ),
    (
        3,
        "src/app/api/content/search/__tests__/route.test.ts",
        "GET /api/content/search > returns ranked results",
    ),
    (
        4,
        "src/lib/__tests__/confidence-calibrator.test.ts",
        "calibrationDelta > maps confidence 1-5 to 0-100",
    ),
    (4, "src/lib/__tests__/confidence-calibrator.test.ts", "categorise > uses +/-15 bands"),
    (
        4,
        "src/lib/__tests__/mission-analytics-engine.test.ts",
        "MissionAnalyticsEngine > completion rate over 7 days",
    ),
    (
        4,
        "src/lib/__tests__/mission-analytics-engine.test.ts",
        "MissionAnalyticsEngine > correlation needs 7 missions",
    ),
    (
        4,
        "src/lib/__tests__/mission-analytics-engine.test.ts",
        "MissionAnalyticsEngine > recommends shorter missions",
    ),
]


def _junit_pytest(max_epic: int, when: datetime, broken: Mapping[str, tuple[str, str]]) -> str:
    cases = [(cls, name) for epic, cls, name in API_TESTS if epic <= max_epic]
    counts = {"failure": 0, "error": 0}
    suite = ET.Element("testsuite", name="pytest")
    skipped = 0
    for i, (cls, name) in enumerate(cases):
        case = ET.SubElement(
            suite, "testcase", classname=cls, name=name, time=f"{0.004 + i * 0.003:.3f}"
        )
        key = f"{cls}::{name}"
        if key in broken:
            kind, message = broken[key]
            counts[kind] += 1
            child = ET.SubElement(case, kind, message=message)
            child.text = f"{cls.replace('.', '/')}.py:{12 + i}: {message}"
        elif name in API_SKIPPED:
            skipped += 1
            child = ET.SubElement(case, "skipped", type="pytest.skip", message=API_SKIPPED[name])
            child.text = f"{cls.replace('.', '/')}.py:{12 + i}: {API_SKIPPED[name]}"
    suite.set("errors", str(counts["error"]))
    suite.set("failures", str(counts["failure"]))
    suite.set("skipped", str(skipped))
    suite.set("tests", str(len(cases)))
    suite.set("time", f"{0.8 + len(cases) * 0.05:.3f}")
    suite.set("timestamp", when.isoformat())
    suite.set("hostname", "ci-runner-1")
    root = ET.Element("testsuites", name="pytest tests")
    root.append(suite)
    return _xml(root)


def _junit_vitest(max_epic: int, when: datetime) -> str:
    files: dict[str, list[str]] = {}
    for epic, path, name in WEB_TESTS:
        if epic <= max_epic:
            files.setdefault(path, []).append(name)
    total = sum(len(v) for v in files.values())
    root = ET.Element(
        "testsuites", name="vitest tests", tests=str(total), failures="0", errors="0", time="2.314"
    )
    for path, names in files.items():
        suite = ET.SubElement(
            root,
            "testsuite",
            name=path,
            timestamp=when.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            hostname="ci-runner-1",
            tests=str(len(names)),
            failures="0",
            errors="0",
            skipped="0",
            time=f"{0.002 * len(names):.3f}",
        )
        for i, name in enumerate(names):
            ET.SubElement(
                suite, "testcase", classname=path, name=name, time=f"{0.001 + i * 0.001:.3f}"
            )
    return _xml(root)


def _xml(root: ET.Element) -> str:
    ET.indent(root, space="  ")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
