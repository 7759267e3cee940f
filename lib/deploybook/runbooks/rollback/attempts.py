"""Which ledger run key a rollback uses, so a rerun after a crash resumes instead of
starting over (plan section 16; issue 22: a killed 05 announced a third rollback).

Like 03's rollout (`runbooks.rollout.attempts`), the key is the release, not the run id:
``<release>:rollback``, then ``#2``, ``#3`` for later attempts. A run resumes the last
attempt unless that attempt completed; a rerun with the run id of a run that joined an
attempt (a papermill rerun of the same record) gets that attempt back, completed or not,
so it repeats nothing. Each run that joins an attempt leaves a ``joined by <run id>`` line.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from deploybook.core.steps import DONE

COMPLETE_STEP = "complete"
JOINED = "joined by "


def ledger_path(record_dir: Path, env: str, release: str) -> Path:
    return record_dir / f"rollback-steps-{env}-{release}.jsonl"


def is_bookkeeping(step_name: str) -> bool:
    """Ledger lines that are not steps of the rollback (left out of timelines)."""
    return step_name == COMPLETE_STEP or step_name.startswith(JOINED)


def attempt_key(path: Path, release: str, run_id: str | None) -> tuple[str, str]:
    """The ledger run key to use and why (see the module docstring)."""
    base = f"{release}:rollback"
    pattern = re.compile(rf"^{re.escape(base)}(?:#(\d+))?$")
    numbers: dict[int, str] = {}
    first: dict[str, str] = {}
    complete: set[str] = set()
    joined: dict[str, str] = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            key = event.get("run_key", "") if isinstance(event, dict) else ""
            if not isinstance(key, str) or not (match := pattern.match(key)):
                continue
            numbers[int(match.group(1) or 1)] = key
            first.setdefault(key, event.get("recorded_at", ""))
            step = str(event.get("step", ""))
            if step == COMPLETE_STEP and event.get("status") == DONE:
                complete.add(key)
            if step.startswith(JOINED):
                joined[step[len(JOINED) :]] = key
    if run_id and run_id in joined:
        return joined[run_id], f"rerun of run {run_id}: its finished steps are skipped"
    if not numbers:
        return base, "first attempt"
    n = max(numbers)
    key = numbers[n]
    if key in complete:
        return f"{base}#{n + 1}", f"attempt {n} completed: attempt {n + 1} runs every step"
    return key, f"resuming attempt {n} (begun {first[key]}): finished steps are skipped"
