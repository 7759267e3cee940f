"""The five runbooks, one package each; the only code that names plan sections and scraps.

Notebooks import this package as ``book`` and call ``book.<runbook>.<cell>(run, …)``.
`REGISTRY` maps a runbook's name to its notebook, its package and the plan sections it
covers, so the CLI, the report and the tests agree on what a runbook is.

This package imports none of the runbook packages: each notebook's start cell imports its
own (``import deploybook.runbooks.smoke``, which also makes ``book.smoke`` an attribute
here), so a kernel pays for one runbook's imports, not five (about a second each kernel).
"""

from dataclasses import dataclass
from typing import Any

from deploybook.session.overview import show_overview
from deploybook.session.runbook import Runbook


@dataclass(frozen=True)
class RunbookInfo:
    """One runbook: its notebook name, package and the plan sections it implements."""

    name: str
    package: str
    sections: tuple[str, ...]

    @property
    def notebook(self) -> str:
        return f"{self.name}.ipynb"


REGISTRY: dict[str, RunbookInfo] = {
    info.name: info
    for info in (
        RunbookInfo(
            "01-preconditions", "preconditions", ("1", "2", "3", "5", "6", "8", "9", "10", "20")
        ),
        RunbookInfo("02-migration-dry-run", "migration_dry_run", ("7",)),
        RunbookInfo("03-rollout", "rollout", ("11", "13", "17", "18")),
        RunbookInfo("04-smoke", "smoke", ("12", "14", "15")),
        RunbookInfo("05-rollback", "rollback", ("16",)),
    )
}


def overview(run: Runbook) -> Any:
    """Every earlier record of this release in this environment, for the closing cell."""
    return show_overview(run.env, run.release)


__all__ = ["REGISTRY", "RunbookInfo", "overview"]
