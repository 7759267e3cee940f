"""A fixture Americano monorepo, generated as a real git repository, for the sandbox.

Why: every runbook check reads the application's checkout (status file, `.env.example`
files, Prisma migrations, rate limiter, PII-redaction logger, test results, tags). A
generated repository lets a new user rehearse the whole release with no access to the
real one, and lets tests make each check fail by applying one named *variant*.

`create_checkout(dest)` builds, deterministically (fixed authors and dates, so the same
arguments give the same commit SHAs):

* a few commits for Epics 1-3, then the annotated tag `previous` (default v1.3.0);
* one commit per Epic 4 story (`feat(4.1): ...` to `feat(4.6): ...`), a release commit
  (status file, root `package.json` version, `test-results/`), the variant's commits,
  then the annotated tag `release` (default v1.4.0). `main` is checked out at the tag.

The repository content lives as plain files under `fixture/commits/<NN-name>/` (what
each commit adds or replaces) and `fixture/variants/<name>/`, beside this module; a path
component starting with `dot-` is written with a leading `.` (`dot-env.example` ->
`.env.example`) so packaging globs do not drop dotfiles. The status file, the root
`package.json`, story files and JUnit XML are generated here from the data below.

Layouts other modules parse (keep in sync with their parsers):

* `docs/bmm-workflow-status.md` (`STATUS_FILE`): headings `### Backlog (Not Yet Drafted)`,
  `### TODO (Needs Drafting)`, `### In Progress (Approved for Development)`,
  `### Done Stories` holding the table `| Story ID | File | Completed Date | Points |`
  (Story ID like `4.1`, File like `docs/stories/story-4.1.md`, dates `YYYY-MM-DD`,
  integer points), and `## Decisions Log` with lines `- **YYYY-MM-DD**: text`. Backlog
  lines look like `- Epic 5: Stories 5.1-5.6 (Behavioral Learning Twin)`. "Epic 4" is
  also mentioned outside the backlog (decisions log), as in real files.
* `apps/web/src/lib/rate-limiter.ts` (`RATE_LIMITER_FILE`): one block per provider,
  `export const <PROVIDER>_RATE_LIMIT: RateLimitConfig = {` then one `key: <digits>,`
  per line (plain integers, no `_` separators) and a closing `}`; parse with
  `re.finditer(r"export const (\\w+)_RATE_LIMIT\\b[^=]*=\\s*\\{(.*?)\\}", text, re.S)`
  and `re.findall(r"(\\w+):\\s*(\\d+)", body)`. Values are `RATE_LIMITS`. The guard's
  switch is the line `export const RATE_LIMIT_ENABLED = true` (`false` when disabled).
* `apps/web/src/lib/logger.ts` (`LOGGER_FILE`) has
  `import { redactPII } from './logger-pii-redaction'`, the switch
  `export const PII_REDACTION_ENABLED = true` and applies `redactPII(entry)`;
  the redaction itself is `apps/web/src/lib/logger-pii-redaction.ts`.
* `test-results/api-pytest.xml` (pytest's JUnit) and `test-results/web-vitest.xml`
  (vitest's JUnit): all passing, one skipped test in the API suite.

Variants (`VARIANTS`, name -> function; "good" applies none, several may be combined)
each commit one realistic mistake on top of the release before it is tagged.
"""

from __future__ import annotations

import io
import json
import os
import random
import shutil
import subprocess
import tarfile
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

DATA_DIR = Path(__file__).with_name("fixture")
STATUS_FILE = Path("docs/bmm-workflow-status.md")
MIGRATIONS_DIR = Path("apps/web/prisma/migrations")
ENV_EXAMPLES = [Path(".env.example"), Path("apps/web/.env.example"), Path("apps/api/.env.example")]
TEST_RESULTS_DIR = Path("test-results")
RATE_LIMITER_FILE = Path("apps/web/src/lib/rate-limiter.ts")
LOGGER_FILE = Path("apps/web/src/lib/logger.ts")
PII_REDACTION_FILE = Path("apps/web/src/lib/logger-pii-redaction.ts")
WEB_PACKAGE_JSON = Path("apps/web/package.json")
IMPLEMENTATION_GUIDE = Path("docs/epic-4-implementation-guide.md")
EMBEDDING_DIMENSION = 1536
BRANCH = "main"

# What rate-limiter.ts declares (requests/tokens are per minute unless named per day).
RATE_LIMITS: dict[str, dict[str, int]] = {
    "GEMINI": {
        "requestsPerMinute": 60,
        "requestsPerDay": 1500,
        "tokensPerMinute": 1000000,
        "burst": 10,
    },
    "OPENAI": {
        "requestsPerMinute": 500,
        "requestsPerDay": 10000,
        "tokensPerMinute": 200000,
        "burst": 50,
    },
}

# The plan's change inventory for Epic 4: story -> files that must exist at the release tag.
INVENTORY: dict[str, list[str]] = {
    "4.1": ["apps/api/src/validation/routes.py", "apps/api/src/validation/models.py"],
    "4.2": ["apps/api/src/validation/scenarios.py"],
    "4.3": ["apps/api/src/validation/challenge.py"],
    "4.4": ["apps/api/src/validation/calibrator.py", "apps/web/src/lib/confidence-calibrator.ts"],
    "4.5": ["apps/api/src/adaptive/irt_engine.py", "apps/api/src/adaptive/routes.py"],
    "4.6": ["apps/web/src/lib/mission-analytics-engine.ts", "apps/api/src/analytics/routes.py"],
}

