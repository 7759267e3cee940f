"""Runbook 04 against the real stand-in daemon and embedded PostgreSQL: the smoke suite,
the ChatMock round trip, the SLA watch and post-deploy validation.

One daemon (env ``staging``) per module, backed by one seeded database; each test injects
its fault through the admin API and the faults are cleared after it.
"""

from __future__ import annotations

import re
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from matplotlib.colors import to_rgb
from pg_fixtures import run_sql

from deploybook.config import Params, load_params, read_params_yaml
from deploybook.config.metrics import MetricsSpec
from deploybook.core.checks import Status
from deploybook.runbooks.smoke import cells as smoke_cells
from deploybook.runbooks.smoke import suite as smoke
from deploybook.runbooks.smoke import validation as smoke_validation
from deploybook.runbooks.smoke import watch as sla
from deploybook.sandbox import daemon as sd
from deploybook.sandbox.postgres import PgCluster
from deploybook.session import scraps

ROOT = Path(__file__).resolve().parent.parent
ENV = "staging"
SERVICES = ("api", "web", "chatmock", "ocr")
URL_ENV = "SMOKE_TEST_DATABASE_URL"
SEED = """
CREATE TABLE concepts (id serial PRIMARY KEY, name text NOT NULL);
CREATE TABLE content_chunks (
    id bigserial PRIMARY KEY, content text NOT NULL, embedding vector({dim}));
INSERT INTO concepts (name) SELECT 'concept ' || g FROM generate_series(1, {concepts}) g;
INSERT INTO content_chunks (content, embedding)
SELECT 'Photosynthesis converts light energy, chunk ' || g, array_fill(0.1, ARRAY[{dim}])::vector
FROM generate_series(1, 10) g;
CREATE TABLE _prisma_migrations (
    id VARCHAR(36) PRIMARY KEY NOT NULL, checksum VARCHAR(64) NOT NULL, finished_at TIMESTAMPTZ,
    migration_name VARCHAR(255) NOT NULL, logs TEXT, rolled_back_at TIMESTAMPTZ,
    started_at TIMESTAMPTZ NOT NULL DEFAULT now(), applied_steps_count INTEGER NOT NULL DEFAULT 0);
INSERT INTO _prisma_migrations (id, checksum, finished_at, migration_name, applied_steps_count)
VALUES (gen_random_uuid()::text, repeat('a', 64), now(), '20250903120000_init', 1);
"""


def _unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def database(pg_cluster: PgCluster) -> Iterator[str]:
    """A seeded Americano-like database: the daemon's search and dashboard read it."""
    name = f"smoke_{uuid.uuid4().hex[:10]}"
    pg_cluster.create_database(name)
    url = pg_cluster.url(name)
    run_sql(url, "CREATE EXTENSION vector;" + SEED.format(dim=1536, concepts=5))
    yield url
    pg_cluster.drop_database(name)


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory, database: str) -> Iterator[dict[str, Any]]:
    state = tmp_path_factory.mktemp("daemon")
    info = sd.start_daemon(state, envs={ENV: {"database_url": database}})
    info["state_dir"] = state
    try:
        yield info
    finally:
        sd.stop_daemon(state)


