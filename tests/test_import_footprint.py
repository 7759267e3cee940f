"""What a kernel and a `deploybook` command import: the rehearsal pays it per process (issue 19).

Each of a rehearsal's ten kernels starts a fresh interpreter, and so does every
`deploybook` command, so an import nobody uses there costs seconds over a rehearsal.
Structure only, never timings: a fresh interpreter imports the module and reports
`sys.modules`.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from deploybook.runbooks import REGISTRY

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("pandas", "matplotlib", "scrapbook", "nbformat", "nbconvert", "papermill")


def loaded_after(code: str) -> set[str]:
    """Top-level packages and deploybook.runbooks.* modules a fresh interpreter holds."""
    # A name mapped to None is one marked absent (`lean_imports`), not a loaded module.
    listing = "sorted(k for k, m in sys.modules.items() if m)"
    probe = f"{code}\nimport json, sys\nprint(json.dumps({listing}))"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout
    return set(json.loads(out.strip().splitlines()[-1]))


def runbook_packages(modules: set[str]) -> set[str]:
    return {m.split(".")[2] for m in modules if m.startswith("deploybook.runbooks.")}


def test_the_runbooks_package_loads_no_runbook() -> None:
    modules = loaded_after("import deploybook.runbooks")
    assert runbook_packages(modules) == set(), "deploybook.runbooks must not import its packages"


@pytest.mark.parametrize("package", ["preconditions", "migration_dry_run", "smoke"])
def test_a_runbook_package_loads_no_other_runbook(package: str) -> None:
    modules = loaded_after(f"import deploybook.runbooks.{package}")
    assert runbook_packages(modules) == {package}


@pytest.mark.parametrize("info", REGISTRY.values(), ids=lambda i: i.name)
def test_the_start_cell_loads_its_own_runbook_and_nothing_heavy(info) -> None:
    """The notebook's start cell imports its own package (``book.<package>``), and neither
    it nor `start` drags in pandas, matplotlib or the notebook tooling."""
    source = (ROOT / "runbooks" / f"{info.name}.py").read_text(encoding="utf-8")
    imports = re.findall(r"^import deploybook\.runbooks\.(\w+)", source, re.MULTILINE)
    assert imports == [info.package], f"{info.name}: start cell imports {imports}"
    modules = loaded_after(
        f"import deploybook.runbooks as book\nimport deploybook.runbooks.{info.package}\n"
        "from deploybook import start"
    )
    assert info.package in runbook_packages(modules)
    assert not {m.split(".")[0] for m in modules} & set(HEAVY)


def test_a_sandbox_command_skips_the_database_and_http_clients() -> None:
    """`deploybook sandbox deploy|scale|platform-env` (by hand, and in scripts) needs
    neither psycopg nor httpx: the daemon's admin API is one urllib request."""
    modules = loaded_after("import deploybook.ops.cli, deploybook.ops.sandboxcmd")
    modules |= loaded_after("from deploybook.sandbox import platform, stack")
    assert not {m.split(".")[0] for m in modules} & {"psycopg", "httpx", *HEAVY}


def test_a_deploybook_command_imports_papermill_without_the_iri_grammars() -> None:
    """`deploybook run` imports papermill (nbformat, jsonschema); the CLI first marks the
    optional rfc3987_syntax absent (38 lark grammars compiled at import, seconds a run), and
    nbformat still validates a notebook."""
    modules = loaded_after(
        "from deploybook.ops import cli\n"
        "cli.main(['audit', 'verify', '--outputs', '/nonexistent-deploybook-outputs'])\n"
        "import nbformat, papermill\n"
        "nbformat.validate(nbformat.v4.new_notebook())"
    )
    assert {"papermill", "nbformat", "jsonschema"} <= modules
    assert "rfc3987_syntax" not in modules and "lark" not in modules
