"""JUnit XML test reports (pytest, vitest, jest…): counts per suite and the failing tests.

Parsing and judging are pure functions over XML text. Counts come from the test cases
themselves (a `<failure>`, `<error>` or `<skipped>` child), not from the suite's
attributes, which some reporters leave at zero; a suite without test cases falls back to
its attributes. When a report was written (its suites' ``timestamp``, else the file's
mtime) decides whether it can speak for the release commit (`judge_freshness`), and the
cases' ``file``/``classname`` say which test files ran (`judge_test_files`).
`read_reports` and `run_suite` are the thin I/O around them.
"""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from deploybook.config import SuiteCommand
from deploybook.core.checks import Status
from deploybook.errors import CommandFailed
from deploybook.systems.workdir import run_in_checkout

_LIST_LIMIT = 20


@dataclass
class Suite:
    """One `<testsuite>`: what ran, what failed, and the names of the failing tests."""

    source: str  # the file it came from (or the command that produced it)
    name: str
    tests: int = 0
    failures: int = 0
    errors: int = 0
    skipped: int = 0
    failing: list[str] = field(default_factory=list)  # "classname::name (kind: message)"
    started: datetime | None = None  # its `timestamp` attribute (or the root's), in UTC
    refs: set[str] = field(default_factory=set)  # the cases' `file` and `classname` values

    @property
    def ok(self) -> bool:
        return not (self.failures or self.errors)

    def line(self) -> str:
        return (
            f"{self.source} › {self.name}: {self.tests} tests, {self.failures} failures, "
            f"{self.errors} errors, {self.skipped} skipped"
        )

    def as_dict(self) -> dict[str, object]:
        return {
            "source": self.source,
            "suite": self.name,
            "tests": self.tests,
            "failures": self.failures,
            "errors": self.errors,
            "skipped": self.skipped,
            "failing": list(self.failing),
        }


class JUnitError(ValueError):
    """A report that is not JUnit XML."""


def _int(value: str | None) -> int:
    try:
        return int(float(value or 0))
    except ValueError:
        return 0


def _first_line(text: str | None, limit: int = 160) -> str:
    line = (text or "").strip().splitlines()[0] if (text or "").strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


def parse_timestamp(text: str | None) -> datetime | None:
    """A JUnit ``timestamp`` (ISO 8601; without a zone read as UTC) or None."""
    if not text or not text.strip():
        return None
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def parse_junit(text: str, source: str) -> list[Suite]:
    """The suites of one report; raise `JUnitError` when it is not JUnit XML."""
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise JUnitError(f"{source} is not valid XML ({exc})") from None
    if root.tag == "testsuite":
        elements = [root]
    elif root.tag == "testsuites":
        elements = list(root.iter("testsuite"))
    else:
        raise JUnitError(f"{source}: root element <{root.tag}>, expected <testsuites>/<testsuite>")
    suites = []
    for element in elements:
        suite = Suite(source, element.get("name") or "(unnamed suite)")
        suite.started = parse_timestamp(element.get("timestamp") or root.get("timestamp"))
        cases = element.findall("testcase")
        for case in cases:
            suite.tests += 1
            suite.refs |= {case.get(a) or "" for a in ("file", "classname")} - {""}
            name = f"{case.get('classname') or ''}::{case.get('name') or '?'}".lstrip(":")
            for kind in ("failure", "error"):
                child = case.find(kind)
                if child is not None:
                    setattr(suite, f"{kind}s", getattr(suite, f"{kind}s") + 1)
                    message = _first_line(child.get("message") or child.text)
                    suite.failing.append(f"{name} ({kind}: {message})" if message else name)
                    break
            else:
                if case.find("skipped") is not None:
                    suite.skipped += 1
        if not cases:
            suite.tests = _int(element.get("tests"))
            suite.failures = _int(element.get("failures"))
            suite.errors = _int(element.get("errors"))
            suite.skipped = _int(element.get("skipped"))
        suites.append(suite)
    return suites


