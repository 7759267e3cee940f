"""``${VAR}`` and ``${VAR:-default}`` in params values: non-secret settings from the environment.

Pure: the variables come from the mapping the caller passes, never from a running system.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from deploybook.errors import ConfigError

_INTERPOLATION = re.compile(r"\$\{(?P<name>[A-Z_][A-Z0-9_]*)(?::-(?P<default>[^}]*))?\}")

Loc = tuple[str | int, ...]


class UnresolvedVariable(ConfigError):
    """A ``${VAR}`` without a default whose variable is not set; ``loc`` is its key path."""

    def __init__(self, message: str, key: str, loc: Loc, variable: str) -> None:
        super().__init__(message, key=key)
        self.loc = loc
        self.variable = variable


def key_path(loc: Loc, where: str = "") -> str:
    """A key path as messages show it: ``services[0].base_url`` (``where`` is a prefix)."""
    for part in loc:
        if isinstance(part, int):
            where = f"{where}[{part}]"
        else:
            where = f"{where}.{part}" if where else str(part)
    return where


def interpolate(value: Any, environ: Mapping[str, str], where: str = "", _loc: Loc = ()) -> Any:
    """Replace ``${VAR}`` / ``${VAR:-default}`` in every string of a loaded YAML tree.

    An unset variable without a default raises `UnresolvedVariable` naming the key path
    (after ``where``) and the variable.
    """
    if isinstance(value, dict):
        return {k: interpolate(v, environ, where, (*_loc, k)) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, environ, where, (*_loc, i)) for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def replace(match: re.Match[str]) -> str:
        name, default = match["name"], match["default"]
        if name in environ and environ[name] != "":
            return environ[name]
        if default is not None:
            return default
        key = key_path(_loc, where)
        raise UnresolvedVariable(
            f"{key}: environment variable {name} is not set", key=key, loc=_loc, variable=name
        )

    return _INTERPOLATION.sub(replace, value)
