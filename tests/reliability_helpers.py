"""Helpers of the reliability suite (tests/test_reliability.py) that are not scenarios.

What a scenario observes (database facts, data lost, files written), the fault a build
step can inject, the interactive-style session (every runbook in one kernel, as a lead in
JupyterLab would run them) and the canary scan.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from sandbox_fixtures import CANARIES, files_containing

from deploybook.ops.runner import RunResult
from deploybook.sandbox import stack
from deploybook.systems.postgres import db, fingerprint

ROOT = Path(__file__).resolve().parent.parent

# Every secret the sandbox resolves holds a unique canary: the shared ones, plus the Google
# keys the stack would otherwise generate.
SECRET_CANARIES = {
    **CANARIES,
    "SANDBOX_GOOGLE_GEMINI_API_KEY": "canary-google-gemini-1f0a77c3b5",
    "SANDBOX_PRODUCTION_GOOGLE_GEMINI_API_KEY": "canary-prod-google-5be19d04aa",
}
# The only files that must hold the database password: the stack's own secret files.
SECRET_FILES = ("pg-password", "daemon-config.json")


def database_url(env: str) -> str:
    return stack.sandbox_environment(env)["DATABASE_URL"]


def facts(env: str) -> tuple[str, dict[str, int]]:
    """(schema fingerprint, exact row counts) of an environment's database."""
    url = database_url(env)
    return fingerprint.schema_fingerprint(url), db.row_counts(url)


def data_lost(before: Mapping[str, int], after: Mapping[str, int]) -> str:
    """Returns "none", or each table that vanished or holds fewer rows than before."""
    lost = [
        f"{table} {rows}→{after.get(table, 'missing')}"
        for table, rows in sorted(before.items())
        if after.get(table, -1) < rows
    ]
    return "; ".join(lost) or "none"


def tree(root: Path) -> set[str]:
    """Every file under root (relative paths): a refused run must add none."""
    return (
        {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}
        if root.exists()
        else set()
    )


def message_count() -> int:
    got = stack.admin("/admin/messages", method="GET")
    return len(got["webhook"]) + len(got["email"])


def outcome(result: RunResult, limit: int = 150) -> str:
    """A run as the lead sees it at the end of `deploybook run`: status and error."""
    if not result.error:
        return result.status
    return f"{result.status}: {result.error[:limit]}{'…' if len(result.error) > limit else ''}"


def failed_checks(result: RunResult) -> list[str]:
    """Names of the failed checks glued in a record (empty if the run stopped before its gate)."""
    from deploybook.session.records import read_scraps

    checks = read_scraps(result.record).get("checks") or []
    return [c["name"] for c in checks if c["status"] == "fail"]


def stop_database_once(datadir: Path, marker: Path) -> dict[str, Any]:
    """A rollout build step that stops PostgreSQL the first time it runs (the fault).

    No braces in the code: argv elements are templates and braces are placeholders.
    """
    code = (
        "import sys, pathlib; from deploybook.sandbox.postgres import PgCluster; "
        "m = pathlib.Path(sys.argv[2]); "
        "m.exists() or (m.touch(), PgCluster(sys.argv[1]).stop(), "
        "print('fault: PostgreSQL stopped in the middle of the rollout'))"
    )
    return {
        "name": "fault: database dies",
        "argv": ["python", "-c", code, str(datadir), str(marker)],
    }


LEAKED = ("DATABASE_URL", "OPENAI_API_KEY", "GEMINI_API_KEY", "GOOGLE_GEMINI_API_KEY")


def chatty_tool_step() -> dict[str, Any]:
    """A build step whose tool prints its credentials (stdout and stderr), as real ones do:
    only the scrubber stands between them and the record, HTML and step ledger."""
    code = (
        "import os, sys; "
        f"[print(n + '=' + os.environ.get(n, ''), file=f) for n in {LEAKED!r} "
        "for f in (sys.stdout, sys.stderr)]"
    )
    return {"name": "build api (a tool printing its credentials)", "argv": ["python", "-c", code]}


@contextlib.contextmanager
def environ(**changes: str | None) -> Iterator[None]:
    """Set (or, with None, remove) environment variables for the block, then restore."""
    saved = os.environ.copy()
    for key, value in changes.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


class Code(str):
    """A parameter the lead types as an expression (e.g. a path found at run time)."""


# Between runbooks: what a new kernel would be. A fresh namespace, the environment the
# kernel started with, and an empty scrubber registry (so a secret registered by an
# earlier runbook cannot hide a later runbook's leak).
_FRESH_KERNEL = """%reset -f
import os, sys
from deploybook.core import secrets as _secrets
_secrets._known.clear()
os.environ.clear()
os.environ.update(sys._kernel_started_with)
del os, sys, _secrets"""


