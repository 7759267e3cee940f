"""notify: real SMTP (aiosmtpd) and a real webhook receiver on 127.0.0.1, canary secrets."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from email import message_from_bytes
from email.policy import default as default_policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

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


@pytest.fixture
def webhook() -> Iterator[_Receiver]:
    receiver: _Receiver

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("Content-Length", 0))
            receiver.bodies.append(self.rfile.read(length))
            body = b"ok" if receiver.status < 400 else b"invalid_token"
            self.send_response(receiver.status)
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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
            "127.0.0.1", _free_port(), "a@example.org", "b@example.org", "s", "b", timeout_s=2
        )


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
        {"kind": "webhook", "url": f"http://127.0.0.1:{_free_port()}/hook"},
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
        [{"kind": "webhook", "url": f"http://127.0.0.1:{_free_port()}/", "required": True}],
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
