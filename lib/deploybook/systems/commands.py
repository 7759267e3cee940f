"""Running the configured deploy, scale, flag and test commands — safely.

Commands come from the params file as argv templates (``["kubectl", "set", "image",
"deploy/{service}", "{service}=registry/app:{version}"]``), never as shell strings. Values
are validated *before* they are substituted, the result is run without a shell, in its own
process group (so a timeout kills everything it started), and every byte of output is
scrubbed of known secrets before anyone sees it.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import signal
import string
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deploybook.config.models import SEMVER
from deploybook.core import procs
from deploybook.core.secrets import scrub
from deploybook.errors import CommandFailed, ConfigError

NAME = re.compile(r"^[a-z][a-z0-9-]{0,40}$")
# Anything a shell, a glob or a format string could read as syntax. Values never reach a
# shell here, but a configured command may itself be `sh -c` or `ssh host ...`.
_SHELL_META = set(";&|$`<>(){}[]*?!~'\"\\#%^\n\r\t\0 ")
# What a free-form value (a path, an image reference, a flag name) may contain.
_PLAIN = re.compile(r"^[A-Za-z0-9._:/=@+,-]{1,256}$")
_KILL_GRACE_S = 2.0
_TAIL_LINES = 3


# --- validation ------------------------------------------------------------------------


def _semver(key: str, value: str) -> str:
    if not SEMVER.match(value):
        raise ConfigError(f"{key}={value!r} is not a SemVer release tag like v1.4.0 (vX.Y.Z)")
    return value


def _name(key: str, value: str) -> str:
    if not NAME.match(value):
        raise ConfigError(
            f"{key}={value!r} is not a valid name: lowercase letters, digits and '-', "
            "starting with a letter, at most 41 characters (e.g. 'api', 'production')"
        )
    return value


def _replicas(key: str, value: str) -> str:
    if not re.fullmatch(r"\d{1,3}", value) or not 0 <= int(value) <= 100:
        raise ConfigError(f"{key}={value!r} is not a replica count: a whole number 0..100")
    return str(int(value))


def _plain(key: str, value: str) -> str:
    if not _PLAIN.match(value) or value.startswith("-"):
        raise ConfigError(
            f"{key}={value!r} is refused: only letters, digits and ._:/=@+,- are allowed "
            "in a command value, and it must not start with '-'"
        )
    return value


# A registry, not an if-chain: a new kind of placeholder is a new entry here.
VALIDATORS: dict[str, Callable[[str, str], str]] = {
    "version": _semver,
    "release": _semver,
    "previous_version": _semver,
    "previous_release": _semver,
    "service": _name,
    "env": _name,
    "environment": _name,
    "replicas": _replicas,
}
# Placeholders named `<anything>_<suffix>` use the suffix's rule (`api_version`, `web_replicas`).
_SUFFIX_RULES = ("version", "release", "service", "env", "replicas")


def _validator_for(key: str) -> Callable[[str, str], str]:
    if key in VALIDATORS:
        return VALIDATORS[key]
    suffix = key.rsplit("_", 1)[-1]
    if suffix in _SUFFIX_RULES:
        return VALIDATORS[suffix]
    return _plain


def validate_value(key: str, value: Any) -> str:
    """Check one placeholder value by its name's rule; hostile values raise ConfigError."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ConfigError(f"{key}={value!r} must be a string or an integer")
    text = str(value)
    if not text:
        raise ConfigError(f"{key} is empty: every placeholder needs a value")
    bad = sorted(set(text) & _SHELL_META)
    if bad:
        raise ConfigError(
            f"{key}={scrub(text)!r} is refused: it contains shell metacharacters "
            f"{''.join(bad)!r}; pass a plain value"
        )
    if ".." in text.split("/") or text.startswith("..") or "/.." in text:
        raise ConfigError(f"{key}={scrub(text)!r} is refused: path traversal ('..') is not allowed")
    return _validator_for(key)(key, text)


def _placeholders(element: str, where: str) -> list[str]:
    """The field names in one template element; only bare ``{name}`` fields are allowed."""
    names = []
    try:
        parsed = list(string.Formatter().parse(element))
    except ValueError as exc:
        raise ConfigError(f"{where}: {element!r} is not a valid template ({exc})") from None
    for _literal, field, spec, conversion in parsed:
        if field is None:
            continue
        if not field.isidentifier() or spec or conversion:
            raise ConfigError(
                f"{where}: placeholder {{{field}{'!' + conversion if conversion else ''}"
                f"{':' + spec if spec else ''}}} in {element!r} is not allowed: use a bare "
                "{name} such as {version} or {service}"
            )
        names.append(field)
    return names


class _StrictValues(dict):
    """A mapping for str.format_map that names the missing placeholder instead of KeyError."""

    def __missing__(self, key: str) -> str:
        raise ConfigError(
            f"argv template uses placeholder {{{key}}} but no value was given for it; "
            f"known values: {', '.join(sorted(self)) or '(none)'}"
        )


def render_argv(template: Sequence[str], values: Mapping[str, Any]) -> list[str]:
    """Fill an argv template from validated values; a shell string or bad value is refused.

    Only the placeholders the template uses are validated, so a caller may pass its whole
    context (operator names with spaces included) without tripping over unused values.
    """
    if isinstance(template, str) or not isinstance(template, Sequence) or not template:
        raise ConfigError(
            f"argv template {scrub(str(template))!r} must be a non-empty list of strings "
            '(e.g. ["deploy-tool", "{service}", "{version}"]), never a shell string'
        )
    used: list[str] = []
    for i, element in enumerate(template):
        if not isinstance(element, str):
            raise ConfigError(f"argv template element {i} ({element!r}) must be a string")
        used.extend(_placeholders(element, f"argv template element {i}"))
    checked = _StrictValues()
    for key in dict.fromkeys(used):
        if key not in values:
            checked.__missing__(key)
        checked[key] = validate_value(key, values[key])
    return [element.format_map(checked) for element in template]


