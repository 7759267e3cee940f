"""Configuration parity and environment isolation (plan sections 3 and 9), by names only.

Parity compares *names*: the keys each `.env.example` declares against the variables the
target environment defines (observed by `observed`), and staging's names against
production's. Isolation needs
values, so it never shows or keeps them: databases are compared by (host, port, database)
parsed from their URLs, API keys by HMAC-SHA256 fingerprints under a random salt made for
one comparison and dropped with it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets as _random
from collections.abc import Iterable, Mapping
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from deploybook.config import Params, PreconditionsSpec, interpolate, read_params_yaml
from deploybook.core.checks import Status
from deploybook.errors import ConfigError
from deploybook.session.environment import (  # noqa: F401 - re-exported for the cells
    environment_values,
    peer_values,
)

# --- names ----------------------------------------------------------------------------------


def judge_parity(
    examples: Mapping[str, set[str] | None], target: set[str], allow: Iterable[str], env: str
) -> tuple[Status, str, list[dict[str, object]]]:
    """Every key of every `.env.example` is defined in the target environment (or allowed)."""
    allow = set(allow)
    rows, missing, absent = [], [], []
    for path, keys in examples.items():
        if keys is None:
            absent.append(path)
            continue
        for key in sorted(keys):
            defined = key in target
            allowed = not defined and key in allow
            rows.append({"file": path, "key": key, env: defined, "allowed": allowed})
            if not defined and not allowed:
                missing.append((key, path))
    lines = []
    if absent:
        lines.append(f"not found at the release tag: {', '.join(absent)}")
    for key, path in missing:
        lines.append(f"{key} (in {path}) is not defined in {env}")
    allowed = sorted({r["key"] for r in rows if r["allowed"]})
    if allowed:
        lines.append(f"allowed to differ (params): {', '.join(allowed)}")
    total = len({r["key"] for r in rows})
    if missing or absent:
        head = (
            f"{len({k for k, _ in missing})} key(s) of the .env.example files missing in {env}: "
            + ", ".join(dict.fromkeys(k for k, _ in missing))
            if missing
            else f"{len(absent)} .env.example file(s) missing at the release tag"
        )
        return Status.FAIL, "\n".join([head, *lines]), rows
    return (
        Status.PASS,
        "\n".join(
            [f"all {total} keys of {len(examples)} .env.example files are defined in {env}", *lines]
        ),
        rows,
    )


def judge_peer_keys(
    mine: set[str], peer: set[str], allow: Iterable[str], env: str, peer_env: str
) -> tuple[Status, str]:
    """Staging and production define the same key names, apart from allowed ones."""
    allow = set(allow)
    only_mine = sorted((mine - peer) - allow)
    only_peer = sorted((peer - mine) - allow)
    if only_mine or only_peer:
        lines = [
            f"key sets of {env} and {peer_env} differ ({len(only_mine) + len(only_peer)} name(s))"
        ]
        if only_mine:
            lines.append(f"only in {env}: {', '.join(only_mine)}")
        if only_peer:
            lines.append(f"only in {peer_env}: {', '.join(only_peer)}")
        return Status.FAIL, "\n".join(lines)
    ignored = sorted((mine ^ peer) & allow)
    note = f" (allowed to differ: {', '.join(ignored)})" if ignored else ""
    return Status.PASS, f"{env} and {peer_env} define the same {len(mine & peer)} key names{note}"


def peer_spec(
    params: Params, peer_env: str, environ: Mapping[str, str] | None = None
) -> PreconditionsSpec:
    """The peer environment's `preconditions` section, read from its params file beside ours.

    Only that section is interpolated (against this environment's variables: a sandbox's
    include its stack's) and validated, so a peer whose services resolve elsewhere
    (another network) still yields where its names come from.
    """
    folder = Path(params.source).parent if params.source else Path("params")
    path = folder / f"{peer_env}.yaml"
    try:
        raw = read_params_yaml(path)  # its `extends` chain merged
    except ConfigError as exc:
        raise ConfigError(f"peer params file {path} cannot be read: {exc}") from None
    section = raw.get("preconditions") or {} if isinstance(raw, dict) else {}
    try:
        values = environment_values(params, environ)
        return PreconditionsSpec.model_validate(interpolate(section, values, "preconditions"))
    except ConfigError:
        raise
    except ValueError as exc:
        raise ConfigError(f"{path}: preconditions: {exc}") from None


def peer_name(params: Params) -> str | None:
    """The environment on the other side of the release from this one."""
    return params.preconditions.peer_env or params.environment.staging_env


# --- isolation -------------------------------------------------------------------------------


def database_identity(url: str) -> tuple[str, int, str]:
    """(host, port, database) of a postgres URL, normalised; never echoes the URL."""
    try:
        parts = urlsplit(url)
        query = parse_qs(parts.query)
        host = (parts.hostname or "").lower() or unquote(query.get("host", [""])[0])
        port = parts.port or int(query.get("port", ["5432"])[0])
    except ValueError:
        raise ConfigError("a database URL cannot be parsed (value not shown)") from None
    if not parts.scheme.startswith("postgres"):
        raise ConfigError("a database URL is not a postgres:// URL (value not shown)")
    name = unquote(parts.path.lstrip("/")) or unquote(query.get("dbname", [""])[0])
    if host in ("localhost", "::1"):
        host = "127.0.0.1"
    return host, port, name or "postgres"


def judge_databases(mine: str, peer: str, env: str, peer_env: str) -> tuple[Status, str]:
    """The two environments use different databases (host, port and name compared)."""
    a, b = database_identity(mine), database_identity(peer)
    parts = ("host", "port", "database name")
    same = [p for p, x, y in zip(parts, a, b, strict=True) if x == y]
    differ = [p for p in parts if p not in same]
    if a == b:
        return Status.FAIL, (
            f"{env} and {peer_env} use the SAME database (host, port and database name are "
            "equal; values not shown): a staging run would change production data"
        )
    return Status.PASS, (
        f"{env} and {peer_env} use different databases: {', '.join(differ)} "
        + ("differs" if len(differ) == 1 else "differ")
        + (f" ({', '.join(same)} equal)" if same else "")
        + "; values not shown"
    )


def judge_keys(
    mine: Mapping[str, str | None],
    peer: Mapping[str, str | None],
    names: Iterable[str],
    env: str,
    peer_env: str,
) -> tuple[Status, str]:
    """Each named key differs between the environments, compared by salted fingerprint.

    The salt is random per call and the fingerprints live only inside this function, so
    nothing written anywhere could be matched against a key.
    """
    salt = _random.token_bytes(32)

    def fingerprint(value: str) -> bytes:
        return hmac.new(salt, value.encode(), hashlib.sha256).digest()

    shared, differ, unknown = [], [], []
    for name in names:
        a, b = mine.get(name), peer.get(name)
        if not a or not b:
            unknown.append(f"{name} (not set in {env if not a else peer_env})")
        elif hmac.compare_digest(fingerprint(a), fingerprint(b)):
            shared.append(name)
        else:
            differ.append(name)
    lines = []
    if differ:
        lines.append(f"differ: {', '.join(differ)}")
    if unknown:
        lines.append(f"not compared: {', '.join(unknown)}")
    if shared:
        return Status.FAIL, "\n".join(
            [
                f"{env} and {peer_env} share the same {', '.join(shared)} (salted fingerprints "
                "equal; values not shown): give each environment its own key",
                *lines,
            ]
        )
    if not differ:
        return Status.WARN, "\n".join(["no key could be compared", *lines])
    head = f"{env} and {peer_env} use different keys (salted fingerprints, values not shown)"
    return (Status.WARN if unknown else Status.PASS), "\n".join([head, *lines])