AUTHOR = ("Americano Dev", "dev@americano.example")
COMMITTER = ("Americano CI", "ci@americano.example")


# --------------------------------------------------------------------------- stories


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
    """The BMad workflow status markdown for `state` (the layout documented above)."""
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


# ----------------------------------------------------------------------- JUnit XML

API_TESTS: list[tuple[int, str, str]] = [
    (1, "tests.test_health", "test_health_reports_version"),
    (1, "tests.test_health", "test_health_reports_service_name"),
    (4, "tests.test_validation_routes", "test_evaluate_returns_scores"),
    (4, "tests.test_validation_routes", "test_evaluate_returns_calibration_delta"),
    (4, "tests.test_validation_routes", "test_evaluate_502_when_chatmock_down"),
    (4, "tests.test_validation_routes", "test_evaluate_against_real_openai"),
    (4, "tests.test_validation_routes", "test_scenario_metrics_default_range"),
    (4, "tests.test_validation_routes", "test_scenario_metrics_rejects_bad_range"),
    (4, "tests.test_scenarios", "test_score_scenario_all_correct"),
    (4, "tests.test_scenarios", "test_score_scenario_without_stages"),
    (4, "tests.test_challenge", "test_vulnerable_concepts_ordered_by_gap"),
    (4, "tests.test_challenge", "test_retry_schedule_1_3_7_days"),
    (4, "tests.test_calibrator", "test_normalise_confidence_bounds"),
    (4, "tests.test_calibrator", "test_calibrate_overconfident"),
    (4, "tests.test_calibrator", "test_calibrate_underconfident"),
    (4, "tests.test_calibrator", "test_calibration_correlation_needs_five_answers"),
    (4, "tests.test_irt_engine", "test_probability_is_half_at_difficulty"),
    (4, "tests.test_irt_engine", "test_estimate_theta_converges"),
    (4, "tests.test_irt_engine", "test_next_item_maximises_information"),
    (4, "tests.test_irt_engine", "test_should_stop_on_standard_error"),
    (4, "tests.test_adaptive_routes", "test_question_next_returns_irt_metrics"),
    (4, "tests.test_analytics_routes", "test_analytics_health"),
    (4, "tests.test_analytics_routes", "test_dashboard_requires_user_id"),
]
API_SKIPPED = {"test_evaluate_against_real_openai": "requires OPENAI_API_KEY"}

WEB_TESTS: list[tuple[int, str, str]] = [
    (
        2,
        "src/lib/__tests__/rate-limiter.test.ts",
        "TokenBucketRateLimiter > allows a burst up to capacity",
    ),
    (
        2,
        "src/lib/__tests__/rate-limiter.test.ts",
        "TokenBucketRateLimiter > refills at requestsPerMinute",
    ),
    (
        2,
        "src/lib/__tests__/rate-limiter.test.ts",
        "TokenBucketRateLimiter > throws with retryAfterMs",
    ),
    (
        2,
        "src/lib/__tests__/rate-limiter.test.ts",
        "TokenBucketRateLimiter > resets the daily count at UTC midnight",
    ),
    (2, "src/components/__tests__/mission-card.test.tsx", "MissionCard > shows progress"),
    (3, "src/lib/__tests__/logger-pii-redaction.test.ts", "redactPII > redacts emails"),
    (3, "src/lib/__tests__/logger-pii-redaction.test.ts", "redactPII > redacts phone numbers"),
    (3, "src/lib/__tests__/logger-pii-redaction.test.ts", "redactPII > redacts sensitive keys"),
    (
        3,
        "src/lib/__tests__/logger-pii-redaction.test.ts",
        "redactPII > leaves clinical text intact",
    ),
    (3, "src/lib/__tests__/logger.test.ts", "logger > applies redaction to every entry"),
    (
        3,
        "src/app/api/content/search/__tests__/route.test.ts",
        "GET /api/content/search > requires q",
    ),
    (
        3,
        "src/app/api/content/search/__tests__/route.test.ts",
        "GET /api/content/search > returns ranked results",
    ),
    (
        4,
        "src/lib/__tests__/confidence-calibrator.test.ts",
        "calibrationDelta > maps confidence 1-5 to 0-100",
    ),
    (4, "src/lib/__tests__/confidence-calibrator.test.ts", "categorise > uses +/-15 bands"),
    (
        4,
        "src/lib/__tests__/mission-analytics-engine.test.ts",
        "MissionAnalyticsEngine > completion rate over 7 days",
    ),
    (
        4,
        "src/lib/__tests__/mission-analytics-engine.test.ts",
        "MissionAnalyticsEngine > correlation needs 7 missions",
    ),
    (
        4,
        "src/lib/__tests__/mission-analytics-engine.test.ts",
        "MissionAnalyticsEngine > recommends shorter missions",
    ),
]

# The "failing-tests" variant: test name -> (kind, message), both in api-pytest.xml.
FAILING_TESTS: dict[str, tuple[str, str]] = {
    "tests.test_calibrator::test_calibrate_overconfident": (
        "failure",
        "AssertionError: assert 'Well calibrated.' == "
        "'Overconfident: review the gaps before moving on.'",
    ),
    "tests.test_irt_engine::test_estimate_theta_converges": (
        "error",
        'failed on setup with "ZeroDivisionError: float division by zero"',
    ),
}