def judge_suites(
    suites: list[Suite], problems: list[str], commands_ok: int = 0
) -> tuple[Status, str]:
    """Zero failures and errors across every suite, and at least one test ran.

    ``problems`` (a command that failed or timed out, an unreadable report) fail the check;
    ``commands_ok`` counts commands that passed without a JUnit report to count from.
    """
    total = sum(s.tests for s in suites)
    failures = sum(s.failures for s in suites)
    errors = sum(s.errors for s in suites)
    skipped = sum(s.skipped for s in suites)
    failing = [name for s in suites for name in s.failing]
    counts = f"{total} tests, {failures} failures, {errors} errors, {skipped} skipped"
    lines = [s.line() for s in suites]
    if failing:
        shown = failing[:_LIST_LIMIT]
        more = [f"… and {len(failing) - _LIST_LIMIT} more"] if len(failing) > _LIST_LIMIT else []
        return Status.FAIL, "\n".join(
            [f"{failures + errors} failing test(s) in {len(suites)} suite(s): {counts}"]
            + ["failing:"]
            + [f"  {name}" for name in shown]
            + more
            + problems
            + lines
        )
    if failures or errors:  # counts from attributes, no names available
        return Status.FAIL, "\n".join([f"tests failed: {counts}", *problems, *lines])
    if problems:
        return Status.FAIL, "\n".join([problems[0], *problems[1:], *lines])
    if total == 0 and commands_ok:
        return Status.PASS, f"{commands_ok} test command(s) exited 0 (no JUnit report configured)"
    if total == 0:
        return Status.FAIL, "no tests ran: the reports hold no test cases"
    return Status.PASS, "\n".join([f"zero failures: {counts} in {len(suites)} suite(s)", *lines])


@dataclass(frozen=True)
class Written:
    """When one report was written, and how that is known ("timestamp" or "mtime")."""

    source: str
    at: datetime
    basis: str

    def line(self) -> str:
        how = "its testsuite timestamp" if self.basis == "timestamp" else "the file's mtime"
        return f"{self.source} written {_when(self.at)} ({how})"


