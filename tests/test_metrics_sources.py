"""Metrics sources of 04's SLA watch against real servers (issue 17 items 2 and 5).

A real Prometheus (Debian's ``prometheus``, installed with apt when missing, as the browser
test installs chromium) scrapes two replicas of a stand-in service on 127.0.0.1; the
PromQL source must compute the 5xx ratio and p95 the replicas served, summed over both.
The synthetic source probes a real server; the scrape source reads one replica's /metrics
with prometheus-client's parser. Every test stops what it started.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import yaml
from debian import debian_binary
from http_stub import free_port
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from deploybook.config import load_params, read_params_yaml
from deploybook.config.metrics import MetricsSpec
from deploybook.runbooks.smoke.sources import sources_for
from deploybook.systems.endpoints import SmokeSpec
from deploybook.systems.metrics import (
    MetricsError,
    PrometheusQuerySource,
    ScrapeSource,
    histogram_quantile,
)
from deploybook.systems.synthetic import SyntheticSource

ROOT = Path(__file__).resolve().parents[1]
PROMETHEUS = "/usr/bin/prometheus"


# -- a stand-in replica: the sandbox stand-ins' metric names, a real HTTP server ----------
class Replica:
    """GET /work?status=S&ms=M answers S and records M ms (``sleep`` really waits);
    GET /metrics is the prometheus-client text, as the stand-ins expose it."""

    def __init__(self, *, sleep: bool = False, queue: float = 0.0) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "http_requests", "HTTP requests", ["method", "path", "status"], registry=self.registry
        )
        self.duration = Histogram(
            "http_request_duration_seconds", "duration", ["path"], registry=self.registry
        )
        Gauge("queue_depth", "queue", registry=self.registry).set(queue)
        for status in ("200", "500"):  # series exist at 0 before traffic, so rate() sees it
            self.requests.labels("GET", "/work", status)
        self.duration.labels("/work")
        replica = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                url = urlsplit(self.path)
                if url.path == "/metrics":
                    body, status, kind = generate_latest(replica.registry), 200, CONTENT_TYPE_LATEST
                else:
                    q = parse_qs(url.query)
                    status, ms = int(q.get("status", ["200"])[0]), float(q.get("ms", ["1"])[0])
                    if sleep:
                        time.sleep(ms / 1000)
                    replica.requests.labels("GET", url.path, str(status)).inc()
                    replica.duration.labels(url.path).observe(ms / 1000)
                    body, kind = b'{"ok": true}', "application/json"
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)


def _traffic(client: httpx.Client, replica: Replica, n: int, errors: int, slow: int) -> None:
    """n requests: ``errors`` answered 500, ``slow`` taking 700 ms, the rest 30 ms."""
    for i in range(n):
        status = 500 if i < errors else 200
        ms = 700 if n - i <= slow else 30
        assert (
            client.get(f"{replica.url}/work", params={"status": status, "ms": ms}).status_code
            == status
        )


@pytest.fixture
def replicas() -> Iterator[list[Replica]]:
    started = [Replica(queue=3), Replica(queue=4)]
    try:
        yield started
    finally:
        for r in started:
            r.stop()


# -- a real Prometheus ----------------------------------------------------------------------
@pytest.fixture(scope="session")
def prometheus_bin() -> str:
    """Debian's prometheus; installed with apt when missing (fails instead of skipping in CI)."""
    required = bool(os.environ.get("CI")) or os.environ.get("DEPLOYBOOK_REQUIRE_PROMETHEUS") == "1"
    return debian_binary("prometheus", PROMETHEUS, required=required, recommends=False)


