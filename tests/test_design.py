"""Plan section 20, design-system notes, against the generated Americano checkout.

The good release passes both Epic-4 rules of the shipped params; each fixture variant
fails exactly its rule, naming the offending line as ``file:line: text``; a rule marked
critical stops the gate. Checkouts are real git repositories read at the release tag.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from sandbox_fixtures import SIGNER_PLACEHOLDERS

from deploybook.config import DesignRule, Params, load_params, read_params_yaml
from deploybook.core.checks import Status, gate
from deploybook.errors import ConfigError, GateFailed
from deploybook.runbooks.preconditions import design
from deploybook.sandbox.fixture import Checkout, add_commit, create_checkout

ROOT = Path(__file__).resolve().parent.parent
RELEASE = "v1.4.0"
DEPENDENCY = "design: tailwindcss-animate not a production dependency"
GRADIENTS = "design: no gradient utilities in the web sources"


def params_for(checkout: Checkout | Path, tmp_path: Path, file: str = "sandbox") -> Params:
    """A shipped params file resolved against the checkout, with no sandbox stack read."""
    (tmp_path / "no-stack").mkdir(exist_ok=True)
    path = checkout.path if isinstance(checkout, Checkout) else checkout
    environ = {
        "DEPLOYBOOK_STATE_DIR": str(tmp_path / "no-stack"),
        "AMERICANO_CHECKOUT": str(path),
        **dict.fromkeys(["API_URL", "WEB_URL", "CHATMOCK_URL", "OCR_URL"], "http://127.0.0.1:9"),
        "DEPLOYBOOK_SMTP_HOST": "127.0.0.1",
        "DEPLOYBOOK_SMTP_PORT": "25",
        "PG_BIN_DIR": "/usr/bin",
        **SIGNER_PLACEHOLDERS,
    }
    return load_params(ROOT / "params" / f"{file}.yaml", environ)


def with_rules(params: Params, *rules: DesignRule) -> Params:
    spec = params.preconditions.model_copy(update={"design_rules": list(rules)})
    return params.model_copy(update={"preconditions": spec})


def by_name(checks: list) -> dict[str, Any]:
    return {c.name: c for c in checks}


# --- the shipped rules on the good release and on each variant ---------------------------------


@pytest.mark.parametrize("file", ["sandbox", "sandbox-production", "staging", "production"])
def test_every_params_file_ships_the_epic_4_rules(file: str, tmp_path: Path) -> None:
    rules = params_for(Path("/nonexistent"), tmp_path, file).preconditions.design_rules
    assert [(r.kind, r.critical) for r in rules] == [
        ("forbidden-dependency", False),
        ("forbidden-pattern", False),
    ]
    assert rules[0].package == "tailwindcss-animate"
    assert rules[0].package_json == "apps/web/package.json"


def test_good_release_passes_both_rules(checkouts, tmp_path: Path) -> None:
    checks = design.design_rules(params_for(checkouts("good"), tmp_path), RELEASE)
    assert [c.name for c in checks] == [DEPENDENCY, GRADIENTS]
    assert all(c.status is Status.PASS and c.section == "20" for c in checks), checks.to_text()
    assert "not in dependencies or optionalDependencies" in checks[0].evidence
    assert "occurs in none of 1 file(s) at v1.4.0" in checks[1].evidence
    assert gate(checks)


@pytest.mark.parametrize(
    ("variant", "rule", "line"),
    [
        (
            "tailwind-animate-dependency",
            DEPENDENCY,
            re.compile(r'^apps/web/package\.json:\d+: "tailwindcss-animate": "1\.0\.7",$', re.M),
        ),
        (
            "gradient-utilities",
            GRADIENTS,
            re.compile(
                r"^apps/web/src/components/mission-card\.tsx:17: 'rounded-xl border "
                r"bg-gradient-to-r from-sky-500 to-indigo-500 p-6 shadow-sm',$",
                re.M,
            ),
        ),
    ],
    ids=["tailwindcss-animate dependency", "gradient utilities"],
)
def test_each_variant_fails_its_rule_naming_file_and_line(
    checkouts, tmp_path: Path, variant: str, rule: str, line: re.Pattern[str]
) -> None:
    checks = design.design_rules(params_for(checkouts(variant), tmp_path), RELEASE)
    failed = [c for c in checks if c.status is Status.FAIL]
    assert [c.name for c in failed] == [rule], checks.to_text()
    assert line.search(failed[0].evidence), failed[0].evidence
    assert "1 offending line(s)" in failed[0].evidence.splitlines()[0]
    assert failed[0].data and failed[0].data[0]["file"] in failed[0].evidence
    # non-critical by default: shown in red, but the gate still passes
    assert not failed[0].critical and gate(checks)


def test_dependency_line_is_found_in_the_dependencies_block(checkouts) -> None:
    checkout = checkouts("tailwind-animate-dependency")
    text = checkout.read_at(RELEASE, "apps/web/package.json")
    [hit] = design.dependency_hits(text, "tailwindcss-animate", "apps/web/package.json")
    assert text.splitlines()[hit.line - 1].strip() == '"tailwindcss-animate": "1.0.7",'
    # the same package as a devDependency (the good release) is not a production dependency
    good = checkouts("good").read_at(RELEASE, "apps/web/package.json")
    assert design.dependency_hits(good, "tailwindcss-animate", "apps/web/package.json") == []


def test_critical_rule_fails_the_gate_by_name(checkouts, tmp_path: Path) -> None:
    params = params_for(checkouts("gradient-utilities"), tmp_path)
    rule = params.preconditions.design_rules[1].model_copy(update={"critical": True})
    checks = design.design_rules(with_rules(params, rule), RELEASE)
    with pytest.raises(GateFailed) as caught:
        gate(checks, "01-preconditions gate")
    assert [c.name for c in caught.value.failed] == [GRADIENTS]
    assert GRADIENTS in str(caught.value)


def test_rule_is_read_at_the_tag_not_the_working_tree(checkouts, tmp_path: Path) -> None:
    """A gradient added after the tag (or only in the working copy) does not ship."""
    checkout = create_checkout(tmp_path / "americano")
    card = checkout.path / "apps/web/src/components/mission-card.tsx"
    card.write_text(card.read_text().replace("bg-card", "bg-gradient-to-b from-red-500 to-red-900"))
    checks = design.design_rules(params_for(checkout, tmp_path), RELEASE)
    assert by_name(checks)[GRADIENTS].status is Status.PASS
    rel = card.relative_to(checkout.path).as_posix()
    add_commit(checkout, {rel: card.read_text()}, "style: gradient after the tag")
    assert (
        by_name(design.design_rules(params_for(checkout, tmp_path), RELEASE))[GRADIENTS].status
        is Status.PASS
    )


# --- configuration mistakes are clear ----------------------------------------------------------


def test_no_rules_is_one_skip(checkouts, tmp_path: Path) -> None:
    checks = design.design_rules(with_rules(params_for(checkouts("good"), tmp_path)), RELEASE)
    assert [(c.status, c.critical) for c in checks] == [(Status.SKIP, False)]
    assert "preconditions.design_rules" in checks[0].evidence


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        (
            DesignRule(
                name="x", kind="forbidden-dependency", package_json="web/package.json", package="a"
            ),
            (Status.FAIL, "web/package.json does not exist at v1.4.0"),
        ),
        (
            DesignRule(
                name="x", kind="forbidden-pattern", globs=["apps/mobile/**/*.tsx"], pattern="x"
            ),
            (Status.WARN, "match no file at v1.4.0"),
        ),
    ],
    ids=["missing package.json", "globs match nothing"],
)
def test_a_rule_that_checks_nothing_says_so(
    checkouts, tmp_path: Path, rule: DesignRule, expected: tuple[Status, str]
) -> None:
    [check] = design.design_rules(
        with_rules(params_for(checkouts("good"), tmp_path), rule), RELEASE
    )
    assert check.status is expected[0] and expected[1] in check.evidence, check.evidence


def test_missing_tag_is_a_failed_check(checkouts, tmp_path: Path) -> None:
    checks = design.design_rules(params_for(checkouts("good"), tmp_path), "v9.9.9")
    assert all(
        c.status is Status.FAIL and "tag v9.9.9 does not exist" in c.evidence for c in checks
    )


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"name": "x", "kind": "forbidden-dependency", "package": "a"}, "needs package_json"),
        ({"name": "x", "kind": "forbidden-pattern", "globs": ["*.tsx"]}, "needs globs and pattern"),
        ({"name": "x", "kind": "forbidden-pattern", "globs": ["*"], "pattern": "("}, "not a valid"),
        ({"name": "x", "kind": "forbidden-import"}, "forbidden-dependency"),
    ],
)
def test_bad_rule_in_a_params_file_names_the_key(
    tmp_path: Path, rule: dict[str, Any], message: str
) -> None:
    import yaml

    raw = read_params_yaml(ROOT / "params" / "staging.yaml")
    raw["preconditions"]["design_rules"] = [rule]
    path = tmp_path / "staging.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError) as caught:
        load_params(path, {"AMERICANO_CHECKOUT": "/x", "PG_BIN_DIR": "/usr/bin"})
    assert "preconditions.design_rules.0" in str(caught.value) and message in str(caught.value)


# --- the pure parts ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("glob", "path", "matches"),
    [
        ("apps/web/src/**/*.tsx", "apps/web/src/a.tsx", True),
        ("apps/web/src/**/*.tsx", "apps/web/src/components/ui/b.tsx", True),
        ("apps/web/src/**/*.tsx", "apps/web/src/a.ts", False),
        ("apps/web/src/**/*.tsx", "apps/web/srcx/a.tsx", False),
        ("apps/web/src/*.tsx", "apps/web/src/components/a.tsx", False),
        ("**/package.json", "package.json", True),
    ],
)
def test_glob_regex(glob: str, path: str, matches: bool) -> None:
    assert bool(design.glob_regex(glob).match(path)) is matches


def test_pattern_hits_report_every_offending_line() -> None:
    text = "a\n<div className='bg-gradient-to-r' />\nb\n<p className='from-a via-b to-c' />\n"
    rule = params_rule()
    hits = design.pattern_hits(text, re.compile(rule.pattern or ""), "x.tsx")
    assert [str(h) for h in hits] == [
        "x.tsx:2: <div className='bg-gradient-to-r' />",
        "x.tsx:4: <p className='from-a via-b to-c' />",
    ]


def params_rule() -> DesignRule:

    raw = read_params_yaml(ROOT / "params" / "sandbox.yaml")
    return DesignRule(**raw["preconditions"]["design_rules"][1])
