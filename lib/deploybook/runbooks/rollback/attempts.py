"""Which ledger run key a rollback uses, so a rerun after a crash resumes instead of
starting over (plan section 16; issue 22: a killed 05 announced a third rollback).

Like 03's rollout (`runbooks.rollout.attempts`), the key is the release, not the run id:
``<release>:rollback``, then ``#2``, ``#3`` for later attempts. A run resumes the last
attempt unless that attempt completed; a rerun with the run id of a run that joined an
attempt (a papermill rerun of the same record) gets that attempt back, completed or not,
so it repeats nothing. Each run that joins an attempt leaves a ``joined by <run id>`` line.
"""

from __future__ import annotations

from pathlib import Path

from deploybook.core.attempts import COMPLETE_STEP, JOINED, read_attempts

__all__ = ["COMPLETE_STEP", "JOINED", "attempt_key", "is_bookkeeping", "ledger_path"]


def ledger_path(record_dir: Path, env: str, release: str) -> Path:
    return record_dir / f"rollback-steps-{env}-{release}.jsonl"


def is_bookkeeping(step_name: str) -> bool:
    """Ledger lines that are not steps of the rollback (left out of timelines)."""
    return step_name == COMPLETE_STEP or step_name.startswith(JOINED)


def attempt_key(path: Path, release: str, run_id: str | None) -> tuple[str, str]:
    """The ledger run key to use and why (see the module docstring)."""
    found = read_attempts(path, f"{release}:rollback")
    if run_id and run_id in found.joined:
        return found.joined[run_id], f"rerun of run {run_id}: its finished steps are skipped"
    if not found.keys:
        return found.base, "first attempt"
    n, key = found.last, found.last_key
    if key in found.complete:
        return found.fresh_key, f"attempt {n} completed: attempt {n + 1} runs every step"
    return key, f"resuming attempt {n} (begun {found.begun[key]}): finished steps are skipped"
