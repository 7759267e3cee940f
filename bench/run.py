"""`python -m bench.run [--size tiny|small|medium|full] [--only snapshot,…,rollback]`.

Generates (or reuses) the benchmark databases under bench/data/, runs the benchmarks of
issue 11 and writes bench/results.md. ``--size full`` is the size the issue asks for
(a ≥ 1 GB database, several minutes); ``small`` is for trying the scripts.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import (
    bench_defaults,
    bench_dryrun,
    bench_rehearsal,
    bench_rollback,
    bench_smoke,
    bench_snapshot,
    datagen,
)
from .common import (
    DATA_DIR,
    SIZES,
    SMALLER,
    Section,
    Size,
    bench_cluster,
    fmt_mb,
    machine_facts,
    md_table,
)

BENCHES = ("snapshot", "dryrun", "smoke", "rehearsal", "defaults", "rollback")
RSS_LIMIT = 300e6
RSS_FLAT = 25e6  # growth from the small to the big database still called flat


def memory_section(
    rss: dict[str, dict[str, list[dict[str, Any]]]], big: str, small: str
) -> Section:
    """Peak RSS of the deploybook worker process: big database vs small one, per operation."""
    rows, met, worst, growths = [], True, 0.0, [0.0]
    for op, by_db in rss.items():
        peaks = {k: max(r["maxrss_bytes"] for r in v) for k, v in by_db.items() if v}
        if big not in peaks or small not in peaks:
            continue
        growth = peaks[big] - peaks[small]
        worst, growths = max(worst, peaks[big]), [*growths, growth]
        ok = peaks[big] < RSS_LIMIT and growth <= RSS_FLAT
        met = met and ok
        rows.append(
            [
                op,
                fmt_mb(peaks[small]),
                fmt_mb(peaks[big]),
                f"{growth / 1e6:+.1f} MB",
                "yes" if ok else "no",
            ]
        )
    body = md_table(
        [
            "deploybook operation (own process)",
            f"peak RSS, {small}",
            f"peak RSS, {big}",
            "growth",
            "flat and < 300 MB",
        ],
        rows,
    )
    notes = [
        "Peak RSS is `VmHWM` of the worker process that ran the operation and nothing "
        "else; pg_dump and pg_restore run as separate processes and stream to disk.",
        "The Python side never holds table data: row counts, the catalog fingerprint and the "
        "dump's SHA-256 (1 MiB chunks) are all constant-size whatever the database size.",
    ]
    return Section(
        "5. Memory",
        f"flat from the small to the big database, < {RSS_LIMIT / 1e6:.0f} MB",
        met if rows else None,
        body,
        notes if rows else [],
        summary=f"Peak {fmt_mb(worst)} on the {big} database, at most "
        f"{max(growths) / 1e6:+.1f} MB more than on the {small} one."
        if rows
        else "",
    )


def render(
    size: Size, facts: dict[str, str], data: dict[str, dict[str, Any]], sections: list[Section]
) -> str:
    """results.md: machine, data, the targets at a glance, then one section per benchmark."""
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    out = [
        "# deploybook benchmarks (issue 11)",
        "",
        f"Written by `python -m bench.run --size {size.name}` on {now}. Every figure is "
        "min / median over the runs shown; ratios are of medians, against the plain tool "
        "measured in the same run, with the two sides alternating which goes first.",
        "",
        "## Machine",
        "",
        md_table(["fact", "value"], list(facts.items())),
        "",
        "## Data",
        "",
        md_table(
            ["database", "size", "vector table", "generated in", "full-precision HNSW sample"],
            [
                [
                    f"`{d['database']}` ({d['spec']['vectors']:,} × vector(1536), "
                    f"{d['spec']['responses']:,} responses)",
                    f"{d['db_bytes'] / 1e9:.2f} GB",
                    f"{d['vector_table_bytes'] / 1e9:.2f} GB",
                    f"{d['generation_s']} s" + (" (cached)" if d.get("cached") else ""),
                    f"{d['steps_s']['hnsw_full_sample']} s for {d['hnsw_sample_rows']:,} rows",
                ]
                for d in data.values()
            ],
        ),
        "",
        "The vector table's HNSW index is over `binary_quantize(embedding)::bit(1536)` "
        "(`bit_hamming_ops`). pg_restore rebuilds indexes, so the index is rebuilt on both "
        "sides of benchmark 1; the production shape (full precision, m=16, "
        "ef_construction=64; last column, built on a sample) grows faster than linearly and "
        "would add the same minutes to both sides of every restore — a real deployment-night "
        "cost to plan for, but no part of deploybook's overhead.",
        "",
        "## Targets",
        "",
        md_table(
            ["benchmark", "target", "result", "met"],
            [[s.title, s.target, s.summary or "see below", _verdict(s.met)] for s in sections],
        ),
        "",
    ]
    return "\n".join(out) + "\n" + "\n".join(s.markdown() for s in sections)


_SECTION = re.compile(r"^## (\d+)\. ", re.MULTILINE)
_TARGET_ROW = re.compile(r"^\| (\d+)\. .*$", re.MULTILINE)


def _split(md: str) -> tuple[str, dict[str, str]]:
    """(everything before the first numbered section, {"1": section text, ...})."""
    marks = list(_SECTION.finditer(md))
    if not marks:
        return md, {}
    ends = [m.start() for m in marks[1:]] + [len(md)]
    return md[: marks[0].start()], {
        m[1]: md[m.start() : e] for m, e in zip(marks, ends, strict=True)
    }


def merge(previous: str, fresh: str, note: str) -> str:
    """``previous`` results with the sections (and target rows) ``fresh`` re-measured:
    rerunning one benchmark keeps the others' figures."""
    old_head, old = _split(previous)
    new_head, new = _split(fresh)
    rows = {m[1]: m[0] for m in _TARGET_ROW.finditer(new_head)}
    head = _TARGET_ROW.sub(lambda m: rows.pop(m[1], m[0]), old_head).rstrip("\n")
    if rows:  # a benchmark the previous results did not have
        last = list(_TARGET_ROW.finditer(head))[-1].end()
        head = head[:last] + "".join("\n" + r for r in rows.values()) + head[last:]
    merged = {**old, **new}
    body = "".join(merged[k].rstrip("\n") + "\n\n" for k in sorted(merged, key=int))
    return f"{head}\n\n{note}\n\n{body}".rstrip("\n") + "\n"


