"""SLA verdicts (plan sections 14 and 16): pass, breach or inconclusive, from samples.

Pure functions over the watch's sample rows (`monitor` collects them). A **breach** is
measured on data: a metric over its threshold for ``sustain_s`` (`BreachTracker`), or, when
params set ``burn_rate``, the 5xx error budget burning faster than its factor over both a
long and a short window. Only a breach recommends 05-rollback. **Inconclusive** means the
watch could not confirm the SLA: no data, too little traffic to judge the 5xx rate and p95,
or the metrics source erroring ``source_errors_inconclusive`` times in a row. A source error
is never a breach; whether inconclusive fails the gate is the params' ``inconclusive``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from deploybook.config.slo import BurnRate
from deploybook.core.checks import Check, Status

__all__ = [
    "BREACH",
    "INCONCLUSIVE",
    "LABELS",
    "METRICS",
    "PASS",
    "ROLLBACK",
    "BreachTracker",
    "BurnRate",
    "Episode",
    "Thresholds",
    "burn_alert",
    "burn_rate",
    "inconclusive_spans",
    "judged",
    "overall",
    "service_check",
]

PASS, BREACH, INCONCLUSIVE = "pass", "breach", "inconclusive"
ROLLBACK = "run 05-rollback"
METRICS = ("error_rate", "p95_ms", "queue_depth")
TRAFFIC_METRICS = ("error_rate", "p95_ms")  # meaningless without enough requests
LABELS = {
    "error_rate": "5xx rate",
    "p95_ms": "p95 latency",
    "queue_depth": "queue depth",
    "burn_rate": "5xx error-budget burn rate",
}


class Thresholds(BaseModel):
    """SLA limits; a metric is breached when strictly over its limit. None = not watched.

    ``min_requests``: a sample with fewer requests does not judge the 5xx rate or p95 (and a
    burn-rate window with fewer does not alert). ``inconclusive``: what an inconclusive
    service does to the gate ("fail": cannot confirm the SLA; "warn").
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    error_rate: float | None = Field(default=0.01, ge=0, le=1)
    p95_ms: float | None = Field(default=1000.0, gt=0)
    queue_depth: float | None = Field(default=100.0, ge=0)
    min_requests: float = Field(default=0, ge=0)
    source_errors_inconclusive: int = Field(default=3, ge=1)
    inconclusive: Literal["fail", "warn"] = "fail"
    burn_rate: BurnRate | None = None

    def limits(self) -> dict[str, float]:
        """Watched metrics and their limits (the burn rate's limit is its factor)."""
        limits = {m: getattr(self, m) for m in METRICS if getattr(self, m) is not None}
        if self.burn_rate is not None:
            limits["burn_rate"] = self.burn_rate.factor
        return limits


# -- judging samples --------------------------------------------------------------------------
def judged(row: Mapping[str, Any], min_requests: float = 0) -> dict[str, float | None]:
    """The values of one sample that count: the 5xx rate and p95 only on enough requests
    (a sample whose source does not report requests is taken as it is)."""
    values = {m: row.get(m) for m in METRICS}
    requests = row.get("requests")
    if min_requests and requests is not None and requests < min_requests:
        values |= dict.fromkeys(TRAFFIC_METRICS)
    return values


def burn_rate(
    rows: Sequence[Mapping[str, Any]], now_s: float, window_s: float, budget: float
) -> tuple[float | None, float]:
    """(burn rate, requests) over the samples in (now_s - window_s, now_s]: the 5xx ratio of
    all their requests divided by the error budget; None without requests."""
    requests = errors = 0.0
    for r in rows:
        n, rate = r.get("requests"), r.get("error_rate")
        if now_s - window_s < r["t_s"] <= now_s and n and rate is not None:
            requests, errors = requests + n, errors + rate * n
    if requests <= 0:
        return None, 0.0
    return errors / requests / budget, requests


def burn_alert(
    rows: Sequence[Mapping[str, Any]], now_s: float, rule: BurnRate, min_requests: float = 0
) -> float | None:
    """The burn rate the rule judges at ``now_s``: the lower of the long and short windows'
    (so both must exceed the factor), None while either window has under ``min_requests``."""
    long, long_n = burn_rate(rows, now_s, rule.long_s, rule.budget)
    short, short_n = burn_rate(rows, now_s, rule.short_s, rule.budget)
    if long is None or short is None or min(long_n, short_n) < max(min_requests, 1):
        return None
    return min(long, short)


