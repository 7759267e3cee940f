"""Params files: a good file loads; every bad one is one clear ConfigError (exit 2)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from sandbox_fixtures import SIGNER_PLACEHOLDERS

from deploybook.config import interpolate, load_params, validate_release
from deploybook.errors import ConfigError

GOOD = {
    "environment": {"name": "staging", "kind": "staging"},
    "epic": {"id": "4", "stories": ["4.1", "4.2"]},
    "checkout": {"path": "/srv/americano"},
    "services": [
        {
            "name": "api",
            "base_url": "${API_URL:-http://127.0.0.1:8000}",
            "deploy": ["deploy-api", "{version}"],
        }
    ],
    "thresholds": {"error_rate": 0.01},
    "secrets": ["DATABASE_URL", "OPENAI_API_KEY"],
}


def write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_good_file_loads_with_defaults(tmp_path: Path) -> None:
    params = load_params(write(tmp_path, GOOD), environ={})
    assert params.environment.name == "staging"
    assert params.service("api").base_url == "http://127.0.0.1:8000"
    assert params.schedule.window_minutes == 60
    assert params.schedule.freeze_hours == 24
    assert params.schedule.rollback_window_minutes == 60
    assert params.database.scratch_pattern.startswith("^")


def test_environment_overrides_interpolation_default(tmp_path: Path) -> None:
    params = load_params(write(tmp_path, GOOD), environ={"API_URL": "http://10.0.0.5:9000"})
    assert params.service("api").base_url == "http://10.0.0.5:9000"


def mutate(path: str, value):
    data = yaml.safe_load(yaml.safe_dump(GOOD))
    keys = path.split(".")
    target = data
    for key in keys[:-1]:
        target = target[int(key)] if key.isdigit() else target[key]
    last = keys[-1]
    if value is KeyError:
        del target[last]
    else:
        target[last] = value
    return data


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        ("thresholds.error_rate", "lots", "thresholds.error_rate"),
        ("thresholds.error_rate", 3, "thresholds.error_rate"),
        ("environment.kind", "prod", "environment.kind"),
        ("environment.name", "Prod Env", "environment.name"),
        ("epic", KeyError, "epic: required key is missing"),
        ("services.0.name", "api; rm -rf /", "services.0.name"),
        ("services.0.base_url", "ftp://x", "services.0.base_url"),
        ("database", {"scratch_pattern": "scratch_.*"}, "database.scratch_pattern"),
        ("surprise", 1, "surprise: unknown key"),
    ],
)
def test_bad_value_names_file_and_key(tmp_path: Path, path: str, value, expected: str) -> None:
    file = write(tmp_path, mutate(path, value))
    with pytest.raises(ConfigError) as info:
        load_params(file, environ={})
    message = str(info.value)
    assert str(file) in message
    assert expected in message
    assert info.value.exit_code == 2


def test_missing_variable_names_key_and_variable(tmp_path: Path) -> None:
    data = mutate("checkout.path", "${AMERICANO_CHECKOUT}")
    with pytest.raises(
        ConfigError, match=r"checkout\.path: environment variable AMERICANO_CHECKOUT"
    ):
        load_params(write(tmp_path, data), environ={})


def test_not_yaml_and_not_found(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("environment: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_params(bad)
    with pytest.raises(ConfigError, match="not found"):
        load_params(tmp_path / "missing.yaml")


# --- epic and story ids: the method's other projects -----------------------------------------


@pytest.mark.parametrize(
    ("epic_yaml", "stories", "epic_id"),
    [
        ('"4"', ["4.1", "4.2"], "4"),
        ("4", ["4.1"], "4"),  # unquoted: YAML's int is taken as its text
        ('"3.5"', ["3.5.1", "3.5.2", "3.5.10"], "3.5"),
        ('"2.1.3"', ["2.1.3-a"], "2.1.3"),
        ('"7"', ["centralized-better-auth-1", "centralized-better-auth-3"], "7"),
    ],
)
def test_epic_ids_may_be_dotted_and_story_ids_any_shape(
    tmp_path: Path, epic_yaml: str, stories: list[str], epic_id: str
) -> None:
    text = yaml.safe_dump(mutate("epic", {"stories": stories})).replace(
        "epic:\n", f"epic:\n  id: {epic_yaml}\n", 1
    )
    (tmp_path / "params.yaml").write_text(text)
    params = load_params(tmp_path / "params.yaml", environ={})
    assert (params.epic.id, params.epic.stories) == (epic_id, stories)


def test_a_dotted_epic_is_judged_by_its_own_stories(tmp_path: Path) -> None:
    """Epic 3.5 from params: its 3.5.10 sits in a DRAFTED list, so the epic is not done."""
    from deploybook.checkout import statusfile

    data = mutate("epic", {"id": "3.5", "stories": ["3.5.1", "3.5.10"]})
    params = load_params(write(tmp_path, data), environ={})
    status_file = "\n".join(
        [
            "### DONE (Completed Stories)",
            "",
            "| Story ID | File | Completed Date | Points |",
            "|---|---|---|---|",
            "| 3.5.1 | docs/stories/story-3.5.1.md | 2025-10-01 | 3 |",
            "",
            "### DRAFTED",
            "",
            "- Story 3.5.10: Search filters (docs/stories/story-3.5.10.md)",
        ]
    )
    status, evidence = statusfile.judge_epic(
        status_file, params.epic.id, params.epic.stories, "status.md"
    )
    assert status.value == "fail"
    assert evidence.startswith('Epic 3.5 is not done: listed under "DRAFTED"')
    assert "- Story 3.5.10: Search filters" in evidence


@pytest.mark.parametrize(
    ("epic_yaml", "stories", "expected"),
    [
        (
            '"four"',
            ["4.1"],
            "epic.id: Value error, an epic number, dotted for a sub-epic ('4', '3.5'); got 'four'",
        ),
        ('"4."', ["4.1"], "a sub-epic ('4', '3.5'); got '4.'"),
        ('"3..5"', ["3.5.1"], "a sub-epic ('4', '3.5'); got '3..5'"),
        (
            "3.10",
            ["3.10.1"],
            'a quoted epic id such as "3.5" (unquoted, YAML reads 3.10 as 3.1); got 3.1',
        ),
        ('"4"', ["4.1", "story 4.2"], "story ids without spaces"),
        ('"4"', ["4.1", "4.1"], "each story once; listed twice: 4.1"),
        ('"4"', [], "epic.stories"),
    ],
)
def test_bad_epic_or_story_ids_are_refused_by_name(
    tmp_path: Path, epic_yaml: str, stories: list[str], expected: str
) -> None:
    text = yaml.safe_dump(mutate("epic", {"stories": stories})).replace(
        "epic:\n", f"epic:\n  id: {epic_yaml}\n", 1
    )
    (tmp_path / "params.yaml").write_text(text)
    with pytest.raises(ConfigError) as info:
        load_params(tmp_path / "params.yaml", environ={})
    assert expected in str(info.value)
    assert info.value.exit_code == 2


@pytest.mark.parametrize(
    "release",
    ["../../etc", "v1.2", "1.4.0", "v1.4.0; ls", "v01.4.0", "", "v1.4.0\n", "v1.4.1\u0660"],
)
def test_release_must_be_semver(release: str) -> None:
    with pytest.raises(ConfigError, match="SemVer"):
        validate_release(release)


def test_interpolation_recurses_and_keeps_non_strings() -> None:
    tree = {"a": ["${X}", 3, {"b": "${Y:-d}"}]}
    assert interpolate(tree, {"X": "x"}) == {"a": ["x", 3, {"b": "d"}]}


def test_cli_wrong_type_exits_2_and_writes_no_record(tmp_path: Path) -> None:
    file = write(tmp_path, mutate("thresholds.error_rate", "lots"))
    outputs = tmp_path / "outputs"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "deploybook",
            "run",
            "01",
            "--env",
            "staging",
            "--release",
            "v1.4.0",
            "--params-file",
            str(file),
        ],
        capture_output=True,
        text=True,
        env={**_env(), "DEPLOYBOOK_OUTPUTS": str(outputs)},
    )
    assert proc.returncode == 2, proc.stderr
    assert "thresholds.error_rate" in proc.stderr
    assert proc.stderr.count("\n") == 1, "one message, no traceback"
    assert not outputs.exists()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--release", "../../etc"], "SemVer"),
        (["--release", "v1.4.0", "-p", "db_password", "x"], "looks like a secret"),
        (["--release", "v1.4.0", "-p", "surprise", "1"], "unknown parameter"),
    ],
)
def test_cli_bad_arguments_exit_2(tmp_path: Path, args: list[str], expected: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "deploybook", "run", "01", "--env", "staging", *args],
        capture_output=True,
        text=True,
        env={**_env(), "DEPLOYBOOK_OUTPUTS": str(tmp_path / "o")},
    )
    assert proc.returncode == 2
    assert expected in proc.stderr
    assert not (tmp_path / "o").exists()


def _env() -> dict[str, str]:
    import os

    return dict(os.environ)


# --- layered params: `extends` ------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[1]
FLAT = Path(__file__).parent / "data" / "params-epic-4-flat.json"
ENVS = ("staging", "production", "sandbox", "sandbox-production")
# Every variable the shipped params files name, so they load without a stack.
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


@pytest.mark.parametrize("env", ENVS)
def test_layered_params_equal_the_flat_files_they_replaced(env: str, tmp_path: Path) -> None:
    """Layers merge to exactly the reviewed flat form of each environment (first computed
    from the pre-`extends` files; a deliberate params change updates both, in one commit)."""
    import json

    from deploybook.config import read_params_yaml

    flat = json.loads(FLAT.read_text())[env]  # what params/<env>.yaml held before `extends`
    path = ROOT / "params" / f"{env}.yaml"
    assert read_params_yaml(path) == flat
    copy = tmp_path / f"{env}.yaml"
    copy.write_text(yaml.safe_dump(flat))
    layered, before = load_params(path, VARIABLES), load_params(copy, VARIABLES)
    assert layered.model_dump(exclude={"source"}) == before.model_dump(exclude={"source"})


def test_release_facts_are_written_once() -> None:
    from deploybook.config import read_params_tree

    for env in ENVS:
        tree = read_params_tree(ROOT / "params" / f"{env}.yaml")
        assert tree.chain[-1].name == "release-epic-4.yaml"
        for key in ("epic", "smoke", "spot_checks", "signoff_roles", "schedule", "secrets"):
            assert tree.origin((key,)).name == "release-epic-4.yaml", (env, key)
        for key in ("inventory", "design_rules", "env_keys", "feature_flags"):
            assert tree.origin(("preconditions", key)).name == "release-epic-4.yaml", (env, key)
        assert tree.origin(("environment", "name")).name == f"{env}.yaml"
    params = load_params(ROOT / "params" / "production.yaml", VARIABLES)
    assert params.epic.id == "4" and params.epic.stories == [f"4.{i}" for i in range(1, 7)]
    assert sorted(params.preconditions.inventory) == params.epic.stories
    assert len(params.smoke) == 5 and len(params.spot_checks) == 6
    assert params.signoff_roles == ["PM", "Web", "API", "Services", "QA"]
    assert params.thresholds.breach_sustain_s == 600 and params.rollout.build == []


def layered(tmp_path: Path, files: dict[str, dict]) -> Path:
    for name, data in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(yaml.safe_dump(data))
    return tmp_path / next(reversed(files))


BASE = {k: v for k, v in GOOD.items() if k not in ("environment", "services")} | {
    "thresholds": {"error_rate": 0.02, "p95_ms": 900},
}
ENV_FILE = {
    "extends": "base.yaml",
    "environment": GOOD["environment"],
    "services": GOOD["services"],
    "thresholds": {"p95_ms": 1200},
    "secrets": ["DATABASE_URL"],
}


def test_extends_merges_mappings_and_replaces_lists(tmp_path: Path) -> None:
    path = layered(tmp_path, {"base.yaml": BASE, "staging.yaml": ENV_FILE})
    params = load_params(path, environ={})
    assert params.thresholds.error_rate == 0.02  # from the base
    assert params.thresholds.p95_ms == 1200  # the environment's wins
    assert params.secrets == ["DATABASE_URL"]  # a list is replaced, not appended to
    assert params.epic.stories == ["4.1", "4.2"]
    assert params.source == path


def test_extends_chains_relative_to_each_file(tmp_path: Path) -> None:
    middle = {"extends": "../base.yaml", "thresholds": {"error_rate": 0.03}}
    top = {**ENV_FILE, "extends": "layers/middle.yaml"}
    del top["thresholds"]
    path = layered(tmp_path, {"base.yaml": BASE, "layers/middle.yaml": middle, "top.yaml": top})
    params = load_params(path, environ={})
    assert (params.thresholds.error_rate, params.thresholds.p95_ms) == (0.03, 900)


def test_epic_5_is_one_new_base_file(tmp_path: Path) -> None:
    """The environment files stay; a new release changes the file they extend."""
    base = yaml.safe_load((ROOT / "params" / "release-epic-4.yaml").read_text())
    base["epic"] = {"id": "5", "title": "Next", "stories": ["5.1"]}
    staging = yaml.safe_load((ROOT / "params" / "staging.yaml").read_text())
    staging["extends"] = "release-epic-5.yaml"
    path = layered(tmp_path, {"release-epic-5.yaml": base, "staging.yaml": staging})
    params = load_params(path, VARIABLES)
    assert (params.epic.id, params.epic.stories) == ("5", ["5.1"])
    assert params.service("api").base_url == "http://127.0.0.1:9"


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"a.yaml": {**ENV_FILE, "extends": "nowhere.yaml"}}, r"a\.yaml: extends: .*nowhere"),
        ({"a.yaml": {**ENV_FILE, "extends": ["x"]}}, r"a\.yaml: extends: expected the name"),
        (
            {"b.yaml": {"extends": "a.yaml"}, "a.yaml": {**ENV_FILE, "extends": "b.yaml"}},
            r"b\.yaml: extends: .*a\.yaml makes a cycle",
        ),
        (
            {"a.yaml": {**ENV_FILE, "extends": "a.yaml"}},
            r"a\.yaml: extends: .*a\.yaml makes a cycle",
        ),
    ],
)
def test_bad_extends_is_a_config_error_naming_the_file(
    tmp_path: Path, files: dict, expected: str
) -> None:
    path = layered(tmp_path, files)
    with pytest.raises(ConfigError, match=expected) as info:
        load_params(path, environ={})
    assert info.value.exit_code == 2


def test_bad_base_yaml_names_the_base(tmp_path: Path) -> None:
    path = layered(tmp_path, {"staging.yaml": ENV_FILE})
    (tmp_path / "base.yaml").write_text("epic: [unclosed\n")
    with pytest.raises(ConfigError, match=r"base\.yaml: line \d+ is not valid YAML"):
        load_params(path, environ={})


@pytest.mark.parametrize(
    ("where", "path", "value", "expected"),
    [
        ("base.yaml", "epic.id", "four", "epic.id"),
        ("base.yaml", "thresholds.error_rate", "lots", "thresholds.error_rate"),
        ("staging.yaml", "thresholds.p95_ms", "slow", "thresholds.p95_ms"),
        ("base.yaml", "surprise", 1, "surprise: unknown key"),
        ("staging.yaml", "services", [{"name": "API"}], "services.0"),
        ("base.yaml", "checkout.path", "${NOT_SET_ANYWHERE}", "checkout.path: environment var"),
        ("staging.yaml", "environment.kind", "prod", "environment.kind"),
    ],
)
def test_an_error_names_the_file_the_key_is_written_in(
    tmp_path: Path, where: str, path: str, value, expected: str
) -> None:
    files = yaml.safe_load(yaml.safe_dump({"base.yaml": BASE, "staging.yaml": ENV_FILE}))
    *parents, last = path.split(".")
    node = files[where]
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = value
    top = layered(tmp_path, files)
    with pytest.raises(ConfigError) as info:
        load_params(top, environ={})
    message = str(info.value)
    assert message.startswith(f"{tmp_path / where}: "), message
    assert expected in message


def test_config_resolves_only_the_variables_it_is_given(tmp_path: Path) -> None:
    """config is pure: a sandbox file resolves against what the caller passes, no stack."""
    with pytest.raises(ConfigError) as info:
        load_params(ROOT / "params" / "sandbox.yaml", {"DEPLOYBOOK_STATE_DIR": str(tmp_path)})
    assert "sandbox up" not in str(info.value)
    assert str(info.value).startswith(str(ROOT / "params" / "sandbox.yaml"))


def test_yaml_aliases_are_refused_before_anything_walks_the_tree(tmp_path: Path) -> None:
    """An alias bomb under an unknown key: refused at parse time, never expanded."""
    text = yaml.safe_dump(GOOD, sort_keys=False) + (
        "not_a_key:\n"
        "  a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
        "  b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
        "  c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
    )
    (tmp_path / "params.yaml").write_text(text)
    with pytest.raises(ConfigError, match="YAML aliases") as info:
        load_params(tmp_path / "params.yaml", environ={})
    assert info.value.exit_code == 2
    assert "params.yaml" in str(info.value)


def test_unknown_key_is_refused_before_interpolation(tmp_path: Path) -> None:
    """An unknown key holding an unset ${VAR} is reported as the unknown key it is."""
    data = {**GOOD, "not_a_key": {"x": "${NOT_SET_ANYWHERE_22}"}}
    with pytest.raises(ConfigError, match="not_a_key: unknown key") as info:
        load_params(write(tmp_path, data), environ={})
    assert "NOT_SET_ANYWHERE_22" not in str(info.value)
