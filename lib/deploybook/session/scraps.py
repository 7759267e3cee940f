"""What one runbook hands another: every scrap as a typed, versioned record.

A scrap is a fact glued into an executed notebook (scrapbook's format) for a later runbook,
the release overview or an auditor to read. This module is the contract: one model per
scrap, naming the scrap (`NAME`), the runbooks that write it and its schema version. A
runbook writes with ``model.glue()`` and reads with ``Model.read(record)``; nothing else
in deploybook spells a scrap's name.

The data keeps the JSON shape each scrap always had, so records written before this module
still read (and `scrapbook.read_notebook` sees the same data). The schema version travels
beside the data in the scrap's payload (``schema_version``); a payload without one was
written before scraps were typed: version 0, which `upgrade` turns into the current shape.
Data that does not validate, or a version newer than this deploybook knows, is a
`ScrapInvalid` naming the record, the scrap, what is wrong and what to do.
"""

from __future__ import annotations

from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, RootModel

from deploybook.session.glued import LEGACY_VERSION, SCRAP_MIMETYPE, Glued, read_glued, write
from deploybook.session.scrapbase import ScrapInvalid, ScrapModel


# -- the models ----------------------------------------------------------------------------------
class _Scrap(ScrapModel):
    """What every scrap model can do: name itself, glue itself, read itself back."""

    def glue(self) -> Self:
        """Write this record into the running notebook for later runbooks."""
        write(self.NAME, self.data(), self.SCHEMA_VERSION)
        return self


class _Record(_Scrap, BaseModel):
    """A scrap holding one JSON object; keys a newer writer added are kept, not refused."""

    model_config = ConfigDict(extra="allow")


class RunFacts(_Record):
    """Who ran which runbook where, with what (the "you are here" header)."""

    NAME: ClassVar[str] = "run"
    WRITTEN_BY: ClassVar[tuple[str, ...]] = ("every runbook",)

    runbook: str
    env: str
    release: str
    kind: str | None = None
    role: str | None = None
    previous_release: str | None = None
    operator: str | None = None
    execute: bool = False
    run_id: str | None = None
    started_at: str | None = None
    epic: str | None = None
    params_file: str | None = None


class CheckRecord(BaseModel):
    """One `Check` as data (`Check.as_dict`)."""

    model_config = ConfigDict(extra="allow")

    name: str
    section: str | None = None
    status: str
    evidence: str | None = ""
    critical: bool = True
    duration_s: float = 0.0
    data: Any = None


class CheckRecords(_Scrap, RootModel[list[CheckRecord]]):
    """Every check a run recorded, glued before its gate."""

    NAME: ClassVar[str] = "checks"
    WRITTEN_BY: ClassVar[tuple[str, ...]] = ("every runbook",)


class Timing(_Record):
    """When a run started and ended."""

    NAME: ClassVar[str] = "timing"
    WRITTEN_BY: ClassVar[tuple[str, ...]] = ("every runbook",)

    started_at: str
    ended_at: str
    duration_s: float


class Summary(_Record):
    """The gate's verdict in one line."""

    NAME: ClassVar[str] = "summary"
    WRITTEN_BY: ClassVar[tuple[str, ...]] = ("every runbook",)

    ok: bool
    summary: str


class Artifacts(_Record):
    """The commit and each component's SHA at the release tag (01 writes; 03 compares)."""

    NAME: ClassVar[str] = "artifacts"
    WRITTEN_BY: ClassVar[tuple[str, ...]] = ("01-preconditions",)

    release: str | None = None
    commit: str | None = None
    tag_object: str | None = None
    components: dict[str, Any] = {}


