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
`package.json`, story files and JUnit XML are generated from the data in
`fixture_status`, `fixture_junit` and `fixture_history`.

Layouts other modules parse (keep in sync with their parsers):

* `docs/bmm-workflow-status.md` (`STATUS_FILE`): headings `### Backlog (Not Yet Drafted)`,
  `### TODO (Needs Drafting)`, `### In Progress (Approved for Development)`,
  `### Done Stories` holding the table `| Story ID | File | Completed Date | Points |`
  (Story ID like `4.1`, File like `docs/stories/story-4.1.md`, dates `YYYY-MM-DD`,
  integer points), and `## Decisions Log` with lines `- **YYYY-MM-DD**: text`. Backlog
  lines look like `- Epic 5: Stories 5.1-5.6 (Behavioral Learning Twin)`. "Epic 4" is
  also mentioned outside the backlog (decisions log), as in real files.
* `apps/web/src/lib/rate-limiter.ts` (`RATE_LIMITER_FILE`): Americano's real file (a
  generic `RateLimiter` class, `searchRateLimiter` 60/min, `autocompleteRateLimiter`
  120/min, `exportRateLimiter` 10/h) plus one edit: provider limiters of the same shape,
  `export const geminiRateLimiter = new RateLimiter({ maxRequests, windowMs, keyPrefix })`
  (`PROVIDER_LIMITERS`; what they let through per quota key is `RATE_LIMITS`).
* `apps/web/src/lib/logger.ts` (`LOGGER_FILE`) and `logger-pii-redaction.ts`
  (`PII_REDACTION_FILE`): Americano's real files — the logger imports `redactPII` and
  applies it unless its `redactPII` option (`redactPII: enablePIIRedaction = true`)
  defaults to false.
* `test-results/api-pytest.xml` (pytest's JUnit) and `test-results/web-vitest.xml`
  (vitest's JUnit): all passing, one skipped test in the API suite.

Variants (`VARIANTS`, name -> function; "good" applies none, several may be combined)
each commit one realistic mistake on top of the release before it is tagged.

This module is the public face (the git side: `create_checkout`, `describe`, `Checkout`,
`add_commit`, `migrations_at`) and re-exports the rest, which lives by concern in
`fixture_facts` (paths and declared values), `fixture_status` (epics, stories, status
file), `fixture_junit` (test results), `fixture_history` (git plumbing, builder, base
commits), `fixture_variants` (`VARIANTS`) and `fixture_seed` (`seed`, demo database rows).
"""

from __future__ import annotations

import io
import subprocess
import tarfile
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from .fixture_facts import (
    AUTHOR,
    BAD_MIGRATIONS,
    BRANCH,
    CODEBASES,
    COMMITTER,
    DATA_DIR,
    EMBEDDING_DIMENSION,
    ENV_EXAMPLES,
    FAILING_TESTS,
    IMPLEMENTATION_GUIDE,
    INVENTORY,
    LOGGER_FILE,
    MIGRATIONS_DIR,
    PII_REDACTION_FILE,
    PROVIDER_LIMITERS,
    RATE_LIMITER_FILE,
    RATE_LIMITS,
    REFERENCES,
    STATUS_FILE,
    TEST_FILES,
    TEST_RESULTS_DIR,
    WEB_PACKAGE_JSON,
)
from .fixture_history import (
    AFTER_PREVIOUS,
    BEFORE_PREVIOUS,
    PREVIOUS_RELEASE_AT,
    RELEASE_COMMIT_AT,
    RELEASE_TAG_AT,
    _apply_step,
    _Builder,
    _git,
    _git_env,
)
from .fixture_junit import API_SKIPPED, API_TESTS, WEB_TESTS
from .fixture_junit import _junit_pytest as _junit_pytest
from .fixture_junit import _junit_vitest as _junit_vitest
from .fixture_seed import seed
from .fixture_status import DECISIONS, EPICS, Epic, StatusState, Story, _story_doc, render_status
from .fixture_variants import VARIANTS, Variant, _variant_names, variant_descriptions

__all__ = [
    "AFTER_PREVIOUS",
    "API_SKIPPED",
    "API_TESTS",
    "AUTHOR",
    "BAD_MIGRATIONS",
    "BEFORE_PREVIOUS",
    "BRANCH",
    "CODEBASES",
    "COMMITTER",
    "DATA_DIR",
    "DECISIONS",
    "EMBEDDING_DIMENSION",
    "ENV_EXAMPLES",
    "EPICS",
    "FAILING_TESTS",
    "IMPLEMENTATION_GUIDE",
    "INVENTORY",
    "LOGGER_FILE",
    "MIGRATIONS_DIR",
    "PII_REDACTION_FILE",
    "PREVIOUS_RELEASE_AT",
    "RATE_LIMITER_FILE",
    "PROVIDER_LIMITERS",
    "RATE_LIMITS",
    "REFERENCES",
    "RELEASE_COMMIT_AT",
    "RELEASE_TAG_AT",
    "STATUS_FILE",
    "TEST_FILES",
    "TEST_RESULTS_DIR",
    "VARIANTS",
    "WEB_PACKAGE_JSON",
    "WEB_TESTS",
    "Checkout",
    "Epic",
    "StatusState",
    "Story",
    "Variant",
    "add_commit",
    "create_checkout",
    "describe",
    "migrations_at",
    "render_status",
    "seed",
    "variant_descriptions",
]


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
