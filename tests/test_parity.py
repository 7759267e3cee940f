"""Parity by names, isolation by comparison: values are never shown, fingerprints never kept."""

from __future__ import annotations

from pathlib import Path

import pytest

from deploybook.checkout import ratelimits
from deploybook.checkout import sources as appsource
from deploybook.core.checks import Status
from deploybook.errors import ConfigError
from deploybook.runbooks.preconditions.observed import dotenv_names, listing_names
from deploybook.runbooks.preconditions.parity import (
    database_identity,
    judge_databases,
    judge_keys,
    judge_parity,
    judge_peer_keys,
)

REAL = Path(__file__).resolve().parents[2] / "shared" / "americano"


def test_dotenv_names_ignore_values_and_comments() -> None:
    text = '# X=1\nexport A="x=y"\nB=\n  C = 3\nnot a line\nD\n'
    assert dotenv_names(text) == ["A", "B", "C", "D"]


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("A=secret-1\nexport B='x'\n# C=3\nD\n", ["A", "B", "D"]),
        ('["A", "B", "not a name", 3]', ["A", "B"]),
        ('{"A": "secret-1", "B": {"nested": "secret-2"}}', ["A", "B"]),
        (
            '[{"key": "A", "value": "s"}, {"Name": "B"}, {"envVar": {"key": "C", "value": "s"}}]',
            ["A", "B", "C"],
        ),
    ],
    ids=["lines", "json-names", "json-object", "json-objects"],
)
def test_listing_names_keep_names_only(text: str, names: list[str]) -> None:
    assert listing_names(text) == names


def test_a_broken_json_listing_never_quotes_its_text() -> None:
    with pytest.raises(ConfigError) as caught:
        listing_names('{"A": "secret-canary-1", ')
    assert "does not parse" in str(caught.value) and "secret-canary" not in str(caught.value)


def test_parity_lists_missing_keys_with_their_file() -> None:
    examples = {
        ".env.example": {"A", "B"},
        "apps/api/.env.example": {"C"},
        "gone/.env.example": None,
    }
    status, evidence, rows = judge_parity(examples, {"A"}, ["C"], "staging")
    assert status is Status.FAIL
    assert "B (in .env.example) is not defined in staging" in evidence
    assert "not found at the release tag: gone/.env.example" in evidence
    assert "allowed to differ (params): C" in evidence
    assert {r["key"] for r in rows} == {"A", "B", "C"}


def test_peer_key_sets() -> None:
    assert judge_peer_keys({"A", "B"}, {"A", "B"}, [], "s", "p")[0] is Status.PASS
    status, evidence = judge_peer_keys({"A", "B"}, {"A", "C"}, [], "s", "p")
    assert status is Status.FAIL and "only in s: B" in evidence and "only in p: C" in evidence
    assert judge_peer_keys({"A", "DEBUG"}, {"A"}, ["DEBUG"], "s", "p")[0] is Status.PASS


@pytest.mark.parametrize(
    ("url", "identity"),
    [
        ("postgresql://u:p@DB.example:6432/app?sslmode=require", ("db.example", 6432, "app")),
        ("postgres://u@localhost/app", ("127.0.0.1", 5432, "app")),
        ("postgresql://postgres:@/postgres?host=/tmp/pg", ("/tmp/pg", 5432, "postgres")),
    ],
)
def test_database_identity(url: str, identity: tuple[str, int, str]) -> None:
    assert database_identity(url) == identity


def test_databases_compared_without_showing_urls() -> None:
    a = "postgresql://u:secret-one@db:5432/app"
    status, evidence = judge_databases(a, "postgresql://v:secret-two@db:5432/app", "s", "p")
    assert status is Status.FAIL and "SAME database" in evidence
    status, evidence = judge_databases(a, "postgresql://u:secret-one@db:5432/app_prod", "s", "p")
    assert status is Status.PASS and "database name differs" in evidence
    assert "secret" not in evidence and "app_prod" not in evidence
    with pytest.raises(ConfigError, match="value not shown"):
        database_identity("mysql://u:secret@h/db")


def test_keys_compared_by_salted_fingerprint() -> None:
    mine = {"K1": "value-one", "K2": "shared-value", "K3": "x-value"}
    peer = {"K1": "value-two", "K2": "shared-value"}
    status, evidence = judge_keys(mine, peer, ["K1", "K2", "K3"], "s", "p")
    assert status is Status.FAIL
    assert "share the same K2" in evidence and "differ: K1" in evidence
    assert "K3 (not set in p)" in evidence
    assert "value" not in evidence.replace("values not shown", "")
    assert judge_keys(mine, peer, ["K1"], "s", "p")[0] is Status.PASS
    assert judge_keys({}, {}, ["K1"], "s", "p")[0] is Status.WARN


