"""SLA windows (plan section 14, and section 16's rollback trigger).

`watch` samples every source (see `metrics`) each interval for a window. A metric over its
threshold in consecutive samples is one breach (`BreachTracker`); once a breach has lasted
``sustain_s`` the watch stops early: the rollback decision is made, and waiting out the
window would only delay it. A shorter spike is reported as a warning, not a failure.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from deploybook.core.checks import Check, Checks, Status
from deploybook.core.secrets import scrub
from deploybook.errors import ConfigError, DeploybookError
from deploybook.systems.metrics import (
    MetricsError,
    PrometheusQuerySource,
    Rates,
    Reading,
    Sample,
    ScrapeSource,
    Source,
    histogram_quantile,
    parse_metrics,
    rates,
    scrape,
)

__all__ = [
    "BreachTracker",
    "MetricsError",
    "PrometheusQuerySource",
    "Rates",
    "Reading",
    "Sample",
    "ScrapeSource",
    "Source",
    "Thresholds",
    "WatchResult",
    "histogram_quantile",
    "parse_metrics",
    "rates",
    "scrape",
    "watch",
]

ROLLBACK = "run 05-rollback"
LABELS = {
    "error_rate": "5xx rate",
    "p95_ms": "p95 latency",
    "queue_depth": "queue depth",
    "unreachable": "metrics unreachable",
}


class Thresholds(BaseModel):
    """SLA limits; a metric is breached when strictly over its limit. None = not watched."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    error_rate: float | None = Field(default=0.01, ge=0, le=1)
    p95_ms: float | None = Field(default=1000.0, gt=0)
    queue_depth: float | None = Field(default=100.0, ge=0)

    def limits(self) -> dict[str, float]:
        """Watched metrics and their limits; an unreadable source always counts."""
        limits = {m: getattr(self, m) for m in ("error_rate", "p95_ms", "queue_depth")}
        return {m: v for m, v in limits.items() if v is not None} | {"unreachable": 0.0}


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
    """Turns a stream of readings into breach episodes; knows when one is sustained.

    Duration is first-to-last breaching sample, so a one-sample spike lasts 0 s. A missing
    value (no traffic, first scrape) neither extends nor ends an episode.
    """

    def __init__(self, limits: Mapping[str, float], sustain_s: float) -> None:
        self.limits, self.sustain_s = dict(limits), sustain_s
        self.episodes: list[Episode] = []
        self._open: dict[tuple[str, str], Episode] = {}
        self.sustained: Episode | None = None

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
                if self.sustained is None and episode.duration_s >= self.sustain_s:
                    self.sustained = episode
            elif episode is not None:
                del self._open[key]

    def breaching(self) -> list[Episode]:
        return list(self._open.values())


def _fmt(metric: str, value: float | None) -> str:
    if value is None:
        return "n/a"
    if metric == "error_rate":
        return f"{value:.1%}"
    if metric == "p95_ms":
        return f"{value:.0f} ms"
    return f"{value:g}"


@dataclass
class WatchResult:
    """The watch's record: checks for the gate, samples for pandas, the breach for 05-rollback."""

    checks: Checks
    samples: list[dict[str, Any]]
    breach: dict[str, Any] | None
    breaches: list[dict[str, Any]] = field(default_factory=list)
    thresholds: Thresholds = field(default_factory=Thresholds)
    window_s: float = 0.0
    interval_s: float = 0.0
    sustain_s: float = 0.0
    elapsed_s: float = 0.0
    stopped_early: bool = False

    @property
    def ok(self) -> bool:
        return self.checks.ok

    def to_frame(self):  # -> pandas.DataFrame (imported lazily)
        import pandas as pd

        return pd.DataFrame(self.samples)

    def plot(self):  # -> matplotlib Figure
        from deploybook.core.plots import plot_watch

        return plot_watch(self.samples, self.thresholds, self.breaches, sustain_s=self.sustain_s)

    def _repr_html_(self) -> str:
        return self.checks._repr_html_()


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


def _describe(f: Mapping[str, Any]) -> str:
    m = f["metric"]
    peak = "" if m == "unreachable" else f" peak {_fmt(m, f['peak'])} > {_fmt(m, f['threshold'])}"
    return (
        f"{f['label']} on {f['service']}{peak} for {f['duration_s']:g} s "
        f"({f['samples']} samples, {f['first_seen'][11:19]}Z → {f['last_seen'][11:19]}Z, "
        f"sustain {f['sustain_s']:g} s)"
    )


def _service_check(
    name: str,
    rows: list[dict[str, Any]],
    facts: list[dict[str, Any]],
    limits: Mapping[str, float],
    section: str,
) -> Check:
    """One critical check per service: held, spiked (warn) or breached (fail)."""
    peaks = {
        m: max((r[m] for r in rows if r.get(m) is not None), default=None)
        for m in limits
        if m != "unreachable"
    }
    stats = ", ".join(
        f"max {LABELS[m]} {_fmt(m, v)} (limit {_fmt(m, limits[m])})" for m, v in peaks.items()
    )
    stats += f"; {len(rows)} samples"
    unreadable = [r["error"] for r in rows if r.get("error")]
    if unreadable:
        stats += f"; last metrics error: {unreadable[-1]}"
    data = {"service": name, "peaks": peaks, "limits": dict(limits), "breaches": facts}
    late = " — still over when the watch ended"
    spikes = [
        f"short spike, not sustained: {_describe(f)}{late if f['still_breaching'] else ''}"
        for f in facts
        if not f["sustained"]
    ]
    if any(f["sustained"] for f in facts):
        status = Status.FAIL
        lines = [f"SLA breached: {_describe(f)} — {ROLLBACK}" for f in facts if f["sustained"]]
        lines += spikes
    elif facts:
        status, lines = Status.WARN, spikes
    else:
        return Check(f"SLA {name}", section, Status.PASS, f"SLA held: {stats}", True, 0.0, data)
    return Check(f"SLA {name}", section, status, "\n".join([*lines, stats]), True, 0.0, data)


