"""The BMad workflow status file: which stories are DONE, what is still to be done.

Pure functions over the file's text. Projects written with the method keep this file in
several layouts, and the reader understands them all rather than one:
- sections whose heading names a state — ``Done``, ``### DONE (Completed Stories)``,
  ``DRAFTED``, ``IN PROGRESS``, ``IN REVIEW``, ``TODO``, ``BACKLOG``,
  ``Backlog (Not Yet Drafted)``, ``Deferred`` … — holding tables (with or without an Epic
  column) or bullet lists; a neutral heading inherits the state of the heading above it;
- tables with a ``Status`` column, where each row carries its own state;
- the YAML ``development_status:`` mapping of later versions of the method.

Story ids are whatever params list (``4.1``, ``3.5.10``, ``centralized-better-auth-1``);
epic ids may have dots (``3.5``). A story is DONE only when it appears in a done place and
nowhere that says otherwise; every verdict quotes the line that decided it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import Enum

import yaml

from deploybook.core.checks import Status


class State(Enum):
    """What a heading, a status cell or a YAML value says about the work under it."""

    DONE = "done"
    NOT_DONE = "not done"


# Checked before DONE: "Backlog (Drafted - Awaiting Review)" or "Not done" are not done.
NOT_DONE_WORDS = re.compile(
    r"backlog|not[ -]yet|not[ -]done|draft|\btodo\b|to[ -]do|in[ -]progress|in[ -]review|"
    r"\breview\b|blocked|deferred|\bready\b|pending|on[ -]hold|awaiting",
    re.IGNORECASE,
)
DONE_WORDS = re.compile(r"\bdone\b|\bcompleted?\b|\bfinished\b|\bshipped\b", re.IGNORECASE)
# Headings whose content is history or prose, never a state (and not inherited into).
NEUTRAL_HEADING = re.compile(r"decision|\bnotes?\b|session|history|\blog\b", re.IGNORECASE)
DECISIONS_HEADING = re.compile(r"decision", re.IGNORECASE)
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_ROW = re.compile(r"^\s*\|(.+)\|\s*$")
_SEPARATOR = re.compile(r"^[\s|:\-]+$")
_BULLET = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+")
_EMPTY_ITEM = re.compile(r"^\(?\s*(none|empty|n/a|-)?\s*\)?$", re.IGNORECASE)
_MARKUP = re.compile(r"[*_`~\[\]]|\(http[^)]*\)")


def state_of(text: str) -> State | None:
    """The state a heading or a status cell names, if any (not-done words win)."""
    if NOT_DONE_WORDS.search(text):
        return State.NOT_DONE
    if DONE_WORDS.search(text):
        return State.DONE
    return None


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
    level: int
    state: State | None = None
    lines: list[Line] = field(default_factory=list)


@dataclass(frozen=True)
class Item:
    """One table row, bullet or line that says something about work, with its state."""

    line: Line
    state: State
    where: str  # the heading (or "Status column", "development_status") that decided it
    key: str  # the row's story cell or the bullet's first word: the story id, usually
    head: str  # where an id counts as naming the item: id/story/file cells, a bullet's title
    heading: int | None = None  # line number of the heading above it, when one decided

    def place(self) -> str:
        at = f" (heading at line {self.heading})" if self.heading else ""
        return f'under "{self.where}"{at}, {self.line.quote()}'


@dataclass
class StatusFile:
    """What a status file says: its items with their states, and the decisions log."""

    sections: list[Section]
    items: list[Item]
    decisions: list[Line]

    @property
    def done(self) -> dict[str, Line]:
        """First cell (story id) -> its line, for every item in a done place."""
        rows: dict[str, Line] = {}
        for item in self.items:
            if item.state is State.DONE and item.key and item.key not in rows:
                rows[item.key] = item.line
        return rows

    def not_done_sections(self) -> list[Section]:
        return [s for s in self.sections if s.state is State.NOT_DONE]


def parse(text: str) -> StatusFile:
    """Sections with their states, the items under them, and the decisions log."""
    if (items := _yaml_items(text)) is not None:
        return StatusFile([], items, [])
    sections = _sections(text)
    items: list[Item] = []
    decisions: list[Line] = []
    for section in sections:
        items += _section_items(section)
        if DECISIONS_HEADING.search(section.title):
            decisions += [ln for ln in section.lines if ln.text.strip().startswith(("-", "*"))]
    return StatusFile(sections, items, decisions)


def _sections(text: str) -> list[Section]:
    sections: list[Section] = []
    stack: list[Section] = []
    current: Section | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        if match := _HEADING.match(raw):
            level, title = len(match.group(1)), match.group(2)
            while stack and stack[-1].level >= level:
                stack.pop()
            state = None if NEUTRAL_HEADING.search(title) else state_of(title)
            if state is None and not NEUTRAL_HEADING.search(title) and stack:
                state = stack[-1].state
            current = Section(Line(number, raw), title, level, state)
            sections.append(current)
            stack.append(current)
        elif current is not None:
            current.lines.append(Line(number, raw))
    return sections


def _cells(line: Line) -> list[str] | None:
    match = _ROW.match(line.text)
    if not match:
        return None
    return [_MARKUP.sub("", c).strip() for c in match.group(1).split("|")]


def _section_items(section: Section) -> list[Item]:
    items: list[Item] = []
    header: list[str] | None = None
    for line in section.lines:
        cells = _cells(line)
        if cells is None:
            header = None
            body = line.text.strip()
            if not body or _EMPTY_ITEM.match(body) or section.state is None:
                continue
            if _BULLET.match(line.text) or section.state is State.NOT_DONE:
                text = _MARKUP.sub("", _BULLET.sub("", body))
                first = text.split()
                key = first[0].rstrip(":,") if first else ""
                head = " ".join(first[:2])  # "4.1 Title", "Story 4.1:", "✅ 4.1 …"
                items.append(
                    Item(line, section.state, section.title, key, head, section.heading.number)
                )
            continue
        if _SEPARATOR.match(line.text):
            continue
        if header is None:
            header = [c.lower() for c in cells]
            continue
        item = _row_item(line, cells, header, section)
        if item is not None:
            items.append(item)
    return items


def _row_item(line: Line, cells: list[str], header: list[str], section: Section) -> Item | None:
    """A table row: its own Status cell decides, else the section's heading."""
    status_col = next((i for i, h in enumerate(header) if h in ("status", "state")), None)
    state, where = section.state, section.title
    if status_col is not None and status_col < len(cells) and cells[status_col]:
        state, where = state_of(cells[status_col]), f"Status column ({cells[status_col]})"
    if state is None:
        return None
    story_col = next((i for i, h in enumerate(header) if "story" in h or h in ("id", "key")), 0)
    key = cells[story_col] if story_col < len(cells) else ""
    naming = [
        c
        for i, (h, c) in enumerate(zip(header, cells, strict=False))
        if i == story_col or any(w in h for w in ("story", "id", "key", "file", "epic"))
    ]
    heading = section.heading.number if where == section.title else None
    return Item(line, state, where, key, " | ".join(naming), heading)


