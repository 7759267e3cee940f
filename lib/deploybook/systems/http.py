"""Health and smoke checks over HTTP (plan sections 10 and 12).

Every request goes through one async core: bounded retries with exponential backoff for
warm-up, a per-attempt deadline, latency timed around the answered attempt. httpx's
exceptions are mapped once, in `map_httpx_error`, into `EndpointError`. Judging an answer
(`judge`) is a pure function. Evidence names the method and path, never a URL's
user:password, and is scrubbed (`secrets.scrub`) before it is stored.

Retries: connection failures, timeouts, 429 and 5xx are retried (a service warming up
after a deploy); a wrong 4xx, a malformed body or missing keys are not (retrying will not
fix them).

Latency policy: only the answered attempt counts (warm-up retries do not). A correct
answer over its budget *fails* a critical check (the plan's latency targets are release
criteria) and *warns* on a non-critical one (worth a look, not a rollback).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import httpx
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError, field_validator

from deploybook.core.checks import Check, Checks, Status
from deploybook.core.secrets import scrub
from deploybook.errors import ConfigError, DeploybookError

__all__ = [
    "EndpointError",
    "SmokeSpec",
    "check_health",
    "judge",
    "map_httpx_error",
    "missing_keys",
    "run_smoke",
    "run_smoke_async",
]

BODY_SNIPPET = 300
RETRY_STATUSES = frozenset({429}) | frozenset(range(500, 600))
HEALTHY_STATUSES = frozenset({"healthy", "ok", "up", "pass", "ready", "alive", "green"})
_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
_T = TypeVar("_T")


class EndpointError(DeploybookError):
    """An endpoint could not be reached or did not answer in time (httpx error, mapped)."""

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(scrub(message))
        self.kind = kind  # refused | timeout | network | invalid-url


class SmokeSpec(BaseModel):
    """One smoke request and what its answer must look like; the URL is already joined."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: str = Field(min_length=1)
    section: str = "12"
    method: str = "GET"
    url: str
    json_body: Any = Field(default=None, validation_alias=AliasChoices("json_body", "json", "body"))
    headers: dict[str, str] = Field(default_factory=dict, repr=False)
    expect_status: int = 200
    expect_keys: list[str] = Field(default_factory=list)
    expect_schema: dict[str, Any] | None = None
    expect_version: str | None = None
    latency_budget_ms: float = Field(default=1000.0, gt=0)
    critical: bool = True
    retries: int = Field(default=2, ge=0, le=10)
    backoff_s: float = Field(default=0.25, ge=0)
    timeout_s: float = Field(default=10.0, gt=0)

    @field_validator("method")
    @classmethod
    def _known_method(cls, value: str) -> str:
        value = value.upper()
        if value not in _METHODS:
            raise ValueError(f"method must be one of {', '.join(sorted(_METHODS))}")
        return value

    @field_validator("url")
    @classmethod
    def _absolute_http(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"url must be absolute http(s)://host/..., got {safe_url(value)!r}")
        return value