def _when(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def written_at(suites: list[Suite], source: str, mtime: float) -> Written:
    """The earliest suite timestamp of a report (when the run began), else its mtime."""
    stamps = [s.started for s in suites if s.started is not None]
    if stamps:
        return Written(source, min(stamps), "timestamp")
    return Written(source, datetime.fromtimestamp(mtime, UTC), "mtime")


def judge_freshness(
    reports: list[Written],
    commit_at: datetime,
    tag: str,
    now: datetime,
    max_age: timedelta | None = None,
    stale_status: Status = Status.WARN,
) -> tuple[Status, str]:
    """Each report was written after the tag's commit (or within ``max_age`` of ``now``);
    otherwise it cannot have tested what ships: "stale", naming file, its time and the
    commit's time."""
    if not reports:
        return Status.SKIP, "no JUnit report was read"
    commit = f"{tag}'s commit was made {_when(commit_at)}"
    fresh, stale = [], []
    for report in reports:
        if report.at >= commit_at:
            fresh.append(f"{report.line()}: after the commit")
        elif max_age is not None and now - report.at <= max_age:
            fresh.append(f"{report.line()}: within junit_max_age ({max_age}) of now")
        else:
            stale.append(f"{report.line()}: before the commit — stale")
    if stale:
        head = (
            f"{len(stale)} of {len(reports)} JUnit report(s) stale: written before {commit}"
            + (f" and more than junit_max_age ({max_age}) ago" if max_age is not None else "")
            + "; rerun the tests at the tag or set preconditions.test_commands"
        )
        return stale_status, "\n".join([head, *stale, *fresh])
    return Status.PASS, "\n".join([f"all {len(reports)} JUnit report(s) fresh ({commit})", *fresh])


_EXTENSIONS = (".test.ts", ".test.tsx", ".spec.ts", ".test.js", ".py", ".ts", ".tsx", ".js")


def _covers(path: str, ref: str) -> bool:
    """Whether a case's ``file`` or ``classname`` names the test file ``path``.

    Paths match by suffix (reports are relative to a package: ``src/lib/x.test.ts``);
    dotted class names by module (``tests.test_e2e`` or ``tests.test_e2e.TestX`` for
    ``apps/api/tests/test_e2e.py``).
    """
    path, ref = path.strip("/"), ref.strip().removeprefix("./")
    if "/" in ref or ref.endswith(tuple(_EXTENSIONS)):
        return path == ref or path.endswith("/" + ref) or ref.endswith("/" + path)
    stem = path.rsplit("/", 1)[-1]
    for ext in _EXTENSIONS:
        stem = stem.removesuffix(ext)
    parts = [*path.split("/")[:-1], stem]
    wanted = ref.split(".")
    return any(wanted[: len(parts) - k] == parts[k:] for k in range(len(parts)))


def judge_test_files(suites: list[Suite], test_files: list[str]) -> tuple[Status, str]:
    """Every test file the plan names appears in the results (by case file or classname)."""
    if not test_files:
        return Status.SKIP, "params name no test files (preconditions.test_files)"
    if not suites:
        return Status.WARN, "no JUnit results to look in: " + ", ".join(test_files) + " not shown"
    refs = {ref for s in suites for ref in s.refs}
    found = {p: sorted(r for r in refs if _covers(p, r)) for p in test_files}
    missing = [p for p, hits in found.items() if not hits]
    seen = [f"  {p} (as {', '.join(hits[:3])})" for p, hits in found.items() if hits]
    if missing:
        return Status.WARN, "\n".join(
            [f"{len(missing)} of {len(test_files)} plan test file(s) not in the JUnit results:"]
            + [f"  {p}: no test case names it" for p in missing]
            + (["found:", *seen] if seen else [])
        )
    return Status.PASS, "\n".join(
        [f"all {len(test_files)} plan test file(s) appear in the JUnit results:", *seen]
    )


def read_reports(
    root: Path, globs: list[str], started: float | None = None
) -> tuple[list[Suite], list[str]]:
    """Suites from every JUnit file matching ``globs`` under ``root``; problems as text."""
    suites, _written, problems = read_report_files(root, globs, started)
    return suites, problems


def read_report_files(
    root: Path, globs: list[str], started: float | None = None
) -> tuple[list[Suite], list[Written], list[str]]:
    """Like `read_reports`, and when each file was written (for `judge_freshness`)."""
    paths = sorted({p for g in globs for p in root.glob(g) if p.is_file()})
    if not paths:
        return [], [], [f"no JUnit XML matched {', '.join(globs)} under {root}"]
    suites, written, problems = [], [], []
    for path in paths:
        rel = path.relative_to(root).as_posix()
        mtime = path.stat().st_mtime
        if started is not None and mtime < started - 1:
            problems.append(f"{rel} is older than this run: the command did not write it")
            continue
        try:
            found = parse_junit(path.read_text(encoding="utf-8", errors="replace"), rel)
        except JUnitError as exc:
            problems.append(str(exc))
            continue
        suites += found
        written.append(written_at(found, rel, mtime))
    return suites, written, problems


def run_suite(cmd: SuiteCommand, checkout: Path) -> tuple[list[Suite], list[str], bool]:
    """Run one configured test command; its JUnit report (if any) gives the counts."""
    started = time.time()
    try:
        result = run_in_checkout(
            cmd.name,
            cmd.argv,
            None,
            checkout=checkout,
            subdir=cmd.cwd,
            timeout_s=cmd.timeout_s,
            check=False,
        )
    except CommandFailed as exc:
        return [], [f"{cmd.name}: {exc}"], False
    problems = []
    if result.timed_out:
        problems.append(f"{cmd.name}: `{result.command}` timed out after {cmd.timeout_s:g} s")
    elif result.returncode != 0:
        tail = (result.stderr.strip() or result.stdout.strip()).splitlines()[-3:]
        problems.append(
            f"{cmd.name}: `{result.command}` exited {result.returncode}"
            + ("\n    " + "\n    ".join(tail) if tail else "")
        )
    suites: list[Suite] = []
    if cmd.junit:
        suites, more = read_reports(checkout, cmd.junit, started)
        problems += [f"{cmd.name}: {p}" for p in more]
    return suites, problems, not problems and not cmd.junit
