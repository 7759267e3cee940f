"""JUnit XML from pytest and vitest: counts per suite from the cases, failing names listed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from deploybook.checkout.junit import (
    JUnitError,
    Written,
    judge_freshness,
    judge_suites,
    judge_test_files,
    parse_junit,
    parse_timestamp,
)
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


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-10-29T09:00:00.000Z", datetime(2025, 10, 29, 9, tzinfo=UTC)),
        ("2025-10-29T11:00:00+02:00", datetime(2025, 10, 29, 9, tzinfo=UTC)),
        ("2025-10-29T09:00:00", datetime(2025, 10, 29, 9, tzinfo=UTC)),  # no zone: UTC
        ("yesterday", None),
        ("", None),
    ],
)
def test_timestamps(text: str, expected: datetime | None) -> None:
    assert parse_timestamp(text) == expected


def test_suite_timestamp_comes_from_the_suite_or_the_root() -> None:
    (suite,) = parse_junit(_junit_pytest(4, WHEN, {}), "api.xml")
    assert suite.started == WHEN and "tests.test_e2e_epic4" in suite.refs
    (bare,) = parse_junit(
        '<testsuites timestamp="2025-10-01T00:00:00Z"><testsuite/></testsuites>', "x"
    )
    assert bare.started == datetime(2025, 10, 1, tzinfo=UTC)


COMMIT = datetime(2025, 10, 29, 10, tzinfo=UTC)
NOW = datetime(2025, 10, 30, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("at", "max_age", "status", "phrase"),
    [
        (COMMIT + timedelta(minutes=5), None, Status.PASS, "after the commit"),
        (COMMIT, None, Status.PASS, "after the commit"),
        (COMMIT - timedelta(minutes=1), None, Status.WARN, "before the commit — stale"),
        (NOW - timedelta(hours=2), timedelta(hours=3), Status.PASS, "after the commit"),
        (COMMIT - timedelta(hours=1), timedelta(hours=27), Status.PASS, "within junit_max_age"),
        (COMMIT - timedelta(hours=1), timedelta(hours=25), Status.WARN, "stale"),
    ],
)
def test_freshness(at: datetime, max_age: timedelta | None, status: Status, phrase: str) -> None:
    report = Written("test-results/api.xml", at, "timestamp")
    got, evidence = judge_freshness([report], COMMIT, "v1.4.0", NOW, max_age)
    assert got is status and phrase in evidence
    assert "v1.4.0's commit was made 2025-10-29 10:00:00 UTC" in evidence
    assert "test-results/api.xml written" in evidence


def test_stale_status_is_the_callers_and_no_report_skips() -> None:
    stale = Written("a.xml", COMMIT - timedelta(days=1), "mtime")
    status, evidence = judge_freshness([stale], COMMIT, "v1", NOW, None, Status.FAIL)
    assert status is Status.FAIL and "(the file's mtime)" in evidence
    assert judge_freshness([], COMMIT, "v1", NOW)[0] is Status.SKIP


def test_test_files_found_by_file_or_classname() -> None:
    suites = parse_junit(_junit_pytest(4, WHEN, {}), "api.xml") + parse_junit(
        _junit_vitest(4, WHEN), "web.xml"
    )
    plan = [
        "apps/api/tests/test_e2e_epic4.py",
        "apps/web/src/lib/__tests__/embedding-service.test.ts",
    ]
    assert judge_test_files(suites, plan)[0] is Status.PASS
    status, evidence = judge_test_files(suites, [*plan, "apps/api/tests/test_missing.py"])
    assert (
        status is Status.WARN
        and "apps/api/tests/test_missing.py: no test case names it" in evidence
    )
    assert judge_test_files([], plan)[0] is Status.WARN
    assert judge_test_files(suites, [])[0] is Status.SKIP
    with_file = parse_junit(
        '<testsuite><testcase file="apps/api/tests/test_x.py" classname="X" name="t"/></testsuite>',
        "f",
    )
    assert judge_test_files(with_file, ["apps/api/tests/test_x.py"])[0] is Status.PASS
    classed = parse_junit(
        '<testsuite><testcase classname="tests.test_x.TestX" name="t"/></testsuite>', "f"
    )
    assert judge_test_files(classed, ["apps/api/tests/test_x.py"])[0] is Status.PASS
    assert judge_test_files(classed, ["apps/api/tests/test_y.py"])[0] is Status.WARN
