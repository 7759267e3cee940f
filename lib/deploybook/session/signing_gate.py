"""The 03 gate's view of signed approvals: which roles are signed, by whom, for what.

Each approval file is judged on its own (signature intact, key allowed for its role in
params ``approvals.allowed_signers``, bound to the current dry-run record and artifacts,
unexpired, not signed with the operator's key), then the roles together: one key may not
sign two roles. The result is one `Check` per role, named ``sign-off ROLE``, whose
evidence says why a sign-off is missing or void, and a row per role for the notebook.

The operator's keys are those named by ``DEPLOYBOOK_OPERATOR_KEY`` (public or private key
files, separated by ``:``), the keys the operator's SSH agent holds and ``~/.ssh/*.pub``:
whoever runs the rollout cannot approve it with any key they have at hand.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from deploybook.config import Params
from deploybook.core.checks import Check, Checks, Status
from deploybook.core.render.approvals import approvals_html, approvals_text
from deploybook.errors import ConfigError, DeploybookError
from deploybook.session import signing
from deploybook.systems import sshsig

SECTION = "18"
OPERATOR_KEY_ENV = "DEPLOYBOOK_OPERATOR_KEY"
_SKEW = timedelta(minutes=5)


def operator_fingerprints(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """fingerprint -> where it came from, for every key the operator holds."""
    environ = os.environ if environ is None else environ
    found: dict[str, str] = {}
    for item in filter(None, environ.get(OPERATOR_KEY_ENV, "").split(os.pathsep)):
        path = Path(item).expanduser()
        try:
            found.update(dict.fromkeys(sshsig.key_fingerprints(path), f"${OPERATOR_KEY_ENV}"))
        except (OSError, DeploybookError) as exc:
            raise ConfigError(
                f"{OPERATOR_KEY_ENV}: cannot read a key from {path} ({exc})"
            ) from None
    if environ.get("SSH_AUTH_SOCK"):
        found.update({fp: "ssh-agent" for fp in sshsig.agent_fingerprints() if fp not in found})
    home = Path(environ.get("HOME", "~")).expanduser() / ".ssh"
    for pub in sorted(home.glob("*.pub")) if home.is_dir() else []:
        try:
            found.update({fp: str(pub) for fp in sshsig.key_fingerprints(pub) if fp not in found})
        except (OSError, DeploybookError):
            continue
    return found


@dataclass
class Verdict:
    """One approval file, judged: valid, or void with the reason."""

    role: str
    approver: str = ""
    key: str = ""
    signed_at: str = ""
    expires_at: str = ""
    approves: str = ""
    source: str = ""
    why_void: str = ""

    @property
    def valid(self) -> bool:
        return not self.why_void


def _binding_problem(body: dict[str, Any], binding: signing.Binding) -> str:
    if body.get("format") != signing.FORMAT:
        return f"unknown statement format {body.get('format')!r}"
    if (body.get("env"), body.get("release")) != (binding.env, binding.release):
        return (
            f"approves {body.get('env')} {body.get('release')}, not {binding.env} {binding.release}"
        )
    dry = body.get("dry_run") or {}
    if dry.get("sha256") != binding.dry_run_sha256:
        return (
            f"approves dry-run record {dry.get('record')} (sha256 {str(dry.get('sha256'))[:12]}…), "
            f"but the current one is {binding.dry_run_record} (sha256 "
            f"{binding.dry_run_sha256[:12]}…): 02 ran again since; approve again"
        )
    if (body.get("artifacts") or {}) != binding.artifacts:
        return "approves other artifact SHAs than the release's passing 01 record holds"
    return ""


def _time_problem(body: dict[str, Any], expiry: timedelta, now: datetime) -> str:
    signed, expires = (
        signing.parse_time(body.get("signed_at", "")),
        signing.parse_time(body.get("expires_at", "")),
    )
    if signed is None or expires is None:
        return "signed_at / expires_at are not timestamps"
    if signed > now + _SKEW:
        return f"signed in the future ({body['signed_at']})"
    if expires - signed > expiry + _SKEW:
        return f"valid for longer than params approvals.expiry ({expiry})"
    if now > expires:
        return f"expired at {body['expires_at']}: approve again"
    return ""


def judge(
    approval: signing.ApprovalFile,
    params: Params,
    binding: signing.Binding | None,
    operator_keys: Mapping[str, str],
    now: datetime,
) -> Verdict:
    """One approval file's verdict (signature first: an unverified statement says nothing)."""
    spec = params.approvals
    body = approval.body
    role = str(body.get("role", "?"))
    verdict = Verdict(
        role,
        str(body.get("approver", "")),
        signed_at=str(body.get("signed_at", "")),
        expires_at=str(body.get("expires_at", "")),
        approves=f"{(body.get('dry_run') or {}).get('record', '?')}",
        source=approval.source,
    )
    try:
        verdict.key = sshsig.signer(approval.message, approval.signature, spec.namespace)
    except sshsig.SignatureError as exc:
        verdict.why_void = f"tampered: {exc}"
        return verdict
    keys = spec.keys_for(role)
    if not keys:
        verdict.why_void = f"params approvals.allowed_signers lists no key for {role}"
        return verdict
    allowed = "".join(f"{role} {key}\n" for key in keys)
    try:
        sshsig.verify(approval.message, approval.signature, allowed, role, spec.namespace)
    except sshsig.SignatureError:
        verdict.why_void = f"signed by {verdict.key}, which is not allowed to sign {role}"
        return verdict
    if verdict.key in operator_keys:
        verdict.why_void = f"signed with the operator's key ({operator_keys[verdict.key]})"
    elif binding is None:
        verdict.why_void = "there is no passing dry-run record to approve"
    else:
        verdict.why_void = _binding_problem(body, binding) or _time_problem(body, spec.expiry, now)
    return verdict


