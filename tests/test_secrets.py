"""Secrets never show: Secret's renderings, and the scrubber over everything else."""

from __future__ import annotations

import logging

import pytest

from deploybook.core.checks import Check, Checks, Status
from deploybook.core.secrets import MASK, ScrubbingFilter, read_secret, register, scrub
from deploybook.errors import SecretMissing
from deploybook.runbooks.preconditions.checks import judge_secret

CANARY = "canary-7f3e9c1d-secret"


def test_secret_never_renders_its_value() -> None:
    secret = read_secret("OPENAI_API_KEY", {"OPENAI_API_KEY": CANARY})
    for text in (repr(secret), str(secret), secret._repr_html_(), f"{secret}"):
        assert CANARY not in text
        assert "OPENAI_API_KEY" in text
    assert secret.reveal() == CANARY


def test_missing_secret_says_how_to_fix() -> None:
    with pytest.raises(SecretMissing, match="export GEMINI_API_KEY"):
        read_secret("GEMINI_API_KEY", {}).reveal()


def test_scrub_masks_known_values_and_url_passwords_recursively() -> None:
    register(CANARY)
    data = {"evidence": f"key={CANARY}", "nested": [("postgresql://app:hunter2pw@db:5432/x",)]}
    cleaned = scrub(data)
    assert CANARY not in str(cleaned)
    assert "hunter2pw" not in str(cleaned)
    assert "postgresql://app:***@db:5432/x" in str(cleaned)
    assert MASK in cleaned["evidence"]


def test_url_password_registered_on_its_own() -> None:
    register("postgresql://postgres:pw-alone-123@127.0.0.1:5/db")
    assert "pw-alone-123" not in scrub("connection failed for password pw-alone-123")


def test_checks_scrub_evidence_and_data() -> None:
    register(CANARY)
    checks = Checks([Check("x", "6", Status.FAIL, f"saw {CANARY}", data={"v": CANARY})])
    for text in (checks.to_text(), checks._repr_html_(), str(checks.to_records())):
        assert CANARY not in text


def test_logging_filter_scrubs(caplog: pytest.LogCaptureFixture) -> None:
    register(CANARY)
    logger = logging.getLogger("deploybook.test")
    logger.addFilter(ScrubbingFilter())
    with caplog.at_level(logging.INFO, logger="deploybook.test"):
        logger.info("token is %s", CANARY)
    assert CANARY not in caplog.text


@pytest.mark.parametrize(
    ("name", "value", "status", "words"),
    [
        ("OPENAI_API_KEY", None, Status.FAIL, "missing"),
        ("OPENAI_API_KEY", "  ", Status.FAIL, "empty"),
        ("OPENAI_API_KEY", "your_openai_api_key_here", Status.FAIL, "placeholder"),
        ("DATABASE_URL", "mysql://u:p@h/db", Status.FAIL, "malformed"),
        ("CHATMOCK_URL", "localhost:8801", Status.FAIL, "malformed"),
        ("DATABASE_URL", "postgresql://u:p4ss@h:5432/db", Status.PASS, "is set"),
    ],
)
def test_judge_secret(name: str, value: str | None, status: Status, words: str) -> None:
    got, evidence = judge_secret(name, value, set())
    assert got is status
    assert words in evidence
    if value and value.strip():
        assert value not in evidence
