"""notify: real SMTP (aiosmtpd) and a real webhook receiver on 127.0.0.1, canary secrets."""

from __future__ import annotations

import json
import ssl
import subprocess
import threading
from collections.abc import Iterator
from email import message_from_bytes
from email.policy import default as default_policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from http_stub import free_port

from deploybook.config.models import NotificationTarget
from deploybook.core.checks import Status
from deploybook.core.render.incident import incident_report, write_incident_report
from deploybook.core.secrets import register
from deploybook.core.steps import StepLedger
from deploybook.errors import ConfigError, NotifyFailed
from deploybook.systems.notify import announce, send_email, send_webhook

CANARY = "canary-notify-7Hq2Lm9Z"
register(CANARY)


class _Inbox:
    """aiosmtpd handler that keeps every message it accepts."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.messages.append(
            {
                "mail_from": envelope.mail_from,
                "rcpt_tos": list(envelope.rcpt_tos),
                "raw": envelope.original_content or envelope.content,
            }
        )
        return "250 OK"


class _PortZeroController(Controller):
    """aiosmtpd's Controller pings its own port on start; with port 0 learn the real one first."""

    def _trigger_server(self) -> None:
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


@pytest.fixture
def smtp_server() -> Iterator[tuple[str, int, _Inbox]]:
    inbox = _Inbox()
    controller = _PortZeroController(inbox, hostname="127.0.0.1", port=0)
    controller.start()
    try:
        yield "127.0.0.1", controller.port, inbox
    finally:
        controller.stop()


class _Receiver:
    def __init__(self, url: str) -> None:
        self.url = url
        self.bodies: list[bytes] = []
        self.status = 200
        self.script: list[int] = []  # statuses to answer first, in order (then `status`)


@pytest.fixture
def webhook() -> Iterator[_Receiver]:
    receiver: _Receiver

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("Content-Length", 0))
            receiver.bodies.append(self.rfile.read(length))
            status = receiver.script.pop(0) if receiver.script else receiver.status
            body = b"ok" if status < 400 else b"invalid_token"
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver = _Receiver(f"http://127.0.0.1:{server.server_address[1]}/hooks/T000/B000/secretpath")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


# --- webhook -------------------------------------------------------------------------------


def test_webhook_delivers_scrubbed_json(webhook: _Receiver) -> None:
    evidence = send_webhook(webhook.url, {"text": f"deploying with token {CANARY}"})
    assert evidence.startswith("HTTP 200 from http://127.0.0.1:")
    assert "secretpath" not in evidence  # a webhook path is a credential
    (body,) = webhook.bodies
    assert CANARY.encode() not in body
    assert json.loads(body) == {"text": "deploying with token ***"}


def test_webhook_http_error_is_notify_failed(webhook: _Receiver) -> None:
    webhook.status = 403
    with pytest.raises(NotifyFailed, match="HTTP 403: invalid_token") as info:
        send_webhook(webhook.url, {"text": "hi"})
    assert "secretpath" not in str(info.value)


def test_webhook_payload_must_be_slack_shaped(webhook: _Receiver) -> None:
    with pytest.raises(ConfigError, match='"text"'):
        send_webhook(webhook.url, {"message": "hi"})


def test_webhook_retries_with_backoff_until_delivered(webhook: _Receiver) -> None:
    webhook.script = [503, 503]  # fails twice, then succeeds
    evidence = send_webhook(webhook.url, {"text": "hi"}, attempts=3, backoff_s=0.05)
    assert len(webhook.bodies) == 3
    assert "on attempt 3 of 3" in evidence
    assert "attempt 1: HTTP 503: invalid_token, waited 0.05s" in evidence
    assert "attempt 2: HTTP 503: invalid_token, waited 0.1s" in evidence
    assert "secretpath" not in evidence


def test_webhook_gives_up_after_its_attempts(webhook: _Receiver) -> None:
    webhook.status = 503
    with pytest.raises(NotifyFailed, match=r"not delivered after 2 attempt\(s\)") as info:
        send_webhook(webhook.url, {"text": "hi"}, attempts=2, backoff_s=0.05)
    assert len(webhook.bodies) == 2 and "attempt 2: HTTP 503" in str(info.value)