@dataclass
class SignedApprovals:
    """The sign-off state of a release: per role the approval that counts, or why none."""

    roles: list[str]
    verdicts: list[Verdict] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
    binding: signing.Binding | None = None
    binding_error: str = ""
    operator: str = ""
    operator_keys: dict[str, str] = field(default_factory=dict)

    def chosen(self) -> dict[str, Verdict]:
        """Per role the newest valid approval."""
        best: dict[str, Verdict] = {}
        for v in sorted(self.verdicts, key=lambda v: v.signed_at):
            if v.valid and (role := self._role(v.role)):
                best[role] = v
        return best

    def _role(self, name: str) -> str | None:
        return next((r for r in self.roles if r.casefold() == name.casefold()), None)

    def checks(self, require_all: bool, require_distinct: bool) -> Checks:
        fail = Status.FAIL if require_all else Status.WARN
        checks = Checks()
        if self.binding_error:
            checks.append(
                Check(
                    "sign-offs bound to a dry run", SECTION, fail, self.binding_error, require_all
                )
            )
        if require_distinct and not self.operator_keys:
            checks.append(
                Check(
                    "operator's key known",
                    SECTION,
                    Status.FAIL,
                    f"cannot tell the operator's SSH key, so 'approver is not the operator' cannot "
                    f"be verified: set {OPERATOR_KEY_ENV} to your public key file",
                )
            )
        chosen = self.chosen()
        by_key: dict[str, list[str]] = {}
        for role, v in chosen.items():
            by_key.setdefault(v.key, []).append(role)
        for role in self.roles:
            name = f"sign-off {role}"
            v = chosen.get(role)
            voids = [
                x for x in self.verdicts if not x.valid and x.role.casefold() == role.casefold()
            ]
            if v is None:
                why = (
                    f"void: {voids[-1].why_void} ({voids[-1].source})"
                    if voids
                    else f"no approval: the {role} approver runs `deploybook approve --env "
                    f"{self.binding.env if self.binding else 'ENV'} --release "
                    f"{self.binding.release if self.binding else 'vX.Y.Z'} --role {role}`"
                )
                checks.append(Check(name, SECTION, fail, why, require_all))
            elif len(shared := by_key[v.key]) > 1:
                checks.append(
                    Check(
                        name,
                        SECTION,
                        fail,
                        f"the same key {v.key} signed {' and '.join(shared)}: "
                        "each role needs its own approver",
                        require_all,
                    )
                )
            else:
                checks.append(
                    Check(
                        name,
                        SECTION,
                        Status.PASS,
                        f"signed by {v.approver} (key {v.key}) at {v.signed_at} for {v.approves}; "
                        f"valid until {v.expires_at}",
                        require_all,
                    )
                )
        for v in self.verdicts:
            if not self._role(v.role):
                checks.append(
                    Check(
                        f"sign-off {v.role}",
                        SECTION,
                        Status.WARN,
                        f"{v.source}: role {v.role!r} is not one of "
                        f"{', '.join(self.roles)}; ignored",
                        False,
                    )
                )
        for text in self.unreadable:
            checks.append(Check("approval file readable", SECTION, Status.WARN, text, False))
        return checks

    def rows(self) -> list[dict[str, str]]:
        """One row per role for the notebook: state, who, for what, until when, or why not."""
        chosen, rows = self.chosen(), []
        for role in self.roles:
            v = chosen.get(role)
            voids = [
                x for x in self.verdicts if not x.valid and x.role.casefold() == role.casefold()
            ]
            if v is not None:
                rows.append(
                    {
                        "role": role,
                        "state": "signed",
                        "by": f"{v.approver} ({v.key})",
                        "for": v.approves,
                        "until": v.expires_at,
                        "note": "",
                    }
                )
            elif voids:
                x = voids[-1]
                rows.append(
                    {
                        "role": role,
                        "state": "void",
                        "by": f"{x.approver} ({x.key or '?'})",
                        "for": x.approves,
                        "until": x.expires_at,
                        "note": x.why_void,
                    }
                )
            else:
                rows.append(
                    {"role": role, "state": "missing", "by": "", "for": "", "until": "", "note": ""}
                )
        return rows

    def to_records(self) -> list[dict[str, Any]]:
        """Every approval file's verdict for the record; ``name`` (what the overview lists as
        the approver) only on the approval that counts for its role."""
        counted = {id(v) for v in self.chosen().values()}
        return [
            {
                **asdict(v),
                "name": v.approver if id(v) in counted else "",
                "at": v.signed_at,
                "valid": v.valid,
            }
            for v in self.verdicts
        ]

    def _repr_html_(self) -> str:
        return approvals_html(self.rows(), self._caption())

    def __repr__(self) -> str:
        return approvals_text(self.rows(), self._caption())

    def _caption(self) -> str:
        what = self.binding.describe() if self.binding else self.binding_error
        return f"operator: {self.operator}\n{what}"


def collect(
    params: Params,
    env: str,
    release: str,
    operator: str,
    *,
    outputs: Path | None = None,
    now: datetime | None = None,
    environ: Mapping[str, str] | None = None,
) -> SignedApprovals:
    """Read and judge every approval file of the release (headless and interactive alike)."""
    now = now or datetime.now(UTC)
    state = SignedApprovals([str(r) for r in params.signoff_roles], operator=operator)
    try:
        state.binding = signing.current_binding(env, release, outputs)
    except DeploybookError as exc:
        state.binding_error = str(exc)
    state.operator_keys = operator_fingerprints(environ)
    for item in signing.load_all(env, release, outputs):
        if isinstance(item, str):
            state.unreadable.append(item)
        else:
            state.verdicts.append(judge(item, params, state.binding, state.operator_keys, now))
    return state


def roles_of(rows: Iterable[dict[str, str]], state: str) -> list[str]:
    return [r["role"] for r in rows if r["state"] == state]
