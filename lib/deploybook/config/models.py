"""The params models: every section of a params file, its defaults and its validation.

The rest of the code receives a validated `Params`, never a raw dict. How a file becomes
one (``extends``, ``${VAR}``) is `deploybook.config.loading`'s concern.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from deploybook.config.approvals import ApprovalsSpec
from deploybook.config.duration import Duration
from deploybook.config.envsource import EnvSource
from deploybook.config.impact import ImpactSpec
from deploybook.config.metrics import MetricsSpec
from deploybook.config.notifications import NotificationTarget
from deploybook.config.slo import BurnRate
from deploybook.config.snapshot import Compression, RollbackSpec
from deploybook.errors import ConfigError

# ASCII digits only, and \Z rather than $ (which also matches before a final newline): a
# release names a folder of records, so `v1.4.0\n` or an Arabic-Indic zero must not pass.
SEMVER = re.compile(r"^v(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\Z")
NAME = re.compile(r"^[a-z][a-z0-9-]{0,40}$")
EPIC_ID = re.compile(r"^\d+(\.\d+)*$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EnvironmentSpec(_Model):
    """Which environment this file describes and which part it plays in the release."""

    name: str
    kind: Literal["sandbox", "staging", "production"]
    # A sandbox environment rehearses either side of the release.
    role: Literal["staging", "production"] = "staging"
    # For production: the environment whose passing record gates this one.
    staging_env: str | None = None

    @field_validator("name", "staging_env")
    @classmethod
    def _name(cls, v: str | None) -> str | None:
        if v is not None and not NAME.match(v):
            raise ValueError("a lowercase name of letters, digits and '-' (e.g. 'staging')")
        return v

    @property
    def is_production(self) -> bool:
        return self.role == "production" or self.kind == "production"


class EpicSpec(_Model):
    """The epic this release ships and its stories, as the status file names them.

    Epic ids are numbers, dotted for sub-epics (``4``, ``3.5``); story ids are whatever
    the project's status file uses (``4.1``, ``3.5.10``, ``centralized-better-auth-1``).
    """

    id: str
    title: str = ""
    stories: list[str] = Field(min_length=1)
    embedding_dimension: int = 1536

    @field_validator("id", mode="before")
    @classmethod
    def _id_text(cls, v: Any) -> Any:
        # YAML reads an unquoted `id: 4` as an int (safe to take as text) but `id: 3.10` as
        # the float 3.1, which would silently name another epic: that one must be quoted.
        if isinstance(v, float):
            raise ValueError('a quoted epic id such as "3.5" (unquoted, YAML reads 3.10 as 3.1)')
        return str(v) if isinstance(v, int) and not isinstance(v, bool) else v

    @field_validator("id")
    @classmethod
    def _id_form(cls, v: str) -> str:
        if not EPIC_ID.match(v):
            raise ValueError("an epic number, dotted for a sub-epic ('4', '3.5')")
        return v

    @field_validator("stories")
    @classmethod
    def _story_ids(cls, v: list[str]) -> list[str]:
        for story in v:
            if not story.strip() or any(ch.isspace() for ch in story):
                raise ValueError(f"story ids without spaces (e.g. '4.1', 'auth-1'); got {story!r}")
        duplicates = sorted({s for s in v if v.count(s) > 1})
        if duplicates:
            raise ValueError(f"each story once; listed twice: {', '.join(duplicates)}")
        return v


class CheckoutSpec(_Model):
    """The Americano repository at the release tag, and the files the checks read."""

    path: Path
    status_file: str = "docs/bmm-workflow-status.md"
    env_examples: list[str] = [".env.example", "apps/web/.env.example", "apps/api/.env.example"]
    migrations_dir: str = "apps/web/prisma/migrations"
    rate_limiter: str = "apps/web/src/lib/rate-limiter.ts"
    logger: str = "apps/web/src/lib/logger.ts"
    pii_redaction: str = "apps/web/src/lib/logger-pii-redaction.ts"
    junit_globs: list[str] = ["test-results/*.xml"]


class DatabaseSpec(_Model):
    """The target database: the URL comes from an environment variable, never from here."""

    url_env: str = "DATABASE_URL"
    scratch_pattern: str = r"^deploybook_scratch_[a-z0-9_]+$"
    pg_bin_dir: Path | None = None
    snapshot_dir: Path = Path("outputs/snapshots")
    # Unset: directory, one job per core, cheapest compression built in (config/snapshot.py).
    snapshot_format: Literal["custom", "directory"] | None = None
    snapshot_jobs: int | None = Field(None, ge=1, le=32)  # a cap on the cores used
    snapshot_compress: Compression | None = None
    rollback: RollbackSpec = RollbackSpec()
    raw_sql: list[str] = []  # loose .sql files to run, in order, for analytics
    # Where the dry run applies the pending migrations: a scratch restore of the fresh
    # snapshot (the default, in every environment) or the live database.
    dry_run_target: Literal["scratch", "live"] | None = None
    # A live dry run runs every pending migration in ONE transaction, rolled back at the
    # end: each lock it takes (ACCESS EXCLUSIVE for most DDL) is held until then, and
    # traffic on those tables waits. Refused in production unless this allows it.
    allow_live_dry_run: bool = False
    lock_timeout: str = Field("5s", pattern=r"^\d+(ms|s|min)?$")
    statement_timeout: str = Field("60s", pattern=r"^\d+(ms|s|min)?$")
    impact: ImpactSpec = ImpactSpec()  # the dry run's budget and window fit (config/impact.py)
    # Production's rollout needs a 02 snapshot younger than this ("2h", "90m", "1h30m").
    snapshot_max_age: Duration = timedelta(hours=2)

    @field_validator("scratch_pattern")
    @classmethod
    def _regex(cls, v: str) -> str:
        try:
            re.compile(v)
        except re.error as exc:
            raise ValueError(f"a valid regular expression ({exc})") from exc
        if not v.startswith("^") or not v.endswith("$"):
            raise ValueError("an anchored pattern (^...$) so only scratch names match")
        return v


class ServiceSpec(_Model):
    """A deployable service and the commands that change it (argv templates, no shell)."""

    name: str
    base_url: str
    health_path: str = "/health"
    metrics_path: str | None = "/metrics"
    metrics: MetricsSpec | None = None  # unset: synthetic probes (config/metrics.py)
    deploy: list[str] = []
    rollback: list[str] = []
    scale: list[str] = []
    warmup_replicas: int = Field(2, ge=0, le=100)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not NAME.match(v):
            raise ValueError("a lowercase name of letters, digits and '-' (e.g. 'api')")
        return v

    @field_validator("base_url")
    @classmethod
    def _url(cls, v: str) -> str:
        if not re.match(r"^https?://[^\s]+$", v):
            raise ValueError("an http(s) URL")
        return v.rstrip("/")


class SmokeCheckSpec(_Model):
    """One smoke test of plan section 12: a request and what its answer must hold."""

    name: str
    service: str
    method: Literal["GET", "POST"] = "GET"
    path: str
    json_body: dict[str, Any] | None = Field(None, alias="json")
    expect_status: int = 200
    expect_keys: list[str] = []
    latency_budget_ms: int = Field(2000, gt=0)
    critical: bool = True
    section: str = "12"


class Thresholds(_Model):
    """SLA thresholds (plan sections 14/15) and how long a breach must last to count."""

    error_rate: float = Field(0.01, ge=0, le=1)
    p95_ms: float = Field(1500, gt=0)
    queue_depth: float = Field(100, ge=0)
    breach_sustain_s: float = Field(600, gt=0)
    watch_window_s: float = Field(900, gt=0)
    watch_interval_s: float = Field(15, gt=0)
    min_requests: float = Field(0, ge=0)  # fewer requests in a sample: 5xx/p95 not judged
    source_errors_inconclusive: int = Field(3, ge=1)  # errors in a row: inconclusive
    inconclusive: Literal["fail", "warn"] | None = None  # None: fail in a production role
    burn_rate: BurnRate | None = None


class Schedule(_Model):
    """Plan section 5: deployment window, freeze and rollback window."""

    window_start: datetime | None = None
    window_minutes: int = Field(60, gt=0)
    freeze_hours: int = Field(24, ge=0)
    rollback_window_minutes: int = Field(60, gt=0)


class SuiteCommand(_Model):
    """A test suite runbook 01 runs: argv (no shell), where, how long, the JUnit it writes."""

    name: str = Field(min_length=1)
    argv: list[str] = Field(min_length=1)
    cwd: str = "."  # relative to the checkout
    timeout_s: float = Field(900, gt=0)
    junit: list[str] = []  # globs, relative to the checkout, read after the command ran


class DesignRule(_Model):
    """A design-system rule (plan section 20) checked in the sources at the release tag.

    ``forbidden-dependency``: ``package`` must not be a production dependency in
    ``package_json``. ``forbidden-pattern``: the regex ``pattern`` must not occur on any
    line of the files matching ``globs`` (``**`` spans folders).
    """

    name: str = Field(min_length=1)
    kind: Literal["forbidden-dependency", "forbidden-pattern"]
    package_json: str | None = None
    package: str | None = None
    globs: list[str] = []
    pattern: str | None = None
    critical: bool = False

    @model_validator(mode="after")
    def _complete(self) -> DesignRule:
        if self.kind == "forbidden-dependency" and not (self.package_json and self.package):
            raise ValueError("a forbidden-dependency rule needs package_json and package")
        if self.kind == "forbidden-pattern":
            if not (self.globs and self.pattern):
                raise ValueError("a forbidden-pattern rule needs globs and pattern")
            try:
                re.compile(self.pattern)
            except re.error as exc:
                raise ValueError(f"pattern {self.pattern!r} is not a valid regex ({exc})") from exc
        return self


class PreconditionsSpec(_Model):
    """What runbook 01 checks beyond the checkout's fixed files (plan sections 1-3, 5-10)."""

    release_branch: str = "main"  # the protected branch releases are tagged on
    test_commands: list[SuiteCommand] = []  # none: read checkout.junit_globs instead
    ci_command: list[str] = []  # exit 0 = CI green for {release}; none: the JUnit results
    # Provider (as in `<PROVIDER>_RATE_LIMIT`) -> limit key -> the quota the provider grants.
    provider_quotas: dict[str, dict[str, int]] = {}
    # Component -> paths whose git tree SHA at the tag is its artifact SHA.
    artifacts: dict[str, list[str]] = {"web": ["apps/web"], "api": ["apps/api"]}
    artifact_digests: dict[str, str] = {}  # component -> image digest, when built elsewhere
    # Where the target environment's variable names are observed (see EnvSource); without
    # it the declared env_keys / env_keys_file are compared, shown "declared, not observed".
    env_source: EnvSource | None = None
    env_keys: list[str] = []  # variable names the target environment defines (declared)
    env_keys_file: Path | None = None  # dotenv or one name per line; only names are read
    parity_allow: list[str] = []  # names allowed to differ (examples vs env, staging vs prod)
    peer_env: str | None = None  # the other side (staging <-> production); default staging_env
    # Secret name -> variable holding the peer environment's value (e.g. PRODUCTION_DATABASE_URL).
    peer_env_vars: dict[str, str] = {}
    isolated_keys: list[str] = ["OPENAI_API_KEY", "GEMINI_API_KEY"]  # must differ from peer
    feature_flags: dict[str, bool] = {}  # flag -> expected default at the release tag
    feature_flags_source: str | None = None  # file in the checkout declaring the defaults
    out_of_scope: list[str] = []  # regexes (case-insensitive) for names and commit subjects
    out_of_scope_epics: list[str] = []  # epic numbers: `epic5` names and story ids 5.x
    scope_allow: list[str] = []  # migration/file names or commit SHA prefixes allowed anyway
    inventory: dict[str, list[str]] = {}  # story -> files that must exist at the release tag
    # Plan section 1: one file per codebase the release spans (its README); present at the tag.
    codebases: list[str] = []
    # Plan section 6: the test files whose suites must show zero failures; present at the tag.
    test_files: list[str] = []
    # JUnit read from files counts only if written after the release tag's commit, or at
    # most this long before now ("2h", "90m"); older is "stale".
    junit_max_age: Duration | None = None

    # Plan section 19: the files the plan refers readers to; present at the tag (not critical).
    references: list[str] = []
    freeze_allow: list[str] = []  # commit SHA prefixes allowed inside the freeze
    design_rules: list[DesignRule] = []  # plan section 20, checked at the release tag

    @field_validator("out_of_scope")
    @classmethod
    def _regexes(cls, v: list[str]) -> list[str]:
        for pattern in v:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"{pattern!r} is not a valid regular expression ({exc})") from exc
        return v

    @field_validator("provider_quotas")
    @classmethod
    def _providers(cls, v: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
        return {provider.upper(): limits for provider, limits in v.items()}

    @field_validator("scope_allow", "freeze_allow")
    @classmethod
    def _nonempty(cls, v: list[str]) -> list[str]:
        if any(len(item.strip()) < 4 for item in v):
            raise ValueError("names or SHA prefixes of at least 4 characters")
        return v


class RolloutSpec(_Model):
    """Runbook 03: the commands of the staging build and the production flag flips."""

    build: list[SuiteCommand] = []  # staging only, in order: build web, web tests, …
    migrate_command: list[str] = []  # e.g. [npx, prisma, migrate, deploy]; empty = built in
    flag_command: list[str] = []  # template with {flag}, {env}, {version}
    flags: list[str] = []
    deploy_last: list[str] = ["web"]  # deployed after the other services

    @field_validator("flags")
    @classmethod
    def _flag_names(cls, v: list[str]) -> list[str]:
        for flag in v:
            if not re.match(r"^[a-z][a-z0-9_.-]{0,80}$", flag):
                raise ValueError(
                    f"flag names of lowercase letters, digits, '_', '.', '-'; got {flag!r}"
                )
        return v

    release_notes_guide: str | None = None
    command_timeout_s: float = Field(300, gt=0)


class Params(_Model):
    """A whole params file."""

    environment: EnvironmentSpec
    epic: EpicSpec
    checkout: CheckoutSpec
    database: DatabaseSpec = DatabaseSpec()
    services: list[ServiceSpec] = Field(min_length=1)
    smoke: list[SmokeCheckSpec] = []
    thresholds: Thresholds = Thresholds()
    schedule: Schedule = Schedule()
    secrets: list[str] = []
    notifications: list[NotificationTarget] = []
    signoff_roles: list[str] = ["PM", "Web", "API", "Services", "QA"]
    approvals: ApprovalsSpec = ApprovalsSpec()  # signed sign-offs (config/approvals.py)
    spot_checks: list[str] = []  # manual post-deploy checks the lead ticks (section 15)
    preconditions: PreconditionsSpec = PreconditionsSpec()
    rollout: RolloutSpec = RolloutSpec()
    source: Path | None = None

    @model_validator(mode="after")
    def _required_announcements(self) -> Params:
        """A target that does not say ``required`` is required in production (its start
        and finish announcements must go out before and after the change), not elsewhere."""
        default = self.environment.is_production
        resolved = [
            t if t.required is not None else t.model_copy(update={"required": default})
            for t in self.notifications
        ]
        object.__setattr__(self, "notifications", resolved)
        return self

    def service(self, name: str) -> ServiceSpec:
        for svc in self.services:
            if svc.name == name:
                return svc
        raise ConfigError(f"{self.source}: no service named {name!r} under 'services'")


def validate_release(release: str, what: str = "release") -> str:
    """A release is a SemVer tag ``vX.Y.Z``; anything else (``../..``, ``v1.2``) is refused."""
    if not isinstance(release, str) or not SEMVER.match(release):
        raise ConfigError(f"{what} {release!r} is not a SemVer tag like v1.4.0")
    return release
