"""Which variable NAMES an environment defines, observed where params say (plan section 9).

A source (`EnvSource`) is a command whose output lists the variables (the hosting
platform's env listing, run in the checkout), a dotenv file, or this process's
environment. Only names leave this module: a listing's text and any value in it stay in
local variables and are dropped, and no error message quotes a line of it. A list typed
into params (`env_keys`, `env_keys_file`) is still accepted, marked "declared, not
observed". `listing_names` is pure; `observe` is the thin I/O around it.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deploybook.config import EnvSource, PreconditionsSpec
from deploybook.errors import CommandFailed, ConfigError
from deploybook.systems.workdir import run_in_checkout

_VALID = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*(?:=|$)")
_NAME_FIELDS = ("name", "key", "Name", "Key", "NAME", "KEY")


@dataclass(frozen=True)
class Names:
    """An environment's variable names and where they came from (never a value)."""

    names: frozenset[str]
    origin: str  # "command `…`", "dotenv file …", "process environment", "params env_keys"
    observed: bool  # False: typed into params ("declared, not observed")

    def line(self, env: str) -> str:
        how = "observed" if self.observed else "declared, not observed"
        return f"{env}: {len(self.names)} names {how} ({self.origin}; names only kept)"


def dotenv_names(text: str) -> list[str]:
    """Variable names in a dotenv file (or a list of names, one a line); values are ignored."""
    names = []
    for line in text.splitlines():
        if line.strip().startswith("#"):
            continue
        if match := _LINE.match(line):
            names.append(match.group(1))
    return list(dict.fromkeys(names))


def _json_name(item: Any) -> str | None:
    """A name from one entry of a JSON listing: a string, or an object's name/key field
    (also one level down, as in ``{"envVar": {"key": …}}``)."""
    if isinstance(item, str):
        return item
    if isinstance(item, dict):
        for field in _NAME_FIELDS:
            if isinstance(item.get(field), str):
                return item[field]
        nested = [v for v in item.values() if isinstance(v, dict)]
        if len(nested) == 1:
            return _json_name(nested[0])
    return None


def listing_names(text: str) -> list[str]:
    """Names in an env listing: a JSON list (names, or objects with a name/key field) or a
    JSON object (its keys), else NAME or NAME=value lines (``export`` and ``#`` allowed)."""
    stripped = text.strip()
    if stripped[:1] in ("[", "{"):
        try:
            data = json.loads(stripped)
        except ValueError as exc:  # position only: the message never quotes the text
            raise ConfigError(
                f"the listing looks like JSON but does not parse (line {exc.lineno}, "
                f"column {exc.colno}; text not shown)"
            ) from None
        items = list(data) if isinstance(data, dict) else data if isinstance(data, list) else []
        names = [_json_name(item) for item in items]
        return list(dict.fromkeys(n.strip() for n in names if n and _VALID.match(n.strip())))
    return dotenv_names(text)


def _run_listing(
    source: EnvSource, checkout: Path, environ: Mapping[str, str] | None = None
) -> str:
    """The listing command's output, run in the checkout like every configured command
    (``environ``, when given, is added to the command's environment)."""
    what = source.describe()
    result = run_in_checkout(
        "env listing",
        source.command,
        None,
        checkout=checkout,
        timeout_s=source.timeout_s,
        env=dict(environ) if environ is not None else None,
        check=False,
    )
    if result.timed_out:
        raise CommandFailed(f"{what} timed out after {source.timeout_s:g} s (run in {checkout})")
    if result.returncode != 0:
        raise CommandFailed(
            f"{what} exited {result.returncode} (run in {checkout}; its output is not shown "
            "because it may hold values): run it by hand to see why"
        )
    return result.stdout


def observe(
    source: EnvSource, checkout: Path, environ: Mapping[str, str] | None = None
) -> frozenset[str]:
    """The names ``source`` lists; an unreadable or empty source raises, naming the source."""
    what = source.describe()
    if source.command:
        try:
            names = listing_names(_run_listing(source, checkout, environ))
        except ConfigError as exc:
            raise ConfigError(f"preconditions.env_source: {what}: {exc}") from None
    elif source.dotenv is not None:
        try:
            names = dotenv_names(Path(source.dotenv).read_text(encoding="utf-8", errors="replace"))
        except OSError as exc:
            raise ConfigError(
                f"preconditions.env_source: {what} cannot be read ({exc.strerror})"
            ) from None
    else:
        environ = os.environ if environ is None else environ
        names = [
            name.removeprefix(source.prefix)
            for name in environ
            if name.startswith(source.prefix) and name != source.prefix
        ]
    if not names:
        raise ConfigError(f"preconditions.env_source: {what} lists no variable names")
    return frozenset(names)


def environment_names(
    spec: PreconditionsSpec, checkout: Path, environ: Mapping[str, str] | None = None
) -> Names | None:
    """The names an environment defines: observed from ``spec.env_source``, else the list
    declared in params (``env_keys`` ∪ ``env_keys_file``); None when params give neither."""
    if spec.env_source is not None:
        source = spec.env_source
        return Names(observe(source, checkout, environ), source.describe(), True)
    if not spec.env_keys and spec.env_keys_file is None:
        return None
    names = set(spec.env_keys)
    origin = "params env_keys"
    if spec.env_keys_file is not None:
        path = Path(spec.env_keys_file)
        try:
            names |= set(dotenv_names(path.read_text(encoding="utf-8", errors="replace")))
        except OSError as exc:
            raise ConfigError(
                f"preconditions.env_keys_file {path} cannot be read ({exc.strerror}): "
                "export the environment's variable names there (names only are read)"
            ) from None
        origin = f"params env_keys_file {path}" + (" + env_keys" if spec.env_keys else "")
    return Names(frozenset(names), origin, False)
