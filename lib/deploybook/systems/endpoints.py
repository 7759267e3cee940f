"""What an endpoint is asked and what it answered, judged: pure, no I/O.

`SmokeSpec` says what to request and expect, `Answer` holds what came back (or the mapped
`EndpointError`), and `judge` turns the two into a check's status and evidence; the
requests themselves (retries, deadlines, concurrency) are `deploybook.systems.http`.
Evidence names the method and path, never a URL's user:password, and is scrubbed.

Latency policy: only the answered attempt counts (warm-up retries do not). A correct
answer over its budget *fails* a critical check (the plan's latency targets are release
criteria) and *warns* on a non-critical one (worth a look, not a rollback).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator

from deploybook.core.checks import Status
from deploybook.core.secrets import scrub, shorten
from deploybook.errors import ConfigError, DeploybookError

BODY_SNIPPET = 300
HEALTHY_STATUSES = frozenset({"healthy", "ok", "up", "pass", "ready", "alive", "green"})
_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})


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


@dataclass
class Answer:
    """What came back from the last attempt (or the error that ended it)."""

    attempts: int
    status_code: int | None = None
    body: bytes = b""
    latency_ms: float | None = None
    error: EndpointError | None = None


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
    # Masked before the cut: a key straddling it would no longer match once cut.
    text = scrub(body.decode("utf-8", errors="replace").strip().replace("\n", " "))
    return shorten(text, BODY_SNIPPET, f"… [{len(text)} chars]")


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
