"""The sandbox stack: up is idempotent, healthy within seconds; down leaves nothing behind."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import httpx

from deploybook.sandbox import stack


def _refused(url: str) -> bool:
    parsed = urlparse(url)
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex((parsed.hostname, parsed.port)) != 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split(")", 1)[1].split()[0] != "Z"


def test_up_twice_then_down_leaves_no_process(tmp_path_factory) -> None:
    state_dir = tmp_path_factory.mktemp("stack") / "state"
    env = {**os.environ, "DEPLOYBOOK_STATE_DIR": str(state_dir)}
    cli = [sys.executable, "-m", "deploybook", "sandbox"]
    try:
        first = subprocess.run([*cli, "up"], env=env, capture_output=True, text=True, timeout=120)
        assert first.returncode == 0, first.stderr
        state = stack.read_state(state_dir)
        second = subprocess.run([*cli, "up"], env=env, capture_output=True, text=True, timeout=60)
        assert "already up" in second.stdout
        assert stack.read_state(state_dir)["daemon_pid"] == state["daemon_pid"]

        status = subprocess.run([*cli, "status"], env=env, capture_output=True, text=True)
        report = json.loads(status.stdout)
        assert status.returncode == 0 and report["running"]
        assert report["envs"]["sandbox"]["api"]["version"] == stack.PREVIOUS
        body = httpx.get(state["envs"]["sandbox"]["services"]["ocr"] + "/health").json()
        assert body["ready"] is True

        pg_pid = int((Path(state["postgres"]["datadir"]) / "postmaster.pid").read_text().split()[0])
        urls = [u for info in state["envs"].values() for u in info["services"].values()]
        urls += [state["admin_url"], f"http://127.0.0.1:{state['postgres']['port']}"]
    finally:
        down = subprocess.run([*cli, "down"], env=env, capture_output=True, text=True, timeout=60)
    assert down.returncode == 0, down.stderr
    assert not _alive(state["daemon_pid"])
    assert not _alive(pg_pid)
    assert all(_refused(u) for u in urls)
    status = subprocess.run([*cli, "status"], env=env, capture_output=True, text=True)
    assert status.returncode == 3


def test_sandbox_env_and_deploy_commands(sandbox) -> None:
    env = os.environ.copy()
    cli = [sys.executable, "-m", "deploybook", "sandbox"]
    out = subprocess.run([*cli, "env", "sandbox"], env=env, capture_output=True, text=True)
    assert "export DATABASE_URL=postgresql://postgres:" in out.stdout
    # In a shell, as the header of the checkout's ops/release.sh says: values with spaces
    # (the approvers' public keys) come through whole, and the script deploys with them.
    shell = (
        'eval "$("$PYTHON" -m deploybook sandbox env sandbox)" && '
        'printf "%s\\n" "$DEPLOYBOOK_SANDBOX_SIGNER_API" && '
        "./ops/release.sh deploy --env sandbox --service web --version v1.4.0"
    )
    try:
        evaluated = subprocess.run(
            ["sh", "-c", shell],
            cwd=sandbox["checkout"],
            env={**env, "PYTHON": sys.executable},
            capture_output=True,
            text=True,
        )
        key = stack.sandbox_environment("sandbox")["DEPLOYBOOK_SANDBOX_SIGNER_API"]
        assert evaluated.returncode == 0, evaluated.stderr
        assert evaluated.stdout.splitlines() == [key, "sandbox/web now runs v1.4.0"]
        web = sandbox["envs"]["sandbox"]["services"]["web"]
        assert httpx.get(web + "/api/health").json()["version"] == "v1.4.0"
    finally:
        stack.admin("/admin/sandbox/web/version", {"version": stack.PREVIOUS})
    deploy = [
        *cli,
        "deploy",
        "--env",
        "sandbox-production",
        "--service",
        "ocr",
        "--version",
        "v1.4.0",
    ]
    assert subprocess.run(deploy, env=env, capture_output=True).returncode == 0
    url = sandbox["envs"]["sandbox-production"]["services"]["ocr"]
    try:
        assert httpx.get(url + "/health").json()["version"] == "v1.4.0"
    finally:
        deploy[-1] = stack.PREVIOUS
        subprocess.run(deploy, env=env, capture_output=True)