def _yaml_items(text: str) -> list[Item] | None:
    """The ``development_status:`` mapping (story key -> status), or None if not that."""
    if "development_status" not in text or not re.search(r"^development_status:", text, re.M):
        return None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return None
    statuses = data.get("development_status") if isinstance(data, dict) else None
    if not isinstance(statuses, dict):
        return None
    lines = text.splitlines()
    items = []
    for key, value in statuses.items():
        number = next(
            (i for i, ln in enumerate(lines, 1) if re.match(rf"\s*{re.escape(str(key))}:", ln)),
            0,
        )
        state = state_of(str(value)) or State.NOT_DONE
        line = Line(number, lines[number - 1] if number else f"{key}: {value}")
        items.append(Item(line, state, f"development_status ({value})", str(key), str(key)))
    return items


def mentions_story(text: str, story: str) -> bool:
    """Is this story id in the text as a whole token (4.1 is not in 4.10 nor in 14.1)?"""
    return re.search(rf"(?<![A-Za-z0-9.]){re.escape(story)}(?![A-Za-z0-9]|\.\d)", text) is not None


def mentions_epic(text: str, epic_id: str) -> bool:
    """ "Epic 4" / "epic-3.5" but not "Epic 14" or "Epic 4.1"."""
    pattern = rf"\bepic[\s_-]*{re.escape(epic_id)}(?![\d]|\.\d)"
    return re.search(pattern, text, re.IGNORECASE) is not None


def _names(item: Item, story: str) -> bool:
    """Does the item name this story as its subject (a done place must, to count)?"""
    return item.key == story or mentions_story(item.head, story)


def _item_mentions(item: Item, story: str) -> bool:
    """Is the story anywhere in the item (enough for a not-done place to count)?"""
    return item.key == story or mentions_story(item.line.text, story)


def judge_epic(text: str, epic_id: str, stories: list[str], where: str) -> tuple[Status, str]:
    """Every story in a done place and the epic in no not-done place, or why not."""
    status = parse(text)
    done_at = {
        s: next((i for i in status.items if i.state is State.DONE and _names(i, s)), None)
        for s in stories
    }
    listed = [
        i
        for i in status.items
        if i.state is State.NOT_DONE
        and (mentions_epic(i.line.text, epic_id) or any(_item_mentions(i, s) for s in stories))
    ]
    missing = [s for s in stories if done_at[s] is None]
    if not missing and not listed:
        rows = [done_at[s].line.quote() for s in stories]  # type: ignore[union-attr]
        return Status.PASS, "\n".join(
            [f"all {len(stories)} stories of Epic {epic_id} are done in {where}", *rows]
        )
    parts = []
    if listed:
        more = f" (and {len(listed) - 1} more)" if len(listed) > 1 else ""
        parts.append(f'listed under "{listed[0].where}" at {listed[0].line.quote()}{more}')
    if missing:
        parts.append(f"{', '.join(missing)} missing from the Done table")
    lines = [f"Epic {epic_id} is not done: {'; '.join(parts)}"]
    if listed:
        lines.append(f"listed as not done in {where}:")
        lines += [f"  {i.place()}" for i in listed]
    if missing:
        done = len(stories) - len(missing)
        lines.append(
            f"not in the Done table: {', '.join(missing)} ({done}/{len(stories)} stories done)"
        )
        epic_listed = [i for i in listed if mentions_epic(i.line.text, epic_id)]
        for story in missing:
            seen = [i for i in listed if _item_mentions(i, story)]
            if seen:
                lines.append(f"  {story}: {seen[0].place()}")
            elif epic_listed:
                first = epic_listed[0]
                lines.append(f"  {story}: its epic is {first.place()}")
            else:
                lines.append(f"  {story}: not named in any done or not-done section")
    return Status.FAIL, "\n".join(lines)


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
