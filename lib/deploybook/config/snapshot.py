"""Params of snapshots and of 05's rollback: how to dump, and how to put a snapshot back.

Snapshot format, jobs and compression are chosen by measurement when unset (see
`deploybook.systems.postgres.compression`); these types only say what a params file may
pin. The rollback restores into a new database and swaps it in by renaming (``swap``), or
replaces the target's contents in one transaction (``in_place``) where renaming databases
is not allowed (a managed service, a role that does not own the database).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

# 6 = gzip:6, 0/"none" = uncompressed, "zstd:1", "lz4", "gzip:1"; unset/"auto" = measured.
Compression = (
    Annotated[int, Field(ge=0, le=9)]
    | Annotated[str, StringConstraints(pattern=r"^(auto|none|(zstd|lz4|gzip)(:\d{1,2})?)$")]
)


class RollbackSpec(BaseModel):
    """How 05 restores the snapshot (plan section 16)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # swap: parallel restore into a new database, verify it, rename it over the target (the
    # old database is kept as <name>_pre_rollback_<ts>). in_place: one-transaction restore
    # into the target after a safety dump. A refused rename falls back to in_place.
    mode: Literal["swap", "in_place"] = "swap"
    # The new database's name; {database} and {ts} are filled in (63-byte limit: a longer
    # name is shortened with a hash suffix).
    restore_name: str = Field("{database}_restored_{ts}", pattern=r"\{ts\}")
    # A restore into the new database that fails: drop the half-restored copy (default) or
    # keep it to look at. The target is untouched either way.
    keep_failed_restore: bool = False
    # Swap only: 02 keeps its verified restore of the snapshot as <name>_standby_<sha12>
    # (connections refused) and 05 swaps it in after comparing it with the snapshot again,
    # instead of restoring inside the rollback window. Costs one copy of the database's
    # disk until 05 or an operator drops it.
    standby: bool = False
    # How long the swap waits for the target's sessions to end after terminating them.
    terminate_timeout_s: float = Field(10.0, gt=0, le=300)
