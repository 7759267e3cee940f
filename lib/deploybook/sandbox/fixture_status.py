"""The epics, stories and decisions of the fixture, and the status file rendered from them.

`render_status` writes `docs/bmm-workflow-status.md` in the layout documented in
`deploybook.sandbox.fixture` (parsed by `deploybook.checkout.statusfile`).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Story:
    """One story row of the status file's Done table."""

    id: str
    title: str
    completed: str
    points: int

    @property
    def file(self) -> str:
        return f"docs/stories/story-{self.id}.md"


@dataclass(frozen=True)
class Epic:
    """An epic and its stories, as the status file and the commits describe it."""

    number: int
    name: str
    stories: tuple[Story, ...]

    @property
    def backlog_line(self) -> str:
        first, last = self.stories[0].id, self.stories[-1].id
        return f"- Epic {self.number}: Stories {first}-{last} ({self.name})"


def _epic(number: int, name: str, rows: list[tuple[str, str, int]]) -> Epic:
    stories = tuple(
        Story(f"{number}.{i}", title, done, points)
        for i, (title, done, points) in enumerate(rows, start=1)
    )
    return Epic(number, name, stories)


EPICS: dict[int, Epic] = {
    1: _epic(
        1,
        "Core Learning Infrastructure",
        [
            ("Database Schema and Lecture Upload", "2025-09-04", 5),
            ("Medical Content Processing Pipeline", "2025-09-06", 8),
            ("Basic Authentication and User Profiles", "2025-09-09", 3),
            ("Study Session Tracking", "2025-09-11", 5),
            ("Content Organization and Course Management", "2025-09-13", 3),
            ("Basic Study Dashboard", "2025-09-15", 5),
        ],
    ),
    2: _epic(
        2,
        "Personal Learning GPS",
        [
            ("Learning Objective Extraction from Content", "2025-09-18", 8),
            ("Personal Performance and Weakness Tracking", "2025-09-20", 5),
            ("Intelligent Content Prioritization Algorithm", "2025-09-23", 8),
            ("Daily Mission Generation and Display", "2025-09-25", 5),
            ("Time-Boxed Study Session Orchestration", "2025-09-27", 5),
            ("Mission Performance Analytics and Adaptation", "2025-09-29", 8),
        ],
    ),
    3: _epic(
        3,
        "Knowledge Graph and Semantic Search",
        [
            ("Semantic Search Implementation with Vector Embeddings", "2025-10-01", 8),
            ("Knowledge Graph Construction and Concept Linking", "2025-10-03", 8),
            ("Third-Party Content Integration", "2025-10-05", 5),
            ("Content Conflict Detection and Resolution", "2025-10-07", 5),
            ("Context-Aware Content Recommendations", "2025-10-08", 5),
            ("Advanced Search and Discovery Features", "2025-10-09", 3),
        ],
    ),
    4: _epic(
        4,
        "Understanding Validation Engine",
        [
            ("Natural Language Comprehension Prompts", "2025-10-15", 8),
            ("Clinical Reasoning Scenario Assessment", "2025-10-17", 8),
            ("Controlled Failure and Memory Anchoring", "2025-10-20", 5),
            ("Confidence Calibration and Metacognitive Assessment", "2025-10-22", 5),
            ("Adaptive Questioning and Progressive Assessment", "2025-10-24", 8),
            ("Comprehensive Understanding Analytics", "2025-10-27", 8),
        ],
    ),
    5: _epic(
        5,
        "Behavioral Learning Twin",
        [
            ("Learning Pattern Recognition and Analysis", "", 8),
            ("Predictive Analytics for Learning Struggles", "", 8),
            ("Optimal Study Timing and Session Orchestration", "", 5),
            ("Cognitive Load Monitoring and Stress Detection", "", 5),
            ("Adaptive Gamification and Motivation Optimization", "", 5),
            ("Behavioral Insights Dashboard and Self-Awareness", "", 5),
        ],
    ),
}

