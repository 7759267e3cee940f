"""The client side of the sandbox daemon: start and stop it, read its ``daemon.json`` and
call its admin API (``admin`` plus thin wrappers: versions, replicas, faults, messages).

Re-exported from ``deploybook.sandbox.daemon``, where callers import it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from deploybook.core.procs import pid_alive
from deploybook.errors import SandboxError

from .daemon_state import (
    CONFIG_FILE,
    INFO_FILE,
    LOG_FILE,
    DaemonConfig,
    _read_json,
    _write_json_atomic,
)

log = logging.getLogger("deploybook.sandbox")


def write_config(state_dir: str | Path, envs: Mapping[str, Mapping[str, Any]]) -> Path:
    """Write ``DIR/daemon-config.json`` for ``envs`` ({name: {database_url, initial_version}})."""
    config = DaemonConfig.model_validate({"envs": dict(envs)})
    path = Path(state_dir) / CONFIG_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_json_atomic(path, config.model_dump(), mode=0o600)  # holds database passwords
    return path


def read_daemon_info(state_dir: str | Path) -> dict[str, Any] | None:
    """The running daemon's ``daemon.json`` (URLs, ports, pid), or None if none runs."""
    info = _read_json(Path(state_dir) / INFO_FILE)
    if not isinstance(info, dict) or not pid_alive(int(info.get("pid", 0))):
        return None
    return info


def _log_tail(state_dir: Path, lines: int = 15) -> str:
    try:
        return "\n".join((state_dir / LOG_FILE).read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no daemon.log)"


def start_daemon(
    state_dir: str | Path,
    envs: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    timeout: float = 15.0,
) -> dict[str, Any]:
    """Start the daemon detached (or reuse the one running there); returns its daemon.json.

    ``envs`` (optional) is written to daemon-config.json first.
    """
    state_dir = Path(state_dir).resolve()
    if envs is not None:
        write_config(state_dir, envs)
    if info := read_daemon_info(state_dir):
        return info
    state_dir.mkdir(parents=True, exist_ok=True)
    with open(state_dir / LOG_FILE, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "deploybook.sandbox.daemon", "--state-dir", str(state_dir)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = _read_json(state_dir / INFO_FILE)
        if isinstance(info, dict) and info.get("pid") == proc.pid:
            return info
        if proc.poll() is not None:
            raise SandboxError(
                f"sandbox daemon exited with code {proc.returncode} before it was ready "
                f"(state dir {state_dir}); last lines of {LOG_FILE}:\n{_log_tail(state_dir)}"
            )
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    raise SandboxError(
        f"sandbox daemon not ready after {timeout:.0f}s; last lines:\n{_log_tail(state_dir)}"
    )


def stop_daemon(state_dir: str | Path, *, timeout: float = 5.0) -> bool:
    """SIGTERM the daemon running on ``state_dir`` and wait; False if none was running."""
    info = read_daemon_info(state_dir)
    if not info:
        return False
    pid = int(info["pid"])
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return True
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    (Path(state_dir) / INFO_FILE).unlink(missing_ok=True)
    log.warning("sandbox daemon %d ignored SIGTERM for %.0fs and was killed", pid, timeout)
    return True


def admin(
    state_dir: str | Path, method: str, path: str, body: Any = None, *, timeout: float = 10.0
) -> Any:
    """Call the admin API (e.g. ``admin(d, "POST", "/admin/sandbox/api/version", {...})``)."""
    info = read_daemon_info(state_dir)
    if not info:
        raise SandboxError(f"no sandbox daemon runs on {state_dir}: start it with start_daemon()")
    return admin_at(info["admin_url"], method, path, body, timeout=timeout)


def admin_at(
    admin_url: str, method: str, path: str, body: Any = None, *, timeout: float = 10.0
) -> Any:
    """One admin API request to the daemon at ``admin_url`` (urllib: a `deploybook sandbox`
    command pays no HTTP client import); the JSON answer, or None when it is empty."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(
        admin_url + path,
        data=data,
        method=method,
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")[:500]
        raise SandboxError(
            f"sandbox admin {method} {path} answered HTTP {exc.code}: {detail}"
        ) from exc
    except (urllib.error.URLError, OSError) as exc:
        raise SandboxError(f"sandbox admin {method} {path} failed: {exc}") from exc


def get_state(state_dir: str | Path) -> dict[str, Any]:
    return admin(state_dir, "GET", "/admin/state")


def set_version(state_dir: str | Path, env: str, service: str, version: str) -> dict[str, Any]:
    return admin(state_dir, "POST", f"/admin/{env}/{service}/version", {"version": version})


def scale(state_dir: str | Path, env: str, service: str, replicas: int) -> dict[str, Any]:
    return admin(state_dir, "POST", f"/admin/{env}/{service}/scale", {"replicas": replicas})


def set_fault(state_dir: str | Path, env: str, service: str, **fault: Any) -> dict[str, Any]:
    """Inject a fault: error_rate, status, latency_ms, down, paths, malformed."""
    return admin(state_dir, "POST", f"/admin/{env}/{service}/fault", fault)


def clear_fault(state_dir: str | Path, env: str, service: str) -> dict[str, Any]:
    return admin(state_dir, "DELETE", f"/admin/{env}/{service}/fault")


def messages(state_dir: str | Path) -> dict[str, list[dict[str, Any]]]:
    return admin(state_dir, "GET", "/admin/messages")


def clear_messages(state_dir: str | Path) -> dict[str, Any]:
    return admin(state_dir, "DELETE", "/admin/messages")
