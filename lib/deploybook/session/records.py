"""Reading earlier records: a later runbook takes its facts from an earlier one's scraps.

The ledger is the index: the latest entry of a runbook for an environment and release
names its record, and `Record.read` reads a scrap glued there as its typed model from
`deploybook.session.scraps` (the contract between runbooks: which runbook writes what).

Every record handed out here is verified first (`verified`): the ledger chain up to its
entry is intact and the file's SHA-256 still matches the entry. A record that fails is a
`RecordUntrusted` naming it, what is wrong (edited / missing / chain broken) and the fix,
so a gate or a prefill never trusts a hand-edited record.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from deploybook.core import audit, paths
from deploybook.errors import AuditError, ConfigError
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


class RecordUntrusted(AuditError):
    """A record a gate or a prefill would read does not match its ledger entry or the chain."""

    def __init__(self, record: str, kind: str, what: str, runbook: str, env: str, release: str):
        self.record, self.kind, self.what = record, kind, what
        fix = f"deploybook run {runbook} --env {env} --release {release}" if runbook else ""
        super().__init__(
            f"{runbook or 'record'} record {record} cannot be trusted ({kind}): {what}; "
            + (f"re-run {runbook} ({fix}) to write a fresh record; " if fix else "")
            + "`deploybook audit verify` lists every problem in the ledger"
        )


def verified(entry: dict[str, Any], outputs: Path, env: str) -> Record:
    """The record of a ledger ``entry``, after checking it can be trusted (RecordUntrusted)."""
    rel = str(entry.get("record", ""))
    found, kind, what = audit.check_record(outputs, env, rel)
    if kind or found is None:
        named = found or entry
        raise RecordUntrusted(
            rel,
            kind or audit.UNLISTED,
            what,
            str(named.get("runbook", "")),
            env,
            str(named.get("release", "")),
        )
    path = outputs / rel
    return Record(found, path, read_glued(path))


def at(env: str, record: str | Path, outputs: Path | None = None) -> Record:
    """One named record (a path under ``outputs``, or absolute), verified; RecordUntrusted
    when it is not in the ledger, was edited or deleted, or the chain before it is broken."""
    outputs = outputs or paths.outputs_dir()
    rel = Path(record)
    if rel.is_absolute():
        try:
            rel = rel.relative_to(outputs)
        except ValueError:
            raise RecordUntrusted(
                str(record), audit.UNLISTED, f"it is not under {outputs}", "", env, ""
            ) from None
    return verified({"record": str(rel)}, outputs, env)


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
    or only ones holding the scrap of the `scraps` model ``having``), or None.

    Each candidate is verified before its scraps are read: RecordUntrusted when the latest
    one was edited, deleted or sits after a broken chain (an older one is never used instead).
    """
    outputs = outputs or paths.outputs_dir()
    entries = audit.read_ledger(audit.ledger_path(outputs, env))
    for entry in reversed(entries):
        if entry.get("runbook") != runbook or entry.get("release") != release:
            continue
        if not entry.get("record"):
            continue  # a prepared copy still open (or abandoned): not a record
        if passed is not None and (entry.get("status") == "passed") != passed:
            continue
        record = verified(entry, outputs, env)  # RecordUntrusted: never skipped silently
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
