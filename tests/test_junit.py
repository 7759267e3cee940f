"""JUnit XML from pytest and vitest: counts per suite from the cases, failing names listed."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from deploybook.checkout.junit import JUnitError, judge_suites, parse_junit
from deploybook.core.checks import Status
from deploybook.sandbox.fixture import FAILING_TESTS, _junit_pytest, _junit_vitest

WHEN = datetime(2025, 10, 29, tzinfo=UTC)


def test_pytest_report_with_failures() -> None:
    suites = parse_junit(_junit_pytest(4, WHEN, FAILING_TESTS), "api.xml")
    assert [(s.tests, s.failures, s.errors, s.skipped) for s in suites] == [(29, 1, 1, 1)]
    status, evidence = judge_suites(suites, [])
    assert status is Status.FAIL
    for name in FAILING_TESTS:
        assert name in evidence


def test_vitest_report_has_one_suite_per_file() -> None:
    suites = parse_junit(_junit_vitest(4, WHEN), "web.xml")
    assert len(suites) == 8 and all(s.ok for s in suites)
    status, evidence = judge_suites(suites, [])
    assert status is Status.PASS
    assert evidence.startswith("zero failures: 19 tests, 0 failures, 0 errors, 0 skipped")


def test_attribute_counts_when_cases_are_absent() -> None:
    suites = parse_junit('<testsuite name="s" tests="4" failures="2"/>', "x.xml")
    assert judge_suites(suites, [])[0] is Status.FAIL


@pytest.mark.parametrize(
    ("text", "message"),
    [("not xml", "is not valid XML"), ("<html/>", "expected <testsuites>/<testsuite>")],
)
def test_bad_reports_raise(text: str, message: str) -> None:
    with pytest.raises(JUnitError, match=message):
        parse_junit(text, "x.xml")


def test_empty_and_problem_reports_fail() -> None:
    assert judge_suites([], [])[0] is Status.FAIL
    assert judge_suites([], ["suite: `pytest` exited 2"])[1].startswith("suite: `pytest` exited 2")
    assert judge_suites([], [], commands_ok=1)[0] is Status.PASS
