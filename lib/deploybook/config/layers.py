"""Layered params files: ``extends: <file>`` and the deep merge that resolves it.

A params file may name a base file it extends (``extends: release-epic-4.yaml``, relative
to the file). The base is read first (it may extend another: chains are allowed), then the
file's own keys are merged over it: mappings merge key by key, every other value (lists
included) replaces the base's. The merged tree remembers which file set each key, so an
error names the file the bad key is written in, not just the one that was asked for.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from deploybook.errors import ConfigError

EXTENDS = "extends"

Loc = tuple[Any, ...]


@dataclass(frozen=True)
class ParamsTree:
    """A params file with its ``extends`` chain merged: YAML data, not yet interpolated."""

    path: Path  # the file asked for
    data: dict[str, Any]  # the merged keys, without ``extends``
    chain: tuple[Path, ...]  # the file asked for first, then each base it extends
    origins: dict[Loc, Path] = field(repr=False, default_factory=dict)  # key path -> its file

    def origin(self, loc: Sequence[Any]) -> Path:
        """The file that set the key at ``loc`` (or its nearest parent); the top file if none."""
        for end in range(len(loc), 0, -1):
            found = self.origins.get(tuple(loc[:end]))
            if found is not None:
                return found
        return self.path

    def environment_field(self, name: str) -> Any:
        """``environment.<name>`` as written (None when absent or not a mapping)."""
        spec = self.data.get("environment")
        return spec.get(name) if isinstance(spec, dict) else None


# libyaml's loader where PyYAML was built with it (the wheels are): ten times faster than
# the pure-Python one, and every run reads its params files twice.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _refuse_aliases(text: str, path: Path) -> None:
    """YAML without aliases: a params file has no need of them, and nested aliases (an
    "alias bomb") expand to gigabytes once anything walks the tree. Checked on the event
    stream, before anything is built."""
    for event in yaml.parse(text, Loader=_LOADER):
        if isinstance(event, yaml.AliasEvent):
            raise ConfigError(
                f"{path}: line {event.start_mark.line + 1}: YAML aliases (*name) are not "
                "allowed in params files; write the value out (or use extends: for shared "
                "settings)"
            )


def _read_yaml(path: Path, named_by: str | None) -> dict[str, Any]:
    if not path.is_file():
        if named_by:
            raise ConfigError(f"{named_by}: extends: {path} not found", key=EXTENDS)
        raise ConfigError(f"{path}: params file not found")
    try:
        text = path.read_text(encoding="utf-8")
        _refuse_aliases(text, path)
        raw = yaml.load(text, Loader=_LOADER)  # noqa: S506 - a SafeLoader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(
            f"{path}:{where} is not valid YAML ({getattr(exc, 'problem', exc)})"
        ) from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of keys at the top level")
    return raw


def _layers(path: Path) -> list[tuple[Path, dict[str, Any]]]:
    """The file and the bases it extends, the file first; a cycle or a gap is a ConfigError."""
    layers: list[tuple[Path, dict[str, Any]]] = []
    seen: list[Path] = []
    current, named_by = path, None
    while True:
        real = Path(os.path.realpath(current))
        if real in seen:
            loop = " -> ".join(str(p) for p in [*[layer for layer, _ in layers], current])
            raise ConfigError(
                f"{named_by}: extends: {current} makes a cycle ({loop}); "
                "a params file cannot extend itself or a file that extends it",
                key=EXTENDS,
            )
        seen.append(real)
        raw = _read_yaml(current, named_by)
        layers.append((current, raw))
        base = raw.get(EXTENDS)
        if base is None:
            return layers
        if not isinstance(base, str) or not base.strip():
            raise ConfigError(
                f"{current}: extends: expected the name of a params file to build on "
                f"(e.g. release-epic-4.yaml); got {base!r}",
                key=EXTENDS,
            )
        current, named_by = current.parent / base, str(current)


def _merge(
    base: dict[str, Any], over: dict[str, Any], origins: dict[Loc, Path], file: Path, loc: Loc
) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        here = (*loc, key)
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value, origins, file, here)
        else:
            for known in [k for k in origins if k[: len(here)] == here]:
                del origins[known]  # replaced whole: nothing below it comes from the base
            merged[key] = value
            _mark(value, origins, file, here)
        origins[here] = file
    return merged


def _mark(value: Any, origins: dict[Loc, Path], file: Path, loc: Loc) -> None:
    if isinstance(value, dict):
        for key, sub in value.items():
            origins[(*loc, key)] = file
            _mark(sub, origins, file, (*loc, key))


def read_params_tree(path: str | os.PathLike[str]) -> ParamsTree:
    """Read a params file and every file it extends, merged (not interpolated or validated)."""
    path = Path(path)
    layers = _layers(path)
    origins: dict[Loc, Path] = {}
    data: dict[str, Any] = {}
    for file, raw in reversed(layers):
        own = {k: v for k, v in raw.items() if k != EXTENDS}
        data = _merge(data, own, origins, file, ())
    return ParamsTree(path, data, tuple(file for file, _ in layers), origins)


def read_params_yaml(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The merged YAML of a params file: what it would hold written out in full."""
    return read_params_tree(path).data
