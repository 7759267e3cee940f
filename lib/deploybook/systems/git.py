"""The application checkout as git sees it: tags, SHAs, commits, files at a tag.

Runbook 01 judges what *ships*, so files are read at the release tag, not from the working
tree. Each function is a thin wrapper around one git command; git's errors become
`CommandFailed` naming the command and the checkout, and nothing here decides anything.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from deploybook.errors import CommandFailed, ConfigError

_TIMEOUT_S = 60


@dataclass(frozen=True)
class Commit:
    """One commit: enough to list it as evidence (never its diff)."""

    sha: str
    when: datetime  # committer date, UTC
    author: str
    subject: str

    @property
    def short(self) -> str:
        return self.sha[:10]

    def line(self) -> str:
        return f"{self.short} {self.when:%Y-%m-%d %H:%M} UTC {self.author}: {self.subject}"


def _env() -> dict[str, str]:
    # The user's git config must not change what we read (pagers, colours, replace refs).
    return {
        **os.environ,
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_NO_REPLACE_OBJECTS": "1",
        "LC_ALL": "C",
    }


def git(checkout: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run one read-only git command in the checkout; map failures to `CommandFailed`."""
    checkout = Path(checkout)
    if not checkout.is_dir():
        raise ConfigError(
            f"checkout {checkout} does not exist: set checkout.path in the params file "
            "(for the sandbox: run `deploybook sandbox up`)"
        )
    cmd = ["git", "-c", "core.quotepath=off", "--no-pager", *args]
    try:
        proc = subprocess.run(
            cmd,
            cwd=checkout,
            env=_env(),
            capture_output=True,
            text=True,
            errors="replace",
            timeout=_TIMEOUT_S,
        )
    except FileNotFoundError:
        raise CommandFailed("git is not installed or not on PATH") from None
    except subprocess.TimeoutExpired:
        raise CommandFailed(
            f"`git {' '.join(args)}` in {checkout} took over {_TIMEOUT_S} s"
        ) from None
    if check and proc.returncode != 0:
        raise CommandFailed(
            f"`git {' '.join(args)}` failed in {checkout}: {proc.stderr.strip() or proc.returncode}"
        )
    return proc


def ref_exists(checkout: Path, ref: str) -> bool:
    """True when ``ref`` (a tag, branch or SHA) names a commit in the checkout."""
    return (
        git(checkout, "rev-parse", "-q", "--verify", f"{ref}^{{commit}}", check=False).returncode
        == 0
    )


def tag_exists(checkout: Path, tag: str) -> bool:
    return (
        git(checkout, "rev-parse", "-q", "--verify", f"refs/tags/{tag}", check=False).returncode
        == 0
    )


def commit_sha(checkout: Path, ref: str) -> str:
    """The commit a ref points at (an annotated tag is peeled to its commit)."""
    return git(checkout, "rev-parse", f"{ref}^{{commit}}").stdout.strip()


def object_sha(checkout: Path, ref: str) -> str:
    """The object a ref names: for an annotated tag, the tag object itself."""
    return git(checkout, "rev-parse", ref).stdout.strip()


def tree_sha(checkout: Path, ref: str, path: str) -> str | None:
    """The git tree (or blob) SHA of ``path`` at ``ref``; None when it does not exist there."""
    proc = git(checkout, "rev-parse", "-q", "--verify", f"{ref}:{path.strip('/')}", check=False)
    return proc.stdout.strip() if proc.returncode == 0 else None


def is_ancestor(checkout: Path, ancestor: str, descendant: str) -> bool:
    """True when ``ancestor`` is reachable from ``descendant`` (same commit included)."""
    proc = git(checkout, "merge-base", "--is-ancestor", ancestor, descendant, check=False)
    if proc.returncode not in (0, 1):
        raise CommandFailed(f"git merge-base {ancestor} {descendant}: {proc.stderr.strip()}")
    return proc.returncode == 0


def resolve_branch(checkout: Path, branch: str) -> str | None:
    """The local branch, else its ``origin/`` remote-tracking ref, else None."""
    for ref in (f"refs/heads/{branch}", f"refs/remotes/origin/{branch}"):
        if git(checkout, "rev-parse", "-q", "--verify", ref, check=False).returncode == 0:
            return ref
    return None


def read_at(checkout: Path, ref: str, path: str) -> str | None:
    """A file's text at ``ref``; None when the file does not exist there."""
    proc = git(checkout, "show", f"{ref}:{path.strip('/')}", check=False)
    return proc.stdout if proc.returncode == 0 else None


def files_at(checkout: Path, ref: str) -> set[str]:
    """Every file path at ``ref``."""
    return set(git(checkout, "ls-tree", "-r", "--name-only", ref).stdout.splitlines())


def entries_at(checkout: Path, ref: str, folder: str) -> tuple[list[str], list[str]]:
    """(sub-folders, files) directly inside ``folder`` at ``ref`` (names only, sorted)."""
    out = git(checkout, "ls-tree", ref, f"{folder.strip('/')}/").stdout
    dirs, files = [], []
    for line in out.splitlines():
        meta, name = line.split("\t", 1)
        (dirs if meta.split()[1] == "tree" else files).append(name.rsplit("/", 1)[-1])
    return sorted(dirs), sorted(files)


_LOG_FORMAT = "%H%x1f%ct%x1f%an%x1f%s"


def _commits(out: str) -> list[Commit]:
    commits = []
    for line in out.splitlines():
        sha, ts, author, subject = line.split("\x1f", 3)
        commits.append(Commit(sha, datetime.fromtimestamp(int(ts), UTC), author, subject))
    return commits


def commits_between(checkout: Path, since_ref: str, until_ref: str) -> list[Commit]:
    """Commits reachable from ``until_ref`` but not from ``since_ref``, newest first."""
    out = git(checkout, "log", f"--format={_LOG_FORMAT}", f"{since_ref}..{until_ref}").stdout
    return _commits(out)


def commits_since(checkout: Path, ref: str, since: datetime) -> list[Commit]:
    """Commits on ``ref`` whose committer date is at or after ``since``, newest first."""
    stamp = since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    out = git(checkout, "log", f"--format={_LOG_FORMAT}", f"--since={stamp}", ref).stdout
    return [c for c in _commits(out) if c.when >= since]
