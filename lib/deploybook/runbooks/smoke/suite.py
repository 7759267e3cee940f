"""Runbook 04's smoke suite (plan section 12): health, the params' smoke checks and the
ChatMock round trip, all in flight at once.

Turning params into request specs is pure; `run_suite` and `health_checks` talk to the
services and return checks, never raise on a failing endpoint, so the runbook's gate
decides. `running_versions` is what 03 and 05 record before changing anything.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Mapping
from typing import Any

import httpx

from deploybook.config import Params
from deploybook.core.checks import Check, Checks, Status
from deploybook.core.secrets import read_secret
from deploybook.systems.http import SmokeSpec, _request, _run_sync, judge, run_smoke_async

SECTION_SMOKE = "12"
HEALTH_TIMEOUT_S = 5.0
ROUND_TRIP_BUDGET_MS = 3000.0
SAMPLE_LECTURE = (
    "Cardiac output is the volume of blood the heart pumps each minute. It equals stroke "
    "volume multiplied by heart rate. Preload, afterload and contractility determine the "
    "stroke volume of the left ventricle."
)
_EXTRACT_PROMPT = (
    "Extract the learning objectives from the lecture text. Answer only JSON: "
    '{"objectives": [{"objective": "...", "complexity": "BASIC|INTERMEDIATE|ADVANCED"}]}'
)
_FENCE = re.compile(r"^```(?:json)?\s*(?P<body>.*?)\s*```$", re.DOTALL)


# -- params -> specs (pure) -------------------------------------------------------------
def smoke_specs(params: Params) -> list[SmokeSpec]:
    """The params file's smoke checks as request specs (service base_url + path)."""
    return [
        SmokeSpec(
            name=c.name,
            section=c.section,
            method=c.method,
            url=params.service(c.service).base_url + c.path,
            json_body=c.json_body,
            expect_status=c.expect_status,
            expect_keys=c.expect_keys,
            latency_budget_ms=c.latency_budget_ms,
            critical=c.critical,
        )
        for c in params.smoke
    ]


Versions = str | Mapping[str, str] | None


def _version_of(expect_version: Versions, service: str) -> str | None:
    if isinstance(expect_version, Mapping):
        return expect_version.get(service) or None
    return expect_version or None


def health_specs(params: Params, expect_version: Versions = None) -> list[SmokeSpec]:
    """One health request per service; ``expect_version`` (one version, or one per service)
    also checks the running release."""
    return [
        SmokeSpec(
            name=f"{svc.name} health",
            section=SECTION_SMOKE,
            url=svc.base_url + svc.health_path,
            expect_version=_version_of(expect_version, svc.name),
            latency_budget_ms=HEALTH_TIMEOUT_S * 1000,
            timeout_s=HEALTH_TIMEOUT_S,
            retries=1,
        )
        for svc in params.services
    ]


def chatmock_url(params: Params) -> str | None:
    """The OpenAI-compatible endpoint: the ``chatmock`` service, else CHATMOCK_URL."""
    if any(svc.name == "chatmock" for svc in params.services):
        return params.service("chatmock").base_url
    secret = read_secret("CHATMOCK_URL")
    return secret.reveal().rstrip("/") if secret.is_set else None


def parse_objectives(content: Any) -> list[Any]:
    """The objectives inside a completion's message content; ValueError says what is wrong.

    Accepts ``{"objectives": [...]}`` or a bare list, optionally inside a ```json fence.
    """
    if not isinstance(content, str) or not content.strip():
        raise ValueError("the message content is empty")
    text = content.strip()
    if fence := _FENCE.match(text):
        text = fence["body"]
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"the message content is not JSON ({exc})") from None
    objectives = data.get("objectives") if isinstance(data, dict) else data
    if not isinstance(objectives, list):
        keys = ", ".join(sorted(data)) if isinstance(data, dict) else type(data).__name__
        raise ValueError(f"the JSON has no objectives list (got {keys or 'an empty object'})")
    if not objectives:
        raise ValueError("the objectives list is empty")
    blank = [
        i
        for i, o in enumerate(objectives)
        if not (isinstance(o, str) and o.strip())
        and not (isinstance(o, dict) and str(o.get("objective") or o.get("text") or "").strip())
    ]
    if blank:
        raise ValueError(f"objective(s) at index {blank} have no text")
    return objectives


