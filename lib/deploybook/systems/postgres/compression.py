"""Which dump format, parallelism and compression a snapshot uses, and why.

Measured on the 2.2 GB pgvector database (bench/results.md): pg_dump's default gzip:6 is
most of a dump's time, gzip:1 a fifth of it, and a directory-format dump with one job per
core halves the pair again. So the defaults are the directory format, ``-j`` = available
cores (capped by params), and the cheapest compression this pg_dump was built with:
zstd:1, else lz4:1, else gzip:1. Support is probed once per pg_dump binary, without a
database: pg_dump validates ``--compress`` before it connects. Params may pin any of them;
the choice and its reason go into the snapshot's manifest.
"""

from __future__ import annotations

import functools
import os
import subprocess
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from deploybook.errors import ConfigError

# Cheapest first: the order in which an unpinned snapshot tries the methods.
PREFERENCE = ("zstd", "lz4", "gzip")


@dataclass(frozen=True)
class DumpChoice:
    """Format, jobs and compression of one snapshot, with the reason for each."""

    format: str
    jobs: int
    method: str  # zstd, lz4, gzip or none
    level: int | None
    why: str

    @property
    def argument(self) -> str:
        """The value for ``pg_dump --compress`` (PG < 16 only knows a gzip level)."""
        if self.method == "none":
            return "0"
        return f"{self.method}:{self.level}" if self.level is not None else self.method

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "compress": self.argument}


def available_cores() -> int:
    """CPUs this process may use (affinity, not the machine's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


@functools.lru_cache(maxsize=16)
def supported_methods(pg_dump: str, major: int) -> tuple[str, ...]:
    """Compression methods this pg_dump binary accepts, probed once per binary.

    pg_dump 16+ checks ``--compress=METHOD:LEVEL`` ("this build does not support
    compression with ZSTD") before connecting; the probe points it at a socket directory
    that cannot hold a server, so it never reaches one. Older pg_dump only knows gzip.
    """
    if major < 16:
        return ("gzip",)
    found: list[str] = []
    with tempfile.TemporaryDirectory(prefix="deploybook-probe-") as nowhere:
        for method in ("zstd", "lz4"):
            out = subprocess.run(
                [
                    pg_dump,
                    f"--compress={method}:1",
                    "--format=directory",
                    f"--file={Path(nowhere) / 'd'}",
                    "--no-password",
                    f"--dbname=host={nowhere} dbname=probe connect_timeout=1",
                ],
                capture_output=True,
                text=True,
                timeout=30,
                env={**os.environ, "PGPASSWORD": "", "PGSERVICE": ""},
            )
            if "compress" not in out.stderr.lower():
                found.append(method)
    return (*found, "gzip")


def parse_pinned(value: int | str | None) -> tuple[str | None, int | None]:
    """A params ``snapshot_compress`` as (method, level): 6 is gzip:6, "zstd:3", "lz4",
    "none" or 0 is no compression; None is "choose for me"."""
    if value is None or value == "auto":
        return None, None
    if isinstance(value, int) or str(value).isdigit():
        level = int(value)
        return ("none", None) if level == 0 else ("gzip", level)
    method, _, level = str(value).partition(":")
    method = method.strip().lower()
    if method not in (*PREFERENCE, "none"):
        raise ConfigError(f"snapshot_compress {value!r}: use zstd, lz4, gzip or none[:level]")
    if level and not level.isdigit():
        raise ConfigError(f"snapshot_compress {value!r}: the level must be a number")
    return method, int(level) if level else (None if method == "none" else 1)


def choose(
    pg_dump: str,
    major: int,
    *,
    fmt: str | None = None,
    jobs: int | None = None,
    compress: int | str | None = None,
) -> DumpChoice:
    """The snapshot's format, jobs and compression: pinned values as given, the rest by
    measurement (see the module docstring); ``why`` says which was which."""
    reasons: list[str] = []
    cores = available_cores()
    fmt = fmt or "directory"
    if fmt == "directory":
        n = min(cores, jobs) if jobs else cores
        reasons.append(
            f"directory format, {n} job(s): {cores} core(s) available"
            + (f", capped at {jobs} by params" if jobs and jobs < cores else "")
        )
    else:
        n = 1
        reasons.append("custom format pinned by params: one job (only directory dumps in parallel)")
    method, level = parse_pinned(compress)
    supported = supported_methods(pg_dump, major)
    if method is None:
        method = next(m for m in PREFERENCE if m in supported)
        level = 1
        skipped = [m for m in PREFERENCE[: PREFERENCE.index(method)]]
        reasons.append(
            f"{method}:1, the cheapest compression this pg_dump {major} supports"
            + (f" ({' and '.join(skipped)} not built in)" if skipped else "")
        )
    else:
        if method not in (*supported, "none"):
            raise ConfigError(
                f"snapshot_compress {compress!r}: this pg_dump ({pg_dump}) was built without "
                f"{method}; it supports {', '.join(supported)}"
            )
        reasons.append(f"{method}{'' if level is None else f':{level}'} pinned by params")
    return DumpChoice(fmt, n, method, level, "; ".join(reasons))


def compress_argument(choice: DumpChoice, major: int) -> str:
    """``--compress`` for this pg_dump: a bare level before PostgreSQL 16."""
    if major < 16:
        return "0" if choice.method == "none" else str(choice.level or 0)
    return choice.argument