@pytest.fixture
def prometheus(prometheus_bin: str, replicas: list[Replica], tmp_path: Path) -> Iterator[str]:
    """Prometheus on a free 127.0.0.1 port scraping both replicas every second as job api."""
    port = free_port()
    targets = ", ".join(f"'127.0.0.1:{r.port}'" for r in replicas)
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        f"scrape_configs:\n  - job_name: api\n    static_configs:\n      - targets: [{targets}]\n"
    )
    log = (tmp_path / "prometheus.log").open("w")
    proc = subprocess.Popen(
        [
            prometheus_bin,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, (tmp_path / "prometheus.log").read_text()[-2000:]
            try:
                if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "prometheus not ready within 30 s"
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()


def _wait_for(
    source: PrometheusQuerySource, promql: str, want: float, timeout_s: float = 30
) -> None:
    deadline = time.monotonic() + timeout_s
    while (got := source.query(promql)) != want:
        assert time.monotonic() < deadline, f"{promql} = {got}, waited for {want}"
        time.sleep(0.3)


def test_prometheus_source_sums_two_replicas(prometheus: str, replicas: list[Replica]) -> None:
    source = PrometheusQuerySource(prometheus, selector='job="api"', range_="5m")
    try:
        _wait_for(source, 'count(up{job="api"} == 1)', 2.0)
        time.sleep(2.5)  # every series has a sample at 0 before the traffic
        with httpx.Client() as client:
            for r in replicas:  # 100 each: 10 % 5xx, 10 % slow -> 200, 20 5xx, 20 slow
                _traffic(client, r, 100, errors=10, slow=10)
        _wait_for(source, 'sum(http_requests_total{job="api"})', 200.0)
        time.sleep(2.5)  # and a second sample after it
        reading = source.read(time.monotonic())
    finally:
        source.close()
    # what the replicas served, summed over both (Prometheus's rate() extrapolates the
    # counters, but each replica's 5xx and slow shares are equal, so the ratios are exact)
    served = {}
    for r in replicas:
        for family in r.registry.collect():
            for s in family.samples:
                if s.name == "http_request_duration_seconds_bucket":
                    le = float(s.labels["le"])
                    served[le] = served.get(le, 0.0) + s.value
    expected_p95 = histogram_quantile(0.95, sorted(served.items())) * 1000
    assert expected_p95 == pytest.approx(625.0)  # rank 190 of 200 inside (0.5 s, 0.75 s]
    assert reading.error_rate == pytest.approx(0.10, rel=1e-6)
    assert reading.p95_ms == pytest.approx(expected_p95, rel=1e-6)
    assert reading.queue_depth == 7.0
    assert 200 <= reading.requests < 260  # increase() extrapolates a little past the samples

    nothing = PrometheusQuerySource(prometheus, selector='job="nope"')
    try:
        empty = nothing.read(time.monotonic())
    finally:
        nothing.close()
    assert (empty.error_rate, empty.p95_ms, empty.queue_depth, empty.requests) == (None,) * 4


def test_prometheus_down_is_an_error_not_data() -> None:
    source = PrometheusQuerySource(f"http://127.0.0.1:{free_port()}", selector='job="api"')
    try:
        with pytest.raises(MetricsError, match="Prometheus http://127.0.0.1:"):
            source.read(0.0)
    finally:
        source.close()


# -- synthetic and scrape against real servers ----------------------------------------------
def test_synthetic_source_measures_its_own_probes() -> None:
    replica = Replica(sleep=True)
    probes = [
        SmokeSpec(name="ok", url=f"{replica.url}/work?status=200&ms=5"),
        SmokeSpec(name="broken", url=f"{replica.url}/work?status=503&ms=5"),
        SmokeSpec(name="slow", url=f"{replica.url}/work?status=200&ms=250"),
        SmokeSpec(name="ok too", url=f"{replica.url}/work?status=200&ms=5"),
    ]
    source = SyntheticSource(probes, repeat=5)
    try:
        first = source.read(0.0)
        second = source.read(1.0)
    finally:
        source.close()
        replica.stop()
    for reading in (first, second):  # every read is one interval's own measurements
        assert reading.requests == 20.0
        assert reading.error_rate == pytest.approx(0.25)
        # 15 of 20 probes answer in ~5 ms, 5 take 250 ms: p95 is among the slow ones
        assert 250 <= reading.p95_ms < 2000
    down = SyntheticSource([SmokeSpec(name="x", url=f"http://127.0.0.1:{free_port()}/")])
    try:
        with pytest.raises(MetricsError, match="synthetic probes got no answer"):
            down.read(0.0)
    finally:
        down.close()


def test_scrape_source_reads_one_instance(replicas: list[Replica]) -> None:
    replica = replicas[0]
    source = ScrapeSource(f"{replica.url}/metrics")
    try:
        first = source.read(0.0)
        with httpx.Client() as client:
            _traffic(client, replica, 100, errors=10, slow=10)
        second = source.read(1.0)
    finally:
        source.close()
    assert (first.error_rate, first.queue_depth) == (None, 3.0)  # a rate needs two scrapes
    assert second.requests == 100.0 and second.error_rate == pytest.approx(0.1)
    assert second.p95_ms == pytest.approx(625.0)  # rank 95 of 100 inside (0.5 s, 0.75 s]


# -- params -> sources -----------------------------------------------------------------------
VARIABLES = {
    name: "http://127.0.0.1:9"
    for name in ("API_URL", "WEB_URL", "CHATMOCK_URL", "OCR_URL", "AMERICANO_API_URL")
} | {"AMERICANO_CHECKOUT": "/srv/americano", "PG_BIN_DIR": "/usr/bin"}


@pytest.mark.parametrize("env", ["staging", "production"])
def test_params_choose_each_services_source(env: str, tmp_path: Path) -> None:
    """Shipped: every service probed (Americano serves no /metrics); an environment that
    switches the API to Prometheus gets PromQL over job="api"."""
    params = load_params(ROOT / "params" / f"{env}.yaml", VARIABLES)
    sources = sources_for(params)
    try:
        assert all(isinstance(s, SyntheticSource) for s in sources.values())
        assert [p.url for p in sources["chatmock"].probes] == ["http://127.0.0.1:9/health"]
        assert len(sources["api"].probes) > 1  # the API's smoke checks, not only /health
    finally:
        for s in sources.values():
            s.close()
    services = read_params_yaml(ROOT / "params" / f"{env}.yaml")["services"]
    for service in services:
        if service["name"] == "api":
            service["metrics"] = {"source": "prometheus", "url": "${PROMETHEUS_URL}"}
    switched = tmp_path / f"{env}-prometheus.yaml"
    switched.write_text(
        yaml.safe_dump({"extends": str(ROOT / "params" / f"{env}.yaml"), "services": services})
    )
    params = load_params(switched, VARIABLES | {"PROMETHEUS_URL": "http://127.0.0.1:9"})
    sources = sources_for(params)
    try:
        assert isinstance(sources["api"], PrometheusQuerySource)
        assert 'job="api"' in sources["api"].queries["error_rate"]
        assert sources["api"].url == "http://127.0.0.1:9"
        assert isinstance(sources["web"], SyntheticSource)
    finally:
        for s in sources.values():
            s.close()


def test_metrics_spec_refuses_incoherent_settings() -> None:
    assert MetricsSpec().source == "synthetic"
    with pytest.raises(ValueError, match="needs url"):
        MetricsSpec(source="prometheus")
    with pytest.raises(ValueError, match="not a Prometheus metric name"):
        MetricsSpec(source="prometheus", url="http://p:9090", requests_metric="bad name")
    with pytest.raises(ValueError, match="PromQL duration"):
        MetricsSpec(source="prometheus", url="http://p:9090", range="a minute")
