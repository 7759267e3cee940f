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

# %% [markdown] id="03-00"
# # 03 — Rollout
#
# Deployment plan sections **11 Staging rollout**, **13 Production rollout**,
# **17 Communications** and **18 Sign-offs**.
#
# Nothing changes unless `execute = True`: a dry run shows every step with the exact command
# it would run. `stage` is empty to follow the params file's role (`staging` or
# `production`). `resume = True` lets a rerun after a failure or an interruption continue
# after the last finished step; no finished step is repeated.

# %% tags=["parameters"] id="03-01"
env = "sandbox"
release = "v1.4.0"
previous_release = "v1.3.0"
params_file = "params/sandbox.yaml"
operator = ""
approvals = {}
execute = False
run_id = ""
stage = ""
resume = True

# %% id="03-02"
import deploybook.runbooks as book
import deploybook.runbooks.rollout  # noqa: F401 - loads book.rollout alone
from deploybook import start

run = start(
    "03-rollout",
    env=env,
    release=release,
    previous_release=previous_release,
    params_file=params_file,
    operator=operator,
    execute=execute,
    run_id=run_id,
)
run

# %% [markdown] id="03-03"
# ## 18 Sign-offs
#
# > *Sign-offs: PM, Web, API, Services, QA — recorded with names and times.*
#
# Each approver signs on their own machine what they approve — the release's artifact
# SHAs, the 02 dry-run record's SHA-256 and summary, this environment — with their SSH key:
# `deploybook approve --env ENV --release vX.Y.Z --role ROLE`. The approval files lie beside
# the records; this cell shows per role who signed, for which dry run, until when, and
# which roles are missing or void (tampered, expired, another dry run, a key not allowed
# for the role in params `approvals.allowed_signers`, the operator's key, one key for two
# roles). The gate reads them again. On the sandbox (`approvals.method: names`) the
# `approvals` parameter gives typed names instead (`{"PM": "name", ...}`), or in
# JupyterLab a form: fill it in and click *Record* before running the next cell.
# Production needs every role, signed by someone other than the operator.

# %% id="03-04"
signoffs = book.rollout.signoffs(run, approvals)

# %% [markdown] id="03-05"
# ## Gates
#
# Production refuses to start unless the same release passed its staging rollout (with the
# same artifact SHAs when both 01 records hold them), every sign-off is given, the
# approver is not the operator, 02-migration-dry-run took the snapshot the rollback would
# restore, the checkout is at the release tag and (when scheduled) now is inside the
# deployment window. With `execute = True` a failed gate stops here, before any step.

# %% id="03-06"
gates = book.rollout.check_gates(run, signoffs, stage)

# %% [markdown] id="03-07"
# ## 17 Release notes
#
# > *Announce the release with its notes.*
#
# Generated from the status file at the release tag (the epic's Done rows with dates and
# points, the decisions since the previous release) and the implementation guide named in
# params; written beside this record and attached to the start announcement.

# %% id="03-08"
notes = book.rollout.release_notes(run)

# %% [markdown] id="03-09"
# ## 11 / 13 The plan
#
# > *Staging: build web, run web tests, build api and run pytest, migrate the database,
# > start services (ChatMock, OCR), smoke. Production: announce start, scale up services
# > for warm-up, apply migrations, deploy API/services, deploy web, flip flags, production
# > smoke, announce completion.*
#
# Before anything is deployed the running version of every service is recorded (the
# rollback reads it). Migrations are applied as `prisma migrate deploy` does, so Prisma
# agrees afterwards.

# %% id="03-10"
plan = book.rollout.plan(run, gates.stage, notes)

# %% [markdown] id="03-11"
# ## Execute
#
# Under the environment lock (one rollout or rollback per environment at a time); each
# step prints its start, end, duration and status, and its command's output, scrubbed.
# In JupyterLab with `execute = True` every step that changes a system first shows what it
# will do and waits for you: Run All stops at "waiting for you at step N" until you click
# *Confirm* and run this cell again. Headless runs do not wait.

# %% id="03-12"
result = book.rollout.execute(run, plan, gates, resume=resume)

# %% [markdown] id="03-13"
# ## Summary

# %% id="03-14"
result

# %% id="03-15"
book.rollout.timeline(run, result)

# %% [markdown] id="03-16"
# ## Release so far
#
# Every earlier record of this release in this environment, with links to each record and the timeline against the deployment window.

# %% tags=["nbval-ignore-output"] id="03-17"
book.overview(run)

# %% [markdown] id="03-18"
# ## Gate
#
# Any failed critical check above stops here: the record shows where and why.

# %% id="03-19"
run.finish()
