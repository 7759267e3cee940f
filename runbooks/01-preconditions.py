# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     notebook_metadata_filter: kernelspec,jupytext,-jupytext.text_representation
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown] id="01-00"
# # 01 — Preconditions
#
# Deployment plan sections **1 Scope**, **2 Change inventory**, **3 Environments**,
# **5 Schedule**, **6 Preconditions**, **8 Artifacts**, **9 Configuration & secrets**,
# **10 Pre-deploy checklist**, **18 Sign-offs** and **20 Design-system notes**.
#
# > *All Epic stories DONE, zero test failures, required secrets configured, external rate
# > limits reviewed* — nothing is deployed until every critical check below passes.
#
# This runbook changes nothing. Files are read at the release tag (what ships), never from
# a working copy. Set the parameters below, or pass them with
# `deploybook run 01-preconditions --env ENV --release vX.Y.Z -p NAME VALUE`
# (`rate_limits_reviewed_by` names who compared the limits with the provider consoles).

# %% tags=["parameters"] id="01-01"
env = "sandbox"
release = "v1.4.0"
previous_release = "v1.3.0"
params_file = "params/sandbox.yaml"
operator = ""
approvals = {}
execute = False
run_id = ""
rate_limits_reviewed_by = ""

# %% id="01-02"
import deploybook.runbooks as book
import deploybook.runbooks.preconditions  # noqa: F401 - loads book.preconditions alone
from deploybook import start

run = start(
    "01-preconditions",
    env=env,
    release=release,
    previous_release=previous_release,
    params_file=params_file,
    operator=operator,
    execute=execute,
    run_id=run_id,
)
run

# %% [markdown] id="01-03"
# ## 1 — Scope
#
# > *No Epic 5 content included.*
#
# Pending migrations, loose SQL files and the commits since `previous_release` are matched
# against the out-of-scope patterns in params (`preconditions.out_of_scope`,
# `out_of_scope_epics`); a match fails unless `scope_allow` names it.

# %% id="01-04"
book.preconditions.scope(run)

# %% [markdown] id="01-05"
# ## 2 — Change inventory
#
# > *Every file the plan's inventory names exists at the release tag.*
#
# A missing file names the story it belongs to (`preconditions.inventory`).

# %% id="01-06"
book.preconditions.inventory(run)

# %% [markdown] id="01-07"
# ## 3 — Environments
#
# > *The staging database is not the production database; staging's external API keys are
# > not production's.*
#
# Databases are compared by host, port and name parsed from their URLs; keys by HMAC-SHA256
# fingerprints under a salt made for this comparison only. No value is shown or stored.
# Without the peer's values the checks fail in production (nothing was compared) and warn
# elsewhere.

# %% id="01-08"
book.preconditions.environments_isolated(run)

# %% [markdown] id="01-09"
# ## 5 — Schedule
#
# > *60-minute deployment window, code freeze from T-24h, 60-minute rollback window.*
#
# Any commit on the protected branch after the freeze began fails unless params allow it
# (`preconditions.freeze_allow`). Without `schedule.window_start`, T is now.

# %% id="01-10"
book.preconditions.schedule(run)

# %% id="01-11"
book.preconditions.schedule_plot(run)

# %% [markdown] id="01-12"
# ## 6 — Epic stories DONE
#
# > *All Epic stories DONE* — each story has a row in the status file's Done table, and the
# > epic is listed under no backlog or not-yet-drafted heading. The decisions log should
# > record the embedding dimension (1536).

# %% id="01-13"
book.preconditions.epic_done(run)

# %% id="01-14"
book.preconditions.embedding_decision(run)

