"""The receiving ends of the sandbox: a minimal HTTP/1.1 server and client, the
Slack-compatible webhook receiver and the SMTP server that record what they are sent.

Everything runs on one asyncio loop (stdlib only, plus aiosmtpd for SMTP), so a listener
can be closed and re-opened on the same port to simulate a service that is down.
"""

from __future__ import annotations

import asyncio
import email
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

log = logging.getLogger("deploybook.sandbox")

MAX_HEADER_BYTES = 64 * 1024
MAX_BODY_BYTES = 10 * 1024 * 1024
IDLE_TIMEOUT_S = 60.0


@dataclass
class Request:
    """One parsed HTTP request."""

    method: str
    path: str
    query: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    http_version: str = "HTTP/1.1"

    def json(self) -> Any:
        """The body parsed as JSON; raises ValueError when it is not JSON."""
        return json.loads(self.body.decode("utf-8") or "null")


@dataclass
class Response:
    """One HTTP response to write back."""

    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"


def json_response(data: Any, status: int = 200) -> Response:
    return Response(status, json.dumps(data, default=str).encode(), "application/json")


def text_response(text: str, status: int = 200) -> Response:
    return Response(status, text.encode(), "text/plain; charset=utf-8")


App = Callable[[Request], Awaitable[Response]]


class HttpError(Exception):
    """The client sent something we cannot parse; answered with ``status`` and closed."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


async def _read_request(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> Request | None:
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), IDLE_TIMEOUT_S)
    except asyncio.IncompleteReadError:
        return None  # the client closed the connection between requests
    except asyncio.LimitOverrunError as exc:
        raise HttpError(431, "request headers too large") from exc
    lines = head.decode("latin-1").split("\r\n")
    try:
        method, target, version = lines[0].split(" ", 2)
    except ValueError as exc:
        raise HttpError(400, f"bad request line {lines[0][:80]!r}") from exc
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    if headers.get("expect", "").lower() == "100-continue":
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = await _read_chunked(reader)
    else:
        length = int(headers.get("content-length") or 0)
        if length > MAX_BODY_BYTES:
            raise HttpError(413, "request body too large")
        body = await reader.readexactly(length) if length else b""
    parts = urlsplit(target)
    query = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
    return Request(method.upper(), unquote(parts.path) or "/", query, headers, body, version)


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    body = bytearray()
    while True:
        size = int((await reader.readline()).split(b";")[0].strip() or b"0", 16)
        if size == 0:
            await reader.readline()  # the blank line after the last chunk (no trailers)
            return bytes(body)
        body += await reader.readexactly(size)
        await reader.readline()
        if len(body) > MAX_BODY_BYTES:
            raise HttpError(413, "request body too large")


def _encode(resp: Response, keep_alive: bool) -> bytes:
    try:
        reason = HTTPStatus(resp.status).phrase
    except ValueError:
        reason = "Unknown"
    now = datetime.now(UTC).strftime("%a, %d %b %Y %H:%M:%S GMT")
    head = (
        f"HTTP/1.1 {resp.status} {reason}\r\nServer: americano-sandbox\r\nDate: {now}\r\n"
        f"Content-Type: {resp.content_type}\r\nContent-Length: {len(resp.body)}\r\n"
        f"Connection: {'keep-alive' if keep_alive else 'close'}\r\n\r\n"
    )
    return head.encode("latin-1") + resp.body


class HttpListener:
    """One HTTP/1.1 listener on 127.0.0.1; ``close()`` refuses connections until ``open()``."""

    def __init__(self, name: str, app: App, port: int = 0) -> None:
        self.name = name
        self.app = app
        self.port = port
        self._server: asyncio.Server | None = None
        self._clients: dict[asyncio.StreamWriter, asyncio.Task] = {}

    @property
    def is_open(self) -> bool:
        return self._server is not None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def open(self) -> None:
        """Bind (port 0 the first time, the same port after a close) and accept."""
        if self._server is None:
            self._server = await asyncio.start_server(
                self._serve, "127.0.0.1", self.port, reuse_address=True, limit=MAX_HEADER_BYTES
            )
            self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        """Stop accepting and drop every open connection (clients see refused/reset)."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        for writer, task in list(self._clients.items()):
            writer.transport.abort()
            task.cancel()
        self._clients.clear()
        await server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._clients[writer] = asyncio.current_task()
        try:
            while True:
                try:
                    req = await _read_request(reader, writer)
                except HttpError as exc:
                    writer.write(_encode(json_response({"detail": str(exc)}, exc.status), False))
                    await writer.drain()
                    return
                if req is None:
                    return
                try:
                    resp = await self.app(req)
                except Exception:  # a bug in a stand-in must not kill the listener
                    log.exception("%s: unhandled error on %s %s", self.name, req.method, req.path)
                    resp = json_response({"detail": "Internal Server Error"}, 500)
                connection = req.headers.get("connection", "").lower()
                keep_alive = connection != "close" and (
                    req.http_version != "HTTP/1.0" or connection == "keep-alive"
                )
                writer.write(_encode(resp, keep_alive))
                await writer.drain()
                if not keep_alive:
                    return
        except (ConnectionError, TimeoutError, asyncio.IncompleteReadError, ValueError):
            pass
        except asyncio.CancelledError:
            pass  # closed for a "down" fault or at shutdown: end quietly
        finally:
            self._clients.pop(writer, None)
            writer.close()


