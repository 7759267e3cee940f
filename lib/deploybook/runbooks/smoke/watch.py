"""Runbook 04's SLA watch (plan section 14) from params: which metrics sources, which
thresholds, and the facts of a sustained breach that 05-rollback reads.

The watching itself (sampling, breach episodes, the plot) is `deploybook.runbooks.smoke.monitor`.
"""

from __future__ import annotations

from typing import Any

from deploybook.config import Params
from deploybook.runbooks.smoke.monitor import Thresholds as SlaThresholds
from deploybook.runbooks.smoke.monitor import WatchResult, watch
from deploybook.runbooks.smoke.sources import sources_for
from deploybook.systems.metrics import Source

SECTION_WATCH = "14"


def metrics_sources(params: Params) -> dict[str, Source]:
    """Each watched service's metrics source, as its params ``metrics`` choose (see
    `deploybook.runbooks.smoke.sources`); the caller closes them."""
    return sources_for(params)


def sla_thresholds(params: Params) -> SlaThresholds:
    """The params' thresholds for the watch. An inconclusive service fails the gate ("cannot
    confirm the SLA") in a production role and warns elsewhere, unless params say which."""
    t = params.thresholds
    inconclusive = t.inconclusive or ("fail" if params.environment.is_production else "warn")
    return SlaThresholds(
        error_rate=t.error_rate,
        p95_ms=t.p95_ms,
        queue_depth=t.queue_depth,
        min_requests=t.min_requests,
        source_errors_inconclusive=t.source_errors_inconclusive,
        inconclusive=inconclusive,
        burn_rate=t.burn_rate,
    )


def watch_slas(
    params: Params, window_s: float | None = None, progress: Any = None, **kwargs: Any
) -> WatchResult:
    """Watch 5xx rate, p95 latency and queue depth against the params' thresholds.

    ``window_s`` overrides the params' ``watch_window_s`` (e.g. a short rehearsal); a breach
    lasting ``breach_sustain_s`` fails the check "SLA breached" and ends the watch early.
    A service the watch cannot judge is inconclusive (`sla_thresholds`), never breached.
    """
    t = params.thresholds
    sources = metrics_sources(params)
    try:
        return watch(
            sources,
            sla_thresholds(params),
            window_s=window_s or t.watch_window_s,
            interval_s=t.watch_interval_s,
            sustain_s=t.breach_sustain_s,
            progress=progress,
            section=SECTION_WATCH,
            **kwargs,
        )
    finally:
        for source in sources.values():
            source.close()


def breach_facts(result: WatchResult) -> dict[str, Any] | None:
    """The facts 05-rollback reads when the watch found a sustained breach, else None."""
    if result.breach is None:
        return None
    return {
        **result.breach,
        "sustained_breaches": [b for b in result.breaches if b.get("sustained")],
        "window_s": result.window_s,
        "elapsed_s": round(result.elapsed_s, 3),
        "stopped_early": result.stopped_early,
    }
