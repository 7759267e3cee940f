"""The shipped params carry the deployment plan's paths exactly (the plan is the source of
truth: where params and plan disagree, the params are wrong).

The plan is read as the PM wrote it (`../shared/plan/epic-4-deployment-plan.md`): section 1's
codebases, section 2's inventory (story -> files), section 6's test files and section 19's
references, each a backticked path with an optional `:line` suffix.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sandbox_fixtures import SIGNER_PLACEHOLDERS

from deploybook.config import Params, load_params

ROOT = Path(__file__).resolve().parents[1]
PLAN = ROOT.parent / "shared" / "plan" / "epic-4-deployment-plan.md"
ENVS = ("staging", "production", "sandbox", "sandbox-production")
VARIABLES = {
    name: "http://127.0.0.1:9"
    for name in ("API_URL", "WEB_URL", "CHATMOCK_URL", "OCR_URL", "AMERICANO_API_URL")
} | {
    "AMERICANO_CHECKOUT": "/srv/americano",
    "PG_BIN_DIR": "/usr/bin",
    "DEPLOYBOOK_SMTP_HOST": "127.0.0.1",
    "DEPLOYBOOK_SMTP_PORT": "25",
}

# sandbox-production's approvers' public keys (the stack makes real ones: sandbox/signers.py).
VARIABLES |= SIGNER_PLACEHOLDERS

_HEADING = re.compile(r"^(\d+)\.\s+\S")  # "2. Change Inventory" (steps are "1) Build")
_PATH = re.compile(r"`([^`\s]+?)(?::\d+)?`")  # `apps/api/README.md:1` -> apps/api/README.md
_STORY = re.compile(r"^-\s+(\d+(?:\.\d+)+)\s")  # "- 4.2 Clinical Reasoning: ..."


def plan_sections(text: str) -> dict[str, list[str]]:
    """Section number -> its lines (the heading excluded)."""
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        if m := _HEADING.match(line):
            current = sections.setdefault(m.group(1), [])
        elif current is not None:
            current.append(line)
    return sections


def repo_paths(lines: list[str]) -> list[str]:
    """Backticked paths inside the repository, in order, once each. `../x.md` names a document
    beside the repository (the status file, whose place is `checkout.status_file`)."""
    found = [p for line in lines for p in _PATH.findall(line) if not p.startswith("../")]
    return list(dict.fromkeys(found))


def plan_facts(text: str) -> dict[str, object]:
    sections = plan_sections(text)
    codebases = [line for line in sections["1"] if line.startswith("- Codebases:")]
    inventory = {
        m.group(1): repo_paths([line]) for line in sections["2"] if (m := _STORY.match(line))
    }
    return {
        "codebases": repo_paths(codebases),
        "inventory": inventory,
        "test_files": repo_paths(sections["6"]),
        "references": repo_paths(sections["19"]),
    }


def differences(plan: dict[str, object], params: Params) -> list[str]:
    """What a reader must fix in params, one line per disagreement (empty: they agree)."""
    spec, out = params.preconditions, []
    for key in ("codebases", "test_files", "references"):
        have, want = getattr(spec, key), plan[key]
        if have != want:
            missing = [p for p in want if p not in have]
            extra = [p for p in have if p not in want]
            out.append(
                f"preconditions.{key}: missing {missing or '-'}; not in the plan {extra or '-'}"
                + ("; order differs" if not missing and not extra else "")
            )
    inventory: dict[str, list[str]] = plan["inventory"]  # type: ignore[assignment]
    for story in dict.fromkeys([*inventory, *spec.inventory]):
        have, want = spec.inventory.get(story), inventory.get(story)
        if have != want:
            out.append(f"preconditions.inventory[{story!r}]: params {have}, plan {want}")
    return out


@pytest.fixture(scope="module")
def plan() -> dict[str, object]:
    return plan_facts(PLAN.read_text(encoding="utf-8"))


def test_plan_is_read_as_written(plan: dict[str, object]) -> None:
    """The parser finds what the plan says (so an empty parse cannot pass for agreement)."""
    assert plan["codebases"] == [
        "apps/web/src/lib/README.md",
        "apps/api/README.md",
        "services/chatmock/README.md",
        "services/ocr-service/README.md",
    ]
    inventory = plan["inventory"]
    assert list(inventory) == [f"4.{i}" for i in range(1, 7)]  # type: ignore[arg-type]
    assert inventory["4.2"] == [  # type: ignore[index]
        "apps/api/src/validation/scenario_generator.py",
        "apps/api/src/validation/scenario_evaluator.py",
    ]
    assert inventory["4.3"] == ["apps/api/src/challenge/routes.py"]  # type: ignore[index]
    assert plan["test_files"] == [
        "apps/web/src/lib/__tests__/embedding-service.test.ts",
        "apps/api/tests/test_e2e_epic4.py",
    ]
    assert len(plan["references"]) == 6  # type: ignore[arg-type]
    assert "apps/api/src/challenge/retry_scheduler.py" in plan["references"]  # type: ignore[operator]


@pytest.mark.parametrize("env", ENVS)
def test_shipped_params_carry_the_plans_paths(plan: dict[str, object], env: str) -> None:
    params = load_params(ROOT / "params" / f"{env}.yaml", VARIABLES)
    problems = differences(plan, params)
    assert not problems, f"params/{env}.yaml (merged) disagrees with {PLAN.name}:\n" + "\n".join(
        problems
    )
    assert sorted(params.preconditions.inventory) == sorted(params.epic.stories)
    assert Path(params.checkout.status_file).name == "bmm-workflow-status.md"


def test_a_disagreement_is_listed_path_by_path(plan: dict[str, object]) -> None:
    """The old inventory (before the plan was followed) is reported story by story."""
    params = load_params(ROOT / "params" / "staging.yaml", VARIABLES)
    old = {
        **params.preconditions.inventory,
        "4.2": ["apps/api/src/validation/scenarios.py"],
        "4.3": ["apps/api/src/validation/challenge.py"],
    }
    spec = params.preconditions.model_copy(
        update={"inventory": old, "references": params.preconditions.references[:-1]}
    )
    problems = differences(plan, params.model_copy(update={"preconditions": spec}))
    assert problems == [
        "preconditions.references: missing ['apps/web/src/lib/mission-analytics-engine.ts']; "
        "not in the plan -",
        "preconditions.inventory['4.2']: params ['apps/api/src/validation/scenarios.py'], plan "
        "['apps/api/src/validation/scenario_generator.py', "
        "'apps/api/src/validation/scenario_evaluator.py']",
        "preconditions.inventory['4.3']: params ['apps/api/src/validation/challenge.py'], plan "
        "['apps/api/src/challenge/routes.py']",
    ]
