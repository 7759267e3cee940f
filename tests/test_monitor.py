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

from deploybook.config.slo import BurnRate
from deploybook.core.checks import Status, gate
from deploybook.core.plots import plot_schedule
from deploybook.errors import ConfigError, GateFailed
from deploybook.runbooks.smoke.monitor import (
    BREACH,
    INCONCLUSIVE,
    PASS,
    ROLLBACK,
    MetricsError,
    PrometheusQuerySource,
    Reading,
    Sample,
    Thresholds,
    histogram_quantile,
    parse_metrics,
    rates,
    scrape,
    watch,
)
from deploybook.runbooks.smoke.verdict import burn_alert, burn_rate, judged

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


def test_unreadable_metrics_are_inconclusive_never_a_breach(api):
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
    assert result.outcome == INCONCLUSIVE and result.outcomes == {"chatmock": INCONCLUSIVE}
    assert check.status is Status.FAIL  # the monitor's default: cannot confirm the SLA
    assert check.evidence.startswith("SLA inconclusive: cannot confirm the SLA of chatmock")
    assert "errored 7 times in a row" in check.evidence
    assert "connection refused" in check.evidence
    assert "SLA breached" not in check.evidence and "05-rollback" not in check.evidence
    assert result.breach is None and result.breaches == []
    assert "pw-metrics-99" not in check.evidence + repr(result.samples)
    with pytest.raises(GateFailed, match="SLA inconclusive"):
        gate(result.checks)


class Scripted:
    """A metrics source (the `Source` protocol) answering from a script: a Reading, None for
    no data at all, or an exception to raise."""

    def __init__(self, script: Callable[[float], Reading | Exception | None]) -> None:
        self.script, self.t0 = script, None

    def read(self, at: float) -> Reading:
        self.t0 = at if self.t0 is None else self.t0
        answer = self.script(at - self.t0)
        if isinstance(answer, Exception):
            raise answer
        return answer or Reading()

    def close(self) -> None:
        pass


def scripted_watch(script, thresholds: Thresholds, window_s: float = 60, sustain_s: float = 10):
    fake = FakeTime()
    return watch(
        {"api": Scripted(script)},
        thresholds,
        window_s=window_s,
        interval_s=5,
        sustain_s=sustain_s,
        clock=fake.clock,
        sleep=fake.sleep,
    )


def test_a_service_without_metrics_is_inconclusive_not_breached():
    result = scripted_watch(lambda t: None, Thresholds())
    [check] = result.checks
    assert result.outcome == INCONCLUSIVE and result.breach is None
    assert "no data: no sample reported 5xx rate, p95 latency, queue depth" in check.evidence
    assert "05-rollback" not in check.evidence + repr(check.data) + repr(result.raw_samples())
    assert result.inconclusive == [{"service": "api", "first_s": 0, "last_s": 60, "samples": 13}]


@pytest.mark.parametrize(
    ("failing", "outcome"),
    [
        ((10, 15), PASS),  # two errors in a row: a gap, not enough to give up
        ((10, 15, 20), INCONCLUSIVE),
        ((10, 20, 30, 40), PASS),  # errors, but never three in a row
    ],
)
def test_a_source_erroring_three_times_in_a_row_is_inconclusive(failing, outcome):
    def script(t: float) -> Reading | Exception:
        if t in failing:
            return MetricsError("GET http://api/metrics answered 502, expected 200")
        return Reading(error_rate=0.0, p95_ms=50, queue_depth=1, requests=100)

    result = scripted_watch(script, Thresholds())
    assert result.outcome == outcome and result.breach is None
    [check] = result.checks
    assert check.status is (Status.FAIL if outcome == INCONCLUSIVE else Status.PASS)
    assert "05-rollback" not in check.evidence
    if outcome == INCONCLUSIVE:
        assert "errored 3 times in a row (limit 3; last: GET http://api/metrics answered 502" in (
            check.evidence
        )


def test_low_traffic_is_inconclusive_and_a_single_error_is_not_a_breach():
    # 1 request in 2 fails: a 50% 5xx rate, measured on too little traffic to mean anything
    low = Reading(error_rate=0.5, p95_ms=40, requests=2)
    result = scripted_watch(lambda t: low, Thresholds(min_requests=20, queue_depth=None))
    [check] = result.checks
    assert result.outcome == INCONCLUSIVE and result.breach is None and result.breaches == []
    assert "too little traffic: at most 2 requests per sample, 20 needed" in check.evidence
    assert "05-rollback" not in check.evidence
    # the same readings with the default minimum (0) are a measured, sustained breach
    result = scripted_watch(lambda t: low, Thresholds(queue_depth=None))
    assert result.outcome == BREACH and result.breach["recommendation"] == ROLLBACK


