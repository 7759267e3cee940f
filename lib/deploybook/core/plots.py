"""Figures for the audit record: SLA metrics against thresholds, and the schedule timeline.

Each function returns a closed matplotlib Figure: a notebook cell that ends with it shows it
once (no duplicate from pyplot's global state), and ``fig.savefig`` still works for HTML
reports. matplotlib is imported inside the functions: it is slow, and nothing happens at
import time.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

__all__ = ["plot_schedule", "plot_watch"]

# (metric, axis label, scale from stored unit to shown unit)
_PANELS = (
    ("error_rate", "5xx rate (%)", 100.0),
    ("p95_ms", "p95 latency (ms)", 1.0),
    ("queue_depth", "queue depth", 1.0),
)
_STATUS_COLOURS = {
    "pass": "#34a853",
    "done": "#34a853",
    "ok": "#34a853",
    "warn": "#f9ab00",
    "fail": "#d93025",
    "failed": "#d93025",
    "running": "#1a73e8",
    "skip": "#9aa0a6",
    "skipped": "#9aa0a6",
}


BREACH_RED, INCONCLUSIVE_AMBER = "#d93025", "#f9ab00"


def _shade(ax: Any, first: float, last: float, colour: str, alpha: float) -> None:
    if last > first:
        ax.axvspan(first, last, color=colour, alpha=alpha, linewidth=0)
    else:
        ax.axvline(first, color=colour, alpha=min(alpha * 3, 0.7), linewidth=3)


def _limits(thresholds: Any) -> dict[str, float | None]:
    if hasattr(thresholds, "model_dump"):
        return thresholds.model_dump()
    return dict(thresholds or {})


def plot_watch(
    samples: Sequence[Mapping[str, Any]],
    thresholds: Any,
    breaches: Iterable[Mapping[str, Any]] = (),
    *,
    sustain_s: float | None = None,
    title: str = "SLA watch",
    inconclusive: Iterable[Mapping[str, Any]] = (),
):
    """Each metric per service over time, its threshold dashed, breaches and gaps shaded.

    Sustained breaches are shaded red, short spikes a paler red; spans where a service
    could not be judged (source errors, no data, too little traffic; ``inconclusive`` rows
    with ``service``, ``first_s``, ``last_s``) amber; ``x`` marks a metrics error.
    ``samples`` are `WatchResult.samples` rows.
    """
    import matplotlib.pyplot as plt

    limits = _limits(thresholds)
    breaches = list(breaches)
    gaps = list(inconclusive)
    services = list(dict.fromkeys(r["service"] for r in samples))
    span = max((r["t_s"] for r in samples), default=0.0)
    per, unit = (60.0, "minutes") if span > 600 else (1.0, "seconds")

    fig, axes = plt.subplots(
        len(_PANELS), 1, sharex=True, figsize=(9, 2.3 * len(_PANELS)), layout="constrained"
    )
    for ax, (metric, label, scale) in zip(axes, _PANELS, strict=True):
        for service in services:
            rows = [r for r in samples if r["service"] == service]
            points = [
                (r["t_s"] / per, r[metric] * scale) for r in rows if r.get(metric) is not None
            ]
            if points:
                xs, ys = zip(*points, strict=True)
                ax.plot(xs, ys, marker="o", markersize=3, linewidth=1.2, label=service)
            down = [r["t_s"] / per for r in rows if r.get("error")]
            if down:
                ax.plot(down, [0] * len(down), "kx", label=f"{service} metrics error")
        limit = limits.get(metric)
        if limit is not None:
            ax.axhline(
                limit * scale, color="#d93025", linestyle="--", linewidth=1, label="threshold"
            )
        for b in breaches:
            # a burn-rate breach is a 5xx breach: shaded on the 5xx panel
            if (b["metric"] if b["metric"] != "burn_rate" else "error_rate") != metric:
                continue
            alpha = 0.22 if b.get("sustained") else 0.08
            _shade(ax, b["first_seen_s"] / per, b["last_seen_s"] / per, BREACH_RED, alpha)
        for g in gaps:
            _shade(ax, g["first_s"] / per, g["last_s"] / per, INCONCLUSIVE_AMBER, 0.22)
        ax.set_ylabel(label)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left", fontsize=7, ncols=3)
    axes[-1].set_xlabel(f"{unit} since the watch started")
    sustained = next((b for b in breaches if b.get("sustained")), None)
    subtitle = f"sustain {sustain_s:g} s" if sustain_s is not None else ""
    if sustained:
        subtitle += f" — SLA breached: {sustained['label']} on {sustained['service']}"
    elif gaps:
        unjudged = ", ".join(dict.fromkeys(g["service"] for g in gaps))
        subtitle += f" — not judged (amber): {unjudged}"
    fig.suptitle(f"{title}{' (' + subtitle.strip(' —') + ')' if subtitle else ''}")
    plt.close(fig)
    return fig


def _field(step: Any, name: str, default: Any = None) -> Any:
    if isinstance(step, Mapping):
        return step.get(name, default)
    return getattr(step, name, default)


def _minutes(value: datetime | float | int | None, t0: datetime) -> float | None:
    """A step time as minutes after T: datetimes are converted, numbers are already minutes."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return (value - t0).total_seconds() / 60
    return float(value)


