"""A tiny configurable HTTP server for tests: real sockets on 127.0.0.1, a thread per request.

Routes are set per (method, path): status, JSON or raw body, delay, fail-the-first-N, or a
handler. ``GET /metrics`` serves Prometheus text from `MetricsState`, whose counters a test
changes between scrapes.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes


@dataclass
class Route:
    status: int = 200
    body: Any = None  # dict/list -> JSON; str/bytes -> sent as is
    delay_s: float = 0.0
    content_type: str | None = None
    fail_first: int = 0  # answer fail_status to the first N requests (warm-up)
    fail_status: int = 503
    handler: Callable[[Request], tuple[int, Any]] | None = None


def free_port() -> int:
    """A port nothing listens on (for connection-refused cases)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MetricsState:
    """Counters behind ``/metrics``: requests by path/status, a latency histogram, a gauge."""

    BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5)

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: Counter[tuple[str, str]] = Counter()
        self.buckets: dict[str, list[float]] = {}
        self.sums: Counter[str] = Counter()
        self.queue_depth = 0.0
        self.version = "v1.4.0"

    def record(
        self, n: int = 1, status: int = 200, latency_s: float = 0.01, path: str = "/api"
    ) -> None:
        with self._lock:
            self.requests[(path, str(status))] += n
            counts = self.buckets.setdefault(path, [0.0] * (len(self.BUCKETS) + 1))
            for i, le in enumerate((*self.BUCKETS, float("inf"))):
                if latency_s <= le:
                    counts[i] += n
            self.sums[path] += n * latency_s

    def reset(self) -> None:
        """A process restart: every counter back to zero."""
        with self._lock:
            self.requests.clear()
            self.buckets.clear()
            self.sums.clear()

    def text(self) -> str:
        with self._lock:
            lines = ["# HELP http_requests_total Requests.", "# TYPE http_requests_total counter"]
            for (path, status), n in sorted(self.requests.items()):
                lines.append(
                    f'http_requests_total{{method="GET",path="{path}",status="{status}"}} {n}'
                )
            lines.append("# TYPE http_request_duration_seconds histogram")
            for path, counts in sorted(self.buckets.items()):
                for le, n in zip((*self.BUCKETS, "+Inf"), counts, strict=True):
                    lines.append(
                        f'http_request_duration_seconds_bucket{{path="{path}",le="{le}"}} {n}'
                    )
                lines.append(f'http_request_duration_seconds_count{{path="{path}"}} {counts[-1]}')
                lines.append(
                    f'http_request_duration_seconds_sum{{path="{path}"}} {self.sums[path]}'
                )
            lines += ["# TYPE queue_depth gauge", f"queue_depth {self.queue_depth}"]
            lines.append(f'service_version_info{{version="{self.version}"}} 1')
            return "\n".join(lines) + "\n"


class StubServer:
    """Start with ``with StubServer() as stub:``; ``stub.url('/x')`` is its address."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], Route] = {}
        self.hits: Counter[tuple[str, str]] = Counter()
        self.metrics = MetricsState()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def route(self, method: str, path: str, **kwargs: Any) -> Route:
        route = Route(**kwargs)
        self.routes[(method.upper(), path)] = route
        return route

    @property
    def port(self) -> int:
        assert self._server is not None, "stub not started"
        return self._server.server_address[1]

    def url(self, path: str = "", userinfo: str = "") -> str:
        return f"http://{userinfo + '@' if userinfo else ''}127.0.0.1:{self.port}{path}"

    def start(self) -> StubServer:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep pytest output clean
                pass

            def _handle(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                request = Request(
                    self.command,
                    parts.path,
                    parse_qs(parts.query),
                    dict(self.headers),
                    self.rfile.read(length) if length else b"",
                )
                key = (self.command, parts.path)
                stub.hits[key] += 1
                route = stub.routes.get(key)
                if route is None and key == ("GET", "/metrics"):
                    route = Route(
                        body=stub.metrics.text(), content_type="text/plain; version=0.0.4"
                    )
                if route is None:
                    route = Route(status=404, body={"detail": "Not Found"})
                if route.delay_s:
                    time.sleep(route.delay_s)
                status, body = route.status, route.body
                if route.handler is not None:
                    status, body = route.handler(request)
                elif stub.hits[key] <= route.fail_first:
                    status, body = route.fail_status, {"detail": "warming up"}
                if isinstance(body, bytes):
                    payload, ctype = body, "application/octet-stream"
                elif isinstance(body, str):
                    payload, ctype = body.encode(), "application/json"
                else:
                    payload, ctype = json.dumps(body).encode(), "application/json"
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", route.content_type or ctype)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout tests)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True, name="http-stub"
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> StubServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