def safe_url(url: str) -> str:
    """The URL without its user:password part (then scrubbed), for evidence and messages."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        netloc = f"[{host}]" if ":" in host else host
        netloc += f":{parts.port}" if parts.port else ""
        return scrub(urlunsplit((parts.scheme, netloc, parts.path, parts.query, "")))
    except ValueError:
        return scrub(url)


def _target(method: str, url: str) -> str:
    """'POST /validation/evaluate' — how a lead names an endpoint."""
    parts = urlsplit(url)
    path = parts.path or "/"
    return scrub(f"{method} {path}{'?' + parts.query if parts.query else ''}")


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


@dataclass
class Answer:
    """What came back from the last attempt (or the error that ended it)."""

    attempts: int
    status_code: int | None = None
    body: bytes = b""
    latency_ms: float | None = None
    error: EndpointError | None = None


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


def missing_keys(body: Any, paths: Iterable[str]) -> list[str]:
    """Problems with dotted key paths in ``body``; ``x[]`` must be a non-empty list.

    ``question.question_id`` must exist; ``results[]`` must be a non-empty list;
    ``choices[].message.content`` descends into the first element; ``items.0.id`` indexes.
    """
    return [problem for path in paths if (problem := _resolve(body, path))]


def _resolve(body: Any, path: str) -> str | None:
    node, walked = body, []
    for segment in path.split("."):
        wants_list = segment.endswith("[]")
        key = segment[:-2] if wants_list else segment
        if key:
            if isinstance(node, dict) and key in node:
                node = node[key]
            elif isinstance(node, list) and key.isdigit() and int(key) < len(node):
                node = node[int(key)]
            else:
                return f"{path} is missing" + (
                    f" ({'.'.join(walked)} has no {key!r})" if walked else ""
                )
        walked.append(segment)
        if wants_list:
            if not isinstance(node, list):
                return f"{'.'.join(walked)} is not a list (got {_json_type(node)})"
            if not node:
                return f"{'.'.join(walked)} is an empty list"
            node = node[0]
    return None


def _json_type(value: Any) -> str:
    names = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}
    return names.get(
        type(value), "number" if isinstance(value, int | float) else type(value).__name__
    )


def _schema_problem(body: Any, schema: dict[str, Any]) -> str | None:
    try:
        import jsonschema
    except ImportError as exc:  # pragma: no cover - jsonschema ships with nbformat
        raise ConfigError("expect_schema needs jsonschema: pip install jsonschema") from exc
    error = jsonschema.exceptions.best_match(
        jsonschema.Draft202012Validator(schema).iter_errors(body)
    )
    if error is None:
        return None
    where = "/".join(str(p) for p in error.absolute_path) or "body"
    return f"{where}: {error.message}"


def _snippet(body: bytes) -> str:
    text = body.decode("utf-8", errors="replace").strip().replace("\n", " ")
    return text if len(text) <= BODY_SNIPPET else text[:BODY_SNIPPET] + f"… [{len(text)} chars]"


def _plural(n: int) -> str:
    return f"{n} attempt{'s' if n != 1 else ''}"


def judge(
    spec: SmokeSpec, answer: Answer, *, health: bool = False
) -> tuple[Status, str, dict[str, Any]]:
    """Decide pass/warn/fail for one answer; the evidence's first line says why."""
    data: dict[str, Any] = {
        "status_code": answer.status_code,
        "latency_ms": None if answer.latency_ms is None else round(answer.latency_ms, 1),
        "budget_ms": spec.latency_budget_ms,
        "attempts": answer.attempts,
    }
    status, headline = _verdict(spec, answer, health, data)
    detail = f"{spec.method} {safe_url(spec.url)} · {_plural(answer.attempts)}"
    if answer.error is None:
        detail += f" · {answer.latency_ms:.0f} ms\nbody: {_snippet(answer.body) or '(empty)'}"
    return status, f"{_target(spec.method, spec.url)} {headline}\n{detail}", data


def _verdict(
    spec: SmokeSpec, answer: Answer, health: bool, data: dict[str, Any]
) -> tuple[Status, str]:
    """The outcome and its one-line reason, in the order a lead would look for trouble."""
    if answer.error is not None:
        return Status.FAIL, f"failed after {_plural(answer.attempts)}: {answer.error}"
    code = answer.status_code
    if code != spec.expect_status:
        after = f" after {_plural(answer.attempts)}" if answer.attempts > 1 else ""
        snippet = _snippet(answer.body) or "(empty body)"
        return Status.FAIL, f"answered {code}{after}, expected {spec.expect_status}: {snippet}"

    needs_json = health or bool(spec.expect_keys or spec.expect_schema or spec.expect_version)
    try:
        body: Any = json.loads(answer.body) if answer.body.strip() else None
    except (ValueError, UnicodeDecodeError) as exc:
        if needs_json:
            return Status.FAIL, f"answered {code} but the body is not valid JSON ({exc})"
        body = None
    if needs_json and body is None:
        return Status.FAIL, f"answered {code} with an empty body, expected JSON"

    problems = missing_keys(body, spec.expect_keys)
    if spec.expect_schema and (problem := _schema_problem(body, spec.expect_schema)):
        problems.append(f"schema: {problem}")
    version = body.get("version") if isinstance(body, dict) else None
    facts: list[str] = []
    if health and isinstance(body, dict):
        data["version"] = version
        state = body.get("status")
        if isinstance(state, str) and state.lower() not in HEALTHY_STATUSES:
            problems.append(f"status is {state!r}")
        if body.get("ready") is False:
            problems.append("ready is false")
        facts = [f"{k} {body[k]}" for k in ("status", "version", "ready") if k in body]
        facts.append(f"keys: {', '.join(sorted(body))}")
    if spec.expect_version and version != spec.expect_version:
        problems.append(f"reports version {version!r}, expected {spec.expect_version!r}")
    if problems:
        return Status.FAIL, f"answered {code} but {'; '.join(problems)}"

    tail = f" ({'; '.join(facts)})" if facts else ""
    latency, budget = answer.latency_ms or 0.0, spec.latency_budget_ms
    if latency > budget:
        status = Status.FAIL if spec.critical else Status.WARN
        return status, f"answered {code} in {latency:.0f} ms, over its {budget:g} ms budget{tail}"
    return Status.PASS, f"answered {code} in {latency:.0f} ms (budget {budget:g} ms){tail}"


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
