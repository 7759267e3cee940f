"""Benchmark 6 (issue 19 item 5): snapshot + restore verification with deploybook's
measured defaults against pg_dump/pg_restore at *their* defaults, and against the fastest
raw pair measured here.

deploybook's side is `snapshot()` + `verify_restore()` with nothing pinned: directory
format, one job per available core, the cheapest compression this pg_dump supports
(`compression.choose`; gzip:1 on the embedded build, which has no zstd/lz4), and a
parallel `pg_restore --jobs`. pg_dump's defaults are `-Fc` (custom, gzip:6) and a
single-job pg_restore. The raw candidates for "fastest" are plain pairs with the same
choices spelled out, and without compression.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from deploybook.sandbox.postgres import PgCluster
from deploybook.systems.postgres import compression
from deploybook.systems.postgres.tools import pg_tools

from .bench_snapshot import SCRATCH, Variant, _remove, deploybook_pair, raw_pair
from .common import SCRATCH_PATTERN, Section, Size, Timing, fmt_mb, fmt_s, md_table, ratio

TARGET = 0.35


def raw_variants(cores: int, method: str) -> tuple[Variant, ...]:
    """pg_dump's defaults, then the raw pairs that could be the fastest on this machine."""
    spec = {"gzip": 1}.get(method)  # bench_snapshot.raw_pair passes --compress as given
    return (
        Variant("defaults", "pg_dump -Fc + pg_restore, their defaults (gzip:6, one job)",
                "custom", 1, None),
        Variant("dir_jn", f"directory, {method}:1, -j{cores} dump and restore", "directory",
                cores, spec),
        Variant("dir_jn_z0", f"directory, uncompressed, -j{cores}", "directory", cores, 0),
        Variant("custom_z0", "custom, uncompressed, one job", "custom", 1, 0),
    )  # fmt: skip


def run(
    cluster: PgCluster, url: str, size: Size, work: Path, progress=print
) -> tuple[Section, dict[str, Any]]:
    """Raw candidates and deploybook's defaults, alternating which goes first."""
    work.mkdir(parents=True, exist_ok=True)
    tools = pg_tools(PgCluster.bin_dir())
    choice = compression.choose(str(tools.pg_dump), tools.major)
    cores = compression.available_cores()
    variants = raw_variants(cores, choice.method)
    raw = {v.key: {k: Timing() for k in ("dump", "restore", "pair")} for v in variants}
    ours = {k: Timing() for k in ("snap", "verify", "pair")}
    sizes: dict[str, int] = {}
    ours_size = 0
    mine = Variant("deploybook", "deploybook defaults", None, None, None)  # type: ignore[arg-type]
    for i in range(size.runs):
        sides = ["ours", *[v.key for v in variants]]
        for side in sides if i % 2 == 0 else reversed(sides):
            progress(f"  defaults run {i + 1}/{size.runs}: {side}")
            if side == "ours":
                o = deploybook_pair(url, mine, work)
                ours["snap"].add(o["snapshot_s"])
                ours["verify"].add(o["verify_s"])
                ours["pair"].add(o["total_s"])
                ours_size = o["size"]
                continue
            v = next(v for v in variants if v.key == side)
            r = raw_pair(cluster, url, v, work)
            raw[side]["dump"].add(r["dump_s"])
            raw[side]["restore"].add(r["restore_s"])
            raw[side]["pair"].add(r["dump_s"] + r["restore_s"])
            sizes[side] = r["size"]
            _remove(r["path"])
    fastest = min(raw, key=lambda k: raw[k]["pair"].median)
    vs_default = ratio(ours["pair"], raw["defaults"]["pair"])
    vs_fastest = ratio(ours["pair"], raw[fastest]["pair"])
    rows = [
        [v.label, raw[v.key]["dump"].cell(), raw[v.key]["restore"].cell(),
         raw[v.key]["pair"].cell(), fmt_mb(sizes[v.key]),
         f"{ratio(ours['pair'], raw[v.key]['pair']):.2f}×"]
        for v in variants
    ]  # fmt: skip
    rows.append(
        [
            f"**deploybook `snapshot()` + `verify_restore()`, nothing pinned** ({choice.why})",
            ours["snap"].cell(),
            ours["verify"].cell(),
            ours["pair"].cell(),
            fmt_mb(ours_size),
            "—",
        ]
    )
    body = md_table(
        ["pair", "dump (min / median)", "restore (+ verify for deploybook)", "total",
         "dump size", "deploybook ÷ this"],
        rows,
    )  # fmt: skip
    notes = [
        f"Fastest raw pair here: {next(v.label for v in variants if v.key == fastest)} "
        f"({fmt_s(raw[fastest]['pair'].median)} median); deploybook's defaults take "
        f"{vs_fastest:.2f}× it, including everything the raw pair does not do (the inventory "
        "in the dump's snapshot, two SHA-256 passes, `pg_restore --list`, comparing the copy).",
        f"deploybook's restore verification uses `pg_restore --jobs={cores}` (one per core); "
        "the raw default pair restores with one job.",
        "Choice on this build: " + choice.why + ". A pg_dump built with zstd (issue 19: "
        "Debian's PostgreSQL packages) gets zstd:1 from the same defaults; not measured here.",
    ]
    section = Section(
        "6. Snapshot defaults vs pg_dump's defaults",
        f"≤ {TARGET}× pg_dump -Fc + pg_restore at their defaults; compared with the fastest "
        "raw pair",
        vs_default <= TARGET,
        body,
        notes,
        summary=f"{vs_default:.2f}× pg_dump/pg_restore's defaults, {vs_fastest:.2f}× the "
        f"fastest raw pair (`{fastest}`).",
    )
    return section, {"ours": ours, "raw": raw, "scratch": SCRATCH, "pattern": SCRATCH_PATTERN}