def _as_source(spec: str | Source, timeout_s: float) -> Source:
    return ScrapeSource(spec, timeout_s=timeout_s) if isinstance(spec, str) else spec


def _progress_sink(progress: Any, window_s: float) -> tuple[Any, bool]:
    """(sink, owned): tqdm.auto when True, a tqdm-like bar (.update), or a plain callable."""
    if progress is True:
        from deploybook.session.runbook import headless

        # A widget bar in a headless record renders only with a CDN; text works anywhere.
        if headless():
            from tqdm import tqdm
        else:
            from tqdm.auto import tqdm

        return tqdm(total=window_s, unit="s", desc="SLA watch"), True
    return (progress or None), False


def watch(
    sources: Mapping[str, str | Source],
    thresholds: Thresholds | None = None,
    window_s: float = 300.0,
    interval_s: float = 15.0,
    sustain_s: float = 600.0,
    progress: Any = None,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    timeout_s: float = 5.0,
    section: str = "14",
) -> WatchResult:
    """Sample each source every ``interval_s`` for ``window_s``; stop once a breach is sustained.

    ``sources`` maps a service name to its Prometheus text URL or to a `Source` (e.g.
    `PrometheusQuerySource`). ``progress`` is True (tqdm.auto), a tqdm-like bar (its
    ``update(seconds)`` is called) or a callable receiving a dict per tick.
    """
    thresholds = thresholds or Thresholds()
    if window_s <= 0 or interval_s <= 0 or sustain_s < 0:
        raise ConfigError(
            f"watch needs window_s > 0, interval_s > 0, sustain_s >= 0; "
            f"got {window_s}, {interval_s}, {sustain_s}"
        )
    if sustain_s > window_s:
        raise ConfigError(
            f"sustain_s ({sustain_s:g}) is longer than window_s ({window_s:g}): a breach could "
            "never be sustained; lengthen the monitoring window in the params file"
        )
    if not sources:
        raise ConfigError("watch needs at least one metrics source (service name -> URL)")
    limits = thresholds.limits()
    tracker = BreachTracker(limits, sustain_s)
    resolved = {name: _as_source(src, timeout_s) for name, src in sources.items()}
    sink, owned = _progress_sink(progress, window_s)
    rows: list[dict[str, Any]] = []
    started, wall0 = clock(), datetime.now(UTC)
    shown, t, ticks = 0.0, 0.0, int(window_s // interval_s) + 1
    try:
        for tick in range(ticks):
            delay = started + tick * interval_s - clock()
            if delay > 0:
                sleep(delay)
            now = clock()
            t = now - started
            for name, source in resolved.items():
                rows.append(_sample_row(name, source, now, t, wall0))
                tracker.observe(name, t, rows[-1])
            shown = _report(sink, rows[-len(resolved) :], tracker, t, window_s, shown)
            if tracker.sustained is not None:
                break
    finally:
        for name, source in resolved.items():
            if not isinstance(sources[name], str):
                continue  # a caller's Source is the caller's to close
            source.close()
        if owned:
            sink.close()
    breaching = {id(e) for e in tracker.breaching()}
    facts = [_facts(e, wall0, sustain_s, id(e) in breaching) for e in tracker.episodes]
    checks = Checks(
        _service_check(
            name,
            [r for r in rows if r["service"] == name],
            [f for f in facts if f["service"] == name],
            limits,
            section,
        )
        for name in resolved
    )
    first = tracker.sustained
    breach = next((f for f, e in zip(facts, tracker.episodes, strict=True) if e is first), None)
    return WatchResult(
        checks,
        rows,
        breach,
        facts,
        thresholds,
        window_s,
        interval_s,
        sustain_s,
        elapsed_s=t,
        stopped_early=first is not None and t < window_s,
    )


def _sample_row(name: str, source: Source, now: float, t: float, wall0: datetime) -> dict[str, Any]:
    """One flat row per service per tick (pandas-ready); an unreadable source is data too."""
    row: dict[str, Any] = {
        "t_s": round(t, 3),
        "time": (wall0 + timedelta(seconds=t)).isoformat(timespec="seconds"),
        "service": name,
    }
    try:
        reading, error = source.read(now), None
    except DeploybookError as exc:
        reading, error = Reading(), scrub(str(exc))
    row |= {
        "error_rate": reading.error_rate,
        "p95_ms": reading.p95_ms,
        "queue_depth": reading.queue_depth,
        "requests": reading.requests,
        "version": reading.version,
        "unreachable": 1.0 if error else 0.0,
        "error": error,
    }
    return row


def _report(
    sink: Any,
    latest: Iterable[dict[str, Any]],
    tracker: BreachTracker,
    t: float,
    window_s: float,
    shown: float,
) -> float:
    if sink is None:
        return shown
    breaching = [f"{e.service} {LABELS[e.metric]}" for e in tracker.breaching()]
    if hasattr(sink, "update"):
        step = min(t, window_s) - shown
        if step > 0:
            sink.update(step)
        if hasattr(sink, "set_postfix_str"):
            sink.set_postfix_str(("over: " + ", ".join(breaching)) if breaching else "ok")
        return shown + max(step, 0.0)
    sink({"t_s": t, "window_s": window_s, "rows": list(latest), "breaching": breaching})
    return t
