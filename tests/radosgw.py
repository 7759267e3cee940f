"""A real S3 endpoint for tests: Debian's Ceph radosgw on 127.0.0.1 (one monitor, one OSD).

Debian has no MinIO, and a mock (moto) would prove only that we call boto3, not that a real
S3 server keeps our objects and metadata. One monitor and one bluestore OSD on a sparse
2 GiB file, authentication off, pool size 1: about 20 s on two cores. Everything lives in
one temporary folder; every daemon is started in the foreground by us and killed by us
(radosgw ignores SIGTERM while its pools settle, so SIGKILL).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.debian import debian_binary
from tests.http_stub import free_port

PACKAGES = (("ceph-mon", "/usr/bin/ceph-mon"), ("ceph-osd", "/usr/bin/ceph-osd"))
RGW = ("radosgw", "/usr/bin/radosgw")

_CONF = """[global]
fsid = {fsid}
mon host = [v1:127.0.0.1:{mon_port}]
public addr = 127.0.0.1
auth cluster required = none
auth service required = none
auth client required = none
auth allow insecure global id reclaim = true
ms bind msgr2 = false
run dir = {base}/run
admin socket = {base}/run/$name.asok
log file = {base}/log/$name.log
pid file = {base}/run/$name.pid
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon allow pool size one = true
mon warn on pool no redundancy = false
mon max pg per osd = 1000
osd crush chooseleaf type = 0
[mon]
mon data = {base}/mon
mon initial members = a
[osd]
osd data = {base}/osd
osd objectstore = bluestore
bluestore block path = {base}/osd.block
bluestore block create = true
bluestore block size = 2147483648
bluestore fsck on mount = false
osd memory target = 939524096
# The OSD's own crush/class updates at start race its monmap (refused as "wrong fsid" in
# about one start in three here): the test places it in the crush map itself instead.
osd crush update on start = false
osd class update on start = false
[client.rgw]
rgw frontends = beast endpoint=127.0.0.1:{rgw_port}
rgw data = {base}/rgw
rgw dns name = 127.0.0.1
"""


@dataclass(frozen=True)
class S3Endpoint:
    """Where the running radosgw answers and the one user's keys (test values, not secrets)."""

    url: str
    access_key: str
    secret_key: str
    base: Path


def install(required: bool) -> None:
    """Debian's ceph-mon, ceph-osd and radosgw, with apt when missing (fail in CI)."""
    for package, binary in (*PACKAGES, RGW):
        debian_binary(package, binary, required=required)


def _run(args: list[str], conf: Path, timeout: float = 60) -> str:
    proc = subprocess.run(
        [*args, "-c", str(conf)], capture_output=True, text=True, timeout=timeout, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} exited {proc.returncode}: {proc.stderr[-800:]}")
    return proc.stdout


def _wait(
    what: str, ready: Callable[[], bool], deadline: float, procs: list[subprocess.Popen]
) -> None:
    """Poll ``ready()`` until it is true; fail naming ``what`` when time is up or a daemon died."""
    while time.monotonic() < deadline:
        for proc in procs:
            if proc.poll() is not None:
                raise RuntimeError(f"{what}: {proc.args[0]} exited {proc.returncode}")
        with contextlib.suppress(Exception):
            if ready():
                return
        time.sleep(0.3)
    raise RuntimeError(f"{what}: not ready in time")


def _osd_up(conf: Path) -> bool:
    out = _run(["ceph", "osd", "stat", "--format", "json"], conf, 10)
    return '"num_up_osds":1' in out.replace(" ", "")


def _log_tail(base: Path, lines: int = 15) -> str:
    """The daemons' last words, for a start-up failure's message."""
    text = (base / "log" / "daemons.out").read_text(errors="replace").splitlines()
    return "\n".join(text[-lines:])


def _http_ok(url: str) -> bool:
    import urllib.request

    with urllib.request.urlopen(url, timeout=2) as answer:  # noqa: S310 - loopback only
        return answer.status == 200


