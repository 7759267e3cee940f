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

# %% [markdown] id="04-00"
# # 04 — Smoke tests, monitoring window and post-deploy validation
#
# Deployment plan sections **12 Smoke tests**, **14 Monitoring** and **15 Post-deploy
# validation**.
#
# > *After every deployment: smoke-test the release, watch error rate, latency and queue depth
# > for the monitoring window, and validate the data the migration touched.*
#
# This runbook changes nothing. `watch_window_s` shortens the monitoring window (default: the
# params file's `thresholds.watch_window_s`); `expect_version` overrides the version every
# health check requires (empty: from the records, see below). `spot_checks_confirmed` records
# the manual spot checks in a headless run, e.g. `{"4.1": "Dana Lee"}` (item tag or text ->
# who checked).

# %% tags=["parameters"] id="04-01"
env = "sandbox"
release = "v1.4.0"
previous_release = "v1.3.0"
params_file = "params/sandbox.yaml"
operator = ""
approvals = {}
execute = False
run_id = ""
watch_window_s = None
expect_version = ""
spot_checks_confirmed = {}

# %% id="04-02"
import deploybook.runbooks as book
import deploybook.runbooks.smoke  # noqa: F401 - loads book.smoke alone
from deploybook import start

run = start(
    "04-smoke",
    env=env,
    release=release,
    previous_release=previous_release,
    params_file=params_file,
    operator=operator,
    execute=execute,
    run_id=run_id,
)
run

# %% [markdown] id="04-03"
# ## 12 Smoke tests
#
# > *Search API returns results; objective extraction round trip through ChatMock; IRT
# > question selection; the confidence calibrator; the analytics summary; health endpoints
# > of API, ChatMock and OCR.*
#
# All requests run at once (the suite takes about as long as its slowest endpoint). Each
# check shows its status code, latency against its budget and the answer's evidence; a
# failed critical check stops the gate.
#
# Every service must run the expected version: after the newest executed 03-rollout of this
# release here, the release; after a later executed 05-rollback, what it reverted each
# service to; `expect_version` overrides both; with neither record, the release itself (a
# note). A service running another version fails its health check, naming both versions.
# When the release is known to run here, every migration of the checkout must be applied.

# %% id="04-19"
expected = book.smoke.expected_version(run, expect_version)

# %% id="04-04"
book.smoke.run_suite(run, expected)

# %% [markdown] id="04-05"
# ## 14 Monitoring window
#
# > *Watch the 5xx rate, p95 latency and queue depth against the thresholds. If errors or
# > SLAs stay breached for more than 10 minutes, roll back (section 16).*
#
# Each service's metrics are sampled every `watch_interval_s` for the window. A short spike
# is shown as a warning; a breach measured on data lasting `breach_sustain_s` (or, with
# `thresholds.burn_rate`, the 5xx error budget burning too fast over both windows) fails the
# check "SLA breached", ends the watch, and is recorded for 05-rollback. A service the watch
# cannot judge (no data, fewer than `thresholds.min_requests` requests, or its source
# erroring `source_errors_inconclusive` times in a row) is **inconclusive**, shown in amber
# with what is missing: never a breach and never a rollback; it fails the gate as "cannot
# confirm the SLA" in a production role and warns elsewhere (`thresholds.inconclusive`).
# Every raw sample is kept in the record.

# %% id="04-06"
watch = book.smoke.watch_slas(run, window_s=watch_window_s)

# %% id="04-07"
watch

# %% id="04-08"
book.smoke.sla_plot(run, watch)

# %% id="04-09"
book.smoke.record_breach(run, watch)

# %% [markdown] id="04-10"
# ## 15 Post-deploy validation
#
# > *Synthetic checks pass; data integrity after the migration: no failed or unfinished
# > migrations, every expected migration applied, key tables' row counts not lower than the
# > snapshot's, vector dimensions unchanged.*
#
# Read-only queries against the database named by `database.url_env` (short timeouts). The
# expected migrations are the checkout's folder; the row counts come from the snapshot in the
# latest passing 02-migration-dry-run record (skipped when there is none).

# %% id="04-11"
book.smoke.post_deploy_validation(run, expected)

# %% [markdown] id="04-12"
# ## 15 Manual spot checks
#
# > *Manual spot checks for the epic's stories, ticked by the lead and recorded with who and
# > when.*
#
# The items come from the params file (`spot_checks`). Interactive: tick what you saw work,
# enter who checked, click **Record**, then run the next cell. Headless: from the parameter
# `spot_checks_confirmed`. An unconfirmed item warns on staging and stops the production gate.

# %% id="04-13"
spot = book.smoke.spot_checks(run, spot_checks_confirmed)
spot

# %% id="04-14"
book.smoke.record_spot_checks(run, spot)

# %% [markdown] id="04-15"
# ## Release so far
#
# Every earlier record of this release in this environment, with links to each record and the timeline against the deployment window.

# %% tags=["nbval-ignore-output"] id="04-16"
book.overview(run)

# %% [markdown] id="04-17"
# ## Gate
#
# Any failed critical check above stops here: the record shows where and why.

# %% id="04-18"
run.finish()
