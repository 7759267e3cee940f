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

# %% [markdown] id="05-00"
# # 05 — Rollback
#
# Deployment plan section **16 Rollback**.
#
# > *If errors or SLAs stay breached for more than 10 minutes, roll back: revert web, API and
# > services to the previous release, restore the database snapshot, announce, file the
# > incident.*
#
# What to roll back comes from the latest **03-rollout** record of this environment and
# release (each service's previous version, the snapshot and its SHA-256, the migrations it
# applied) and the breach from the latest **04-smoke** record. Parameters override them:
# `previous_release` sends every service to one version, `snapshot` names a snapshot's
# `.manifest.json`.
#
# Nothing changes unless `execute = True`, and the database is restored only when
# `confirm_restore` is the target database's name. Only one rollout or rollback runs per
# environment at a time; a rerun resumes an interrupted rollback after its last finished step.

# %% tags=["parameters"] id="05-01"
env = "sandbox"
release = "v1.4.0"
previous_release = ""  # empty: each service's version from the 03-rollout record
params_file = "params/sandbox.yaml"
operator = ""
approvals = {}
execute = False
run_id = ""
confirm_restore = ""
snapshot = ""

# %% id="05-02"
import deploybook.runbooks as book
import deploybook.runbooks.rollback  # noqa: F401 - loads book.rollback alone
from deploybook import start

run = start(
    "05-rollback",
    env=env,
    release=release,
    previous_release=previous_release,
    params_file=params_file,
    operator=operator,
    execute=execute,
    run_id=run_id,
)
run

# %% [markdown] id="05-03"
# ## What will be rolled back
#
# Each service's running version and the one it returns to, the command that does it, the
# snapshot to restore and the trigger, with the record each fact came from.

# %% id="05-04"
plan = book.rollback.prefill(run, {"snapshot": snapshot, "previous_release": previous_release})
plan

# %% [markdown] id="05-05"
# ## Confirm the restore
#
# > *Restore the database snapshot.*
#
# Exactly what will be overwritten: the database and its host (never the password), its row
# counts now against the snapshot's, and the migrations the restore removes. Type the
# database's name (interactive) or pass `confirm_restore` (headless) to allow the restore.

# %% id="05-06"
confirmation = book.rollback.confirm(run, plan, confirm_restore)
confirmation

# %% [markdown] id="05-07"
# ## 16 Roll back
#
# > *Revert web, API and services to the previous release; restore the database snapshot;
# > announce.*
#
# Before anything changes: the snapshot must match its recorded SHA-256 and the restore must
# be confirmed. Then, holding the environment's lock: announce (webhook and email), revert
# web, then the API, then the other services with the configured rollback commands, and
# restore the database. First it is decided how (`database.rollback.mode`; PostgreSQL is
# asked whether this role may rename the database) and what the restore discards is
# stated: rows per table now against the snapshot, rows written or updated after it.
#
# - **swap** (the default): the snapshot is restored in parallel into a new database and
#   verified against its inventory while the target still serves; then, in one short
#   critical section, the target's sessions are ended and it is renamed
#   `<name>_pre_rollback_<ts>` (kept: the safety copy, until an operator drops it) and the
#   restored copy takes its name.
# - **in place** (params, or when the rename is refused): a safety snapshot beside this
#   record, then the snapshot restored into the target in one transaction.
#
# A rerun after a crash (any run id) resumes this rollback after its last finished step:
# one announcement, no service reverted twice.

# %% id="05-08"
recovery = book.rollback.revert_and_restore(run, plan, confirmation)
recovery

# %% [markdown] id="05-09"
# ## Verify
#
# Health and smoke tests at the previous version, every service reporting its previous
# version, and the database equal to the snapshot: tables, row counts, `_prisma_migrations`,
# extensions, vector dimensions and sequences.

# %% id="05-10"
book.rollback.verify(run, recovery)

# %% [markdown] id="05-11"
# ## 17 Incident report and announcement
#
# > *Announce, file the incident.*
#
# The report (timeline, trigger, what was reverted, recovery time, links to the records) is
# written beside this record and sent to the incident targets; then the completion is
# announced.

# %% id="05-12"
book.rollback.file_incident(run, recovery)

# %% [markdown] id="05-13"
# ## 5 Recovery time
#
# > *60-minute rollback window.*
#
# From the start of this runbook to a verified rollback, against the params file's
# `schedule.rollback_window_minutes`.

# %% id="05-14"
book.rollback.timeline(run, recovery)

# %% [markdown] id="05-15"
# ## Release so far
#
# Every earlier record of this release in this environment, with links to each record and the timeline against the deployment window.

# %% tags=["nbval-ignore-output"] id="05-16"
book.overview(run)

# %% [markdown] id="05-17"
# ## Gate
#
# Any failed critical check above stops here: the record shows where and why.

# %% id="05-18"
run.finish()
