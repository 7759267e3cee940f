"""Runbook 05's database steps: how to restore, what it discards, and the restore itself.

``swap`` (the default, `database.rollback.mode`): the snapshot is restored in parallel into
a new database and verified against its inventory while the target keeps serving; then
one short critical section renames the target to ``<name>_pre_rollback_<ts>`` and the copy
to the target. The old database is the safety copy: no second dump. ``in_place`` (params,
or when PostgreSQL refuses this role the rename): a safety dump, then the one-transaction
restore into the target. Each is a resumable ledger step; the record says which ran, why,
and what the restore discarded.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deploybook.config.snapshot import RollbackSpec
from deploybook.core.checks import Check, Status
from deploybook.core.steps import DONE, SKIPPED
from deploybook.errors import DatabaseError, DeploybookError
from deploybook.runbooks.rollback.outcome import Outcome, result, step_check
from deploybook.runbooks.rollback.plan import SECTION
from deploybook.systems.postgres import dataloss, db, standby, swap
from deploybook.systems.postgres.restore import restore
from deploybook.systems.postgres.restore_copy import drop_db, restore_copy
from deploybook.systems.postgres.snapshot import snapshot
from deploybook.systems.postgres.tools import pg_tools

if TYPE_CHECKING:  # the steps module imports this one
    from deploybook.runbooks.rollback.steps import Recovery


def choose_restore(url: str, spec: RollbackSpec, ts: str | None = None) -> dict[str, Any]:
    """Swap or in place, why, and the names a swap uses: params choose, and PostgreSQL is
    asked (`swap.rename_refusal`) whether this role may rename the target at all."""
    database = db.dbname_of(url)
    ts = ts or datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    restored, pre = swap.names(database, spec.restore_name, ts)
    if spec.mode == "in_place":
        mode, why = "in_place", "params choose it (database.rollback.mode: in_place)"
    elif refusal := swap.rename_refusal(url):
        mode, why = "in_place", f"renaming {database} is refused ({refusal}): no swap possible"
    else:
        mode, why = "swap", f"this role may rename {database}: parallel restore and swap"
    return {"mode": mode, "why": why, "restored": restored, "pre_rollback": pre}


def _kept_in(recovery: Recovery, choice: dict[str, Any]) -> str:
    if choice["mode"] == "swap":
        return f"database {choice['pre_rollback']} (the target before the rollback, kept)"
    return f"the safety snapshot {_safety_name(recovery)} beside this record"


def _safety_name(recovery: Recovery) -> str:
    run = recovery.run
    return f"safety-{run.env}-{recovery.ledger.run_key.replace(':', '-').replace('#', '-')}"


def _account(recovery: Recovery, choice: dict[str, Any]) -> Outcome:
    """What the restore discards (rows, newer writes, migrations), before it runs."""
    plan, url = recovery.plan, recovery.run.database_url()
    inventory = plan.snapshot.inventory or {}
    loss = dataloss.account(url, inventory, plan.snapshot.created_at, _kept_in(recovery, choice))
    kept = {row[0] for row in inventory.get("prisma_migrations") or []}
    removed = [r["migration_name"] for r in db.prisma_rows(url) or []]
    value = {**loss.as_dict(), "removed_migrations": [m for m in removed if m not in kept]}
    return Outcome(value, loss.summary())


def _adopt_standby(recovery: Recovery, choice: dict[str, Any]) -> tuple[Outcome | None, str]:
    """02's standby of this snapshot, compared with its inventory and renamed to the copy
    the swap expects; (None, why) when there is none or it no longer equals the snapshot
    (then dropped): the caller restores instead."""
    run, snap = recovery.run, recovery.plan.snapshot
    url = run.database_url()
    name = standby.standby_name(db.dbname_of(url), snap.sha256)
    if not run.params.database.rollback.standby:
        return None, "no standby (database.rollback.standby is off)"
    if not snap.inventory:
        return None, f"the snapshot has no inventory to compare {name} with"
    try:
        adopted = standby.adopt(url, name, snap.inventory, choice["restored"])
    except DeploybookError as exc:
        return None, f"standby {name} could not be used ({exc})"
    if not adopted.found:
        return None, f"no standby {name} (02 did not keep one, or it was dropped)"
    if not adopted.ok:
        failed = "; ".join(f"{c.name}: {c.evidence}" for c in adopted.checks.failed)
        return None, f"standby {name} no longer equals the snapshot ({failed}): dropped"
    return Outcome(
        {"database": choice["restored"], "standby": name, "checks": adopted.checks.to_records()},
        f"02's standby {name} of {Path(snap.path).name} compared with the snapshot "
        f"({adopted.checks.summary()}) and renamed {choice['restored']}: no restore needed",
    ), ""


def _copy(recovery: Recovery, choice: dict[str, Any]) -> Outcome:
    """02's standby when it still equals the snapshot, else a parallel restore into the
    new database, verified; the target is not touched either way."""
    adopted, why_not = _adopt_standby(recovery, choice)
    if adopted is not None:
        return adopted
    run, plan = recovery.run, recovery.plan
    url, spec = run.database_url(), run.params.database.rollback
    tools = pg_tools(run.pg_bin_dir, db.server_version(url)[0])
    name, target = choice["restored"], db.dbname_of(url)
    try:
        copy = restore_copy(
            plan.snapshot,
            url,
            name,
            tools,
            keep=True,
            keep_failed=spec.keep_failed_restore,
            service_copy=True,
        )
    except DeploybookError as exc:
        raise type(exc)(f"{exc}; {target} was not touched") from None
    if not copy.ok:
        failed = "; ".join(f"{c.name}: {c.evidence}" for c in copy.checks.failed)
        fate = "kept to look at" if spec.keep_failed_restore else "dropped"
        if not spec.keep_failed_restore:
            restore_copy_drop(url, name)
        raise DatabaseError(
            f"the restored copy {name} does not equal the snapshot ({failed}); it was {fate} "
            f"and {target} was not touched"
        )
    return Outcome(
        {"database": name, "jobs": copy.jobs, "checks": copy.checks.to_records()},
        f"{Path(plan.snapshot.path).name} restored into {name} with {copy.jobs} job(s) in "
        f"{copy.duration_s:.1f}s and verified: {copy.checks.summary()} ({why_not})",
    )


def restore_copy_drop(url: str, name: str) -> None:
    """Drop a restored copy that will not be swapped in (only rollback copies reach here)."""
    with db.connect(db.with_dbname(url, "postgres"), autocommit=True) as admin:
        drop_db(admin, name)


def _swap(recovery: Recovery, choice: dict[str, Any]) -> Outcome:
    run = recovery.run
    url, spec = run.database_url(), run.params.database.rollback
    done = swap.swap_in(
        url,
        choice["restored"],
        choice["pre_rollback"],
        terminate_timeout_s=spec.terminate_timeout_s,
    )
    return Outcome(
        done.as_dict(),
        f"{done.target} is now the restored copy; the old database is kept as "
        f"{done.pre_rollback} ({done.terminated} session(s) ended, unavailable for "
        f"{done.critical_s:.2f}s)",
    )


def _safety(recovery: Recovery) -> Outcome:
    run, params = recovery.run, recovery.run.params.database
    snap = snapshot(
        run.database_url(),
        run.record_dir,
        _safety_name(recovery),
        params.snapshot_format,
        params.snapshot_jobs,
        params.snapshot_compress,
        bin_dir=run.pg_bin_dir,
    )
    return Outcome(
        {"path": str(snap.path), "sha256": snap.sha256},
        f"{snap.path.name}: {snap.size:,} bytes, sha256 {snap.sha256[:16]}…",
    )


def _overwrite(recovery: Recovery) -> Outcome:
    run, plan = recovery.run, recovery.plan
    check = restore(
        plan.snapshot,
        run.database_url(),
        expected_sha256=plan.snapshot.sha256,
        bin_dir=run.pg_bin_dir,
    )
    return Outcome({"evidence": check.evidence}, check.evidence)


def _step(recovery: Recovery, name: str, fn: Any, describe: str) -> Any:
    """Run one ledger step and record its check; None when it failed (recorded) or is
    only planned (dry run)."""
    run = recovery.run
    try:
        step = recovery.ledger.run(name, fn, execute=run.execute, describe=describe)
    except DeploybookError as exc:
        failed = Check(name, SECTION, Status.FAIL, f"{type(exc).__name__}: {exc}")
        recovery.checks.extend(run.record(failed))
        return None
    value = result(step) or {}
    text = step.value.text if isinstance(step.value, Outcome) else step.detail
    recovery.checks.extend(run.record(step_check(name, step, text)))
    return value if step.status in (DONE, SKIPPED) else None


def restore_database(recovery: Recovery) -> None:
    """Choose swap or in place, account for the data loss, restore (see the docstring)."""
    run, plan = recovery.run, recovery.plan
    at = plan.database_at

    def choose() -> Outcome:
        value = choose_restore(run.database_url(), run.params.database.rollback)
        return Outcome(value, f"{value['mode']}: {value['why']}")

    mode = run.params.database.rollback.mode
    choice = _step(recovery, "choose restore", choose, f"swap or in place for {at} ({mode})")
    if choice is None:
        if run.execute:
            return
        choice = {
            "mode": run.params.database.rollback.mode,
            "why": "dry run",
            "restored": "",
            "pre_rollback": "<name>_pre_rollback_<ts>",
        }
    recovery.restore_mode, recovery.restore_why = choice["mode"], choice["why"]
    _data_loss(recovery, choice)
    if not run.execute:
        return
    if choice["mode"] == "swap":
        copied = _step(
            recovery,
            "restore copy",
            lambda: _copy(recovery, choice),
            f"{choice['restored']}: 02's standby of {Path(plan.snapshot.path).name} if it still "
            "equals the snapshot, else a parallel restore of it",
        )
        if copied is None:
            return
        swapped = _step(
            recovery,
            "swap databases",
            lambda: _swap(recovery, choice),
            f"{at} → {choice['pre_rollback']}, {choice['restored']} → {plan.database}",
        )
        if swapped is not None:
            recovery.pre_rollback_db = swapped.get("pre_rollback")
            recovery.swap_s = swapped.get("critical_s")
            recovery.restored = True
        return
    safety = _step(
        recovery,
        "safety snapshot",
        lambda: _safety(recovery),
        f"pg_dump of {at} into {run.record_dir}",
    )
    if safety is None:
        return
    recovery.safety_snapshot = safety.get("path")
    overwritten = _step(
        recovery,
        "restore database",
        lambda: _overwrite(recovery),
        f"restore {at} from {Path(plan.snapshot.path).name} (one transaction)",
    )
    recovery.restored = overwritten is not None


def _data_loss(recovery: Recovery, choice: dict[str, Any]) -> None:
    """The data-loss step (read-only, so a dry run shows it too) and its check."""
    run = recovery.run
    name = "account data loss"
    if run.execute:
        value = _step(
            recovery,
            name,
            lambda: _account(recovery, choice),
            "live database against the snapshot's inventory",
        )
    else:
        try:
            value = _account(recovery, choice).value
        except DeploybookError as exc:
            recovery.checks.extend(run.record(Check(name, SECTION, Status.WARN, str(exc), False)))
            return
    if value is None:
        return
    loss = dataloss.DataLoss(value.get("rows", []), value.get("kept_in", ""))
    recovery.data_loss = loss
    recovery.removed_migrations = value.get("removed_migrations", [])
    status = Status.WARN if loss.discards else Status.PASS
    recovery.checks.extend(
        run.record(
            Check(
                "data discarded by the restore",
                SECTION,
                status,
                loss.summary(),
                critical=False,
                data=loss.discards,
            )
        )
    )
