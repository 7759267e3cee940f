"""Runbook 03's attempts: which ledger run key a rollout resumes, and what ran before it.

A rollout's steps are recorded in a `StepLedger` beside the record; a rerun resumes the
last attempt after its last finished step unless that attempt completed, a rollback ran
since it began, or ``resume=False``. The environment lock (shared with 05-rollback) is
`deploybook.core.lock.run_lock`.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from deploybook.core import audit, paths
from deploybook.core.steps import DONE, StepLedger
from deploybook.runbooks.rollout.plan import VERSIONS_STEP
from deploybook.session.runbook import Runbook

COMPLETE_STEP = "complete"


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
    first: dict[str, str] = {}
    complete: set[str] = set()
    attempt = re.compile(rf"^{re.escape(base)}(?:#(\d+))?$")
    numbers: dict[int, str] = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            key = event.get("run_key", "") if isinstance(event, dict) else ""
            if not isinstance(key, str) or not (match := attempt.match(key)):
                continue
            numbers[int(match.group(1) or 1)] = key
            first.setdefault(key, event.get("recorded_at", ""))
            if event.get("step") == COMPLETE_STEP and event.get("status") == DONE:
                complete.add(key)
    if not numbers:
        return base, "first attempt"
    n = max(numbers)
    key = numbers[n]
    fresh = f"{base}#{n + 1}"
    if not resume:
        return fresh, f"resume=False: attempt {n + 1} runs every step again"
    if key in complete:
        return fresh, f"attempt {n} completed: attempt {n + 1} runs every step again"
    started = when(first[key])
    for entry in audit.read_ledger(audit.ledger_path(paths.outputs_dir(), env)):
        ran = when(entry.get("started_at"))
        if entry.get("runbook") == "05-rollback" and entry.get("release") == release:
            if started and ran and ran > started:
                return (
                    fresh,
                    f"05-rollback ran after attempt {n} began: attempt {n + 1} starts over",
                )
    return key, f"resuming attempt {n} (begun {first[key]}): finished steps are skipped"


def keep_earlier(found: Any, ledger: StepLedger, release: str) -> dict[str, Any] | None:
    """What ran before this release: a service already at the release (a rerun after the
    rollout completed) keeps the version an earlier attempt recorded, so the rollback
    target is never the release itself."""
    if not isinstance(found, dict):
        return found
    base = ledger.run_key.split("#")[0]
    earlier: dict[str, str] = {}
    if ledger.path.exists():
        for line in ledger.path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            key = event.get("run_key", "") if isinstance(event, dict) else ""
            if key.split("#")[0] != base or event.get("step") != VERSIONS_STEP:
                continue
            for name, version in (event.get("result") or {}).items():
                if version and version != release:
                    earlier.setdefault(name, version)
    kept = {k: earlier[k] for k, v in found.items() if v == release and k in earlier}
    if kept:
        print(f"    already at {release}; previous versions kept from an earlier attempt: {kept}")
    return {**found, **kept}