@pytest.fixture(autouse=True)
def _clear_faults(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "daemon" in request.fixturenames:
        state = request.getfixturevalue("daemon")["state_dir"]
        for svc in SERVICES:
            sd.clear_fault(state, ENV, svc)


def fault(daemon: dict[str, Any], service: str, **kwargs: Any) -> None:
    sd.set_fault(daemon["state_dir"], ENV, service, **kwargs)


@pytest.fixture(scope="module")
def params(daemon: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Params:
    """A staging params file on the daemon's URLs with the shipped Americano smoke checks."""
    urls = daemon["envs"][ENV]
    shipped = read_params_yaml(ROOT / "params" / "sandbox.yaml")
    health = {"web": "/api/health"}
    doc = {
        "environment": {"name": ENV, "kind": "staging"},
        "epic": {"id": "4", "stories": ["4.1"], "embedding_dimension": 1536},
        "checkout": {"path": str(tmp_path_factory.mktemp("checkout"))},
        "database": {"url_env": URL_ENV},
        "services": [
            {"name": s, "base_url": urls[s], "health_path": health.get(s, "/health")}
            for s in SERVICES
        ],
        "smoke": shipped["smoke"],
        # queue depth is left out here so the watch tests judge the 5xx rate alone
        "thresholds": {
            "error_rate": 0.05,
            "p95_ms": 1500,
            "queue_depth": 10_000,
            "breach_sustain_s": 1,
            "watch_window_s": 3,
            "watch_interval_s": 0.5,
        },
    }
    path = tmp_path_factory.mktemp("params") / "staging.yaml"
    path.write_text(yaml.safe_dump(doc))
    return load_params(path, environ={})


def by_name(checks: list) -> dict[str, Any]:
    return {c.name: c for c in checks}


# -- params -> specs, content parsing (pure) ---------------------------------------------
def test_smoke_specs_join_base_url_and_path(params: Params) -> None:
    specs = {s.name: s for s in smoke.smoke_specs(params)}
    evaluate = specs["confidence calibrator"]
    assert evaluate.url == params.service("api").base_url + "/validation/evaluate"
    assert evaluate.method == "POST" and evaluate.json_body["confidence_level"] == 3
    assert evaluate.expect_keys == ["overall_score", "calibration_delta", "calibration_note"]
    assert evaluate.critical and evaluate.latency_budget_ms == 3000
    assert [s.url.rsplit("/", 1)[-1] for s in smoke.health_specs(params)] == [
        "health",
        "health",
        "health",
        "health",
    ]


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ('{"objectives": []}', "the objectives list is empty"),
        ('{"summary": "x"}', "no objectives list (got summary)"),
        ("Here are your objectives: 1. Explain", "is not JSON"),
        ("", "is empty"),
        ('{"objectives": [{"objective": " "}]}', "index [0] have no text"),
    ],
)
def test_parse_objectives_says_what_is_wrong(content: str, problem: str) -> None:
    with pytest.raises(ValueError, match=re.escape(problem)):
        smoke.parse_objectives(content)


def test_parse_objectives_accepts_fenced_json_and_bare_lists() -> None:
    assert smoke.parse_objectives('```json\n{"objectives": [{"objective": "Explain A"}]}\n```')
    assert smoke.parse_objectives('["Explain A", "Identify B"]') == ["Explain A", "Identify B"]


# -- the smoke suite ---------------------------------------------------------------------
def test_healthy_suite_passes_with_evidence(params: Params) -> None:
    checks = smoke.run_suite(params, expect_version="v1.3.0")
    assert checks.ok, checks.to_text()
    assert all(c.status is Status.PASS for c in checks), checks.to_text()
    names = by_name(checks)
    assert set(names) >= {
        "api health",
        "web health",
        "chatmock health",
        "ocr health",
        "semantic search returns results",
        "objective extraction round trip (ChatMock)",
        "IRT question selection",
        "confidence calibrator",
        "analytics summary",
        "ChatMock objective extraction round trip",
    }
    trip = names["ChatMock objective extraction round trip"]
    assert trip.evidence.startswith("POST /v1/chat/completions answered 200")
    assert "objective(s), first: 'Identify" in trip.evidence or "first: 'Explain" in trip.evidence
    assert trip.data["objectives"] >= 2 and trip.data["model"]
    assert names["api health"].data["version"] == "v1.3.0"
    assert names["analytics summary"].data["latency_ms"] < 1500


def test_wrong_running_version_fails_health(params: Params) -> None:
    checks = by_name(smoke.health_checks(params, expect_version="v1.4.0"))
    assert checks["api health"].status is Status.FAIL
    assert "reports version 'v1.3.0', expected 'v1.4.0'" in checks["api health"].evidence


def test_503_on_evaluate_fails_that_critical_check_by_name(
    params: Params, daemon: dict[str, Any]
) -> None:
    fault(daemon, "api", error_rate=1.0, status=503, paths=["/validation/evaluate"])
    checks = smoke.run_suite(params)
    assert [c.name for c in checks.failed] == ["confidence calibrator"]
    evaluate = by_name(checks)["confidence calibrator"]
    first = evaluate.evidence.splitlines()[0]
    assert first.startswith("POST /validation/evaluate answered 503 after 3 attempts, expected 200")
    assert "injected fault" in first
    assert by_name(checks)["api health"].status is Status.PASS


@pytest.mark.parametrize(
    ("chatmock_fault", "trip_problem"),
    [
        ({"down": True}, "connection refused by 127.0.0.1:"),
        ({"malformed": True}, "body is not valid JSON"),
    ],
    ids=["down", "malformed"],
)
def test_chatmock_trouble_fails_round_trip_and_evaluate(
    params: Params, daemon: dict[str, Any], chatmock_fault: dict[str, Any], trip_problem: str
) -> None:
    fault(daemon, "chatmock", **chatmock_fault)
    checks = by_name(smoke.run_suite(params))
    trip = checks["ChatMock objective extraction round trip"]
    assert trip.status is Status.FAIL and trip_problem in trip.evidence, trip.evidence
    assert "Traceback" not in trip.evidence
    evaluate = checks["confidence calibrator"]
    assert evaluate.status is Status.FAIL
    assert "answered 502" in evaluate.evidence and "LLM service (chatmock)" in evaluate.evidence
    assert checks["objective extraction round trip (ChatMock)"].status is Status.FAIL
    assert checks["IRT question selection"].status is Status.PASS


