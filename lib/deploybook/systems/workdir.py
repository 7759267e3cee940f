"""Where a configured command runs: in the checkout, always.

Every command a params file configures — deploy, rollback, scale, flag, build, test,
migrate — is the application's own tooling (``./ops/release.sh``, ``npx prisma``,
``pnpm test``), so it runs in the checkout (``checkout.path``, or a folder inside it),
never in deploybook's own directory. This module is the one place that decides that, and
that refuses clearly, before anything starts, when the checkout or the command is not
there. Running itself (argv only, a timeout, scrubbed output) is `commands.run_command`.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from deploybook.core.secrets import scrub
from deploybook.errors import CommandFailed, ConfigError
from deploybook.systems.commands import CommandResult, render_argv, run_command


def command_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """PATH with this installation's bin first (a script in the checkout may call
    ``deploybook`` or ``python``), plus ``extra`` (secrets reach commands this way)."""
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    return {"PATH": path, **(extra or {})}


def checkout_dir(checkout: str | os.PathLike[str], subdir: str = ".", *, what: str) -> Path:
    """The directory ``what`` runs in: the checkout, or ``subdir`` inside it."""
    root = Path(checkout).expanduser().resolve()
    if not root.is_dir():
        raise CommandFailed(
            f"{what}: cannot run in the checkout {scrub(str(root))}: it does not exist. "
            "Fix: clone the application repository there at the release tag, or point "
            "checkout.path in the params file at the checkout"
        )
    target = (root / subdir).resolve()
    if target != root and root not in target.parents:
        raise ConfigError(
            f"{what}: cwd {scrub(subdir)!r} leaves the checkout {scrub(str(root))}; "
            "give a folder inside it (relative to checkout.path)"
        )
    if not target.is_dir():
        raise CommandFailed(
            f"{what}: folder {scrub(subdir)!r} does not exist in the checkout "
            f"{scrub(str(root))}. Fix: check out the release tag there, or correct the "
            "command's cwd in the params file"
        )
    return target


def missing_command(
    argv: Sequence[str], cwd: Path, what: str, env: Mapping[str, str] | None = None
) -> str | None:
    """Why ``argv`` cannot start in ``cwd`` (not there, not executable, not on PATH), or None.

    A program named with a slash (``./ops/release.sh``) is the checkout's own and is
    looked up relative to it; a bare name (``npx``) on PATH, as the process will see it.
    """
    shown = scrub(shlex.join(str(a) for a in argv))
    return _why_not(str(argv[0]), cwd, what, f"`{shown}`", env)


def _why_not(
    program: str, cwd: Path, what: str, shown: str, env: Mapping[str, str] | None
) -> str | None:
    where = f"the checkout {scrub(str(cwd))}"
    if "/" in program:
        path = cwd / program
        if not path.is_file():
            return (
                f"{what}: {scrub(program)} is not in {where} (looked for {scrub(str(path))}), "
                f"so {shown} cannot run. Configured commands run in the checkout "
                "(params checkout.path). Fix: commit it to the application repository at "
                "the release tag, point checkout.path at a checkout that has it, or correct "
                "the command in the params file"
            )
        if not os.access(path, os.X_OK):
            return (
                f"{what}: {scrub(program)} in {where} is not executable, so {shown} cannot "
                f"run. Fix: `chmod +x {scrub(program)}` and commit it (git keeps the mode)"
            )
        return None
    search = (env or command_env()).get("PATH", os.environ.get("PATH", ""))
    if shutil.which(program, path=search) is None:
        return (
            f"{what}: {scrub(program)!r} is not on PATH, so {shown} cannot run (in {where}). "
            "Fix: install it, or name the checkout's own script as ./path/to/it in the "
            "params file"
        )
    return None


def run_in_checkout(
    what: str,
    template: Sequence[str],
    values: Mapping[str, Any] | None,
    *,
    checkout: str | os.PathLike[str],
    timeout_s: float,
    subdir: str = ".",
    env: Mapping[str, str] | None = None,
    check: bool = True,
) -> CommandResult:
    """Run the configured command ``what`` in the checkout: argv only, with its timeout.

    ``template`` is rendered with ``values`` (None: it is an argv already rendered).
    A missing checkout or command raises `CommandFailed` naming both and the fix, before
    anything starts; otherwise as `commands.run_command`.
    """
    argv = render_argv(template, values) if values is not None else [str(a) for a in template]
    if not argv:
        raise ConfigError(f"{what}: the command is empty; give an argv list in the params file")
    cwd = checkout_dir(checkout, subdir, what=what)
    full_env = command_env(env)
    problem = missing_command(argv, cwd, what, full_env)
    if problem:
        raise CommandFailed(problem)
    return run_command(argv, timeout_s, env=full_env, cwd=cwd, check=check)


def preflight(
    commands: Sequence[tuple[str, Sequence[str], Mapping[str, Any] | None, str]],
    checkout: str | os.PathLike[str],
) -> list[str]:
    """Every problem that would stop one of ``commands`` (what, template, values, subdir)
    from starting in the checkout: checked before a runbook changes anything."""
    if not commands:
        return []
    try:
        checkout_dir(checkout, what=", ".join(dict.fromkeys(c[0] for c in commands)))
    except CommandFailed as exc:
        return [str(exc)]  # every command would fail the same way
    # Grouped by program and folder: one message names every command it stops.
    groups: dict[tuple[str, Path], list[tuple[str, list[str]]]] = {}
    problems: list[str] = []
    for what, template, values, subdir in commands:
        argv = render_argv(template, values) if values is not None else list(template)
        try:
            cwd = checkout_dir(checkout, subdir, what=what)
        except CommandFailed as exc:
            problems.append(str(exc))
            continue
        groups.setdefault((str(argv[0]), cwd), []).append((what, argv))
    for (program, cwd), found in groups.items():
        if len(found) == 1:
            problem = missing_command(found[0][1], cwd, found[0][0])
        else:
            names = ", ".join(dict.fromkeys(what for what, _ in found))
            problem = _why_not(program, cwd, names, "they", None)
        if problem:
            problems.append(problem)
    return problems
