"""How 04's SLA watch reads one service (params ``services[].metrics``): the params shape.

Building the sources is `deploybook.runbooks.smoke.sources`; this is only the validated
setting, so a bad choice stops the run before anything is watched.

- ``prometheus``: PromQL against a Prometheus server's HTTP API, summed over every replica
  the selector matches (default ``job="<service>"``) — how a service with several replicas
  behind a load balancer is watched.
- ``scrape``: the service's own Prometheus text endpoint (``base_url`` + ``path``); right
  for a single instance only, since behind a load balancer each scrape hits another process.
- ``synthetic`` (the default): the watch sends the service's smoke checks itself every
  interval (its health request when it has none) and measures 5xx rate and p95 from them.
- ``none``: not watched (say why in a comment).
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

_METRIC = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_RANGE = re.compile(r"^\d+(ms|s|m|h)$")


class MetricsSpec(BaseModel):
    """Where one service's 5xx rate, p95 latency and queue depth come from."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    source: Literal["prometheus", "scrape", "synthetic", "none"] = "synthetic"
    # prometheus: the server (a URL, or the name of the variable holding it) and the PromQL
    url: str | None = None
    url_env: str | None = None
    selector: str | None = None  # PromQL label matchers; default job="<service name>"
    range_: str = Field("1m", alias="range")  # the rate() window, e.g. 1m, 5m
    requests_metric: str = "http_requests_total"
    bucket_metric: str = "http_request_duration_seconds_bucket"
    queue_metric: str = "queue_depth"
    # scrape: the path of the service's own /metrics
    path: str = "/metrics"
    # synthetic: which of the service's smoke checks to send (default all), how often each
    checks: list[str] = []
    repeat: int = Field(1, ge=1, le=20)
    timeout_s: float = Field(5.0, gt=0, le=60)

    @model_validator(mode="after")
    def _coherent(self) -> MetricsSpec:
        if self.source == "prometheus" and not (self.url or self.url_env):
            raise ValueError("source prometheus needs url (e.g. ${PROMETHEUS_URL}) or url_env")
        if self.url and not re.match(r"^https?://[^\s]+$", self.url):
            raise ValueError(f"url must be an http(s) URL, got {self.url!r}")
        for name in (self.requests_metric, self.bucket_metric, self.queue_metric):
            if not _METRIC.match(name):
                raise ValueError(f"{name!r} is not a Prometheus metric name")
        if not _RANGE.match(self.range_):
            raise ValueError(f"range must be a PromQL duration like 1m or 30s, got {self.range_!r}")
        if not self.path.startswith("/"):
            raise ValueError(f"path must start with '/', got {self.path!r}")
        return self
