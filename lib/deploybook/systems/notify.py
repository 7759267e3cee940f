"""Announcements: Slack-compatible webhook and SMTP email (the incident report itself is
`deploybook.core.render.incident`).

Everything is scrubbed before it leaves the process. A webhook URL's path is its
credential, so messages show only scheme, host and port. `announce` turns each delivery
into a `Check`: a failed announcement is recorded, not a crash, and blocks the gate only
when its target is required (params: unset means required in production). Webhooks are
retried with exponential backoff; SMTP speaks STARTTLS or implicit TLS and logs in with
credentials read from the environment variables the target names.
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
from deploybook.core.secrets import Secret, read_secret, register, scrub, shorten
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
            {"type": "header", "text": {"type": "plain_text", "text": shorten(subject, 150)}},
            {"type": "section", "text": {"type": "mrkdwn", "text": shorten(text, 3000) or " "}},
        ],
    }


def _post_once(url: str, body: Any, shown: str, timeout_s: float) -> tuple[int, str]:
    """One POST: (status, answer), or NotifyFailed when nothing came back."""
    try:
        response = httpx.post(url, json=body, timeout=timeout_s)
    except httpx.TimeoutException:
        raise NotifyFailed(f"no answer within {timeout_s:g}s") from None
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        reason = scrub(str(exc).replace(url, shown)) or type(exc).__name__
        raise NotifyFailed(f"could not deliver ({reason})") from None
    return response.status_code, shorten(response.text.strip(), 200) or "(empty body)"


# Answers worth another try: the receiver is busy or broken, not refusing this message.
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
MAX_WAIT_S = 30.0


def send_webhook(
    url: str,
    payload: Mapping[str, Any],
    timeout_s: float = 5.0,
    *,
    attempts: int = 1,
    backoff_s: float = 1.0,
) -> str:
    """POST a scrubbed JSON payload to an incoming webhook; evidence, or NotifyFailed.

    Up to ``attempts`` tries while the receiver is unreachable, times out or answers 408,
    429 or 5xx, waiting ``backoff_s`` and then twice as long each time (at most 30 s a
    wait). A refusal (another 4xx) is not retried. The evidence lists every attempt.
    """
    if not isinstance(payload, Mapping) or not isinstance(payload.get("text"), str):
        raise ConfigError('webhook payload must be a mapping with a "text" string (Slack format)')
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ConfigError(f"webhook URL {_safe_url(str(url))} must be an http(s) URL")
    attempts = max(1, int(attempts))
    shown = _safe_url(url)
    body = scrub(dict(payload))  # before encoding: JSON escapes would hide a secret
    started = time.monotonic()
    tried: list[str] = []
    for attempt in range(1, attempts + 1):
        if attempt > 1:
            wait = min(backoff_s * 2 ** (attempt - 2), MAX_WAIT_S)
            tried[-1] += f", waited {wait:g}s"
            time.sleep(wait)
        try:
            status, answer = _post_once(url, body, shown, timeout_s)
        except NotifyFailed as exc:
            tried.append(f"attempt {attempt}: {exc}")
            continue
        if status < 400:
            elapsed = time.monotonic() - started
            if len(tried) == 0:
                return f"HTTP {status} from {shown} in {elapsed:.2f}s"
            return (
                f"HTTP {status} from {shown} on attempt {attempt} of {attempts} in "
                f"{elapsed:.2f}s ({'; '.join(tried)})"
            )
        tried.append(f"attempt {attempt}: HTTP {status}: {answer}")
        if status not in RETRY_STATUSES:
            raise NotifyFailed(
                f"webhook {shown} answered HTTP {status}: {answer}; check the URL (a revoked "
                f"Slack webhook answers 403/404); not retried"
                + (f" ({'; '.join(tried[:-1])})" if len(tried) > 1 else "")
            )
    raise NotifyFailed(
        f"webhook {shown}: not delivered after {attempts} attempt(s) ({'; '.join(tried)})"
    )


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


TLS_MODES = ("none", "starttls", "implicit")


def _tls_context(ca_file: str | None) -> ssl.SSLContext:
    """Certificate and host name verified, against ``ca_file`` or the system's CAs."""
    try:
        return ssl.create_default_context(cafile=ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"SMTP ca_file {ca_file}: cannot be read as PEM ({exc})") from None


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
    *,
    tls: str | None = None,
    ca_file: str | None = None,
) -> str:
    """Send a scrubbed plain-text email over SMTP; return evidence or raise NotifyFailed.

    ``tls``: ``none``, ``starttls`` (upgrade after EHLO) or ``implicit`` (TLS from the first
    byte, SMTPS); the server's certificate is verified. A login is only sent encrypted.
    """
    mode = tls or ("starttls" if starttls else "none")
    if mode not in TLS_MODES:
        raise ConfigError(f"email tls {mode!r} is not one of {', '.join(TLS_MODES)}")
    rcpts = [recipients] if isinstance(recipients, str) else list(recipients)
    if not host or not port:
        raise ConfigError("email target needs smtp_host and smtp_port")
    for address in [sender, *rcpts]:
        if not isinstance(address, str) or "@" not in address or _one_line(address) != address:
            raise ConfigError(f"email address {address!r} is not a single plain address")
    if not rcpts:
        raise ConfigError("email target has no recipients")
    if username and mode == "none":
        raise ConfigError(
            f"SMTP {host}:{port}: a login is never sent unencrypted; set tls: starttls or "
            "implicit on the email target"
        )
    secret = password.reveal() if isinstance(password, Secret) else password
    register(secret)
    message = EmailMessage()
    message["From"] = sender
    message["To"] = ", ".join(rcpts)
    message["Subject"] = scrub(_one_line(subject))  # no CR/LF: no header injection
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = make_msgid(domain="deploybook")
    message.set_content(scrub(body))
    where = f"SMTP {host}:{port}" + ("" if mode == "none" else f" ({mode} TLS)")
    context = _tls_context(ca_file) if mode != "none" else None
    started = time.monotonic()
    try:
        if mode == "implicit":
            client = smtplib.SMTP_SSL(host, int(port), timeout=timeout_s, context=context)
        else:
            client = smtplib.SMTP(host, int(port), timeout=timeout_s)
        with client as smtp:
            if mode == "starttls":
                smtp.starttls(context=context)
            if username:
                smtp.login(username, secret or "")
            refused = smtp.send_message(message)
    except smtplib.SMTPAuthenticationError as exc:
        raise NotifyFailed(
            f"{where} rejected the login ({exc.smtp_code}); check the credentials in the "
            "environment"
        ) from None
    except smtplib.SMTPNotSupportedError as exc:
        raise NotifyFailed(f"{where}: the server does not offer it ({exc})") from None
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
    login = " after login" if username else ""
    return f"accepted by {where}{login} for {len(rcpts)} recipient(s) in {elapsed:.2f}s"


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
    evidence = send_webhook(
        url,
        payload,
        timeout_s=timeout_s,
        attempts=int(_get(target, "attempts", default=1)),
        backoff_s=float(_get(target, "backoff_s", default=1.0)),
    )
    return f"webhook {_safe_url(url)}", evidence


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
        tls=_get(target, "tls"),
        ca_file=_get(target, "ca_file"),
    )
    return label, evidence


