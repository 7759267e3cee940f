"""Plan section 6, "zero test failures": the results, whether they can speak for the
release commit, and whether the plan's test files are among them.

With `preconditions.test_commands` the suites run now, in the checkout, so their reports
are this run's. Without, the JUnit XML found under `checkout.junit_globs` counts only if
it was written after the release tag's commit (or within `preconditions.junit_max_age`
of now): a report from before the commit existed cannot have tested it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from deploybook.checkout.junit import (
    Suite,
    Written,
    judge_freshness,
    judge_suites,
    judge_test_files,
    read_report_files,
    run_suite,
)
from deploybook.config import Params
from deploybook.core.checks import Checks, Status, run_check
from deploybook.errors import ConfigError
from deploybook.runbooks.preconditions.planfiles import plan_files
from deploybook.systems import git as repo

__all__ = ["zero_test_failures"]

_SEVERITY = {Status.PASS: 0, Status.SKIP: 1, Status.WARN: 2, Status.FAIL: 3}


def commit_time(checkout: Path, ref: str) -> datetime:
    """When the commit ``ref`` points at was made (committer date), in UTC."""
    if not repo.tag_exists(checkout, ref):
        raise ConfigError(f"tag {ref} does not exist in {checkout}")
    out = repo.git(checkout, "log", "-1", "--format=%cI", f"{ref}^{{commit}}").stdout.strip()
    return datetime.fromisoformat(out).astimezone(UTC)


def zero_test_failures(params: Params, release: str | None = None) -> Checks:
    """Plan section 6: run the configured test commands (or read JUnit XML); zero failures;
    the XML read is fresh for the release commit; the plan's test files are in the results.

    Without `preconditions.ci_command` these results are also the checklist's "CI green".
    """
    spec, root = params.preconditions, Path(params.checkout.path)
    name = "zero test failures" + ("" if spec.ci_command else " (CI green)")
    read: dict[str, Any] = {"suites": [], "written": []}

    def probe() -> tuple[Status, str, Any]:
        suites: list[Suite] = []
        problems: list[str] = []
        ok_commands = 0
        if spec.test_commands:
            for cmd in spec.test_commands:
                s, p, ok = run_suite(cmd, root)
                suites, problems, ok_commands = suites + s, problems + p, ok_commands + ok
            source = f"ran {len(spec.test_commands)} configured command(s)"
        else:
            suites, read["written"], problems = read_report_files(root, params.checkout.junit_globs)
            source = f"read JUnit XML ({', '.join(params.checkout.junit_globs)})"
        read["suites"] = suites
        status, evidence = judge_suites(suites, problems, ok_commands)
        evidence += f"\nsource: {source}"
        if release and not spec.test_commands and repo.tag_exists(root, release):
            head, tagged = repo.commit_sha(root, "HEAD"), repo.commit_sha(root, release)
            if head != tagged:
                status = max(status, Status.WARN, key=_SEVERITY.__getitem__)
                evidence += f"\ncheckout HEAD {head[:10]} is not {release} ({tagged[:10]})"
        return status, evidence, [s.as_dict() for s in suites]

    def fresh_probe() -> tuple[Status, str]:
        assert release is not None
        written: list[Written] = read["written"]
        # Stale results fail in a production-role environment: it is the last gate before
        # users and nothing later reruns the tests there (03 builds and tests on staging
        # only), so a report older than the commit would let untested code through.
        # Elsewhere they warn: staging's 03 runs the build's own tests before deploying.
        stale = Status.FAIL if params.environment.is_production else Status.WARN
        return judge_freshness(
            written,
            commit_time(root, release),
            release,
            datetime.now(UTC),
            spec.junit_max_age,
            stale,
        )

    def files_probe() -> tuple[Status, str]:
        return judge_test_files(read["suites"], spec.test_files)

    checks = Checks([run_check(name, "6", probe)])
    if release and not spec.test_commands:
        checks.append(run_check("JUnit results newer than the release commit", "6", fresh_probe))
    if release:
        checks += plan_files(params, release, "6")
    if spec.test_files:
        checks.append(
            run_check("plan's test files in the test results", "6", files_probe, critical=False)
        )
    return checks
