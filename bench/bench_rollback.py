"""Benchmark 7 (issue 19 item 5): rollback recovery time, swap vs in place, on the bench DB.

Both sides start from the same state: a target database restored from the release's
snapshot (untimed set-up) with some writes on top, and they end with the target equal to
the snapshot and verified against its inventory, as 05 does it:

- **in place** (05 before issue 19, and the fallback): data-loss accounting, a safety dump
  of the target (`snapshot()`, today's defaults), the one-transaction restore
  (`restore()`: pg_restore piped through one psql), then the inventory comparison.
- **swap**: data-loss accounting, PostgreSQL asked whether the rename is allowed, the
  parallel restore into a new database verified against the inventory (`restore_copy`),
  the swap (`swap_in`), then the same final comparison.

The service reverts (the release script per service) are the same commands on both
sides and are not part of this database measurement.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from deploybook.sandbox.postgres import PgCluster
from deploybook.systems.postgres import dataloss, db, standby, swap
from deploybook.systems.postgres.compare import compare_inventory
from deploybook.systems.postgres.restore import restore
from deploybook.systems.postgres.restore_copy import restore_copy
from deploybook.systems.postgres.snapshot import Snapshot, snapshot
from deploybook.systems.postgres.tools import pg_tools

from .common import Section, Size, Timing, fmt_s, md_table, ratio

TARGET = 0.5
TARGET_DB = "bench_rb_target"


def _prepare(cluster: PgCluster, url: str, snap: Snapshot, tools: Any) -> str:
    """The target as a rollout left it: the snapshot plus writes made after it."""
    for name in _leftovers(cluster):
        cluster.drop_database(name)
    restore_copy(snap, url, TARGET_DB, tools, keep=True, service_copy=True)
    target = cluster.url(TARGET_DB)
    with db.connect(target, autocommit=True) as conn:
        conn.execute("CREATE TABLE rollout_added (id int, created_at timestamp DEFAULT now())")
        conn.execute("INSERT INTO rollout_added (id) SELECT generate_series(1, 1000)")
    return target


def _leftovers(cluster: PgCluster) -> list[str]:
    with db.connect(cluster.url("postgres"), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE %s", (f"{TARGET_DB}%",)
        ).fetchall()
    return [r[0] for r in rows]


def _verify(snap: Snapshot, target: str) -> None:
    checks = compare_inventory(snap.inventory or {}, db.inventory(target), "snapshot as dumped")
    if not checks.ok:
        raise RuntimeError(f"rollback left {TARGET_DB} unequal to the snapshot:\n{checks}")


def in_place(snap: Snapshot, target: str, work: Path, n: int) -> dict[str, float]:
    parts: dict[str, float] = {}
    t = time.perf_counter()
    dataloss.account(target, snap.inventory or {}, snap.created_at)
    parts["account"], t = time.perf_counter() - t, time.perf_counter()
    safety = snapshot(target, work, f"safety-{n}", bin_dir=PgCluster.bin_dir())
    parts["safety dump"], t = time.perf_counter() - t, time.perf_counter()
    restore(snap, target, bin_dir=PgCluster.bin_dir())
    parts["restore"], t = time.perf_counter() - t, time.perf_counter()
    _verify(snap, target)
    parts["verify"] = time.perf_counter() - t
    shutil.rmtree(safety.path, ignore_errors=True)
    return parts


def _swapped(
    snap: Snapshot, target: str, n: str, label: str, copy_into: Callable[[str], None]
) -> dict[str, float]:
    """05's swap: account, make the copy (``copy_into(name)``: restore or adopt), swap,
    verify; each part timed."""
    parts: dict[str, float] = {}
    t = time.perf_counter()
    dataloss.account(target, snap.inventory or {}, snap.created_at)
    if refusal := swap.rename_refusal(target):
        raise RuntimeError(f"the bench role may not rename: {refusal}")
    parts["account"], t = time.perf_counter() - t, time.perf_counter()
    restored, pre = swap.names(TARGET_DB, "{database}_restored_{ts}", f"bench{n}")
    copy_into(restored)
    parts[label], t = time.perf_counter() - t, time.perf_counter()
    done = swap.swap_in(target, restored, pre)
    parts["swap"], t = time.perf_counter() - t, time.perf_counter()
    _verify(snap, target)
    parts["verify"] = time.perf_counter() - t
    parts["critical section"] = done.critical_s
    return parts


def by_swap(snap: Snapshot, target: str, tools: Any, n: int) -> dict[str, float]:
    """05 without a standby: the parallel restore into the new database, in the window."""

    def restore_into(name: str) -> None:
        copy = restore_copy(snap, target, name, tools, keep=True, service_copy=True)
        if not copy.ok:
            raise RuntimeError(f"restored copy differs:\n{copy.checks.to_text()}")

    return _swapped(snap, target, str(n), "parallel restore + verify copy", restore_into)


def park_standby(snap: Snapshot, target: str, tools: Any) -> tuple[str, float]:
    """02's side (untimed for the rollback): the verified copy parked as the standby."""
    t = time.perf_counter()
    name = standby.standby_name(TARGET_DB, snap.sha256)
    copy = restore_copy(snap, target, f"{TARGET_DB}_02copy", tools, service_copy=True)
    if not copy.ok:
        raise RuntimeError(f"02's copy differs:\n{copy.checks.to_text()}")
    standby.park(target, f"{TARGET_DB}_02copy", name)
    return name, time.perf_counter() - t