def test_webhook_refusal_is_not_retried(webhook: _Receiver) -> None:
    webhook.status = 404
    with pytest.raises(NotifyFailed, match="HTTP 404: invalid_token.*not retried"):
        send_webhook(webhook.url, {"text": "hi"}, attempts=3, backoff_s=0.05)
    assert len(webhook.bodies) == 1


def test_unreachable_webhook_is_retried_then_named() -> None:
    url = f"http://127.0.0.1:{free_port()}/hooks/T/B/secretpath"
    with pytest.raises(NotifyFailed) as info:
        send_webhook(url, {"text": "hi"}, timeout_s=2, attempts=2, backoff_s=0.05)
    message = str(info.value)
    assert "not delivered after 2 attempt(s)" in message and "could not deliver" in message
    assert "secretpath" not in message


# --- email ---------------------------------------------------------------------------------


def test_email_delivers_scrubbed_message(smtp_server: tuple[str, int, _Inbox]) -> None:
    host, port, inbox = smtp_server
    evidence = send_email(
        host,
        port,
        "deploybook@example.org",
        ["lead@example.org", "qa@example.org"],
        f"Rollout v1.4.0 {CANARY}\nBcc: evil@example.org",
        f"Database postgresql://app:{CANARY}@db/americano is being migrated",
    )
    assert "2 recipient(s)" in evidence
    (message,) = inbox.messages
    assert message["rcpt_tos"] == ["lead@example.org", "qa@example.org"]
    assert CANARY.encode() not in message["raw"]
    parsed = message_from_bytes(message["raw"], policy=default_policy)
    assert parsed["Subject"] == "Rollout v1.4.0 *** Bcc: evil@example.org"  # one header line
    assert parsed["Bcc"] is None
    assert "postgresql://app:***@db/americano" in parsed.get_content()


def test_email_to_a_closed_port_is_notify_failed() -> None:
    with pytest.raises(NotifyFailed, match=r"SMTP 127\.0\.0\.1:\d+: could not deliver"):
        send_email(
            "127.0.0.1", free_port(), "a@example.org", "b@example.org", "s", "b", timeout_s=2
        )


# --- email over TLS with a login (aiosmtpd requiring both) -----------------------------------

USER, PASSWORD = "deploybook-mailer", "canary-smtp-pw-Xk29QzL1"
register(PASSWORD)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (openssl; `cryptography` is not installed)."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
        + ["-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1"]
        + ["-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True,
        capture_output=True,
    )
    return cert, key


