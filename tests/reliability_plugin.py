"""The reliability suite's summary table: one row per scenario, printed once at the end.

A test adds its row with `scenario(...)` (expected outcome first), then fills in what it
observed and the data lost. The pytest hooks below mark each row with its test's result
and print the table in the terminal summary, so a run ends with one table a lead can
paste into a release review. Loaded by ``pytest_plugins`` in test_reliability.py, so no
conftest change is needed. (PYTEST_DONT_REWRITE: the test module imports it before
pytest registers it, and it holds no assertions.)
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

import pytest

NOT_OBSERVED = "(not observed: the test stopped before it got there)"


@dataclass
class Row:
    """One scenario: what should happen, what did, and which data (if any) was lost."""

    scenario: str
    expected: str
    observed: str = NOT_OBSERVED
    data_lost: str = "unknown"
    nodeid: str = ""
    result: str = "running"


ROWS: list[Row] = []
_CLOCK: dict[str, float] = {}


def start_clock() -> None:
    """Called when the suite's stack comes up: the summary reports time from here."""
    _CLOCK.setdefault("start", time.monotonic())


def scenario(nodeid: str, name: str, expected: str) -> Row:
    """Add a row for the running test (its result is filled in by the hook below)."""
    row = Row(name, expected, nodeid=nodeid)
    ROWS.append(row)
    return row


_ROW_PROPERTY = "reliability_row"
_CLOCK_PROPERTY = "reliability_clock"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Iterator[Any]:
    report = yield
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        if hasattr(report, "wasxfail"):
            result = "xfail (known bug)" if report.outcome == "skipped" else "XPASS (bug fixed?)"
        else:
            result = {"passed": "ok", "failed": "FAILED", "skipped": "skipped"}[report.outcome]
        for row in ROWS:
            if row.nodeid == item.nodeid:
                row.result = result
    if report.when == "teardown":
        # Under pytest-xdist the table is printed by the controller, which sees only reports:
        # each finished row travels in its test's last report.
        rows = [(_ROW_PROPERTY, asdict(row)) for row in ROWS if row.nodeid == item.nodeid]
        report.user_properties.extend(rows)
        if rows and "start" in _CLOCK:
            report.user_properties.append((_CLOCK_PROPERTY, _CLOCK["start"]))
    return report


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """In the xdist controller: collect the rows the workers' reports carry."""
    if getattr(report, "node", None) is None:  # this process ran the test: ROWS has it
        return
    for name, value in report.user_properties:
        if name == _ROW_PROPERTY:
            ROWS.append(Row(**value))
        elif name == _CLOCK_PROPERTY:
            _CLOCK["start"] = min(_CLOCK.get("start", value), value)  # monotonic: one machine


def _cell(text: str, limit: int = 140) -> str:
    text = " ".join(str(text).split()).replace("|", "/")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def table() -> list[str]:
    """The rows as a markdown table (also readable as plain text)."""
    header = ("scenario", "expected", "observed", "data lost", "result")
    rows = [
        tuple(_cell(v) for v in (r.scenario, r.expected, r.observed, r.data_lost, r.result))
        for r in ROWS
    ]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]

    def line(values: tuple[str, ...]) -> str:
        return "| " + " | ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)) + " |"

    return [line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, rows)]


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not ROWS:
        return
    tr = terminalreporter
    tr.section("reliability summary")
    for text in table():
        tr.write_line(text)
    lost = [r for r in ROWS if r.data_lost != "none"]
    bad = [r for r in ROWS if r.result not in ("ok", "xfail (known bug)")]
    took = time.monotonic() - _CLOCK["start"] if "start" in _CLOCK else 0.0
    tr.write_line(
        f"{len(ROWS)} scenarios in {took:.0f} s; "
        f"{'data lost in ' + str(len(lost)) + ' scenario(s)' if lost else 'data lost: none'}; "
        f"{len(bad)} not ok"
    )
