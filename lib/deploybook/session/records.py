"""Reading earlier records: a later runbook takes its facts from an earlier one's scraps.

The ledger is the index: the latest entry of a runbook for an environment and release
names its record, and scrapbook reads the scraps glued there (``checks``, ``snapshot``,
``previous_versions``, ``applied_migrations``, ``breach``…).

Scraps each runbook glues (the contract between runbooks):
- every runbook: ``run`` (facts of the run), ``checks`` (list of Check dicts), ``timing``,
  ``summary``;
- 01-preconditions: ``artifacts`` ({"release", "commit", "tag_object", "components":
  {name: {"sha", "kind", "paths"}}});
- 02-migration-dry-run: ``snapshot`` (`snapshot.Snapshot.as_dict()`: path, sha256, size,
  format, database, created_at, inventory with row counts), ``migration_status``;
- 03-rollout: ``previous_versions`` ({service: version} before deploying), ``snapshot``
  (copied from the latest 02 record), ``applied_migrations`` ([names]), ``rollout``
  ({"stage", "status", "steps": [...]}), ``signoffs``;
- 04-smoke: ``breach`` (facts of a sustained SLA breach, or absent);
- 05-rollback: ``rollback`` ({"recovery_s", "verified", "incident_report", ...}).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deploybook.core import audit, paths
from deploybook.errors import ConfigError


@dataclass(frozen=True)
class Record:
    """One earlier run: its ledger entry and its scraps."""

    entry: dict[str, Any]
    path: Path
    scraps: dict[str, Any]

    @property
    def passed(self) -> bool:
        return self.entry.get("status") == "passed"

    def scrap(self, name: str, default: Any = None) -> Any:
        return self.scraps.get(name, default)


def read_scraps(path: Path) -> dict[str, Any]:
    """Every scrap glued in an executed notebook, by name (the last one wins, as in
    scrapbook); read from the JSON directly, which is faster than importing scrapbook."""
    from deploybook.session.runbook import SCRAP_MIMETYPE

    notebook = json.loads(path.read_text(encoding="utf-8"))
    scraps: dict[str, Any] = {}
    for cell in notebook.get("cells", []):
        for output in cell.get("outputs", []):
            payload = output.get("data", {}).get(SCRAP_MIMETYPE)
            if isinstance(payload, dict) and "name" in payload:
                scraps[payload["name"]] = payload.get("data")
    return scraps


def find(
    env: str,
    release: str,
    runbook: str,
    *,
    passed: bool | None = None,
    having: str | None = None,
    outputs: Path | None = None,
) -> Record | None:
    """The latest record of ``runbook`` for env and release (optionally only passing ones,
    or only ones holding the scrap ``having``), or None."""
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
        scraps = read_scraps(path)
        if having and having not in scraps:
            continue
        return Record(entry, path, scraps)
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
