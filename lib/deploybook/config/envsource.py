"""Where an environment's variable NAMES are observed (plan section 9): the params shape.

Observing names (running the command, reading the file) is runbook 01's concern; this is
only the validated setting, so a bad source stops the run before anything is touched.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator


class EnvSource(BaseModel):
    """Where an environment's variable NAMES come from; values are never kept.

    Exactly one of ``command`` (argv run in the checkout, e.g. the hosting platform's env
    listing; output of NAME or NAME=value lines, or a JSON list/object), ``dotenv`` (a
    file) or ``process: true`` (this process's environment; ``prefix`` keeps only the names
    starting with it, stripped: ``PRODUCTION_``).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    command: list[str] = []
    dotenv: Path | None = None
    process: bool = False
    prefix: str = Field("", pattern=r"^[A-Za-z0-9_]*$")
    timeout_s: float = Field(60, gt=0)

    @model_validator(mode="after")
    def _one_source(self) -> EnvSource:
        chosen = [k for k in ("command", "dotenv", "process") if getattr(self, k)]
        if len(chosen) != 1:
            raise ValueError(
                "exactly one of command: [argv…], dotenv: <file> or process: true"
                + (f" (got {' and '.join(chosen)})" if chosen else " (got none)")
            )
        if self.prefix and not self.process:
            raise ValueError("prefix filters the process environment only (process: true)")
        return self

    def describe(self) -> str:
        """Where the names were observed, for evidence (argv and paths hold no values)."""
        if self.command:
            return f"command `{' '.join(self.command)}`"
        if self.dotenv is not None:
            return f"dotenv file {self.dotenv}"
        return "process environment" + (
            f" (names starting {self.prefix}, stripped)" if self.prefix else ""
        )
