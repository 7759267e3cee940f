"""The local rehearsal stack: embedded PostgreSQL, the stand-in daemon, a fixture checkout.

`up` is idempotent (a running, healthy stack is reused), `down` stops every process it
started and leaves no listening port. State lives in `paths.state_dir()` (outside git):
``state.json`` describes the running stack; the database password sits in a 0600 file.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets as _random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from deploybook.core import paths
from deploybook.core.procs import pid_alive
from deploybook.core.secrets import register
from deploybook.errors import SandboxError

from . import daemon_client, signers
from .postgres import PgCluster  # light: psycopg is imported where a connection is made

# No httpx or psycopg at the top: `deploybook sandbox deploy|scale` need one urllib
# request to the daemon; `up` and `status` import what they use.

ENVS = ("sandbox", "sandbox-production")
PREVIOUS = "v1.3.0"
RELEASE = "v1.4.0"
SERVICES = ("api", "web", "chatmock", "ocr")
_STARTUP_TIMEOUT_S = 30.0


def database_name(env: str) -> str:
    return "americano_" + env.replace("-", "_")


def _state_file(state: Path) -> Path:
    return state / "state.json"


def read_state(state: Path | None = None) -> dict[str, Any] | None:
    """The running stack's description, or None when no stack was brought up."""
    state = state or paths.state_dir()
    try:
        return json.loads(_state_file(state).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def _password(state: Path) -> str:
    return (state / "pg-password").read_text().strip()


@contextlib.contextmanager
def _stack_lock(state: Path) -> Iterator[None]:
    """Serialise `up`/`down` so two callers never start two stacks."""
    state.mkdir(parents=True, exist_ok=True)
    with open(state / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def sandbox_environment(env: str, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Variables a sandbox params file resolves against: URLs of this env's stack.

    The stack's values win over the caller's environment: a sandbox params file must never
    reach a real system. API keys are generated per env unless ``<ENV>_<KEY>`` is set
    (``SANDBOX_OPENAI_API_KEY``), so a test can plant canary values. Returns {} when no
    stack is running.
    """
    environ = os.environ if environ is None else environ
    state_path = (
        Path(environ["DEPLOYBOOK_STATE_DIR"]) if environ.get("DEPLOYBOOK_STATE_DIR") else None
    )
    state = read_state(state_path)
    if not state or env not in state["envs"]:
        return {}
    info = state["envs"][env]
    password = _password(Path(state["state_dir"]))
    db_url = (
        f"postgresql://postgres:{password}@127.0.0.1:{state['postgres']['port']}/{info['database']}"
    )
    register(db_url)
    services = info["services"]
    values = {
        "DATABASE_URL": db_url,
        "CHATMOCK_URL": services["chatmock"],
        "API_URL": services["api"],
        "WEB_URL": services["web"],
        "OCR_URL": services["ocr"],
        "ML_SERVICE_URL": services["api"],
        "AMERICANO_CHECKOUT": state["checkout"],
        "DEPLOYBOOK_WEBHOOK_URL": state["webhook_url"],
        "DEPLOYBOOK_SMTP_HOST": state["smtp"]["host"],
        "DEPLOYBOOK_SMTP_PORT": str(state["smtp"]["port"]),
        "DEPLOYBOOK_STATE_DIR": state["state_dir"],
        "PG_BIN_DIR": state["postgres"]["bin_dir"],
        # Public keys only (the approvers' and the operator's): not secrets, never registered.
        **signers.environment(Path(state["state_dir"])),
    }
    prefix = env.upper().replace("-", "_")
    for key in ("OPENAI_API_KEY", "GEMINI_API_KEY", "GOOGLE_GEMINI_API_KEY"):
        # Each sandbox env has its own keys (as staging and production must); a test plants
        # its own values as e.g. SANDBOX_PRODUCTION_OPENAI_API_KEY.
        values[key] = (
            environ.get(f"{prefix}_{key}") or f"sk-sandbox-{env}-{key.lower()}-{state['token']}"
        )
        register(values[key])
    return values


def _wait_for(
    predicate: Callable[[], bool], what: str, timeout: float = _STARTUP_TIMEOUT_S
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise SandboxError(f"sandbox: {what} did not come up within {timeout:.0f} s")


def _running_cluster(state: dict[str, Any]) -> PgCluster:
    """The PostgreSQL cluster a stack's state file describes (a throwaway: no fsync)."""
    return PgCluster(
        Path(state["postgres"]["datadir"]), port=state["postgres"]["port"], durable=False
    )


def _healthy(state: dict[str, Any]) -> bool:
    if not pid_alive(state.get("daemon_pid")):
        return False
    pg = _running_cluster(state)
    if not pg.running():
        return False
    try:
        daemon_client.admin_at(state["admin_url"], "GET", "/admin/state", timeout=2)
    except SandboxError:
        return False
    return True


def _say(progress: Callable[[str], None] | None, text: str) -> None:
    if progress:
        progress(text)


def up(
    state: Path | None = None,
    *,
    password: str | None = None,
    envs: tuple[str, ...] = ENVS,
    progress: Callable[[str], None] | None = print,
) -> dict[str, Any]:
    """Start (or reuse) the stack and return its state. Idempotent."""
    from deploybook.systems.prisma import migrations
    from deploybook.systems.prisma.apply import apply_pending

    from . import fixture, platform

    state = (state or paths.state_dir()).resolve()
    with _stack_lock(state):
        # The approvers' throwaway keys, made once per state dir (a reused stack too), so
        # sandbox-production's 03 verifies signed approvals as production's does.
        signers.ensure(state)
        current = read_state(state)
        if current and _healthy(current):
            _say(progress, f"sandbox already up (state in {state})")
            return current
        if current:
            _stop(current, state, progress)
        started = time.monotonic()
        checkout_dir = state / "checkout"
        pw_file = state / "pg-password"
        fresh = not (state / "pg" / "PG_VERSION").exists()
        if fresh or not pw_file.exists():
            # The password is fixed when the cluster is created; a later `up` reuses it.
            password = password or os.environ.get("DEPLOYBOOK_SANDBOX_DB_PASSWORD")
            pw_file.write_text(password or _random.token_urlsafe(18))
            pw_file.chmod(0o600)
        password = _password(state)
        register(password)

        # The fixture checkout (git commits) is made while PostgreSQL initialises and starts
        # (initdb and pg_ctl are processes of their own): neither needs the other.
        checkout: Future[None] | None = None
        making = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sandbox-checkout")
        if not (checkout_dir / ".git").is_dir():
            shutil.rmtree(checkout_dir, ignore_errors=True)
            _say(progress, "sandbox: generating the fixture Americano checkout")
            checkout = making.submit(
                fixture.create_checkout, checkout_dir, previous=PREVIOUS, release=RELEASE
            )
        making.shutdown(wait=False)
        try:
            pg = PgCluster(state / "pg", durable=False)
            pg.init(password)
            pg.start()
        finally:
            if checkout is not None:
                checkout.result()  # awaited (and its error raised) whatever happened above
        _say(progress, f"sandbox: PostgreSQL up on 127.0.0.1:{pg.port}")
        env_info: dict[str, Any] = {env: {"database": database_name(env)} for env in envs}
        first, *others = env_info.values()
        # A fresh stack migrates and seeds the first database and copies it for the others
        # (below); a reused cluster keeps the databases it has.
        for info in [first] if fresh else [first, *others]:
            pg.create_database(info["database"])

        config = {
            "envs": {
                env: {
                    "database_url": pg.url(info["database"], password),
                    "initial_version": PREVIOUS,
                }
                for env, info in env_info.items()
            }
        }
        (state / "daemon-config.json").write_text(json.dumps(config))
        (state / "daemon-config.json").chmod(0o600)
        with contextlib.suppress(FileNotFoundError):
            (state / "daemon.json").unlink()
        log = open(state / "daemon.out", "ab")  # noqa: SIM115 - owned by the child
        proc = subprocess.Popen(
            [sys.executable, "-m", "deploybook.sandbox.daemon", "--state-dir", str(state)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()

        def daemon_ready() -> bool:
            if proc.poll() is not None:
                raise SandboxError(
                    f"sandbox: the stand-in daemon exited with {proc.returncode}; "
                    f"see {state / 'daemon.out'}"
                )
            return (state / "daemon.json").exists()

        # Until the state file names it, nothing else can stop this daemon: if anything
        # below fails (a migration, a slow start on a busy machine, a bad daemon.json),
        # kill it here. It starts before the databases are migrated and seeded (its stand-ins
        # connect per request, and nothing reaches them before `up` returns): its start-up
        # overlaps theirs.
        try:
            if fresh:
                url = pg.url(first["database"], password)
                previous_dir = fixture.migrations_at(checkout_dir, PREVIOUS)
                try:
                    apply_pending(url, migrations.read_migrations(previous_dir))
                finally:
                    shutil.rmtree(previous_dir, ignore_errors=True)
                fixture.seed(url)
                _say(progress, f"sandbox: {first['database']} migrated to {PREVIOUS} and seeded")
                for info in others:
                    # Every env starts from the same release and seed: a file-level copy of
                    # the first database is that state, without migrating and seeding again.
                    pg.copy_database(first["database"], info["database"])
                    _say(progress, f"sandbox: {info['database']} copied from {first['database']}")
            _wait_for(daemon_ready, "the stand-in daemon")
            daemon = json.loads((state / "daemon.json").read_text())
            for env in env_info:
                env_info[env]["services"] = daemon["envs"][env]
            new_state = {
                "state_dir": str(state),
                "token": _random.token_hex(4),
                "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "postgres": {
                    "datadir": str(state / "pg"),
                    "port": pg.port,
                    "bin_dir": str(pg.bin_dir()),
                },
                "daemon_pid": proc.pid,
                "admin_url": daemon["admin_url"],
                "webhook_url": daemon["webhook_url"],
                "smtp": daemon["smtp"],
                "checkout": str(checkout_dir),
                "previous": PREVIOUS,
                "release": RELEASE,
                "envs": env_info,
            }
            tmp = _state_file(state).with_suffix(".tmp")
            tmp.write_text(json.dumps(new_state, indent=2))
            os.replace(tmp, _state_file(state))
            # What runbook 01 observes: each env's platform variables and CI's reports.
            seen = {**os.environ, "DEPLOYBOOK_STATE_DIR": str(state)}
            values = {env: sandbox_environment(env, seen) for env in env_info}
            platform.write_env_files(state, checkout_dir, RELEASE, values)
            platform.write_ci_results(checkout_dir)
        except BaseException:
            _kill_daemon(proc)
            raise
        _say(progress, f"sandbox: up in {time.monotonic() - started:.1f} s (state in {state})")
        return new_state


def _kill_daemon(proc: subprocess.Popen[bytes]) -> None:
    """Kill a daemon `up` started but could not hand over (its whole process group)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)


def _stop(current: dict[str, Any], state: Path, progress: Callable[[str], None] | None) -> None:
    pid = current.get("daemon_pid")
    if pid_alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + 5
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if pid_alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
    _running_cluster(current).stop()
    _state_file(state).unlink(missing_ok=True)
    _say(progress, "sandbox: down")


def down(
    state: Path | None = None,
    *,
    purge: bool = False,
    progress: Callable[[str], None] | None = print,
) -> None:
    """Stop every process of the stack; with ``purge`` also delete its data and checkout."""
    state = (state or paths.state_dir()).resolve()
    if not state.exists():
        _say(progress, "sandbox: nothing to stop")
        return
    with _stack_lock(state):
        current = read_state(state)
        if current:
            _stop(current, state, progress)
        else:
            if (state / "pg" / "postmaster.pid").exists():
                PgCluster(state / "pg").stop()
            _say(progress, "sandbox: nothing running")
    if purge:
        shutil.rmtree(state, ignore_errors=True)
        _say(progress, f"sandbox: removed {state}")


def status(state: Path | None = None) -> dict[str, Any]:
    """What is running: postgres, daemon, and each service's health and version."""
    import httpx

    state = (state or paths.state_dir()).resolve()
    current = read_state(state)
    if not current:
        return {"running": False, "state_dir": str(state)}
    report: dict[str, Any] = {"running": _healthy(current), "state_dir": str(state), "envs": {}}
    for env, info in current["envs"].items():
        report["envs"][env] = {}
        for svc, url in info["services"].items():
            path = "/api/health" if svc == "web" else "/health"
            try:
                body = httpx.get(url + path, timeout=2).json()
                report["envs"][env][svc] = {"url": url, "version": body.get("version"), "up": True}
            except (httpx.HTTPError, ValueError):
                report["envs"][env][svc] = {"url": url, "version": None, "up": False}
    return report


def admin(
    path: str,
    payload: dict[str, Any] | None = None,
    *,
    method: str = "POST",
    state: Path | None = None,
) -> Any:
    """Call the stand-in daemon's admin API (version switch, scale, faults, messages)."""
    current = read_state((state or paths.state_dir()).resolve())
    if not current:
        raise SandboxError("sandbox is not running: run `deploybook sandbox up` first")
    return daemon_client.admin_at(current["admin_url"], method, path, payload)
