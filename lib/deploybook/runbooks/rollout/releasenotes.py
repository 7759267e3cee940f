"""Release notes (plan section 17), generated from what the checkout says at the release tag.

The status file's Done table gives the epic's stories with their completion dates and
points, each story file its title, the decisions log the decisions taken since the
previous release, and the implementation guide named in params its deployment notes.
Reading is thin I/O (git at the tag); building the notes and the markdown is pure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from deploybook.checkout import statusfile
from deploybook.config import Params
from deploybook.errors import DeploybookError
from deploybook.systems import git as repo

SECTION = "17"
_DECISION = re.compile(r"^\s*[-*]\s*\**\s*(\d{4}-\d{2}-\d{2})\s*\**\s*:?\s*\**\s*(.*)$")
_TITLE = re.compile(r"^#\s+(?:story\s+[\d.]+\s*[:—-]\s*)?(.+?)\s*$", re.IGNORECASE | re.MULTILINE)
_H2 = re.compile(r"^(#{1,6})\s+(.*?)\s*$")


@dataclass(frozen=True)
class StoryLine:
    """One story of the epic as the Done table lists it (or missing from it)."""

    id: str
    title: str = ""
    completed: str = ""
    points: int | None = None
    file: str = ""
    done: bool = True


@dataclass
class ReleaseNotes:
    """The notes for one release, as data; `markdown` is what is shown, sent and written."""

    release: str
    epic: str
    epic_title: str
    stories: list[StoryLine]
    decisions: list[tuple[str, str]]  # (YYYY-MM-DD, text)
    since: str | None = None  # decisions after this day (the previous release's)
    previous_release: str | None = None
    guide: str | None = None
    deployment_notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def points(self) -> int:
        return sum(s.points or 0 for s in self.stories if s.done)

    @property
    def markdown(self) -> str:
        title = f"Epic {self.epic}" + (f": {self.epic_title}" if self.epic_title else "")
        lines = [f"# Release {self.release} — {title}", ""]
        if self.previous_release:
            lines += [f"Changes since {self.previous_release}.", ""]
        done = [s for s in self.stories if s.done]
        lines += [
            f"## Stories ({len(done)} of {len(self.stories)} done, {self.points} points)",
            "",
            "| Story | Title | Completed | Points |",
            "|---|---|---|---|",
        ]
        for s in self.stories:
            points = "" if s.points is None else str(s.points)
            shown = s.completed if s.done else "**not done**"
            lines.append(f"| {s.id} | {_cell(s.title)} | {shown} | {points} |")
        since = f" since {self.since}" if self.since else ""
        lines += ["", f"## Decisions{since}", ""]
        lines += [f"- **{day}**: {text}" for day, text in self.decisions] or ["- (none recorded)"]
        if self.deployment_notes:
            lines += ["", f"## Deployment notes (from {self.guide})", "", *self.deployment_notes]
        if self.problems:
            lines += ["", "## Notes on these notes", ""]
            lines += [f"- {p}" for p in self.problems]
        return "\n".join(lines).rstrip() + "\n"

    def _repr_markdown_(self) -> str:
        return self.markdown

    def to_text(self) -> str:
        return self.markdown

    def __str__(self) -> str:
        return self.markdown

    def write(self, folder: Path) -> Path:
        """Write ``release-notes-<release>.md`` into ``folder`` (beside the record)."""
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"release-notes-{self.release}.md"
        path.write_text(self.markdown, encoding="utf-8")
        return path


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _done_row(line: statusfile.Line) -> tuple[str, str, int | None]:
    """(file, completed date, points) from a Done-table row."""
    cells = [c.strip() for c in line.text.strip().strip("|").split("|")]
    cells += [""] * (4 - len(cells))
    points = int(cells[3]) if cells[3].isdigit() else None
    return cells[1], cells[2], points


def story_title(text: str | None) -> str:
    """The first heading of a story file without its 'Story 4.1:' prefix."""
    if not text:
        return ""
    match = _TITLE.search(text)
    return match.group(1).strip() if match else ""


def decisions_since(lines: list[statusfile.Line], since: date | None) -> list[tuple[str, str]]:
    """Dated decisions-log entries after ``since`` (all of them when None), in file order."""
    out = []
    for line in lines:
        match = _DECISION.match(line.text)
        if not match:
            continue
        day, text = match.group(1), match.group(2).strip().strip("*").strip()
        if since is None or date.fromisoformat(day) > since:
            out.append((day, text))
    return out


def section_lines(text: str | None, pattern: str = r"deploy") -> list[str]:
    """The lines under the first heading matching ``pattern`` (up to the next heading)."""
    if not text:
        return []
    out: list[str] = []
    inside = False
    for raw in text.splitlines():
        heading = _H2.match(raw)
        if heading:
            if inside:
                break
            inside = bool(re.search(pattern, heading.group(2), re.IGNORECASE))
            continue
        if inside:
            out.append(raw.rstrip())
    while out and not out[0].strip():
        out.pop(0)
    while out and not out[-1].strip():
        out.pop()
    return out


def build(
    status_text: str,
    *,
    release: str,
    epic: str,
    epic_title: str,
    stories: list[str],
    since: date | None = None,
    previous_release: str | None = None,
    titles: dict[str, str] | None = None,
    guide: str | None = None,
    guide_text: str | None = None,
) -> ReleaseNotes:
    """Pure: the notes from the status file's text (and story titles, the guide's text)."""
    status = statusfile.parse(status_text)
    titles = titles or {}
    lines, problems = [], []
    for sid in stories:
        row = status.done.get(sid)
        if row is None:
            lines.append(StoryLine(sid, titles.get(sid, ""), done=False))
            problems.append(f"story {sid} is not in the status file's Done table")
            continue
        file, completed, points = _done_row(row)
        lines.append(StoryLine(sid, titles.get(sid, ""), completed, points, file))
    notes = section_lines(guide_text) if guide else []
    if guide and guide_text is None:
        problems.append(f"implementation guide {guide} not found at {release}")
    return ReleaseNotes(
        release=release,
        epic=epic,
        epic_title=epic_title,
        stories=lines,
        decisions=decisions_since(status.decisions, since),
        since=since.isoformat() if since else None,
        previous_release=previous_release,
        guide=guide,
        deployment_notes=notes,
        problems=problems,
    )


def _tag_day(checkout: Path, tag: str) -> date | None:
    """The day (UTC) the tagged commit was made, or None when the tag is unknown."""
    proc = repo.git(checkout, "log", "-1", "--format=%ct", f"{tag}^{{commit}}", check=False)
    if proc.returncode != 0 or not proc.stdout.strip():
        return None
    return datetime.fromtimestamp(int(proc.stdout.strip()), UTC).date()


def _read(checkout: Path, release: str, rel: str) -> str | None:
    """A file at the release tag, else from the working tree (a checkout without the tag)."""
    try:
        text = repo.read_at(checkout, release, rel)
    except DeploybookError:
        text = None
    if text is None and (checkout / rel).is_file():
        text = (checkout / rel).read_text(encoding="utf-8")
    return text


def release_notes(
    params: Params,
    release: str,
    previous_release: str | None = None,
    guide: str | None = None,
) -> ReleaseNotes:
    """Read the status file (and story files, the guide) at the tag and build the notes."""
    checkout = Path(params.checkout.path)
    text = _read(checkout, release, params.checkout.status_file)
    if text is None:
        notes = build("", release=release, epic=params.epic.id, epic_title="", stories=[])
        notes.problems.append(f"status file {params.checkout.status_file} not found at {release}")
        return notes
    done = statusfile.parse(text).done
    titles: dict[str, Any] = {}
    for sid in params.epic.stories:
        if sid in done:
            file = _done_row(done[sid])[0]
            titles[sid] = story_title(_read(checkout, release, file)) if file else ""
    since = _tag_day(checkout, previous_release) if previous_release else None
    return build(
        text,
        release=release,
        epic=params.epic.id,
        epic_title=params.epic.title,
        stories=list(params.epic.stories),
        since=since,
        previous_release=previous_release,
        titles=titles,
        guide=guide,
        guide_text=_read(checkout, release, guide) if guide else None,
    )
