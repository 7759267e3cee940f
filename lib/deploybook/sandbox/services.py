"""Stand-ins for the Americano services (api, web, chatmock, ocr) of one environment.

Each instance reports its running version, keeps its own Prometheus registry, applies the
injected fault (errors, latency, malformed bodies, a slow background worker) and then routes
the request to the Americano contract's handler (`americano.ROUTE_TABLE`).

The ``queue_depth`` gauge reports a real queue only: every served POST enqueues one
background job (the request's follow-up work) that the instance's single worker drains.
A healthy worker drains at once, so the gauge is 0 when idle; a "slow worker" fault
(``worker_ms``) makes each job take that long, so under load jobs arrive faster than they
are drained and the gauge climbs because work is really held. No other fault touches it.

The handlers, their content generators and backends live in `americano`,
`americano_content` and `americano_backends`; their public names are re-exported here.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from pydantic import BaseModel, ConfigDict, Field

from .americano import (
    ROUTE_TABLE,
    EvaluateRequest,
    QuestionRequest,
    api_health,
    calibration_metrics,
    chat_health,
    completions,
    content_search,
    dashboard,
    evaluate,
    extract,
    models,
    ocr_extract,
    ocr_health,
    question_next,
    scenario,
    scenario_metrics,
    web_health,
)
from .americano_backends import (
    CHAT_MODEL,
    CHATMOCK_TIMEOUT_S,
    DB_CONNECT_TIMEOUT_S,
    DatabaseUnavailable,
)
from .americano_content import calibrate, chat_completion, extract_objectives, score_answer
from .receivers import Request, Response, json_response

__all__ = [
    "CHAT_MODEL",
    "CHATMOCK_TIMEOUT_S",
    "DB_CONNECT_TIMEOUT_S",
    "ROUTES",
    "SERVICES",
    "TITLES",
    "DatabaseUnavailable",
    "EvaluateRequest",
    "Fault",
    "Handler",
    "QuestionRequest",
    "ServiceInstance",
    "api_health",
    "calibrate",
    "calibration_metrics",
    "chat_completion",
    "chat_health",
    "completions",
    "content_search",
    "dashboard",
    "evaluate",
    "extract",
    "extract_objectives",
    "models",
    "ocr_extract",
    "ocr_health",
    "question_next",
    "scenario",
    "scenario_metrics",
    "score_answer",
    "web_health",
]

log = logging.getLogger("deploybook.sandbox")

SERVICES = ("api", "web", "chatmock", "ocr")
TITLES = {
    "api": "americano-api",
    "web": "americano-web",
    "chatmock": "chatmock",
    "ocr": "americano-ocr",
}


class Fault(BaseModel):
    """An injected failure on the listed paths (exact or prefix; None = all but /metrics)."""

    model_config = ConfigDict(extra="forbid")
    error_rate: float = Field(0.0, ge=0.0, le=1.0)
    status: int = Field(503, ge=400, le=599)
    latency_ms: int = Field(0, ge=0, le=600_000)
    down: bool = False
    paths: list[str] | None = None
    malformed: bool = False
    # A slow background worker: each queued job takes this long (jobs pile up under load).
    worker_ms: int = Field(0, ge=0, le=600_000)
    # A bug shipped in one build: the fault is active only while that version runs, so a
    # rollback to the previous version really cures it (None = whatever runs).
    version: str | None = None

    def active(self, running: str) -> bool:
        return self.degrades and (self.version is None or self.version == running)

    def applies(self, path: str) -> bool:
        if not self.paths:
            return True
        return any(path == p or path.startswith(p.rstrip("/") + "/") for p in self.paths)

    @property
    def degrades(self) -> bool:
        return (
            self.down
            or self.malformed
            or self.error_rate > 0
            or self.latency_ms > 0
            or self.worker_ms > 0
        )


Handler = Callable[["ServiceInstance", Request, dict[str, str]], Awaitable[Response]]


class ServiceInstance:
    """One stand-in service in one environment: state, metrics, faults and routing."""

    def __init__(
        self, env: str, name: str, version: str, replicas: int = 1, database_url: str | None = None
    ) -> None:
        self.env, self.name, self.title = env, name, TITLES[name]
        self.database_url = database_url
        self.fault: Fault | None = None
        self.peers: dict[str, str] = {}  # service name -> base URL in the same env
        self.sessions: dict[str, int] = {}
        self.rng = random.Random()
        self.registry = CollectorRegistry()
        self._requests = Counter(
            "http_requests",
            "HTTP requests served",
            ["method", "path", "status"],
            registry=self.registry,
        )
        self._duration = Histogram(
            "http_request_duration_seconds",
            "HTTP request duration",
            ["path"],
            registry=self.registry,
        )
        self._queue = Gauge("queue_depth", "Jobs waiting to be processed", registry=self.registry)
        self.jobs: asyncio.Queue[str] = asyncio.Queue()  # paths of the requests' follow-up work
        self._worker: asyncio.Task[None] | None = None
        self._queue.set_function(self.jobs.qsize)
        self._version = Gauge(
            "service_version",
            "Running release (1 for the version label)",
            ["version"],
            registry=self.registry,
        )
        self._replicas = Gauge("service_replicas", "Running replicas", registry=self.registry)
        self.version, self.replicas = version, replicas
        self.set_version(version)
        self.set_replicas(replicas)

    def set_version(self, version: str) -> None:
        self.version = version
        self._version.clear()
        self._version.labels(version=version).set(1)

    def set_replicas(self, replicas: int) -> None:
        self.replicas = replicas
        self._replicas.set(replicas)

    def state(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "replicas": self.replicas,
            "fault": self.fault.model_dump() if self.fault else None,
        }

    def metrics(self) -> Response:
        return Response(200, generate_latest(self.registry), CONTENT_TYPE_LATEST)

    def enqueue(self, path: str) -> None:
        """Queue one background job; the single worker drains the queue in order."""
        self.jobs.put_nowait(path)
        if self._worker is None or self._worker.done():
            self._worker = asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        """The worker: one job at a time; a "slow worker" fault makes each take worker_ms."""
        while True:
            path = await self.jobs.get()
            fault = self.fault
            slow = fault and fault.worker_ms and fault.active(self.version) and fault.applies(path)
            await asyncio.sleep(fault.worker_ms / 1000 if slow else 0)
            self.jobs.task_done()

    async def handle(self, req: Request) -> Response:
        """Route one request, applying the injected fault, and record it in the metrics."""
        if req.path == "/metrics" and req.method == "GET":
            return self.metrics()  # scrapes are neither faulted nor counted
        started = time.perf_counter()
        template, handler, params = _match(self.name, req.method, req.path)
        fault = self.fault
        if not (fault and fault.active(self.version) and fault.applies(req.path)):
            fault = None
        if fault and fault.latency_ms:
            await asyncio.sleep(fault.latency_ms / 1000)
        if fault and fault.error_rate and self.rng.random() < fault.error_rate:
            detail = f"injected fault: {self.title} in {self.env} answers HTTP {fault.status}"
            resp = json_response({"detail": detail}, fault.status)
        else:
            resp = await handler(self, req, params)
            if fault and fault.malformed:
                resp = Response(
                    resp.status, resp.body[: max(1, len(resp.body) // 2)], resp.content_type
                )
        if req.method == "POST" and resp.status < 400:
            self.enqueue(req.path)  # the request's follow-up work, done in the background
        self._requests.labels(method=req.method, path=template, status=str(resp.status)).inc()
        self._duration.labels(path=template).observe(time.perf_counter() - started)
        return resp


ROUTES = {
    svc: [
        (m, t, re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", t) + "$"), h)
        for m, t, h in table
    ]
    for svc, table in ROUTE_TABLE.items()
}


async def _not_found(svc: ServiceInstance, req: Request, p: dict[str, str]) -> Response:
    return json_response({"detail": "Not Found"}, 404)


async def _not_allowed(svc: ServiceInstance, req: Request, p: dict[str, str]) -> Response:
    return json_response({"detail": "Method Not Allowed"}, 405)


def _match(service: str, method: str, path: str) -> tuple[str, Handler, dict[str, str]]:
    """(route template for metrics labels, handler, path parameters)."""
    allowed = None
    for m, template, pattern, handler in ROUTES[service]:
        found = pattern.match(path)
        if found and m == method:
            return template, handler, found.groupdict()
        if found:
            allowed = template
    return (allowed, _not_allowed, {}) if allowed else ("unmatched", _not_found, {})
