"""Reading earlier records: a later runbook takes its facts from an earlier one's scraps.

The ledger is the index: the latest entry of a runbook for an environment and release
names its record, and `Record.read` reads a scrap glued there as its typed model from
`deploybook.session.scraps` (the contract between runbooks: which runbook writes what).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from deploybook.core import audit, paths
from deploybook.errors import ConfigError
from deploybook.session.scraps import Glued, read_glued

T = TypeVar("T")


@dataclass(frozen=True)
class Record:
    """One earlier run: its ledger entry and its scraps."""

    entry: dict[str, Any]
    path: Path
    glued: dict[str, Glued]

    @property
    def passed(self) -> bool:
        return self.entry.get("status") == "passed"

    def holds(self, model: type[Any]) -> bool:
        """Whether this record glued the scrap of ``model`` (a `scraps` model)."""
        return model.NAME in self.glued

    def read(self, model: type[T], default: Any = None) -> T | Any:
        """The scrap of ``model``, validated (ScrapInvalid names this record), or ``default``."""
        return model.read(self, default)  # type: ignore[attr-defined]


def read_scraps(path: Path) -> dict[str, Any]:
    """Every scrap's raw data in an executed notebook, by name (the last one wins)."""
    return {name: glued.data for name, glued in read_glued(path).items()}


def find(
    env: str,
    release: str,
    runbook: str,
    *,
    passed: bool | None = None,
    having: type[Any] | None = None,
    outputs: Path | None = None,
) -> Record | None:
    """The latest record of ``runbook`` for env and release (optionally only passing ones,
    or only ones holding the scrap of the `scraps` model ``having``), or None."""
    outputs = outputs or paths.outputs_dir()
    entries = audit.read_ledger(audit.ledger_path(outputs, env))
    for entry in reversed(entries):
        if entry.get("runbook") != runbook or entry.get("release") != release:
            continue
        if passed is not None and (entry.get("status") == "passed") != passed:
            continue
        path = outputs / entry["record"]
        if not path.exists():
            continue
        record = Record(entry, path, read_glued(path))
        if having is not None and not record.holds(having):
            continue
        return record
    return None


def require(env: str, release: str, runbook: str, what: str, fix: str, **kwargs: Any) -> Record:
    """Like `find`, but a missing record is a clear error saying what to pass instead."""
    record = find(env, release, runbook, **kwargs)
    if record is None:
        raise ConfigError(
            f"no {'passing ' if kwargs.get('passed') else ''}{runbook} record for {env} {release} "
            f"holding {what}: {fix}"
        )
    return record
