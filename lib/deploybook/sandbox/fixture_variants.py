"""The fixture variants: each commits one realistic mistake on top of the release.

`VARIANTS` maps a name to a function taking the `_Builder`; "good" applies none and
several may be combined. Adding a variant is a new registered function, not a new branch.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta

from .fixture_facts import (
    DATA_DIR,
    FAILING_TESTS,
    LOGGER_FILE,
    MIGRATIONS_DIR,
    PII_REDACTION_FILE,
    RATE_LIMITER_FILE,
    WEB_PACKAGE_JSON,
)
from .fixture_history import RELEASE_COMMIT_AT, _Builder, _story
from .fixture_status import StatusState

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
    """logger.ts keeps the import but its redactPII option now defaults to false."""
    b.edit(
        LOGGER_FILE,
        "redactPII: enablePIIRedaction = true,",
        "redactPII: enablePIIRedaction = false,",
    )
    b.commit("chore: disable log redaction while debugging evaluation prompts")


@_variant("missing-redaction-file")
def _missing_redaction_file(b: _Builder) -> None:
    """logger-pii-redaction.ts deleted (logger.ts still imports it)."""
    b.remove(PII_REDACTION_FILE)
    b.commit("refactor: move PII redaction into shared package")


@_variant("provider-limiters-removed")
def _provider_limiters_removed(b: _Builder) -> None:
    """rate-limiter.ts back to upstream's: route limiters only, nothing guards the providers."""
    text = b.read(RATE_LIMITER_FILE)
    start = text.index("/**\n * External AI providers")
    b.write(RATE_LIMITER_FILE, text[:start].rstrip("\n") + "\n")
    b.commit("refactor: drop provider limiters (quota enforced by the providers)")


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


_SCHEMA = MIGRATIONS_DIR.parent / "schema.prisma"


@_variant("later-fix-ordering")
def _later_fix_ordering(b: _Builder) -> None:
    """An HNSW index migration ordered before the one that gives its column dimensions."""
    b.copy_layer(DATA_DIR / "variants" / "later-fix-ordering")
    b.edit(
        _SCHEMA,
        '  uploadedAt       DateTime            @default(now()) @map("uploaded_at")\n',
        '  uploadedAt       DateTime            @default(now()) @map("uploaded_at")\n'
        '  summaryEmbedding Unsupported("vector(1536)")? @map("summary_embedding")\n',
    )
    b.commit("feat(4.6): lecture summary embeddings for related lectures")


@_variant("schema-drift")
def _schema_drift(b: _Builder) -> None:
    """study_sessions in schema.prisma (made by `prisma db push`), no migration creates it."""
    b.copy_layer(DATA_DIR / "variants" / "schema-drift")
    b.edit(
        _SCHEMA,
        "  predictions UnderstandingPrediction[]\n",
        "  predictions UnderstandingPrediction[]\n  studySessions StudySession[]\n",
    )
    text = b.read(_SCHEMA)
    b.write(
        _SCHEMA,
        text
        + """
model StudySession {
  id        String    @id @default(cuid())
  userId    String    @map("user_id")
  missionId String?   @map("mission_id")
  startedAt DateTime  @default(now()) @map("started_at")
  endedAt   DateTime? @map("ended_at")
  user      User      @relation(fields: [userId], references: [id], onDelete: Cascade)

  @@index([userId, startedAt])
  @@map("study_sessions")
}
""",
    )
    b.commit("feat: study sessions linked to missions and validation responses")


@_variant("missing-extension")
def _missing_extension(b: _Builder) -> None:
    """A migration needs the uuid-ossp extension, which the database server does not have."""
    b.copy_layer(DATA_DIR / "variants" / "missing-extension")
    b.edit(_SCHEMA, "extensions = [vector]", 'extensions = [vector, uuid_ossp(map: "uuid-ossp")]')
    b.commit("feat: study groups with shareable mission links")


@_variant("embedding-dimension-change")
def _embedding_dimension_change(b: _Builder) -> None:
    """A pending migration adds a 768-dimension embedding column (the plan says 1536)."""
    b.copy_layer(DATA_DIR / "variants" / "embedding-dimension-change")
    b.edit(
        _SCHEMA,
        '  embedding  Unsupported("vector(1536)")?\n  chunkIndex',
        '  embedding  Unsupported("vector(1536)")?\n'
        '  embeddingGemini Unsupported("vector(768)")? @map("embedding_gemini")\n  chunkIndex',
    )
    b.commit("feat: Gemini text-embedding-004 vectors for content chunks")


@_variant("hnsw-index-build")
def _hnsw_index_build(b: _Builder) -> None:
    """A pending HNSW index built on content_chunks without CONCURRENTLY (blocks writes)."""
    b.copy_layer(DATA_DIR / "variants" / "hnsw-index-build")
    b.commit("perf(4.6): L2-distance HNSW index for chunk search")


@_variant("ordinary-migration")
def _ordinary_migration(b: _Builder) -> None:
    """One more ordinary pending migration: a nullable column on lectures."""
    b.copy_layer(DATA_DIR / "variants" / "ordinary-migration")
    b.edit(
        _SCHEMA,
        '  uploadedAt       DateTime            @default(now()) @map("uploaded_at")\n',
        '  uploadedAt       DateTime            @default(now()) @map("uploaded_at")\n'
        '  readingMinutes   Int?                @map("reading_minutes")\n',
    )
    b.commit("feat(4.6): estimated reading time per lecture")


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