class SnapshotFacts(_Record):
    """The snapshot 02 took (03 copies it; 04 compares row counts; 05 restores it)."""

    NAME: ClassVar[str] = "snapshot"
    WRITTEN_BY: ClassVar[tuple[str, ...]] = ("02-migration-dry-run", "03-rollout")
    # 2: how it was dumped and why (jobs, compress_method, compress_level, why).
    SCHEMA_VERSION: ClassVar[int] = 2

    path: str
    size: int = 0
    sha256: str = ""
    format: str = ""
    created_at: str = ""
    server_version: str = ""
    database: str = ""
    name: str = ""
    pg_dump_version: str = ""
    compress: str | None = None
    duration_s: float = 0.0
    inventory: dict[str, Any] | None = None
    jobs: int = 1
    compress_method: str = ""
    compress_level: int | None = None
    why: str = ""

    @classmethod
    def of(cls, snap: Any) -> SnapshotFacts:
        """From a `systems.postgres.snapshot.Snapshot`."""
        return cls.model_validate(snap.as_dict())

    def to_snapshot(self) -> Any:
        """As a `Snapshot` (path relative to wherever the reader resolves it)."""
        from deploybook.systems.postgres.snapshot import Snapshot

        return Snapshot.from_dict(self.model_dump())

    @property
    def row_counts(self) -> dict[str, int] | None:
        counts = (self.inventory or {}).get("row_counts")
        return counts if isinstance(counts, dict) else None


class MigrationStatusFacts(_Record):
    """What 02 found in ``_prisma_migrations`` against the migrations of the checkout."""

    NAME: ClassVar[str] = "migration_status"
    WRITTEN_BY: ClassVar[tuple[str, ...]] = ("02-migration-dry-run",)

    folder: str
    provider: str | None = None
    applied: list[Any] = []
    pending: list[str] = []
    pending_checksums: dict[str, Any] = {}
    failed: list[str] = []
    drift: list[Any] = []
    missing_locally: list[Any] = []
    loose_sql: list[str] = []
    raw_sql: list[str] = []
    ok: bool = False


class MigrationImpact(_Record):
    """What applying the pending migrations will cost production, measured by 02's dry run
    on a full-size copy: per statement and per table (blocked reads/writes, worst first),
    overruns, advice, the window fit, and which copy it ran on (03 shows it in its plan)."""

    NAME: ClassVar[str] = "migration_impact"
    WRITTEN_BY: ClassVar[tuple[str, ...]] = ("02-migration-dry-run",)

    target: dict[str, Any] = {}  # target, scratch, verified_copy, restores
    lines: list[str] = []  # "content_chunks: writes blocked ~74.20 s (…)", worst first
    statements: list[dict[str, Any]] = []
    tables: list[dict[str, Any]] = []
    advice: list[dict[str, Any]] = []
    total_s: float = 0.0
    at_least: bool = False
    budget_s: float | None = None
    window: dict[str, Any] | None = None


class PreviousVersions(_Scrap, RootModel[dict[str, str | None]]):
    """Each service's version before the rollout deployed: what 05 reverts to."""

    NAME: ClassVar[str] = "previous_versions"
    WRITTEN_BY: ClassVar[tuple[str, ...]] = ("03-rollout",)


class AppliedMigrations(_Scrap, RootModel[list[str]]):
    """The migrations the rollout applied (05 reports them as removed by the restore)."""

    NAME: ClassVar[str] = "applied_migrations"
    WRITTEN_BY: ClassVar[tuple[str, ...]] = ("03-rollout",)


class RolloutOutcome(_Record):
    """How a rollout went: planned, completed, failed, interrupted, or refused by its gates.

    Version 0 had two shapes (a refusal held only stage, status, execute and steps); the
    fields it left out default here, so both read as one.
    """

    NAME: ClassVar[str] = "rollout"
    WRITTEN_BY: ClassVar[tuple[str, ...]] = ("03-rollout",)

    stage: str
    status: str
    execute: bool = False
    env: str = ""
    release: str = ""
    run_key: str = ""
    attempt: str = ""
    ledger: str = ""
    error: str | None = None
    steps: list[dict[str, Any]] = []

    @property
    def completed(self) -> bool:
        """An executed rollout that finished every step."""
        return self.status == "completed" and self.execute


class SignOffRecords(_Scrap, RootModel[list[dict[str, Any]] | dict[str, str | None]]):
    """The sign-offs the rollout gates checked (a mapping role -> name in old records)."""

    NAME: ClassVar[str] = "signoffs"
    WRITTEN_BY: ClassVar[tuple[str, ...]] = ("03-rollout",)


