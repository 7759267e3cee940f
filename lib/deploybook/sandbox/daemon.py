"""The sandbox daemon: every env's stand-in services, the webhook and SMTP receivers and
the admin API in one process (``python -m deploybook.sandbox.daemon --state-dir DIR``).

The bottom of this module holds the client side other modules call: ``start_daemon``,
``stop_daemon``, ``read_daemon_info`` and ``admin`` (plus thin wrappers around it).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import prometheus_client
from pydantic import BaseModel, Field, ValidationError, field_validator

from ..errors import ConfigError, SandboxError
from ..procs import pid_alive
from ..secrets import ScrubbingFilter, register
from .receivers import (
    HttpListener,
    MessageStore,
    Request,
    Response,
    WebhookReceiver,
    json_response,
    start_smtp,
)
from .services import SERVICES, Fault, ServiceInstance

log = logging.getLogger("deploybook.sandbox")

CONFIG_FILE = "daemon-config.json"
INFO_FILE = "daemon.json"
VERSIONS_FILE = "versions.json"
LOG_FILE = "daemon.log"
LOCK_FILE = "daemon.lock"
PREVIOUS_RELEASE = "v1.3.0"
_VERSION = re.compile(r"^v\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.+-]+)?$")


class EnvConfig(BaseModel):
    database_url: str | None = None
    initial_version: str = PREVIOUS_RELEASE


class DaemonConfig(BaseModel):
    """``DIR/daemon-config.json``: which envs to stand up and where their databases are."""

    envs: dict[str, EnvConfig] = Field(min_length=1)

    @field_validator("envs")
    @classmethod
    def _env_names(cls, envs: dict[str, EnvConfig]) -> dict[str, EnvConfig]:
        for name in envs:
            if not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", name):
                raise ValueError(f"env name {name!r} must be lowercase letters, digits, - or _")
        return envs


def load_config(state_dir: Path) -> DaemonConfig:
    path = state_dir / CONFIG_FILE
    try:
        return DaemonConfig.model_validate_json(path.read_bytes())
    except FileNotFoundError as exc:
        raise ConfigError(
            f"{path} is missing: write it with deploybook.sandbox.daemon.write_config"
        ) from exc
    except ValidationError as exc:
        raise ConfigError(
            f"{path} is invalid: expected {{'envs': {{name: {{database_url}}}}}}: {exc}"
        ) from exc


def _write_json_atomic(path: Path, data: Any, mode: int = 0o644) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as out:
        out.write(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None


class Daemon:
    """Owns the listeners and the state; the admin API changes the state."""

    def __init__(self, state_dir: Path, config: DaemonConfig) -> None:
        self.state_dir = state_dir
        self.store = MessageStore()
        saved = (_read_json(state_dir / VERSIONS_FILE) or {}).get("envs", {})
        self.services: dict[str, dict[str, ServiceInstance]] = {}
        self.listeners: dict[tuple[str, str], HttpListener] = {}
        for env, cfg in config.envs.items():
            self.services[env] = {}
            for name in SERVICES:
                was = saved.get(env, {}).get(name, {})
                svc = ServiceInstance(
                    env,
                    name,
                    was.get("version", cfg.initial_version),
                    int(was.get("replicas", 1)),
                    cfg.database_url,
                )
                self.services[env][name] = svc
                self.listeners[env, name] = HttpListener(f"{env}/{name}", svc.handle)
        self.admin = HttpListener("admin", self.handle_admin)
        self.webhook = HttpListener("webhook", WebhookReceiver(self.store))
        self.smtp: asyncio.Server | None = None

    def info(self) -> dict[str, Any]:
        return {
            "pid": os.getpid(),
            "admin_url": self.admin.url,
            "webhook_url": f"{self.webhook.url}/hooks/incoming",
            "smtp": {
                "host": "127.0.0.1",
                "port": self.smtp.sockets[0].getsockname()[1] if self.smtp else None,
            },
            "envs": {
                env: {n: self.listeners[env, n].url for n in svcs}
                for env, svcs in self.services.items()
            },
        }

    def save_versions(self) -> None:
        envs = {
            env: {n: {"version": s.version, "replicas": s.replicas} for n, s in svcs.items()}
            for env, svcs in self.services.items()
        }
        _write_json_atomic(self.state_dir / VERSIONS_FILE, {"envs": envs})

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        info_path = self.state_dir / INFO_FILE
        try:
            for listener in [*self.listeners.values(), self.admin, self.webhook]:
                await listener.open()
            self.smtp = await start_smtp(self.store)
            for env, svcs in self.services.items():
                for svc in svcs.values():
                    svc.peers = {n: self.listeners[env, n].url for n in SERVICES}
            self.save_versions()
            _write_json_atomic(info_path, self.info())
            log.info("ready: admin %s, %d envs", self.admin.url, len(self.services))
            await stop.wait()
            log.info("stopping on signal")
        finally:
            info = _read_json(info_path)
            if info and info.get("pid") == os.getpid():
                info_path.unlink(missing_ok=True)
            for listener in [*self.listeners.values(), self.admin, self.webhook]:
                await listener.close()
            if self.smtp:
                self.smtp.close()
            log.info("stopped")

    # --- admin API ------------------------------------------------------------------------

    async def handle_admin(self, req: Request) -> Response:
        parts = req.path.strip("/").split("/")
        key = (req.method, "/".join(parts) if len(parts) != 4 else f"admin/*/*/{parts[3]}")
        handler = {
            ("GET", "health"): self._health,
            ("GET", "admin/state"): self._state,
            ("GET", "admin/messages"): self._messages,
            ("DELETE", "admin/messages"): self._clear_messages,
            ("POST", "admin/*/*/version"): self._version,
            ("POST", "admin/*/*/scale"): self._scale,
            ("POST", "admin/*/*/fault"): self._fault,
            ("DELETE", "admin/*/*/fault"): self._clear_fault,
        }.get(key)
        if handler is None:
            return json_response({"detail": f"no admin route {req.method} {req.path}"}, 404)
        if len(parts) == 4:
            env, name = parts[1], parts[2]
            if env not in self.services or name not in SERVICES:
                envs, names = ", ".join(self.services), ", ".join(SERVICES)
                return json_response(
                    {"detail": f"unknown {env}/{name}: envs {envs}; services {names}"},
                    404,
                )
            try:
                body = req.json() if req.body else {}
            except (ValueError, UnicodeDecodeError):
                return json_response({"detail": "body must be JSON"}, 422)
            if not isinstance(body, dict):
                return json_response({"detail": "body must be a JSON object"}, 422)
            return await handler(env, name, body)
        return await handler()

    async def _health(self) -> Response:
        return json_response({"status": "healthy", "pid": os.getpid()})

    async def _state(self) -> Response:
        envs = {env: {n: s.state() for n, s in svcs.items()} for env, svcs in self.services.items()}
        return json_response({"envs": envs})

    async def _messages(self) -> Response:
        return json_response(self.store.as_dict())

    async def _clear_messages(self) -> Response:
        self.store.clear()
        return json_response({"cleared": True})

    def _answer(self, env: str, name: str, **extra: Any) -> Response:
        return json_response(
            {"env": env, "service": name, **self.services[env][name].state(), **extra}
        )

    async def _version(self, env: str, name: str, body: dict) -> Response:
        version = body.get("version")
        if not isinstance(version, str) or not _VERSION.match(version):
            return json_response({"detail": f"version must look like v1.4.0, got {version!r}"}, 422)
        svc = self.services[env][name]
        previous = svc.version
        svc.set_version(version)
        self.save_versions()
        log.info("%s/%s: version %s -> %s", env, name, previous, version)
        if svc.fault and svc.fault.down:
            await self._apply_down(env, name, svc.fault.active(version))
        return self._answer(env, name, previous_version=previous)

    async def _scale(self, env: str, name: str, body: dict) -> Response:
        replicas = body.get("replicas")
        if not isinstance(replicas, int) or isinstance(replicas, bool) or not 1 <= replicas <= 100:
            return json_response(
                {"detail": f"replicas must be an integer 1..100, got {replicas!r}"}, 422
            )
        svc = self.services[env][name]
        previous = svc.replicas
        svc.set_replicas(replicas)
        self.save_versions()
        log.info("%s/%s: replicas %d -> %d", env, name, previous, replicas)
        return self._answer(env, name, previous_replicas=previous)

    async def _fault(self, env: str, name: str, body: dict) -> Response:
        try:
            fault = Fault.model_validate(body)
        except ValidationError as exc:
            return json_response({"detail": json.loads(exc.json(include_url=False))}, 422)
        self.services[env][name].fault = fault if fault.degrades else None
        log.info("%s/%s: fault %s", env, name, fault.model_dump())
        return await self._apply_down(env, name, fault.down)

    async def _clear_fault(self, env: str, name: str, body: dict) -> Response:
        self.services[env][name].fault = None
        log.info("%s/%s: fault cleared", env, name)
        return await self._apply_down(env, name, False)

    async def _apply_down(self, env: str, name: str, down: bool) -> Response:
        listener = self.listeners[env, name]
        if down:
            await listener.close()
        else:
            try:
                await listener.open()
            except OSError as exc:
                msg = f"cannot re-open {env}/{name} on port {listener.port}: {exc.strerror}"
                return json_response({"detail": msg}, 409)
        return self._answer(env, name, listening=listener.is_open)


def _setup_logging(state_dir: Path) -> None:
    handler = logging.FileHandler(state_dir / LOG_FILE)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(ScrubbingFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m deploybook.sandbox.daemon", description=__doc__
    )
    parser.add_argument(
        "--state-dir", required=True, type=Path, help="holds daemon-config.json etc."
    )
    state_dir = parser.parse_args(argv).state_dir.resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    _setup_logging(state_dir)
    lock = open(state_dir / LOCK_FILE, "w")  # noqa: SIM115 - held for the process lifetime
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        msg = f"another sandbox daemon already runs on {state_dir} (see {INFO_FILE})"
        log.error(msg)
        print(msg, file=sys.stderr)
        return 3
    try:
        config = load_config(state_dir)
    except ConfigError as exc:
        log.error("%s", exc)
        print(exc, file=sys.stderr)
        return 2
    for env in config.envs.values():
        register(env.database_url)  # its password never reaches daemon.log
    (state_dir / INFO_FILE).unlink(missing_ok=True)  # stale, from a daemon that was killed
    prometheus_client.disable_created_metrics()  # no *_created series: smaller scrapes
    log.info("starting pid %d in %s", os.getpid(), state_dir)
    try:
        asyncio.run(Daemon(state_dir, config).run())
    except Exception:
        log.exception("sandbox daemon failed")
        return 1
    return 0


# --- client side ------------------------------------------------------------------------


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
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(
        info["admin_url"] + path,
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


if __name__ == "__main__":
    sys.exit(main())
