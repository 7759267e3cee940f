"""Outline of runbook 04-smoke: (kind, source) cells; markdown quotes the plan."""

from .common import GATE, PARAMETERS, start

NAME = "04-smoke"

CELLS = [
    (
        "md",
        """
# 04 — Smoke tests, monitoring window and post-deploy validation

Deployment plan sections **12 Smoke tests**, **14 Monitoring** and **15 Post-deploy
validation**.

> *After every deployment: smoke-test the release, watch error rate, latency and queue depth
> for the monitoring window, and validate the data the migration touched.*

This runbook changes nothing. `watch_window_s` shortens the monitoring window (default: the
params file's `thresholds.watch_window_s`); `expect_version` makes every health check
require that running release (empty: any) and every migration of the checkout to be
applied (empty: unapplied migrations only warn). `spot_checks_confirmed` records the manual
spot checks in a headless run, e.g. `{"4.1": "Dana Lee"}` (item tag or text -> who checked).
""",
    ),
    (
        "parameters",
        PARAMETERS + 'watch_window_s = None\nexpect_version = ""\nspot_checks_confirmed = {}\n',
    ),
    start("04-smoke"),
    (
        "md",
        """
## 12 Smoke tests

> *Search API returns results; objective extraction round trip through ChatMock; IRT
> question selection; the confidence calibrator; the analytics summary; health endpoints
> of API, ChatMock and OCR.*

All requests run at once (the suite takes about as long as its slowest endpoint). Each
check shows its status code, latency against its budget and the answer's evidence; a
failed critical check stops the gate.
""",
    ),
    ("code", "run.record(book.smoke.run_suite(run.params, expect_version=expect_version or None))"),
    (
        "md",
        """
## 14 Monitoring window

> *Watch the 5xx rate, p95 latency and queue depth against the thresholds. If errors or
> SLAs stay breached for more than 10 minutes, roll back (section 16).*

Each service's metrics are sampled every `watch_interval_s` for the window. A short spike
is shown as a warning; a breach lasting `breach_sustain_s` fails the check
"SLA breached", ends the watch, and is recorded for 05-rollback.
""",
    ),
    ("code", "watch = book.smoke.watch_slas(run.params, window_s=watch_window_s, progress=True)"),
    ("code", "run.record(watch.checks)"),
    ("code", "watch.plot()"),
    ("code", "book.smoke.record_breach(watch)"),
    (
        "md",
        """
## 15 Post-deploy validation

> *Synthetic checks pass; data integrity after the migration: no failed or unfinished
> migrations, every expected migration applied, key tables' row counts not lower than the
> snapshot's, vector dimensions unchanged.*

Read-only queries against the database named by `database.url_env` (short timeouts). The
expected migrations are the checkout's folder; the row counts come from the snapshot in the
latest passing 02-migration-dry-run record (skipped when there is none).
""",
    ),
    (
        "code",
        "run.record(book.smoke.post_deploy_validation(run.params, release=run.release,"
        " require_applied=bool(expect_version)))",
    ),
    (
        "md",
        """
## 15 Manual spot checks

> *Manual spot checks for the epic's stories, ticked by the lead and recorded with who and
> when.*

The items come from the params file (`spot_checks`). Interactive: tick what you saw work,
enter who checked, click **Record**, then run the next cell. Headless: from the parameter
`spot_checks_confirmed`. An unconfirmed item warns on staging and stops the production gate.
""",
    ),
    ("code", "spot = book.smoke.spot_checks(run, spot_checks_confirmed)\nspot"),
    ("code", "run.record(book.smoke.record_spot_checks(spot))"),
    *GATE,
]