class BreachFacts(_Record):
    """A sustained SLA breach 04 saw: the trigger 05 reports and rolls back for."""

    NAME: ClassVar[str] = "breach"
    WRITTEN_BY: ClassVar[tuple[str, ...]] = ("04-smoke",)

    service: str | None = None
    metric: str | None = None
    label: str | None = None
    threshold: float | None = None
    peak: float | None = None
    first_seen: str | None = None
    last_seen: str | None = None
    duration_s: float | None = None
    sustain_s: float | None = None
    sustained: bool | None = None
    recommendation: str | None = None


class WatchSample(BaseModel):
    """One sample of the SLA watch as read: values None where the source had none."""

    model_config = ConfigDict(extra="allow")

    timestamp: str
    t_s: float
    service: str
    values: dict[str, float | None]
    requests: float | None = None
    version: str | None = None
    error: str | None = None


class WatchSamples(_Scrap, RootModel[list[WatchSample]]):
    """Every raw sample of 04's SLA watch, whatever its outcome: the evidence behind it."""

    NAME: ClassVar[str] = "watch_samples"
    WRITTEN_BY: ClassVar[tuple[str, ...]] = ("04-smoke",)


class SpotCheckRow(BaseModel):
    """One configured spot check, confirmed or not."""

    model_config = ConfigDict(extra="allow")

    item: str
    confirmed: bool
    by: str | None = None
    at: str | None = None
    source: str | None = None


class SpotCheckRecords(_Scrap, RootModel[list[SpotCheckRow]]):
    """Every manual spot check of 04, who confirmed it and when."""

    NAME: ClassVar[str] = "spot_checks"
    WRITTEN_BY: ClassVar[tuple[str, ...]] = ("04-smoke",)


class RollbackOutcome(_Record):
    """What 05 did: reverted, restored, verified, how fast, and the incident report."""

    NAME: ClassVar[str] = "rollback"
    WRITTEN_BY: ClassVar[tuple[str, ...]] = ("05-rollback",)
    # 2: how the database was restored (swap or in_place, why, the kept pre-rollback
    # database, the swap's critical section) and what the restore discarded.
    SCHEMA_VERSION: ClassVar[int] = 2

    dry_run: bool
    recovery_s: float | None = None
    verified: bool = False
    started_at: str | None = None
    verified_at: str | None = None
    rollback_window_minutes: float | None = None
    within_window: bool = False
    reverted: list[dict[str, Any]] = []
    restored: bool = False
    removed_migrations: list[str] = []
    snapshot: str | None = None
    safety_snapshot: str | None = None
    incident_report: str | None = None
    trigger: Any = None
    restore_mode: str | None = None
    restore_why: str | None = None
    pre_rollback_db: str | None = None
    swap_s: float | None = None
    data_loss: dict[str, Any] | None = None


SCRAPS: dict[str, type[_Scrap]] = {
    model.NAME: model
    for model in (
        RunFacts,
        CheckRecords,
        Timing,
        Summary,
        Artifacts,
        SnapshotFacts,
        MigrationStatusFacts,
        MigrationImpact,
        PreviousVersions,
        AppliedMigrations,
        RolloutOutcome,
        SignOffRecords,
        BreachFacts,
        WatchSamples,
        SpotCheckRecords,
        RollbackOutcome,
    )
}

__all__ = [
    "LEGACY_VERSION",
    "SCRAPS",
    "SCRAP_MIMETYPE",
    "AppliedMigrations",
    "Artifacts",
    "BreachFacts",
    "CheckRecord",
    "CheckRecords",
    "Glued",
    "MigrationImpact",
    "MigrationStatusFacts",
    "PreviousVersions",
    "RollbackOutcome",
    "RolloutOutcome",
    "RunFacts",
    "ScrapInvalid",
    "SignOffRecords",
    "SnapshotFacts",
    "SpotCheckRecords",
    "SpotCheckRow",
    "Summary",
    "Timing",
    "WatchSample",
    "WatchSamples",
    "read_glued",
    "write",
]
