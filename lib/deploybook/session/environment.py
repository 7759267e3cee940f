"""Where an environment's values come from: the only module where the sandbox is special.

A real environment (staging, production) resolves its params and secrets from the process
environment, and its peer's values from the variables ``preconditions.peer_env_vars``
names. A sandbox environment resolves them from the local stack that `deploybook sandbox
up` started (its URLs, database, generated keys), and uses the embedded PostgreSQL's
client tools. Every decision of that form is made here, so the rest of the library never
asks which kind of environment it runs against.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from deploybook.config import EnvironmentSpec, Params, read_params, resolve_params
from deploybook.core.secrets import register

SANDBOX = "sandbox"
_NOT_UP = " (is the sandbox up? run `deploybook sandbox up`)"


def is_sandbox(environment: EnvironmentSpec) -> bool:
    """True when the environment is a local sandbox stack rather than a real system."""
    return environment.kind == SANDBOX


def _stack(env: str, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The running stack's variables for ``env`` ({} when no stack runs)."""
    from deploybook.sandbox.stack import sandbox_environment

    return sandbox_environment(env, environ)


def free_text_signoffs_allowed(params: Params) -> bool:
    """Typed names as sign-offs (``approvals.method: names``) are the rehearsal's shortcut:
    a sandbox may use them, a real environment needs signed approvals."""
    return is_sandbox(params.environment)


def load_environment_params(
    path: str | os.PathLike[str], environ: Mapping[str, str] | None = None
) -> Params:
    """Load a params file for the environment it describes: a sandbox's ``${VAR}`` resolve
    against its running stack (whose values win), a real environment's against ``environ``
    (default: the process environment)."""
    tree = read_params(path)
    values = dict(os.environ if environ is None else environ)
    hint = ""
    if tree.environment_field("kind") == SANDBOX:
        values.update(_stack(tree.environment_field("name"), values))
        hint = _NOT_UP
    return resolve_params(tree, values, unresolved_hint=hint)


def adopt(params: Params, env: str) -> None:
    """Make this process look like one running inside ``env``.

    A sandbox stands in for the environment a real run would inherit: its variables are
    put into ``os.environ``. A real environment's are already there.
    """
    if is_sandbox(params.environment):
        os.environ.update(_stack(env))


def database_url(params: Params, env: str) -> str | None:
    """A sandbox's database URL from its stack (registered with the scrubber); None elsewhere.

    Several sandbox runs may share a process, so the URL is this env's stack's rather than
    whatever the process environment holds last.
    """
    if not is_sandbox(params.environment):
        return None
    value = _stack(env).get(params.database.url_env)
    if value:
        register(value)
    return value or None


def pg_bin_dir(params: Params) -> Path | None:
    """pg_dump/pg_restore from params; on a sandbox without one, the embedded install's
    (None: PATH, then the embedded install, as `systems.postgres.tools.pg_tools` decides)."""
    if params.database.pg_bin_dir is not None:
        return params.database.pg_bin_dir
    if is_sandbox(params.environment):
        from deploybook.sandbox.postgres import PgCluster

        return PgCluster.bin_dir()
    return None


def environment_values(params: Params, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """This environment's variables: the process environment, plus the stack's for a sandbox."""
    values = dict(os.environ if environ is None else environ)
    if is_sandbox(params.environment):
        values.update(_stack(params.environment.name, values))
    return values


def peer_values(
    params: Params, peer_env: str, names: Iterable[str], environ: Mapping[str, str] | None = None
) -> tuple[dict[str, str], str | None]:
    """The peer environment's values for ``names`` and, when unavailable, why.

    A sandbox reads the other sandbox environment from the running stack; a real
    environment reads the variables `preconditions.peer_env_vars` names (e.g.
    ``PRODUCTION_DATABASE_URL``). Every value read is registered with the scrubber.
    """
    environ = os.environ if environ is None else environ
    if is_sandbox(params.environment):
        stack = _stack(peer_env, environ)
        if not stack:
            return {}, f"the sandbox stack is not running, so {peer_env}'s values are unknown"
        found = {n: stack[n] for n in names if stack.get(n)}
    else:
        mapping = params.preconditions.peer_env_vars
        found = {n: environ[mapping[n]] for n in names if n in mapping and environ.get(mapping[n])}
        if not found:
            wanted = [f"{mapping.get(n, '(unmapped)')} for {n}" for n in names]
            return {}, (
                f"{peer_env}'s values are not available in this process: export "
                + ", ".join(wanted)
                + " (names set in preconditions.peer_env_vars)"
            )
    for value in found.values():
        register(value)
    return found, None