def _check_login(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
    from aiosmtpd.smtp import AuthResult

    ok = data.login == USER.encode() and data.password == PASSWORD.encode()
    return AuthResult(success=ok, handled=False)


@pytest.fixture(params=["starttls", "implicit"])
def tls_smtp(request: Any, certificate: tuple[Path, Path]) -> Iterator[dict[str, Any]]:
    """An SMTP server that refuses mail without TLS and a login: STARTTLS or SMTPS."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*map(str, certificate))
    inbox = _Inbox()
    tls = request.param
    options: dict[str, Any] = (
        {"ssl_context": context}
        if tls == "implicit"
        else {
            "tls_context": context,
            "require_starttls": True,
        }
    )
    controller = _PortZeroController(
        inbox,
        hostname="127.0.0.1",
        port=0,
        auth_required=True,
        # NOTE: implicit TLS is TLS from the first byte; aiosmtpd only counts STARTTLS here.
        auth_require_tls=tls == "starttls",
        authenticator=_check_login,
        **options,
    )
    controller.start()
    try:
        yield {"port": controller.port, "inbox": inbox, "tls": tls, "ca": str(certificate[0])}
    finally:
        controller.stop()


def _tls_mail(server: dict[str, Any], **changes: Any) -> str:
    kwargs: dict[str, Any] = {
        "username": USER,
        "password": PASSWORD,
        "tls": server["tls"],
        "ca_file": server["ca"],
        "timeout_s": 5,
        **changes,
    }
    return send_email(
        "127.0.0.1", server["port"], "d@example.org", "lead@example.org", "s", "b", **kwargs
    )


def test_email_over_tls_with_login(tls_smtp: dict[str, Any]) -> None:
    evidence = _tls_mail(tls_smtp)
    assert f"({tls_smtp['tls']} TLS) after login for 1 recipient(s)" in evidence
    (message,) = tls_smtp["inbox"].messages
    assert message["rcpt_tos"] == ["lead@example.org"]
    assert PASSWORD not in evidence and PASSWORD.encode() not in message["raw"]


@pytest.mark.parametrize(
    ("changes", "error", "match"),
    [
        ({"password": "wrong-password"}, NotifyFailed, "rejected the login"),
        ({"ca_file": None}, NotifyFailed, "CERTIFICATE_VERIFY_FAILED"),
        ({"username": None}, NotifyFailed, "answered 530"),
        ({"tls": "none"}, ConfigError, "never sent unencrypted"),
    ],
    ids=["wrong-password", "untrusted-certificate", "no-login", "login-without-tls"],
)
def test_email_over_tls_refusals(tls_smtp: dict[str, Any], changes, error, match) -> None:
    with pytest.raises(error, match=match) as info:
        _tls_mail(tls_smtp, **changes)
    assert PASSWORD not in str(info.value)
    assert tls_smtp["inbox"].messages == []


def test_announce_logs_in_from_secret_env_names(
    tls_smtp: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEPLOYBOOK_TEST_SMTP_USER", USER)
    monkeypatch.setenv("DEPLOYBOOK_TEST_SMTP_PASSWORD", PASSWORD)
    target = NotificationTarget(
        kind="email",
        required=True,
        smtp_host="127.0.0.1",
        smtp_port=tls_smtp["port"],
        tls=tls_smtp["tls"],
        ca_file=tls_smtp["ca"],
        username_env="DEPLOYBOOK_TEST_SMTP_USER",
        password_env="DEPLOYBOOK_TEST_SMTP_PASSWORD",
        sender="d@example.org",
        recipients=["lead@example.org"],
    )
    (check,) = announce([target], "Rollout started", "v1.4.0", timeout_s=5)
    assert check.status is Status.PASS and check.critical, check.evidence
    assert len(tls_smtp["inbox"].messages) == 1
    assert PASSWORD not in check.evidence and USER not in check.evidence

    monkeypatch.setenv("DEPLOYBOOK_TEST_SMTP_PASSWORD", "not-the-password")
    (check,) = announce([target], "Rollout started", "v1.4.0", timeout_s=5)
    assert check.status is Status.FAIL and check.critical
    assert check.name == "announce via email to lead@example.org"
    assert "rejected the login" in check.evidence and "not-the-password" not in check.evidence


def test_required_by_default_in_production_only() -> None:
    from deploybook.config import load_params

    root = Path(__file__).resolve().parents[1] / "params"
    production = load_params(root / "production.yaml")
    staging = load_params(root / "staging.yaml")
    assert [t.required for t in production.notifications] == [True, True]
    assert [t.required for t in staging.notifications] == [False, False]
    email = production.notifications[1]
    assert (email.tls, email.username_env, email.password_env) == (
        "starttls",
        "SMTP_USERNAME",
        "SMTP_PASSWORD",
    )
    said = production.model_copy(
        update={"notifications": [NotificationTarget(kind="webhook", required=False)]}
    )
    assert said.notifications[0].required is False  # an explicit value is kept


# --- announce ------------------------------------------------------------------------------


def test_announce_reaches_every_target(
    webhook: _Receiver, smtp_server: tuple[str, int, _Inbox], monkeypatch: pytest.MonkeyPatch
) -> None:
    host, port, inbox = smtp_server
    monkeypatch.setenv("DEPLOYBOOK_TEST_WEBHOOK", webhook.url)
    targets = [
        {"kind": "webhook", "url_env": "DEPLOYBOOK_TEST_WEBHOOK", "blocks": True},
        {
            "kind": "email",
            "smtp_host": host,
            "smtp_port": port,
            "sender": "deploybook@example.org",
            "recipients": ["oncall@example.org"],
        },
    ]
    checks = announce(targets, "Rollout started", f"v1.4.0 to production (key {CANARY})")
    assert [c.status for c in checks] == [Status.PASS, Status.PASS], checks.to_text()
    assert checks.ok
    (body,) = webhook.bodies
    payload = json.loads(body)
    assert payload["text"].startswith("*Rollout started*") and payload["blocks"]
    assert CANARY.encode() not in body
    assert CANARY.encode() not in inbox.messages[0]["raw"]
    assert webhook.url not in checks.to_text()  # the env-provided URL is a secret


def test_unreachable_webhook_is_a_failed_check_not_a_crash(
    smtp_server: tuple[str, int, _Inbox],
) -> None:
    host, port, inbox = smtp_server
    targets = [
        {"kind": "webhook", "url": f"http://127.0.0.1:{free_port()}/hook"},
        {"kind": "webhook", "url_env": "DEPLOYBOOK_TEST_UNSET_VAR"},
        {"kind": "pager"},
        {
            "kind": "email",
            "smtp_host": host,
            "smtp_port": port,
            "sender": "d@example.org",
            "recipients": ["x@example.org"],
        },
    ]
    checks = announce(targets, "Rollback started", "reverting", timeout_s=2)
    assert [c.status for c in checks] == [Status.FAIL, Status.FAIL, Status.FAIL, Status.PASS]
    assert checks.ok  # not required: nothing blocks the gate
    assert "could not deliver" in checks[0].evidence
    assert "DEPLOYBOOK_TEST_UNSET_VAR is not set" in checks[1].evidence
    assert "unknown kind 'pager'" in checks[2].evidence
    assert len(inbox.messages) == 1


def test_required_target_failure_blocks_the_gate() -> None:
    checks = announce(
        [{"kind": "webhook", "url": f"http://127.0.0.1:{free_port()}/", "required": True}],
        "s",
        "t",
        timeout_s=2,
    )
    assert not checks.ok and checks[0].critical


def test_announce_without_targets_is_skipped() -> None:
    (check,) = announce([], "s", "t")
    assert check.status is Status.SKIP and not check.critical


# --- incident report -----------------------------------------------------------------------


def test_incident_report(tmp_path: Path) -> None:
    ledger = StepLedger(tmp_path / "steps.jsonl", "rb-1")
    ledger.run("announce rollback", lambda: "sent", execute=True, describe="announce")
    ledger.run("revert api", lambda: "ok", execute=True, describe="deploy-tool api v1.3.0")
    path = write_incident_report(
        tmp_path / "records" / "incident.md",
        title="5xx on /validation/evaluate after v1.4.0",
        env="production",
        release="v1.4.0",
        previous_release="v1.3.0",
        trigger={
            "metric": "error_rate",
            "observed": "0.42",
            "threshold": "0.01",
            "sustained_s": 660,
        },
        steps=ledger.summary(),
        reverted=[
            {"service": "api", "from": "v1.4.0", "to": "v1.3.0"},
            {
                "what": "database",
                "detail": f"restored from snapshot.dump (url postgresql://u:{CANARY}@h/db)",
            },
        ],
        started_at="2025-01-01T10:00:00Z",
        verified_at="2025-01-01T10:42:30Z",
        links={"rollout record": "../03-rollout.ipynb", "smoke watch": "../04-smoke.ipynb"},
        operator="alice",
        run_id="rb-1",
    )
    text = path.read_text()
    assert text.startswith("# Incident: 5xx on /validation/evaluate after v1.4.0")
    assert "- **Environment:** production" in text
    assert "v1.4.0 (rolled back to v1.3.0)" in text
    assert "- error_rate" not in text and "- **metric**" not in text
    assert "observed" in text and "0.42" in text
    assert "| step | start | end | duration | status |" in text
    assert "| revert api |" in text and "| done |" in text
    assert "42.5 min" in text and "within the rollback window" in text
    assert "**api** v1.4.0 → v1.3.0" in text
    assert "[rollout record](../03-rollout.ipynb)" in text
    assert CANARY not in text


def test_incident_report_over_window_and_unverified() -> None:
    over = incident_report(
        title="t",
        env="staging",
        release="v1.4.0",
        trigger="manual",
        steps=[],
        reverted=[],
        started_at="2025-01-01T10:00:00Z",
        verified_at="2025-01-01T11:15:00Z",
    )
    assert "exceeded the rollback window by 15.0 min" in over
    unverified = incident_report(
        title="t",
        env="staging",
        release="v1.4.0",
        trigger="manual",
        steps=[],
        reverted=[],
        started_at="2025-01-01T10:00:00Z",
    )
    assert "**not verified**" in unverified
