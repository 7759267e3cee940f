"""Debian packages some tests need (chromium, prometheus), installed with apt on first use.

Where apt cannot install one (no root, no network) the test is skipped with the reason,
except where it must run — in CI — where it fails instead, so a missing package can never
turn a test into a silent skip.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile

import pytest


def unavailable(reason: str, required: bool) -> None:
    """Fail when the test is required to run here, else skip; either way with the reason."""
    if required:
        pytest.fail(reason)
    pytest.skip(reason)


def debian_binary(package: str, binary: str, *, required: bool, recommends: bool = True) -> str:
    """The path of ``binary`` from Debian's ``package``, installing it with apt (as root, or
    through passwordless sudo as on CI runners) when it is missing."""
    if found := _present(binary):
        return found
    # pytest-xdist workers may need packages at the same moment: apt takes one at a time
    # (a second apt-get fails on dpkg's lock instead of waiting), so they queue here.
    with open(os.path.join(tempfile.gettempdir(), "deploybook-tests-apt.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _install(package, binary, required=required, recommends=recommends)


def _present(binary: str) -> str | None:
    """Where ``binary`` is: on PATH by its name, or at its own path."""
    return shutil.which(os.path.basename(binary)) or (binary if os.path.exists(binary) else None)


def _install(package: str, binary: str, *, required: bool, recommends: bool) -> str:
    if found := _present(binary):  # another worker installed it while this one waited
        return found
    sudo = "" if os.geteuid() == 0 else "sudo -n env "
    if sudo and not shutil.which("sudo"):
        unavailable(
            f"{package} is missing and installing it needs root: apt-get install {package}",
            required,
        )
    extra = "" if recommends else " --no-install-recommends"
    try:
        proc = subprocess.run(
            f"{sudo}apt-get update -qq && "
            f"{sudo}DEBIAN_FRONTEND=noninteractive apt-get install -y -qq{extra} {package}",
            shell=True,
            capture_output=True,
            text=True,
            timeout=300,
        )
    except subprocess.TimeoutExpired:
        unavailable(f"apt-get install {package} timed out after 300 s (no network?)", required)
    if proc.returncode != 0 or not os.path.exists(binary):
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        unavailable(
            f"could not install {package} with apt (no network?): {' | '.join(tail)}", required
        )
    return binary