def _junit_pytest(max_epic: int, when: datetime, broken: Mapping[str, tuple[str, str]]) -> str:
    cases = [(cls, name) for epic, cls, name in API_TESTS if epic <= max_epic]
    counts = {"failure": 0, "error": 0}
    suite = ET.Element("testsuite", name="pytest")
    skipped = 0
    for i, (cls, name) in enumerate(cases):
        case = ET.SubElement(
            suite, "testcase", classname=cls, name=name, time=f"{0.004 + i * 0.003:.3f}"
        )
        key = f"{cls}::{name}"
        if key in broken:
            kind, message = broken[key]
            counts[kind] += 1
            child = ET.SubElement(case, kind, message=message)
            child.text = f"{cls.replace('.', '/')}.py:{12 + i}: {message}"
        elif name in API_SKIPPED:
            skipped += 1
            child = ET.SubElement(case, "skipped", type="pytest.skip", message=API_SKIPPED[name])
            child.text = f"{cls.replace('.', '/')}.py:{12 + i}: {API_SKIPPED[name]}"
    suite.set("errors", str(counts["error"]))
    suite.set("failures", str(counts["failure"]))
    suite.set("skipped", str(skipped))
    suite.set("tests", str(len(cases)))
    suite.set("time", f"{0.8 + len(cases) * 0.05:.3f}")
    suite.set("timestamp", when.isoformat())
    suite.set("hostname", "ci-runner-1")
    root = ET.Element("testsuites", name="pytest tests")
    root.append(suite)
    return _xml(root)


def _junit_vitest(max_epic: int, when: datetime) -> str:
    files: dict[str, list[str]] = {}
    for epic, path, name in WEB_TESTS:
        if epic <= max_epic:
            files.setdefault(path, []).append(name)
    total = sum(len(v) for v in files.values())
    root = ET.Element(
        "testsuites", name="vitest tests", tests=str(total), failures="0", errors="0", time="2.314"
    )
    for path, names in files.items():
        suite = ET.SubElement(
            root,
            "testsuite",
            name=path,
            timestamp=when.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            hostname="ci-runner-1",
            tests=str(len(names)),
            failures="0",
            errors="0",
            skipped="0",
            time=f"{0.002 * len(names):.3f}",
        )
        for i, name in enumerate(names):
            ET.SubElement(
                suite, "testcase", classname=path, name=name, time=f"{0.001 + i * 0.001:.3f}"
            )
    return _xml(root)


def _xml(root: ET.Element) -> str:
    ET.indent(root, space="  ")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


# ------------------------------------------------------------------------- git


def _git_time(when: datetime) -> str:
    """Git's raw date format: unambiguous whatever the git version or locale."""
    return f"@{int(when.timestamp())} +0000"


def _git_env(when: datetime | None = None) -> dict[str, str]:
    """Isolated from the user's git config, with fixed identities (and dates if given)."""
    env = dict(os.environ)
    env.update(
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_CONFIG_NOSYSTEM="1",
        GIT_AUTHOR_NAME=AUTHOR[0],
        GIT_AUTHOR_EMAIL=AUTHOR[1],
        GIT_COMMITTER_NAME=COMMITTER[0],
        GIT_COMMITTER_EMAIL=COMMITTER[1],
        GIT_TERMINAL_PROMPT="0",
        LC_ALL="C",
    )
    if when is not None:
        env["GIT_AUTHOR_DATE"] = env["GIT_COMMITTER_DATE"] = _git_time(when)
    return env