async def http_call(
    method: str, url: str, payload: Any = None, *, timeout: float = 10.0
) -> tuple[int, bytes]:
    """A one-shot HTTP/1.1 request (``Connection: close``); returns (status, body).

    Raises OSError when the peer refuses the connection and TimeoutError when it is slow.
    """
    parts = urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    body = b"" if payload is None else json.dumps(payload).encode()
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection(parts.hostname, parts.port or 80), timeout
    )
    try:
        writer.write(
            (
                f"{method} {target} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                "Connection: close\r\n\r\n"
            ).encode("latin-1")
            + body
        )
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(-1), timeout)
    finally:
        writer.close()
    head, _, rest = raw.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/"):
        raise ConnectionResetError(f"no HTTP response from {parts.netloc}")
    status = int(head.split(b" ", 2)[1])
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            rest = rest[: int(value.strip())]
    return status, rest


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class MessageStore:
    """Everything the webhook receiver and the SMTP server were sent, oldest first."""

    def __init__(self) -> None:
        self.webhook: list[dict[str, Any]] = []
        self.email: list[dict[str, Any]] = []

    def as_dict(self) -> dict[str, list[dict[str, Any]]]:
        return {"webhook": list(self.webhook), "email": list(self.email)}

    def clear(self) -> None:
        self.webhook.clear()
        self.email.clear()


class WebhookReceiver:
    """Answers like a Slack incoming webhook: POST JSON with text/blocks -> 200 ``ok``."""

    def __init__(self, store: MessageStore) -> None:
        self.store = store

    async def __call__(self, req: Request) -> Response:
        if not req.path.startswith("/hooks/"):
            return text_response("no_service", 404)
        if req.method != "POST":
            return text_response("invalid_method", 405)
        try:
            form = parse_qs(req.body.decode("utf-8"))
            if "payload" in form:  # the legacy form-encoded style: payload=<json>
                body = json.loads(form["payload"][0])
            else:
                body = req.json()
        except (ValueError, UnicodeDecodeError):
            return text_response("invalid_payload", 400)
        if not isinstance(body, dict):
            return text_response("invalid_payload", 400)
        if not any(body.get(key) for key in ("text", "blocks", "attachments")):
            return text_response("no_text", 400)
        self.store.webhook.append({"received_at": _now(), "path": req.path, "body": body})
        log.info("webhook: message on %s (%d chars)", req.path, len(req.body))
        return text_response("ok")


class MailRecorder:
    """aiosmtpd handler that accepts every message and records it in the store."""

    def __init__(self, store: MessageStore) -> None:
        self.store = store

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):
            raw = raw.encode("utf-8")
        msg = email.message_from_bytes(raw, policy=policy.default)
        part = msg.get_body(preferencelist=("plain", "html"))
        try:
            text = part.get_content() if part is not None else ""
        except (LookupError, ValueError):
            text = raw.decode("utf-8", "replace")
        self.store.email.append(
            {
                "received_at": _now(),
                "mail_from": envelope.mail_from,
                "rcpt_tos": list(envelope.rcpt_tos),
                "subject": str(msg.get("subject", "")),
                "body": text.replace("\r\n", "\n"),
            }
        )
        log.info("smtp: message from %s to %s", envelope.mail_from, ", ".join(envelope.rcpt_tos))
        return "250 Message accepted for delivery"


def _accept_any_login(*_args: Any) -> Any:
    from aiosmtpd.smtp import AuthResult

    return AuthResult(success=True)


async def start_smtp(store: MessageStore) -> asyncio.Server:
    """An SMTP server on 127.0.0.1 (free port) that records every message; AUTH optional."""
    from aiosmtpd.smtp import SMTP

    logging.getLogger("mail.log").setLevel(logging.ERROR)  # aiosmtpd's per-session chatter
    handler = MailRecorder(store)
    loop = asyncio.get_running_loop()
    return await loop.create_server(
        lambda: SMTP(
            handler,
            hostname="sandbox.localhost",  # never socket.getfqdn(): it can stall on DNS
            ident="deploybook sandbox SMTP",
            auth_require_tls=False,
            authenticator=_accept_any_login,
            loop=loop,
        ),
        "127.0.0.1",
        0,
        reuse_address=True,
    )
