# The two commands a new user needs: `make rehearse` and `make test`.
# Each creates .venv from the pinned requirements.txt on first use.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: rehearse test lint format reliability bench nbval nbval-refresh browser runbooks clean \
	airflow-venv airflow-lock airflow-release airflow-approve orchestrator

$(STAMP): requirements.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "installing pinned requirements into $(VENV) (first run only)…"
	@$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt
	@$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $(STAMP)

rehearse: $(STAMP)
	$(BIN)/deploybook rehearse

# One pytest worker per core (at most 4); each test file runs whole on one worker, so its
# module-scoped stacks start once. (Not --dist loadgroup: xdist 3.8 renames node ids for it
# in a way pytest 9 no longer sees, and every test would be scheduled alone.)
test: $(STAMP)
	$(BIN)/python -m pytest -q -n auto --maxprocesses 4 --dist loadfile

reliability: $(STAMP)
	$(BIN)/python -m pytest -q -m reliability

lint: $(STAMP)
	$(BIN)/ruff check lib tests scripts bench runbooks orchestrate
	$(BIN)/ruff format --check lib tests scripts bench runbooks orchestrate

format: $(STAMP)
	$(BIN)/ruff format lib tests scripts bench runbooks orchestrate
	$(BIN)/ruff check --fix lib tests scripts bench runbooks orchestrate

# Rewrite runbooks/*.ipynb from their jupytext sources runbooks/*.py (nbval references of
# unchanged cells are kept).
runbooks: $(STAMP)
	$(BIN)/python scripts/sync_runbooks.py

# Benchmarks against the plain tools (pg_dump/pg_restore, psql -f, single requests);
# builds a >1 GB database under bench/data/ on first use, writes bench/results.md.
bench: $(STAMP)
	$(BIN)/python -m bench.run

RUNBOOKS ?= 01-preconditions 02-migration-dry-run 03-rollout 04-smoke 05-rollback

# Re-execute runbooks against a fresh prepared sandbox and store their outputs as nbval references.
nbval-refresh: $(STAMP)
	$(BIN)/python scripts/refresh_references.py $(RUNBOOKS)

nbval: $(STAMP)
	$(BIN)/python -m pytest -q tests/test_nbval.py

browser: $(STAMP)
	$(BIN)/python -m pytest -q -m browser

# Airflow (issue 24) lives in its own venv, .venv-airflow, synced from the committed uv lock
# (seconds; pip would take minutes). `make airflow-lock` re-resolves requirements.in.
AIRFLOW_VENV := .venv-airflow
AIRFLOW_LOCK := orchestrate/airflow/requirements.lock
AIRFLOW_STAMP := $(AIRFLOW_VENV)/.lock-sha256
AIRFLOW_ENV := AIRFLOW_HOME=$(CURDIR)/.state/airflow AIRFLOW__CORE__LOAD_EXAMPLES=False \
	AIRFLOW__CORE__DAGS_FOLDER=$(CURDIR)/orchestrate/airflow
DAG_ID ?= deploybook_release_sandbox

$(AIRFLOW_STAMP): $(AIRFLOW_LOCK) $(STAMP)
	$(BIN)/uv venv -q --clear --python $(PYTHON) $(AIRFLOW_VENV)
	VIRTUAL_ENV=$(AIRFLOW_VENV) $(BIN)/uv pip sync -q $(AIRFLOW_LOCK)
	@sha256sum $(AIRFLOW_LOCK) | cut -d' ' -f1 | tr -d '\n' > $(AIRFLOW_STAMP)

airflow-venv: $(AIRFLOW_STAMP)

airflow-lock: $(STAMP)
	$(BIN)/uv pip compile -q --python-version 3.11 --python-platform x86_64-unknown-linux-gnu \
		orchestrate/airflow/requirements.in -o $(AIRFLOW_LOCK)

# The release DAG on the sandbox with `airflow dags test` (SQLite): it stops at the
# production approval until you answer it in another terminal with `make airflow-approve`.
airflow-release: $(STAMP) $(AIRFLOW_STAMP)
	$(BIN)/deploybook sandbox up
	$(AIRFLOW_ENV) $(AIRFLOW_VENV)/bin/airflow db migrate >/dev/null
	$(AIRFLOW_ENV) timeout -k 10 7200 $(AIRFLOW_VENV)/bin/airflow dags test $(DAG_ID); \
		rc=$$?; $(BIN)/deploybook sandbox down; exit $$rc

CHOICE ?= Approve
BY ?= $(USER)
airflow-approve: $(AIRFLOW_STAMP)
	$(AIRFLOW_ENV) $(AIRFLOW_VENV)/bin/python orchestrate/airflow/respond.py --dag-id $(DAG_ID) \
		--choice $(CHOICE) --by "$(BY)" --wait 600

# Real Airflow, radosgw and actionlint (also part of `make test`).
orchestrator: $(STAMP)
	$(BIN)/python -m pytest -q -m orchestrator

clean:
	$(BIN)/deploybook sandbox down --purge || true