# A registry, not an if-chain: a new channel is a new entry.
SENDERS: dict[str, Callable[[Any, str, str, float], tuple[str, str]]] = {
    "webhook": _announce_webhook,
    "email": _announce_email,
}


def _label(target: Any, kind: str, index: int) -> str:
    """How a check names its target before delivery is tried (a failed one is named too)."""
    rcpts = _get(target, "recipients")
    if kind == "email" and rcpts:
        return f"email to {', '.join(rcpts) if isinstance(rcpts, list) else rcpts}"
    if kind == "webhook" and (url := _get(target, "url")):
        return f"webhook {_safe_url(str(url))}"
    if kind == "webhook" and (var := _get(target, "url_env")):
        return f"webhook ${var}"  # the URL itself is a secret
    return f"{kind} target #{index + 1}"


def announce(
    targets: Iterable[Any],
    subject: str,
    text: str,
    *,
    section: str = SECTION,
    timeout_s: float = 5.0,
    anchor: str = "",
) -> Checks:
    """Send to every target and return one check each; failures never raise.

    A target is a dict or config object with ``kind`` ("webhook" | "email"); its failure is
    critical only when it says ``required: true``. ``anchor`` is the ledger's head
    (`deploybook.core.anchors.announcement`): it ends the text, so every receiver keeps a
    copy of the ledger's state that `deploybook audit verify --heads-file` checks later.
    """
    if anchor:
        text = f"{text}\n\n{anchor}"
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
        label = _label(target, kind, i)
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
