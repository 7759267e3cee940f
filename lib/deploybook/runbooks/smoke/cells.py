"""Runbook 04: smoke tests (plan section 12), the SLA watch (14) and post-deploy validation (15).

The glue between a params file and the `http`, `monitor` and `db` libraries: turning params
into request specs and metrics sources is pure; the few functions that talk to a system
(`run_suite`, `watch_slas`, `post_deploy_validation`) return checks, never raise on a
failing endpoint or database, so the runbook's gate decides.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Mapping
from typing import Any

import httpx

from deploybook.session import runbook as session
from deploybook.runbooks.smoke import validation
from deploybook.core.checks import Check, Checks, Status
from deploybook.config import Params
from deploybook.errors import DeploybookError
from deploybook.systems.http import SmokeSpec, _request, _run_sync, judge, run_smoke_async
from deploybook.runbooks.smoke.monitor import ROLLBACK, WatchResult, watch
from deploybook.runbooks.smoke.monitor import Thresholds as SlaThresholds
from deploybook.core.secrets import read_secret, scrub
from deploybook.runbooks.smoke.spotchecks import record_spot_checks, spot_checks

__all__ = [
    "SAMPLE_LECTURE",
    "breach_facts",
    "chatmock_round_trip",
    "health_checks",
    "health_specs",
    "metrics_sources",
    "parse_objectives",
    "post_deploy_validation",
    "record_breach",
    "record_spot_checks",
    "run_suite",
    "smoke_specs",
    "spot_checks",
    "watch_slas",
]

SECTION_SMOKE, SECTION_WATCH, SECTION_VALIDATION = "12", "14", "15"
HEALTH_TIMEOUT_S = 5.0
ROUND_TRIP_BUDGET_MS = 3000.0
KEY_TABLES = ("content_chunks", "concepts")
DB_CONNECT_TIMEOUT_S = 5
DB_STATEMENT_TIMEOUT_MS = 15_000
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


def health_specs(params: Params, expect_version: str | None = None) -> list[SmokeSpec]:
    """One health request per service; ``expect_version`` also checks the running release."""
    return [
        SmokeSpec(
            name=f"{svc.name} health",
            section=SECTION_SMOKE,
            url=svc.base_url + svc.health_path,
            expect_version=expect_version,
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


def health_checks(params: Params, expect_version: str | None = None) -> Checks:
    """Health of every service (status, JSON, healthy, and the expected version if given)."""
    specs = health_specs(params, expect_version)
    return _run_sync(lambda: run_smoke_async(specs, _health=True))


def run_suite(params: Params, expect_version: str | None = None) -> Checks:
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


# -- the SLA watch -----------------------------------------------------------------------
def metrics_sources(params: Params) -> dict[str, str]:
    """Each service's Prometheus text endpoint (services without ``metrics_path`` are skipped)."""
    return {
        svc.name: svc.base_url + svc.metrics_path for svc in params.services if svc.metrics_path
    }


def watch_slas(
    params: Params, window_s: float | None = None, progress: Any = None, **kwargs: Any
) -> WatchResult:
    """Watch 5xx rate, p95 latency and queue depth against the params' thresholds.

    ``window_s`` overrides the params' ``watch_window_s`` (e.g. a short rehearsal); a breach
    lasting ``breach_sustain_s`` fails the check "SLA breached" and ends the watch early.
    """
    t = params.thresholds
    return watch(
        metrics_sources(params),
        SlaThresholds(error_rate=t.error_rate, p95_ms=t.p95_ms, queue_depth=t.queue_depth),
        window_s=window_s or t.watch_window_s,
        interval_s=t.watch_interval_s,
        sustain_s=t.breach_sustain_s,
        progress=progress,
        section=SECTION_WATCH,
        **kwargs,
    )


def breach_facts(result: WatchResult) -> dict[str, Any] | None:
    """The facts 05-rollback reads when the watch found a sustained breach, else None."""
    if result.breach is None:
        return None
    return {
        **result.breach,
        "sustained_breaches": [b for b in result.breaches if b.get("sustained")],
        "window_s": result.window_s,
        "elapsed_s": round(result.elapsed_s, 3),
        "stopped_early": result.stopped_early,
    }


def record_breach(result: WatchResult) -> None:
    """Glue the scrap ``breach`` and recommend 05-rollback, or say that none is needed."""
    facts = breach_facts(result)
    if facts is None:
        session.show("no sustained SLA breach: no rollback recommended")
        return
    session.glue("breach", facts)
    session.show(
        f"SLA breached: {facts['label']} on {facts['service']} for {facts['duration_s']:g} s "
        f"(sustain limit {facts['sustain_s']:g} s) — recommend: {ROLLBACK}"
    )


