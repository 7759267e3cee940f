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


# --- issue 22: every encoding, every secret-named variable, never a malformed URL -------------


@pytest.mark.parametrize(
    ("password", "printed"),
    [
        ("CNRYb64k/Xy+Zq9w=", "CNRYb64k%2FXy%2BZq9w%3D"),  # URL-encoded by a tool
        ('CNRYq"uote\\back', 'CNRYq\\"uote\\\\back'),  # JSON-escaped
        ("CNRYsh'ell", "'CNRYsh'\"'\"'ell'"),  # shell-quoted
        ("CNRYsp1 Tail8wq", "CNRYsp1 Tail8wq"),  # raw, with a space
    ],
    ids=["url-encoded", "json-escaped", "shell-quoted", "raw-with-space"],
)
def test_every_encoding_of_a_secret_is_masked(password: str, printed: str) -> None:
    register(password)
    text = scrub(f"tool said: {printed} (end)")
    assert printed not in text and MASK in text
    assert "CNRY" not in text


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://postgres:CNRYb64k/Xy+Zq9w=@db.internal:5432/app",
        "postgresql://postgres:CNRYsp1 Tail8wq@db.internal:5432/app",
        "postgresql://postgres:CNRYat@Tail9zz@db.internal:5432/app",
    ],
    ids=["slash", "space", "raw-at"],
)
def test_mis_encoded_database_url_is_never_echoed(url: str) -> None:
    from deploybook.errors import DatabaseError
    from deploybook.systems.postgres import db

    with pytest.raises(DatabaseError) as caught:
        db.connect(url)
    message = str(caught.value)
    assert message.startswith("DATABASE_URL is not a valid URL (check that the password is ")
    assert "percent-encoded" in message and "at character" in message
    assert "CNRY" not in message and "Tail" not in message and "db.internal" not in message
    # The pieces a driver would print are masked wherever else they turn up.
    register(url)
    for piece in ("CNRYb64k", "Tail8wq", "Tail9zz"):
        if piece in url:
            assert piece not in scrub(f"host {piece}@db.internal said no")


def test_judge_secret_reports_a_broken_url_by_position_only() -> None:
    url = "postgresql://postgres:CNRYb64k/Xy+Zq9w=@db:5432/app"
    status, evidence = judge_secret("DATABASE_URL", url, set())
    assert status is Status.FAIL
    assert "not a valid URL" in evidence and "percent-encoded" in evidence
    assert "CNRY" not in evidence


def test_key_straddling_a_cut_is_masked_before_the_cut() -> None:
    from deploybook.systems.endpoints import BODY_SNIPPET, _snippet

    key = "sk-CNRYstraddle0123456789ab"
    register(key)
    body = ("x" * (BODY_SNIPPET - 18) + key + "y" * 50).encode()
    shown = _snippet(body)
    assert "CNRYstraddle" not in shown and "sk-CNRY" not in shown
    assert MASK in shown


def test_other_environments_secret_named_variables_are_registered() -> None:
    from deploybook.core.secrets import register_environment

    environ = {
        "PRODUCTION_OPENAI_API_KEY": "sk-prod-CNRYother-env-1",
        "SANDBOX_PRODUCTION_DB_PASSWORD": "CNRYprodpw-2",
        "SOME_SERVICE_TOKEN": "CNRYtoken-3",
        "FEATURE_KEY": "true",  # too short to be told from ordinary text
        "PATH": "/usr/bin",
    }
    register_environment(["OPENAI_API_KEY"], environ)
    dump = "\n".join(f"{k}={v}" for k, v in environ.items())
    cleaned = scrub(dump)
    assert "CNRY" not in cleaned
    assert "FEATURE_KEY=true" in cleaned and "PATH=/usr/bin" in cleaned


def test_shorten_scrubs_first() -> None:
    from deploybook.core.secrets import shorten

    register("CNRYshorten-abcdef")
    assert shorten("ab CNRYshorten-abcdef cd", 8) == f"ab {MASK} c…"


def test_url_password_after_a_long_base64_run_is_masked() -> None:
    """A rendered record embeds images as base64: a URL glued to one (no space between) is
    still masked, with the scheme found within its last letters, not from the run's start."""
    image = "iVBORw0KGgo" + "A1b2+C3d4/" * 50_000  # ~0.5 MB, like a page with plots
    text = f'<img src="data:image/png;base64,{image}postgresql://app:unregistered-pw@db/x">'
    assert "unregistered-pw" not in scrub(text)
    assert "postgresql://app:***@db/x" in scrub("see postgresql://app:unregistered-pw@db/x")
    long_scheme = "x" * 38 + "+sql"
    assert scrub(f"{long_scheme}://u:s3cr3t-pw@h") == f"{long_scheme}://u:***@h"