# --- running ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CommandResult:
    """What a command did: its argv, exit code, scrubbed output and how long it took."""

    argv: list[str]
    returncode: int | None
    stdout: str
    stderr: str
    duration_s: float
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out

    @property
    def command(self) -> str:
        """The argv as one copy-pasteable, scrubbed line for display."""
        return scrub(shlex.join(self.argv))

    def summary(self) -> str:
        outcome = "timed out" if self.timed_out else f"exit {self.returncode}"
        return f"`{self.command}` {outcome} in {self.duration_s:.2f}s"

    def as_dict(self) -> dict[str, Any]:
        return {
            "argv": list(self.argv),
            "returncode": self.returncode,
            "stdout": self.stdout,
            "stderr": self.stderr,
            "duration_s": round(self.duration_s, 3),
            "timed_out": self.timed_out,
        }

    def __str__(self) -> str:
        parts = [self.summary()]
        if self.stdout.strip():
            parts.append(self.stdout.rstrip())
        if self.stderr.strip():
            parts.append("[stderr]\n" + self.stderr.rstrip())
        return "\n".join(parts)


def _excerpt(text: str) -> str:
    """First and last lines of an output, enough to say why without flooding the notebook."""
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) <= 2 * _TAIL_LINES:
        return "\n".join(lines)
    skipped = len(lines) - 2 * _TAIL_LINES
    return "\n".join([*lines[:_TAIL_LINES], f"… ({skipped} more lines)", *lines[-_TAIL_LINES:]])


def _kill_tree(proc: subprocess.Popen[str]) -> None:
    """SIGTERM the command and its descendants, then SIGKILL whatever is left after a grace.

    The tree is gathered before each signal: once the command dies its children are
    re-parented and could no longer be found from it.
    """
    tree: set[int] = set()
    for sig in (signal.SIGTERM, signal.SIGKILL):
        tree |= {proc.pid, *procs.descendants(proc.pid)}
        for pid in tree:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        try:
            proc.wait(timeout=_KILL_GRACE_S)
        except subprocess.TimeoutExpired:
            continue
        # The command is gone; descendants that ignored SIGTERM may remain.
        for pid in tree:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        return


def run_command(
    argv: Sequence[str],
    timeout_s: float,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    *,
    check: bool = True,
) -> CommandResult:
    """Run argv without a shell, with a timeout; scrub its output.

    The command stays in the caller's process group (a kernel's, which the runner kills if
    the kernel dies): a run that dies takes its commands with it, and the lock is not taken
    over while one still runs. A timeout kills the command's own process tree.

    ``env`` is added on top of the current environment (secrets reach commands this way,
    never through argv). With ``check`` (the default) a non-zero exit or a timeout raises
    `CommandFailed`; a missing executable always does. The failing `CommandResult` is on
    the exception as ``.result``.
    """
    argv = [str(a) for a in argv]
    if not argv:
        raise ConfigError("run_command: argv is empty")
    if timeout_s <= 0:
        raise ConfigError(f"run_command: timeout_s must be positive, got {timeout_s}")
    shown = scrub(shlex.join(argv))
    full_env = {**os.environ, **(env or {})}
    started = time.monotonic()
    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
            env=full_env,
            cwd=cwd,
        )
    except FileNotFoundError:
        where = f" (cwd {cwd})" if cwd and not Path(cwd).is_dir() else " on PATH"
        raise CommandFailed(
            f"`{shown}`: executable {scrub(argv[0])!r} not found{where}; install it or fix "
            "the command in the params file"
        ) from None
    except PermissionError as exc:
        raise CommandFailed(
            f"`{shown}`: not allowed to run {scrub(argv[0])!r} ({exc.strerror})"
        ) from None
    except OSError as exc:
        raise CommandFailed(f"`{shown}`: could not start ({exc.strerror or exc})") from None

    timed_out = False
    try:
        stdout, stderr = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        timed_out = True
        _kill_tree(proc)
        try:
            stdout, stderr = proc.communicate(timeout=_KILL_GRACE_S)
        except subprocess.TimeoutExpired:
            # A descendant escaped the tree (a double fork) and still holds the pipes open.
            proc.kill()
            for stream in (proc.stdout, proc.stderr):
                if stream:
                    stream.close()
            proc.wait()
            stdout, stderr = "", "(output lost: a descendant kept the pipes open)"
    result = CommandResult(
        argv=[scrub(a) for a in argv],
        returncode=proc.returncode,
        stdout=scrub(stdout or ""),
        stderr=scrub(stderr or ""),
        duration_s=time.monotonic() - started,
        timed_out=timed_out,
    )
    if check and not result.ok:
        if timed_out:
            message = f"`{shown}` timed out after {timeout_s:g}s; it and its children were killed"
        else:
            message = f"`{shown}` exited {result.returncode} after {result.duration_s:.1f}s"
        detail = _excerpt(result.stderr) or _excerpt(result.stdout)
        if detail:
            message += "\n" + detail
        error = CommandFailed(message)
        error.result = result  # type: ignore[attr-defined]
        raise error
    return result


def run_template(
    template: Sequence[str],
    values: Mapping[str, Any],
    timeout_s: float,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    *,
    check: bool = True,
) -> CommandResult:
    """Render a configured argv template and run it: the one call a rollout step makes."""
    return run_command(render_argv(template, values), timeout_s, env=env, cwd=cwd, check=check)