def plot_schedule(
    steps: Iterable[Any],
    start: datetime,
    *,
    deployment_window_min: float = 60,
    rollback_window_min: float = 60,
    freeze_h: float = 24,
    now: datetime | None = None,
    title: str = "Deployment schedule",
):
    """The plan's schedule (section 5) with the steps as they ran.

    Top: the T-``freeze_h`` freeze (until the rollback window closes), the deployment
    window from T and the rollback window after it, in hours. Bottom: the windows in
    minutes with one bar per step; a step ending after the deployment window is outlined
    red. ``steps`` are mappings or objects with ``name``, ``start``, ``end`` (datetimes or
    minutes after T; a missing end means still running) and an optional ``status``.
    """
    import matplotlib.pyplot as plt

    dw, rw = float(deployment_window_min), float(rollback_window_min)
    now_min = _minutes(now, start)
    bars = []
    for step in steps:
        begin = _minutes(_field(step, "start"), start)
        end = _minutes(_field(step, "end"), start)
        if begin is None:
            continue
        if end is None:
            end = now_min if now_min is not None and now_min > begin else begin + 1
        bars.append((str(_field(step, "name", "?")), begin, end, _field(step, "status")))

    fig, (top, bottom) = plt.subplots(
        2,
        1,
        figsize=(10, 2.2 + 0.4 * max(len(bars), 3)),
        height_ratios=[1, max(len(bars), 3) * 0.45],
        layout="constrained",
    )
    lanes = [
        (f"freeze (T-{freeze_h:g}h)", -freeze_h, (dw + rw) / 60, "#9aa0a6"),
        (f"deployment ({dw:g} min)", 0.0, dw / 60, "#1a73e8"),
        (f"rollback ({rw:g} min)", dw / 60, (dw + rw) / 60, "#f9ab00"),
    ]
    for y, (_, lo, hi, colour) in enumerate(reversed(lanes)):
        top.broken_barh([(lo, hi - lo)], (y - 0.35, 0.7), color=colour, alpha=0.8)
    top.set_yticks(range(len(lanes)), [lane[0] for lane in reversed(lanes)], fontsize=8)
    top.set_xlim(-freeze_h - 1, (dw + rw) / 60 + 1)
    top.axvline(0, color="black", linewidth=1)
    top.set_xlabel("hours relative to T (start of the deployment window)")

    bottom.axvspan(0, dw, color="#1a73e8", alpha=0.08, label=f"deployment window ({dw:g} min)")
    bottom.axvspan(dw, dw + rw, color="#f9ab00", alpha=0.10, label=f"rollback window ({rw:g} min)")
    for y, (_, begin, end, status) in enumerate(reversed(bars)):
        overrun = end > dw
        bottom.barh(
            y,
            max(end - begin, 0.3),
            left=begin,
            height=0.6,
            color=_STATUS_COLOURS.get(str(status).lower(), "#4285f4"),
            edgecolor="#d93025" if overrun else "none",
            linewidth=2 if overrun else 0,
        )
        note = " (after the window)" if overrun else ""
        bottom.text(end, y, f" {end - begin:.0f} min{note}", va="center", fontsize=7)
    bottom.set_yticks(range(len(bars)), [b[0] for b in reversed(bars)], fontsize=8)
    last = max([dw + rw, *(b[2] for b in bars)])
    bottom.set_xlim(min([-5.0, *(b[1] for b in bars)]) - 2, last + 10)
    if now_min is not None:
        bottom.axvline(now_min, color="black", linestyle=":", linewidth=1, label="now")
    bottom.set_xlabel("minutes after T")
    bottom.grid(axis="x", alpha=0.3)
    bottom.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7)
    fig.suptitle(f"{title} — T = {start:%Y-%m-%d %H:%M %Z}".rstrip())
    plt.close(fig)
    return fig
