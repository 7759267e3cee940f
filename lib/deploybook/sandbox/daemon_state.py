"""The daemon's state directory: file names, the config model and JSON helpers.

Shared by the daemon (`daemon`) and the code that starts and drives it (`daemon_client`);
the layout is documented in CONTRACT.md.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, field_validator

CONFIG_FILE = "daemon-config.json"
INFO_FILE = "daemon.json"
VERSIONS_FILE = "versions.json"
LOG_FILE = "daemon.log"
LOCK_FILE = "daemon.lock"
PREVIOUS_RELEASE = "v1.3.0"


class EnvConfig(BaseModel):
    database_url: str | None = None
    initial_version: str = PREVIOUS_RELEASE


class DaemonConfig(BaseModel):
    """``DIR/daemon-config.json``: which envs to stand up and where their databases are."""

    envs: dict[str, EnvConfig] = Field(min_length=1)

    @field_validator("envs")
    @classmethod
    def _env_names(cls, envs: dict[str, EnvConfig]) -> dict[str, EnvConfig]:
        for name in envs:
            if not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", name):
                raise ValueError(f"env name {name!r} must be lowercase letters, digits, - or _")
        return envs


def _write_json_atomic(path: Path, data: Any, mode: int = 0o644) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as out:
        out.write(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None
