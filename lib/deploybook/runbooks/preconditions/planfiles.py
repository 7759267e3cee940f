"""Files the plan names by path beyond the change inventory: codebases (section 1), test
files (section 6) and references (section 19), each checked present at the release tag.

`judge_present` is pure; `plan_files` reads the tag's file list through git.
"""

from __future__ import annotations

from dataclasses import dataclass

from deploybook.config import Params
from deploybook.core.checks import Checks, Status, run_check
from deploybook.systems import git as repo


@dataclass(frozen=True)
class PlanFiles:
    """Files a plan section names by path, and how much their absence matters."""

    section: str
    name: str
    key: str  # the field under `preconditions`
    what: str
    critical: bool


# Codebases (1): a codebase the plan ships that is not at the tag means the checkout is not
# the release the plan describes, so it blocks. Test files (6): the zero-failures gate is
# about them. References (19): pointers for readers; a missing one is worth a warning only.
PLAN_FILES = {
    "1": PlanFiles("1", "codebases present at the tag", "codebases", "codebase", True),
    "6": PlanFiles("6", "plan's test files present at the tag", "test_files", "test file", True),
    "19": PlanFiles("19", "plan references present at the tag", "references", "reference", False),
}


def judge_present(
    files: PlanFiles, paths: list[str], present: set[str], release: str
) -> tuple[Status, str]:
    """Every path exists at the tag; a missing one fails (critical kinds) or warns."""
    missing = [p for p in paths if p not in present]
    if missing:
        status = Status.FAIL if files.critical else Status.WARN
        lines = [f"{p} is missing at {release}" for p in missing]
        head = f"{len(missing)} of {len(paths)} {files.what}(s) of plan section {files.section}"
        return status, "\n".join([f"{head} missing: {lines[0]}", *lines[1:]])
    return Status.PASS, "\n".join(
        [f"all {len(paths)} {files.what}(s) of plan section {files.section} exist at {release}"]
        + [f"  {p}" for p in paths]
    )


def plan_files(params: Params, release: str, section: str) -> Checks:
    """The files plan section 1, 6 or 19 names (`preconditions.<key>`) exist at the tag;
    no check at all when params name none."""
    files = PLAN_FILES[section]
    paths: list[str] = getattr(params.preconditions, files.key)
    if not paths:
        return Checks()

    def probe() -> tuple[Status, str]:
        if not repo.tag_exists(params.checkout.path, release):
            return Status.FAIL, f"tag {release} does not exist: cannot read the {files.what}s"
        return judge_present(files, paths, repo.files_at(params.checkout.path, release), release)

    return Checks([run_check(files.name, section, probe, critical=files.critical)])