def test_inconclusive_warns_when_params_say_warn():
    result = scripted_watch(lambda t: None, Thresholds(inconclusive="warn"))
    [check] = result.checks
    assert check.status is Status.WARN and result.outcome == INCONCLUSIVE
    gate(result.checks)  # a warning does not block


def test_a_measured_breach_wins_over_missing_data():
    def script(t: float) -> Reading | Exception:
        if t < 20:
            return MetricsError("scrape timed out")
        return Reading(error_rate=0.4, requests=100)

    result = scripted_watch(script, Thresholds(queue_depth=None))
    [check] = result.checks
    assert result.outcome == BREACH and check.data["outcome"] == BREACH
    assert check.evidence.startswith("SLA breached: 5xx rate on api peak 40.0% > 1.0%")
    assert "run 05-rollback" in check.evidence


def rows(*samples: tuple[float, float, float]) -> list[dict]:
    """Synthetic samples (t_s, requests, 5xx rate) of one service."""
    return [{"t_s": t, "requests": n, "error_rate": e, "service": "api"} for t, n, e in samples]


RULE = BurnRate(factor=14.4, long_s=300, short_s=60, slo=0.99)


@pytest.mark.parametrize(
    ("samples", "expected"),
    [
        # 20% errors for 5 minutes: 20x the 1% budget in both windows
        ([(t, 100, 0.2) for t in range(15, 301, 15)], 20.0),
        # burned hard earlier, recovered in the last minute: the short window says it stopped
        ([(t, 100, 0.5 if t < 240 else 0.0) for t in range(15, 301, 15)], 0.0),
        # a spike in the last minute only (30x): the long window (7.5x) says it is a blip
        ([(t, 100, 0.0 if t < 240 else 0.3) for t in range(15, 301, 15)], 7.5),
    ],
)
def test_burn_rate_needs_both_windows(samples, expected):
    assert burn_alert(rows(*samples), 300, RULE) == pytest.approx(expected)


def test_burn_rate_windows_and_the_minimum_request_count():
    samples = rows((0, 1000, 0.0), (240, 10, 0.0), (300, 1, 1.0))
    # the long window (0, 300] leaves out t=0; the short one (240, 300] only t=300
    assert burn_rate(samples, 300, 300, 0.01) == (pytest.approx(1 / 11 / 0.01), 11)
    assert burn_rate(samples, 300, 60, 0.01) == (pytest.approx(100.0), 1)
    assert burn_rate(rows(), 300, 60, 0.01) == (None, 0.0)
    # one error at low traffic: a huge burn rate on one request is not a breach
    one = rows((240, 1, 0.0), (300, 1, 1.0))
    assert burn_alert(one, 300, RULE) == pytest.approx(50.0)
    assert burn_alert(one, 300, RULE, min_requests=20) is None


def test_judged_drops_traffic_metrics_below_the_minimum():
    row = {"error_rate": 1.0, "p95_ms": 900.0, "queue_depth": 3.0, "requests": 1}
    assert judged(row, 10) == {"error_rate": None, "p95_ms": None, "queue_depth": 3.0}
    assert judged(row, 0) == {"error_rate": 1.0, "p95_ms": 900.0, "queue_depth": 3.0}
    assert judged({**row, "requests": None}, 10)["error_rate"] == 1.0  # unknown: as read


def test_a_burn_rate_breach_recommends_rollback_without_waiting_for_sustain():
    steady_burn = Reading(error_rate=0.2, requests=100)
    thresholds = Thresholds(
        error_rate=None,
        queue_depth=None,
        p95_ms=None,
        min_requests=50,
        burn_rate=BurnRate(factor=10, long_s=20, short_s=5, slo=0.99),
    )
    result = scripted_watch(lambda t: steady_burn, thresholds, sustain_s=30)
    assert result.outcome == BREACH
    b = result.breach
    assert b["metric"] == "burn_rate" and b["peak"] == pytest.approx(20.0)
    assert b["recommendation"] == ROLLBACK and result.elapsed_s == 0
    [check] = result.checks
    assert "SLA breached: 5xx error-budget burn rate on api peak 20.0x > 10.0x" in check.evidence
    # the same traffic below the minimum request count: no alert, and nothing judged
    thin = scripted_watch(lambda t: Reading(error_rate=0.2, requests=10), thresholds, sustain_s=30)
    assert thin.outcome == INCONCLUSIVE and thin.breach is None


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