@dataclass
class Episode:
    """Consecutive samples of one metric of one service over its threshold."""

    service: str
    metric: str
    threshold: float
    first_seen_s: float
    last_seen_s: float
    peak: float
    samples: int = 1

    @property
    def duration_s(self) -> float:
        return self.last_seen_s - self.first_seen_s


class BreachTracker:
    """Turns a stream of judged values into breach episodes; knows when one is sustained.

    Duration is first-to-last breaching sample, so a one-sample spike lasts 0 s. A missing
    value (no traffic, first scrape, source error) neither extends nor ends an episode. A
    burn-rate alert is sustained at once: its long window is its sustain.
    """

    def __init__(self, limits: Mapping[str, float], sustain_s: float) -> None:
        self.limits, self.sustain_s = dict(limits), sustain_s
        self.episodes: list[Episode] = []
        self._open: dict[tuple[str, str], Episode] = {}
        self.sustained: Episode | None = None

    def sustain_for(self, metric: str) -> float:
        return 0.0 if metric == "burn_rate" else self.sustain_s

    def observe(self, service: str, t: float, values: Mapping[str, float | None]) -> None:
        for metric, limit in self.limits.items():
            value = values.get(metric)
            if value is None:
                continue
            key = (service, metric)
            episode = self._open.get(key)
            if value > limit:
                if episode is None:
                    episode = self._open[key] = Episode(service, metric, limit, t, t, value)
                    self.episodes.append(episode)
                else:
                    episode.last_seen_s, episode.samples = t, episode.samples + 1
                    episode.peak = max(episode.peak, value)
                if self.sustained is None and episode.duration_s >= self.sustain_for(metric):
                    self.sustained = episode
            elif episode is not None:
                del self._open[key]

    def breaching(self) -> list[Episode]:
        return list(self._open.values())

    def facts(self, wall0: datetime) -> list[dict[str, Any]]:
        """Every episode as data (what the check, the plot and 05-rollback read)."""
        still = {id(e) for e in self.breaching()}
        return [_facts(e, wall0, self.sustain_for(e.metric), id(e) in still) for e in self.episodes]


def fmt(metric: str, value: float | None) -> str:
    if value is None:
        return "n/a"
    if metric == "error_rate":
        return f"{value:.1%}"
    if metric == "p95_ms":
        return f"{value:.0f} ms"
    if metric == "burn_rate":
        return f"{value:.1f}x"
    return f"{value:g}"


def _facts(e: Episode, wall0: datetime, sustain_s: float, still: bool) -> dict[str, Any]:
    sustained = e.duration_s >= sustain_s
    return {
        "service": e.service,
        "metric": e.metric,
        "label": LABELS[e.metric],
        "threshold": e.threshold,
        "peak": e.peak,
        "first_seen": (wall0 + timedelta(seconds=e.first_seen_s)).isoformat(timespec="seconds"),
        "last_seen": (wall0 + timedelta(seconds=e.last_seen_s)).isoformat(timespec="seconds"),
        "first_seen_s": round(e.first_seen_s, 3),
        "last_seen_s": round(e.last_seen_s, 3),
        "duration_s": round(e.duration_s, 3),
        "samples": e.samples,
        "sustained": sustained,
        "sustain_s": sustain_s,
        "still_breaching": still,
        "recommendation": ROLLBACK if sustained else None,
    }


def describe(f: Mapping[str, Any]) -> str:
    m = f["metric"]
    return (
        f"{f['label']} on {f['service']} peak {fmt(m, f['peak'])} > {fmt(m, f['threshold'])} "
        f"for {f['duration_s']:g} s ({f['samples']} samples, {f['first_seen'][11:19]}Z → "
        f"{f['last_seen'][11:19]}Z, sustain {f['sustain_s']:g} s)"
    )


# -- inconclusive -----------------------------------------------------------------------------
def _unjudged(row: Mapping[str, Any], thresholds: Thresholds) -> bool:
    values = judged(row, thresholds.min_requests)
    return row.get("error") is not None or all(
        values[m] is None for m in METRICS if getattr(thresholds, m) is not None
    )