# -- post-deploy validation (section 15) -------------------------------------------------
def failed_migrations(rows: list[Mapping[str, Any]]) -> list[str]:
    """Prisma rows that failed or never finished (and were not resolved as rolled back)."""
    out = []
    for row in rows:
        if row.get("finished_at") is None and row.get("rolled_back_at") is None:
            logs = (row.get("logs") or "").strip().splitlines()
            out.append(f"{row['migration_name']}" + (f" ({logs[0][:160]})" if logs else ""))
    return out


def _migration_check(rows: list[dict[str, Any]] | None) -> Check:
    name = "_prisma_migrations has no failed rows"
    if rows is None:
        return Check(
            name,
            SECTION_VALIDATION,
            Status.FAIL,
            "table _prisma_migrations does not exist: were the migrations applied "
            "(03-rollout step 'apply migrations')?",
        )
    failed = failed_migrations(rows)
    if failed:
        return Check(
            name,
            SECTION_VALIDATION,
            Status.FAIL,
            f"{len(failed)} failed or unfinished migration(s): {'; '.join(failed)} — resolve "
            "with `prisma migrate resolve` or run 05-rollback",
            data={"failed": failed, "rows": len(rows)},
        )
    return Check(
        name,
        SECTION_VALIDATION,
        Status.PASS,
        f"{len(rows)} migration row(s), all finished",
        data={"rows": len(rows), "latest": rows[-1]["migration_name"] if rows else None},
    )


def _count_check(conn: Any, tables: tuple[str, ...]) -> Check:
    from psycopg import errors, sql

    counts: dict[str, int | None] = {}
    for table in tables:
        exists = conn.execute("SELECT to_regclass(%s)", [table]).fetchone()[0]
        if exists is None:
            counts[table] = None
            continue
        q = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))
        try:
            counts[table] = int(conn.execute(q).fetchone()[0])
        except errors.QueryCanceled:
            raise DeploybookError(
                f"counting {table} took longer than {DB_STATEMENT_TIMEOUT_MS / 1000:g} s"
            ) from None
    missing = [t for t, n in counts.items() if n is None]
    empty = [t for t, n in counts.items() if n == 0]
    listing = ", ".join(f"{t}={'missing' if n is None else n}" for t, n in counts.items())
    problems = [f"missing table(s): {', '.join(missing)}"] * bool(missing)
    problems += [f"empty table(s): {', '.join(empty)}"] * bool(empty)
    return Check(
        "key tables have rows",
        SECTION_VALIDATION,
        Status.FAIL if problems else Status.PASS,
        "; ".join([*problems, listing]),
        data=counts,
    )


def post_deploy_validation(
    params: Params,
    environ: Mapping[str, str] | None = None,
    *,
    key_tables: tuple[str, ...] = KEY_TABLES,
    release: str | None = None,
    require_applied: bool = True,
) -> Checks:
    """Data integrity after the migration: vector dimensions, Prisma rows, every migration
    of the checkout applied, key tables' rows, and no fewer rows than 02's snapshot.

    The URL comes from the environment variable named by ``database.url_env``; a missing
    secret or an unreachable database is one failed check, not a traceback. ``release``
    finds the snapshot (skipped without it); ``require_applied=False`` makes unapplied
    migrations a warning (the release may not be deployed here yet).
    """
    import psycopg

    from deploybook.systems.postgres import db

    name = f"database reachable ({params.database.url_env})"
    try:
        url = read_secret(params.database.url_env, environ).reveal()
        conn = db.connect(url, autocommit=True, timeout=DB_CONNECT_TIMEOUT_S)
    except DeploybookError as exc:
        return Checks(
            [Check(name, SECTION_VALIDATION, Status.FAIL, f"{type(exc).__name__}: {exc}")]
        )
    checks = Checks([Check(name, SECTION_VALIDATION, Status.PASS, db.describe(url))])
    try:
        with conn:
            conn.execute(f"SET statement_timeout = {int(DB_STATEMENT_TIMEOUT_MS)}")
            checks.extend(
                db.vector_checks(conn, params.epic.embedding_dimension, SECTION_VALIDATION)
            )
            rows = db.prisma_rows(conn)
            checks.append(_migration_check(rows))
            checks.append(validation.applied_check(params, rows, require_applied))
            checks.append(_count_check(conn, key_tables))
            checks.append(
                validation.row_count_check(conn, params.environment.name, release, key_tables)
            )
    except DeploybookError as exc:
        checks.append(
            Check("data integrity", SECTION_VALIDATION, Status.FAIL, f"{type(exc).__name__}: {exc}")
        )
    except psycopg.Error as exc:  # the count query runs outside db's helpers: mapped here
        checks.append(
            Check(
                "data integrity",
                SECTION_VALIDATION,
                Status.FAIL,
                scrub(f"{db.describe(url)}: {exc}"),
            )
        )
    return checks


def running_versions(params: Params) -> dict[str, str | None]:
    """Each service's version as its health endpoint reports it now (None when unreadable)."""
    checks = health_checks(params)
    return {
        svc.name: (check.data or {}).get("version")
        for svc, check in zip(params.services, checks, strict=True)
    }
