"""The sandbox's approvers: throwaway SSH keys, so sandbox-production rehearses the signed gate.

Production's 03 counts a sign-off only as an approval signed with the approver's SSH key
and verified against params ``approvals.allowed_signers``. The sandbox has no people, so
`deploybook sandbox up` makes one ed25519 key per role production's params list, and one
for the operator, once per state dir, under ``<state>/signers/`` (private halves 0600).
Params only ever see the public keys, as ``${DEPLOYBOOK_SANDBOX_SIGNER_<ROLE>}``; the
operator's public key is ``DEPLOYBOOK_OPERATOR_KEY``, so the gate voids an approval signed
with it exactly as production would. The private keys are credentials: nothing here puts
them (or their contents) into params, outputs or logs, and they die with the state dir.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from deploybook.core import paths
from deploybook.errors import SandboxError

DIR = "signers"
ROLES_DIR = "roles"
OPERATOR = "operator"
VARIABLE_PREFIX = "DEPLOYBOOK_SANDBOX_SIGNER_"
OPERATOR_KEY_ENV = "DEPLOYBOOK_OPERATOR_KEY"
_DEFAULT_ROLES = ("PM", "Web", "API", "Services", "QA")


def production_roles() -> list[str]:
    """The roles production's params sign off with (its allowed_signers, else signoff_roles):
    the sandbox needs one approver for each, whatever production names them."""
    from deploybook.config import read_params_yaml  # not at the top: `sandbox deploy` stays light

    path = paths.project_root() / "params" / "production.yaml"
    try:
        raw = read_params_yaml(path)
    except (OSError, ValueError):
        return list(_DEFAULT_ROLES)
    signers = (raw.get("approvals") or {}).get("allowed_signers") or {}
    return [str(role) for role in signers] or list(raw.get("signoff_roles") or _DEFAULT_ROLES)


def variable(role: str) -> str:
    """The variable a sandbox params file reads ``role``'s public key from."""
    return VARIABLE_PREFIX + re.sub(r"[^A-Z0-9]", "_", role.upper())


def _folder(state: Path) -> Path:
    return Path(state) / DIR


def private_key(state: Path, role: str) -> Path:
    """Where ``role``'s throwaway private key lives (its public half: the same + ``.pub``)."""
    return _folder(state) / ROLES_DIR / role


def operator_key(state: Path) -> Path:
    """The sandbox operator's private key (the public half is what the gate knows)."""
    return _folder(state) / OPERATOR


def _generate(path: Path, comment: str) -> None:
    """An ed25519 key without passphrase (ssh-keygen takes milliseconds for one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.parent.chmod(0o700)
    for stale in (path, path.with_name(path.name + ".pub")):
        stale.unlink(missing_ok=True)
    try:
        done = subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
            capture_output=True,
            stdin=subprocess.DEVNULL,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SandboxError(
            f"sandbox: cannot make the throwaway approver keys ({exc}); signed approvals "
            "need OpenSSH's ssh-keygen"
        ) from None
    if done.returncode != 0:
        said = done.stderr.decode("utf-8", "replace").strip()
        raise SandboxError(f"sandbox: ssh-keygen could not make {path.name}'s key: {said}")
    path.chmod(0o600)


def ensure(state: Path, roles: list[str] | None = None) -> dict[str, Path]:
    """Make the missing keys (one per role, one for the operator); role -> private key."""
    made = {}
    for role in roles if roles is not None else production_roles():
        key = private_key(state, role)
        if not (key.exists() and key.with_name(key.name + ".pub").exists()):
            _generate(key, f"sandbox {role} approver (throwaway)")
        made[role] = key
    operator = operator_key(state)
    if not (operator.exists() and operator.with_name(operator.name + ".pub").exists()):
        _generate(operator, "sandbox operator (throwaway)")
    return made


def keys(state: Path) -> dict[str, Path]:
    """role -> private key, for every role the state dir holds a key for."""
    folder = _folder(state) / ROLES_DIR
    if not folder.is_dir():
        return {}
    return {p.stem: p.with_suffix("") for p in sorted(folder.glob("*.pub"))}


def environment(state: Path) -> dict[str, str]:
    """What params see: each role's public key line and the operator's public key file."""
    values = {
        variable(role): key.with_name(key.name + ".pub").read_text(encoding="utf-8").strip()
        for role, key in keys(state).items()
    }
    operator = operator_key(state).with_name(OPERATOR + ".pub")
    if operator.exists():
        values[OPERATOR_KEY_ENV] = str(operator)
    return values


def approvers(state: Path) -> dict[str, Path]:
    """role -> private key for production's roles, in production's order (what signs)."""
    held = keys(state)
    missing = [role for role in production_roles() if role not in held]
    if missing:
        raise SandboxError(
            f"sandbox: no throwaway key for {', '.join(missing)} in {_folder(state)} "
            "(run `deploybook sandbox up`)"
        )
    return {role: held[role] for role in production_roles()}