def inconclusive_spans(
    rows: Sequence[Mapping[str, Any]], thresholds: Thresholds
) -> list[dict[str, Any]]:
    """Runs of a service's consecutive samples that judged nothing (errored, no data or too
    little traffic): the amber spans of the plot."""
    spans: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None
    for r in rows:
        if _unjudged(r, thresholds):
            if current is None:
                current = {"service": r["service"], "first_s": r["t_s"], "samples": 0}
                spans.append(current)
            current["last_s"], current["samples"] = r["t_s"], current["samples"] + 1
        else:
            current = None
    return spans


def _errors_in_a_row(rows: Sequence[Mapping[str, Any]]) -> int:
    longest = run = 0
    for r in rows:
        run = run + 1 if r.get("error") else 0
        longest = max(longest, run)
    return longest


def missing(rows: Sequence[Mapping[str, Any]], thresholds: Thresholds) -> list[str]:
    """Why one service's samples cannot confirm its SLA (empty: they can)."""
    reasons: list[str] = []
    errors = [r["error"] for r in rows if r.get("error")]
    in_a_row = _errors_in_a_row(rows)
    if in_a_row >= thresholds.source_errors_inconclusive:
        reasons.append(
            f"the metrics source errored {in_a_row} times in a row "
            f"(limit {thresholds.source_errors_inconclusive}; last: {errors[-1]})"
        )
    if any(not _unjudged(r, thresholds) for r in rows):
        return reasons
    minimum = thresholds.min_requests
    traffic = [r["requests"] for r in rows if r.get("requests") is not None]
    if minimum and traffic and any(r < minimum for r in traffic):
        reasons.append(
            f"too little traffic: at most {max(traffic):g} requests per sample, "
            f"{minimum:g} needed to judge the 5xx rate and p95 latency"
        )
    elif not reasons:
        watched = ", ".join(LABELS[m] for m in METRICS if getattr(thresholds, m) is not None)
        reasons.append(f"no data: no sample reported {watched or 'any metric'}")
    return reasons


def service_check(
    name: str,
    rows: list[dict[str, Any]],
    facts: list[dict[str, Any]],
    thresholds: Thresholds,
    section: str,
) -> Check:
    """One critical check per service: breach (fail, 05-rollback), inconclusive (the params'
    choice, never 05-rollback), a short spike (warn) or held (pass)."""
    limits = thresholds.limits()
    values = [judged(r, thresholds.min_requests) for r in rows]
    peaks = {
        m: max((v[m] for v in values if v[m] is not None), default=None)
        for m in METRICS
        if m in limits
    }
    stats = ", ".join(
        f"max {LABELS[m]} {fmt(m, v)} (limit {fmt(m, limits[m])})" for m, v in peaks.items()
    )
    stats += f"; {len(rows)} samples"
    errors = [r["error"] for r in rows if r.get("error")]
    if errors:
        stats += f"; {len(errors)} metrics errors, last: {errors[-1]}"
    reasons = missing(rows, thresholds)
    late = " — still over when the watch ended"
    spikes = [
        f"short spike, not sustained: {describe(f)}{late if f['still_breaching'] else ''}"
        for f in facts
        if not f["sustained"]
    ]
    data: dict[str, Any] = {
        "service": name,
        "missing": reasons,
        "peaks": peaks,
        "limits": limits,
        "breaches": facts,
    }
    if any(f["sustained"] for f in facts):
        data["outcome"], status = BREACH, Status.FAIL
        lines = [f"SLA breached: {describe(f)} — {ROLLBACK}" for f in facts if f["sustained"]]
    elif reasons:
        data["outcome"] = INCONCLUSIVE
        status = Status.FAIL if thresholds.inconclusive == "fail" else Status.WARN
        because = "; ".join(reasons)
        lines = [
            f"SLA inconclusive: cannot confirm the SLA of {name}: {because} — not a breach: "
            "restore the metrics (or the traffic) and watch again"
        ]
    elif facts:
        data["outcome"], status, lines = PASS, Status.WARN, []
    else:
        data["outcome"] = PASS
        return Check(f"SLA {name}", section, Status.PASS, f"SLA held: {stats}", True, 0.0, data)
    evidence = "\n".join([*lines, *spikes, stats])
    return Check(f"SLA {name}", section, status, evidence, True, 0.0, data)


def overall(outcomes: Mapping[str, str]) -> str:
    """Breach if any service breached, else inconclusive if any was, else pass."""
    found = set(outcomes.values())
    return next((o for o in (BREACH, INCONCLUSIVE) if o in found), PASS)
