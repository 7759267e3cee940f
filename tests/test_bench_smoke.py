"""A tiny run of every benchmark in bench/ (issue 11) so the scripts keep working.

Benchmarks, not tests: nothing here asserts on a time or a ratio, only that each benchmark
runs end to end against the real tools and renders its section of results.md.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploybook.sandbox.postgres import PgCluster

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # bench/ lives beside lib/, it is not installed

from bench import (  # noqa: E402
    bench_defaults,
    bench_dryrun,
    bench_rehearsal,
    bench_rollback,
    bench_smoke,
    bench_snapshot,
    datagen,
)
from bench.common import SIZES, Section  # noqa: E402
from bench.run import memory_section, merge, render  # noqa: E402

TINY = SIZES["tiny"]


def quiet(message: str) -> None:
    pass


@pytest.fixture(scope="module")
def tiny(pg_cluster: PgCluster) -> Iterator[tuple[str, dict]]:
    facts = datagen.ensure_database(pg_cluster, TINY, progress=quiet)
    try:
        yield pg_cluster.url(datagen.database_name(TINY)), facts
    finally:
        pg_cluster.drop_database(datagen.database_name(TINY))


def test_generated_database_is_cached(pg_cluster: PgCluster, tiny: tuple[str, dict]) -> None:
    _, facts = tiny
    assert facts["spec"]["vectors"] == TINY.vectors and facts["db_bytes"] > 0
    again = datagen.ensure_database(pg_cluster, TINY, progress=quiet)
    assert again["cached"] and again["generation_s"] == facts["generation_s"]


def test_snapshot_bench_runs_both_sides(
    pg_cluster: PgCluster, tiny: tuple[str, dict], tmp_path: Path
) -> None:
    url, _ = tiny
    section, extra = bench_snapshot.run(
        pg_cluster, url, TINY, tmp_path, quiet, variants=bench_snapshot.VARIANTS[:1]
    )
    text = section.markdown()
    assert "pg_dump + pg_restore" in text and "snapshot() + verify_restore()" in text
    assert extra["rss"] and extra["rss"][0]["maxrss_bytes"] > 0
    assert not pg_cluster.database_exists(bench_snapshot.SCRATCH)
    assert not pg_cluster.database_exists(bench_snapshot.RAW_SCRATCH)


def test_dryrun_bench_runs_a_clean_history(
    pg_cluster: PgCluster, tiny: tuple[str, dict], tmp_path: Path
) -> None:
    url, _ = tiny
    section, extra = bench_dryrun.run(pg_cluster, TINY, tmp_path, quiet)
    assert f"{TINY.migrations} migrations" in section.markdown()
    assert len(list(extra["folder"].glob("*/migration.sql"))) == TINY.migrations
    # against an existing database too (the memory benchmark): clean, and nothing changed
    out = bench_dryrun.dry_run_rss(url, extra["folder"])
    assert out["migrations"] == TINY.migrations and out["maxrss_bytes"] > 0
    rss = {"dry run": {"tiny": [out], "small": [out]}}
    assert memory_section(rss, "small", "tiny").met is True


def test_smoke_bench_times_suite_and_endpoints(pg_cluster: PgCluster, tmp_path: Path) -> None:
    faults = {"api": {"latency_ms": 60, "paths": ["/validation/evaluate"]}}
    section, extra = bench_smoke.run(pg_cluster, TINY, tmp_path, quiet, faults=faults)
    text = section.markdown()
    assert "statuses: pass" in text and "slowest single endpoint" in text
    assert extra["slowest"].median > 0.06


def test_rehearsal_bench_parses_steps_and_kernel_share(tmp_path: Path) -> None:
    fake = (
        "print('deploybook rehearsal: fresh sandbox stack')\n"
        "print('\\n▶ 01-preconditions on sandbox (expect passed)')\n"
        "print('  passed in 0.2 s [ok] → /tmp/x.ipynb')\n"
        "print('\\n▶ 04-smoke on sandbox (expect failed)')\n"
        "print('  failed in 0.1 s [ok] → /tmp/y.ipynb')\n"
    )
    section, extra = bench_rehearsal.run(
        TINY,
        tmp_path,
        quiet,
        command=[sys.executable, "-c", fake],
        kernel_runs=1,
        probe_imports=False,
    )
    assert extra["steps"] == 2 and extra["unit"].median > 0
    assert "kernel start-up: 2 runbooks" in section.markdown()
    assert "2. 04-smoke on sandbox" in section.markdown()
    assert re.search(r"CPU steal during each rehearsal \([^)]*\): \d+\.\d%", section.markdown())


def test_results_render_has_every_part(tiny: tuple[str, dict]) -> None:
    _, facts = tiny
    sections = [Section("1. Example", "≤ 1×", False, "| a |\n|---|\n| 1 |", ["why"], "1.1×")]
    text = render(TINY, {"CPU": "test"}, {"tiny": facts}, sections)
    for part in ("## Machine", "## Data", "## Targets", "## 1. Example", "**missed**", "- why"):
        assert part in text


def test_rerunning_one_benchmark_keeps_the_others(tiny: tuple[str, dict]) -> None:
    _, facts = tiny
    one = Section("1. One", "≤ 1×", True, "first figures", summary="old one")
    two = Section("2. Two", "≤ 2×", False, "old figures", summary="old two")
    again = Section("2. Two", "≤ 2×", True, "new figures", summary="new two")
    previous = render(TINY, {"CPU": "x"}, {"tiny": facts}, [one, two])
    merged = merge(previous, render(TINY, {"CPU": "y"}, {"tiny": facts}, [again]), "rerun 2")
    assert "first figures" in merged and "new figures" in merged
    assert "old figures" not in merged and "old two" not in merged
    assert merged.index("| 1. One") < merged.index("| 2. Two") < merged.index("rerun 2")
    assert merged.index("## 1. One") < merged.index("## 2. Two")


def test_defaults_bench_compares_with_pg_dumps_defaults(
    pg_cluster: PgCluster, tiny: tuple[str, dict], tmp_path: Path
) -> None:
    url, _ = tiny
    section, _ = bench_defaults.run(pg_cluster, url, TINY, tmp_path, quiet)
    text = section.markdown()
    assert "their defaults (gzip:6, one job)" in text and "nothing pinned" in text
    assert "Fastest raw pair here" in text
    assert not pg_cluster.database_exists(bench_snapshot.SCRATCH)


def test_rollback_bench_runs_swap_and_in_place(
    pg_cluster: PgCluster, tiny: tuple[str, dict], tmp_path: Path
) -> None:
    url, _ = tiny
    section, extra = bench_rollback.run(pg_cluster, url, TINY, tmp_path, quiet)
    text = section.markdown()
    assert "| in place | account" in text and "| swap | account" in text
    assert extra["totals"]["swap"].runs and extra["totals"]["in place"].runs
    assert bench_rollback._leftovers(pg_cluster) == []


def test_worker_peak_rss_is_its_own_not_its_big_parents() -> None:
    """The memory section's figure is the worker's own: a worker spawned by a process holding
    250 MB (a pytest worker late in the suite) still reports a small peak (ru_maxrss would
    have reported the parent's)."""
    import subprocess

    held = bytearray(250 * 1024 * 1024)
    held[::4096] = b"\x01" * len(held[::4096])  # touched: resident, not just reserved
    code = "from bench.worker import peak_rss_bytes; print(peak_rss_bytes())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert int(out.stdout) < 100 * 1024 * 1024, f"{int(out.stdout) >> 20} MB"
    del held
