"""Signed approvals: what an approver saw, as a canonical statement signed with their SSH key.

An approval binds one role's sign-off to exactly what was approved: the environment, the
release, its artifact SHAs (the passing 01 record), the 02 dry-run record's SHA-256 and
summary, and an expiry. The statement is canonical JSON (sorted keys, no spaces), signed
with ``ssh-keygen -Y sign`` under the params namespace; the approval file holds the
statement line and the armored signature, so it can be stored beside the records or handed
over as text. Verifying it against params is `deploybook.session.signing_gate`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from deploybook.core import paths
from deploybook.errors import ConfigError
from deploybook.session import records, scraps
from deploybook.systems import sshsig

FORMAT = "deploybook-approval/1"
DRY_RUN = "02-migration-dry-run"
SUFFIX = ".approval"
_BEGIN, _END = "-----BEGIN SSH SIGNATURE-----", "-----END SSH SIGNATURE-----"


def approvals_dir(env: str, release: str, outputs: Path | None = None) -> Path:
    """Where approval files of a release are kept: beside its records."""
    return (outputs or paths.outputs_dir()) / env / release / "approvals"


@dataclass(frozen=True)
class Binding:
    """What a sign-off approves: the facts an approval must match to count."""

    env: str
    release: str
    artifacts: dict[str, str]
    dry_run_record: str
    dry_run_sha256: str
    dry_run_summary: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "env": self.env,
            "release": self.release,
            "artifacts": dict(sorted(self.artifacts.items())),
            "dry_run": {
                "record": self.dry_run_record,
                "sha256": self.dry_run_sha256,
                "summary": self.dry_run_summary,
            },
        }

    def describe(self) -> str:
        arts = ", ".join(f"{k} {v[:10]}" for k, v in sorted(self.artifacts.items())) or "none"
        return (
            f"environment {self.env}, release {self.release}\n"
            f"artifacts:   {arts}\n"
            f"dry run:     {self.dry_run_record}\n"
            f"  sha256:    {self.dry_run_sha256}\n"
            f"  summary:   {self.dry_run_summary}"
        )


def artifact_shas(artifacts: dict[str, Any] | None) -> dict[str, str]:
    """component -> SHA from a 01 record's `Artifacts` scrap (plus the commit)."""
    artifacts = artifacts or {}
    comps = artifacts.get("components") or {}
    shas = {k: str(v.get("sha") if isinstance(v, dict) else v) for k, v in comps.items()}
    if commit := artifacts.get("commit"):
        shas["(commit)"] = str(commit)
    return shas


def current_binding(env: str, release: str, outputs: Path | None = None) -> Binding:
    """The facts approvals must bind now: the latest passing 01 and 02 records (verified
    against the ledger). ConfigError naming what to run when either is missing."""
    outputs = outputs or paths.outputs_dir()
    dry = records.find(env, release, DRY_RUN, passed=True, outputs=outputs)
    if dry is None:
        raise ConfigError(
            f"no passing {DRY_RUN} record of {release} in {env} under {outputs}: there is "
            f"nothing to approve yet (deploybook run 02 --env {env} --release {release})"
        )
    pre = records.find(
        env, release, "01-preconditions", passed=True, having=scraps.Artifacts, outputs=outputs
    )
    arts = artifact_shas(pre.read(scraps.Artifacts).data()) if pre else {}
    summary = dry.read(scraps.Summary)
    return Binding(
        env=env,
        release=release,
        artifacts=arts,
        dry_run_record=str(dry.entry.get("record", "")),
        dry_run_sha256=str(dry.entry.get("record_sha256", "")),
        dry_run_summary=summary.summary if summary else "",
    )


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def statement(
    binding: Binding, role: str, approver: str, expiry: timedelta, now: datetime | None = None
) -> dict[str, Any]:
    """The statement an approver signs for ``role``."""
    now = now or datetime.now(UTC)
    return {
        "format": FORMAT,
        "role": role,
        "approver": approver,
        **binding.as_dict(),
        "signed_at": _iso(now),
        "expires_at": _iso(now + expiry),
    }


def canonical(body: dict[str, Any]) -> bytes:
    """The exact bytes that are signed: sorted keys, no spaces, ASCII only."""
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


@dataclass(frozen=True)
class ApprovalFile:
    """A statement (its signed bytes) and its armored SSH signature."""

    message: bytes
    signature: str
    source: str = ""

    @property
    def body(self) -> dict[str, Any]:
        try:
            body = json.loads(self.message)
        except ValueError:
            return {}
        return body if isinstance(body, dict) else {}

    def text(self) -> str:
        body = self.body
        head = (
            f"# deploybook approval: {body.get('role')} for {body.get('env')} "
            f"{body.get('release')}, by {body.get('approver')}, until {body.get('expires_at')}"
        )
        return f"{head}\n{self.message.decode()}\n{self.signature.strip()}\n"

    @classmethod
    def parse(cls, text: str, source: str = "") -> ApprovalFile:
        """Read an approval from its text (comment lines, the statement line, the signature)."""
        lines = text.splitlines()
        statement_lines = [ln for ln in lines if ln.startswith("{")]
        try:
            start, end = lines.index(_BEGIN), lines.index(_END)
        except ValueError:
            start = end = -1
        if len(statement_lines) != 1 or not 0 <= start < end:
            raise ConfigError(
                f"{source or 'approval'}: not an approval file (one statement line and one "
                "SSH signature block expected)"
            )
        return cls(statement_lines[0].encode(), "\n".join(lines[start : end + 1]) + "\n", source)


def sign_approval(body: dict[str, Any], key: Path, namespace: str) -> ApprovalFile:
    message = canonical(body)
    return ApprovalFile(message, sshsig.sign(message, key, namespace))


def store(approval: ApprovalFile, outputs: Path | None = None) -> Path:
    """Write an approval beside the release's records; its name says role and time."""
    body = approval.body
    folder = approvals_dir(str(body["env"]), str(body["release"]), outputs)
    folder.mkdir(parents=True, exist_ok=True)
    stamp = str(body.get("signed_at", "")).replace(":", "").replace("-", "")
    path = folder / f"{body['role']}-{stamp}{SUFFIX}"
    path.write_text(approval.text(), encoding="utf-8")
    return path


def load_all(env: str, release: str, outputs: Path | None = None) -> list[ApprovalFile | str]:
    """Every approval file of a release; a file that cannot be read is its error text."""
    found: list[ApprovalFile | str] = []
    folder = approvals_dir(env, release, outputs)
    for path in sorted(folder.glob(f"*{SUFFIX}")) if folder.is_dir() else []:
        try:
            found.append(ApprovalFile.parse(path.read_text(encoding="utf-8"), path.name))
        except (ConfigError, UnicodeDecodeError) as exc:
            found.append(f"{path.name}: {exc}")
    return found
