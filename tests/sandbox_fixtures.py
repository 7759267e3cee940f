"""A sandbox stack shared by the runbook tests (started once per session, always stopped).

The database password and the API keys are canaries, so every test that runs a runbook
can also prove that no secret reached the records.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from deploybook.core import paths
from deploybook.sandbox import signers, stack
from deploybook.sandbox.fixture import Checkout, create_checkout

CANARIES = {
    "DEPLOYBOOK_SANDBOX_DB_PASSWORD": "pwcanary-3b1f9e2d7c",
    "SANDBOX_OPENAI_API_KEY": "sk-canary-openai-5d2e8a41f0",
    "SANDBOX_GEMINI_API_KEY": "canary-gemini-9c47b2e16a",
    "SANDBOX_PRODUCTION_OPENAI_API_KEY": "sk-canary-prod-openai-77aa01",
    "SANDBOX_PRODUCTION_GEMINI_API_KEY": "canary-prod-gemini-e4e4d2",
}


# sandbox-production's approvers' public keys for tests that load params without a stack
# (a running stack makes real ones: sandbox/signers.py).
SIGNER_PLACEHOLDERS = {
    f"DEPLOYBOOK_SANDBOX_SIGNER_{role}": "ssh-ed25519 "
    f"AAAAC3NzaC1lZDI1NTE5AAAAIParamsTestKey{role}0000000000 {role}"
    for role in ("PM", "WEB", "API", "SERVICES", "QA")
}


@pytest.fixture(scope="session")
def sandbox() -> Iterator[dict[str, Any]]:
    """A running stack with its own state dir and outputs dir, and canary secrets set.

    Shared by the tests that leave the sandbox as they found it (dry runs, smoke runs,
    preconditions); a test that deploys or migrates takes `own_sandbox` instead.
    """
    yield from _stack("deploybook-sandbox-")


@pytest.fixture
def own_sandbox() -> Iterator[dict[str, Any]]:
    """A stack of this test's own, for a test that changes it (deploys, migrates): the
    session's `sandbox` stays at the seeded release for the tests that rely on it."""
    yield from _stack("deploybook-own-sandbox-")


def _stack(prefix: str) -> Iterator[dict[str, Any]]:
    """Start a stack with canary secrets, yield its state and outputs, always stop it.

    Its files live in a mkdtemp dir, not pytest's tmp_path: pytest prunes old basetemps,
    and PostgreSQL (running as another user) must keep reaching its datadir.
    """
    base = Path(tempfile.mkdtemp(prefix=prefix))
    saved = os.environ.copy()
    os.environ["DEPLOYBOOK_STATE_DIR"] = str(base / "state")
    os.environ["DEPLOYBOOK_OUTPUTS"] = str(base / "outputs")
    for name, value in CANARIES.items():
        os.environ[name] = value
    try:
        state = stack.up(
            base / "state", password=CANARIES["DEPLOYBOOK_SANDBOX_DB_PASSWORD"], progress=None
        )
        yield {**state, "outputs": Path(os.environ["DEPLOYBOOK_OUTPUTS"])}
    finally:
        stack.down(base / "state", progress=None)
        shutil.rmtree(base, ignore_errors=True)
        os.environ.clear()
        os.environ.update(saved)


def files_containing(root: Path, needles: list[str]) -> list[tuple[str, str]]:
    """Every (file, needle) where a needle occurs in a file under root."""
    hits = []
    for path in root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            hits += [(str(path), n) for n in needles if n.encode() in data]
    return hits


@pytest.fixture(scope="module")
def checkouts(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Checkout]:
    """Variant name -> its fixture checkout, each generated once per module (read-only)."""
    made: dict[str, Checkout] = {}

    def get(variant: str) -> Checkout:
        if variant not in made:
            made[variant] = create_checkout(
                tmp_path_factory.mktemp(variant) / "americano", variant=variant
            )
        return made[variant]

    return get


def sign_approvals(
    env: str,
    release: str,
    roles: Iterable[str] | None = None,
    *,
    keys: dict[str, Path] | None = None,
    outputs: Path | None = None,
) -> list[Path]:
    """Replace ``env``'s approvals with ones signed now by the stack's throwaway approvers.

    The approvals folder is emptied first, so a test sees exactly these: ``roles`` (default
    every role production's params list), each with its own key unless ``keys`` names
    another (e.g. the operator's). Run after the 02 record they approve exists, as
    `make rehearse` does; signing is in-process (`deploybook.ops.approve.sign_roles`).
    """
    from deploybook.ops.approve import sign_roles
    from deploybook.ops.rehearsal import SIGNOFFS
    from deploybook.session.signing import approvals_dir

    shutil.rmtree(approvals_dir(env, release, outputs), ignore_errors=True)
    own = signers.approvers(paths.state_dir())
    chosen = {r: (keys or {}).get(r, own[r]) for r in (own if roles is None else roles)}
    return sign_roles(env, release, chosen, names=SIGNOFFS, outputs=outputs)
