"""One deploybook operation in a process of its own: `python -m bench.worker` < job.json.

Why: the operation's wall time is measured around the library call only (interpreter and
import start-up excluded, as a plain tool's would be if it were a library), and peak RSS
(``VmHWM``, see `peak_rss_bytes`) then belongs to that operation alone. Prints one JSON line.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from typing import Any


def _snapshot_verify(job: dict[str, Any]) -> dict[str, Any]:
    from deploybook.systems.postgres.restore import verify_restore
    from deploybook.systems.postgres.snapshot import snapshot

    t0 = time.perf_counter()
    snap = snapshot(
        job["url"],
        job["dest"],
        job["name"],
        fmt=job["fmt"],
        jobs=job["jobs"],
        compress=job["compress"],
        bin_dir=job["bin_dir"],
    )
    t1 = time.perf_counter()
    result = verify_restore(
        snap,
        job["url"],
        job["scratch"],
        job["pattern"],
        bin_dir=job["bin_dir"],
        jobs=job["jobs"],
    )
    t2 = time.perf_counter()
    if not result.ok:
        raise SystemExit(f"restore verification failed:\n{result.checks.to_text()}")
    restore_s = next(
        (c.duration_s for c in result.checks if c.name.startswith("restore into")), 0.0
    )
    return {
        "snapshot_s": t1 - t0,
        "verify_s": t2 - t1,
        "total_s": t2 - t0,
        "pg_restore_s": restore_s,
        "size": snap.size,
        "path": str(snap.path),
    }


def _dry_run(job: dict[str, Any]) -> dict[str, Any]:
    from deploybook.systems.prisma.dryrun import dry_run
    from deploybook.systems.prisma.migrations import read_migrations

    local = read_migrations(job["folder"])
    t0 = time.perf_counter()
    report = dry_run(job["url"], local.migrations)
    took = time.perf_counter() - t0
    bad = [r.name for r in report.results if r.status.value != "pass"]
    if not report.harmless or bad:
        raise SystemExit(f"dry run not clean: harmless={report.harmless}, not passing: {bad}")
    return {"total_s": took, "migrations": len(report.results)}


def _apply(job: dict[str, Any]) -> dict[str, Any]:
    from deploybook.systems.prisma.apply import apply_pending
    from deploybook.systems.prisma.migrations import read_migrations

    local = read_migrations(job["folder"])
    t0 = time.perf_counter()
    done = apply_pending(job["url"], local)
    return {"total_s": time.perf_counter() - t0, "migrations": len(done)}


OPS = {"snapshot_verify": _snapshot_verify, "dry_run": _dry_run, "apply": _apply}


def peak_rss_bytes() -> int:
    """This process's own peak RSS: ``VmHWM`` of its address space, which exec started.

    Not ``ru_maxrss``: Linux keeps that high-water mark across exec, so a worker spawned by a
    big process (a pytest worker that has run half the suite) reported its parent's size.
    """
    try:
        for line in open("/proc/self/status", encoding="ascii"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # no procfs: KiB


def main() -> int:
    job = json.loads(sys.stdin.read())
    result = OPS[job["op"]](job)
    result["maxrss_bytes"] = peak_rss_bytes()
    print(json.dumps(result, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
