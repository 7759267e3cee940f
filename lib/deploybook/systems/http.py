"""Health and smoke checks over HTTP (plan sections 10 and 12): the requests.

Every request goes through one async core: bounded retries with exponential backoff for
warm-up, a per-attempt deadline, latency timed around the answered attempt. httpx's
exceptions are mapped once, in `map_httpx_error`, into `EndpointError`. What to ask and
how an answer is judged (`SmokeSpec`, `judge`) are pure, in `deploybook.systems.endpoints`.

Retries: connection failures, timeouts, 429 and 5xx are retried (a service warming up
after a deploy); a wrong 4xx, a malformed body or missing keys are not (retrying will not
fix them).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
from pydantic import ValidationError

from deploybook.core.checks import Check, Checks, Status
from deploybook.core.secrets import scrub
from deploybook.errors import ConfigError
from deploybook.systems.endpoints import (
    Answer,
    EndpointError,
    SmokeSpec,
    judge,
    missing_keys,
    safe_url,
)

__all__ = [
    "EndpointError",
    "SmokeSpec",
    "check_health",
    "judge",
    "map_httpx_error",
    "missing_keys",
    "run_smoke",
    "run_smoke_async",
    "safe_url",
]

RETRY_STATUSES = frozenset({429}) | frozenset(range(500, 600))
_T = TypeVar("_T")


def _where(url: str) -> str:
    parts = urlsplit(url)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        port = "?"
    return f"{parts.hostname}:{port}"


def map_httpx_error(exc: Exception, url: str, timeout_s: float) -> EndpointError:
    """Translate an httpx (or deadline) exception into one message a lead can act on."""
    where = _where(url)
    if isinstance(exc, httpx.ConnectTimeout):
        return EndpointError(
            f"no connection to {where} within {timeout_s:g} s (timeout)", "timeout"
        )
    if isinstance(exc, httpx.TimeoutException | TimeoutError):
        return EndpointError(f"no answer from {where} within {timeout_s:g} s (timeout)", "timeout")
    if isinstance(exc, httpx.ConnectError):
        text = str(exc)
        if _refused(exc) or "refused" in text.lower():
            return EndpointError(
                f"connection refused by {where} — is the service running on that port?", "refused"
            )
        return EndpointError(f"cannot connect to {where}: {text or type(exc).__name__}", "network")
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return EndpointError(f"invalid URL {safe_url(url)!r}: {exc}", "invalid-url")
    if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError | httpx.WriteError):
        return EndpointError(
            f"{where} dropped the connection: {exc or type(exc).__name__}", "network"
        )
    return EndpointError(f"request to {where} failed: {type(exc).__name__}: {exc}", "network")


def _refused(exc: BaseException) -> bool:
    """True when a ConnectionRefusedError sits anywhere in the cause chain (anyio hides it)."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, ConnectionRefusedError):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


async def _request(client: httpx.AsyncClient, spec: SmokeSpec) -> Answer:
    """Send ``spec`` with bounded retries; only transient failures are retried."""
    answer = Answer(attempts=0)
    for attempt in range(spec.retries + 1):
        if attempt:
            await asyncio.sleep(spec.backoff_s * 2 ** (attempt - 1))
        started = time.perf_counter()
        try:
            async with asyncio.timeout(spec.timeout_s):
                response = await client.request(
                    spec.method,
                    spec.url,
                    json=spec.json_body,
                    headers=spec.headers,
                    timeout=spec.timeout_s,
                )
        except (httpx.HTTPError, httpx.InvalidURL, TimeoutError) as exc:
            answer = Answer(attempt + 1, error=map_httpx_error(exc, spec.url, spec.timeout_s))
            if answer.error.kind == "invalid-url":
                break
            continue
        latency_ms = (time.perf_counter() - started) * 1000
        answer = Answer(attempt + 1, response.status_code, response.content, latency_ms)
        if response.status_code not in RETRY_STATUSES:
            break
    return answer


async def _check(
    client: httpx.AsyncClient, spec: SmokeSpec, gate: asyncio.Semaphore, health: bool
) -> Check:
    async with gate:
        started = time.perf_counter()
        answer = await _request(client, spec)
        duration = time.perf_counter() - started
    status, evidence, data = judge(spec, answer, health=health)
    return Check(spec.name, spec.section, status, evidence, spec.critical, duration, data)


def _specs(specs: Iterable[SmokeSpec | Mapping[str, Any]]) -> list[SmokeSpec]:
    out = []
    for spec in specs:
        if isinstance(spec, SmokeSpec):
            out.append(spec)
            continue
        try:
            out.append(SmokeSpec.model_validate(dict(spec)))
        except ValidationError as exc:
            raise ConfigError(
                f"smoke check {spec.get('name', '?')!r} is invalid: {scrub(str(exc))}"
            ) from None
    return out


async def run_smoke_async(
    specs: Iterable[SmokeSpec | Mapping[str, Any]], concurrency: int = 8, *, _health: bool = False
) -> Checks:
    """Run the smoke checks concurrently (at most ``concurrency`` in flight), in spec order."""
    specs = _specs(specs)
    gate = asyncio.Semaphore(max(1, concurrency))
    limits = httpx.Limits(
        max_connections=max(1, concurrency), max_keepalive_connections=max(1, concurrency)
    )
    async with httpx.AsyncClient(limits=limits, follow_redirects=True) as client:
        checks = await asyncio.gather(*(_check(client, s, gate, _health) for s in specs))
    return Checks(checks)


def _run_sync(factory: Callable[[], Awaitable[_T]]) -> _T:
    """Run a coroutine to completion, even from inside Jupyter's running event loop.

    NOTE: a running loop in this thread cannot be re-entered, so the coroutine gets its
    own loop in a worker thread; the calling cell simply waits for it.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(factory())  # type: ignore[arg-type]
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="deploybook-http") as pool:
        return pool.submit(lambda: asyncio.run(factory())).result()  # type: ignore[arg-type]


def run_smoke(specs: Iterable[SmokeSpec | Mapping[str, Any]], concurrency: int = 8) -> Checks:
    """Run smoke checks concurrently; wall time stays close to the slowest endpoint's."""
    specs = _specs(specs)
    return _run_sync(lambda: run_smoke_async(specs, concurrency))


def check_health(
    name: str,
    url: str,
    section: str = "10",
    expect_version: str | None = None,
    timeout_s: float = 5,
    *,
    retries: int = 1,
    critical: bool = True,
) -> Check:
    """GET a health endpoint: 200, JSON, a healthy status and (optionally) the expected version."""
    try:
        spec = SmokeSpec(
            name=name,
            section=section,
            url=url,
            expect_version=expect_version,
            latency_budget_ms=timeout_s * 1000,
            timeout_s=timeout_s,
            retries=retries,
            critical=critical,
        )
    except ValidationError as exc:
        return Check(name, section, Status.FAIL, f"invalid health check: {exc}", critical)
    return _run_sync(lambda: run_smoke_async([spec], _health=True))[0]
