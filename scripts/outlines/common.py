"""Cells every runbook shares: the parameters, the start call and the gate."""

PARAMETERS = """
env = "sandbox"
release = "v1.4.0"
previous_release = "v1.3.0"
params_file = "params/sandbox.yaml"
operator = ""
approvals = {}
execute = False
run_id = ""
"""

START = """
import deploybook.runbooks as book
from deploybook import start

run = start(
    "{name}", env=env, release=release, previous_release=previous_release,
    params_file=params_file, operator=operator, execute=execute, run_id=run_id,
)
run
"""

GATE = [
    (
        "md",
        "## Release so far\n\nEvery earlier record of this release in this environment, "
        "with links to each record and the timeline against the deployment window.",
    ),
    # Its content changes with every run: nbval must not compare it.
    ("volatile", "book.overview(run)"),
    (
        "md",
        "## Gate\n\nAny failed critical check above stops here: the record shows where and why.",
    ),
    ("code", "run.finish()"),
]


def start(name: str) -> tuple[str, str]:
    return ("code", START.replace("{name}", name))
