"""SLA windows (plan section 14, and section 16's rollback trigger): the sampling loop.

`watch` samples every source (see `metrics`) each interval for a window and keeps every
sample. How samples become pass, breach or inconclusive is `verdict`'s: a metric over its
threshold in consecutive samples is one breach episode; once a breach has lasted
``sustain_s`` the watch stops early (the rollback decision is made, and waiting out the
window would only delay it). A shorter spike is a warning; a source that errors or reports
nothing makes the service inconclusive, never breached.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from deploybook.core.checks import Checks
from deploybook.core.secrets import scrub
from deploybook.errors import ConfigError, DeploybookError
from deploybook.runbooks.smoke.verdict import (
    BREACH,
    INCONCLUSIVE,
    LABELS,
    PASS,
    ROLLBACK,
    BreachTracker,
    Thresholds,
    burn_alert,
    inconclusive_spans,
    judged,
    overall,
    service_check,
)
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
    "BREACH",
    "INCONCLUSIVE",
    "LABELS",
    "PASS",
    "ROLLBACK",
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


@dataclass(repr=False)
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
    inconclusive: list[dict[str, Any]] = field(default_factory=list)  # unjudged spans

    @property
    def ok(self) -> bool:
        return self.checks.ok

    @property
    def outcomes(self) -> dict[str, str]:
        """Each service's outcome: pass, breach or inconclusive."""
        return {c.data["service"]: c.data["outcome"] for c in self.checks}

    @property
    def outcome(self) -> str:
        """The watch's outcome: breach if any service breached, else inconclusive if any
        service could not be judged, else pass."""
        return overall(self.outcomes)

    def missing(self) -> dict[str, list[str]]:
        """What kept each inconclusive service from being judged."""
        return {c.data["service"]: c.data["missing"] for c in self.checks if c.data["missing"]}

    def raw_samples(self) -> list[dict[str, Any]]:
        """Every sample as read (timestamp, service, values, requests, error): the record's
        raw evidence, kept whatever the outcome."""
        return [
            {
                "timestamp": r["time"],
                "t_s": r["t_s"],
                "service": r["service"],
                "values": {m: r[m] for m in ("error_rate", "p95_ms", "queue_depth")},
                "requests": r["requests"],
                "version": r["version"],
                "error": r["error"],
            }
            for r in self.samples
        ]

    def to_frame(self):  # -> pandas.DataFrame (imported lazily)
        import pandas as pd

        return pd.DataFrame(self.samples)

    def plot(self):  # -> matplotlib Figure
        from deploybook.core.plots import plot_watch

        return plot_watch(
            self.samples,
            self.thresholds,
            self.breaches,
            sustain_s=self.sustain_s,
            inconclusive=self.inconclusive,
        )

    def __repr__(self) -> str:
        # short and stable: the samples are in `raw_samples`, the evidence in the checks
        return f"WatchResult({self.outcome}: {self.checks.summary()})"

    def _repr_html_(self) -> str:
        return self.checks._repr_html_()


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
    tracker = BreachTracker(thresholds.limits(), sustain_s)
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
                tracker.observe(name, t, _judge(rows, name, t, thresholds))
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
    facts = tracker.facts(wall0)
    per_service = {name: [r for r in rows if r["service"] == name] for name in resolved}
    checks = Checks(
        service_check(
            name, per_service[name], [f for f in facts if f["service"] == name], thresholds, section
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
        inconclusive=[s for r in per_service.values() for s in inconclusive_spans(r, thresholds)],
    )


def _judge(
    rows: list[dict[str, Any]], name: str, t: float, thresholds: Thresholds
) -> dict[str, float | None]:
    """The latest sample's values that count, with the burn rate when params set one."""
    values: dict[str, float | None] = judged(rows[-1], thresholds.min_requests)
    if thresholds.burn_rate is not None:
        mine = [r for r in rows if r["service"] == name]
        values["burn_rate"] = burn_alert(mine, t, thresholds.burn_rate, thresholds.min_requests)
    return values


def _sample_row(name: str, source: Source, now: float, t: float, wall0: datetime) -> dict[str, Any]:
    """One flat row per service per tick (pandas-ready); an unreadable source is a row with
    its error and no values (never a breach: `verdict` counts errors in a row)."""
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