def test_latency_over_budget_fails_and_suite_runs_concurrently(
    params: Params, daemon: dict[str, Any]
) -> None:
    slow = ["/adaptive/question/next", "/validation/evaluate", "/analytics/understanding/dashboard"]
    fault(daemon, "api", latency_ms=1200, paths=slow)
    started = time.monotonic()
    checks = smoke.run_suite(params)
    elapsed = time.monotonic() - started
    irt = by_name(checks)["IRT question selection"]
    assert irt.status is Status.FAIL
    assert "over its 1000 ms budget" in irt.evidence.splitlines()[0]
    assert [c.name for c in checks.failed] == ["IRT question selection"]
    assert elapsed < 2.4, f"three 1.2 s endpoints took {elapsed:.1f} s: not concurrent"


def test_round_trip_without_chatmock_is_skipped(params: Params, monkeypatch) -> None:
    monkeypatch.delenv("CHATMOCK_URL", raising=False)
    without = params.model_copy(
        update={"services": [s for s in params.services if s.name != "chatmock"]}
    )
    check = smoke.chatmock_round_trip(without)
    assert check.status is Status.SKIP and "CHATMOCK_URL is not set" in check.evidence


# -- the SLA watch -----------------------------------------------------------------------
class Traffic:
    """Users: a background thread hitting the API while the watch runs."""

    def __init__(self, url: str, every_s: float = 0.05) -> None:
        self.url, self.every_s = url, every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(timeout=2) as client:
            while not self._stop.is_set():
                try:
                    client.get(self.url)
                except httpx.HTTPError:
                    pass
                self._stop.wait(self.every_s)

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


def test_healthy_watch_passes(params: Params) -> None:
    with Traffic(params.service("api").base_url + "/health"):
        result = sla.watch_slas(params, window_s=2)
    assert result.ok and result.breach is None, result.checks.to_text()
    assert {c.name for c in result.checks} == {f"SLA {s}" for s in SERVICES}
    api = by_name(result.checks)["SLA api"]
    assert api.status is Status.PASS and api.evidence.startswith("SLA held: max 5xx rate 0.0%")
    assert sla.breach_facts(result) is None
    assert not result.stopped_early and result.elapsed_s >= 2


def test_sustained_5xx_breaches_sla_and_records_facts(
    params: Params, daemon: dict[str, Any], monkeypatch, capsys
) -> None:
    glued: dict[str, Any] = {}
    monkeypatch.setattr(scraps, "write", lambda name, value, *_: glued.__setitem__(name, value))
    fault(daemon, "api", error_rate=1.0, status=503)
    with Traffic(params.service("api").base_url + "/health"):
        result = sla.watch_slas(params)
    api = by_name(result.checks)["SLA api"]
    assert api.status is Status.FAIL and not result.ok
    assert api.evidence.startswith("SLA breached: 5xx rate on api peak 100.0% > 5.0%")
    assert "run 05-rollback" in api.evidence
    assert result.stopped_early and result.elapsed_s < 3
    assert by_name(result.checks)["SLA web"].status is Status.PASS

    smoke_cells.record_breach(None, result)
    facts = glued["breach"]
    assert facts["service"] == "api" and facts["metric"] == "error_rate"
    assert facts["sustained"] and facts["duration_s"] >= 1 and facts["peak"] == 1.0
    assert facts["recommendation"] == "run 05-rollback" and facts["window_s"] == 3
    assert "recommend: run 05-rollback" in capsys.readouterr().out
    fig = result.plot()
    assert "SLA breached: 5xx rate on api" in fig._suptitle.get_text()


def test_fault_without_traffic_breaches_on_the_watchs_own_probes(
    params: Params, daemon: dict[str, Any]
) -> None:
    """No users at all: by default (no ``metrics`` in params) the watch probes each service
    itself, so a failing service breaches on the 5xx rate it measured."""
    assert params.service("ocr").metrics is None
    fault(daemon, "ocr", error_rate=1.0)
    result = sla.watch_slas(params)
    facts = sla.breach_facts(result)
    assert facts and facts["service"] == "ocr" and facts["metric"] == "error_rate"
    assert facts["peak"] == 1.0
    assert [c.name for c in result.checks.failed] == ["SLA ocr"]


