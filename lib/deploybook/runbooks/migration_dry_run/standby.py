"""02 keeps its verified restore of the snapshot as the rollback standby (05 swaps it in).

With ``database.rollback.standby`` (and rollback by swap), the restore verification's copy
is restored as a service copy (owners and grants as dumped) and, once proven equal to the
source, parked under a name derived from the target and the snapshot's SHA-256 with
connections refused (`systems.postgres.standby`). The dry run then restores a copy of its
own: migrations never touch the standby. `settle`, before the gate: a 02 that fails drops
it again (nothing will be rolled out, nothing rolled back) and leaves earlier standbys be;
one that passes drops the target's earlier standbys (one copy of its disk at a time).
"""

from __future__ import annotations

import contextlib

from deploybook.core.checks import Check, Checks, Status
from deploybook.errors import DeploybookError
from deploybook.session.runbook import Runbook
from deploybook.systems.postgres import db, standby
from deploybook.systems.postgres.restore import drop_scratch
from deploybook.systems.postgres.snapshot import Snapshot

SECTION = "7"
CHECK_NAME = "rollback standby"
SETTLED = "rollback standby after the gate"


def wanted(run: Runbook) -> bool:
    """Whether 02 keeps a standby for 05: params ask for it and 05 restores by swap."""
    spec = run.params.database.rollback
    return spec.standby and spec.mode == "swap"


def not_kept(why: str) -> Check:
    """No standby for this snapshot: 05 will restore inside the rollback window."""
    return Check(
        CHECK_NAME,
        SECTION,
        Status.WARN,
        f"not kept ({why}): 05 will restore the snapshot inside the rollback window",
        critical=False,
    )


def keep(run: Runbook, scratch: str, snap: Snapshot) -> Check:
    """Park the verified ``scratch`` copy as ``snap``'s standby; a warning (and the copy
    dropped) when it cannot be kept: 05 then restores, as without a standby."""
    url = run.database_url()
    name = standby.standby_name(db.dbname_of(url), snap.sha256)
    try:
        standby.park(url, scratch, name)
    except DeploybookError as exc:
        with contextlib.suppress(DeploybookError):
            drop_scratch(url, scratch, run.params.database.scratch_pattern)
        return not_kept(str(exc))
    return Check(
        CHECK_NAME,
        SECTION,
        Status.PASS,
        f"the copy proven equal above is kept as {name} (connections refused): a rollback "
        "compares it with the snapshot again and swaps it in, no restore in the window. "
        f"It holds a copy of the database's disk: once the release is accepted, "
        f"DROP DATABASE {name}",
        critical=False,
        data={"standby": name, "sha256": snap.sha256},
    )


def settle(run: Runbook) -> Checks:
    """Before the gate: the standby stays only for a release that may go ahead."""
    kept = next(
        (c for c in reversed(run.checks) if c.name == CHECK_NAME and isinstance(c.data, dict)),
        None,
    )
    if kept is None:
        return run.record(Checks())
    name = kept.data["standby"]
    failed = [c.name for c in run.checks.failed]  # what the gate below will refuse
    if not failed:
        try:
            others = standby.drop_others(run.database_url(), name)
        except DeploybookError as exc:
            return run.record(Check(SETTLED, SECTION, Status.WARN, f"{name} kept; {exc}", False))
        dropped = f"; earlier standbys dropped: {', '.join(others)}" if others else ""
        evidence = f"{name} kept for 05-rollback{dropped}"
        return run.record(Check(SETTLED, SECTION, Status.PASS, evidence, critical=False))
    try:
        standby.drop(run.database_url(), name)
    except DeploybookError as exc:
        evidence = f"02 fails its gate, but {name} could not be dropped ({exc}): drop it by hand"
    else:
        evidence = f"02 fails its gate ({', '.join(failed[:3])}): {name} dropped"
    return run.record(Check(SETTLED, SECTION, Status.WARN, evidence, critical=False))