def _verdict(met: bool | None) -> str:
    return {True: "met", False: "**missed**", None: "not measured"}[met]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--size", choices=sorted(SIZES), default="full")
    parser.add_argument("--only", default=",".join(BENCHES), help="comma-separated benchmarks")
    parser.add_argument("--out", type=Path, default=DATA_DIR.parent / "results.md")
    args = parser.parse_args(argv)
    only = [b.strip() for b in args.only.split(",") if b.strip()]
    if unknown := set(only) - set(BENCHES):
        parser.error(f"unknown benchmark(s) {sorted(unknown)}; choose from {BENCHES}")
    size, smaller = SIZES[args.size], SIZES[SMALLER[args.size]]
    work = DATA_DIR / "work"
    shutil.rmtree(work, ignore_errors=True)

    def say(msg: str) -> None:
        print(msg, flush=True)

    previous = args.out.read_text() if args.out.exists() else ""
    merging = set(only) < set(BENCHES) and f"--size {size.name}`" in previous
    started = time.monotonic()
    cluster = bench_cluster()
    try:
        facts = machine_facts(cluster.url())
        data = {s.name: datagen.ensure_database(cluster, s, say) for s in (size, smaller)}
        url = cluster.url(datagen.database_name(size))
        small_url = cluster.url(datagen.database_name(smaller))
        sections: list[Section] = []
        rss: dict[str, dict[str, list[dict[str, Any]]]] = {}
        if "snapshot" in only:
            say("1. snapshot + restore verification")
            section, extra = bench_snapshot.run(cluster, url, size, work / "snapshot", say)
            sections.append(section)
            main_rss = [r for r in extra["rss"] if "bench-main" in r["path"]]
            small = bench_snapshot.deploybook_pair(small_url, bench_snapshot.VARIANTS[0], work)
            rss["snapshot() + verify_restore()"] = {size.name: main_rss, smaller.name: [small]}
        if "dryrun" in only:
            say("2. migration dry run")
            section, extra = bench_dryrun.run(cluster, size, work / "dryrun", say)
            sections.append(section)
            rss[f"dry_run of the {size.migrations}-migration history on the database"] = {
                size.name: [bench_dryrun.dry_run_rss(url, extra["folder"])],
                smaller.name: [bench_dryrun.dry_run_rss(small_url, extra["folder"])],
            }
        if "smoke" in only:
            say("3. smoke suite")
            sections.append(bench_smoke.run(cluster, size, work / "smoke", say)[0])
        if "rehearsal" in only:
            say("4. full sandbox rehearsal")
            sections.append(bench_rehearsal.run(size, work / "rehearsal", say)[0])
        if "defaults" in only:
            say("6. snapshot defaults vs pg_dump's defaults")
            sections.append(bench_defaults.run(cluster, url, size, work / "defaults", say)[0])
        if "rollback" in only:
            say("7. rollback recovery: swap vs in place")
            sections.append(bench_rollback.run(cluster, url, size, work / "rollback", say)[0])
        # Memory needs both 1 and 2; a partial rerun keeps the previous memory section.
        if len(rss) == 2 or (rss and not merging):
            sections.append(memory_section(rss, size.name, smaller.name))
    finally:
        cluster.stop()
        shutil.rmtree(work, ignore_errors=True)
    text = render(size, facts, data, sections)
    if merging:
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        numbers = ", ".join(s.title.split(".")[0] for s in sections)
        note = (
            f"Section(s) {numbers} re-measured by `python -m bench.run --size {size.name} "
            f"--only {','.join(only)}` on {stamp}; the others are from the run above."
        )
        text = merge(previous, text, note)
    args.out.write_text(text)
    say(f"wrote {args.out} in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
