"""The environment checks of runbook 01: isolation (plan section 3) and parity (section 9).

Parity compares the `.env.example` keys at the release tag with the names the target
environment is *observed* to define (`observed`), and staging's names with production's,
each from its own params' source; a list typed into params still counts, warned as
"declared, not observed". Isolation compares values it never shows (`parity`). In a
production-role environment a comparison that cannot be made fails: a gate that passes
without comparing proves nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from deploybook.config import Params
from deploybook.core.checks import Checks, Status, run_check
from deploybook.core.secrets import register
from deploybook.errors import ConfigError
from deploybook.runbooks.preconditions import parity
from deploybook.runbooks.preconditions.observed import Names, dotenv_names, environment_names
from deploybook.systems import git as repo

__all__ = ["env_parity", "environments_isolated"]

_NO_SOURCE = (
    "set preconditions.env_source (command: the platform's env listing, dotenv: a file, or "
    "process: true) so its variable names are observed"
)
_SEVERITY = {Status.PASS: 0, Status.SKIP: 1, Status.WARN: 2, Status.FAIL: 3}


def _worst(*statuses: Status) -> Status:
    return max(statuses, key=_SEVERITY.__getitem__)


def _declared(names: Names, status: Status) -> Status:
    """A declared list proves less than an observed one: at best a warning."""
    return status if names.observed else _worst(status, Status.WARN)


# --- section 9: configuration parity ----------------------------------------------------------


def env_parity(params: Params, release: str, environ: Mapping[str, str] | None = None) -> Checks:
    """Plan section 9: `.env.example` keys vs the observed environment; staging vs production."""
    spec, env, checkout = params.preconditions, params.environment.name, params.checkout.path
    values = parity.environment_values(params, environ)
    observed: list[Names | None] = []

    def own_names() -> Names | None:
        """This environment's names, listed once for both checks (the listing is a command
        in the checkout: a process, a platform API call)."""
        if not observed:
            observed.append(environment_names(spec, checkout, values))
        return observed[0]

    def examples_probe() -> tuple[Status, str, Any]:
        names = own_names()
        if names is None:
            return Status.FAIL, f"no source for {env}'s variable names: {_NO_SOURCE}"
        if not repo.tag_exists(checkout, release):
            raise ConfigError(f"tag {release} does not exist in {checkout}")
        examples = {}
        for rel in params.checkout.env_examples:
            text = repo.read_at(checkout, release, rel)
            examples[rel] = None if text is None else set(dotenv_names(text))
        status, evidence, rows = parity.judge_parity(
            examples, set(names.names), spec.parity_allow, env
        )
        lines = [evidence, names.line(env)]
        if not names.observed:
            lines.append(f"declared, not observed: {_NO_SOURCE}")
        return _declared(names, status), "\n".join(lines), rows

    def peer_probe() -> tuple[Status, str]:
        peer = parity.peer_name(params)
        if peer is None:
            return Status.SKIP, "no peer environment configured (preconditions.peer_env)"
        mine = own_names()
        theirs = environment_names(parity.peer_spec(params, peer, environ), checkout, values)
        if mine is None or theirs is None:
            who = env if mine is None else peer
            return Status.WARN, f"{who} has no source for its variable names: not compared"
        status, evidence = parity.judge_peer_keys(
            set(mine.names), set(theirs.names), spec.parity_allow, env, peer
        )
        lines = [evidence, mine.line(env), theirs.line(peer)]
        undeclared = [n for n, side in ((env, mine), (peer, theirs)) if not side.observed]
        if undeclared:
            lines.append(f"declared, not observed for {' and '.join(undeclared)}: {_NO_SOURCE}")
        return _declared(mine, _declared(theirs, status)), "\n".join(lines)

    return Checks(
        [
            run_check("env keys match .env.example files", "9", examples_probe),
            run_check("staging and production key sets match", "9", peer_probe),
        ]
    )


# --- section 3: environment isolation ---------------------------------------------------------


def environments_isolated(params: Params, environ: Mapping[str, str] | None = None) -> Checks:
    """Plan section 3: staging and production share neither database nor API keys.

    Values are compared, never shown: databases by (host, port, name), keys by salted
    fingerprint. When the peer's values are not available here, the checks fail in a
    production-role environment (its gate must not pass without comparing) and warn
    elsewhere, saying how to provide them.
    """
    spec, env = params.preconditions, params.environment.name
    production = params.environment.is_production
    peer = parity.peer_name(params)
    db_name, keys = params.database.url_env, list(spec.isolated_keys)
    unknown = Status.FAIL if production else Status.WARN
    why_needed = " (required in production)" if production else ""

    def load() -> tuple[dict[str, str], dict[str, str], str | None]:
        mine = parity.environment_values(params, environ)
        for name in (db_name, *keys):
            register(mine.get(name))
        theirs, why = parity.peer_values(params, peer, [db_name, *keys], environ)
        return mine, theirs, why

    state: dict[str, Any] = {}

    def no_peer() -> tuple[Status, str]:
        if production:
            return Status.FAIL, (
                "no peer environment configured: production must be compared with staging "
                "(set environment.staging_env or preconditions.peer_env)"
            )
        return Status.SKIP, "no peer environment configured (preconditions.peer_env)"

    def db_probe() -> tuple[Status, str]:
        if peer is None:
            return no_peer()
        state["values"] = mine, theirs, why = load()
        if why:
            return unknown, f"not compared{why_needed}: {why}"
        if not mine.get(db_name) or not theirs.get(db_name):
            missing = env if not mine.get(db_name) else peer
            return unknown, f"not compared{why_needed}: {db_name} is not known for {missing}"
        return parity.judge_databases(mine[db_name], theirs[db_name], env, peer)

    def keys_probe() -> tuple[Status, str]:
        if peer is None:
            return no_peer()
        mine, theirs, why = state.get("values") or load()
        if why:
            return unknown, f"not compared{why_needed}: {why}"
        status, evidence = parity.judge_keys(mine, theirs, keys, env, peer)
        if status is Status.WARN:  # a key could not be compared
            status = unknown
            evidence = evidence.replace("not compared:", f"not compared{why_needed}:", 1)
        return status, evidence

    return Checks(
        [
            run_check("staging and production databases separate", "3", db_probe),
            run_check("staging and production API keys differ", "3", keys_probe),
        ]
    )
