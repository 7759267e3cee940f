"""Reading service metrics: Prometheus text endpoints and the Prometheus query API.

Pure core: `parse_metrics` turns Prometheus text into a `Sample` (cumulative counters);
`rates` turns two samples into a 5xx rate, a p95 latency and a queue depth. I/O stays thin:
`scrape`, `ScrapeSource`, `PrometheusQuerySource`, each failing with `MetricsError`.
`monitor` judges these readings against SLA thresholds.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import httpx
from prometheus_client.parser import text_string_to_metric_families

from deploybook.errors import ConfigError, DeploybookError
from deploybook.systems.http import map_httpx_error, safe_url

REQUESTS = "http_requests_total"
DURATION_BUCKET = "http_request_duration_seconds_bucket"
QUEUE_DEPTH = "queue_depth"
VERSION_INFO = "service_version_info"
STATUS_LABELS = ("status", "code", "status_code")
EXCLUDE_PATHS = ("/metrics",)  # our own scrapes are not user traffic


class MetricsError(DeploybookError):
    """A metrics endpoint or Prometheus query could not be read or parsed."""


@dataclass(frozen=True)
class Sample:
    """Cumulative counters from one scrape of a Prometheus text endpoint."""

    url: str
    at: float
    requests: float
    errors: float
    buckets: tuple[tuple[float, float], ...]  # (le seconds, cumulative count), +Inf last
    queue_depth: float | None
    version: str | None


@dataclass(frozen=True)
class Reading:
    """What a source reports for one interval: the numbers the thresholds judge."""

    error_rate: float | None = None
    p95_ms: float | None = None
    queue_depth: float | None = None
    requests: float | None = None
    version: str | None = None


def parse_metrics(
    text: str, *, url: str = "", at: float = 0.0, exclude_paths: Sequence[str] = EXCLUDE_PATHS
) -> Sample:
    """Sum requests, 5xx and latency buckets over all labels (minus our own scrapes)."""
    requests = errors = 0.0
    buckets: dict[float, float] = {}
    queue: float | None = None
    version: str | None = None
    try:
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                if s.labels.get("path") in exclude_paths:
                    continue
                if s.name == REQUESTS:
                    requests += s.value
                    status = next((s.labels[k] for k in STATUS_LABELS if k in s.labels), "")
                    errors += s.value if status.startswith("5") else 0.0
                elif s.name == DURATION_BUCKET:
                    le = float(s.labels["le"])
                    buckets[le] = buckets.get(le, 0.0) + s.value
                elif s.name == QUEUE_DEPTH:
                    queue = (queue or 0.0) + s.value
                elif s.name == VERSION_INFO:
                    version = s.labels.get("version", version)
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        raise MetricsError(f"{url or 'metrics'}: not Prometheus text ({exc})") from None
    return Sample(url, at, requests, errors, tuple(sorted(buckets.items())), queue, version)


def histogram_quantile(q: float, buckets: Sequence[tuple[float, float]]) -> float | None:
    """Prometheus's histogram_quantile: linear interpolation inside the bucket holding rank q."""
    buckets = sorted(buckets)
    if not buckets or buckets[-1][1] <= 0:
        return None
    counts, running = [], 0.0
    for _, count in buckets:
        running = max(running, count)  # tolerate non-monotonic buckets, as Prometheus does
        counts.append(running)
    rank = q * counts[-1]
    i = next(i for i, c in enumerate(counts) if c >= rank)
    upper = buckets[i][0]
    if math.isinf(upper):
        return buckets[i - 1][0] if i else None  # the highest finite bound is the best answer
    lower, below = (buckets[i - 1][0], counts[i - 1]) if i else (0.0, 0.0)
    inside = counts[i] - below
    return upper if inside <= 0 else lower + (upper - lower) * (rank - below) / inside


@dataclass(frozen=True)
class Rates:
    """The interval between two samples, as the thresholds see it."""

    interval_s: float
    requests: float
    errors: float
    error_rate: float | None  # None when there was no traffic
    p95_ms: float | None
    queue_depth: float | None


def rates(prev: Sample, cur: Sample, quantile: float = 0.95) -> Rates:
    """Deltas between two scrapes; a counter that went down means a restart (count from 0)."""
    old = dict(prev.buckets)
    reset = cur.requests < prev.requests or any(c < old.get(le, 0.0) for le, c in cur.buckets)
    if reset:
        requests, errors, deltas = cur.requests, cur.errors, list(cur.buckets)
    else:
        requests, errors = cur.requests - prev.requests, cur.errors - prev.errors
        deltas = [(le, c - old.get(le, 0.0)) for le, c in cur.buckets]
    p95 = histogram_quantile(quantile, deltas)
    return Rates(
        interval_s=cur.at - prev.at,
        requests=requests,
        errors=errors,
        error_rate=errors / requests if requests > 0 else None,
        p95_ms=None if p95 is None else p95 * 1000,
        queue_depth=cur.queue_depth,
    )