# -- the suite ---------------------------------------------------------------------------
async def _round_trip_async(
    client: httpx.AsyncClient, base_url: str, model: str | None, budget_ms: float
) -> Check:
    name, started = "ChatMock objective extraction round trip", time.perf_counter()

    def done(status: Status, evidence: str, data: Any = None) -> Check:
        return Check(
            name, SECTION_SMOKE, status, evidence, True, time.perf_counter() - started, data
        )

    if model is None:  # any OpenAI-compatible server: use a model it says it serves
        spec = SmokeSpec(
            name=name,
            url=f"{base_url}/v1/models",
            expect_keys=["data[].id"],
            latency_budget_ms=budget_ms,
        )
        answer = await _request(client, spec)
        status, evidence, data = judge(spec, answer)
        if status is Status.FAIL:
            return done(status, f"model discovery: {evidence}", data)
        model = str(json.loads(answer.body)["data"][0]["id"])
    spec = SmokeSpec(
        name=name,
        method="POST",
        url=f"{base_url}/v1/chat/completions",
        json_body={
            "model": model,
            "messages": [
                {"role": "system", "content": _EXTRACT_PROMPT},
                {"role": "user", "content": SAMPLE_LECTURE},
            ],
        },
        expect_keys=["choices[].message.content"],
        latency_budget_ms=budget_ms,
    )
    answer = await _request(client, spec)
    status, evidence, data = judge(spec, answer)
    data["model"] = model
    if status is Status.FAIL:
        return done(status, evidence, data)
    headline, _, detail = evidence.partition("\n")
    content = json.loads(answer.body)["choices"][0]["message"]["content"]
    try:
        objectives = parse_objectives(content)
    except ValueError as exc:
        target = headline.split(" answered")[0]
        return done(
            Status.FAIL,
            f"{target} answered but choices[0].message.content is not usable: {exc}\n{detail}",
            data,
        )
    data["objectives"] = len(objectives)
    first = objectives[0] if isinstance(objectives[0], str) else objectives[0].get("objective")
    return done(
        status,
        f"{headline}; model {model}; {len(objectives)} objective(s), first: {first!r}\n{detail}",
        data,
    )


def chatmock_round_trip(
    params: Params, *, model: str | None = None, budget_ms: float = ROUND_TRIP_BUDGET_MS
) -> Check:
    """A sample lecture in, a parsed list of objectives out, straight to the ChatMock URL."""
    return _run_sync(lambda: _round_trip(params, model, budget_ms))


async def _round_trip(params: Params, model: str | None, budget_ms: float) -> Check:
    base_url = chatmock_url(params)
    if base_url is None:
        return Check(
            "ChatMock objective extraction round trip",
            SECTION_SMOKE,
            Status.SKIP,
            "no 'chatmock' service in the params file and CHATMOCK_URL is not set",
        )
    async with httpx.AsyncClient(follow_redirects=True) as client:
        return await _round_trip_async(client, base_url, model, budget_ms)


def health_checks(params: Params, expect_version: Versions = None) -> Checks:
    """Health of every service (status, JSON, healthy, and the expected version if given)."""
    specs = health_specs(params, expect_version)
    return _run_sync(lambda: run_smoke_async(specs, _health=True))


def run_suite(params: Params, expect_version: Versions = None) -> Checks:
    """Health, the params' smoke checks and the ChatMock round trip, all at once.

    Every request is in flight together, so the suite takes about as long as its slowest
    endpoint (plus warm-up retries), not the sum of them.
    """
    health, smoke = health_specs(params, expect_version), smoke_specs(params)

    async def suite() -> Checks:
        h, s, trip = await asyncio.gather(
            run_smoke_async(health, concurrency=len(health) or 1, _health=True),
            run_smoke_async(smoke, concurrency=len(smoke) or 1),
            _round_trip(params, None, ROUND_TRIP_BUDGET_MS),
        )
        return Checks([*h, *s, trip])

    return _run_sync(suite)


def running_versions(params: Params) -> dict[str, str | None]:
    """Each service's version as its health endpoint reports it now (None when unreadable)."""
    checks = health_checks(params)
    return {
        svc.name: (check.data or {}).get("version")
        for svc, check in zip(params.services, checks, strict=True)
    }
