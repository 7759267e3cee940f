"""The package layout's promises, proved by grep (issue 18).

The sandbox is special in one module: only `deploybook.session.environment` (plus the
operator commands in `ops/` and the sandbox package itself) may import
`deploybook.sandbox` or test for the sandbox kind. `deploybook.config` is pure: it imports
nothing of deploybook but its own modules and the errors.
"""

from __future__ import annotations

import re
from pathlib import Path

LIB = Path(__file__).resolve().parents[1] / "lib" / "deploybook"
ENVIRONMENT = "session/environment.py"
ALLOWED = (ENVIRONMENT, "ops/", "sandbox/")

SANDBOX_IMPORT = re.compile(
    r"^\s*(?:from\s+deploybook\.sandbox\b|import\s+deploybook\.sandbox\b"
    r"|from\s+deploybook\s+import\s+(?:\([^)]*|[^\n]*)\bsandbox\b)",
    re.MULTILINE,
)
_Q = r"""["']sandbox["']"""
SANDBOX_KIND = re.compile(
    rf"\bkind\s*(?:==|!=)\s*{_Q}|{_Q}\s*(?:==|!=)\s*[\w.]*\bkind\b"
    rf"|\bkind\s+(?:not\s+)?in\s*[(\[{{][^)\]}}]*{_Q}|\bSANDBOX\b\s*(?:==|!=)|(?:==|!=)\s*SANDBOX\b"
)


def offenders(pattern: re.Pattern[str]) -> list[str]:
    found = []
    for path in sorted(LIB.rglob("*.py")):
        rel = path.relative_to(LIB).as_posix()
        if rel.startswith(ALLOWED):
            continue
        text = path.read_text(encoding="utf-8")
        for match in pattern.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            found.append(f"lib/deploybook/{rel}:{line}: {match.group(0).strip()}")
    return found


def test_only_the_environment_module_imports_the_sandbox() -> None:
    found = offenders(SANDBOX_IMPORT)
    assert not found, f"import deploybook.sandbox only in {ENVIRONMENT} (or ops/): " + "; ".join(
        found
    )


def test_only_the_environment_module_tests_for_the_sandbox_kind() -> None:
    found = offenders(SANDBOX_KIND)
    assert not found, (
        "ask deploybook.session.environment instead of testing the kind: " + "; ".join(found)
    )


def test_config_is_pure() -> None:
    imports = re.compile(r"^\s*(?:from|import)\s+deploybook\.(\w+)", re.MULTILINE)
    found = [
        f"{path.relative_to(LIB).as_posix()}: deploybook.{name}"
        for path in sorted((LIB / "config").rglob("*.py"))
        for name in imports.findall(path.read_text(encoding="utf-8"))
        if name not in ("config", "errors")
    ]
    assert not found, "config imports only itself and errors: " + "; ".join(found)


def test_the_patterns_catch_what_they_are_for() -> None:
    """Guard the guard: each way of asking is caught, the environment module's own too."""
    for text in (
        "from deploybook.sandbox.stack import sandbox_environment",
        "    from deploybook.sandbox import stack",
        "import deploybook.sandbox.postgres",
        "from deploybook import config, sandbox",
    ):
        assert SANDBOX_IMPORT.search(text), text
    for text in (
        'if params.environment.kind == "sandbox":',
        "if kind != 'sandbox':",
        'if "sandbox" == spec.kind:',
        'if env.kind in ("staging", "sandbox"):',
        "if tree.environment_field('kind') == SANDBOX:",
    ):
        assert SANDBOX_KIND.search(text), text
    assert not SANDBOX_KIND.search('kind: Literal["sandbox", "staging", "production"]')
    own = (LIB / ENVIRONMENT).read_text(encoding="utf-8")
    assert SANDBOX_IMPORT.search(own) and SANDBOX_KIND.search(own)


# --- Size and shape: every module readable at a sitting, no lazy re-export hiding a cycle ---

MAX_LINES = 400


def _modules() -> list[Path]:
    """The library's own modules (not the fixture checkout's files under sandbox/fixture/)."""
    return [p for p in sorted(LIB.rglob("*.py")) if "fixture" not in p.relative_to(LIB).parts]


def test_no_module_is_longer_than_a_sitting() -> None:
    long = [
        f"lib/deploybook/{p.relative_to(LIB).as_posix()}: {n} lines"
        for p in _modules()
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    ]
    assert not long, f"split along a concern (over {MAX_LINES} lines):\n" + "\n".join(long)


def test_no_lazy_re_exports() -> None:
    lazy = re.compile(r"\bimport_module\s*\(|^def __getattr__\s*\(", re.MULTILINE)
    found = [
        f"lib/deploybook/{p.relative_to(LIB).as_posix()}"
        for p in _modules()
        if lazy.search(p.read_text(encoding="utf-8"))
    ]
    assert not found, "import explicitly instead of re-exporting lazily:\n" + "\n".join(found)


def test_every_runbook_has_one_package_and_a_notebook_with_its_source() -> None:
    from deploybook.runbooks import REGISTRY

    root = LIB.parents[1]
    for name, info in REGISTRY.items():
        assert (LIB / "runbooks" / info.package / "__init__.py").is_file(), name
        assert (root / "runbooks" / info.notebook).is_file(), name
        assert (root / "runbooks" / f"{name}.py").is_file(), name
    assert sorted(p.stem for p in (root / "runbooks").glob("*.ipynb")) == sorted(REGISTRY)
