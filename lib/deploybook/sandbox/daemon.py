"""The sandbox daemon: every env's stand-in services, the webhook and SMTP receivers and
the admin API in one process (``python -m deploybook.sandbox.daemon --state-dir DIR``).

The client side other modules call (``start_daemon``, ``stop_daemon``,
``read_daemon_info``, ``admin`` and thin wrappers around it) lives in ``daemon_client``
and the state directory's layout in ``daemon_state``; both are re-exported here.
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import json
import logging
import os
import re
import signal
import sys
from pathlib import Path
from typing import Any

import prometheus_client
from pydantic import ValidationError

from deploybook.core.secrets import ScrubbingFilter, register
from deploybook.errors import ConfigError

from .daemon_client import (
    admin,
    clear_fault,
    clear_messages,
    get_state,
    messages,
    read_daemon_info,
    scale,
    set_fault,
    set_version,
    start_daemon,
    stop_daemon,
    write_config,
)
from .daemon_state import (
    CONFIG_FILE,
    INFO_FILE,
    LOCK_FILE,
    LOG_FILE,
    PREVIOUS_RELEASE,
    VERSIONS_FILE,
    DaemonConfig,
    EnvConfig,
    _read_json,
    _write_json_atomic,
)
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

__all__ = [
    "CONFIG_FILE",
    "INFO_FILE",
    "LOCK_FILE",
    "LOG_FILE",
    "PREVIOUS_RELEASE",
    "VERSIONS_FILE",
    "Daemon",
    "DaemonConfig",
    "EnvConfig",
    "admin",
    "clear_fault",
    "clear_messages",
    "get_state",
    "load_config",
    "main",
    "messages",
    "read_daemon_info",
    "scale",
    "set_fault",
    "set_version",
    "start_daemon",
    "stop_daemon",
    "write_config",
]

log = logging.getLogger("deploybook.sandbox")
_VERSION = re.compile(r"^v[0-9]+\.[0-9]+\.[0-9]+(?:[-+][0-9A-Za-z.+-]+)?\Z")


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


if __name__ == "__main__":
    sys.exit(main())