def scrape(
    url: str, *, timeout_s: float = 5.0, at: float | None = None, client: httpx.Client | None = None
) -> Sample:
    """GET a Prometheus text endpoint and parse it; failures raise MetricsError."""
    try:
        if client is None:
            response = httpx.get(url, timeout=timeout_s)
        else:
            response = client.get(url, timeout=timeout_s)
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise MetricsError(f"GET {safe_url(url)}: {map_httpx_error(exc, url, timeout_s)}") from None
    if response.status_code != 200:
        raise MetricsError(f"GET {safe_url(url)} answered {response.status_code}, expected 200")
    when = time.monotonic() if at is None else at
    return parse_metrics(response.text, url=safe_url(url), at=when)


class Source(Protocol):
    """Anything `watch` can read: one reading per tick, MetricsError when unreadable."""

    def read(self, at: float) -> Reading: ...

    def close(self) -> None: ...


class ScrapeSource:
    """A service's own ``/metrics``: rates come from the previous successful scrape."""

    def __init__(self, url: str, *, timeout_s: float = 5.0, quantile: float = 0.95) -> None:
        self.url, self.timeout_s, self.quantile = url, timeout_s, quantile
        self._client = httpx.Client()
        self._prev: Sample | None = None

    def read(self, at: float) -> Reading:
        cur = scrape(self.url, timeout_s=self.timeout_s, at=at, client=self._client)
        prev, self._prev = self._prev, cur
        if prev is None:  # a gauge needs one sample, a rate needs two
            return Reading(queue_depth=cur.queue_depth, version=cur.version)
        r = rates(prev, cur, self.quantile)
        return Reading(r.error_rate, r.p95_ms, r.queue_depth, r.requests, cur.version)

    def close(self) -> None:
        self._client.close()


class PrometheusQuerySource:
    """A Prometheus server's ``/api/v1/query``; ``selector`` narrows to one service.

    Every query sums over the series the selector matches, so several replicas behind a
    load balancer are watched as one service (Prometheus scrapes each replica itself).
    Metric names default to the prometheus-client conventions the stand-ins follow.
    """

    QUERIES = {
        # no 5xx series at all is a rate of 0 (or vector(0)); no traffic series is no data
        "error_rate": "(sum(rate({requests}{errors}[{range}])) or vector(0))"
        " / sum(rate({requests}{labels}[{range}]))",
        "p95_ms": "1000 * histogram_quantile(0.95, sum by (le) (rate({buckets}{labels}[{range}])))",
        "queue_depth": "sum({queue}{labels})",
        "requests": "sum(increase({requests}{labels}[{range}]))",
    }

    def __init__(
        self,
        url: str,
        *,
        selector: str = "",
        range_: str = "1m",
        queries: Mapping[str, str] | None = None,
        timeout_s: float = 5.0,
        requests_metric: str = REQUESTS,
        bucket_metric: str = DURATION_BUCKET,
        queue_metric: str = QUEUE_DEPTH,
    ) -> None:
        self.url, self.timeout_s = url.rstrip("/"), timeout_s
        labels = f"{{{selector}}}" if selector else ""
        errors = "{" + ",".join(filter(None, [selector, 'status=~"5.."'])) + "}"
        unknown = set(queries or {}) - set(self.QUERIES)
        if unknown:
            raise ConfigError(
                f"Prometheus queries for unknown metrics {sorted(unknown)}; "
                f"known: {', '.join(self.QUERIES)}"
            )
        templates = {**self.QUERIES, **(queries or {})}
        names = {"requests": requests_metric, "buckets": bucket_metric, "queue": queue_metric}
        self.queries = {
            m: t.format(labels=labels, errors=errors, range=range_, **names)
            for m, t in templates.items()
        }
        self._client = httpx.Client()

    def query(self, promql: str) -> float | None:
        """One instant query; the largest value if several series come back, None if none."""
        endpoint = f"{self.url}/api/v1/query"
        try:
            response = self._client.get(endpoint, params={"query": promql}, timeout=self.timeout_s)
            payload = response.json()
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise MetricsError(
                f"Prometheus {safe_url(endpoint)}: {map_httpx_error(exc, endpoint, self.timeout_s)}"
            ) from None
        except ValueError:
            raise MetricsError(
                f"Prometheus {safe_url(endpoint)} answered {response.status_code} without JSON"
            ) from None
        if payload.get("status") != "success":
            raise MetricsError(
                f"Prometheus rejected {promql!r}: "
                f"{payload.get('errorType')}: {payload.get('error')}"
            )
        data = payload.get("data") or {}
        result = data.get("result") or []
        if data.get("resultType") == "scalar":
            values = [result[1]] if result else []
        else:
            values = [series["value"][1] for series in result]
        numbers = [float(v) for v in values if not math.isnan(float(v))]
        return max(numbers) if numbers else None

    def read(self, at: float) -> Reading:
        return Reading(**{m: self.query(q) for m, q in self.queries.items()})

    def close(self) -> None:
        self._client.close()
