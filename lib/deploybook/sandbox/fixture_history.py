"""Writing the fixture repository's history: isolated git, the builder, the base commits.

Fixed identities and dates make the same arguments give the same commit SHAs. The base
history is one commit per data folder under `fixture/commits/`; variants
(`fixture_variants`) add theirs through the same `_Builder`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from .fixture_facts import AUTHOR, COMMITTER, DATA_DIR, STATUS_FILE, TEST_RESULTS_DIR
from .fixture_junit import _junit_pytest, _junit_vitest
from .fixture_status import EPICS, Epic, StatusState, Story, _story_doc, render_status


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
        """Copy a data folder into the repo, mapping `dot-` name prefixes to `.`.

        A script (its first bytes ``#!``) is made executable, whatever mode the installed
        data file has, so git commits it as 100755 (``./ops/release.sh`` must run).
        """
        for src in sorted(layer.rglob("*")):
            if src.is_dir() or "__pycache__" in src.parts or src.suffix == ".pyc":
                continue
            parts = [
                ("." + p[4:]) if p.startswith("dot-") else p for p in src.relative_to(layer).parts
            ]
            target = self.path.joinpath(*parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, target)
            with src.open("rb") as head:
                if head.read(2) == b"#!":
                    target.chmod(0o755)

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