@pytest.mark.parametrize(
    ("role", "setting", "status"),
    [
        ("staging", None, Status.WARN),  # default outside production: warn
        ("production", None, Status.FAIL),  # default in production: cannot confirm the SLA
        ("production", "warn", Status.WARN),
        ("staging", "fail", Status.FAIL),
    ],
)
def test_a_service_without_metrics_is_inconclusive_never_a_rollback(
    params: Params, role: str, setting: str | None, status: Status, monkeypatch, capsys
) -> None:
    """The api answers 404 on its metrics path: the watch cannot judge it and says so."""
    scrape_404 = MetricsSpec(source="scrape", path="/no-such-metrics")
    unmetered = params.model_copy(
        update={
            "environment": params.environment.model_copy(update={"role": role}),
            "thresholds": params.thresholds.model_copy(update={"inconclusive": setting}),
            "services": [params.service("api").model_copy(update={"metrics": scrape_404})],
        }
    )
    glued: dict[str, Any] = {}
    monkeypatch.setattr(scraps, "write", lambda name, value, *_: glued.__setitem__(name, value))
    result = sla.watch_slas(unmetered)
    [api] = result.checks
    assert result.outcome == "inconclusive" and api.status is status
    assert api.evidence.startswith("SLA inconclusive: cannot confirm the SLA of api")
    assert "errored 7 times in a row" in api.evidence and "404" in api.evidence
    assert result.breach is None and sla.breach_facts(result) is None
    smoke_cells.record_breach(None, result)
    shown = capsys.readouterr().out
    assert "SLA inconclusive" in shown and "api: the metrics source errored" in shown
    assert "breach" not in glued  # the breach scrap is for a measured breach only
    evidence = api.evidence + repr(api.data) + shown + repr(result.raw_samples())
    assert "05-rollback" not in evidence and "SLA breached" not in evidence
    fig = result.plot()
    assert "not judged (amber): api" in fig._suptitle.get_text()
    amber = to_rgb("#f9ab00")  # the unjudged span is shaded amber, not red
    assert any(to_rgb(p.get_facecolor()) == amber for p in fig.axes[0].patches)
    assert scraps.WatchSamples.model_validate(result.raw_samples()).root[0].error


# -- post-deploy validation ----------------------------------------------------------------
def test_post_deploy_validation_passes_on_a_good_database(params: Params, database: str) -> None:
    checks = smoke_validation.post_deploy_validation(params, {URL_ENV: database})
    assert checks.ok, checks.to_text()
    names = by_name(checks)
    assert names["vector dimensions = 1536"].status is Status.PASS
    assert "content_chunks.embedding=vector(1536)" in names["vector dimensions = 1536"].evidence
    assert names["_prisma_migrations has no failed rows"].status is Status.PASS
    assert names["key tables have rows"].evidence == "content_chunks=10, concepts=5"
    assert all(c.section == "15" for c in checks)


def test_post_deploy_validation_reports_each_integrity_problem(params: Params, pg_db: str) -> None:
    run_sql(
        pg_db,
        SEED.format(dim=768, concepts=0)
        + "INSERT INTO _prisma_migrations (id, checksum, migration_name, logs) VALUES "
        "('m2', repeat('c', 64), '20251001000000_validation', 'ERROR: type \"vector\" "
        "does not exist');",
    )
    checks = smoke_validation.post_deploy_validation(params, {URL_ENV: pg_db})
    names = by_name(checks)
    assert [c.name for c in checks.failed] == [
        "vector dimensions = 1536",
        "_prisma_migrations has no failed rows",
        "key tables have rows",
    ]
    assert "content_chunks.embedding is vector(768)" in names["vector dimensions = 1536"].evidence
    assert (
        "20251001000000_validation (ERROR: type"
        in names["_prisma_migrations has no failed rows"].evidence
    )
    assert names["key tables have rows"].evidence.startswith("empty table(s): concepts")


@pytest.mark.parametrize("case", ["missing secret", "unreachable"])
def test_post_deploy_validation_without_database_is_one_clear_failure(
    params: Params, case: str
) -> None:
    environ = (
        {}
        if case == "missing secret"
        else {URL_ENV: f"postgresql://app:s3cret-pw@127.0.0.1:{_unused_port()}/americano"}
    )
    checks = smoke_validation.post_deploy_validation(params, environ)
    assert len(checks) == 1 and checks[0].status is Status.FAIL
    expected = "SecretMissing: secret" if case == "missing secret" else "DatabaseError: cannot"
    assert checks[0].evidence.startswith(expected), checks[0].evidence
    assert "s3cret-pw" not in checks[0].evidence
