"""The status-file parser: Done rows, not-done headings quoted with line numbers, decisions."""

from __future__ import annotations

import pytest

from deploybook.checkout.statusfile import judge_embedding_decision, judge_epic, parse
from deploybook.core.checks import Status
from deploybook.sandbox.fixture import StatusState, render_status

EPIC4 = [f"4.{i}" for i in range(1, 7)]
GOOD = render_status(StatusState("2025-10-29", (1, 2, 3, 4), (5,)))


def test_done_table_and_decisions_are_read() -> None:
    status = parse(GOOD)
    assert set(EPIC4) <= set(status.done)
    assert status.done["4.6"].text.startswith("| 4.6 | docs/stories/story-4.6.md | 2025-10-27")
    assert any("1536" in d.text for d in status.decisions)


def test_good_status_passes_and_quotes_each_row() -> None:
    status, evidence = judge_epic(GOOD, "4", EPIC4, "status.md")
    assert status is Status.PASS
    assert evidence.count("| 4.") == 6


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            render_status(StatusState("2025-10-29", (1, 2, 3, 4), (4, 5), frozenset({"4.6"}))),
            ['listed under "Backlog (Not Yet Drafted)"', "4.6 missing from the Done table"],
        ),
        (
            render_status(StatusState("2025-10-29", (1, 2, 3), (4, 5))),
            ["4.1, 4.2, 4.3, 4.4, 4.5, 4.6 missing", "(0/6 stories done)"],
        ),
        (
            GOOD.replace(
                "### TODO (Needs Drafting)\n\n(none)", "### TODO (Needs Drafting)\n\n- 4.3 rework"
            ),
            ['listed under "TODO (Needs Drafting)"', "- 4.3 rework"],
        ),
    ],
    ids=["epic-in-backlog", "nothing-done", "story-in-todo"],
)
def test_not_done_is_explained(text: str, expected: list[str]) -> None:
    status, evidence = judge_epic(text, "4", EPIC4, "status.md")
    assert status is Status.FAIL
    for part in expected:
        assert part in evidence


def test_other_epics_and_versions_are_not_mistaken_for_this_one() -> None:
    text = GOOD.replace("(empty)", "").replace(
        "- Epic 5: Stories 5.1-5.6", "- Epic 14: Stories 14.1-14.2, v1.4.1 hotfix"
    )
    assert judge_epic(text, "4", EPIC4, "status.md")[0] is Status.PASS
    assert judge_epic(text, "1", ["1.1"], "status.md")[0] is Status.PASS


def test_embedding_decision() -> None:
    assert judge_embedding_decision(GOOD, 1536, "s.md")[0] is Status.PASS
    status, evidence = judge_embedding_decision(GOOD, 3072 * 2, "s.md")
    assert status is Status.WARN and "no decision in s.md mentions" in evidence
    assert judge_embedding_decision("# x\n", 1536, "s.md")[0] is Status.WARN
