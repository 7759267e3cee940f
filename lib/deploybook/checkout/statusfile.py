"""The BMad workflow status file: which stories are DONE, what is still in a backlog.

Pure functions over the file's text. A story is DONE only when it has a row in the
"Done" table (`| Story ID | File | Completed Date | Points |`); an epic or story listed
under a backlog, TODO, not-yet-drafted or in-progress heading is not done, and the
evidence quotes that heading, the line number and the line, so a reviewer can find it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from deploybook.core.checks import Status

# Headings whose list items are work that is *not* done.
NOT_DONE_HEADING = re.compile(
    r"backlog|not yet drafted|\btodo\b|to do|needs drafting|in progress|in review|blocked",
    re.IGNORECASE,
)
DONE_HEADING = re.compile(r"\bdone\b|completed", re.IGNORECASE)
DECISIONS_HEADING = re.compile(r"decision", re.IGNORECASE)
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_ROW = re.compile(r"^\s*\|(.+)\|\s*$")
_EMPTY_ITEM = re.compile(r"^\(?\s*(none|empty|n/a|-)?\s*\)?$", re.IGNORECASE)


@dataclass(frozen=True)
class Line:
    """A line of the file with its 1-based number, for quoting."""

    number: int
    text: str

    def quote(self) -> str:
        return f"line {self.number}: {self.text.strip()}"


@dataclass
class Section:
    """A heading and the lines under it, up to the next heading of any level."""

    heading: Line
    title: str
    lines: list[Line] = field(default_factory=list)


@dataclass
class StatusFile:
    """What a status file says: sections, the Done rows and the decisions log."""

    sections: list[Section]
    done: dict[str, Line]  # story id -> its row in the Done table
    decisions: list[Line]

    def not_done_sections(self) -> list[Section]:
        return [s for s in self.sections if NOT_DONE_HEADING.search(s.title)]


def parse(text: str) -> StatusFile:
    """Split into sections, read the Done table and the decisions log."""
    sections: list[Section] = []
    current: Section | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        if match := _HEADING.match(raw):
            current = Section(Line(number, raw), match.group(2))
            sections.append(current)
        elif current is not None:
            current.lines.append(Line(number, raw))
    done: dict[str, Line] = {}
    decisions: list[Line] = []
    for section in sections:
        if DONE_HEADING.search(section.title) and not NOT_DONE_HEADING.search(section.title):
            done.update(_table_ids(section.lines))
        if DECISIONS_HEADING.search(section.title):
            decisions += [ln for ln in section.lines if ln.text.strip().startswith(("-", "*"))]
    return StatusFile(sections, done, decisions)


def _table_ids(lines: list[Line]) -> dict[str, Line]:
    """Story id -> row, from a table whose first column is the story id."""
    rows: dict[str, Line] = {}
    header_seen = False
    for line in lines:
        match = _ROW.match(line.text)
        if not match:
            continue
        first = match.group(1).split("|")[0].strip()
        if not header_seen:
            header_seen = "story" in first.lower()
            continue
        if re.fullmatch(r"\d+(\.\d+)+", first):
            rows[first] = line
    return rows


def _mentions_epic(text: str, epic_id: str, stories: list[str]) -> bool:
    if re.search(rf"\bepic[\s-]*{re.escape(epic_id)}\b(?!\.\d)", text, re.IGNORECASE):
        return True
    return any(re.search(rf"(?<![\d.]){re.escape(s)}(?![\d])", text) for s in stories)


def judge_epic(text: str, epic_id: str, stories: list[str], where: str) -> tuple[Status, str]:
    """Every story in the Done table and the epic in no not-done section, or why not."""
    status = parse(text)
    missing = [s for s in stories if s not in status.done]
    listed: list[tuple[Section, Line]] = []
    for section in status.not_done_sections():
        for line in section.lines:
            body = line.text.strip()
            if body and not _EMPTY_ITEM.match(body) and _mentions_epic(body, epic_id, stories):
                listed.append((section, line))
    done = [s for s in stories if s in status.done]
    if missing or listed:
        parts = []
        if listed:
            section, line = listed[0]
            more = f" (and {len(listed) - 1} more)" if len(listed) > 1 else ""
            parts.append(f'listed under "{section.title}" at {line.quote()}{more}')
        if missing:
            parts.append(f"{', '.join(missing)} missing from the Done table")
        lines = [f"Epic {epic_id} is not done: {'; '.join(parts)}"]
        if listed:
            lines.append(f"listed as not done in {where}:")
            lines += [
                f'  under "{sec.title}" (heading at line {sec.heading.number}), {ln.quote()}'
                for sec, ln in listed
            ]
        if missing:
            lines.append(
                f"not in the Done table: {', '.join(missing)} "
                f"({len(done)}/{len(stories)} stories done)"
            )
        return Status.FAIL, "\n".join(lines)
    rows = [status.done[s].quote() for s in stories]
    return Status.PASS, "\n".join(
        [f"all {len(stories)} stories of Epic {epic_id} are in the Done table of {where}", *rows]
    )


def judge_embedding_decision(text: str, dimension: int, where: str) -> tuple[Status, str]:
    """Does the decisions log record the embedding dimension (e.g. the 3072 -> 1536 fix)?"""
    decisions = parse(text).decisions
    if not decisions:
        return Status.WARN, f"{where} has no decisions log (a heading containing 'Decision')"
    wanted = re.compile(rf"(?<!\d){dimension}(?!\d)")
    hits = [d for d in decisions if "embedding" in d.text.lower() and wanted.search(d.text)]
    if hits:
        return Status.PASS, "\n".join(
            [f"the decisions log records embedding dimension {dimension}"]
            + [d.quote() for d in hits]
        )
    return (
        Status.WARN,
        f"no decision in {where} mentions the embedding dimension {dimension} "
        f"({len(decisions)} decisions read): record why vectors are {dimension}-dimensional",
    )
