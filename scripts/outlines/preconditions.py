"""Outline of runbook 01-preconditions: (kind, source) cells; markdown quotes the plan."""

from .common import GATE, PARAMETERS, start

NAME = "01-preconditions"

CELLS = [
    (
        "md",
        """
# 01 — Preconditions

Deployment plan sections **1 Scope**, **2 Change inventory**, **3 Environments**,
**5 Schedule**, **6 Preconditions**, **8 Artifacts**, **9 Configuration & secrets**,
**10 Pre-deploy checklist**, **18 Sign-offs** and **20 Design-system notes**.

> *All Epic stories DONE, zero test failures, required secrets configured, external rate
> limits reviewed* — nothing is deployed until every critical check below passes.

This runbook changes nothing. Files are read at the release tag (what ships), never from
a working copy. Set the parameters below, or pass them with
`deploybook run 01-preconditions --env ENV --release vX.Y.Z -p NAME VALUE`
(`rate_limits_reviewed_by` names who compared the limits with the provider consoles).
""",
    ),
    ("parameters", PARAMETERS + 'rate_limits_reviewed_by = ""\n'),
    start("01-preconditions"),
    (
        "md",
        """
## 1 — Scope

> *No Epic 5 content included.*

Pending migrations, loose SQL files and the commits since `previous_release` are matched
against the out-of-scope patterns in params (`preconditions.out_of_scope`,
`out_of_scope_epics`); a match fails unless `scope_allow` names it.
""",
    ),
    ("code", "run.record(book.preconditions.scope(run.params, run.release, run.previous_release))"),
    (
        "md",
        """
## 2 — Change inventory

> *Every file the plan's inventory names exists at the release tag.*

A missing file names the story it belongs to (`preconditions.inventory`).
""",
    ),
    ("code", "run.record(book.preconditions.inventory(run.params, run.release))"),
    (
        "md",
        """
## 3 — Environments

> *The staging database is not the production database; staging's external API keys are
> not production's.*

Databases are compared by host, port and name parsed from their URLs; keys by HMAC-SHA256
fingerprints under a salt made for this comparison only. No value is shown or stored.
""",
    ),
    ("code", "run.record(book.preconditions.environments_isolated(run.params))"),
    (
        "md",
        """
## 5 — Schedule

> *60-minute deployment window, code freeze from T-24h, 60-minute rollback window.*

Any commit on the protected branch after the freeze began fails unless params allow it
(`preconditions.freeze_allow`). Without `schedule.window_start`, T is now.
""",
    ),
    ("code", "run.record(book.preconditions.schedule(run.params, run.release))"),
    ("code", "book.preconditions.schedule_plot(run.params, run.release)"),
    (
        "md",
        """
## 6 — Epic stories DONE

> *All Epic stories DONE* — each story has a row in the status file's Done table, and the
> epic is listed under no backlog or not-yet-drafted heading. The decisions log should
> record the embedding dimension (1536).
""",
    ),
    ("code", "run.record(book.preconditions.epic_done(run.params, run.release))"),
    ("code", "run.record(book.preconditions.embedding_decision(run.params, run.release))"),
    (
        "md",
        """
## 6 — Zero test failures

> *Zero test failures.*

Runs the configured test commands with their timeouts (`preconditions.test_commands`), or
reads the JUnit XML the CI wrote (`checkout.junit_globs`); tests, failures, errors and
skipped per suite, and the name of every failing test.
""",
    ),
    ("code", "run.record(book.preconditions.zero_test_failures(run.params, run.release))"),
    (
        "md",
        """
## 6 — Required secrets configured

> *Secrets configured: DATABASE_URL, OPENAI_API_KEY, GEMINI_API_KEY, CHATMOCK_URL.*

Read from the environment only; reported as set / missing / placeholder / malformed,
never shown.
""",
    ),
    ("code", "run.record(book.preconditions.secrets_configured(run.params))"),
    (
        "md",
        """
## 6 — External rate limits reviewed

> *External rate limits reviewed (Gemini, OpenAI).*

The limits in `rate-limiter.ts` at the tag beside the provider quotas from params; the
`rate_limits_reviewed_by` parameter is the attestation (required in production).
""",
    ),
    (
        "code",
        "run.record(book.preconditions.rate_limits_reviewed(run.params, rate_limits_reviewed_by,"
        " run.release))",
    ),
    (
        "md",
        """
## 8 — Artifacts

> *Release tag `vX.Y.Z` exists; artifact SHAs for web, API and services recorded.*

The SHAs are glued as the scrap `artifacts`: production must ship exactly what staging
tested.
""",
    ),
    (
        "code",
        "run.record(book.preconditions.release_tag(run.params, run.release, run.previous_release))",
    ),
    ("code", "run.record(book.preconditions.artifacts(run.params, run.release))"),
    (
        "md",
        """
## 9 — Configuration parity

> *Every key of each `.env.example` is set in the target environment; staging and
> production define the same keys.*

Names only, never values.
""",
    ),
    ("code", "run.record(book.preconditions.env_parity(run.params, run.release))"),
    (
        "md",
        """
## 10 — Pre-deploy checklist

> *CI green, env parity, feature flags/defaults, rate-limit guard and PII-redaction logger
> present and enabled, health endpoints answering.*

CI green is the test results above unless `preconditions.ci_command` is configured.
""",
    ),
    ("code", "run.record(book.preconditions.checklist(run.params, run.release))"),
    ("code", "run.record(book.preconditions.health_endpoints(run.params))"),
    (
        "md",
        """
## 18 — Sign-offs so far

> *Sign-offs: PM, Web, API, Services, QA.*

Listed here for the record (missing ones only warn); they are required before the
production rollout.
""",
    ),
    (
        "code",
        "signoffs = book.preconditions.collect_signoffs("
        "run.params.signoff_roles, approvals, run.operator)",
    ),
    (
        "code",
        "run.record(book.preconditions.check_signoffs(signoffs, run.params.signoff_roles,"
        " run.operator, require_all=False, require_distinct_approver=False))",
    ),
    (
        "md",
        """
## 20 — Design-system notes

> *`tailwindcss-animate` must not be a production dependency; no gradient utilities in the
> web sources.*

Each rule in `preconditions.design_rules` is checked in the files at the release tag and
lists the offending lines (`file:line: text`); rules are non-critical unless params mark
them `critical`.
""",
    ),
    ("code", "run.record(book.preconditions.design_rules(run.params, run.release))"),
    *GATE,
]
