"""OpenSSH signatures (``ssh-keygen -Y``): the mechanism git uses for signed commits.

Thin I/O around ``ssh-keygen``: sign a message with a key (a private key file, or a public
key whose private half is in the SSH agent), verify a signature against an allowed-signers
file for one principal and namespace, and read key fingerprints. ssh-keygen's failures
become `SignatureError` with what it said; nothing here decides what a signature means.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from deploybook.errors import ConfigError, DeploybookError

_FINGERPRINT = re.compile(r"\b(SHA256:[A-Za-z0-9+/]{43})\b")


class SignatureError(DeploybookError):
    """ssh-keygen refused to sign, or a signature does not verify."""


def _ssh_keygen() -> str:
    found = shutil.which("ssh-keygen")
    if not found:
        raise ConfigError(
            "ssh-keygen is not installed: signed approvals need OpenSSH 8.2 or later "
            "(apt-get install openssh-client)"
        )
    return found


def _run(args: list[str], stdin: bytes, timeout_s: float = 60) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(
            [_ssh_keygen(), *args], input=stdin, capture_output=True, timeout=timeout_s
        )
    except subprocess.TimeoutExpired:
        raise SignatureError(
            f"ssh-keygen {' '.join(args[:2])} did not finish within {timeout_s:g}s "
            "(is it waiting for a passphrase? load the key into ssh-agent)"
        ) from None


def sign(message: bytes, key: Path, namespace: str) -> str:
    """The armored signature of ``message`` by ``key`` (private key file, or a .pub whose
    private half the agent holds)."""
    if not key.exists():
        raise ConfigError(f"signing key {key} does not exist (pass --key ~/.ssh/id_ed25519)")
    done = _run(["-Y", "sign", "-f", str(key), "-n", namespace], message)
    text = done.stdout.decode("utf-8", "replace")
    if done.returncode != 0 or "BEGIN SSH SIGNATURE" not in text:
        said = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise SignatureError(f"ssh-keygen could not sign with {key}: {said[-1] if said else '?'}")
    return text.strip() + "\n"


def _with_files(
    signature: str, allowed: str | None
) -> tuple[tempfile.TemporaryDirectory, Path, Path]:
    tmp = tempfile.TemporaryDirectory(prefix="deploybook-sig-")
    sig = Path(tmp.name) / "approval.sig"
    sig.write_text(signature, encoding="utf-8")
    signers = Path(tmp.name) / "allowed_signers"
    signers.write_text(allowed or "", encoding="utf-8")
    return tmp, sig, signers


def signer(message: bytes, signature: str, namespace: str) -> str:
    """The fingerprint of the key that made ``signature`` over ``message`` (any key);
    SignatureError when the signature does not match the message (it was edited)."""
    tmp, sig, _ = _with_files(signature, None)
    with tmp:
        done = _run(["-Y", "check-novalidate", "-n", namespace, "-s", str(sig)], message)
    said = (done.stdout + done.stderr).decode("utf-8", "replace")
    found = _FINGERPRINT.search(said)
    if done.returncode != 0 or not found:
        raise SignatureError("the signature does not match the statement (edited after signing?)")
    return found.group(1)


def verify(
    message: bytes, signature: str, allowed_signers: str, principal: str, namespace: str
) -> str:
    """Verify for ``principal`` against an allowed-signers text; the key's fingerprint, or
    SignatureError saying why not."""
    tmp, sig, signers = _with_files(signature, allowed_signers)
    with tmp:
        done = _run(
            ["-Y", "verify", "-f", str(signers), "-I", principal, "-n", namespace, "-s", str(sig)],
            message,
        )
    said = (done.stdout + done.stderr).decode("utf-8", "replace")
    found = _FINGERPRINT.search(said)
    if done.returncode != 0 or not found:
        lines = [line for line in said.strip().splitlines() if line.strip()]
        raise SignatureError(lines[-1] if lines else "signature did not verify")
    return found.group(1)


def fingerprint(public_key: str) -> str:
    """The SHA256 fingerprint of an OpenSSH public key line (ConfigError if it is not one)."""
    done = _run(["-l", "-f", "-"], public_key.strip().encode() + b"\n")
    found = _FINGERPRINT.search(done.stdout.decode("utf-8", "replace"))
    if done.returncode != 0 or not found:
        raise ConfigError(f"not an OpenSSH public key: {public_key[:40]!r}…")
    return found.group(1)


def key_fingerprints(path: Path) -> list[str]:
    """Fingerprints of a public key file (or a private key, whose public half is derived)."""
    text = path.read_text(encoding="utf-8", errors="replace")
    if "PRIVATE KEY" in text:
        done = _run(["-l", "-f", str(path)], b"")
        return _FINGERPRINT.findall(done.stdout.decode("utf-8", "replace"))
    return [
        fingerprint(line) for line in text.splitlines() if line.strip() and not line.startswith("#")
    ]


def agent_fingerprints() -> list[str]:
    """Fingerprints of the keys the running SSH agent holds ([] without an agent)."""
    ssh_add = shutil.which("ssh-add")
    if not ssh_add:
        return []
    try:
        done = subprocess.run([ssh_add, "-l"], capture_output=True, timeout=10)
    except (subprocess.TimeoutExpired, OSError):
        return []
    return (
        _FINGERPRINT.findall(done.stdout.decode("utf-8", "replace")) if done.returncode == 0 else []
    )