def test_rate_limiters_config_objects_and_switches() -> None:
    text = """
export const RATE_LIMIT_ENABLED = true
export const GEMINI_RATE_LIMIT: RateLimitConfig = {
  requestsPerMinute: 60,
  tokensPerMinute: 1_000_000,
  burst: 10,
}
"""
    (found,) = ratelimits.limiters(text)
    assert (found.name, found.kind) == ("GEMINI_RATE_LIMIT", "config")
    assert found.numbers == {"requestsPerMinute": 60, "tokensPerMinute": 1000000, "burst": 10}
    assert appsource.switch(text, "RATE_LIMIT_ENABLED") is True
    assert appsource.switch(text, "PII_REDACTION_ENABLED") is None
    review = ratelimits.review([found], {"GEMINI": {"burst": 5}, "OPENAI": {"burst": 5}})
    assert review.status is Status.FAIL and review.unguarded == ["OPENAI"]
    assert "GEMINI burst: limiter 10 / quota 5 — OVER QUOTA (GEMINI_RATE_LIMIT)" in review.lines
    assert any(line.startswith("OPENAI: NO GUARD") for line in review.lines)


def test_the_real_rate_limiter_has_three_route_limiters_and_no_provider_guard() -> None:
    text = (REAL / "apps/web/src/lib/rate-limiter.ts").read_text()
    found = ratelimits.limiters(text)  # the JSDoc example `new RateLimiter(...)` is not one
    assert [(f.name, f.numbers["maxRequests"], f.numbers["windowMs"]) for f in found] == [
        ("searchRateLimiter", 60, 60_000),
        ("autocompleteRateLimiter", 120, 60_000),
        ("exportRateLimiter", 10, 3_600_000),
    ]
    quotas = {"GEMINI": {"requestsPerMinute": 60}, "OPENAI": {"requestsPerMinute": 500}}
    review = ratelimits.review(found, quotas)
    assert review.status is Status.FAIL and review.unguarded == ["GEMINI", "OPENAI"]
    assert "  exportRateLimiter (line 219): 10 requests / 1 hour (keyPrefix 'export')" in (
        "\n".join(review.lines)
    )
    status, evidence = ratelimits.judge_guard(text, "rate-limiter.ts", None)
    assert status is Status.PASS and "3 limiter(s)" in evidence


@pytest.mark.parametrize(
    ("window", "quota_key", "bound"),
    [
        ("60000", "requestsPerMinute", 60),
        ("60000", "requestsPerDay", 60 * 1440),  # a per-minute limiter lets 86,400 a day
        ("24 * 60 * 60 * 1000", "requestsPerMinute", 60),  # all at once, within a minute
        ("1000", "requestsPerHour", 60 * 3600),
        ("60000", "tokensPerMinute", None),  # requests do not bound tokens
    ],
)
def test_a_windowed_limiter_bounds_each_quota_period(
    window: str, quota_key: str, bound: int | None
) -> None:
    text = f"const geminiLimiter = new RateLimiter({{ maxRequests: 60, windowMs: {window} }})"
    (found,) = ratelimits.limiters(text)
    assert found.guards("GEMINI") and found.bound(quota_key) == bound


def test_redaction_switched_off_by_the_real_loggers_option() -> None:
    logger = (REAL / "apps/web/src/lib/logger.ts").read_text()
    redaction = (REAL / "apps/web/src/lib/logger-pii-redaction.ts").read_text()
    status, _ = appsource.judge_redaction(
        logger, redaction, "logger.ts", "lib/logger-pii-redaction.ts"
    )
    assert status is Status.PASS
    off = logger.replace(
        "redactPII: enablePIIRedaction = true", "redactPII: enablePIIRedaction = false"
    )
    status, evidence = appsource.judge_redaction(
        off, redaction, "logger.ts", "lib/logger-pii-redaction.ts"
    )
    assert status is Status.FAIL and "logger.ts line 183:" in evidence


@pytest.mark.parametrize(
    ("path", "text", "flags"),
    [
        ("flags.json", '{"flags": {"a": false, "b": true}}', {"a": False, "b": True}),
        ("flags.ts", "export const flags = {\n  a: false,\n  b: true,\n}", {"a": False, "b": True}),
        (
            "guide.md",
            "- Feature flags: `a`, `b`\n  default off; turn on later.\n- Other: `c` default on\n",
            {"a": False, "b": False},
        ),
    ],
)
def test_flag_defaults(path: str, text: str, flags: dict[str, bool]) -> None:
    assert appsource.flag_defaults(text, path) == flags


def test_redaction_must_be_imported_and_applied() -> None:
    logger = "import { redactPII } from './logger-pii-redaction'\nconst x = entry\n"
    status, evidence = appsource.judge_redaction(
        logger, "export function redactPII", "l.ts", "r/logger-pii-redaction.ts"
    )
    assert status is Status.FAIL and "never calls redactPII" in evidence
    status, evidence = appsource.judge_redaction(
        "redactPII(e)", "redactPII", "l.ts", "r/logger-pii-redaction.ts"
    )
    assert status is Status.FAIL and "does not import redactPII" in evidence
