"""Announcements: Slack-compatible webhook and SMTP email (the incident report itself is
`deploybook.core.render.incident`).

Everything is scrubbed before it leaves the process. A webhook URL's path is its
credential, so messages show only scheme, host and port. `announce` turns each delivery
into a `Check`: a failed announcement is recorded, not a crash, and blocks the gate only
when its target says it is required.
"""

from __future__ import annotations

import smtplib
import ssl
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any
from urllib.parse import urlsplit

import httpx

from deploybook.core.checks import Check, Checks, Status
from deploybook.core.secrets import Secret, read_secret, register, scrub
from deploybook.errors import ConfigError, DeploybookError, NotifyFailed

SECTION = "17"


def _safe_url(url: str) -> str:
    """Scheme, host and port only: an incoming-webhook path is a secret token."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(unparseable URL)"
    tail = "/…" if parts.path not in ("", "/") or parts.query else ""
    return f"{parts.scheme}://{host}{port}{tail}"


def slack_payload(subject: str, text: str) -> dict[str, Any]:
    """A Slack-compatible message: ``text`` for every receiver, ``blocks`` for Slack."""
    return {
        "text": f"*{subject}*\n{text}",
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": subject[:150]}},
            {"type": "section", "text": {"type": "mrkdwn", "text": text[:3000] or " "}},
        ],
    }


def send_webhook(url: str, payload: Mapping[str, Any], timeout_s: float = 5.0) -> str:
    """POST a scrubbed JSON payload to an incoming webhook; evidence, or NotifyFailed."""
    if not isinstance(payload, Mapping) or not isinstance(payload.get("text"), str):
        raise ConfigError('webhook payload must be a mapping with a "text" string (Slack format)')
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ConfigError(f"webhook URL {_safe_url(str(url))} must be an http(s) URL")
    shown = _safe_url(url)
    body = scrub(dict(payload))  # before encoding: JSON escapes would hide a secret
    started = time.monotonic()
    try:
        response = httpx.post(url, json=body, timeout=timeout_s)
    except httpx.TimeoutException:
        raise NotifyFailed(
            f"webhook {shown}: no answer within {timeout_s:g}s; check the URL and the network"
        ) from None
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        reason = scrub(str(exc).replace(url, shown)) or type(exc).__name__
        raise NotifyFailed(f"webhook {shown}: could not deliver ({reason})") from None
    elapsed = time.monotonic() - started
    if response.status_code >= 400:
        answer = scrub(response.text[:200].strip()) or "(empty body)"
        raise NotifyFailed(
            f"webhook {shown} answered HTTP {response.status_code}: {answer}; check the URL "
            "(a revoked Slack webhook answers 403/404)"
        )
    return f"HTTP {response.status_code} from {shown} in {elapsed:.2f}s"


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def send_email(
    host: str,
    port: int,
    sender: str,
    recipients: str | Sequence[str],
    subject: str,
    body: str,
    username: str | None = None,
    password: str | Secret | None = None,
    starttls: bool = False,
    timeout_s: float = 10.0,
) -> str:
    """Send a scrubbed plain-text email over SMTP; return evidence or raise NotifyFailed."""
    rcpts = [recipients] if isinstance(recipients, str) else list(recipients)
    if not host or not port:
        raise ConfigError("email target needs smtp_host and smtp_port")
    for address in [sender, *rcpts]:
        if not isinstance(address, str) or "@" not in address or _one_line(address) != address:
            raise ConfigError(f"email address {address!r} is not a single plain address")
    if not rcpts:
        raise ConfigError("email target has no recipients")
    secret = password.reveal() if isinstance(password, Secret) else password
    register(secret)
    message = EmailMessage()
    message["From"] = sender
    message["To"] = ", ".join(rcpts)
    message["Subject"] = scrub(_one_line(subject))  # no CR/LF: no header injection
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = make_msgid(domain="deploybook")
    message.set_content(scrub(body))
    where = f"SMTP {host}:{port}"
    started = time.monotonic()
    try:
        with smtplib.SMTP(host, int(port), timeout=timeout_s) as smtp:
            if starttls:
                smtp.starttls(context=ssl.create_default_context())
            if username:
                smtp.login(username, secret or "")
            refused = smtp.send_message(message)
    except smtplib.SMTPAuthenticationError as exc:
        raise NotifyFailed(
            f"{where} rejected the login for {username!r} ({exc.smtp_code}); check the "
            "credentials in the environment"
        ) from None
    except smtplib.SMTPRecipientsRefused as exc:
        raise NotifyFailed(
            f"{where} refused every recipient: {', '.join(exc.recipients)}"
        ) from None
    except smtplib.SMTPResponseException as exc:
        reply = scrub(
            exc.smtp_error.decode("utf-8", "replace")
            if isinstance(exc.smtp_error, bytes)
            else str(exc.smtp_error)
        )
        raise NotifyFailed(f"{where} answered {exc.smtp_code}: {reply}") from None
    except (smtplib.SMTPException, OSError) as exc:
        reason = scrub(str(exc)) or type(exc).__name__
        raise NotifyFailed(f"{where}: could not deliver ({type(exc).__name__}: {reason})") from None
    if refused:
        raise NotifyFailed(
            f"{where} accepted the message for {len(rcpts) - len(refused)} recipient(s) but "
            f"refused {', '.join(refused)}"
        )
    elapsed = time.monotonic() - started
    return f"accepted by {where} for {len(rcpts)} recipient(s) in {elapsed:.2f}s"


# --- announce: every configured target, one check each --------------------------------------


def _get(target: Any, *names: str, default: Any = None) -> Any:
    """A field of a target given as a dict or as a config object (first non-empty name)."""
    for name in names:
        value = target.get(name) if isinstance(target, Mapping) else getattr(target, name, None)
        if value not in (None, "", []):
            return value
    return default


def _from_env(target: Any, direct: str, env_key: str, what: str) -> str | None:
    """A value given directly or named by an environment variable (registered as a secret)."""
    value = _get(target, direct)
    if value:
        return str(value)
    var = _get(target, env_key)
    if not var:
        return None
    secret = read_secret(var)
    if not secret.is_set:
        raise ConfigError(f"{what}: environment variable {var} is not set")
    return secret.reveal()


def _announce_webhook(target: Any, subject: str, text: str, timeout_s: float) -> tuple[str, str]:
    url = _from_env(target, "url", "url_env", "webhook target")
    if not url:
        raise ConfigError("webhook target has neither url nor url_env")
    payload = (
        slack_payload(subject, text) if _get(target, "blocks") else {"text": f"*{subject}*\n{text}"}
    )
    return f"webhook {_safe_url(url)}", send_webhook(url, payload, timeout_s=timeout_s)


def _announce_email(target: Any, subject: str, text: str, timeout_s: float) -> tuple[str, str]:
    host = _get(target, "smtp_host", "host")
    port = _get(target, "smtp_port", "port", default=25)
    rcpts = _get(target, "recipients", default=[])
    label = f"email to {', '.join(rcpts) if isinstance(rcpts, list) else rcpts}"
    evidence = send_email(
        host,
        port,
        _get(target, "sender", "from"),
        rcpts,
        subject,
        text,
        username=_from_env(target, "username", "username_env", "email target"),
        password=_from_env(target, "password", "password_env", "email target"),
        starttls=bool(_get(target, "starttls", default=False)),
        timeout_s=timeout_s,
    )
    return label, evidence


# A registry, not an if-chain: a new channel is a new entry.
SENDERS: dict[str, Callable[[Any, str, str, float], tuple[str, str]]] = {
    "webhook": _announce_webhook,
    "email": _announce_email,
}


def announce(
    targets: Iterable[Any],
    subject: str,
    text: str,
    *,
    section: str = SECTION,
    timeout_s: float = 5.0,
) -> Checks:
    """Send to every target and return one check each; failures never raise.

    A target is a dict or config object with ``kind`` ("webhook" | "email"); its failure is
    critical only when it says ``required: true``.
    """
    checks = Checks()
    targets = list(targets or [])
    if not targets:
        checks.append(
            Check(
                f"announce: {_one_line(subject)}",
                section,
                Status.SKIP,
                "no targets configured",
                False,
            )
        )
        return checks
    for i, target in enumerate(targets):
        kind = _get(target, "kind", default="?")
        critical = bool(_get(target, "required", default=False))
        started = time.monotonic()
        label = f"{kind} target #{i + 1}"
        try:
            sender = SENDERS.get(kind)
            if sender is None:
                raise ConfigError(f"unknown kind {kind!r}; expected one of {', '.join(SENDERS)}")
            label, evidence = sender(target, subject, text, timeout_s)
            status = Status.PASS
        except DeploybookError as exc:
            status = Status.FAIL
            evidence = f"{type(exc).__name__}: {exc}"
            if not critical:
                evidence += " (not required: the run continues)"
        checks.append(
            Check(
                f"announce via {label}",
                section,
                status,
                evidence,
                critical,
                time.monotonic() - started,
            )
        )
    return checks
