"""Attempts of a resumable runbook (03's rollout, 05's rollback), read from its step ledger.

Both runbooks key their step ledger by an attempt, not by the run: ``<base>`` for the
first, ``<base>#2``, ``<base>#3`` for later ones, so a rerun after a crash finds the
attempt it belongs to and skips the steps already done. This module only reads what the
ledger says about attempts; each runbook decides when to resume (see their
``attempt_key``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deploybook.core.steps import DONE

COMPLETE_STEP = "complete"
JOINED = "joined by "


def ledger_events(path: Path) -> Iterator[dict[str, Any]]:
    """Every readable JSON object line of a step ledger (a torn line from a crash is
    skipped: the step it described did not finish)."""
    if not path.exists():
        return
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict):
            yield event


@dataclass
class Attempts:
    """What a step ledger holds about the attempts of one ``base`` key."""

    base: str
    keys: dict[int, str] = field(default_factory=dict)  # attempt number -> run key
    begun: dict[str, str] = field(default_factory=dict)  # run key -> first timestamp
    complete: set[str] = field(default_factory=set)  # run keys with a done ``complete``
    joined: dict[str, str] = field(default_factory=dict)  # run id -> run key it joined

    @property
    def last(self) -> int:
        """The number of the newest attempt (0 when there is none)."""
        return max(self.keys, default=0)

    @property
    def last_key(self) -> str:
        return self.keys[self.last]

    @property
    def fresh_key(self) -> str:
        """The key a new attempt after the newest one gets."""
        return f"{self.base}#{self.last + 1}"


def read_attempts(path: Path, base: str) -> Attempts:
    """The attempts of ``base`` recorded in the step ledger at ``path``."""
    pattern = re.compile(rf"^{re.escape(base)}(?:#(\d+))?$")
    found = Attempts(base)
    for event in ledger_events(path):
        key = event.get("run_key", "")
        if not isinstance(key, str) or not (match := pattern.match(key)):
            continue
        found.keys[int(match.group(1) or 1)] = key
        found.begun.setdefault(key, event.get("recorded_at", ""))
        step = str(event.get("step", ""))
        if step == COMPLETE_STEP and event.get("status") == DONE:
            found.complete.add(key)
        if step.startswith(JOINED):
            found.joined[step[len(JOINED) :]] = key
    return found
