"""Params files: a good file loads; every bad one is one clear ConfigError (exit 2)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

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


@pytest.mark.parametrize("release", ["../../etc", "v1.2", "1.4.0", "v1.4.0; ls", "v01.4.0", ""])
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