def from_standby(snap: Snapshot, target: str, name: str, n: int) -> dict[str, float]:
    """05 with 02's standby: compared with the snapshot and renamed instead of restored."""

    def adopt_into(restored: str) -> None:
        adopted = standby.adopt(target, name, snap.inventory or {}, restored)
        if not adopted.ok:
            raise RuntimeError(f"the standby was not adopted:\n{adopted.checks.to_text()}")

    return _swapped(snap, target, f"{n}s", "compare standby + rename", adopt_into)


SIDES = ("in place", "swap", "swap from 02's standby")


def run(
    cluster: PgCluster, url: str, size: Size, work: Path, progress=print
) -> tuple[Section, dict[str, Any]]:
    work.mkdir(parents=True, exist_ok=True)
    tools = pg_tools(PgCluster.bin_dir())
    progress("  rollback: the release's snapshot (defaults, untimed)")
    snap = snapshot(url, work, "release", bin_dir=PgCluster.bin_dir())
    totals = {side: Timing() for side in SIDES}
    parts: dict[str, dict[str, Timing]] = {side: {} for side in SIDES}
    parked = Timing()  # what 02 pays for the standby (a parallel restore, verified)
    try:
        for i in range(size.runs):
            for side in SIDES if i % 2 == 0 else SIDES[::-1]:
                progress(f"  rollback run {i + 1}/{size.runs}: {side} (set-up untimed)")
                target = _prepare(cluster, url, snap, tools)
                if side == "swap from 02's standby":
                    name, took = park_standby(snap, target, tools)
                    parked.add(took)
                    got = from_standby(snap, target, name, i)
                elif side == "swap":
                    got = by_swap(snap, target, tools, i)
                else:
                    got = in_place(snap, target, work, i)
                total = sum(v for k, v in got.items() if k != "critical section")
                totals[side].add(total)
                for k, v in got.items():
                    parts[side].setdefault(k, Timing()).add(v)
    finally:
        for name in _leftovers(cluster):
            cluster.drop_database(name)
        shutil.rmtree(snap.path, ignore_errors=True)
    x = ratio(totals["swap"], totals["in place"])
    xs = ratio(totals["swap from 02's standby"], totals["in place"])
    rows = [
        [
            side,
            " · ".join(f"{k} {t.cell()}" for k, t in parts[side].items()),
            totals[side].cell(),
            "1.00×" if side == "in place" else f"{ratio(totals[side], totals['in place']):.2f}×",
        ]
        for side in SIDES
    ]
    body = md_table(
        ["recovery", "steps (min / median)", "total (min / median)", "÷ in place"], rows
    )
    crit = parts["swap"]["critical section"]
    notes = [
        f"The swap's critical section (connections refused, sessions ended, both renames in "
        f"one transaction) took {fmt_s(crit.median)} median: the only time the database "
        "was unavailable. In place, the target is locked for the whole restore.",
        "The in-place side pays a full safety dump before it may overwrite; the swap keeps "
        "the old database instead (renamed, intact) and restores with one job per core.",
        "Every side starts from an identical target restored from the same snapshot "
        "(untimed); service reverts are the same commands on every side and are not included.",
        f"Swap from 02's standby (the shipped params: `database.rollback.standby`): 02 keeps "
        f"its verified restore as the standby, which took {parked.cell()} (min / median) "
        "there, before the release changed anything; 05 compares it with the snapshot's "
        "inventory and swaps it in. The restore leaves the rollback window instead of "
        "vanishing: 02 pays it. Without a standby (none kept, or changed since 02) 05 "
        f"restores in the window: the 'swap' row, {x:.2f}×.",
    ]
    section = Section(
        "7. Rollback recovery: swap vs in place",
        f"swap ≤ {TARGET}× in place (data-loss accounting + restore + verify)",
        xs <= TARGET,
        body,
        notes,
        summary=f"swap from 02's standby {fmt_s(totals[SIDES[2]].median)} vs in place "
        f"{fmt_s(totals['in place'].median)} median: {xs:.2f}× (swap restoring in the window: "
        f"{fmt_s(totals['swap'].median)}, {x:.2f}×).",
    )
    return section, {"totals": totals}