def interactive_session(runs: Iterable[tuple[str, dict[str, Any]]], out: Path) -> Any:
    """Run runbooks as a lead does in JupyterLab, one after another, and save the result.

    Not papermill: no DEPLOYBOOK_HEADLESS (sign-off forms and confirmation boxes are
    widgets, 02 shows progress bars), parameters typed into a cell, an error does not stop
    the remaining cells, the kernel starts in runbooks/, and the notebook is saved as it
    is: the runner's scrubbing pass never sees it, so only the library's own scrubbing
    stands between a secret and this file. One kernel process (start-up is most of a
    run's time), reset to a fresh kernel's state before each runbook.
    """
    import nbformat
    from nbclient import NotebookClient

    kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    session = nbformat.v4.new_notebook(metadata={"kernelspec": kernelspec})
    session.cells.append(
        nbformat.v4.new_code_cell("import os, sys\nsys._kernel_started_with = dict(os.environ)")
    )
    for runbook, parameters in runs:
        session.cells.append(nbformat.v4.new_markdown_cell(f"# {runbook} (interactive)"))
        session.cells.append(nbformat.v4.new_code_cell(_FRESH_KERNEL))
        source = nbformat.read(ROOT / "runbooks" / f"{runbook}.ipynb", as_version=4)
        for cell in source.cells:
            session.cells.append(cell)
            if "parameters" in cell.get("metadata", {}).get("tags", []):
                typed = nbformat.v4.new_code_cell(
                    "\n".join(
                        f"{name} = {value if isinstance(value, Code) else repr(value)}"
                        for name, value in parameters.items()
                    )
                )
                typed.metadata["tags"] = ["typed-by-the-lead"]
                session.cells.append(typed)
    for number, cell in enumerate(session.cells):
        cell["id"] = f"cell-{number}"  # five notebooks' ids, made unique in one
    client = NotebookClient(
        session,
        timeout=300,
        kernel_name="python3",
        allow_errors=True,
        resources={"metadata": {"path": str(ROOT / "runbooks")}},
    )
    bin_dir = str(Path(sys.executable).parent)
    with environ(
        DEPLOYBOOK_HEADLESS=None,
        DEPLOYBOOK_RECORD=None,
        DEPLOYBOOK_ROOT=None,
        PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
    ):
        client.execute()
    out.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(session, out)
    return session


def runbook_outputs(session: Any) -> dict[str, list[dict[str, Any]]]:
    """The outputs of each runbook's cells in an interactive session, by runbook."""
    found: dict[str, list[dict[str, Any]]] = {}
    current = None
    for cell in session.cells:
        if cell.cell_type == "markdown" and cell.source.endswith("(interactive)"):
            current = cell.source[2:].split(" ")[0]
            found[current] = []
        elif cell.cell_type == "code" and current:
            found[current] += cell.get("outputs", [])
    return found


def canary_hits(named_texts: Mapping[str, str], needles: Iterable[str]) -> list[tuple[str, str]]:
    """Every (source, needle) where a canary occurs in a text (messages, CLI output)."""
    needles = list(needles)
    return [(name, n) for name, text in named_texts.items() for n in needles if n in text]


def scan_files(roots: Iterable[Path], needles: Iterable[str]) -> list[tuple[str, str]]:
    """`files_containing` over several roots, skipping the stack's own secret files."""
    hits = []
    for root in roots:
        if root.is_file():
            data = root.read_bytes()
            hits += [(str(root), n) for n in needles if n.encode() in data]
        elif root.exists():
            hits += files_containing(root, list(needles))
    return [(f, n) for f, n in hits if Path(f).name not in SECRET_FILES]


def messages_text() -> dict[str, str]:
    """Each webhook body and email the stack received, as text."""
    got = stack.admin("/admin/messages", method="GET")
    texts = {}
    for kind in ("webhook", "email"):
        for i, message in enumerate(got[kind]):
            texts[f"{kind} #{i + 1}"] = json.dumps(message, ensure_ascii=False)
    return texts


@contextlib.contextmanager
def sandbox_rig(prefix: str, canaries: Mapping[str, str], envs: tuple[str, ...]) -> Iterator[Any]:
    """A stack of our own (``envs``), outputs and canary secrets, outside pytest's tmp tree
    (a concurrent pytest run may prune that mid-run); yields (base, stack state) and puts
    everything back — stack down, environment restored, folder removed unless
    ``DEPLOYBOOK_KEEP_RELIABILITY`` is set."""
    import shutil
    import tempfile

    base = Path(tempfile.mkdtemp(prefix=prefix))
    saved = os.environ.copy()
    os.environ["DEPLOYBOOK_STATE_DIR"] = str(base / "state")
    os.environ["DEPLOYBOOK_OUTPUTS"] = str(base / "outputs")
    for name in ("DEPLOYBOOK_RECORD", "DEPLOYBOOK_HEADLESS"):
        os.environ.pop(name, None)
    os.environ.update(canaries)
    # The params' commands run `deploybook` and `python`: this installation's.
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    try:
        password = canaries["DEPLOYBOOK_SANDBOX_DB_PASSWORD"]
        yield base, stack.up(base / "state", password=password, envs=envs, progress=None)
    finally:
        try:
            stack.down(base / "state", progress=None)
        finally:
            os.environ.clear()
            os.environ.update(saved)
            if not os.environ.get("DEPLOYBOOK_KEEP_RELIABILITY"):
                shutil.rmtree(base, ignore_errors=True)


@contextlib.contextmanager
def isolated_test(texts: dict[str, str], name: str, capfd: Any) -> Iterator[None]:
    """Restore the environment after a test (in-process runbooks update it) and keep what
    the test and its kernels printed, for the canary scan."""
    saved = os.environ.copy()
    yield
    os.environ.clear()
    os.environ.update(saved)
    out, err = capfd.readouterr()
    texts[f"output of {name}"] = out + err
    sys.stdout.write(out)
    sys.stderr.write(err)