def _git(repo: Path, *args: str, when: datetime | None = None) -> str:
    cmd = ["git", "-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false", *args]
    proc = subprocess.run(cmd, cwd=repo, env=_git_env(when), capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed in {repo}: {proc.stderr.strip()}")
    return proc.stdout


def _at(day: str, hour: int = 17, minute: int = 0) -> datetime:
    return datetime.fromisoformat(day).replace(hour=hour, minute=minute, tzinfo=UTC)


# ------------------------------------------------------------------- checkout


@dataclass
class Checkout:
    """A generated fixture repository and the facts tests and runbooks need about it."""

    path: Path
    previous: str
    release: str
    status_file: Path
    migrations_dir: Path
    env_examples: list[Path]
    applied_at_previous: list[str]
    pending: list[str]
    loose_sql: list[str] = field(default_factory=list)
    variants: tuple[str, ...] = ()
    branch: str = BRANCH

    def git(self, *args: str) -> str:
        """Run git in the checkout (isolated config); returns stdout."""
        return _git(self.path, *args)

    def sha(self, ref: str) -> str:
        """The commit SHA a ref (tag, branch, `HEAD~1`) points at."""
        return self.git("rev-parse", f"{ref}^{{commit}}").strip()

    def read_at(self, ref: str, rel: str | Path) -> str:
        """A file's text as of `ref` (e.g. the status file at the previous tag)."""
        return self.git("show", f"{ref}:{Path(rel).as_posix()}")

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (for daemon configs and scraps)."""
        return {
            "path": str(self.path),
            "previous": self.previous,
            "release": self.release,
            "status_file": self.status_file.as_posix(),
            "migrations_dir": str(self.migrations_dir),
            "env_examples": [p.as_posix() for p in self.env_examples],
            "applied_at_previous": list(self.applied_at_previous),
            "pending": list(self.pending),
            "loose_sql": list(self.loose_sql),
            "variants": list(self.variants),
            "branch": self.branch,
        }


class _Builder:
    """Writes files and commits them in the repository being generated."""

    def __init__(self, path: Path, previous: str, release: str) -> None:
        self.path = path
        self.previous = previous
        self.release = release
        self.clock = _at("2025-09-01", 9)
        self.status = StatusState(
            "2025-10-29", (1, 2, 3, 4), (5,), previous=previous, release=release
        )

    def git(self, *args: str, when: datetime | None = None) -> str:
        return _git(self.path, *args, when=when)

    def write(self, rel: str | Path, text: str) -> None:
        target = self.path / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")

    def read(self, rel: str | Path) -> str:
        return (self.path / rel).read_text(encoding="utf-8")

    def edit(self, rel: str | Path, old: str, new: str) -> None:
        """Replace text that must be there (a silent no-op would hide a broken variant)."""
        text = self.read(rel)
        if old not in text:
            raise RuntimeError(f"fixture edit: {old!r} not found in {rel}")
        self.write(rel, text.replace(old, new))

    def remove(self, rel: str | Path) -> None:
        (self.path / rel).unlink()

    def copy_layer(self, layer: Path) -> None:
        """Copy a data folder into the repo, mapping `dot-` name prefixes to `.`."""
        for src in sorted(layer.rglob("*")):
            if src.is_dir() or "__pycache__" in src.parts or src.suffix == ".pyc":
                continue
            parts = [
                ("." + p[4:]) if p.startswith("dot-") else p for p in src.relative_to(layer).parts
            ]
            target = self.path.joinpath(*parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, target)

    def commit(self, message: str, when: datetime | None = None) -> None:
        when = when or self.tick()
        self.clock = max(self.clock, when)
        self.git("add", "-A")
        self.git("commit", "-q", "-m", message, when=when)

    def tick(self, minutes: int = 20) -> datetime:
        self.clock += timedelta(minutes=minutes)
        return self.clock

    def tag(self, name: str, message: str, when: datetime) -> None:
        self.clock = max(self.clock, when)
        self.git("tag", "-a", name, "-m", message, when=self.clock)

    def root_package_json(self, version: str) -> None:
        data = {
            "name": "americano",
            "version": version.removeprefix("v"),
            "private": True,
            "packageManager": "pnpm@9.12.0",
            "workspaces": ["apps/*"],
            "scripts": {
                "dev": "pnpm --filter web dev",
                "build": "pnpm --filter web build",
                "test": "pnpm --filter web test && cd apps/api && pytest",
                "test:ci": "pnpm --filter web test:ci && cd apps/api && "
                "pytest --junitxml=../../test-results/api-pytest.xml",
            },
        }
        self.write("package.json", json.dumps(data, indent=2) + "\n")

    def test_results(
        self, max_epic: int, when: datetime, broken: Mapping[str, tuple[str, str]] = {}
    ) -> None:
        self.write(TEST_RESULTS_DIR / "api-pytest.xml", _junit_pytest(max_epic, when, broken))
        self.write(TEST_RESULTS_DIR / "web-vitest.xml", _junit_vitest(max_epic, when))

    def write_status(self, state: StatusState) -> None:
        self.status = state
        self.write(STATUS_FILE, render_status(state))


@dataclass(frozen=True)
class _Step:
    """One commit of the base history: a data folder plus its message and date."""

    layer: str
    message: str
    when: datetime
    stories: tuple[str, ...] = ()


BEFORE_PREVIOUS = [
    _Step(
        "01-scaffold",
        "chore: scaffold Americano monorepo (Next.js web, FastAPI api)",
        _at("2025-09-01", 9),
    ),
    _Step(
        "02-story-1.1", "feat(1.1): database schema with pgvector content chunks", _at("2025-09-04")
    ),
    _Step(
        "03-story-2.1", "feat(2.1): learning objective extraction via ChatMock", _at("2025-09-18")
    ),
    _Step("04-story-2.4", "feat(2.4): daily mission generation and display", _at("2025-09-25")),
    _Step("05-story-3.1", "feat(3.1): semantic search with HNSW vector indexes", _at("2025-10-01")),
    _Step(
        "06-pii-logger", "chore(security): structured logger with PII redaction", _at("2025-10-08")
    ),
]
AFTER_PREVIOUS = [
    _Step(
        "07-story-4.1",
        "feat(4.1): natural language comprehension prompts and evaluation",
        _at("2025-10-15"),
        ("4.1",),
    ),
    _Step(
        "08-story-4.2",
        "feat(4.2): clinical reasoning scenario assessment",
        _at("2025-10-17"),
        ("4.2",),
    ),
    _Step(
        "09-story-4.3",
        "feat(4.3): controlled failure and memory anchoring",
        _at("2025-10-20"),
        ("4.3",),
    ),
    _Step(
        "10-story-4.4",
        "feat(4.4): confidence calibration and metacognitive assessment",
        _at("2025-10-22"),
        ("4.4",),
    ),
    _Step("11-story-4.5", "feat(4.5): adaptive questioning with IRT", _at("2025-10-24"), ("4.5",)),
    _Step(
        "12-story-4.6",
        "feat(4.6): comprehensive understanding analytics",
        _at("2025-10-27", 18),
        ("4.6",),
    ),
]
PREVIOUS_RELEASE_AT = _at("2025-10-10", 15)
RELEASE_COMMIT_AT = _at("2025-10-29", 10)
RELEASE_TAG_AT = _at("2025-10-30", 9)


def _story(story_id: str) -> tuple[Story, Epic]:
    epic = EPICS[int(story_id.split(".")[0])]
    return next(s for s in epic.stories if s.id == story_id), epic


def _apply_step(b: _Builder, step: _Step) -> None:
    b.copy_layer(DATA_DIR / "commits" / step.layer)
    if step.layer == "01-scaffold":
        b.root_package_json("v0.1.0")
    for story_id in step.stories:
        story, epic = _story(story_id)
        b.write(story.file, _story_doc(story, epic))
    b.commit(step.message, step.when)


# ----------------------------------------------------------------- variants

Variant = Callable[[_Builder], None]
VARIANTS: dict[str, Variant] = {}


def _variant(name: str) -> Callable[[Variant], Variant]:
    def register(fn: Variant) -> Variant:
        VARIANTS[name] = fn
        return fn

    return register


@_variant("epic-in-backlog")
def _epic_in_backlog(b: _Builder) -> None:
    """Epic 4 still listed under the backlog, and 4.6 missing from Done."""
    s = b.status
    b.write_status(
        StatusState(
            s.as_of,
            s.done_epics,
            (4, *s.backlog_epics),
            frozenset({"4.6"}),
            s.in_progress,
            s.previous,
            s.release,
        )
    )
    b.commit("docs: sync workflow status from planning board")


@_variant("story-missing")
def _story_missing(b: _Builder) -> None:
    """4.6 is still in review: not in the Done table (the epic is not in the backlog)."""
    s = b.status
    story, _ = _story("4.6")
    b.write_status(
        StatusState(
            s.as_of,
            s.done_epics,
            s.backlog_epics,
            frozenset({"4.6"}),
            (f"- Story 4.6: {story.title} ({story.file}) - in review",),
            s.previous,
            s.release,
        )
    )
    b.commit("docs: story 4.6 back to review")


@_variant("failing-tests")
def _failing_tests(b: _Builder) -> None:
    """The API suite has one failure and one error (test-results/api-pytest.xml)."""
    b.test_results(4, RELEASE_COMMIT_AT + timedelta(hours=2), FAILING_TESTS)
    b.commit("ci: record test results for the release candidate")


@_variant("missing-inventory-file")
def _missing_inventory_file(b: _Builder) -> None:
    """apps/api/src/adaptive/irt_engine.py deleted at the release (inventory of 4.5)."""
    b.remove("apps/api/src/adaptive/irt_engine.py")
    b.commit("refactor(4.5): drop unused IRT engine module")


@_variant("epic5-leak")
def _epic5_leak(b: _Builder) -> None:
    """Epic 5 work merged early: a pending `..._epic5_...` migration and a feat(5.1) commit."""
    b.copy_layer(DATA_DIR / "variants" / "epic5-leak")
    b.commit("feat(5.1): learning pattern recognition groundwork")


@_variant("pii-logger-disabled")
def _pii_logger_disabled(b: _Builder) -> None:
    """logger.ts keeps the import but switches redaction off."""
    b.edit(
        LOGGER_FILE,
        "export const PII_REDACTION_ENABLED = true",
        "export const PII_REDACTION_ENABLED = false",
    )
    b.commit("chore: disable log redaction while debugging evaluation prompts")


@_variant("missing-redaction-file")
def _missing_redaction_file(b: _Builder) -> None:
    """logger-pii-redaction.ts deleted (logger.ts still imports it)."""
    b.remove(PII_REDACTION_FILE)
    b.commit("refactor: move PII redaction into shared package")


@_variant("rate-limit-disabled")
def _rate_limit_disabled(b: _Builder) -> None:
    """The rate-limit guard is switched off."""
    b.edit(
        RATE_LIMITER_FILE,
        "export const RATE_LIMIT_ENABLED = true",
        "export const RATE_LIMIT_ENABLED = false",
    )
    b.commit("perf: bypass rate limiter for load testing")


@_variant("tailwind-animate-dependency")
def _tailwind_animate_dependency(b: _Builder) -> None:
    """tailwindcss-animate moved into apps/web production dependencies."""
    data = json.loads(b.read(WEB_PACKAGE_JSON))
    version = data["devDependencies"].pop("tailwindcss-animate")
    data["dependencies"]["tailwindcss-animate"] = version
    data["dependencies"] = dict(sorted(data["dependencies"].items()))
    b.write(WEB_PACKAGE_JSON, json.dumps(data, indent=2) + "\n")
    b.commit("build(web): tailwindcss-animate as runtime dependency")


@_variant("gradient-utilities")
def _gradient_utilities(b: _Builder) -> None:
    """A gradient utility class in the web sources (the design system forbids them)."""
    b.edit(
        "apps/web/src/components/mission-card.tsx",
        "'rounded-xl border bg-card p-6 shadow-sm'",
        "'rounded-xl border bg-gradient-to-r from-sky-500 to-indigo-500 p-6 shadow-sm'",
    )
    b.commit("style(web): brighter mission card")


@_variant("edited-migration")
def _edited_migration(b: _Builder) -> None:
    """An already-applied migration edited after the previous release (checksum mismatch)."""
    rel = MIGRATIONS_DIR / "20250930101500_vector_indexes" / "migration.sql"
    b.edit(rel, "ef_construction = 64", "ef_construction = 128")
    b.commit("perf: higher HNSW ef_construction")


@_variant("commit-in-freeze")
def _commit_in_freeze(b: _Builder) -> None:
    """A commit dated now (inside any freeze window that starts in the past 24 h)."""
    b.edit("README.md", "# Americano\n", "# Americano\n\n> Release candidate: do not merge.\n")
    b.commit("docs: release banner", datetime.now(UTC).replace(microsecond=0))


@_variant("bad-migrations")
def _bad_migrations(b: _Builder) -> None:
    """The dry-run trouble corpus, pending at the release (see BAD_MIGRATIONS)."""
    b.copy_layer(DATA_DIR / "variants" / "bad-migrations")
    b.commit("chore(db): merge migrations from feature branches")


# What each "bad-migrations" folder is meant to trip (folder name -> trouble).
BAD_MIGRATIONS: dict[str, str] = {
    "20251028090000_content_chunk_page_index": "CREATE INDEX CONCURRENTLY: not in a transaction",
    "20251028091000_full_dimension_embeddings": "ivfflat index on vector(3072): over 2000 dims",
    "20251028092000_objective_prerequisite_links": "needs objective_prerequisites, created later",
    "20251028093000_objective_prerequisites": "creates the table an earlier migration needs",
    "20251028094000_mission_notes": "same timestamp as 20251028094000_mission_tags",
    "20251028094000_mission_tags": "same timestamp as 20251028094000_mission_notes",
    "20251028095000_clinic_locations": "CREATE EXTENSION postgis: not available on the server",
    "add_study_streaks": "folder name without the 14-digit timestamp",
}


def variant_descriptions() -> dict[str, str]:
    """Variant name -> what it breaks (first docstring line), for CLIs and reports."""
    return {
        name: (fn.__doc__ or "").strip().splitlines()[0] for name, fn in sorted(VARIANTS.items())
    }


def _variant_names(variant: str | Iterable[str]) -> tuple[str, ...]:
    names = [variant] if isinstance(variant, str) else list(variant)
    names = [
        n.strip() for part in names for n in part.split(",") if n.strip() and n.strip() != "good"
    ]
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        raise ValueError(
            f"unknown fixture variant(s) {unknown}; known: good, {', '.join(sorted(VARIANTS))}"
        )
    return tuple(dict.fromkeys(names))


# ------------------------------------------------------------------ public API


def create_checkout(
    dest: Path | str,
    *,
    previous: str = "v1.3.0",
    release: str = "v1.4.0",
    variant: str | Iterable[str] = "good",
) -> Checkout:
    """Generate the fixture repository in `dest` (missing or empty) and describe it.

    `variant` is "good", one name from `VARIANTS`, a comma-separated list or an iterable.
    """
    names = _variant_names(variant)
    if previous == release:
        raise ValueError(f"previous and release must differ (both {previous!r})")
    dest = Path(dest).resolve()
    if dest.exists() and any(dest.iterdir()):
        raise FileExistsError(f"fixture destination {dest} is not empty")
    dest.mkdir(parents=True, exist_ok=True)
    b = _Builder(dest, previous, release)
    b.git("init", "-q", "-b", BRANCH)

    for step in BEFORE_PREVIOUS:
        _apply_step(b, step)
    for number in (1, 2, 3):
        for story in EPICS[number].stories:
            b.write(story.file, _story_doc(story, EPICS[number]))
    b.write_status(StatusState("2025-10-10", (1, 2, 3), (4, 5), previous=previous, release=release))
    b.root_package_json(previous)
    b.test_results(3, PREVIOUS_RELEASE_AT - timedelta(hours=1))
    b.commit(f"chore(release): {previous}", PREVIOUS_RELEASE_AT)
    b.tag(previous, f"Release {previous}: Epics 1-3", PREVIOUS_RELEASE_AT + timedelta(hours=1))

    for step in AFTER_PREVIOUS:
        _apply_step(b, step)
    b.write_status(
        StatusState("2025-10-29", (1, 2, 3, 4), (5,), previous=previous, release=release)
    )
    b.root_package_json(release)
    b.test_results(4, RELEASE_COMMIT_AT - timedelta(hours=1))
    b.commit(f"chore(release): {release}", RELEASE_COMMIT_AT)

    for name in names:
        VARIANTS[name](b)
    b.tag(
        release,
        f"Release {release}: Epic 4 Understanding Validation Engine (4.1-4.6)",
        RELEASE_TAG_AT,
    )
    return describe(dest, previous=previous, release=release, variants=names)


def describe(
    path: Path | str,
    *,
    previous: str = "v1.3.0",
    release: str = "v1.4.0",
    variants: tuple[str, ...] = (),
) -> Checkout:
    """The `Checkout` facts of an existing fixture repository (read from git, not assumed)."""
    path = Path(path).resolve()
    rel = MIGRATIONS_DIR.as_posix()

    def entries(ref: str) -> tuple[set[str], set[str]]:
        out = _git(path, "ls-tree", ref, f"{rel}/")
        dirs, files = set(), set()
        for line in out.splitlines():
            meta, name = line.split("\t", 1)
            (dirs if meta.split()[1] == "tree" else files).add(name.rsplit("/", 1)[-1])
        return dirs, files

    prev_dirs, _ = entries(previous)
    rel_dirs, rel_files = entries(release)
    return Checkout(
        path=path,
        previous=previous,
        release=release,
        status_file=STATUS_FILE,
        migrations_dir=path / MIGRATIONS_DIR,
        env_examples=list(ENV_EXAMPLES),
        applied_at_previous=sorted(prev_dirs),
        pending=sorted(rel_dirs - prev_dirs),
        loose_sql=sorted(f for f in rel_files if f.endswith(".sql")),
        variants=variants,
    )


def add_commit(
    checkout: Checkout,
    changes: Mapping[str, str | None],
    message: str,
    *,
    when: datetime | None = None,
) -> str:
    """Commit file changes (path -> text, or None to delete) on the checked-out branch.

    For tests that need a history the variants do not cover (e.g. a commit on main after
    the release tag). `when` defaults to now. Returns the new commit's SHA.
    """
    for rel, text in changes.items():
        target = checkout.path / rel
        if text is None:
            target.unlink()
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
    when = when or datetime.now(UTC).replace(microsecond=0)
    _git(checkout.path, "add", "-A")
    _git(checkout.path, "commit", "-q", "-m", message, when=when)
    return checkout.sha("HEAD")


def migrations_at(
    checkout: Checkout | Path | str, tag: str, dest: Path | str | None = None
) -> Path:
    """Materialise the migrations folder as of `tag` (e.g. what the previous release applied).

    `checkout` is a `Checkout` or the repository's path. The folder's content (migration
    folders, `migration_lock.toml`, loose `.sql`) is extracted directly into `dest`,
    which is returned; by default `dest` is a new temporary directory that the caller
    removes with `shutil.rmtree(result)`.
    """
    if isinstance(checkout, Checkout):
        repo, rel = checkout.path, checkout.migrations_dir.relative_to(checkout.path)
    else:
        repo, rel = Path(checkout), MIGRATIONS_DIR
    out = Path(dest) if dest is not None else Path(tempfile.mkdtemp(prefix=f"migrations-{tag}-"))
    out.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        ["git", "archive", "--format=tar", f"{tag}:{rel.as_posix()}"],
        cwd=repo,
        env=_git_env(),
        capture_output=True,
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"git archive {tag}:{rel.as_posix()} failed in {repo}: "
            f"{proc.stderr.decode(errors='replace').strip()}"
        )
    with tarfile.open(fileobj=io.BytesIO(proc.stdout)) as archive:
        archive.extractall(out, filter="data")
    return out


# ---------------------------------------------------------------------- seed

_COURSES = [("Gross Anatomy", "ANAT 501"), ("Medical Physiology", "PHYS 502")]
_LECTURES = [
    "Upper Limb: Brachial Plexus",
    "Cardiac Cycle and Pressure-Volume Loops",
    "Thorax: Mediastinum",
    "Renal Physiology: Glomerular Filtration",
    "Lower Limb: Femoral Triangle",
    "Respiratory Mechanics",
    "Head and Neck: Cranial Nerves",
    "Acid-Base Balance",
]
_CONCEPTS = [
    "Brachial plexus",
    "Cardiac output",
    "Stroke volume",
    "Frank-Starling mechanism",
    "Glomerular filtration rate",
    "Renal clearance",
    "Tidal volume",
    "Compliance",
    "Surfactant",
    "Anion gap",
    "Metabolic acidosis",
    "Respiratory alkalosis",
    "Femoral triangle",
    "Inguinal ligament",
    "Mediastinum",
    "Pericardium",
    "Vagus nerve",
    "Facial nerve",
    "Trigeminal nerve",
    "Carpal tunnel",
    "Rotator cuff",
    "Preload",
    "Afterload",
    "Ejection fraction",
    "Baroreceptor reflex",
    "Renin-angiotensin system",
    "Loop of Henle",
    "Countercurrent multiplier",
    "Oxygen dissociation curve",
    "Dead space",
    "Ventilation-perfusion ratio",
    "Henderson-Hasselbalch equation",
    "Bicarbonate buffer",
    "Sciatic nerve",
    "Popliteal fossa",
    "Thoracic duct",
    "Phrenic nerve",
    "Azygos vein",
    "Circle of Willis",
    "Cavernous sinus",
    "Parotid gland",
    "Hypoglossal nerve",
    "Sinoatrial node",
    "Atrioventricular node",
    "Purkinje fibres",
    "Starling forces",
    "Juxtaglomerular apparatus",
    "Aldosterone",
    "Antidiuretic hormone",
    "Haldane effect",
]
_SENTENCES = [
    "The {c} is examined in the context of {l}.",
    "Clinical correlation: injury to the {c} presents with characteristic deficits.",
    "Board-style question stems frequently test the {c} alongside related structures.",
    "Key relationships of the {c} are summarised in the lecture's final table.",
]
_SEED_TIME = datetime(2025, 9, 5, 12, 0, tzinfo=UTC)


def _unit_vector(rng: random.Random, dimension: int) -> str:
    """A random unit vector as pgvector's text literal, short enough to load fast."""
    values = [rng.gauss(0.0, 1.0) for _ in range(dimension)]
    norm = sum(v * v for v in values) ** 0.5 or 1.0
    return "[" + ",".join(f"{v / norm:.5f}" for v in values) + "]"


def seed(
    conn_or_url: Any,
    *,
    chunks: int = 200,
    concepts: int = 50,
    seed: int = 42,
    users: int = 5,
) -> dict[str, int]:
    """Insert deterministic demo rows (users, courses, lectures, objectives, chunks, concepts).

    Why: backups, restore verification, vector-dimension checks and the analytics
    smoke test need real `vector(1536)` rows. Works on the schema of the previous
    release and later. Idempotent (ON CONFLICT DO NOTHING on fixed ids), so a restarted
    sandbox can seed again. Given a URL it connects and commits; given a psycopg
    connection it runs in `conn.transaction()` (the caller commits a non-autocommit
    connection). Returns the number of rows inserted per table.
    """
    import psycopg

    if isinstance(conn_or_url, str):
        with psycopg.connect(conn_or_url) as conn:
            return _seed(conn, chunks, concepts, seed, users)
    return _seed(conn_or_url, chunks, concepts, seed, users)


def _seed(conn: Any, chunks: int, concepts: int, seed: int, users: int) -> dict[str, int]:
    user_rows = [
        (
            f"seed-user-{i:02d}",
            f"learner{i:02d}@americano.example",
            f"Learner {i:02d}",
            _SEED_TIME,
            _SEED_TIME,
        )
        for i in range(1, users + 1)
    ]
    owner = user_rows[0][0]
    course_rows = [
        (f"seed-course-{i:02d}", owner, n, code, _SEED_TIME)
        for i, (n, code) in enumerate(_COURSES, 1)
    ]
    lecture_rows = [
        (
            f"seed-lecture-{i:02d}",
            course_rows[(i - 1) % len(course_rows)][0],
            title,
            f"lecture-{i:02d}.pdf",
            "COMPLETED",
            _SEED_TIME,
        )
        for i, title in enumerate(_LECTURES, 1)
    ]
    objective_rows = [
        (
            f"seed-objective-{i:02d}-{k}",
            lid,
            f"Explain the key concepts of {title.lower()} ({k}).",
            ("BASIC", "INTERMEDIATE", "ADVANCED")[(i + k) % 3],
            k == 1,
            ["USMLE Step 1"],
            _SEED_TIME,
        )
        for i, (lid, _, title, *_rest) in enumerate(lecture_rows, 1)
        for k in (1, 2)
    ]
    concept_rows = []
    for i in range(concepts):
        base = _CONCEPTS[i % len(_CONCEPTS)]
        name = base if i < len(_CONCEPTS) else f"{base} ({i // len(_CONCEPTS) + 1})"
        concept_rows.append(
            (
                f"seed-concept-{i + 1:04d}",
                name,
                f"Definition and clinical relevance of {name.lower()}.",
                "anatomy" if i % 2 else "physiology",
                _unit_vector(random.Random(f"{seed}:concept:{i}"), EMBEDDING_DIMENSION),
                _SEED_TIME,
            )
        )
    chunk_rows = []
    for i in range(chunks):
        lecture = lecture_rows[i % len(lecture_rows)]
        rng = random.Random(f"{seed}:chunk:{i}")  # row i is the same whatever the counts
        concept = _CONCEPTS[rng.randrange(len(_CONCEPTS))]
        text = _SENTENCES[i % len(_SENTENCES)].format(c=concept.lower(), l=lecture[2])
        chunk_rows.append(
            (
                f"seed-chunk-{i + 1:05d}",
                lecture[0],
                text,
                _unit_vector(rng, EMBEDDING_DIMENSION),
                i // len(lecture_rows),
                1 + i // len(lecture_rows),
                _SEED_TIME,
            )
        )

    counts: dict[str, int] = {}
    with conn.transaction(), conn.cursor() as cur:

        def many(table: str, columns: str, rows: list[tuple]) -> None:
            marks = ", ".join(["%s"] * len(rows[0])) if rows else ""
            total = 0
            for row in rows:
                cur.execute(
                    f'INSERT INTO "{table}" ({columns}) VALUES ({marks}) ON CONFLICT DO NOTHING',
                    row,
                )
                total += cur.rowcount
            counts[table] = total

        many("users", '"id", "email", "name", "created_at", "updated_at"', user_rows)
        many("courses", '"id", "user_id", "name", "code", "created_at"', course_rows)
        many(
            "lectures",
            '"id", "course_id", "title", "file_name", "processing_status", "uploaded_at"',
            lecture_rows,
        )
        many(
            "learning_objectives",
            '"id", "lecture_id", "objective", "complexity", "is_high_yield", '
            '"board_exam_tags", "created_at"',
            objective_rows,
        )
        for table, columns, rows in (
            (
                "concepts",
                ["id", "name", "description", "category", "embedding", "created_at"],
                concept_rows,
            ),
            (
                "content_chunks",
                [
                    "id",
                    "lecture_id",
                    "content",
                    "embedding",
                    "chunk_index",
                    "page_number",
                    "created_at",
                ],
                chunk_rows,
            ),
        ):
            counts[table] = _copy_vectors(cur, table, columns, rows)
    return counts


def _copy_vectors(cur: Any, table: str, columns: list[str], rows: list[tuple]) -> int:
    """COPY into a temp table (fast), then insert what is new with vectors cast to 1536 dims."""
    staging = f"_seed_{table}"
    cols = ", ".join(f'"{c}"' for c in columns)
    cur.execute(f"DROP TABLE IF EXISTS pg_temp.{staging}")
    cur.execute(
        f'CREATE TEMP TABLE {staging} AS SELECT {cols} FROM "{table}" WITH NO DATA'.replace(
            '"embedding"', '"embedding"::text AS "embedding"', 1
        )
    )
    with cur.copy(f"COPY {staging} ({cols}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
    select = cols.replace('"embedding"', f'"embedding"::vector({EMBEDDING_DIMENSION})', 1)
    cur.execute(
        f'INSERT INTO "{table}" ({cols}) SELECT {select} FROM {staging} ON CONFLICT DO NOTHING'
    )
    inserted = cur.rowcount
    cur.execute(f"DROP TABLE {staging}")
    return inserted
