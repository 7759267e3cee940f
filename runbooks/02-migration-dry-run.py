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

# %% [markdown] id="02-00"
# # 02 — Migration dry run
#
# Deployment plan section **7 Migrations & backups**.
#
# > *Full snapshot (`pg_dump`) verified by restoring it; Prisma migration status; dry run of
# > the pending migrations and raw SQL inside a transaction that is rolled back; pgvector
# > dimensions = 1536.*
#
# This runbook changes nothing in the target database: the snapshot is read in one
# consistent transaction, the restore goes into a scratch database that is dropped
# afterwards, and the dry run is rolled back and then proves that the schema and the row
# counts did not change. `keep_scratch = True` keeps the scratch database for inspection.
# The database is the one named by `database.url_env` in the params file; its URL never
# appears here.

# %% tags=["parameters"] id="02-01"
env = "sandbox"
release = "v1.4.0"
previous_release = "v1.3.0"
params_file = "params/sandbox.yaml"
operator = ""
approvals = {}
execute = False
run_id = ""
keep_scratch = False
dry_run_target = ""

# %% id="02-02"
import deploybook.runbooks as book
import deploybook.runbooks.migration_dry_run  # noqa: F401 - loads book.migration_dry_run alone
from deploybook import start

run = start(
    "02-migration-dry-run",
    env=env,
    release=release,
    previous_release=previous_release,
    params_file=params_file,
    operator=operator,
    execute=execute,
    run_id=run_id,
)
run

# %% [markdown] id="02-03"
# ## 7.1 Snapshot
#
# > *Take a full database snapshot with `pg_dump` before anything is migrated.*
#
# Named `<env>-<release>-<UTC time>`, written beside this record (`snapshots/`) unless the
# params file sets an absolute `database.snapshot_dir`. Format, parallel jobs and
# compression come from params. Its size and SHA-256 are recorded: 03-rollout and
# 05-rollback restore exactly this file, and refuse it if it changed.

# %% id="02-04"
snap = book.migration_dry_run.take_snapshot(run)
snap

# %% [markdown] id="02-05"
# ## 7.2 Restore verification
#
# > *A backup is only a backup once it has been restored.*
#
# The snapshot is restored with `pg_restore --exit-on-error` into a scratch database whose
# name must match `database.scratch_pattern` (anything else is refused before a database is
# created), then compared with the source as it was dumped: tables, exact row counts,
# extensions, vector dimensions, `_prisma_migrations` rows and sequence values. A truncated
# or corrupt snapshot fails here. With `database.rollback.standby` (the shipped params) the
# copy is restored with its owners and grants and, once proven equal, kept as the rollback
# standby (connections refused): 05 compares it with the snapshot again and swaps it in,
# so the rollback window holds no restore; the dry run below restores a copy of its own.
# Without it, the proven copy is the dry run's (one restore, not two), dropped after it.

# %% id="02-06"
book.migration_dry_run.verify_snapshot_restore(run, snap, keep=keep_scratch, target=dry_run_target)

# %% [markdown] id="02-07"
# ## 7.3 Migration status
#
# > *`prisma migrate status`: which migrations are applied, which are pending.*
#
# Also: failed rows in `_prisma_migrations` (a migration that failed or was cut off: Prisma
# refuses with P3009 until `prisma migrate resolve`), checksum drift (a migration edited after it
# was applied), migrations applied but missing locally, folder names, duplicate timestamps,
# loose `.sql` files, the provider in `migration_lock.toml` — and that the migrations on
# disk are exactly the release tag's.

# %% id="02-08"
book.migration_dry_run.migration_status(run)

# %% [markdown] id="02-09"
# ## 7.4 Dry run
#
# > *Apply the pending Prisma migrations and the raw SQL inside a transaction that is rolled
# > back.*
#
# Pending migrations, then `database.raw_sql` in the given order, each under its own
# savepoint, with `lock_timeout` from params (5 s by default) so the dry run never waits
# behind live traffic, and each statement timed against its budget
# (`database.impact.statement_budget`, else `statement_timeout`, 60 s by default). A
# statement over the budget is a finding, not an error: "exceeds 60 s — at least 60 s of
# SHARE on content_chunks"; `database.impact.run_to_completion` lets it finish on the
# scratch copy to measure it. In every environment it runs by default on the verified
# scratch copy of the fresh snapshot (the most realistic target, and no lock on the live
# database); `dry_run_target = "live"` uses the live database instead,
# where every lock the migrations take is held until the dry run ends: refused in
# production unless params set `database.allow_live_dry_run: true`, and the record then
# shows each lock and how long it was held, worst first. Each shows ok or its error
# (SQLSTATE, statement, line), the locks it took and the tables it touched; knock-on
# failures name their root cause ("blocked by …"), and a migration that needs a later one
# is an ordering error. Statements PostgreSQL refuses in a transaction
# (`CREATE INDEX CONCURRENTLY`, `VACUUM`, …) are reported, never run. The last row proves
# the database is unchanged: schema fingerprint and exact row counts before = after.

# %% id="02-10"
book.migration_dry_run.dry_run(run, snap, target=dry_run_target)

# %% [markdown] id="02-10a"
# ## What the migrations will do to production
#
# > *Deployment window: 60 minutes.* (plan section 5)
#
# The dry run ran on a full-size copy, so its times are what the apply will cost: for each
# pending statement the table it touches (size, rows), the lock it took (from `pg_locks`),
# what that lock blocks and how long it ran; per table, how long production's reads and
# writes will wait (each migration commits on its own, so a lock is held from its
# statement to its migration's end), worst first; the standard fix where there is one; and
# the fit in the deployment window — the migrations plus the other rollout steps as long
# as they took in the latest 03 record — with a warning when the migrations alone take more
# than `database.impact.window_share_warn` of it. 03 shows this beside "apply migrations".

# %% id="02-10b"
book.migration_dry_run.impact(run)

# %% [markdown] id="02-11"
# ## 7.5 pgvector
#
# > *Vector dimensions = 1536.*
#
# Every `vector` column has the epic's `embedding_dimension`, and every index on a vector
# column uses a method that supports it (ivfflat and hnsw stop at 2000 dimensions).

# %% id="02-12"
book.migration_dry_run.vector_dimensions(run)

# %% [markdown] id="02-13"
# ## 7.6 Lint
#
# squawk's advice on each pending migration and raw SQL file (locks, timeouts, unsafe
# changes). Warnings only: lint never stops the gate.

# %% id="02-14"
book.migration_dry_run.lint(run)

# %% [markdown] id="02-15"
# ## Release so far
#
# Every earlier record of this release in this environment, with links to each record and the timeline against the deployment window.

# %% tags=["nbval-ignore-output"] id="02-16"
book.overview(run)

# %% [markdown] id="02-16a"
# ## Rollback standby
#
# The standby kept above stays for 05-rollback only if this runbook passes its gate: a
# release stopped here is never rolled out, and the copy is dropped.

# %% id="02-16b"
book.migration_dry_run.settle_standby(run)

# %% [markdown] id="02-17"
# ## Gate
#
# Any failed critical check above stops here: the record shows where and why.

# %% id="02-18"
run.finish()
