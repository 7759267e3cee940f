"""Metrics parsing, rates and SLA watch windows, against real /metrics endpoints on 127.0.0.1.

Watch tests inject a fake clock whose ``sleep`` advances time and adds traffic to the stub's
counters, so a 60 s window runs in milliseconds while every scrape is a real HTTP request.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from http_stub import StubServer, free_port
from matplotlib.figure import Figure

from deploybook.core.checks import Status, gate
from deploybook.core.plots import plot_schedule
from deploybook.errors import ConfigError, GateFailed
from deploybook.runbooks.smoke.monitor import (
    MetricsError,
    PrometheusQuerySource,
    Sample,
    Thresholds,
    histogram_quantile,
    parse_metrics,
    rates,
    scrape,
    watch,
)

METRICS_TEXT = """\
# TYPE http_requests_total counter
http_requests_total{method="GET",path="/health",status="200"} 90
http_requests_total{method="POST",path="/validation/evaluate",status="503"} 10
http_requests_total{method="GET",path="/metrics",status="200"} 500
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{path="/health",le="0.1"} 50
http_request_duration_seconds_bucket{path="/health",le="0.25"} 90
http_request_duration_seconds_bucket{path="/health",le="0.5"} 100
http_request_duration_seconds_bucket{path="/health",le="+Inf"} 100
http_request_duration_seconds_count{path="/health"} 100
http_request_duration_seconds_sum{path="/health"} 12.5
# TYPE queue_depth gauge
queue_depth{queue="ocr"} 3
queue_depth{queue="llm"} 4
service_version_info{version="v1.4.0"} 1
"""


@pytest.fixture
def api():
    with StubServer() as server:
        yield server


@pytest.fixture
def ocr():
    with StubServer() as server:
        yield server


class FakeTime:
    """A monotonic clock that only moves when slept; each sleep runs the traffic scenario."""

    def __init__(self, traffic: Callable[[float], None] = lambda t: None) -> None:
        self.t0 = self.now = 5000.0
        self.traffic = traffic

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.traffic(self.now - self.t0)


def test_parse_metrics_sums_labels_and_skips_our_own_scrapes():
    s = parse_metrics(METRICS_TEXT, url="u", at=1.0)
    assert (s.requests, s.errors) == (100, 10)
    assert s.buckets == ((0.1, 50), (0.25, 90), (0.5, 100), (float("inf"), 100))
    assert s.queue_depth == 7 and s.version == "v1.4.0"


def test_parse_metrics_rejects_garbage():
    with pytest.raises(MetricsError, match="not Prometheus text"):
        parse_metrics("<html>{not metrics", url="http://x/metrics")


@pytest.mark.parametrize(
    ("q", "buckets", "expected"),
    [
        (0.95, [(0.1, 50), (0.25, 90), (0.5, 100), (float("inf"), 100)], 0.375),
        (0.5, [(0.1, 50), (0.25, 90), (0.5, 100), (float("inf"), 100)], 0.1),
        (0.25, [(0.1, 50), (0.25, 90), (float("inf"), 100)], 0.05),
        (0.99, [(0.1, 50), (0.25, 90), (float("inf"), 100)], 0.25),  # in +Inf: highest bound
        (0.95, [(0.1, 0), (float("inf"), 0)], None),
    ],
)
def test_histogram_quantile_interpolates_like_prometheus(q, buckets, expected):
    assert histogram_quantile(q, buckets) == (pytest.approx(expected) if expected else None)


def test_rates_use_deltas_between_scrapes():
    inf = float("inf")
    prev = Sample("u", 0.0, 1000, 5, ((0.1, 900), (0.5, 1000), (inf, 1000)), 1, "v")
    cur = Sample("u", 15.0, 1100, 25, ((0.1, 950), (0.5, 1100), (inf, 1100)), 9, "v")
    r = rates(prev, cur)
    assert r.interval_s == 15 and r.requests == 100
    assert r.error_rate == pytest.approx(0.2)
    # 50 of 100 new requests <= 0.1 s, the rest <= 0.5 s: rank 95 -> 0.1 + 0.4 * 45/50
    assert r.p95_ms == pytest.approx(460.0)
    assert r.queue_depth == 9


def test_rates_treat_a_counter_reset_as_a_restart():
    inf = float("inf")
    prev = Sample("u", 0.0, 1000, 5, ((0.1, 1000), (inf, 1000)), 0, "v1.3.0")
    cur = Sample("u", 15.0, 40, 4, ((0.1, 40), (inf, 40)), 0, "v1.4.0")
    r = rates(prev, cur)
    assert r.requests == 40 and r.error_rate == pytest.approx(0.1)


def test_no_traffic_means_no_error_rate():
    s = Sample("u", 0.0, 10, 0, (), None, None)
    assert rates(s, s).error_rate is None and rates(s, s).p95_ms is None


def test_scrape_reads_a_live_metrics_endpoint(api):
    api.metrics.record(n=10, status=200, latency_s=0.03)
    api.metrics.record(n=2, status=500, latency_s=0.2)
    api.metrics.queue_depth = 4
    s = scrape(api.url("/metrics"))
    assert (s.requests, s.errors, s.queue_depth, s.version) == (12, 2, 4, "v1.4.0")


def test_scrape_failures_are_clear(api):
    with pytest.raises(MetricsError, match="connection refused by 127.0.0.1"):
        scrape(f"http://ops:pw-in-url-42@127.0.0.1:{free_port()}/metrics")
    try:
        scrape(f"http://ops:pw-in-url-42@127.0.0.1:{free_port()}/metrics")
    except MetricsError as exc:
        assert "pw-in-url-42" not in str(exc)
    api.route("GET", "/metrics", status=500, body={"detail": "boom"})
    with pytest.raises(MetricsError, match="answered 500, expected 200"):
        scrape(api.url("/metrics"))


def steady(stub: StubServer, ok: int = 100, errors: int = 0, latency_s: float = 0.03) -> None:
    stub.metrics.record(n=ok, status=200, latency_s=latency_s)
    if errors:
        stub.metrics.record(n=errors, status=503, latency_s=latency_s)


def test_sustained_5xx_fails_sla_breached_with_facts_and_stops_early(api, ocr):
    def traffic(t: float) -> None:
        steady(api, ok=50, errors=50 if t >= 10 else 0)
        steady(ocr)

    fake = FakeTime(traffic)
    result = watch(
        {"api": api.url("/metrics"), "ocr": ocr.url("/metrics")},
        Thresholds(error_rate=0.01, p95_ms=500, queue_depth=50),
        window_s=60,
        interval_s=5,
        sustain_s=15,
        clock=fake.clock,
        sleep=fake.sleep,
    )
    by_name = {c.name: c for c in result.checks}
    assert by_name["SLA api"].status is Status.FAIL and by_name["SLA api"].critical
    assert by_name["SLA api"].evidence.startswith("SLA breached: 5xx rate on api peak 50.0% > 1.0%")
    assert "run 05-rollback" in by_name["SLA api"].evidence
    assert by_name["SLA ocr"].status is Status.PASS
    b = result.breach
    assert b is not None
    assert (b["service"], b["metric"], b["threshold"]) == ("api", "error_rate", 0.01)
    assert b["peak"] == pytest.approx(0.5)
    assert (b["first_seen_s"], b["last_seen_s"], b["duration_s"]) == (10, 25, 15)
    assert b["recommendation"] == "run 05-rollback" and b["sustained"]
    assert datetime.fromisoformat(b["last_seen"]) - datetime.fromisoformat(b["first_seen"]) == (
        timedelta(seconds=15)
    )
    # stopped as soon as the breach was sustained, not at the end of the 60 s window
    assert result.stopped_early and result.elapsed_s == 25
    assert max(r["t_s"] for r in result.samples) == 25
    with pytest.raises(GateFailed, match="SLA api \\(SLA breached: 5xx rate on api"):
        gate(result.checks)


def test_a_one_sample_spike_only_warns(api):
    fake = FakeTime(lambda t: steady(api, ok=50, errors=50 if t == 20 else 0))
    result = watch(
        {"api": api.url("/metrics")},
        Thresholds(error_rate=0.01),
        window_s=40,
        interval_s=5,
        sustain_s=10,
        clock=fake.clock,
        sleep=fake.sleep,
    )
    [check] = result.checks
    assert check.status is Status.WARN
    assert check.evidence.startswith("short spike, not sustained: 5xx rate on api peak 50.0%")
    assert result.breach is None and not result.stopped_early
    assert [b["duration_s"] for b in result.breaches] == [0]
    assert result.elapsed_s == 40 and len(result.samples) == 9
    gate(result.checks)  # a spike does not block


def test_latency_breach_only_after_the_sustain_duration(api):
    fake = FakeTime(lambda t: steady(api, latency_s=0.8 if t >= 10 else 0.03))
    result = watch(
        {"api": api.url("/metrics")},
        Thresholds(p95_ms=500),
        window_s=60,
        interval_s=5,
        sustain_s=20,
        clock=fake.clock,
        sleep=fake.sleep,
    )
    assert result.breach["metric"] == "p95_ms" and result.breach["first_seen_s"] == 10
    assert result.elapsed_s == 30  # 10 s + 20 s sustain, then stop
    rows = [r for r in result.samples if r["p95_ms"] is not None]
    assert rows[0]["p95_ms"] < 100 and rows[-1]["p95_ms"] > 500


def test_unreadable_metrics_count_as_a_breach(api):
    url = f"http://ops:pw-metrics-99@127.0.0.1:{free_port()}/metrics"
    fake = FakeTime()
    result = watch(
        {"chatmock": url},
        window_s=30,
        interval_s=5,
        sustain_s=10,
        clock=fake.clock,
        sleep=fake.sleep,
    )
    [check] = result.checks
    assert check.status is Status.FAIL
    assert "SLA breached: metrics unreachable on chatmock" in check.evidence
    assert "connection refused" in check.evidence
    assert "pw-metrics-99" not in check.evidence + repr(result.samples)


def prometheus_answer(values: dict[str, float | None]):
    def handler(request):
        query = request.query["query"][0]
        metric = next(m for m in values if m in query)
        value = values[metric]
        result = [] if value is None else [{"metric": {}, "value": [1.0, str(value)]}]
        return 200, {"status": "success", "data": {"resultType": "vector", "result": result}}

    return handler


def test_prometheus_query_source(api):
    # which query is which: the 5xx ratio mentions http_requests_total, p95 the buckets
    api.route(
        "GET",
        "/api/v1/query",
        handler=prometheus_answer(
            {"http_requests_total": 0.2, "duration_seconds_bucket": 123.0, "queue_depth": None}
        ),
    )
    source = PrometheusQuerySource(api.url(), selector='job="api"')
    assert (
        'status=~"5.."' in source.queries["error_rate"] and 'job="api"' in source.queries["p95_ms"]
    )
    reading = source.read(0.0)
    assert (reading.error_rate, reading.p95_ms, reading.queue_depth) == (0.2, 123.0, None)
    fake = FakeTime()
    result = watch(
        {"api": source}, Thresholds(error_rate=0.05), 20, 5, 10, clock=fake.clock, sleep=fake.sleep
    )
    assert result.breach["metric"] == "error_rate" and result.breach["peak"] == 0.2
    source.close()


def test_prometheus_query_errors_are_metrics_errors(api):
    api.route(
        "GET",
        "/api/v1/query",
        body={"status": "error", "errorType": "bad_data", "error": "parse error"},
        status=400,
    )
    with pytest.raises(MetricsError, match="Prometheus rejected .*bad_data: parse error"):
        PrometheusQuerySource(api.url()).query("up{")
    with pytest.raises(ConfigError, match="unknown metrics"):
        PrometheusQuerySource(api.url(), queries={"latency": "x"})


def test_progress_callback_and_tqdm_like_bar(api):
    seen: list[dict] = []

    class Bar:
        total = 0.0

        def update(self, n: float) -> None:
            self.total += n

    for progress in (seen.append, Bar()):
        fake = FakeTime(lambda t: steady(api))
        watch(
            {"api": api.url("/metrics")},
            window_s=20,
            interval_s=5,
            sustain_s=10,
            progress=progress,
            clock=fake.clock,
            sleep=fake.sleep,
        )
    assert [p["t_s"] for p in seen] == [0, 5, 10, 15, 20]
    assert progress.total == 20


def test_watch_with_the_real_clock_and_tqdm(api):
    api.metrics.record(n=10)
    result = watch({"api": api.url("/metrics")}, None, 0.4, 0.2, 0.2, progress=True)
    assert result.ok and len(result.samples) == 3


def test_watch_rejects_a_window_shorter_than_the_sustain_duration(api):
    with pytest.raises(ConfigError, match="sustain_s \\(600\\) is longer than window_s \\(300\\)"):
        watch({"api": api.url("/metrics")}, window_s=300, interval_s=15, sustain_s=600)


def test_watch_result_frame_and_plot(api):
    fake = FakeTime(lambda t: steady(api, ok=50, errors=50 if t >= 10 else 0))
    result = watch(
        {"api": api.url("/metrics")}, Thresholds(), 60, 5, 10, clock=fake.clock, sleep=fake.sleep
    )
    frame = result.to_frame()
    assert {"t_s", "time", "service", "error_rate", "p95_ms", "queue_depth"} <= set(frame.columns)
    fig = result.plot()
    assert isinstance(fig, Figure) and len(fig.axes) == 3
    assert "SLA breached" in fig._suptitle.get_text()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    assert buf.getvalue().startswith(b"\x89PNG")
    assert "deploybook-checks" in result._repr_html_()


def test_plot_schedule_marks_steps_after_the_window():
    t0 = datetime(2025, 3, 1, 22, 0, tzinfo=UTC)
    steps = [
        {"name": "announce", "start": t0, "end": t0 + timedelta(minutes=2), "status": "done"},
        {"name": "apply migrations", "start": 2, "end": 20, "status": "pass"},
        {"name": "deploy web", "start": 20, "end": 75, "status": "fail"},
        {"name": "prod smoke", "start": 75, "end": None, "status": "running"},
    ]
    fig = plot_schedule(steps, t0, now=t0 + timedelta(minutes=80))
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    texts = [t.get_text() for t in fig.axes[1].texts]
    assert " 55 min (after the window)" in texts and " 18 min" in texts
    assert [t.get_text() for t in fig.axes[1].get_yticklabels()][-1] == "announce"
    fig.savefig(io.BytesIO(), format="png")
