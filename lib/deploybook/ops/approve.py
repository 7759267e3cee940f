"""``deploybook approve``: an approver signs what they approve, on their own machine.

It shows exactly what the signature will cover (environment, release, the artifact SHAs of
the passing 01 record, the 02 dry-run record's SHA-256 and summary, the expiry), asks the
approver to type the role, signs the canonical statement with their SSH key and stores the
approval beside the records (its text can also be handed over: ``--print``).
"""

from __future__ import annotations

import getpass
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path

from deploybook.config import Params
from deploybook.errors import ConfigError
from deploybook.ops.runner import params_file_for
from deploybook.session import signing
from deploybook.session.environment import load_environment_params

_DEFAULT_KEYS = ("id_ed25519", "id_ecdsa", "id_rsa")


def default_key() -> Path:
    """The approver's usual key (~/.ssh/id_ed25519, …); ConfigError naming --key if none."""
    for name in _DEFAULT_KEYS:
        if (path := Path.home() / ".ssh" / name).exists():
            return path
    raise ConfigError("no SSH key in ~/.ssh (id_ed25519, id_ecdsa, id_rsa): pass --key PATH")


def _approver_name(key: Path, given: str | None) -> str:
    """--name, else the public key's comment, else the OS user."""
    if given and given.strip():
        return " ".join(given.split())[:100]
    pub = key if key.suffix == ".pub" else key.with_name(key.name + ".pub")
    if pub.is_file():
        parts = pub.read_text(encoding="utf-8", errors="replace").split(maxsplit=2)
        if len(parts) == 3 and parts[2].strip():
            return parts[2].strip()[:100]
    return getpass.getuser()


def _signed_params(env: str, params_file: Path | None) -> Params:
    """The env's params; ConfigError when its 03 reads typed names, not signed approvals."""
    params = load_environment_params(params_file or params_file_for(env))
    if params.approvals.method != "signed":
        raise ConfigError(
            f"{params.source}: approvals.method is {params.approvals.method!r} (typed names, "
            "the sandbox's path): 03 reads no signed approvals there"
        )
    return params


def _role(params: Params, role: str) -> str:
    """``role`` as params spell it (case-insensitive); ConfigError for an unknown role."""
    roles = {r.casefold(): r for r in params.signoff_roles}
    if role.casefold() not in roles:
        raise ConfigError(f"role {role!r} is not one of {', '.join(params.signoff_roles)}")
    return roles[role.casefold()]


def approve(
    env: str,
    release: str,
    role: str,
    *,
    key: Path | None = None,
    name: str | None = None,
    params_file: Path | None = None,
    outputs: Path | None = None,
    confirm: Callable[[str], str] | None = input,
    now: datetime | None = None,
    say: Callable[[str], None] = print,
) -> tuple[Path, signing.ApprovalFile]:
    """Show, confirm, sign and store one role's approval; (path, approval)."""
    params = _signed_params(env, params_file)
    role = _role(params, role)
    binding = signing.current_binding(env, release, outputs)
    key = key or default_key()
    body = signing.statement(
        binding, role, _approver_name(key, name), params.approvals.expiry, now or datetime.now(UTC)
    )
    say(f"You approve, as {role} ({body['approver']}):\n{binding.describe()}")
    say(f"valid until {body['expires_at']} (params approvals.expiry {params.approvals.expiry})")
    if confirm is not None and confirm(f"Type {role} to sign: ").strip() != role:
        raise ConfigError(f"not approved: the role {role} was not typed")
    approval = signing.sign_approval(body, key, params.approvals.namespace)
    return signing.store(approval, outputs), approval


def sign_roles(
    env: str,
    release: str,
    keys: Mapping[str, Path],
    *,
    names: Mapping[str, str] | None = None,
    params_file: Path | None = None,
    outputs: Path | None = None,
    now: datetime | None = None,
) -> list[Path]:
    """Sign and store several roles' approvals at once, without showing or asking.

    For keys the caller holds for those roles, i.e. the sandbox's throwaway approvers (the
    rehearsal, tests): params and the binding are read once, not once per role. A real
    approver uses `approve`, which shows what they sign.
    """
    params = _signed_params(env, params_file)
    binding = signing.current_binding(env, release, outputs)
    now = now or datetime.now(UTC)
    stored = []
    for given, key in keys.items():
        role = _role(params, given)
        approver = _approver_name(key, (names or {}).get(role))
        body = signing.statement(binding, role, approver, params.approvals.expiry, now)
        approval = signing.sign_approval(body, key, params.approvals.namespace)
        stored.append(signing.store(approval, outputs))
    return stored
