"""What the sandbox's hosting platform and CI would show: env variables and test reports.

A real environment's variables live on its hosting platform and its JUnit reports come
from CI after the release commit. The stack writes both when it comes up, so runbook 01
observes the sandbox the way it observes a real environment (no declared shortcut):

* ``<state>/envs/<env>.env``: every key of the checkout's ``.env.example`` files at the
  release, with the stack's value where it has one (database URL, API keys: canaries in
  tests) and a generated one elsewhere — the "platform's" variables of that env;
* ``test-results/*.xml`` in the checkout: the fixture's suites as CI reports them, run now.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from .fixture import ENV_EXAMPLES, TEST_RESULTS_DIR, describe
from .fixture_junit import _junit_pytest, _junit_vitest

ENVS_DIR = "envs"


def env_file(state: Path | str, env: str) -> Path:
    """The dotenv file holding ``env``'s variables (what its params' env_source names)."""
    return Path(state) / ENVS_DIR / f"{env}.env"


def example_keys(checkout: Path | str, release: str) -> list[str]:
    """Every key the ``.env.example`` files declare at ``release``, in file order."""
    repo = describe(checkout, release=release)
    keys: list[str] = []
    for rel in ENV_EXAMPLES:
        for line in repo.read_at(release, rel).splitlines():
            line = line.strip().removeprefix("export ").strip()
            if line and not line.startswith("#") and "=" in line:
                keys.append(line.split("=", 1)[0].strip())
    return list(dict.fromkeys(keys))


def write_env_files(
    state: Path | str, checkout: Path | str, release: str, values: Mapping[str, Mapping[str, str]]
) -> dict[str, Path]:
    """One dotenv file per env (``values``: env -> the stack's variables); mode 0600."""
    keys = example_keys(checkout, release)
    written = {}
    for env, known in values.items():
        path = env_file(state, env)
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = [f"# {env}: the sandbox platform's variables (written by `deploybook sandbox up`)"]
        for key in keys:
            value = known.get(key) or f"sandbox-{env}-{key.lower().replace('_', '-')}"
            lines.append(f"{key}={value}")
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        path.chmod(0o600)
        written[env] = path
    return written


def write_ci_results(checkout: Path | str, when: datetime | None = None) -> list[Path]:
    """The fixture's passing suites as CI writes them after the release commit (now)."""
    when = when or datetime.now(UTC).replace(microsecond=0)
    folder = Path(checkout) / TEST_RESULTS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    reports = {
        "api-pytest.xml": _junit_pytest(4, when, {}),
        "web-vitest.xml": _junit_vitest(4, when),
    }
    for name, text in reports.items():
        (folder / name).write_text(text, encoding="utf-8")
    return [folder / name for name in reports]
