"""Benchmark 2: deploybook's dry run of a 160-migration history vs `psql -f` per file.

The plain side applies each migration.sql with ``psql -X -1 -v ON_ERROR_STOP=1 -f`` on a
fresh database, one after another (one transaction per file, as Prisma does). deploybook's
dry run does the same work plus what makes it a proof: a schema fingerprint and exact row
counts before and after, one savepoint per migration, the locks each statement took, and a
rollback at the end. `apply_pending` (Prisma's `migrate deploy`) is timed alongside.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from deploybook.sandbox.postgres import PgCluster

from .common import (
    Section,
    Size,
    Timing,
    fmt_s,
    fresh_database,
    md_table,
    ratio,
    run_cmd,
    tool_env,
    worker,
)
from .history import write_history

TARGET = 1.5
FRESH = "bench_migrations"


def psql_each(url: str, files: list[Path]) -> float:
    """Apply every file with its own psql process, in order; total wall time."""
    psql = PgCluster.bin_dir() / "psql"
    dsn, env = tool_env(url)
    total = 0.0
    for path in files:
        argv = [str(psql), "-X", "-q", "-1", "-v", "ON_ERROR_STOP=1", "--no-password"]
        total += run_cmd(argv + [f"--dbname={dsn}", "-f", str(path)], env)
    return total


def psql_one_session(url: str, files: list[Path]) -> float:
    """Every file in ONE psql session and transaction: the floor for running this SQL
    (no process start, login or commit per file)."""
    psql = PgCluster.bin_dir() / "psql"
    dsn, env = tool_env(url)
    argv = [str(psql), "-X", "-q", "-1", "-v", "ON_ERROR_STOP=1", "--no-password"]
    return run_cmd(argv + [f"--dbname={dsn}"] + [a for p in files for a in ("-f", str(p))], env)


def run(
    cluster: PgCluster, size: Size, work: Path, progress=print
) -> tuple[Section, dict[str, Any]]:
    """psql, dry run and apply, each on a fresh database, alternating the order per run."""
    folder = work / "migrations"
    files = write_history(folder, size.migrations, size.migration_rows)
    t = {k: Timing() for k in ("psql", "psql1", "dry", "apply")}
    rss: list[dict[str, Any]] = []
    sides = ["psql", "dry", "apply", "psql1"]
    for i in range(size.runs):
        for side in sides[i % 4 :] + sides[: i % 4]:
            progress(f"  migrations run {i + 1}/{size.runs}: {side}")
            url = fresh_database(cluster, FRESH, vector=False)
            if side == "psql":
                t["psql"].add(psql_each(url, files))
            elif side == "psql1":
                t["psql1"].add(psql_one_session(url, files))
            else:
                out = worker(
                    {
                        "op": "dry_run" if side == "dry" else "apply",
                        "url": url,
                        "folder": str(folder),
                    }
                )
                t[side].add(out["total_s"])
                if side == "dry":
                    rss.append(out)
        cluster.drop_database(FRESH)
    x = ratio(t["dry"], t["psql"])
    rows = [
        [f"`psql -1 -f` × {len(files)} files, one after another", t["psql"].cell(), "1.00×"],
        [
            "`psql -1 -f … -f …`: all files, one session, one transaction",
            t["psql1"].cell(),
            f"{ratio(t['psql1'], t['psql']):.2f}×",
        ],
        ["deploybook `dry_run` (one rolled-back transaction)", t["dry"].cell(), f"**{x:.2f}×**"],
        [
            "deploybook `apply_pending` (as `prisma migrate deploy`)",
            t["apply"].cell(),
            f"{ratio(t['apply'], t['psql']):.2f}×",
        ],
    ]
    body = (
        f"{len(files)} migrations ({size.migration_rows:,} rows seeded per table, "
        f"{-(-len(files) // 8)} tables, every 4th with vector(1536) + HNSW), each side on a "
        "fresh database.\n\n" + md_table(["tool", "wall time (min / median)", "ratio"], rows)
    )
    notes = [
        "psql per file pays a process start, a SCRAM login and a committed (fsynced) "
        "transaction per migration; the dry run pays none of these (one connection, one "
        "rollback), which is why it can beat psql. The one-session row is the floor for "
        f"executing this SQL: the dry run takes {ratio(t['dry'], t['psql1']):.2f}× that."
    ]
    if x > TARGET:
        notes.append(
            "Missed: the dry run queries pg_locks after every statement and fingerprints the "
            "catalog and counts rows before and after. Querying locks once per migration "
            "(not per statement) would close most of the gap."
        )
    extra = max(t["dry"].median - t["psql1"].median, 0.0)
    notes.append(
        f"Over the one-session floor, the dry run's own work (fingerprint and exact counts "
        f"before and after, a savepoint and a pg_locks query per statement) costs {fmt_s(extra)}"
        f", {extra / len(files) * 1000:.0f} ms per migration."
    )
    section = Section(
        "2. Migration dry run",
        f"≤ {TARGET}× applying the files with `psql -f`",
        x <= TARGET,
        body,
        notes,
        summary=f"The dry run takes {x:.2f}× psql (median).",
    )
    return section, {"rss": rss, "folder": folder, "timings": t}


def dry_run_rss(url: str, folder: Path) -> dict[str, Any]:
    """One dry run of the history against an existing (e.g. the 1 GB) database."""
    return worker({"op": "dry_run", "url": url, "folder": str(folder)})
