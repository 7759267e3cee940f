"""What the fixture Americano checkout declares, for the checks and tests that assert on it.

Paths inside the generated repository, the rate limits in `rate-limiter.ts`, the plan's
Epic 4 change inventory, codebases, test files and references, the tests the
"failing-tests" variant breaks and what each "bad-migrations" folder trips. Pure data:
nothing here touches git or a database.
"""

from __future__ import annotations

from pathlib import Path

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

# The provider limiters the fixture adds to Americano's real rate-limiter.ts (whose own
# three limiters guard routes, not providers): name -> (maxRequests, windowMs, keyPrefix).
PROVIDER_LIMITERS: dict[str, tuple[int, int, str]] = {
    "geminiRateLimiter": (60, 60_000, "gemini"),
    "geminiDailyRateLimiter": (1500, 86_400_000, "gemini-daily"),
    "openaiRateLimiter": (500, 60_000, "openai"),
    "openaiDailyRateLimiter": (10000, 86_400_000, "openai-daily"),
}
# What those limiters let through, per provider quota key (tokens are bounded by none).
RATE_LIMITS: dict[str, dict[str, int]] = {
    "GEMINI": {"requestsPerMinute": 60, "requestsPerDay": 1500},
    "OPENAI": {"requestsPerMinute": 500, "requestsPerDay": 10000},
}

# The plan's paths (../shared/plan/epic-4-deployment-plan.md), which the fixture's story
# commits create, so the sandbox rehearses the inventory production checks.
# Section 2, the change inventory: story -> files that must exist at the release tag.
INVENTORY: dict[str, list[str]] = {
    "4.1": ["apps/api/src/validation/routes.py"],
    "4.2": [
        "apps/api/src/validation/scenario_generator.py",
        "apps/api/src/validation/scenario_evaluator.py",
    ],
    "4.3": ["apps/api/src/challenge/routes.py"],
    "4.4": ["apps/api/src/validation/calibrator.py", "apps/api/src/analytics/routes.py"],
    "4.5": ["apps/api/src/adaptive/irt_engine.py", "apps/api/src/adaptive/question_selector.py"],
    "4.6": [
        "apps/api/src/analytics/QUICK_REFERENCE.md",
        "apps/web/src/lib/mission-analytics-engine.ts",
    ],
}
# Section 1: the codebases (each one's README; the OCR one is Americano's real file).
CODEBASES: list[str] = [
    "apps/web/src/lib/README.md",
    "apps/api/README.md",
    "services/chatmock/README.md",
    "services/ocr-service/README.md",
]
# Section 6: the test files whose suites must show zero failures.
TEST_FILES: list[str] = [
    "apps/web/src/lib/__tests__/embedding-service.test.ts",
    "apps/api/tests/test_e2e_epic4.py",
]
# Section 19: the appendix's references.
REFERENCES: list[str] = [
    "apps/api/tests/test_e2e_epic4.py",
    "apps/api/src/validation/routes.py",
    "apps/api/src/adaptive/irt_engine.py",
    "apps/api/src/challenge/retry_scheduler.py",
    "apps/api/src/analytics/progress_tracker.py",
    "apps/web/src/lib/mission-analytics-engine.ts",
]

AUTHOR = ("Americano Dev", "dev@americano.example")
COMMITTER = ("Americano CI", "ci@americano.example")

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