DECISIONS: list[tuple[str, str]] = [
    (
        "2025-09-01",
        "Monorepo layout: Next.js web in apps/web (owns the Prisma schema), FastAPI in apps/api.",
    ),
    (
        "2025-09-02",
        "Corrected embedding dimension from 3072 to 1536 (pgvector index limit 2000). "
        "gemini-embedding-001 is called with output_dimensionality=1536; columns are "
        "vector(1536).",
    ),
    (
        "2025-09-17",
        "Objective extraction goes through ChatMock (OpenAI-compatible), not OpenAI directly.",
    ),
    ("2025-09-30", "HNSW (m=16, ef_construction=64) instead of IVFFlat for semantic search."),
    ("2025-10-08", "All server logs pass through the PII-redaction logger (HIPAA/FERPA)."),
    ("2025-10-10", "Released {previous} (Epics 1-3)."),
    (
        "2025-10-13",
        "Epic 4 approved for development: validation, IRT and analytics computations in "
        "Python (apps/api); UI, proxy routes and schema in TypeScript (apps/web).",
    ),
    (
        "2025-10-22",
        "Calibration delta = normalised confidence (1-5 -> 0-100) minus score; +/-15 bands.",
    ),
    ("2025-10-24", "2PL IRT with MAP theta estimate; stop at standard error <= 0.3 or 15 items."),
    ("2025-10-29", "Epic 4 complete (4.1-4.6); release {release} prepared."),
]


@dataclass(frozen=True)
class StatusState:
    """What the status file says at one point in time (variants derive modified copies)."""

    as_of: str
    done_epics: tuple[int, ...]
    backlog_epics: tuple[int, ...]
    omit_done: frozenset[str] = frozenset()
    in_progress: tuple[str, ...] = ()
    previous: str = "v1.3.0"
    release: str = "v1.4.0"


def render_status(state: StatusState) -> str:
    """The BMad workflow status markdown for `state` (layout documented in `fixture`)."""
    done = [
        story
        for number in state.done_epics
        for story in EPICS[number].stories
        if story.id not in state.omit_done
    ]
    current_epic = max(state.done_epics) + 1
    lines = [
        "# BMM Workflow Status",
        "",
        "## Project Configuration",
        "",
        "PROJECT_NAME: Americano",
        "PROJECT_TYPE: software",
        "PROJECT_LEVEL: 3",
        "FIELD_TYPE: greenfield",
        "START_DATE: 2025-08-28",
        "WORKFLOW_PATH: greenfield-level-3.yaml",
        "",
        "## Current State",
        "",
        "CURRENT_PHASE: 4-Implementation",
        "CURRENT_WORKFLOW: story-approved",
        "CURRENT_AGENT: sm",
        f"NEXT_EPIC: Epic {current_epic}",
        f"LAST_UPDATED: {state.as_of}",
        "",
        "## Phase Completion",
        "",
        "- [x] Phase 1: Analysis",
        "- [x] Phase 2: Planning (PRD, epics)",
        "- [x] Phase 3: Solutioning (architecture, tech specs)",
        "- [ ] Phase 4: Implementation",
        "",
        "## Implementation Progress (Phase 4 Only)",
        "",
        "### Backlog (Not Yet Drafted)",
        "",
    ]
    lines += [EPICS[n].backlog_line for n in state.backlog_epics] or ["(empty)"]
    lines += ["", "### TODO (Needs Drafting)", "", "(none)", ""]
    lines += ["### In Progress (Approved for Development)", ""]
    lines += list(state.in_progress) or ["(none)"]
    lines += [
        "",
        "### Done Stories",
        "",
        "| Story ID | File | Completed Date | Points |",
        "| -------- | ---- | -------------- | ------ |",
    ]
    lines += [f"| {s.id} | {s.file} | {s.completed} | {s.points} |" for s in done]
    points = sum(s.points for s in done)
    lines += ["", f"**Total completed:** {len(done)} stories, {points} points", ""]
    lines += ["## Decisions Log", ""]
    for day, text in DECISIONS:
        if day <= state.as_of:
            text = text.format(previous=state.previous, release=state.release)
            lines.append(f"- **{day}**: {text}")
    lines += [
        "",
        "## Next Action",
        "",
        f"Draft the first story of Epic {current_epic} (sm: create-story).",
        "",
    ]
    return "\n".join(lines)


def _story_doc(story: Story, epic: Epic) -> str:
    return (
        f"# Story {story.id}: {story.title}\n\n"
        f"Status: Done ({story.completed})\n\n"
        f"Epic {epic.number}: {epic.name}. Points: {story.points}.\n\n"
        "## Acceptance Criteria\n\n"
        "1. Implemented as described in the epic's tech spec.\n"
        "2. Unit tests added and passing in CI.\n"
    )
