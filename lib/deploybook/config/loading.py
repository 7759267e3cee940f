"""From a params file to a validated `Params`: merge its layers, interpolate, validate.

Pure: variables come from the mapping given (the process environment by default); where an
environment's variables really come from (a running sandbox stack, say) is decided by
`deploybook.session.environment`, which calls `resolve_params` with them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from deploybook.config.interpolation import UnresolvedVariable, interpolate
from deploybook.config.layers import ParamsTree, read_params_tree
from deploybook.config.models import EnvironmentSpec, Params
from deploybook.errors import ConfigError


def _format_error(err: Mapping[str, Any]) -> tuple[str, str]:
    key = ".".join(str(p) for p in err["loc"]) or "(top level)"
    msg = err["msg"]
    if err["type"] == "extra_forbidden":
        msg = "unknown key (check its spelling against the documented params)"
    elif err["type"] == "missing":
        msg = "required key is missing"
    got = err.get("input")
    if err["type"] not in ("missing", "extra_forbidden") and not isinstance(got, dict | list):
        msg = f"{msg}; got {got!r}"
    return key, msg


def read_params(path: str | os.PathLike[str]) -> ParamsTree:
    """Read and merge a params file (no YAML aliases), refuse unknown keys, and validate its
    ``environment`` section first.

    Which environment this is decides what variables resolve: a bad name is reported as
    itself, not as an unresolved variable further down.
    """
    tree = read_params_tree(path)
    _refuse_unknown_keys(tree)
    spec = tree.data.get("environment")
    if isinstance(spec, dict) and "${" not in str(spec):
        try:
            EnvironmentSpec.model_validate(spec)
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = ("environment", *err["loc"])
            key, msg = _format_error({**err, "loc": loc})
            raise ConfigError(f"{tree.origin(loc)}: {key}: {msg}", key=key) from None
    return tree


def resolve_params(
    tree: ParamsTree, environ: Mapping[str, str], unresolved_hint: str = ""
) -> Params:
    """Interpolate a merged params tree with ``environ`` and validate it into `Params`.

    Every error names the file the offending key is written in and its key path. Unknown
    keys are refused before anything is interpolated: interpolation walks (and copies) the
    whole tree, so what is not a params key must never get that far.
    """
    _refuse_unknown_keys(tree)
    try:
        data = interpolate(tree.data, environ)
    except UnresolvedVariable as exc:
        raise ConfigError(f"{tree.origin(exc.loc)}: {exc}{unresolved_hint}", key=exc.key) from None
    data["source"] = str(tree.path)
    try:
        return Params.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        key, msg = _format_error(first)
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        where = tree.origin(first["loc"])
        raise ConfigError(f"{where}: {key}: {msg}{more}", key=key) from None


def _refuse_unknown_keys(tree: ParamsTree) -> None:
    """Validate the tree as written and report only unknown keys (values may still be
    ``${VAR}`` placeholders, whose type errors are for after interpolation)."""
    try:
        Params.model_validate({**tree.data, "source": str(tree.path)})
    except ValidationError as exc:
        unknown = [e for e in exc.errors() if e["type"] == "extra_forbidden"]
        if unknown:
            key, msg = _format_error(unknown[0])
            more = f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""
            where = tree.origin(unknown[0]["loc"])
            raise ConfigError(f"{where}: {key}: {msg}{more}", key=key) from None
    except (ValueError, TypeError):
        return  # a validator choking on a placeholder: judged after interpolation


def load_params(path: str | os.PathLike[str], environ: Mapping[str, str] | None = None) -> Params:
    """Read, merge, interpolate and validate a params file; raise one clear `ConfigError`.

    ``${VAR}`` resolves against ``environ`` (default: the process environment) and nothing
    else; `deploybook.session.environment.load_environment_params` adds a sandbox's stack.
    """
    return resolve_params(read_params(Path(path)), dict(os.environ if environ is None else environ))
