"""Runbook 03's attempts: which ledger run key a rollout resumes, and what ran before it.

A rollout's steps are recorded in a `StepLedger` beside the record; a rerun resumes the
last attempt after its last finished step unless that attempt completed, a rollback ran
since it began, or ``resume=False``. The environment lock (shared with 05-rollback) is
`deploybook.core.lock.run_lock`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from deploybook.core import audit, paths
from deploybook.core.attempts import COMPLETE_STEP, ledger_events, read_attempts
from deploybook.core.steps import StepLedger
from deploybook.runbooks.rollout.plan import VERSIONS_STEP
from deploybook.session.runbook import Runbook

__all__ = ["COMPLETE_STEP", "attempt_key", "keep_earlier", "ledger_path", "when"]


def ledger_path(run: Runbook) -> Path:
    """The rollout's step ledger, beside the record."""
    return run.record_dir / f"steps-{run.env}-{run.release}.jsonl"


def when(text: str | None) -> datetime | None:
    """A ledger timestamp as an aware datetime (None when absent)."""
    if not text:
        return None
    moment = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def attempt_key(path: Path, base: str, *, resume: bool, env: str, release: str) -> tuple[str, str]:
    """The ledger run key to use and why: resume the last attempt unless it completed, a
    rollback ran since it started, or ``resume`` is False (then a fresh attempt ``base#N``)."""
    found = read_attempts(path, base)
    if not found.keys:
        return base, "first attempt"
    n, key, fresh = found.last, found.last_key, found.fresh_key
    if not resume:
        return fresh, f"resume=False: attempt {n + 1} runs every step again"
    if key in found.complete:
        return fresh, f"attempt {n} completed: attempt {n + 1} runs every step again"
    started = when(found.begun[key])
    for entry in audit.read_ledger(audit.ledger_path(paths.outputs_dir(), env)):
        ran = when(entry.get("started_at"))
        if entry.get("runbook") == "05-rollback" and entry.get("release") == release:
            if started and ran and ran > started:
                return (
                    fresh,
                    f"05-rollback ran after attempt {n} began: attempt {n + 1} starts over",
                )
    return key, f"resuming attempt {n} (begun {found.begun[key]}): finished steps are skipped"


def keep_earlier(found: Any, ledger: StepLedger, release: str) -> dict[str, Any] | None:
    """What ran before this release: a service already at the release (a rerun after the
    rollout completed) keeps the version an earlier attempt recorded, so the rollback
    target is never the release itself."""
    if not isinstance(found, dict):
        return found
    base = ledger.run_key.split("#")[0]
    earlier: dict[str, str] = {}
    for event in ledger_events(ledger.path):
        key = event.get("run_key", "")
        if not isinstance(key, str) or key.split("#")[0] != base:
            continue
        if event.get("step") != VERSIONS_STEP:
            continue
        for name, version in (event.get("result") or {}).items():
            if version and version != release:
                earlier.setdefault(name, version)
    kept = {k: earlier[k] for k, v in found.items() if v == release and k in earlier}
    if kept:
        print(f"    already at {release}; previous versions kept from an earlier attempt: {kept}")
    return {**found, **kept}
