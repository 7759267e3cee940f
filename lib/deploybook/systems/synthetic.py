"""Synthetic probing: the watch measures a service by sending it requests itself.

Works against any environment, including one with no metrics at all: every ``read`` sends
each probe ``repeat`` times and reports the share of 5xx answers and the p95 latency of
that interval's own measurements. A request that gets no answer (refused, timed out) counts
as an error, as a user behind a load balancer would see a 502/504; only when *every* probe
fails to get an answer does the source raise `MetricsError` (it cannot measure).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import httpx

from deploybook.systems.endpoints import SmokeSpec, safe_url
from deploybook.systems.metrics import MetricsError, Reading


def quantile(q: float, values: Sequence[float]) -> float | None:
    """Linear-interpolated quantile of a small sample (numpy's default method)."""
    ordered = sorted(values)
    if not ordered:
        return None
    pos = q * (len(ordered) - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


class SyntheticSource:
    """Send ``probes`` every tick; 5xx rate and p95 come from these requests only."""

    def __init__(
        self,
        probes: Sequence[SmokeSpec],
        *,
        repeat: int = 1,
        timeout_s: float = 5.0,
        quantile_: float = 0.95,
    ) -> None:
        if not probes or repeat < 1:
            raise ValueError("a synthetic source needs at least one probe and repeat >= 1")
        self.probes, self.repeat, self.timeout_s = list(probes), repeat, timeout_s
        self.quantile = quantile_
        self._client = httpx.Client(follow_redirects=False)

    def _probe(self, spec: SmokeSpec) -> tuple[int | None, float, str]:
        started = time.perf_counter()
        try:
            response = self._client.request(
                spec.method,
                spec.url,
                json=spec.json_body,
                headers=spec.headers,
                timeout=min(self.timeout_s, spec.timeout_s),
            )
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            return None, time.perf_counter() - started, f"{type(exc).__name__}"
        return response.status_code, time.perf_counter() - started, ""

    def read(self, at: float) -> Reading:
        answered: list[float] = []
        errors, sent, failures = 0, 0, []
        for spec in self.probes:
            for _ in range(self.repeat):
                status, seconds, failure = self._probe(spec)
                sent += 1
                if status is None:
                    errors += 1
                    failures.append(f"{spec.method} {safe_url(spec.url)}: {failure}")
                    continue
                answered.append(seconds * 1000)
                errors += status >= 500
        if not answered:
            raise MetricsError(
                f"synthetic probes got no answer ({sent} sent): {'; '.join(failures[:3])}"
            )
        return Reading(
            error_rate=errors / sent,
            p95_ms=quantile(self.quantile, answered),
            requests=float(sent),
        )

    def close(self) -> None:
        self._client.close()
