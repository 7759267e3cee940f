"""Scraps as they sit in an executed notebook: scrapbook's output, plus a schema version.

Reading and writing only; which scraps exist and what they hold is `session.scraps`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NamedTuple

SCRAP_MIMETYPE = "application/scrapbook.scrap.json+json"
LEGACY_VERSION = 0  # a scrap glued before scraps carried a schema version


class Glued(NamedTuple):
    """One scrap as it sits in a notebook: its JSON data and its schema version."""

    data: Any
    schema_version: int


# -- writing and reading notebook outputs ------------------------------------------------------
def write(name: str, data: Any, schema_version: int) -> None:
    """Display ``data`` as the scrap ``name`` (scrubbed); outside a kernel, nothing.

    The very output `scrapbook.glue(name, value, display=False)` writes, plus the schema
    version, without importing scrapbook: its import chain costs seconds in every kernel.
    """
    from deploybook.session.runbook import in_notebook

    if not in_notebook():
        return
    from IPython.display import display

    from deploybook.core.secrets import scrub

    payload = {
        "name": name,
        "data": json.loads(json.dumps(scrub(data), default=str)),
        "encoder": "json",
        "version": 1,
        "schema_version": schema_version,
    }
    metadata = {"scrapbook": {"name": name, "data": True, "display": False}}
    display({SCRAP_MIMETYPE: payload}, raw=True, metadata=metadata)


def read_glued(path: Path) -> dict[str, Glued]:
    """Every scrap glued in an executed notebook, by name (the last one wins, as in
    scrapbook); read from the JSON directly, which is faster than importing scrapbook."""
    notebook = json.loads(Path(path).read_text(encoding="utf-8"))
    glued: dict[str, Glued] = {}
    for cell in notebook.get("cells", []):
        for output in cell.get("outputs", []):
            payload = output.get("data", {}).get(SCRAP_MIMETYPE)
            if isinstance(payload, dict) and "name" in payload:
                version = payload.get("schema_version", LEGACY_VERSION)
                glued[payload["name"]] = Glued(payload.get("data"), version)
    return glued