# %% [markdown] id="01-15"
# ## 6 — Zero test failures
#
# > *Zero test failures.*
#
# Runs the configured test commands with their timeouts (`preconditions.test_commands`), or
# reads the JUnit XML the CI wrote (`checkout.junit_globs`); tests, failures, errors and
# skipped per suite, and the name of every failing test. JUnit read from files must be
# written after the release tag's commit (its `timestamp`, else the file's time) or within
# `preconditions.junit_max_age`: stale results warn, and fail in production. The plan's test
# files should appear in the results.

# %% id="01-16"
book.preconditions.zero_test_failures(run)

# %% [markdown] id="01-17"
# ## 6 — Required secrets configured
#
# > *Secrets configured: DATABASE_URL, OPENAI_API_KEY, GEMINI_API_KEY, CHATMOCK_URL.*
#
# Read from the environment only; reported as set / missing / placeholder / malformed,
# never shown.

# %% id="01-18"
book.preconditions.secrets_configured(run)

# %% [markdown] id="01-19"
# ## 6 — External rate limits reviewed
#
# > *External rate limits reviewed (Gemini, OpenAI).*
#
# The limits in `rate-limiter.ts` at the tag beside the provider quotas from params; the
# `rate_limits_reviewed_by` parameter is the attestation (required in production).

# %% id="01-20"
book.preconditions.rate_limits_reviewed(run, rate_limits_reviewed_by)

# %% [markdown] id="01-21"
# ## 8 — Artifacts
#
# > *Release tag `vX.Y.Z` exists; artifact SHAs for web, API and services recorded.*
#
# The SHAs are glued as the scrap `artifacts`: production must ship exactly what staging
# tested.

# %% id="01-22"
book.preconditions.release_tag(run)

# %% id="01-23"
book.preconditions.artifacts(run)

# %% [markdown] id="01-24"
# ## 9 — Configuration parity
#
# > *Every key of each `.env.example` is set in the target environment; staging and
# > production define the same keys.*
#
# Names only, never values: the target environment's names are observed where params say
# (`preconditions.env_source`: the platform's env listing, a dotenv file or the process
# environment), production's and staging's each from its own source. A list typed into
# params (`env_keys`) still counts but warns "declared, not observed".

# %% id="01-25"
book.preconditions.env_parity(run)

# %% [markdown] id="01-26"
# ## 10 — Pre-deploy checklist
#
# > *CI green, env parity, feature flags/defaults, rate-limit guard and PII-redaction logger
# > present and enabled, health endpoints answering.*
#
# CI green is the test results above unless `preconditions.ci_command` is configured.
# The target database must answer too, and shows its server version: 02, 03 and 05 need
# it, so a database that is down fails here rather than in the middle of a change.

# %% id="01-27"
book.preconditions.checklist(run)

# %% id="01-28"
book.preconditions.health_endpoints(run)

# %% id="01-28a"
book.preconditions.database_reachable(run)

# %% [markdown] id="01-29"
# ## 18 — Sign-offs so far
#
# > *Sign-offs: PM, Web, API, Services, QA.*
#
# Listed here for the record (missing ones only warn); they are required before the
# production rollout.

# %% id="01-30"
signoffs = book.preconditions.collect_signoffs(run, approvals)

# %% id="01-31"
book.preconditions.check_signoffs(run, signoffs)

# %% [markdown] id="01-32"
# ## 20 — Design-system notes
#
# > *`tailwindcss-animate` must not be a production dependency; no gradient utilities in the
# > web sources.*
#
# Each rule in `preconditions.design_rules` is checked in the files at the release tag and
# lists the offending lines (`file:line: text`); rules are non-critical unless params mark
# them `critical`.

# %% id="01-33"
book.preconditions.design_rules(run)

# %% [markdown] id="01-34"
# ## Release so far
#
# Every earlier record of this release in this environment, with links to each record and the timeline against the deployment window.

# %% tags=["nbval-ignore-output"] id="01-35"
book.overview(run)

# %% [markdown] id="01-36"
# ## Gate
#
# Any failed critical check above stops here: the record shows where and why.

# %% id="01-37"
run.finish()
