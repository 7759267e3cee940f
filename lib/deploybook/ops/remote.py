"""``deploybook audit push URL`` and ``audit verify --from URL``: records in object storage.

Push copies every record, its HTML, approvals and each environment's ledger from outputs/
to ``s3://bucket/prefix/<env>/…`` (the same relative layout, so a downloaded copy verifies
with the same code as the local one). Each object carries its SHA-256 as metadata; an
object already stored with the same SHA-256 is not sent again, so pushing after every task
of a DAG costs one HEAD per unchanged file. Snapshots (database dumps: the data itself)
and lock files stay on the machine.

Verify-from downloads the prefix into a temporary folder, refuses any object whose bytes do
not match its SHA-256 metadata, and runs the local ledger verification on the copy.
"""

from __future__ import annotations

import hashlib
import mimetypes
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from deploybook.errors import ConfigError
from deploybook.systems import objectstore

_KEPT_LOCAL = {"snapshots", "scratch"}  # folder names never pushed (database dumps)


@dataclass
class PushResult:
    """What one push did: relative paths sent and left as they were."""

    sent: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)


def _pushable(outputs: Path, envs: list[str] | None) -> Iterator[tuple[str, Path]]:
    """(relative posix path, file) of every file to push, ledger last per environment so a
    reader never sees a ledger naming a record that is not there yet."""
    for env_dir in sorted(p for p in outputs.iterdir() if p.is_dir()):
        if env_dir.name.startswith(".") or (envs and env_dir.name not in envs):
            continue
        ledger = None
        for path in sorted(env_dir.rglob("*")):
            parts = path.relative_to(outputs).parts
            if not path.is_file() or any(p.startswith(".") or p in _KEPT_LOCAL for p in parts):
                continue
            if path.name == "ledger.jsonl" and path.parent == env_dir:
                ledger = path
                continue
            yield PurePosixPath(*parts).as_posix(), path
        if ledger is not None:
            yield PurePosixPath(*ledger.relative_to(outputs).parts).as_posix(), ledger


def push(url: str, outputs: Path, envs: list[str] | None = None) -> PushResult:
    """Send what is new or changed under ``outputs`` to ``url``; idempotent."""
    loc = objectstore.Location.parse(url)
    if not outputs.is_dir():
        raise ConfigError(f"{outputs}: no outputs folder to push")
    s3 = objectstore.client()
    result = PushResult()
    for rel, path in _pushable(outputs, envs):
        data = path.read_bytes()
        sha = hashlib.sha256(data).hexdigest()
        if objectstore.head_sha(s3, loc, rel) == sha:
            result.unchanged.append(rel)
            continue
        kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        if path.suffix in (".ipynb", ".jsonl"):
            kind = "application/json" if path.suffix == ".ipynb" else "application/x-ndjson"
        objectstore.put(s3, loc, rel, data, sha, kind)
        result.sent.append(rel)
    return result


def fetch(url: str, into: Path) -> tuple[int, list[str]]:
    """Download every object under ``url`` into ``into``; (objects, SHA-256 problems)."""
    loc = objectstore.Location.parse(url)
    s3 = objectstore.client()
    count, problems = 0, []
    for rel in objectstore.listing(s3, loc):
        target = (into / rel).resolve()
        if not rel or into.resolve() not in target.parents:
            problems.append(f"{loc.url(rel)}: key outside the prefix's layout, not fetched")
            continue
        data, sha = objectstore.get(s3, loc, rel)
        actual = hashlib.sha256(data).hexdigest()
        if sha is None:
            problems.append(f"{loc.url(rel)}: no sha256 metadata (not written by audit push)")
        elif sha != actual:
            problems.append(f"{loc.url(rel)}: bytes do not match its sha256 metadata (edited)")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        count += 1
    return count, problems


def fetched_copy(url: str) -> tuple[Path, int, list[str]]:
    """A temporary folder holding the remote copy (the caller removes it)."""
    into = Path(tempfile.mkdtemp(prefix="deploybook-remote-"))
    count, problems = fetch(url, into)
    return into, count, problems
