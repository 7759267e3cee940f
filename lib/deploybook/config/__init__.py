"""Params files: everything environment-specific, validated before anything is touched.

A params file is YAML and may extend a base file (``extends: release-epic-4.yaml``) that
holds the release-wide facts. String values may reference the environment with ``${VAR}``
or ``${VAR:-default}`` (service URLs, hosts); secrets themselves are never written in a
params file, only the *names* of the variables that hold them. A bad file raises
`ConfigError` naming the file, the key path and what was expected (exit code 2).

- `models`: the pydantic models and their defaults (`envsource`: where env names come from);
- `layers`: ``extends`` and the deep merge;
- `interpolation`: ``${VAR}``;
- `loading`: file -> merged tree -> interpolated -> validated `Params`.
"""

from deploybook.config.envsource import EnvSource
from deploybook.config.interpolation import interpolate
from deploybook.config.layers import ParamsTree, read_params_tree, read_params_yaml
from deploybook.config.loading import load_params, read_params, resolve_params
from deploybook.config.models import (
    NAME,
    SEMVER,
    CheckoutSpec,
    DatabaseSpec,
    DesignRule,
    EnvironmentSpec,
    EpicSpec,
    NotificationTarget,
    Params,
    PreconditionsSpec,
    RolloutSpec,
    Schedule,
    ServiceSpec,
    SmokeCheckSpec,
    SuiteCommand,
    Thresholds,
    validate_release,
)

__all__ = [
    "NAME",
    "SEMVER",
    "CheckoutSpec",
    "DatabaseSpec",
    "DesignRule",
    "EnvSource",
    "EnvironmentSpec",
    "EpicSpec",
    "NotificationTarget",
    "Params",
    "ParamsTree",
    "PreconditionsSpec",
    "RolloutSpec",
    "Schedule",
    "ServiceSpec",
    "SmokeCheckSpec",
    "SuiteCommand",
    "Thresholds",
    "interpolate",
    "load_params",
    "read_params",
    "read_params_tree",
    "read_params_yaml",
    "resolve_params",
    "validate_release",
]