def _bring_up(
    base: Path,
    conf: Path,
    fsid: str,
    rgw_port: int,
    start: Callable[..., None],
    procs: list[subprocess.Popen],
    deadline: float,
) -> tuple[str, str, str]:
    """Monitor, then the OSD once the monitor answers, then radosgw and its one user."""
    mon_addr = conf.read_text().split("mon host = ")[1].split("\n")[0].strip("[]")
    _run(["monmaptool", "--create", "--fsid", fsid, "--addv", "a", f"[{mon_addr}]",
          str(base / "monmap")], conf)  # fmt: skip
    _run(["ceph-mon", "--mkfs", "-i", "a", "--monmap", str(base / "monmap")], conf)
    start("ceph-mon", "-i", "a")
    osd_uuid = str(uuid.uuid4())
    _wait("ceph-mon", lambda: bool(_run(["ceph", "osd", "new", osd_uuid], conf, 10)),
          deadline, procs)  # fmt: skip
    _run(["ceph-osd", "-i", "0", "--mkfs", "--osd-uuid", osd_uuid], conf, timeout=120)
    crush = ["ceph", "osd", "crush", "add", "osd.0", "1.0", "root=default", "host=localhost"]
    # A young monitor refuses some clients' first commands (EPERM, "wrong fsid"): retried.
    _wait("crush", lambda: _run(crush, conf, 10) is not None, deadline, procs)
    for attempt in range(3):
        # Should the OSD still exit at start, one more try with the same data.
        start("ceph-osd", "-i", "0")
        try:
            _wait("ceph-osd", lambda: _osd_up(conf), deadline, procs)
            break
        except RuntimeError:
            if procs[-1].poll() is None or attempt == 2:
                raise
            procs.pop()
    start("radosgw", "-n", "client.rgw")
    url = f"http://127.0.0.1:{rgw_port}"
    _wait("radosgw", lambda: _http_ok(url), deadline, procs)
    access, secret = "DEPLOYBOOKTEST", uuid.uuid4().hex
    admin = ["radosgw-admin", "-n", "client.rgw", "user"]
    create = [*admin, "create", "--uid", "deploybook", "--display-name", "deploybook tests",
              "--access-key", access, "--secret-key", secret]  # fmt: skip

    def user() -> bool:
        try:
            return _run(create, conf, 30) is not None
        except RuntimeError:
            return access in _run([*admin, "info", "--uid", "deploybook"], conf, 30)

    _wait("radosgw-admin user create", user, deadline, procs)
    return url, access, secret


@contextlib.contextmanager
def radosgw(base: Path, timeout: float = 90) -> Iterator[S3Endpoint]:
    """Start monitor, OSD and radosgw under ``base``; yield the endpoint; kill all three."""
    for sub in ("run", "log", "mon", "osd", "rgw"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    fsid, rgw_port = str(uuid.uuid4()), free_port()
    conf = base / "ceph.conf"
    conf.write_text(_CONF.format(fsid=fsid, mon_port=free_port(), rgw_port=rgw_port, base=base))
    procs: list[subprocess.Popen] = []
    logs = open(base / "log" / "daemons.out", "ab")  # noqa: SIM115 - closed in finally
    deadline = time.monotonic() + timeout

    def start(*args: str) -> None:
        procs.append(
            subprocess.Popen(
                [*args, "-f", "-c", str(conf)],
                stdout=logs,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )

    try:
        try:
            url, access, secret = _bring_up(base, conf, fsid, rgw_port, start, procs, deadline)
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}\n{_log_tail(base)}") from None
        yield S3Endpoint(url, access, secret, base)
    finally:
        for proc in reversed(procs):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        logs.close()
        if os.environ.get("KEEP_CEPH") is None:
            shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def s3() -> Iterator[S3Endpoint]:
    """One radosgw for the session (a conftest plugin): ~20 s to start, shared by the
    object-storage and the Airflow tests, killed at the session's end."""
    install(required=bool(os.environ.get("CI")))
    with radosgw(Path(tempfile.mkdtemp(prefix="deploybook-ceph-"))) as endpoint:
        yield endpoint
